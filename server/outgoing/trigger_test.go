package outgoing

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/engine/verify"
	"github.com/hookmap/hookmap/server/store"
)

func jsonAnswer(status int, body string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

func TestTriggerJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := newRecorder(t, jsonAnswer(200, `{"ok":true,"id":9007199254740993,"items":[1,2.5]}`))
	e.register(Registration{
		ID: "crm", URL: srv.URL + "/hook?fixed=1", Headers: map[string]string{"Authorization": "Bearer s3cr3t"},
		QueryParams: []string{"page", "q"},
	})
	res := e.trigger(Trigger{
		WebhookID: "crm", Data: map[string]any{"name": "Ada", "n": int64(42)},
		Headers: map[string]string{"x-request-source": "plugin"}, QueryParams: map[string]string{"page": "2", "q": "a b"},
	})
	require.False(t, res.Error, res.ErrorMessage)
	require.Equal(t, 200, res.Status)
	require.Equal(t, 1, res.Attempts)
	require.Equal(t, store.EncodingJSON, res.DataEncoding)
	require.Equal(t, map[string]any{"ok": true, "id": int64(9007199254740993), "items": []any{int64(1), 2.5}}, res.Data)
	require.Equal(t, "application/json", res.ContentType)
	require.EqualValues(t, len(`{"n":42,"name":"Ada"}`), res.RequestSize)
	require.EqualValues(t, len(`{"ok":true,"id":9007199254740993,"items":[1,2.5]}`), res.ResponseSize)
	require.NotEmpty(t, res.ReferenceID)

	got := srv.last(t)
	require.Equal(t, "POST", got.Method)
	require.Equal(t, "/hook", got.Path)
	require.Equal(t, "fixed=1&page=2&q=a+b", got.Query)
	require.Equal(t, `{"n":42,"name":"Ada"}`, string(got.Body))
	require.Equal(t, "application/json", got.Header.Get("Content-Type"))
	require.Equal(t, "Bearer s3cr3t", got.Header.Get("Authorization"))
	require.Equal(t, "plugin", got.Header.Get("X-Request-Source"))
	require.Equal(t, "hookmap", got.Header.Get("User-Agent"))
	require.Empty(t, got.Header.Get("Webhook-Signature"), "unsigned without a secret")

	require.NotContains(t, e.logs.String(), "s3cr3t")
	require.NotContains(t, e.logs.String(), srv.URL)
}

func TestTriggerTextAndBinaryResponses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	binary := []byte{0xff, 0xd8, 0xff, 0x00, 0x01}
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch r.URL.Path {
		case "/text":
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte(`{"looks":"like json"} but is text`))
		case "/plain-json":
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte(`{"a":1}`))
		case "/binary":
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(binary)
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/untyped":
			w.Header()["Content-Type"] = nil
			_, _ = w.Write([]byte(`[1,"x"]`))
		}
	})
	for _, p := range []string{"text", "plain-json", "binary", "empty", "untyped"} {
		e.register(Registration{ID: p, URL: srv.URL + "/" + p, Method: "GET"})
	}
	res := e.trigger(Trigger{WebhookID: "text"})
	require.False(t, res.Error)
	require.Equal(t, `{"looks":"like json"} but is text`, res.Data)
	require.Equal(t, store.EncodingText, res.DataEncoding)

	res = e.trigger(Trigger{WebhookID: "plain-json"})
	require.Equal(t, `{"a":1}`, res.Data, "text/plain is not parsed")

	res = e.trigger(Trigger{WebhookID: "binary"})
	require.Equal(t, base64.StdEncoding.EncodeToString(binary), res.Data)
	require.Equal(t, store.EncodingBase64, res.DataEncoding)
	require.EqualValues(t, len(binary), res.ResponseSize)

	res = e.trigger(Trigger{WebhookID: "empty"})
	require.Equal(t, 204, res.Status)
	require.False(t, res.Error)
	require.Nil(t, res.Data)
	require.Empty(t, res.DataEncoding)

	res = e.trigger(Trigger{WebhookID: "untyped"})
	require.Equal(t, []any{int64(1), "x"}, res.Data)

	// A GET sends no body and no Content-Type.
	got := srv.last(t)
	require.Equal(t, "GET", got.Method)
	require.Empty(t, got.Body)
	require.Empty(t, got.Header.Get("Content-Type"))
}

func TestTriggerResponseCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.MaxResponseBytes = 1000 })
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.URL.Path == "/json" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"a":"` + strings.Repeat("x", 5000) + `"}`))
			return
		}
		_, _ = w.Write([]byte(strings.Repeat("é", 3000))) // 2 bytes each: the cut lands mid-character
	})
	e.register(Registration{ID: "json", URL: srv.URL + "/json"})
	e.register(Registration{ID: "text", URL: srv.URL + "/text"})
	res := e.trigger(Trigger{WebhookID: "json"})
	require.True(t, res.Truncated)
	require.False(t, res.Error)
	require.EqualValues(t, 1000, res.ResponseSize)
	require.Equal(t, store.EncodingText, res.DataEncoding, "a cut JSON body comes back as text")
	require.Len(t, res.Data, 1000)

	res = e.trigger(Trigger{WebhookID: "text"})
	require.True(t, res.Truncated)
	require.Equal(t, store.EncodingText, res.DataEncoding)
	require.Equal(t, strings.Repeat("é", 500), res.Data)
}

func TestTrigger500(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := newRecorder(t, jsonAnswer(500, `{"error":"boom"}`))
	e.register(Registration{ID: "crm", URL: srv.URL})
	res := e.trigger(Trigger{WebhookID: "crm", Data: map[string]any{}})
	require.True(t, res.Error)
	require.Equal(t, 500, res.Status)
	require.Equal(t, "endpoint answered 500 Internal Server Error", res.ErrorMessage)
	require.Equal(t, map[string]any{"error": "boom"}, res.Data, "the failure's body is returned")
	require.Equal(t, 1, res.Attempts, "no retry with max_attempts 1")
	require.Len(t, srv.requests(), 1)
}

func TestTrigger4xxNotRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := newRecorder(t, jsonAnswer(404, `{}`))
	e.register(Registration{ID: "crm", URL: srv.URL, MaxAttempts: 5})
	res := e.trigger(Trigger{WebhookID: "crm"})
	require.True(t, res.Error)
	require.Equal(t, 404, res.Status)
	require.Equal(t, "endpoint answered 404 Not Found", res.ErrorMessage)
	require.Equal(t, 1, res.Attempts)
}

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestTriggerRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register(Registration{ID: "down", URL: "http://" + closedPort(t) + "/hook", MaxAttempts: 3})
	res := e.trigger(Trigger{WebhookID: "down", Data: "x"})
	require.True(t, res.Error)
	require.Equal(t, 0, res.Status)
	require.Equal(t, 3, res.Attempts, "connection errors are retried")
	require.Equal(t, "connection refused (after 3 attempts)", res.ErrorMessage)
	require.Nil(t, res.Data)
}

func TestTriggerTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	e.register(Registration{ID: "slow", URL: srv.URL, Timeout: time.Second, MaxAttempts: 3})
	start := time.Now()
	res := e.trigger(Trigger{WebhookID: "slow"})
	elapsed := time.Since(start)
	require.True(t, res.Error)
	require.Equal(t, 0, res.Status)
	require.Equal(t, "timeout: no complete answer within 1s", res.ErrorMessage)
	require.Equal(t, 1, res.Attempts, "the timeout bounds the invocation, retries included")
	require.GreaterOrEqual(t, elapsed, time.Second)
	require.Less(t, elapsed, 3*time.Second)
	require.GreaterOrEqual(t, res.Duration, time.Second)
}

func TestTriggerRetriesWithRetryAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := newRecorder(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		switch n {
		case 1:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			w.Header().Set("Retry-After", time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat))
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			jsonAnswer(200, `{"done":true}`)(w, nil, n)
		}
	})
	e.register(Registration{ID: "flaky", URL: srv.URL, MaxAttempts: 3, Timeout: 10 * time.Second, SigningSecret: testSecret})
	res := e.trigger(Trigger{WebhookID: "flaky", Data: map[string]any{"a": int64(1)}})
	require.False(t, res.Error, res.ErrorMessage)
	require.Equal(t, 200, res.Status)
	require.Equal(t, 3, res.Attempts)
	require.Equal(t, map[string]any{"done": true}, res.Data)

	reqs := srv.requests()
	require.Len(t, reqs, 3)
	gap1, gap2 := reqs[1].At.Sub(reqs[0].At), reqs[2].At.Sub(reqs[1].At)
	t.Logf("waits: %s (Retry-After 1), %s (Retry-After date ~2s ahead, second precision)", gap1, gap2)
	require.GreaterOrEqual(t, gap1, time.Second, "Retry-After seconds replaces the (10ms) backoff")
	require.Less(t, gap1, 2*time.Second)
	require.GreaterOrEqual(t, gap2, time.Second, "Retry-After date replaces the backoff")
	require.Less(t, gap2, 3*time.Second)
	// Every attempt carries the same webhook-id (the reference id) and the same body.
	for _, r := range reqs {
		require.Equal(t, res.ReferenceID, r.Header.Get("Webhook-Id"))
		require.Equal(t, `{"a":1}`, string(r.Body))
	}
}

func TestTriggerRetriesExhausted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := newRecorder(t, jsonAnswer(502, `bad gateway`))
	e.register(Registration{ID: "broken", URL: srv.URL, MaxAttempts: 4})
	res := e.trigger(Trigger{WebhookID: "broken"})
	require.True(t, res.Error)
	require.Equal(t, 502, res.Status)
	require.Equal(t, 4, res.Attempts)
	require.Equal(t, "endpoint answered 502 Bad Gateway (after 4 attempts)", res.ErrorMessage)
	require.Equal(t, "bad gateway", res.Data, "invalid JSON comes back as text")
	reqs := srv.requests()
	require.Len(t, reqs, 4)
	// Exponential backoff with ±50% jitter: base 10ms, 20ms, 40ms (cap 50ms).
	for i := 1; i < len(reqs); i++ {
		gap := reqs[i].At.Sub(reqs[i-1].At)
		require.GreaterOrEqual(t, gap, 4*time.Millisecond, "attempt %d", i+1)
		require.Less(t, gap, time.Second, "attempt %d", i+1)
	}
}

func TestTriggerRetryAfterBeyondTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := newRecorder(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	e.register(Registration{ID: "busy", URL: srv.URL, MaxAttempts: 5, Timeout: 2 * time.Second})
	start := time.Now()
	res := e.trigger(Trigger{WebhookID: "busy"})
	require.Less(t, time.Since(start), time.Second, "no pointless wait")
	require.True(t, res.Error)
	require.Equal(t, 429, res.Status)
	require.Equal(t, 1, res.Attempts)
	require.Equal(t, "endpoint answered 429 Too Many Requests (no retry: Retry-After 1h0m0s would start after the timeout)", res.ErrorMessage)
}

func TestTriggerBase64Image(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	img := make([]byte, 64<<10)
	_, _ = rand.Read(img)
	copy(img, []byte{0xff, 0xd8, 0xff, 0xe0}) // a JPEG's first bytes
	srv := newRecorder(t, jsonAnswer(201, `{"stored":true}`))
	e.register(Registration{ID: "upload", URL: srv.URL + "/img", Method: "PUT", PayloadEncoding: store.EncodingBase64, ContentType: "image/jpeg"})
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
		res := e.trigger(Trigger{WebhookID: "upload", Data: enc.EncodeToString(img)})
		require.False(t, res.Error, res.ErrorMessage)
		require.Equal(t, 201, res.Status)
		require.EqualValues(t, len(img), res.RequestSize)
		got := srv.last(t)
		require.Equal(t, "PUT", got.Method)
		require.Equal(t, "image/jpeg", got.Header.Get("Content-Type"))
		require.Equal(t, strconv.Itoa(len(img)), got.Header.Get("Content-Length"))
		require.True(t, bytes.Equal(img, got.Body), "the body arrives byte for byte")
	}
}

func TestTriggerTextAndForm(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := newRecorder(t, jsonAnswer(200, `{}`))
	e.register(Registration{ID: "text", URL: srv.URL, PayloadEncoding: store.EncodingText})
	e.register(Registration{ID: "csv", URL: srv.URL, PayloadEncoding: store.EncodingText, ContentType: "text/csv"})
	e.register(Registration{ID: "form", URL: srv.URL, PayloadEncoding: store.EncodingForm, Method: "PATCH"})

	e.trigger(Trigger{WebhookID: "text", Data: "héllo\nworld"})
	got := srv.last(t)
	require.Equal(t, "héllo\nworld", string(got.Body))
	require.Equal(t, "text/plain; charset=utf-8", got.Header.Get("Content-Type"))

	e.trigger(Trigger{WebhookID: "csv", Data: "a,b\n1,2\n"})
	require.Equal(t, "text/csv", srv.last(t).Header.Get("Content-Type"))

	e.trigger(Trigger{WebhookID: "form", Data: map[string]any{"name": "A&B", "n": int64(3), "f": 1.5, "ok": true, "none": nil}})
	got = srv.last(t)
	require.Equal(t, "PATCH", got.Method)
	require.Equal(t, "application/x-www-form-urlencoded", got.Header.Get("Content-Type"))
	form, err := url.ParseQuery(string(got.Body))
	require.NoError(t, err)
	require.Equal(t, url.Values{"name": {"A&B"}, "n": {"3"}, "f": {"1.5"}, "ok": {"true"}, "none": {""}}, form)
}

func TestTriggerSignature(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := newRecorder(t, jsonAnswer(200, `{}`))
	e.register(Registration{ID: "signed", URL: srv.URL, SigningSecret: testSecret})
	res := e.trigger(Trigger{WebhookID: "signed", Data: map[string]any{"event": "x"}})
	require.False(t, res.Error)
	got := srv.last(t)

	id, ts, sig := got.Header.Get("Webhook-Id"), got.Header.Get("Webhook-Timestamp"), got.Header.Get("Webhook-Signature")
	require.Equal(t, res.ReferenceID, id)
	sec, err := strconv.ParseInt(ts, 10, 64)
	require.NoError(t, err)
	require.InDelta(t, time.Now().Unix(), sec, 5)
	// Recompute as a Standard Webhooks receiver does.
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(testSecret, "whsec_"))
	require.NoError(t, err)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(got.Body)
	require.Equal(t, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)), sig)
	// And as hookmap's own receiver checks it.
	require.NoError(t, verify.Check(verify.Config{Scheme: "standard-webhooks"}, testSecret,
		verify.Request{Method: got.Method, Header: got.Header, Body: got.Body}, time.Now()))
	require.Error(t, verify.Check(verify.Config{Scheme: "standard-webhooks"}, "whsec_"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 24)),
		verify.Request{Method: got.Method, Header: got.Header, Body: got.Body}, time.Now()))

	require.NotContains(t, e.logs.String(), strings.TrimPrefix(testSecret, "whsec_"))
}

func TestTriggerInvalid(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := newRecorder(t, jsonAnswer(200, `{}`))
	e.register(Registration{ID: "json", URL: srv.URL, Headers: map[string]string{"Authorization": "Bearer x"}, QueryParams: []string{"page"}, SigningSecret: testSecret})
	e.register(Registration{ID: "get", URL: srv.URL, Method: "GET"})
	e.register(Registration{ID: "b64", URL: srv.URL, PayloadEncoding: store.EncodingBase64, ContentType: "image/png"})
	e.register(Registration{ID: "text", URL: srv.URL, PayloadEncoding: store.EncodingText})
	e.register(Registration{ID: "form", URL: srv.URL, PayloadEncoding: store.EncodingForm})

	tests := []struct {
		name  string
		tr    Trigger
		field string
		desc  string
	}{
		{"no webhook id", Trigger{}, "webhook_id", "required"},
		{"query param not listed", Trigger{WebhookID: "json", QueryParams: map[string]string{"admin": "1"}}, "query_params[admin]", "not a query parameter of webhook \"json\" (allowed: page)"},
		{"query param on a webhook with none", Trigger{WebhookID: "get", QueryParams: map[string]string{"page": "1"}}, "query_params[page]", "allowed: none"},
		{"header overrides registered", Trigger{WebhookID: "json", Headers: map[string]string{"authorization": "Bearer mine"}}, "headers[authorization]", "would override the registered header Authorization"},
		{"reserved header", Trigger{WebhookID: "json", Headers: map[string]string{"Host": "evil.example"}}, "headers[Host]", "cannot be set"},
		{"signature header", Trigger{WebhookID: "json", Headers: map[string]string{"Webhook-Signature": "v1,x"}}, "headers[Webhook-Signature]", "signed"},
		{"content-type header", Trigger{WebhookID: "json", Headers: map[string]string{"content-type": "text/xml"}}, "headers[content-type]", "content_type"},
		{"bad header name", Trigger{WebhookID: "json", Headers: map[string]string{"a:b": "x"}}, "headers[a:b]", "not a valid header name"},
		{"header injection", Trigger{WebhookID: "json", Headers: map[string]string{"X-A": "1\r\nX-B: 2"}}, "headers[X-A]", "control characters"},
		{"duplicate header", Trigger{WebhookID: "json", Headers: map[string]string{"X-A": "1", "x-a": "2"}}, "headers[x-a]", "case-insensitive"},
		{"body on GET", Trigger{WebhookID: "get", Data: map[string]any{"a": int64(1)}}, "data", "uses GET, which sends no body"},
		{"base64 not a string", Trigger{WebhookID: "b64", Data: int64(5)}, "data", "needs a base64 string, got a number"},
		{"invalid base64", Trigger{WebhookID: "b64", Data: "not base64!"}, "data", "not valid base64"},
		{"text not a string", Trigger{WebhookID: "text", Data: []any{"a"}}, "data", "needs a string, got a list"},
		{"form not an object", Trigger{WebhookID: "form", Data: "a=b"}, "data", "needs an object of scalars, got a string"},
		{"form nested", Trigger{WebhookID: "form", Data: map[string]any{"a": map[string]any{"b": int64(1)}}}, "data", `form field "a" is an object`},
		{"form list", Trigger{WebhookID: "form", Data: map[string]any{"a": []any{"x"}}}, "data", `form field "a" is a list`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.s.Trigger(t.Context(), testWorkspace, tc.tr)
			f := fields(t, err)
			require.Contains(t, f, tc.field, "violations: %v", f)
			require.Contains(t, f[tc.field], tc.desc)
		})
	}
	// Every problem is reported at once.
	_, err := e.s.Trigger(t.Context(), testWorkspace, Trigger{WebhookID: "json", QueryParams: map[string]string{"x": "1"}, Headers: map[string]string{"Authorization": "y"}})
	require.Len(t, fields(t, err), 2)

	_, err = e.s.Trigger(t.Context(), testWorkspace, Trigger{WebhookID: "missing"})
	require.ErrorIs(t, err, store.ErrNotFound)

	require.Empty(t, srv.requests(), "nothing is sent for an invalid call")
	require.Zero(t, e.invocationCount(), "an invalid call is not an invocation")
}

func TestTriggerRedirects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/new", http.StatusTemporaryRedirect)
			return
		}
		jsonAnswer(200, `{"at":"new"}`)(w, r, 0)
	})
	e.register(Registration{ID: "stay", URL: srv.URL + "/old"})
	e.register(Registration{ID: "follow", URL: srv.URL + "/old", FollowRedirects: true})

	res := e.trigger(Trigger{WebhookID: "stay", Data: "x"})
	require.Equal(t, 307, res.Status)
	require.False(t, res.Error, "a redirect answer is returned as it is")
	require.Len(t, srv.requests(), 1)

	res = e.trigger(Trigger{WebhookID: "follow", Data: "x"})
	require.Equal(t, 200, res.Status)
	require.Equal(t, map[string]any{"at": "new"}, res.Data)
	got := srv.last(t)
	require.Equal(t, "/new", got.Path)
	require.Equal(t, `"x"`, string(got.Body), "a 307 re-sends the body")
}

func TestTriggerRedirectToAnotherHostDropsRegisteredHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other := newRecorder(t, jsonAnswer(200, `{}`))
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL+"/landing", http.StatusTemporaryRedirect)
		case "/here":
			http.Redirect(w, r, "/landing", http.StatusTemporaryRedirect)
		default:
			jsonAnswer(200, `{}`)(w, r, 0)
		}
	})
	hdr := map[string]string{"X-Api-Key": "k-123", "Authorization": "Bearer b-456"}
	e.register(Registration{ID: "away", URL: srv.URL + "/away", FollowRedirects: true, Headers: hdr})
	e.register(Registration{ID: "here", URL: srv.URL + "/here", FollowRedirects: true, Headers: hdr})

	res := e.trigger(Trigger{WebhookID: "here", Headers: map[string]string{"X-Trace": "t"}})
	require.Equal(t, 200, res.Status)
	got := srv.last(t)
	require.Equal(t, "/landing", got.Path)
	require.Equal(t, "k-123", got.Header.Get("X-Api-Key"), "same host keeps the registered headers")
	require.Equal(t, "Bearer b-456", got.Header.Get("Authorization"))

	res = e.trigger(Trigger{WebhookID: "away", Headers: map[string]string{"X-Trace": "t"}})
	require.Equal(t, 200, res.Status)
	got = other.last(t)
	require.Equal(t, "/landing", got.Path)
	require.Empty(t, got.Header.Get("X-Api-Key"), "another host does not get the registered headers")
	require.Empty(t, got.Header.Get("Authorization"))
	require.Equal(t, "t", got.Header.Get("X-Trace"), "the trigger's own headers follow")
}

func TestTriggerTooManyRedirects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		http.Redirect(w, r, "/again", http.StatusFound)
	})
	e.register(Registration{ID: "loop", URL: srv.URL, FollowRedirects: true, MaxAttempts: 3})
	res := e.trigger(Trigger{WebhookID: "loop"})
	require.True(t, res.Error)
	require.Equal(t, 0, res.Status)
	require.Equal(t, 1, res.Attempts)
	require.Equal(t, "request failed: stopped after 5 redirects", res.ErrorMessage)
	reqs := srv.requests()
	require.Len(t, reqs, MaxRedirects)
	for _, r := range reqs {
		require.Empty(t, r.Header.Get("Referer"), "the URL is not sent on")
	}
}

func TestTriggerNetworkGuard(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Clients = GuardedClients(false) })
	srv := newRecorder(t, jsonAnswer(200, `{}`))
	e.register(Registration{ID: "local", URL: srv.URL, MaxAttempts: 3})
	res := e.trigger(Trigger{WebhookID: "local"})
	require.True(t, res.Error)
	require.Equal(t, 0, res.Status)
	require.Equal(t, 1, res.Attempts, "a refused address is not retried")
	require.Contains(t, res.ErrorMessage, "refused: the endpoint's address is loopback or private")
	require.Empty(t, srv.requests())
}

func TestTriggerTLSFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	t.Cleanup(srv.Close)
	e.register(Registration{ID: "tls", URL: srv.URL, MaxAttempts: 3})
	res := e.trigger(Trigger{WebhookID: "tls"})
	require.True(t, res.Error)
	require.Equal(t, 0, res.Status)
	require.Equal(t, 1, res.Attempts)
	require.Equal(t, "TLS: the endpoint's certificate is signed by an unknown authority", res.ErrorMessage)

	// Plain HTTP spoken to a TLS registration's port: the other way round.
	plain := newRecorder(t, jsonAnswer(200, `{}`))
	e.register(Registration{ID: "mismatch", URL: strings.Replace(plain.URL, "http://", "https://", 1)})
	res = e.trigger(Trigger{WebhookID: "mismatch"})
	require.True(t, res.Error)
	require.Equal(t, "TLS: the endpoint did not answer with TLS", res.ErrorMessage)
}

func TestTriggerDNSFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register(Registration{ID: "dns", URL: "http://no-such-host.invalid/hook", Timeout: 5 * time.Second})
	res := e.trigger(Trigger{WebhookID: "dns"})
	require.True(t, res.Error)
	require.Equal(t, 0, res.Status)
	require.True(t, strings.HasPrefix(res.ErrorMessage, "DNS: "), res.ErrorMessage)
	t.Log(res.ErrorMessage)
	require.NotContains(t, res.ErrorMessage, "no-such-host", "the endpoint's host is not shown")
}

func TestTriggerCallerCanceled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request, _ int) { <-r.Context().Done() })
	e.register(Registration{ID: "slow", URL: srv.URL})
	ctx, cancel := contextWithTimeout(t, 200*time.Millisecond)
	defer cancel()
	res, err := e.s.Trigger(ctx, testWorkspace, Trigger{WebhookID: "slow"})
	require.NoError(t, err)
	require.True(t, res.Error)
	require.Equal(t, "timeout: the caller's deadline passed before the endpoint answered", res.ErrorMessage)
	// Recorded although the caller's context had ended.
	_, err = e.store.GetInvocation(t.Context(), testWorkspace, res.ReferenceID)
	require.NoError(t, err)
}

func TestInvocationsListed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.URL.Query().Get("fail") != "" {
			w.WriteHeader(500)
		}
	})
	e.register(Registration{ID: "a", URL: srv.URL, QueryParams: []string{"fail"}})
	e.register(Registration{ID: "b", URL: srv.URL})
	var refs []string
	for i := range 5 {
		tr := Trigger{WebhookID: "a"}
		if i%2 == 1 {
			tr.QueryParams = map[string]string{"fail": "1"}
		}
		refs = append(refs, e.trigger(tr).ReferenceID)
	}
	e.trigger(Trigger{WebhookID: "b"})

	invs, _, err := e.s.ListInvocations(t.Context(), testWorkspace, store.InvocationFilter{WebhookID: "a"}, store.Page{})
	require.NoError(t, err)
	require.Len(t, invs, 5)
	require.Equal(t, refs[4], invs[0].ReferenceID, "newest first")
	invs, _, err = e.s.ListInvocations(t.Context(), testWorkspace, store.InvocationFilter{ErrorsOnly: true}, store.Page{})
	require.NoError(t, err)
	require.Len(t, invs, 2)
	for _, inv := range invs {
		require.Equal(t, 500, inv.Status)
	}
	_, _, err = e.s.ListInvocations(t.Context(), testWorkspace, store.InvocationFilter{Start: time.Now(), End: time.Now().Add(-time.Hour)}, store.Page{})
	require.Contains(t, fields(t, err), "end_time")
	inv, err := e.s.GetInvocation(t.Context(), testWorkspace, refs[1])
	require.NoError(t, err)
	require.True(t, inv.Error)
	_, err = e.s.GetInvocation(t.Context(), "other", refs[1])
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"7", 7 * time.Second, true},
		{" 7 ", 7 * time.Second, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"99999999999", 24 * time.Hour, true},
	} {
		got, ok := parseRetryAfter(tc.in, now)
		require.Equal(t, tc.ok, ok, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

func TestWithQuery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, want string }{
		{"http://h/p", "http://h/p?a=1&b=x+y"},
		{"http://h/p?z=9&sig=A%2Fb", "http://h/p?z=9&sig=A%2Fb&a=1&b=x+y"},
		{"http://h/p?a=0&z=9", "http://h/p?a=1&b=x+y&z=9"},
	} {
		got, err := withQuery(tc.url, map[string]string{"a": "1", "b": "x y"})
		require.NoError(t, err)
		require.Equal(t, tc.want, got, fmt.Sprint(tc.url))
	}
}
