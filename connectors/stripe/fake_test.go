package stripe_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeStripe is a small Stripe: the Webhook Endpoints API (create, list, delete) with
// Stripe's authentication, form-encoded bodies, idempotency keys, list pagination and error
// bodies, and deliveries of events signed the way Stripe signs them.
type fakeStripe struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	secretKey string
	pageSize  int                  // the most endpoints one list page holds (Stripe: limit, up to 100)
	endpoints []*fakeEndpoint      // in creation order
	idem      map[string]*idemSave // Idempotency-Key → the first request's answer
	calls     []fakeCall
	drop      int // drop the connection instead of the next N answers to POST (after acting)
	seq       int
	created   int // endpoints made by POST /v1/webhook_endpoints
}

type fakeEndpoint struct {
	ID            string
	URL           string
	Secret        string
	EnabledEvents []string
	Description   *string
	APIVersion    *string
	Metadata      map[string]string
	Created       int64
}

type idemSave struct {
	params string // the request's form body, to refuse a key reused with other parameters
	status int
	body   []byte
}

type fakeCall struct {
	Method, Path string
	Query        url.Values
	Header       http.Header
	Form         url.Values
}

func newFakeStripe(t *testing.T) *fakeStripe {
	f := &fakeStripe{t: t, secretKey: "sk_test_" + randHex(12), pageSize: 2, idem: map[string]*idemSave{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (f *fakeStripe) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form := url.Values{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		form, _ = url.ParseQuery(string(body))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fakeCall{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Form: form})

	if status, msg := f.authError(r); status != 0 {
		stripeError(w, status, map[string]any{"type": "invalid_request_error", "message": msg})
		return
	}
	switch {
	case r.URL.Path == "/v1/webhook_endpoints" && r.Method == http.MethodGet:
		f.list(w, r)
	case r.URL.Path == "/v1/webhook_endpoints" && r.Method == http.MethodPost:
		f.create(w, r, form)
	case strings.HasPrefix(r.URL.Path, "/v1/webhook_endpoints/") && r.Method == http.MethodDelete:
		f.delete(w, strings.TrimPrefix(r.URL.Path, "/v1/webhook_endpoints/"))
	default:
		stripeError(w, http.StatusNotFound, map[string]any{"type": "invalid_request_error",
			"message": fmt.Sprintf("Unrecognized request URL (%s: %s).", r.Method, r.URL.Path)})
	}
}

// authError checks the secret key as Stripe does (Bearer, or Basic with the key as user).
func (f *fakeStripe) authError(r *http.Request) (int, string) {
	auth := r.Header.Get("Authorization")
	key, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		key, _, ok = r.BasicAuth()
	}
	if !ok || key == "" {
		return http.StatusUnauthorized, "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
	}
	if key != f.secretKey {
		shown := key
		if len(shown) > 4 {
			shown = shown[:min(8, len(shown)-4)] + "****" + shown[len(shown)-4:]
		}
		return http.StatusUnauthorized, "Invalid API Key provided: " + shown
	}
	return 0, ""
}

func stripeError(w http.ResponseWriter, status int, e map[string]any) {
	writeJSON(w, status, map[string]any{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_"+randHex(7))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (e *fakeEndpoint) object(withSecret bool) map[string]any {
	o := map[string]any{
		"id": e.ID, "object": "webhook_endpoint", "api_version": e.APIVersion, "application": nil,
		"created": e.Created, "description": e.Description, "enabled_events": e.EnabledEvents,
		"livemode": false, "metadata": e.Metadata, "status": "enabled", "url": e.URL,
	}
	if withSecret {
		o["secret"] = e.Secret
	}
	return o
}

// list answers GET /v1/webhook_endpoints: newest first, limit (1–100, capped at pageSize)
// and starting_after.
func (f *fakeStripe) list(w http.ResponseWriter, r *http.Request) {
	limit := 10
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			stripeError(w, http.StatusBadRequest, map[string]any{"type": "invalid_request_error", "param": "limit",
				"message": "This value must be greater than or equal to 1 and less than or equal to 100."})
			return
		}
		limit = n
	}
	limit = min(limit, f.pageSize)
	newest := slices.Clone(f.endpoints)
	slices.Reverse(newest)
	start := 0
	if after := r.URL.Query().Get("starting_after"); after != "" {
		i := slices.IndexFunc(newest, func(e *fakeEndpoint) bool { return e.ID == after })
		if i < 0 {
			stripeError(w, http.StatusBadRequest, map[string]any{"type": "invalid_request_error", "code": "resource_missing",
				"param": "starting_after", "message": "No such webhook endpoint: '" + after + "'"})
			return
		}
		start = i + 1
	}
	end := min(start+limit, len(newest))
	data := []any{}
	for _, e := range newest[start:end] {
		data = append(data, e.object(false))
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "has_more": end < len(newest), "url": "/v1/webhook_endpoints"})
}

