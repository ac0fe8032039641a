package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrForbiddenAddress is returned (wrapped) when a call would reach an internal address.
var ErrForbiddenAddress = errors.New("outbound call to a loopback or private address refused")

// Options configure the client.
type Options struct {
	AllowPrivate    bool
	Timeout         time.Duration // whole request, default 30s
	FollowRedirects bool
	MaxRedirects    int // default 5
}

var forbidden = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("ff00::/8"),
}

// IsForbidden reports whether ip is loopback, private, link-local (incl. cloud metadata
// 169.254.169.254), CGNAT, unspecified, multicast, reserved or broadcast — also when
// written as an IPv4-mapped IPv6 address.
func IsForbidden(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return true
	}
	for _, p := range forbidden {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// control refuses a dial to a forbidden address; it runs on the resolved address.
func control(allowPrivate bool) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		if allowPrivate {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: cannot parse dialed address %q", ErrForbiddenAddress, address)
		}
		if IsForbidden(ap.Addr()) {
			return fmt.Errorf("%w: %s (start hookmap with --allow-private-networks to allow it)", ErrForbiddenAddress, ap.Addr())
		}
		return nil
	}
}

// NewClient returns the shared outbound client.
func NewClient(o Options) *http.Client {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxRedirects <= 0 {
		o.MaxRedirects = 5
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: control(o.AllowPrivate)}
	tr := &http.Transport{
		Proxy: nil, // never from the environment: a proxy would hide the dialed address
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   10,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: o.Timeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: tr, Timeout: o.Timeout, CheckRedirect: RedirectPolicy(o.FollowRedirects, o.MaxRedirects)}
}

// RedirectPolicy is an http.Client CheckRedirect that follows at most max redirects, or
// none (the redirect is the answer). A followed target is checked again when it is dialed.
func RedirectPolicy(follow bool, max int) func(*http.Request, []*http.Request) error {
	return func(_ *http.Request, via []*http.Request) error {
		if !follow {
			return http.ErrUseLastResponse
		}
		if len(via) >= max {
			return fmt.Errorf("stopped after %d redirects", max)
		}
		return nil
	}
}
