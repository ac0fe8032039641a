package rest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/engine/mapping"
	"github.com/hookmap/hookmap/engine/yamlsrc"
)

var vars = []string{"connection", "credentials", "connectorParameters", "parameters", "state"}

func compile(t *testing.T, src string) *Method {
	t.Helper()
	f, err := yamlsrc.Parse([]byte(src))
	require.NoError(t, err)
	m, probs := Compile(f, "x.rest.yml", vars)
	require.Empty(t, probs)
	return m
}

func apiFor(t *testing.T, base string, timeout time.Duration) *API {
	t.Helper()
	f, err := yamlsrc.Parse([]byte(`{base: "` + base + `", headers: {X-Key: {$cel: 'credentials.?key.orValue("none")'}, X-Gone: "x"}}`))
	require.NoError(t, err)
	env, err := mapping.NewEnv("connection", "credentials", "connectorParameters")
	require.NoError(t, err)
	c := &mapping.Compiler{Env: env, File: f, Path: "spec.yml"}
	pairs, _ := yamlsrc.Pairs(f.Root)
	api := &API{BaseURI: c.Compile(pairs[0].Value), Headers: c.Compile(pairs[1].Value), Timeout: timeout}
	require.Empty(t, c.Problems)
	return api
}

type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

func (r *recorder) handler(status int, ct, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, req)
		r.body = append(r.body, string(b))
		r.mu.Unlock()
		if ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

func TestRequestBuilding(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec.handler(200, "application/json", `{"id": 1234567, "ok": true}`))
	defer srv.Close()
	m := compile(t, `
path: /v1/{kind}/{id}
method: put
requestMapping:
  pathParameters: {kind: items, id: {$cel: parameters.id}}
  query: {tags: [a, b], empty: null, n: 3}
  headers: {X-Gone: null, X-Extra: {$cel: '"e"'}}
  data: {name: {$cel: parameters.name}, n: 1234567}
responseMapping:
  id: {$cel: response.data.id}
  status: {$cel: response.statusCode}
  multi: {$cel: 'response.headers["x-multi"]'}
`)
	s := mapping.NewScope(context.Background(), map[string]any{"parameters": map[string]any{"id": "a b/c", "name": "N"}, "credentials": map[string]any{"key": "k"}})
	out, err := m.Run(s, apiFor(t, srv.URL+"/api/", time.Second), Options{HTTP: srv.Client()})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"id": int64(1234567), "status": int64(200), "multi": "a, b"}, out)
	req := rec.reqs[0]
	require.Equal(t, "PUT", req.Method)
	require.Equal(t, "/api/v1/items/a%20b%2Fc", req.URL.EscapedPath())
	require.Equal(t, url.Values{"tags": {"a", "b"}, "n": {"3"}}, req.URL.Query())
	require.Equal(t, "k", req.Header.Get("X-Key"))
	require.Empty(t, req.Header.Values("X-Gone"))
	require.Equal(t, "e", req.Header.Get("X-Extra"))
	require.JSONEq(t, `{"name":"N","n":1234567}`, rec.body[0])
}

func TestForm(t *testing.T) {
	out := url.Values{}
	err := encodeForm("", map[string]any{"a": "x", "n": int64(1), "f": 1.5, "b": true, "z": nil, "l": []any{"p", int64(2), nil}, "m": map[string]any{"k": "v", "d": map[string]any{"e": "f"}}, "lm": []any{map[string]any{"q": "r"}}}, out)
	require.NoError(t, err)
	require.Equal(t, url.Values{"a": {"x"}, "n": {"1"}, "f": {"1.5"}, "b": {"true"}, "l[]": {"p", "2"}, "m[k]": {"v"}, "m[d][e]": {"f"}, "lm[0][q]": {"r"}}, out)
	require.Error(t, encodeForm("", []any{1}, url.Values{}))
	require.Error(t, encodeForm("", "x", url.Values{}))
}

