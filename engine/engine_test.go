package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/engine/value"
)

func loadGood(t *testing.T) *Connector {
	t.Helper()
	set, diags := Load(filepath.Join("testdata", "good"))
	require.Empty(t, diags)
	c, ok := set.Connector("acme")
	require.True(t, ok)
	return c
}

func TestLoadGood(t *testing.T) {
	c := loadGood(t)
	require.Equal(t, "Acme", c.Name)
	require.Equal(t, "acme: 4 events, 1 global webhook, 12 methods", c.Summary())
	require.Equal(t, TypeWebhook, c.Events["issues"].Type)
	require.Equal(t, TypeGlobalWebhook, c.Events["messages"].Type)
	require.Contains(t, c.Events["messages"].Methods, MethodGetEventsSelector, "alias stored under the canonical name")
	require.Equal(t, TypeRESTAPIMapping, c.Events["issues"].Methods["subscribe"].Type)
	require.Equal(t, filepath.Join("testdata", "good", "acme", "events", "issues", "handle.map.yml"), c.Events["issues"].Methods["handle"].File)
	require.NotNil(t, c.CredentialsSchema)
	require.Equal(t, "object", c.CredentialsSchema.Raw()["type"])
	v := c.Events["issues"].Verify
	require.Equal(t, "github", v.Scheme)
	require.Equal(t, 5*time.Minute, v.Tolerance)
	g := c.GlobalWebhooks["app"].Verify
	require.Equal(t, "hmac", g.Scheme)
	require.Equal(t, "x-acme-signature", g.Header)
	require.Equal(t, "sha256", g.Algorithm)
	require.Equal(t, "hex", g.Encoding)
	require.Equal(t, "sha256=", g.Prefix)
	require.Equal(t, "cel", c.Events["pings"].Verify.Scheme)
}

func TestBundledConnectorsLoad(t *testing.T) {
	for _, dir := range []string{
		filepath.Join("..", "connectors", "example-webhook"),
		filepath.Join("..", "server", "app", "testdata", "connectors", "testhooks"),
		filepath.Join("..", "connectors"),
	} {
		set, diags := Load(dir)
		require.Empty(t, diags, dir)
		require.NotEmpty(t, set.Connectors(), dir)
	}
}

func TestConnectorFolderNamedByWhereItLeads(t *testing.T) {
	t.Chdir(filepath.Join("..", "connectors", "example-webhook"))
	for _, dir := range []string{".", filepath.Join("..", "example-webhook", ".")} {
		set, diags := Load(dir)
		require.Empty(t, diags, dir)
		_, ok := set.Connector("example-webhook")
		require.True(t, ok, dir)
	}
}

func TestEmptySet(t *testing.T) {
	var s *Set
	require.Empty(t, s.Connectors())
	_, ok := s.Connector("x")
	require.False(t, ok)
	set, diags := Load(t.TempDir())
	require.Empty(t, diags)
	require.Empty(t, set.Connectors())
	set, diags = Load(filepath.Join(t.TempDir(), "nope"))
	require.Len(t, diags, 1)
	require.Contains(t, diags[0].String(), "nope: cannot read the folder")
	require.Empty(t, set.Connectors())
}

func decode(t *testing.T, s string) any {
	t.Helper()
	v, err := value.DecodeString(s)
	require.NoError(t, err)
	return v
}

const issueBody = `{"action":"opened","issue":{"id":1234567,"number":42,"title":"Bug","labels":[{"name":"bug"},{"name":"p1"}],"user":{"login":"octo"}}}`

func TestRunHandle(t *testing.T) {
	c := loadGood(t)
	h := c.Events["issues"].Methods["handle"]
	out, err := h.Run(context.Background(), map[string]any{
		"data":    decode(t, issueBody),
		"headers": map[string]any{"x-github-delivery": "d-1"},
	}, RunOptions{})
	require.NoError(t, err)
	want := decode(t, `{"events":[{"type":"issue.opened","id":"d-1","record":{"id":1234567,"number":42,"title":"Bug","labels":["bug","p1"],"author":"octo","next":43,"raw":{"$cel":"not evaluated"}}}]}`)
	require.Equal(t, want, out)
	b, err := value.Encode(out)
	require.NoError(t, err)
	require.Contains(t, string(b), `"id":1234567`)

	// body is an alias of data
	out, err = h.Run(context.Background(), map[string]any{"body": decode(t, issueBody)}, RunOptions{})
	require.NoError(t, err)
	require.Nil(t, out.(map[string]any)["events"].([]any)[0].(map[string]any)["id"])

	// A missing field names the field and the formula's position.
	_, err = h.Run(context.Background(), map[string]any{"data": decode(t, `{"action":"x"}`)}, RunOptions{})
	var ee *EvalError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, h.File, ee.File)
	require.Equal(t, 4, ee.Line)
	require.Contains(t, ee.Message, "no such key: issue")
	require.True(t, strings.HasPrefix(err.Error(), h.File+":4:"), err.Error())
}

