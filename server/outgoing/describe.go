package outgoing

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/hookmap/hookmap/server/netguard"
)

// describe turns a transport error into the trigger's error message, which never holds
// the endpoint's URL, and reports whether another attempt may succeed (connection errors).
func describe(ctx context.Context, err error, timeout time.Duration) (msg string, retryable bool) {
	if errors.Is(context.Cause(ctx), errTimeout) {
		return "timeout: no complete answer within " + timeout.String(), false
	}
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return "timeout: the caller's deadline passed before the endpoint answered", false
		}
		return "canceled: the caller went away before the endpoint answered", false
	}
	var (
		dnsErr   *net.DNSError
		certErr  *tls.CertificateVerificationError
		authErr  x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		invErr   x509.CertificateInvalidError
		recErr   tls.RecordHeaderError
		alertErr tls.AlertError
		opErr    *net.OpError
		netErr   net.Error
		urlErr   *url.Error
	)
	switch {
	case errors.Is(err, netguard.ErrForbiddenAddress):
		return "refused: the endpoint's address is loopback or private (the server does not allow private networks)", false
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "DNS: the endpoint's host name does not resolve", false
		}
		return "DNS: lookup of the endpoint's host name failed: " + dnsErr.Err, dnsErr.IsTemporary || dnsErr.IsTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused", true
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the endpoint", true
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "endpoint unreachable (no route to host)", true
	case errors.As(err, &hostErr):
		return "TLS: the endpoint's certificate is not valid for its host name", false
	case errors.As(err, &authErr):
		return "TLS: the endpoint's certificate is signed by an unknown authority", false
	case errors.As(err, &invErr):
		return "TLS: the endpoint's certificate is invalid: " + invErr.Error(), false
	case errors.As(err, &certErr):
		return "TLS: the endpoint's certificate is not valid: " + certErr.Err.Error(), false
	case errors.As(err, &recErr), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return "TLS: the endpoint did not answer with TLS", false
	case errors.As(err, &alertErr):
		return "TLS: handshake failed: " + alertErr.Error(), false
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the endpoint closed the connection without a complete answer", true
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timeout connecting to the endpoint", true
	case errors.As(err, &opErr):
		return "network error: " + opErr.Err.Error(), true
	case errors.As(err, &urlErr):
		// The url.Error's own message holds the URL; its cause does not.
		return "request failed: " + urlErr.Err.Error(), false
	}
	return "request failed: " + err.Error(), false
}
