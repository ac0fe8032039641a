package receiver

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hookmap/hookmap/server/core"
	"github.com/hookmap/hookmap/server/metrics"
)

// DefaultMaxBody is the default request body limit (1 MiB).
const DefaultMaxBody = 1 << 20

// Receiver serves the hook URLs.
type Receiver struct {
	Core    *core.Core
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	MaxBody int64
	// Ready reports whether the service can take deliveries (/readyz).
	Ready func(ctx context.Context) error

	latency sync.Map // status code → its series of Metrics.ReceiverLatency (observe)
}

// observe records a webhook's latency under its status code. The series of each code is
// looked up once: a label lookup hashes the label on every call.
func (rc *Receiver) observe(code int, d time.Duration) {
	o, ok := rc.latency.Load(code)
	if !ok {
		o, _ = rc.latency.LoadOrStore(code, rc.Metrics.ReceiverLatency.WithLabelValues(strconv.Itoa(code)))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

// Handler returns the receiver's routes wrapped in request-id and recovery middleware.
func (rc *Receiver) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/hooks/g/{id}", rc.serveGlobal)
	mux.HandleFunc("/hooks/{id}", rc.serveSubscription)
	mux.Handle(core.OAuthCallbackPath, http.HandlerFunc(rc.serveOAuthCallback))
	mux.Handle("/healthz", getOnly(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, `{"status":"ok"}`)
	})))
	mux.Handle("/readyz", getOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rc.Ready != nil {
			if err := rc.Ready(r.Context()); err != nil {
				rc.Logger.Warn("not ready", "request_id", requestID(w), "err", err)
				writeError(w, http.StatusServiceUnavailable, "not ready") // the cause is for the log
				return
			}
		}
		writeJSON(w, http.StatusOK, `{"status":"ready"}`)
	})))
	if rc.Metrics != nil {
		mux.Handle("/metrics", getOnly(promhttp.HandlerFor(rc.Metrics.Registry, promhttp.HandlerOpts{})))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such path: "+core.Q(r.URL.Path))
	})
	return rc.middleware(mux)
}

// getOnly answers methods other than GET and HEAD with a JSON 405.
func getOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method "+core.Q(r.Method)+" is not allowed on "+r.URL.Path)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// RefuseConnect answers CONNECT with the receiver's JSON 405 before next sees it: hookmap
// is no proxy, and a 2xx would tell a client its tunnel is open. A CONNECT naming a host
// (CONNECT host:443) matches no route of a mux, which would answer a plain-text 404. The
// receiver's own handler refuses it too; wrap whatever mux serves the HTTP port.
func RefuseConnect(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuseConnect(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

func refuseConnect(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodConnect {
		return false
	}
	writeError(w, http.StatusMethodNotAllowed, "method CONNECT is not allowed")
	return true
}

func (rc *Receiver) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqID := newRequestID()
		w.Header().Set("X-Request-Id", reqID)
		if refuseConnect(w, r) {
			return
		}
		rw := &statusWriter{ResponseWriter: w, reqID: reqID}
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				reply := rc.recovered(reqID, r.URL.Path, p)
				if !rc.wroteHeader(rw) {
					writeReply(rw, reply)
				}
			}
			if strings.HasPrefix(r.URL.Path, "/hooks/") && rc.Metrics != nil {
				rc.observe(rw.code(), time.Since(start))
			}
		}()
		next.ServeHTTP(rw, r)
	})
}

func (rc *Receiver) wroteHeader(w *statusWriter) bool { return w.status != 0 }

// recovered logs a panic that serving the request reqID (to path) met and returns the
// reply the sender gets, on either front.
func (rc *Receiver) recovered(reqID, path string, p any) core.Reply {
	rc.Logger.Error("panic in receiver", "request_id", reqID, "path", path, "panic", fmt.Sprint(p))
	return core.ErrorReply(http.StatusInternalServerError, "internal error (request "+reqID+")")
}

// newRequestID returns a random UUID (version 4), as uuid.NewString does, without reading
// the random bytes through an io.Reader, which put them on the heap.
func newRequestID() string {
	var id uuid.UUID
	_, _ = rand.Read(id[:])   // crypto/rand.Read never fails (it crashes the program instead)
	id[6] = id[6]&0x0f | 0x40 // version 4
	id[8] = id[8]&0x3f | 0x80 // variant 10
	return id.String()
}

func (rc *Receiver) maxBody() int64 {
	if rc.MaxBody > 0 {
		return rc.MaxBody
	}
	return DefaultMaxBody
}