func TestRunAbsentVariables(t *testing.T) {
	c := loadGood(t)
	out, err := c.Events["reactions"].Methods[MethodGetEventsSelector].Run(context.Background(), nil, RunOptions{})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"globalWebhookKey": "app", "globalWebhookEventSelector": "T0:reaction"}, out)
	out, err = c.Events["messages"].Methods["handle"].Run(context.Background(), map[string]any{"data": map[string]any{"text": "hi"}}, RunOptions{})
	require.NoError(t, err)
	require.Equal(t, decode(t, `{"events":[{"type":"message.posted","record":{"text":"hi","channel":"any","team":null}}]}`), out)
}

func TestGlobalHandleAndVerify(t *testing.T) {
	c := loadGood(t)
	gw := c.GlobalWebhooks["app"]
	vars := map[string]any{"data": decode(t, `{"events":[{"team":"T1","type":"message","id":"e1","text":"hi"}]}`), "parameters": map[string]any{"signingSecret": "s3"}}
	out, err := gw.Handle.Run(context.Background(), vars, RunOptions{})
	require.NoError(t, err)
	require.Equal(t, decode(t, `{"events":[{"selector":"T1:message","id":"e1","payload":{"team":"T1","type":"message","id":"e1","text":"hi"}}]}`), out)
	sec, err := gw.Verify.Secret(context.Background(), vars, time.Time{})
	require.NoError(t, err)
	require.Equal(t, "s3", sec)
	_, err = gw.Verify.Secret(context.Background(), map[string]any{}, time.Time{})
	require.Error(t, err)
	_, err = gw.Verify.CheckCEL(context.Background(), vars, time.Time{})
	require.ErrorIs(t, err, ErrNotCEL)

	out, err = gw.Handle.Run(context.Background(), map[string]any{"data": map[string]any{"challenge": "abc"}}, RunOptions{})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"events": []any{}, "response": map[string]any{"status": int64(200), "data": "abc"}}, out)

	pv := c.Events["pings"].Verify
	ok, err := pv.CheckCEL(context.Background(), map[string]any{"headers": map[string]any{"x-token": "t"}, "state": map[string]any{"token": "t"}}, time.Time{})
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = pv.CheckCEL(context.Background(), map[string]any{"headers": map[string]any{}, "state": map[string]any{"token": "t"}}, time.Time{})
	require.NoError(t, err)
	require.False(t, ok)
}

// fakeAcme is a tiny fake of the Acme API.
type fakeAcme struct {
	mu    sync.Mutex
	hooks []map[string]any
	next  int64
	calls []string
	last  *http.Request
	body  string
}

func (f *fakeAcme) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, _ := io.ReadAll(r.Body)
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	f.last, f.body = r, string(b)
	if r.Header.Get("Authorization") != "Bearer tok" {
		w.WriteHeader(401)
		_, _ = w.Write([]byte(`{"message":"bad credentials"}`))
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	switch {
	case r.URL.Path == "/auth.test" && r.Method == "POST":
		_ = r.ParseForm()
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "team_id": "T9", "form": r.PostForm})
	case r.URL.Path == "/repos/o/r/hooks" && r.Method == "GET":
		_ = json.NewEncoder(w).Encode(f.hooks)
	case r.URL.Path == "/repos/o/r/hooks" && r.Method == "POST":
		var in map[string]any
		_ = json.Unmarshal(b, &in)
		f.next++
		h := map[string]any{"id": 9000000000 + f.next, "config": in["config"], "active": true}
		f.hooks = append(f.hooks, h)
		w.WriteHeader(201)
		_ = json.NewEncoder(w).Encode(h)
	case strings.HasPrefix(r.URL.Path, "/repos/o/r/hooks/") && r.Method == "PATCH":
		_, _ = w.Write([]byte(`{"active":true}`))
	case strings.HasPrefix(r.URL.Path, "/repos/o/r/hooks/") && r.Method == "DELETE":
		w.WriteHeader(204)
	default:
		w.WriteHeader(404)
		_, _ = w.Write([]byte(`{"message":"Not Found"}`))
	}
}

