package apptest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Request is a request an Endpoint received.
type Request struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte
}

// Endpoint is a loopback HTTP server (127.0.0.1) standing for a third party's endpoint:
// it records every request and answers with its handler.
type Endpoint struct {
	*httptest.Server
	mu       sync.Mutex
	reqs     []Request
	answered int
	changed  chan struct{} // closed and replaced at every answer
}

// Handler answers the n-th request (1-based) an Endpoint received; body is its body.
type Handler func(w http.ResponseWriter, r *http.Request, n int, body []byte)

// NewEndpoint starts an Endpoint, closed when the test ends. A nil handle answers 204.
func NewEndpoint(t testing.TB, handle Handler) *Endpoint {
	t.Helper()
	e := &Endpoint{changed: make(chan struct{})}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.reqs = append(e.reqs, Request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		n := len(e.reqs)
		e.mu.Unlock()
		if handle == nil {
			w.WriteHeader(http.StatusNoContent)
		} else {
			handle(w, r, n, body)
		}
		e.mu.Lock()
		e.answered++
		close(e.changed)
		e.changed = make(chan struct{})
		e.mu.Unlock()
	}))
	t.Cleanup(e.Close)
	return e
}

// Requests returns the requests received so far.
func (e *Endpoint) Requests() []Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Request(nil), e.reqs...)
}

// WaitFor waits until the endpoint has answered at least n requests (failing the test
// after 20 s) and returns them all.
func (e *Endpoint) WaitFor(t testing.TB, n int) []Request {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		e.mu.Lock()
		got, changed := e.answered, e.changed
		e.mu.Unlock()
		if got >= n {
			return e.Requests()
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("the endpoint got %d requests, want at least %d", got, n)
			return nil
		}
	}
}
