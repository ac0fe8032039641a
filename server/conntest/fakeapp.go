package conntest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/hookmap/hookmap/engine/httpbody"
)

// fakeApp is the runner's outbound HTTP client: it plays the app. Each request the
// connector sends is checked against the next exchange of the current step's app list
// and answered with that exchange's response. Nothing goes to the network.
type fakeApp struct {
	mu     sync.Mutex
	run    *testRun // the test being run; nil between steps
	script []*exchange
	next   int
	c      *checker
	// off is true once a request went elsewhere than expected (another method or path):
	// the step's expectations are then not checked, they would only repeat it.
	off bool
}

// begin installs a step's exchanges.
func (f *fakeApp) begin(tr *testRun, script []*exchange, c *checker) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.run, f.script, f.next, f.c, f.off = tr, script, 0, c, false
}

// end reports the exchanges the connector did not make and clears the script; it
// returns whether the requests went elsewhere than expected.
func (f *fakeApp) end() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := f.next; f.c != nil && i < len(f.script); i++ {
		f.c.fail(f.script[i].node, "expected request %d of this step, got none (the connector sent %d)", i+1, f.next)
	}
	off := f.off
	f.run, f.script, f.next, f.c = nil, nil, 0, nil
	return off
}

// Do implements engine.HTTPDoer.
func (f *fakeApp) Do(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	f.mu.Lock()
	tr, c := f.run, f.c
	if tr == nil {
		f.mu.Unlock()
		return nil, fmt.Errorf("hookmap test: %s %s outside a step", req.Method, req.URL)
	}
	if f.next >= len(f.script) {
		f.off = true
		at := tr.stepNode
		f.mu.Unlock()
		c.fail(at, "expected no more requests in this step (its app lists %d), got %s %s", len(f.script), req.Method, req.URL)
		return answer(req, http.StatusInternalServerError, nil, []byte(`{"error":"hookmap test: unexpected request"}`)), nil
	}
	n := f.next
	x := f.script[n]
	f.next++
	f.mu.Unlock()

	got := requestResult(req, body)
	where := fmt.Sprintf("request %d", n+1)
	before := len(c.fails)
	for _, k := range []string{"method", "url", "path"} {
		if e := x.request[k]; e != nil {
			v, present := got[k]
			e.m.match(c, where+" "+k, v, present)
		}
	}
	if len(c.fails) > before {
		// Another call than the one expected: answering it with that one's response
		// would only mislead the connector further.
		f.mu.Lock()
		f.off = true
		f.mu.Unlock()
		return answer(req, http.StatusInternalServerError, nil, []byte(`{"error":"hookmap test: not the expected request"}`)), nil
	}
	for _, k := range []string{"query", "headers", "body"} {
		if e := x.request[k]; e != nil {
			v, present := got[k]
			e.m.match(c, where+" "+k, v, present)
		}
	}
	if x.call != nil {
		tr.call(x.call, c)
	}
	status, header, respBody, err := tr.response(x)
	if err != nil {
		c.fail(x.node, "cannot build the response: %s", err)
		return answer(req, http.StatusInternalServerError, nil, nil), nil
	}
	return answer(req, status, header, respBody), nil
}

func answer(req *http.Request, status int, h http.Header, body []byte) *http.Response {
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: req,
	}
}

// requestResult is what a request expectation is checked against: method, url (without
// the query), path (as sent, percent-encoded), query, headers and the body parsed by its
// Content-Type.
func requestResult(req *http.Request, body []byte) map[string]any {
	u := *req.URL
	u.RawQuery, u.Fragment = "", ""
	q := map[string]any{}
	for k, vs := range req.URL.Query() {
		if len(vs) == 1 {
			q[k] = vs[0]
			continue
		}
		l := make([]any, len(vs))
		for i, v := range vs {
			l[i] = v
		}
		q[k] = l
	}
	parsed, err := httpbody.Parse(req.Header.Get("Content-Type"), body)
	if err != nil {
		parsed = string(body)
	}
	return map[string]any{
		"method": req.Method, "url": u.String(), "path": req.URL.EscapedPath(),
		"query": q, "headers": req.Header, "body": parsed,
	}
}