func TestParseBody(t *testing.T) {
	require.Nil(t, parseBody("application/json", nil))
	require.Equal(t, map[string]any{"a": int64(1)}, parseBody("application/vnd.api+json; charset=utf-8", []byte(`{"a":1}`)))
	require.Equal(t, "{broken", parseBody("application/json", []byte(`{broken`)))
	require.Equal(t, map[string]any{"a": "1", "b": []any{"x", "y"}}, parseBody("application/x-www-form-urlencoded", []byte(`a=1&b=x&b=y`)))
	require.Equal(t, "hello", parseBody("text/plain", []byte("hello")))
}

func TestStatusAndErrors(t *testing.T) {
	rec := &recorder{}
	long := strings.Repeat("é", 2000)
	srv := httptest.NewServer(rec.handler(500, "text/plain", long))
	defer srv.Close()
	m := compile(t, "path: /x\n")
	s := mapping.NewScope(context.Background(), nil)
	_, err := m.Run(s, apiFor(t, srv.URL, time.Second), Options{HTTP: srv.Client()})
	var he *HTTPError
	require.ErrorAs(t, err, &he)
	require.Equal(t, 500, he.StatusCode)
	require.LessOrEqual(t, len(he.Body), MaxErrorBody)
	require.True(t, utf8.ValidString(he.Body))

	m = compile(t, "path: /x\nallowedStatusCodes: [500]\n")
	out, err := m.Run(s, apiFor(t, srv.URL, time.Second), Options{HTTP: srv.Client()})
	require.NoError(t, err)
	require.Nil(t, out, "no responseMapping: nil")

	m = compile(t, "path: /x/{id}\nrequestMapping: {pathParameters: {id: {$cel: 'state.?id.orValue(null)'}}}\n")
	_, err = m.Run(s, apiFor(t, srv.URL, time.Second), Options{HTTP: srv.Client()})
	require.ErrorContains(t, err, "path parameter {id} is missing or null")

	_, err = compile(t, "path: /x\n").Run(s, nil, Options{HTTP: srv.Client()})
	require.ErrorContains(t, err, "api.baseUri is empty")
	out, err = compile(t, "path: "+srv.URL+"/abs\nallowedStatusCodes: [500]\n").Run(s, nil, Options{HTTP: srv.Client()})
	require.NoError(t, err)
	require.Nil(t, out)
	require.Equal(t, "/abs", rec.reqs[len(rec.reqs)-1].URL.Path)
}

func TestTimeout(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	m := compile(t, "path: /slow\n")
	start := time.Now()
	_, err := m.Run(mapping.NewScope(context.Background(), nil), apiFor(t, srv.URL, 50*time.Millisecond), Options{HTTP: srv.Client()})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestRequests(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec.handler(200, "application/json", `{"found": false}`))
	defer srv.Close()
	m := compile(t, `
requests:
  - key: lookup
    path: /find
  - key: create
    when: '!responses.lookup.data.found'
    path: /create
    method: POST
    requestMapping: {data: {prev: {$cel: responses.lookup.statusCode}}}
  - key: never
    when: 'has(responses.nope)'
    path: /never
responseMapping:
  keys: {$cel: 'responses.map(k, k)'}
  last: {$cel: response.statusCode}
`)
	out, err := m.Run(mapping.NewScope(context.Background(), nil), apiFor(t, srv.URL, time.Second), Options{HTTP: srv.Client()})
	require.NoError(t, err)
	keys := out.(map[string]any)["keys"].([]any)
	require.ElementsMatch(t, []any{"lookup", "create"}, keys)
	require.Equal(t, int64(200), out.(map[string]any)["last"])
	require.Len(t, rec.reqs, 2)
	require.JSONEq(t, `{"prev":200}`, rec.body[1])
}