// create answers POST /v1/webhook_endpoints, honouring Idempotency-Key as Stripe does: the
// first answer is saved and replayed (with Idempotent-Replayed: true) to every request with
// the same key and parameters; other parameters are refused.
func (f *fakeStripe) create(w http.ResponseWriter, r *http.Request, form url.Values) {
	key := r.Header.Get("Idempotency-Key")
	params := canonicalForm(form)
	if s, ok := f.idem[key]; key != "" && ok {
		if s.params != params {
			stripeError(w, http.StatusBadRequest, map[string]any{"type": "idempotency_error",
				"message": "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '" + key + "' if you meant to execute a different request."})
			return
		}
		if f.dropAnswer(w) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(s.status)
		_, _ = w.Write(s.body)
		return
	}
	status, answer := f.createEndpoint(r, form)
	b, _ := json.Marshal(answer)
	if key != "" {
		f.idem[key] = &idemSave{params: params, status: status, body: b}
	}
	if f.dropAnswer(w) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// dropAnswer closes the connection without an answer while f.drop > 0: the request took
// effect, but the caller never hears of it.
func (f *fakeStripe) dropAnswer(w http.ResponseWriter) bool {
	if f.drop == 0 {
		return false
	}
	f.drop--
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			_ = c.Close()
			return true
		}
	}
	f.t.Errorf("cannot drop the connection")
	return false
}

func canonicalForm(v url.Values) string { return v.Encode() } // Encode sorts by key

func (f *fakeStripe) createEndpoint(r *http.Request, form url.Values) (int, map[string]any) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return http.StatusBadRequest, map[string]any{"error": map[string]any{"type": "invalid_request_error",
			"message": "Invalid request: request parameters should be form-encoded (Content-Type: application/x-www-form-urlencoded)."}}
	}
	u := form.Get("url")
	if pu, err := url.Parse(u); u == "" || err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return http.StatusBadRequest, map[string]any{"error": map[string]any{"type": "invalid_request_error", "param": "url",
			"message": "Invalid URL: " + u}}
	}
	events := form["enabled_events[]"]
	if len(events) == 0 {
		return http.StatusBadRequest, map[string]any{"error": map[string]any{"type": "invalid_request_error", "param": "enabled_events",
			"message": "Missing required param: enabled_events."}}
	}
	for _, e := range events {
		if e != "*" && !strings.Contains(e, ".") {
			return http.StatusBadRequest, map[string]any{"error": map[string]any{"type": "invalid_request_error", "param": "enabled_events",
				"message": "Invalid enabled_events[]: must be one of the event types, got " + e}}
		}
	}
	meta := map[string]string{}
	for k, v := range form {
		if name, ok := strings.CutPrefix(k, "metadata["); ok && strings.HasSuffix(name, "]") {
			meta[strings.TrimSuffix(name, "]")] = v[0]
		}
	}
	f.seq++
	e := &fakeEndpoint{
		ID: fmt.Sprintf("we_%04d%s", f.seq, randHex(8)), URL: u, Secret: "whsec_" + randHex(16),
		EnabledEvents: events, Metadata: meta, Created: time.Now().Unix(),
	}
	if form.Has("api_version") {
		v := form.Get("api_version")
		e.APIVersion = &v
	}
	if form.Has("description") {
		d := form.Get("description")
		e.Description = &d
	}
	f.endpoints = append(f.endpoints, e)
	f.created++
	return http.StatusOK, e.object(true)
}