func TestRunREST(t *testing.T) {
	c := loadGood(t)
	fake := &fakeAcme{hooks: []map[string]any{}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	opts := RunOptions{HTTP: srv.Client()}
	conn := map[string]any{
		"connection":  map[string]any{"id": "c1", "parameters": map[string]any{"baseUri": srv.URL}},
		"credentials": map[string]any{"accessToken": "tok"},
	}
	vars := func(more map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range conn {
			m[k] = v
		}
		for k, v := range more {
			m[k] = v
		}
		return m
	}
	ev := c.Events["issues"]
	params := map[string]any{"owner": "o", "repo": "r"}
	sub := vars(map[string]any{"parameters": params, "webhookUri": "https://hm.example/hooks/abc", "webhookSecret": "sek", "subscriptionId": "sub1"})
	out, err := ev.Methods["subscribe"].Run(context.Background(), sub, opts)
	require.NoError(t, err)
	state := out.(map[string]any)["state"].(map[string]any)
	require.Equal(t, int64(9000000001), state["hookId"])
	require.Equal(t, "sek", state["secret"])
	require.Greater(t, out.(map[string]any)["nextRefreshTimestamp"], time.Now().UnixMilli())
	require.Equal(t, []string{"GET /repos/o/r/hooks", "POST /repos/o/r/hooks"}, fake.calls)
	require.Equal(t, "2024-01-01", fake.last.Header.Get("X-Api-Version"))
	require.Equal(t, "application/json", fake.last.Header.Get("Content-Type"))
	require.JSONEq(t, `{"name":"web","events":["issues"],"config":{"url":"https://hm.example/hooks/abc","secret":"sek","content_type":"json"}}`, fake.body)

	// Again: the look-up finds the hook, nothing is created.
	fake.calls = nil
	out, err = ev.Methods["subscribe"].Run(context.Background(), sub, opts)
	require.NoError(t, err)
	require.Equal(t, int64(9000000001), out.(map[string]any)["state"].(map[string]any)["hookId"])
	require.Equal(t, []string{"GET /repos/o/r/hooks"}, fake.calls)
	require.Equal(t, "per_page=100", fake.last.URL.RawQuery)

	out, err = ev.Methods["list"].Run(context.Background(), vars(map[string]any{"parameters": params}), opts)
	require.NoError(t, err)
	require.Equal(t, decode(t, `{"webhooks":[{"id":9000000001,"url":"https://hm.example/hooks/abc"}]}`), out)

	st := map[string]any{"hookId": int64(9000000001)}
	out, err = ev.Methods["refresh"].Run(context.Background(), vars(map[string]any{"parameters": params, "state": st, "webhookUri": "u"}), opts)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"hookId": int64(9000000001), "active": true}, out.(map[string]any)["state"])
	require.Equal(t, "PATCH /repos/o/r/hooks/9000000001", fake.calls[len(fake.calls)-1])

	out, err = ev.Methods["unsubscribe"].Run(context.Background(), vars(map[string]any{"parameters": params, "state": st}), opts)
	require.NoError(t, err)
	require.Nil(t, out)

	out, err = ev.Methods["delete"].Run(context.Background(), vars(map[string]any{"parameters": params, "webhook": map[string]any{"id": "a/b", "url": "x"}}), opts)
	require.NoError(t, err)
	require.Nil(t, out)
	require.Equal(t, "/repos/o/r/hooks/a%2Fb", fake.last.URL.RawPath)

	// Form encoding and the alias getEventSelector.
	out, err = c.Events["messages"].Methods[MethodGetEventsSelector].Run(context.Background(), vars(nil), opts)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"globalWebhookKey": "app", "globalWebhookEventSelector": "T9:message"}, out)
	form, err := url.ParseQuery(fake.body)
	require.NoError(t, err)
	require.Equal(t, url.Values{"token": {"tok"}, "scopes[]": {"read", "write"}, "meta[source]": {"hookmap"}}, form)
	require.Equal(t, "application/x-www-form-urlencoded", fake.last.Header.Get("Content-Type"))

	// A status outside allowedStatusCodes is an HTTPError with the body.
	bad := vars(map[string]any{"parameters": params})
	bad["credentials"] = map[string]any{"accessToken": "nope"}
	_, err = ev.Methods["list"].Run(context.Background(), bad, opts)
	var he *HTTPError
	require.ErrorAs(t, err, &he)
	require.Equal(t, 401, he.StatusCode)
	require.Equal(t, "GET", he.Method)
	require.Equal(t, srv.URL+"/repos/o/r/hooks", he.URL)
	require.Contains(t, he.Body, "bad credentials")
	require.Contains(t, err.Error(), "list.rest.yml")

	// No client.
	_, err = ev.Methods["list"].Run(context.Background(), bad, RunOptions{})
	require.ErrorIs(t, err, ErrNoHTTPClient)

	// Transport errors are wrapped.
	_, err = ev.Methods["list"].Run(context.Background(), vars(map[string]any{"parameters": params}), RunOptions{HTTP: doerFunc(func(*http.Request) (*http.Response, error) {
		return nil, errBoom
	})})
	require.ErrorIs(t, err, errBoom)

	// Response size cap.
	_, err = ev.Methods["list"].Run(context.Background(), vars(map[string]any{"parameters": params}), RunOptions{HTTP: srv.Client(), MaxResponseBytes: 10})
	require.ErrorContains(t, err, "too large")
}

