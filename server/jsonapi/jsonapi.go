package jsonapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/vanguard"
	"google.golang.org/protobuf/proto"
)

// Prefix is where the API is mounted on the HTTP port.
const Prefix = "/api"

// MaxMessageBytes is the gRPC server's bound on the messages it receives, the least
// maxMessage to give New.
const MaxMessageBytes = 8 << 20

// New returns the handler of Prefix+"/": each named gRPC service of server (an
// http.Handler, a *grpc.Server) reachable as Connect, gRPC-Web or gRPC. Requests reach
// server in the gRPC protocol, so its interceptors run for every call.
//
// With loopbackOnly (dev mode, where calls carry no token) a request is served only when
// it comes from a loopback address and names a loopback host: the HTTP port faces the
// apps that send webhooks, and a web page must not reach the API by DNS rebinding.
//
// maxMessage (positive) bounds a message the transcoder buffers, a request's or a
// response's: at least MaxMessageBytes, more when a response can carry a larger kept
// webhook body (GetDelivery).
func New(server http.Handler, services []string, loopbackOnly bool, maxMessage int64) (http.Handler, error) {
	vs := make([]*vanguard.Service, 0, len(services))
	for _, name := range services {
		vs = append(vs, vanguard.NewService(name, server))
	}
	tc, err := vanguard.NewTranscoder(vs,
		vanguard.WithDefaultServiceOptions(
			vanguard.WithTargetProtocols(vanguard.ProtocolGRPC),
			vanguard.WithTargetCodecs(vanguard.CodecProto),
			// vanguard buffers a message to transcode it, by default up to 4 GiB (a
			// request without a length is read whole to measure it), before the gRPC
			// server's own limit or its auth sees it: a stranger's body could fill the
			// memory.
			vanguard.WithMaxMessageBufferBytes(uint32(min(maxMessage, math.MaxUint32))),
		),
		vanguard.WithUnknownHandler(http.HandlerFunc(unknown)),
		vanguard.WithCodec(func(res vanguard.TypeResolver) vanguard.Codec {
			return requestCodec{vanguard.NewJSONCodec(res)}
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("jsonapi: %w", err)
	}
	return http.StripPrefix(Prefix, guard(requireBody(tc), loopbackOnly)), nil
}

// guard refuses cross-origin browser requests (and, with loopbackOnly, any request that is
// not local) and lifts the HTTP server's timeouts for streams.
func guard(next http.Handler, loopbackOnly bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if loopbackOnly && !(isLoopbackAddr(r.RemoteAddr) && isLoopbackHost(r.Host)) {
			WriteError(w, http.StatusForbidden, "permission_denied",
				"the JSON API runs without auth in dev mode and answers only local requests to a loopback host (set --admin-token to call it from elsewhere)")
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
			WriteError(w, http.StatusForbidden, "permission_denied", "cross-origin requests are not allowed")
			return
		}
		ct := r.Header.Get("Content-Type")
		if r.Method == http.MethodPost && r.Header.Get("Connect-Protocol-Version") == "" &&
			(ct == "application/json" || strings.HasPrefix(ct, "application/json;") || ct == "application/proto") {
			// A unary Connect call: the header is optional here so that a plain
			// `curl -H 'Content-Type: application/json' -d '{}'` works (there are no REST
			// routes it could be meant for).
			r.Header.Set("Connect-Protocol-Version", "1")
		}
		if isStream(ct) {
			rc := http.NewResponseController(w)
			// Best effort: a writer that cannot (tests' recorders) keeps the server's.
			_ = rc.SetReadDeadline(time.Time{})
			_ = rc.SetWriteDeadline(time.Time{})
			w = headerFlusher{w}
		}
		next.ServeHTTP(w, r)
	})
}

// headerFlusher sends a stream's headers as soon as they are written: vanguard writes
// them but leaves them buffered until the first message, and a client (a browser's fetch)
// learns the stream is open only from them.
type headerFlusher struct{ http.ResponseWriter }

func (f headerFlusher) WriteHeader(code int) {
	f.ResponseWriter.WriteHeader(code)
	f.Flush()
}

func (f headerFlusher) Flush() { _ = http.NewResponseController(f.ResponseWriter).Flush() }

func (f headerFlusher) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// requestCodec is vanguard's JSON codec whose decoding errors are INVALID_ARGUMENT: a
// request body that is not the message's JSON is the caller's mistake.
type requestCodec struct{ *vanguard.JSONCodec }

func (c requestCodec) Unmarshal(data []byte, msg proto.Message) error {
	if err := c.JSONCodec.Unmarshal(data, msg); err != nil {
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("request body is not a %s in JSON: %w", msg.ProtoReflect().Descriptor().FullName(), err))
	}
	return nil
}

// requireBody refuses a POST without a body (400, invalid_argument): no message at all
// would reach the gRPC server as a call without its request, which grpc-go answers
// INTERNAL ("cardinality violation").
func requireBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && emptyBody(r) {
			WriteError(w, http.StatusBadRequest, "invalid_argument",
				"the request body is empty: send the request message as JSON ({} for an empty one)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// emptyBody reports whether r has no body, reading at most one byte of it (put back).
func emptyBody(r *http.Request) bool {
	if r.ContentLength > 0 {
		return false
	}
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	var b [1]byte
	n, err := io.ReadFull(r.Body, b[:])
	if n == 0 && err != nil {
		return true
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b[:n]), r.Body), r.Body}
	return false
}

// isLoopbackAddr reports whether a RemoteAddr (host:port) is a loopback IP.
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isLoopbackHost reports whether a Host header names localhost or a loopback IP.
func isLoopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}

// isStream reports whether ct is a streaming content type (Connect streams, gRPC-Web).
func isStream(ct string) bool {
	return strings.HasPrefix(ct, "application/connect+") || strings.HasPrefix(ct, "application/grpc-web")
}

func unknown(w http.ResponseWriter, r *http.Request) {
	WriteError(w, http.StatusNotFound, "unimplemented", "no such RPC: "+r.URL.Path+
		" (call POST "+Prefix+"/hookmap.v1.<Service>/<Method> with a JSON body)")
}

// WriteError writes a Connect-shaped JSON error.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]string{"code": code, "message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