// refusal is a request refused while its body is read.
type refusal struct {
	status   int
	msg      string // recorded
	public   string // what the sender reads
	bodyRead bool   // some of the body was read
}

// The refusals of a body, as both fronts word them: announced over the limit, found over
// it while read, unreadable.
func refuseAnnounced(length, limit int64) *refusal {
	msg := fmt.Sprintf("body of %d bytes is over the limit of %d bytes", length, limit)
	return &refusal{status: http.StatusRequestEntityTooLarge, msg: msg, public: msg}
}

func refuseOverLimit(limit int64) *refusal {
	msg := fmt.Sprintf("body is over the limit of %d bytes", limit)
	return &refusal{status: http.StatusRequestEntityTooLarge, msg: msg, public: msg, bodyRead: true}
}

func refuseUnreadable(err error) *refusal {
	return &refusal{status: http.StatusBadRequest, msg: "cannot read body: " + err.Error(), public: "cannot read the body", bodyRead: true}
}

// readBody reads the body within the limit; a refusal refuses the request.
func (rc *Receiver) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *refusal) {
	if r.ContentLength > rc.maxBody() {
		return nil, refuseAnnounced(r.ContentLength, rc.maxBody())
	}
	body, err := readAll(http.MaxBytesReader(w, r.Body, rc.maxBody()), r.ContentLength)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, refuseOverLimit(rc.maxBody())
		}
		return nil, refuseUnreadable(err)
	}
	return body, nil
}

// readAll is io.ReadAll into a buffer of the announced length (plus one byte, to see the
// end without growing it), so a typical body is one allocation instead of several.
func readAll(r io.Reader, length int64) ([]byte, error) {
	if length <= 0 || length > 1<<30 {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, length+1)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) { // longer than announced: grow as io.ReadAll does
			b = append(b, 0)[:len(b)]
		}
	}
}

// A body over the limit is answered 413 with "Connection: close" at once; then up to
// MaxDrain bytes of it are read and discarded, for at most DrainTimeout, before the
// connection closes. A sender that writes its whole body before it reads (most HTTP
// clients do) would otherwise have its connection reset, since closing a connection
// with unread data makes the kernel answer with a reset, and a sender that sees a reset
// retries where a 413 tells it not to.
const (
	MaxDrain     = 16 << 20
	DrainTimeout = 10 * time.Second
)

// answerTooLarge writes a 413 reply and drains the body (see MaxDrain).
func (rc *Receiver) answerTooLarge(w http.ResponseWriter, r *http.Request, rep core.Reply, bodyRead bool) {
	ctl := http.NewResponseController(w)
	_ = ctl.EnableFullDuplex() // read the body after answering (HTTP/1.x; HTTP/2 always can)
	w.Header().Set("Connection", "close")
	writeReply(w, rep)
	if err := ctl.Flush(); err != nil {
		return
	}
	if !bodyRead && strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		return // the sender waits for a 100 Continue that never comes: it sends no body
	}
	_ = ctl.SetReadDeadline(time.Now().Add(DrainTimeout))
	_, _ = io.CopyN(io.Discard, r.Body, MaxDrain)
}

func (rc *Receiver) incoming(r *http.Request, body []byte) *core.Incoming {
	return &core.Incoming{
		Method:   r.Method,
		Path:     r.URL.Path,
		RawQuery: r.URL.RawQuery,
		Header:   r.Header, // the request's own: the delivery is over before the request is
		Body:     body,
		URL:      strings.TrimRight(rc.Core.PublicURL, "/") + r.URL.RequestURI(),
		Received: time.Now().UTC(),
	}
}

func (rc *Receiver) serveSubscription(w http.ResponseWriter, r *http.Request) {
	rc.serveHookHTTP(w, r, false)
}

func (rc *Receiver) serveGlobal(w http.ResponseWriter, r *http.Request) {
	rc.serveHookHTTP(w, r, true)
}

// serveHookHTTP serves a hook URL on the net/http front (hook.go).
func (rc *Receiver) serveHookHTTP(w http.ResponseWriter, r *http.Request, global bool) {
	ans := rc.serveHook(&hookRequest{
		ctx: r.Context(), reqID: requestID(w), global: global, id: r.PathValue("id"), size: r.ContentLength,
		readBody: func() ([]byte, *refusal) { return rc.readBody(w, r) },
		incoming: func(body []byte) *core.Incoming { return rc.incoming(r, body) },
	})
	if ans.tooLarge != nil {
		rc.answerTooLarge(w, r, ans.reply, ans.tooLarge.bodyRead)
		return
	}
	writeReply(w, ans.reply)
}