func (f *fakeStripe) delete(w http.ResponseWriter, id string) {
	i := slices.IndexFunc(f.endpoints, func(e *fakeEndpoint) bool { return e.ID == id })
	if i < 0 {
		stripeError(w, http.StatusNotFound, map[string]any{"type": "invalid_request_error", "code": "resource_missing",
			"param": "id", "message": "No such webhook endpoint: '" + id + "'",
			"doc_url": "https://stripe.com/docs/error-codes/resource-missing"})
		return
	}
	f.endpoints = slices.Delete(f.endpoints, i, i+1)
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": "webhook_endpoint", "deleted": true})
}

// --- test helpers ---

func (f *fakeStripe) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// list returns a copy of the endpoints.
func (f *fakeStripe) all() []fakeEndpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]fakeEndpoint, len(f.endpoints))
	for i, e := range f.endpoints {
		out[i] = *e
	}
	return out
}

// add stores an endpoint made outside hookmap (another integration, or an old one).
func (f *fakeStripe) add(u string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	e := &fakeEndpoint{ID: fmt.Sprintf("we_%04d%s", f.seq, randHex(8)), URL: u, Secret: "whsec_" + randHex(16),
		EnabledEvents: []string{"*"}, Metadata: map[string]string{}, Created: time.Now().Unix()}
	f.endpoints = append(f.endpoints, e)
	return e.ID
}

// remove deletes an endpoint as someone in the Dashboard would.
func (f *fakeStripe) remove(id string) {
	f.set(func() {
		f.endpoints = slices.DeleteFunc(f.endpoints, func(e *fakeEndpoint) bool { return e.ID == id })
	})
}

// forgetIdempotencyKeys is Stripe pruning keys older than 24 hours.
func (f *fakeStripe) forgetIdempotencyKeys() { f.set(func() { f.idem = map[string]*idemSave{} }) }

func (f *fakeStripe) callsTo(method, path string) []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeCall
	for _, c := range f.calls {
		if c.Method == method && c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

// stripeEvent builds an event as Stripe delivers it.
func stripeEvent(id, typ string, object map[string]any, previous map[string]any) []byte {
	data := map[string]any{"object": object}
	if previous != nil {
		data["previous_attributes"] = previous
	}
	b, _ := json.Marshal(map[string]any{
		"id": id, "object": "event", "api_version": "2024-06-20", "created": time.Now().Unix(),
		"data": data, "livemode": false, "pending_webhooks": 1,
		"request": map[string]any{"id": "req_" + randHex(7), "idempotency_key": randHex(16)},
		"type":    typ,
	})
	return b
}

// sign computes Stripe's v1 signature: hex HMAC-SHA256 of "<t>.<body>" keyed with the
// endpoint's whsec_ secret (the whole string, prefix included).
func sign(secret string, t time.Time, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%d.", t.Unix())
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func signatureHeader(t time.Time, sigs ...string) string {
	parts := []string{"t=" + strconv.FormatInt(t.Unix(), 10)}
	for _, s := range sigs {
		parts = append(parts, "v1="+s)
	}
	return strings.Join(parts, ",")
}

type delivery struct {
	Status int
	Body   string
}

// post sends body to u with the given Stripe-Signature, as Stripe's delivery does.
func post(t *testing.T, u string, body []byte, signature string) delivery {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	req.Header.Set("Cache-Control", "no-cache")
	if signature != "" {
		req.Header.Set("Stripe-Signature", signature)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return delivery{Status: resp.StatusCode, Body: string(b)}
}

// deliver sends body to the endpoint id, signed now with its secret.
func (f *fakeStripe) deliver(t *testing.T, endpointID string, body []byte) delivery {
	t.Helper()
	e := f.endpoint(t, endpointID)
	now := time.Now()
	return post(t, e.URL, body, signatureHeader(now, sign(e.Secret, now, body)))
}

func (f *fakeStripe) endpoint(t *testing.T, id string) fakeEndpoint {
	t.Helper()
	for _, e := range f.all() {
		if e.ID == id {
			return e
		}
	}
	t.Fatalf("no endpoint %s in the fake", id)
	return fakeEndpoint{}
}