var errBoom = errors.New("boom")

type doerFunc func(*http.Request) (*http.Response, error)

func (f doerFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

func TestSchemaValidate(t *testing.T) {
	c := loadGood(t)
	v := c.Events["issues"].ParametersSchema.Validate("parameters", map[string]any{"owner": int64(3)})
	require.Equal(t, []FieldViolation{
		{Field: "parameters.owner", Description: "got number, want string"},
		{Field: "parameters.repo", Description: "required"},
	}, v)
	require.Empty(t, c.Events["issues"].ParametersSchema.Validate("parameters", map[string]any{"owner": "o", "repo": "r"}))
	var nilSchema *Schema
	require.Nil(t, nilSchema.Validate("x", 1))
}

func TestRunConcurrently(t *testing.T) {
	c := loadGood(t)
	h := c.Events["issues"].Methods["handle"]
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := decode(t, issueBody)
			for range 50 {
				out, err := h.Run(context.Background(), map[string]any{"data": data}, RunOptions{})
				if err != nil {
					errs <- err
					return
				}
				rec := out.(map[string]any)["events"].([]any)[0].(map[string]any)["record"].(map[string]any)
				if rec["title"] != "Bug" || rec["number"] != int64(42) {
					errs <- fmt.Errorf("run saw another run's result: %v", rec)
					return
				}
				rec["title"] = i // results are the caller's to change: the next run is unaffected
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestRunOptionsNowIsTheRunsClock(t *testing.T) {
	c := loadGood(t)
	at := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	m := c.Events["pings"].Methods[MethodSubscribe]
	out, err := m.Run(context.Background(), map[string]any{"webhookSecret": "s"}, RunOptions{Now: func() time.Time { return at }})
	require.NoError(t, err)
	require.Equal(t, at.UnixMilli()+60000, out.(map[string]any)["nextRefreshTimestamp"])

	out, err = m.Run(context.Background(), map[string]any{"webhookSecret": "s"}, RunOptions{})
	require.NoError(t, err)
	require.Greater(t, out.(map[string]any)["nextRefreshTimestamp"], time.Now().Add(-time.Minute).UnixMilli(), "wall clock by default")
}

// A fetch method sees delivery, state and the connection, not the request: a fetch runs
// after the delivery, from what handle kept of it.
func TestFetchMethodVariables(t *testing.T) {
	dir := t.TempDir()
	write := func(path, text string) {
		full := filepath.Join(dir, "pull", filepath.FromSlash(path))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(text), 0o644))
	}
	write("spec.yml", "name: Pull\n")
	write("events/e/spec.yml", "implementationType: webhook\nmethods:\n  subscribe: {implementationType: mapping}\n  handle: {implementationType: mapping}\n  fetch: {implementationType: mapping}\n")
	write("events/e/subscribe.map.yml", "state: {}\n")
	write("events/e/handle.map.yml", "events: []\nfetch: {$cel: 'data.id'}\n")
	write("events/e/fetch.map.yml", "events: [{type: t, record: {$cel: 'delivery.data'}}]\nstate: {cursor: {$cel: 'state.?cursor.orValue(0) + 1'}}\nmore: false\n")
	set, diags := Load(dir)
	require.Empty(t, diags)
	c, _ := set.Connector("pull")
	m := c.Events["e"].Methods[MethodFetch]
	require.NotNil(t, m)
	require.Equal(t, []string{"connection", "connectorParameters", "credentials", "delivery", "parameters", "state", "webhookSecret"}, m.Vars)
	out, err := m.Run(t.Context(), map[string]any{"delivery": map[string]any{"data": "x1"}, "state": map[string]any{"cursor": int64(4)}}, RunOptions{})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"events": []any{map[string]any{"type": "t", "record": "x1"}}, "state": map[string]any{"cursor": int64(5)}, "more": false}, out)

	write("events/e/fetch.map.yml", "events: {$cel: 'data.items'}\n")
	_, diags = Load(dir)
	require.Len(t, diags, 1)
	require.Contains(t, diags[0].String(), "fetch.map.yml:1:17: CEL: undeclared reference to 'data'")
}
