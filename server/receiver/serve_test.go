package receiver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/hookmap/hookmap/server/internal/corefixture"
	"github.com/hookmap/hookmap/server/store"
)

// testServer serves rc on 127.0.0.1 with both fronts as the binary does, and counts the
// requests each front's server read (the Fast front's include those it hands to the
// net/http handler).
type testServer struct {
	addr       string
	srv        *Server
	fast, std  atomic.Int64
	serveEnded chan error
}

func startServer(t *testing.T, rc *Receiver) *testServer {
	return startServerWith(t, rc, rc.Handler())
}

// startServerWith is startServer with h as the HTTP port's net/http handler.
func startServerWith(t *testing.T, rc *Receiver, h http.Handler) *testServer {
	t.Helper()
	ts := &testServer{serveEnded: make(chan error, 1)}
	std := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.std.Add(1)
		h.ServeHTTP(w, r)
	})
	fs := rc.FastServer(NetHTTP(h, testHandOverLimit), rc.Logger)
	fastHandler := fs.Handler
	fs.Handler = func(ctx *fasthttp.RequestCtx) {
		ts.fast.Add(1)
		fastHandler(ctx)
	}
	ts.srv = &Server{HTTP: &http.Server{Handler: std, ReadHeaderTimeout: 10 * time.Second}, Fast: fs,
		FirstRequestTimeout: 300 * time.Millisecond}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ts.addr = lis.Addr().String()
	go func() { ts.serveEnded <- ts.srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ts.srv.Shutdown(ctx)
		_ = ts.srv.Close()
	})
	return ts
}

// rawConn is one client connection whose requests are written by hand.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func (ts *testServer) dial(t *testing.T) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

// do writes a request (its head without the final blank line, then body) and reads the
// response, whose body it returns read.
func (rc *rawConn) do(head, body string) (*http.Response, string) {
	rc.t.Helper()
	_, err := io.WriteString(rc.c, head+"\r\n\r\n"+body)
	require.NoError(rc.t, err)
	return rc.read()
}

