package zoom_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeZoom is the part of Zoom hookmap talks to: GET /v2/users/me (the token's user and
// account; Zoom's 124 "Invalid access token." otherwise), and the app's event
// notifications, signed the way Zoom signs them: x-zm-request-timestamp (seconds) and
// x-zm-signature = "v0=" + hex HMAC-SHA256 of "v0:{timestamp}:{body}" with the app's
// secret token.
type fakeZoom struct {
	t        *testing.T
	srv      *httptest.Server
	secret   string
	accounts map[string]string // access token → account id

	mu    sync.Mutex
	calls []string
}

func newFakeZoom(t *testing.T, accounts map[string]string) *fakeZoom {
	f := &fakeZoom{t: t, secret: "kNlOxs2dQ8GwJw7vxKc3oA", accounts: accounts}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeZoom) URL() string { return f.srv.URL + "/v2" }

func (f *fakeZoom) serve(w http.ResponseWriter, r *http.Request) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path+" "+tok)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	account, ok := f.accounts[tok]
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"code":124,"message":"Invalid access token."}`)
		return
	}
	if r.Method != http.MethodGet || r.URL.Path != "/v2/users/me" {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"code":404,"message":"Not found"}`)
		return
	}
	b, _ := json.Marshal(map[string]any{
		"id": "z8yCxjabcdEFGHfp8uQ", "first_name": "Jill", "last_name": "Chill", "email": "jchill@example.com",
		"type": 2, "role_name": "Owner", "account_id": account, "status": "active",
	})
	_, _ = w.Write(b)
}

func (f *fakeZoom) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func signZoom(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("v0:" + ts + ":"))
	m.Write(body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// send POSTs a notification to the app's endpoint URL, signed at time at (now when zero)
// with secret (the app's when empty).
func (f *fakeZoom) send(url string, body []byte, at time.Time, secret string) (int, string) {
	f.t.Helper()
	if at.IsZero() {
		at = time.Now()
	}
	if secret == "" {
		secret = f.secret
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Zoom Marketplace/1.0a")
	req.Header.Set("x-zm-request-timestamp", ts)
	req.Header.Set("x-zm-signature", signZoom(secret, ts, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// notification is a Zoom event notification about a meeting of account; id is written
// into the JSON as a number, as Zoom does.
func notification(event, account string, id string, ts int64) []byte {
	return []byte(`{"event":"` + event + `","event_ts":` + strconv.FormatInt(ts, 10) + `,"payload":{"account_id":"` + account +
		`","object":{"id":` + id + `,"uuid":"4444AAAiAAAAAiAiAiiAii==","host_id":"z8yCxjabcdEFGHfp8uQ","topic":"Standup","type":2,` +
		`"start_time":"2025-01-02T10:00:00Z","timezone":"UTC","duration":15}}}`)
}
