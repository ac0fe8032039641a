package trello_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeTrello is a small Trello REST API for webhooks: POST /1/webhooks sends HEAD to the
// callback URL first and refuses to create the webhook unless it is answered 200 (as
// Trello does), and refuses a second webhook of the same callback, model and token;
// GET /1/tokens/{token}/webhooks lists a token's webhooks; DELETE /1/webhooks/{id}. The
// key and token are read from the Authorization: OAuth header. Deliveries are signed like
// Trello's: X-Trello-Webhook = base64 HMAC-SHA1 of the body and the callback URL, keyed
// with the app's secret.
type fakeTrello struct {
	t              *testing.T
	srv            *httptest.Server
	apiKey, secret string
	token          string
	models         map[string]bool
	mu             sync.Mutex
	hooks          []*fakeHook
	calls          []string
	heads          []int // how the callback URL answered each HEAD
}

type fakeHook struct {
	ID, Description, IDModel, CallbackURL, Token string
	Active                                       bool
}

var oauthHeader = regexp.MustCompile(`^OAuth oauth_consumer_key="([^"]*)", oauth_token="([^"]*)"$`)

func newFakeTrello(t *testing.T) *fakeTrello {
	f := &fakeTrello{
		t: t, apiKey: "5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c", secret: "8e1b0c9d7f6a5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d",
		token:  "ATTA9c3f1b7e8d2a4c6b0e5f7a9d1c3b5e7f9a2c4e6b8d0f1a3c5e7b9d2f4a6c8e0b1d3",
		models: map[string]bool{"5abbe4b7ddc1b351ef961414": true, "5abbe4b7ddc1b351ef961499": true},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func text(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	b, _ := json.Marshal(v)
	_, _ = w.Write(b)
}

func (h *fakeHook) json() map[string]any {
	return map[string]any{"id": h.ID, "description": h.Description, "idModel": h.IDModel, "callbackURL": h.CallbackURL,
		"active": h.Active, "consecutiveFailures": 0, "firstConsecutiveFailDate": nil}
}

func (f *fakeTrello) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	f.mu.Unlock()
	m := oauthHeader.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil || m[1] != f.apiKey {
		text(w, http.StatusUnauthorized, "invalid key")
		return
	}
	if m[2] != f.token {
		text(w, http.StatusUnauthorized, "invalid token")
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/1/tokens/"+f.token+"/webhooks":
		f.mu.Lock()
		out := []any{}
		for _, h := range f.hooks {
			if h.Token == f.token {
				out = append(out, h.json())
			}
		}
		f.mu.Unlock()
		writeJSON(w, out)
	case strings.HasPrefix(r.URL.Path, "/1/tokens/"):
		text(w, http.StatusUnauthorized, "invalid token")
	case r.Method == http.MethodPost && r.URL.Path == "/1/webhooks":
		f.create(w, r)
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/1/webhooks/"):
		id := strings.TrimPrefix(r.URL.Path, "/1/webhooks/")
		f.mu.Lock()
		n := len(f.hooks)
		f.hooks = slices.DeleteFunc(f.hooks, func(h *fakeHook) bool { return h.ID == id })
		gone := n == len(f.hooks)
		f.mu.Unlock()
		if gone {
			text(w, http.StatusNotFound, "The requested resource was not found.")
			return
		}
		writeJSON(w, map[string]any{"_value": nil})
	default:
		text(w, http.StatusNotFound, "Cannot "+r.Method+" "+r.URL.Path)
	}
}

func (f *fakeTrello) create(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cb, model := q.Get("callbackURL"), q.Get("idModel")
	switch {
	case cb == "":
		text(w, http.StatusBadRequest, "invalid value for callbackURL")
		return
	case !f.models[model]:
		text(w, http.StatusBadRequest, "invalid value for idModel")
		return
	}
	f.mu.Lock()
	dup := slices.ContainsFunc(f.hooks, func(h *fakeHook) bool { return h.CallbackURL == cb && h.IDModel == model && h.Token == f.token })
	f.mu.Unlock()
	if dup {
		text(w, http.StatusBadRequest, "A webhook with that callback, model, and token already exists")
		return
	}
	// Trello checks the callback URL before it creates the webhook.
	status := 0
	if resp, err := http.Head(cb); err == nil {
		status = resp.StatusCode
		_ = resp.Body.Close()
	}
	f.mu.Lock()
	f.heads = append(f.heads, status)
	f.mu.Unlock()
	if status != http.StatusOK {
		text(w, http.StatusBadRequest, fmt.Sprintf("URL (%s) did not return 200 status code, got %d", cb, status))
		return
	}
	h := &fakeHook{ID: newID(), Description: q.Get("description"), IDModel: model, CallbackURL: cb, Token: f.token, Active: q.Get("active") != "false"}
	f.mu.Lock()
	f.hooks = append(f.hooks, h)
	f.mu.Unlock()
	writeJSON(w, h.json())
}

func (f *fakeTrello) Hooks() []fakeHook {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeHook
	for _, h := range f.hooks {
		out = append(out, *h)
	}
	return out
}

func (f *fakeTrello) addHook(model, cb string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := &fakeHook{ID: newID(), IDModel: model, CallbackURL: cb, Token: f.token, Active: true}
	f.hooks = append(f.hooks, h)
	return h.ID
}

func (f *fakeTrello) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeTrello) Heads() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.heads)
}

// sign is Trello's X-Trello-Webhook for body sent to callbackURL.
func sign(secret string, body []byte, callbackURL string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write(body)
	m.Write([]byte(callbackURL))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// deliver POSTs an action on hook's model as Trello does, signed with the app's secret.
func (f *fakeTrello) deliver(h fakeHook, action map[string]any) (int, string) {
	f.t.Helper()
	body, err := json.Marshal(map[string]any{
		"model":   map[string]any{"id": h.IDModel, "name": "Roadmap"},
		"action":  action,
		"webhook": h.json(),
	})
	if err != nil {
		f.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, h.CallbackURL, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Trello-Webhook", sign(f.secret, body, h.CallbackURL))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func action(id, typ string) map[string]any {
	return map[string]any{
		"id": id, "idMemberCreator": "5a3b44a2e6f3a0f0b8aa8d29", "type": typ, "date": "2025-01-02T10:00:00.000Z",
		"data":          map[string]any{"card": map[string]any{"id": "5ad4bbd1c3f3a0bd5d9f0e68", "name": "Ship it", "idShort": int64(45)}},
		"memberCreator": map[string]any{"id": "5a3b44a2e6f3a0f0b8aa8d29", "username": "bentleycook"},
	}
}