func (rc *rawConn) read() (*http.Response, string) {
	rc.t.Helper()
	resp, err := http.ReadResponse(rc.br, nil)
	require.NoError(rc.t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(rc.t, err)
	return resp, string(b)
}

func postHead(path string, n int, extra ...string) string {
	h := []string{"POST " + path + " HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
		fmt.Sprintf("Content-Length: %d", n)}
	return strings.Join(append(h, extra...), "\r\n")
}

// testHandOverLimit is the bound of a body NetHTTP hands over, as the app sets it by
// default (the JSON API's message bound).
const testHandOverLimit = 8 << 20

const okBody = `{"id": "w-1", "action": "opened", "user": {"login": "o"}}`

// TestServerRoutesByFirstRequest: a connection whose first request is to a hook URL is
// the Fast front's, any other the net/http front's, and either answers every request a
// connection sends next, hook or not.
func TestServerRoutesByFirstRequest(t *testing.T) {
	rc, sub := testReceiver(t, slog.New(slog.DiscardHandler), false)
	ts := startServer(t, rc)

	hooks := ts.dial(t)
	resp, body := hooks.do(postHead("/hooks/"+sub.ID, len(okBody)), okBody)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.JSONEq(t, `{"received": 1}`, body)
	require.NotEmpty(t, resp.Header.Get("X-Request-Id"))
	require.EqualValues(t, 1, ts.fast.Load(), "a hook connection is the Fast front's")
	require.EqualValues(t, 0, ts.std.Load())
	resp, body = hooks.do("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, `{"status": "ok"}`, body)
	require.EqualValues(t, 2, ts.fast.Load(), "it stays the Fast front's")
	resp, body = hooks.do(postHead("/hooks/no-such-subscription", 2), "{}")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.JSONEq(t, `{"error": {"code": 404, "message": "unknown subscription"}}`, body)

	other := ts.dial(t)
	resp, _ = other.do("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.EqualValues(t, 3, ts.fast.Load())
	require.EqualValues(t, 1, ts.std.Load(), "any other connection is the net/http front's")
	resp, body = other.do(postHead("/hooks/"+sub.ID, len(okBody)), okBody)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.JSONEq(t, `{"received": 1}`, body)
	require.EqualValues(t, 2, ts.std.Load(), "and stays its, hooks and all")
	require.EqualValues(t, 3, ts.fast.Load())

	// Paths the Fast front does not parse go to net/http's rules, on either front.
	resp, _ = ts.dial(t).do(postHead("/hooks/"+sub.ID+"/extra", 2), "{}")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, _ = ts.dial(t).do(postHead("/hooks/x/../"+sub.ID, 2), "{}")
	require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode, "net/http redirects to the clean path")
	require.Equal(t, "/hooks/"+sub.ID, resp.Header.Get("Location"))
	resp, body = ts.dial(t).do("CONNECT /hooks/"+sub.ID+" HTTP/1.1\r\nHost: 127.0.0.1", "")
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, body)
}

// TestFastFrontHandsOverWithItsOwnContext: a request the Fast front hands to the net/http
// handler has a context of its own, ended when the handler returns, not the connection's
// RequestCtx, which fasthttp reuses for the next request (a context derived from it was
// read after that, a data race).
func TestFastFrontHandsOverWithItsOwnContext(t *testing.T) {
	rc, sub := testReceiver(t, slog.New(slog.DiscardHandler), false)
	seen := make(chan context.Context, 1)
	mux := http.NewServeMux()
	mux.Handle("/", rc.Handler())
	mux.HandleFunc("/probe", func(w http.ResponseWriter, r *http.Request) { seen <- r.Context() })
	ts := startServerWith(t, rc, mux)
	c := ts.dial(t)
	resp, _ := c.do(postHead("/hooks/"+sub.ID, len(okBody)), okBody)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = c.do("GET /probe HTTP/1.1\r\nHost: 127.0.0.1", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.EqualValues(t, 2, ts.fast.Load())
	ctx := <-seen
	require.NotEqual(t, "*fasthttp.RequestCtx", fmt.Sprintf("%T", ctx))
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the handed-over request's context did not end with it")
	}
}

// TestFastFrontHandsOverBoundedBodies: a request the Fast front hands to net/http gets its
// whole body, beyond the hooks' limit, up to its bound (testHandOverLimit); over it, a 413 (the
// adaptor would have read any body into memory).
func TestFastFrontHandsOverBoundedBodies(t *testing.T) {
	rc, sub := testReceiver(t, slog.New(slog.DiscardHandler), false)
	mux := http.NewServeMux()
	mux.Handle("/", rc.Handler())
	mux.HandleFunc("/size", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = fmt.Fprint(w, len(b))
	})
	ts := startServerWith(t, rc, mux)
	hookFirst := func() *rawConn {
		c := ts.dial(t)
		resp, _ := c.do(postHead("/hooks/"+sub.ID, len(okBody)), okBody)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return c
	}
	c := hookFirst()
	within := strings.Repeat("x", 2<<20) // over the hooks' 1 MiB
	resp, body := c.do("POST /size HTTP/1.1\r\nHost: 127.0.0.1\r\n"+fmt.Sprintf("Content-Length: %d", len(within)), within)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Equal(t, fmt.Sprint(len(within)), body)
	require.EqualValues(t, 2, ts.fast.Load())

	c = hookFirst()
	over := strings.Repeat("x", testHandOverLimit+1)
	head := "POST /size HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked"
	resp, body = c.do(head, fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(over), over))
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, body)
	require.Contains(t, body, "over the limit of 8388608 bytes")
	require.True(t, resp.Close)
}

// TestFrontsRecordTheSameRequest: a webhook kept for replay (its handle failed) is kept
// the same whichever front read it: method, path, query, headers (names canonical, no
// Host), body; and both answer it alike.
func TestFrontsRecordTheSameRequest(t *testing.T) {
	rc, sub := testReceiver(t, slog.New(slog.DiscardHandler), false)
	ts := startServer(t, rc)
	const failing = `{"id": "w-1"}` // no action: the handle fails, the request is kept
	head := postHead("/hooks/"+sub.ID+"?a=1&b=%20x", len(failing), "x-lower-case: v1", "X-Twice: 1", "X-Twice: 2",
		"User-Agent: sender/1")
	kept := func(first string) (*http.Response, map[string]any, *store.RawRequest) {
		c := ts.dial(t)
		if first != "" {
			resp, _ := c.do(first, "")
			require.Equal(t, http.StatusOK, resp.StatusCode)
		}
		resp, body := c.do(head, failing)
		var reply map[string]any
		require.NoError(t, json.Unmarshal([]byte(body), &reply), body)
		id, _ := reply["delivery_id"].(string)
		require.NotEmpty(t, id, body)
		d, err := rc.Core.Store.GetDelivery(context.Background(), corefixture.Workspace, id)
		require.NoError(t, err)
		require.Equal(t, store.OutcomeFailed, d.Outcome)
		require.NotNil(t, d.Request)
		delete(reply, "delivery_id")
		return resp, reply, d.Request
	}
	fastResp, fastReply, fastReq := kept("")
	require.Zero(t, ts.std.Load(), "the first went through the Fast front")
	stdResp, stdReply, stdReq := kept("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1")
	require.EqualValues(t, 2, ts.std.Load(), "the second through net/http")
	require.Equal(t, stdResp.StatusCode, fastResp.StatusCode)
	require.Equal(t, stdResp.Header.Get("Content-Type"), fastResp.Header.Get("Content-Type"))
	require.Equal(t, stdReply, fastReply)
	require.Equal(t, stdReq.Method, fastReq.Method)
	require.Equal(t, stdReq.Path, fastReq.Path)
	require.Equal(t, "a=1&b=%20x", fastReq.Query)
	require.Equal(t, stdReq.Query, fastReq.Query)
	require.Equal(t, failing, string(fastReq.Body))
	require.Equal(t, stdReq.Body, fastReq.Body)
	require.Equal(t, []string{"v1"}, fastReq.Headers["X-Lower-Case"])
	require.Equal(t, []string{"1", "2"}, fastReq.Headers["X-Twice"])
	require.NotContains(t, fastReq.Headers, "Host")
	require.Equal(t, stdReq.Headers, fastReq.Headers)
}