func TestCompileProblems(t *testing.T) {
	for src, want := range map[string]string{
		"path: /x\nmethod: FETCH\n":                        "method must be one of",
		"path: /x/{id}\n":                                  "path placeholder {id} needs requestMapping.pathParameters.id",
		"requests: []\n":                                   "requests must be a non-empty list",
		"requests: [{key: a, path: /a}]\npath: /b\n":       "path belongs inside each item of requests",
		"path: /x\nrequestMapping: {body: {}}\n":           `unknown key "body" in requestMapping`,
		"path: /x\nallowedStatusCodes: [abc]\n":            `"abc" is not an HTTP status code`,
		"- a\n":                                            "must be a mapping",
		"requests: [{key: 'a b', path: /a}]\n":             "a request key must be a name",
		"path: /x\nresponseMapping: {$cel: responses}\n":   "undeclared reference to 'responses'",
		"requests: [{key: a, path: /a, when: '1 + 1'}]\n":  "the condition must be a bool",
		"path: /x\nrequestMapping: {data: {$cel: nope}}\n": "undeclared reference to 'nope'",
	} {
		f, err := yamlsrc.Parse([]byte(src))
		require.NoError(t, err, src)
		_, probs := Compile(f, "x.rest.yml", vars)
		require.NotEmpty(t, probs, src)
		var msgs []string
		for _, p := range probs {
			require.Positive(t, p.Line, src)
			msgs = append(msgs, p.Message)
		}
		require.Contains(t, strings.Join(msgs, "\n"), want, src)
	}
}

func TestParseTimeout(t *testing.T) {
	for in, want := range map[string]time.Duration{"10s": 10 * time.Second, "1m30s": 90 * time.Second, "2": 2 * time.Second, "0.5": 500 * time.Millisecond} {
		f, _ := yamlsrc.Parse([]byte(in))
		d, err := ParseTimeout(f.Root)
		require.NoError(t, err, in)
		require.Equal(t, want, d, in)
	}
	for _, in := range []string{"fast", "-1s", "0", "[1]"} {
		f, _ := yamlsrc.Parse([]byte(in))
		_, err := ParseTimeout(f.Root)
		require.Error(t, err, in)
	}
}

func TestPaginationLinkHeaderAndCursor(t *testing.T) {
	var mu sync.Mutex
	var auths []string
	mux := http.NewServeMux()
	// GitHub style: Link header with absolute URLs
	mux.HandleFunc("/hooks", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("X-Key"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Query().Get("page") {
		case "", "1":
			w.Header().Set("Link", `<http://`+r.Host+`/hooks?page=2>; rel="next", <http://`+r.Host+`/hooks?page=3>; rel="last"`)
			_, _ = io.WriteString(w, `[{"id": 1}, {"id": 2}]`)
		case "2":
			w.Header().Set("Link", `</hooks?page=3>; rel="next"`)
			_, _ = io.WriteString(w, `[{"id": 3}]`)
		default:
			_, _ = io.WriteString(w, `[{"id": 4}]`)
		}
	})
	// Stripe style: has_more + starting_after
	mux.HandleFunc("/endpoints", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		require.Equal(t, "2", r.URL.Query().Get("limit"))
		switch r.URL.Query().Get("starting_after") {
		case "":
			_, _ = io.WriteString(w, `{"data": [{"id": "we_1"}, {"id": "we_2"}], "has_more": true}`)
		case "we_2":
			_, _ = io.WriteString(w, `{"data": [{"id": "we_3"}], "has_more": false}`)
		default:
			w.WriteHeader(400)
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	s := mapping.NewScope(context.Background(), map[string]any{"credentials": map[string]any{"key": "k"}})
	api := apiFor(t, srv.URL, time.Second)

	m := compile(t, `
path: /hooks
pagination:
  items: {$cel: response.data}
  next: {$cel: 'parseLinkHeader(response.headers.?link.orValue("")).?next.orValue("")'}
responseMapping:
  ids: {$cel: 'response.items.map(h, h.id)'}
  pages: {$cel: response.pages}
`)
	out, err := m.Run(s, api, Options{HTTP: srv.Client()})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"ids": []any{int64(1), int64(2), int64(3), int64(4)}, "pages": int64(3)}, out)
	require.Equal(t, []string{"k", "k", "k"}, auths, "every page carries the api headers")

	m = compile(t, `
path: /endpoints
requestMapping: {query: {limit: 2}}
pagination:
  items: {$cel: response.data.data}
  next: {$cel: 'response.data.has_more ? {"starting_after": response.data.data[size(response.data.data)-1].id} : {}'}
responseMapping: {$cel: 'response.items.map(e, e.id)'}
`)
	out, err = m.Run(s, api, Options{HTTP: srv.Client()})
	require.NoError(t, err)
	require.Equal(t, []any{"we_1", "we_2", "we_3"}, out)

	// a next page on another host is refused: credentials stay with the API's host
	m = compile(t, `
path: /hooks
pagination: {items: {$cel: response.data}, next: "http://other.invalid/steal"}
`)
	_, err = m.Run(s, api, Options{HTTP: srv.Client()})
	require.ErrorContains(t, err, "is not on "+srv.URL)

	// a loop is an error, not an endless crawl
	m = compile(t, `
path: /hooks
pagination: {items: {$cel: response.data}, next: "/hooks"}
`)
	_, err = m.Run(s, api, Options{HTTP: srv.Client()})
	require.ErrorContains(t, err, "already fetched")

	m = compile(t, `
path: /hooks
pagination:
  items: {$cel: response.data}
  next: {$cel: 'parseLinkHeader(response.headers.?link.orValue("")).?next.orValue("")'}
  maxPages: 2
`)
	_, err = m.Run(s, api, Options{HTTP: srv.Client()})
	require.ErrorContains(t, err, "more than 2 pages")

	m = compile(t, `
path: /hooks
pagination: {items: {$cel: "response.data[0]"}, next: null}
`)
	_, err = m.Run(s, api, Options{HTTP: srv.Client()})
	require.ErrorContains(t, err, "want a list")
}

func TestPaginationCompileErrors(t *testing.T) {
	for src, want := range map[string]string{
		"path: /x\npagination: {items: []}":                               "needs both items",
		"path: /x\npagination: {items: [], next: null, maxPages: 0}":      "maxPages must be",
		"path: /x\npagination: {items: [], next: null, pageSize: 3}":      `unknown key "pageSize" in pagination`,
		"path: /x\npagination: [1]":                                       "pagination must be a mapping",
		"path: /x\npagination: {items: {$cel: respons.data}, next: null}": "undeclared reference to 'respons'",
	} {
		f, err := yamlsrc.Parse([]byte(src))
		require.NoError(t, err)
		_, probs := Compile(f, "x.rest.yml", vars)
		require.NotEmpty(t, probs, src)
		var msgs []string
		for _, p := range probs {
			msgs = append(msgs, p.Message)
		}
		require.Contains(t, strings.Join(msgs, "\n"), want, src)
	}
}

// A credential the app wants in the path (Trello's /1/tokens/{token}/webhooks) is never
// shown in an error.
func TestErrorsHideCredentialsInThePath(t *testing.T) {
	srv := httptest.NewServer((&recorder{}).handler(401, "text/plain", "invalid token"))
	defer srv.Close()
	m := compile(t, "path: /1/tokens/{token}/webhooks\nrequestMapping: {pathParameters: {token: {$cel: credentials.token}}}\n")
	for _, tok := range []string{"ATTAa1b2c3d4e5f60718293a4b5c6d7e8f9", "tok/with spaces"} {
		s := mapping.NewScope(context.Background(), map[string]any{"credentials": map[string]any{"token": tok, "short": "abc"}})
		_, err := m.Run(s, apiFor(t, srv.URL, time.Second), Options{HTTP: srv.Client()})
		var he *HTTPError
		require.ErrorAs(t, err, &he)
		require.Equal(t, srv.URL+"/1/tokens/***/webhooks", he.URL)
		require.NotContains(t, err.Error(), tok)
		require.NotContains(t, err.Error(), url.PathEscape(tok))
	}
}