// TestFastFrontRefusesLargeBodies: over the limit, announced or chunked, a body is
// answered 413 in JSON, the connection closed after it, and the refusal recorded; within
// it, a chunked body is read whole.
func TestFastFrontRefusesLargeBodies(t *testing.T) {
	rc, sub := testReceiver(t, slog.New(slog.DiscardHandler), false)
	rc.MaxBody = 1024
	ts := startServer(t, rc)
	big := `{"pad": "` + strings.Repeat("x", 4000) + `"}`
	chunked := func(body string) string {
		return fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)
	}
	chunkedHead := "POST /hooks/" + sub.ID + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked"
	for name, req := range map[string][2]string{
		"announced": {postHead("/hooks/"+sub.ID, len(big)), big},
		"chunked":   {chunkedHead, chunked(big)},
	} {
		t.Run(name, func(t *testing.T) {
			c := ts.dial(t)
			resp, body := c.do(req[0], req[1])
			require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, body)
			require.Contains(t, body, "over the limit of 1024 bytes")
			var reply struct {
				DeliveryID string `json:"delivery_id"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &reply))
			d, err := rc.Core.Store.GetDelivery(context.Background(), corefixture.Workspace, reply.DeliveryID)
			require.NoError(t, err)
			require.Equal(t, store.OutcomeRejected, d.Outcome)
			require.True(t, resp.Close, "the connection closes after the 413")
			_, err = c.br.ReadByte()
			require.ErrorIs(t, err, io.EOF)
		})
	}
	t.Run("answered before the rest of the body is sent", func(t *testing.T) {
		c := ts.dial(t)
		// The server reads the first 8 KiB of a body, or up to the limit, before it answers.
		_, err := io.WriteString(c.c, postHead("/hooks/"+sub.ID, len(big))+"\r\n\r\n"+big[:1024])
		require.NoError(t, err)
		resp, body := c.read()
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, body)
		require.True(t, resp.Close)
		_, err = io.WriteString(c.c, big[1024:]) // drained, then the connection closes
		require.NoError(t, err)
		_, err = c.br.ReadByte()
		require.ErrorIs(t, err, io.EOF)
	})
	t.Run("expect 100-continue", func(t *testing.T) {
		c := ts.dial(t)
		_, err := io.WriteString(c.c, postHead("/hooks/"+sub.ID, len(big), "Expect: 100-continue")+"\r\n\r\n")
		require.NoError(t, err)
		resp, _ := c.read()
		require.Equal(t, http.StatusContinue, resp.StatusCode)
		_, err = io.WriteString(c.c, big)
		require.NoError(t, err)
		resp, body := c.read()
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, body)
	})
	t.Run("chunked within the limit", func(t *testing.T) {
		resp, body := ts.dial(t).do(chunkedHead, chunked(okBody))
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		require.JSONEq(t, `{"received": 1}`, body)
	})
	t.Run("header within 16 KiB", func(t *testing.T) {
		resp, body := ts.dial(t).do(postHead("/hooks/"+sub.ID, len(okBody), "X-Big: "+strings.Repeat("h", 12<<10)), okBody)
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
	})
	t.Run("header over 16 KiB", func(t *testing.T) {
		// Far over, with Go's client, which fails a request whose write fails: the server
		// answers while the header is still arriving, and its close must not reset the
		// connection before the client has read the answer. (A reset is a race: without
		// the server's lingering close about one request in three lost it here.)
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		for range 10 {
			req, err := http.NewRequest(http.MethodPost, "http://"+ts.addr+"/hooks/"+sub.ID, strings.NewReader("{}"))
			require.NoError(t, err)
			req.Header.Set("X-Big", strings.Repeat("h", 512<<10))
			resp, err := client.Do(req)
			require.NoError(t, err)
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode, string(b))
			require.Contains(t, string(b), `"code":431`)
		}
	})
}

// TestServerClosesSilentConnections: a connection that sends no request line within the
// first request timeout is closed, by neither front.
func TestServerClosesSilentConnections(t *testing.T) {
	rc, _ := testReceiver(t, slog.New(slog.DiscardHandler), false)
	ts := startServer(t, rc)
	c := ts.dial(t)
	_, err := io.WriteString(c.c, "POS") // not enough to tell
	require.NoError(t, err)
	_, err = c.br.ReadByte()
	require.ErrorIs(t, err, io.EOF)
	require.Zero(t, ts.fast.Load()+ts.std.Load())
}

// TestServerShutdown: Shutdown ends Serve with http.ErrServerClosed and closes the idle
// connections of both fronts; no connection is accepted after it.
func TestServerShutdown(t *testing.T) {
	rc, sub := testReceiver(t, slog.New(slog.DiscardHandler), false)
	ts := startServer(t, rc)
	hooks, other := ts.dial(t), ts.dial(t)
	resp, _ := hooks.do(postHead("/hooks/"+sub.ID, len(okBody)), okBody)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = other.do("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, ts.srv.Shutdown(ctx))
	require.ErrorIs(t, <-ts.serveEnded, http.ErrServerClosed)
	for _, c := range []*rawConn{hooks, other} {
		_, err := c.br.ReadByte()
		require.ErrorIs(t, err, io.EOF)
	}
	_, err := net.DialTimeout("tcp", ts.addr, time.Second)
	require.Error(t, err)
}

func TestIsHookRequestLine(t *testing.T) {
	for _, c := range []struct {
		line          string
		hook, decided bool
	}{
		{"POST /hooks/abc HTTP/1.1", true, true},
		{"GET /hooks/", true, true},
		{"PUT /hooks", false, false},   // could still be /hooks/
		{"POST /hook", false, false},   // likewise
		{"POST /healthz", false, true}, // cannot be
		{"GET / HTTP/1.1", false, true},
		{"POST", false, false},
		{"VERYLONGMETHODNAMEX /hooks/", false, true},
		{" /hooks/", false, true},
		{"POST http://host/hooks/x HTTP/1.1", false, true}, // absolute form: net/http's
		{"\x16\x03\x01", false, false},                     // a TLS hello: undecided until more arrives
	} {
		hook, decided := isHookRequestLine([]byte(c.line))
		require.Equal(t, c.hook, hook, c.line)
		require.Equal(t, c.decided, decided, c.line)
	}
}

// TestServerEndsWithAFront: a front that stops on its own (here the fasthttp server shut
// down by itself) ends Serve with its error instead of leaving the port half served.
func TestServerEndsWithAFront(t *testing.T) {
	rc, _ := testReceiver(t, slog.New(slog.DiscardHandler), false)
	ts := startServer(t, rc)
	resp, _ := ts.dial(t).do(postHead("/hooks/no-such-subscription", 2), "{}") // the Fast front serves
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.EqualValues(t, 1, ts.fast.Load())
	require.NoError(t, ts.srv.Fast.Shutdown())
	select {
	case err := <-ts.serveEnded:
		require.ErrorContains(t, err, "the fasthttp front: stopped")
	case <-time.After(5 * time.Second):
		t.Fatal("Serve went on with one front")
	}
	_, err := net.DialTimeout("tcp", ts.addr, time.Second)
	require.Error(t, err, "the listener is closed")
}

// panickyStore's subscription lookup panics for the id "panic".
type panickyStore struct{ store.Store }

func (s panickyStore) LookupSubscription(ctx context.Context, id string) (*store.Subscription, error) {
	if id == "panic" {
		panic("lookup exploded")
	}
	return s.Store.LookupSubscription(ctx, id)
}

// TestPanicAnsweredOnBothFronts: a panic while serving a hook request is logged and
// answered 500 with the request's id, on either front, and the connection serves on.
func TestPanicAnsweredOnBothFronts(t *testing.T) {
	var logs bytes.Buffer
	rc, sub := testReceiver(t, slog.New(slog.NewJSONHandler(&logs, nil)), false)
	rc.Core.Store = panickyStore{rc.Core.Store}
	ts := startServer(t, rc)
	for _, first := range []string{"", "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1"} { // the Fast front, then net/http
		c := ts.dial(t)
		if first != "" {
			resp, _ := c.do(first, "")
			require.Equal(t, http.StatusOK, resp.StatusCode)
		}
		logs.Reset()
		resp, body := c.do(postHead("/hooks/panic", 2), "{}")
		require.Equal(t, http.StatusInternalServerError, resp.StatusCode, body)
		id := resp.Header.Get("X-Request-Id")
		require.NotEmpty(t, id)
		require.JSONEq(t, `{"error": {"code": 500, "message": "internal error (request `+id+`)"}}`, body)
		require.Contains(t, logs.String(), `"msg":"panic in receiver"`)
		require.Contains(t, logs.String(), id)
		resp, body = c.do(postHead("/hooks/"+sub.ID, len(okBody)), okBody)
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
	}
	require.EqualValues(t, 2, ts.fast.Load())
}
