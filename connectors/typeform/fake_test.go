package typeform_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
)

// fakeTypeform is Typeform's webhooks API as the connector uses it: PUT creates or
// replaces the webhook of a (form, tag), GET lists a form's webhooks, DELETE removes one;
// deliveries are signed with Typeform-Signature (sha256= and base64). A webhook can be
// disabled, as Typeform does after failed deliveries.
type fakeTypeform struct {
	t     *testing.T
	srv   *httptest.Server
	token string
	forms map[string]bool

	mu       sync.Mutex
	hooks    map[string]*tfHook // by form + "/" + tag
	puts     int
	loseNext bool
}

type tfHook struct {
	ID, FormID, Tag, URL, Secret string
	Enabled, Partial             bool
}

func newFakeTypeform(t *testing.T) *fakeTypeform {
	f := &fakeTypeform{t: t, token: "tfp_fake_token", forms: map[string]bool{"lT4Z3j": true}, hooks: map[string]*tfHook{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func tfJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeTypeform) view(h *tfHook) map[string]any {
	return map[string]any{"id": h.ID, "form_id": h.FormID, "tag": h.Tag, "url": h.URL, "enabled": h.Enabled, "verify_ssl": true,
		"event_types": map[string]any{"form_response": true, "form_response_partial": h.Partial}}
}

func (f *fakeTypeform) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		tfJSON(w, http.StatusUnauthorized, map[string]any{"code": "AUTHENTICATION_FAILED", "description": "Authentication credentials not found on the Request Headers"})
		return
	}
	p := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // forms {form} webhooks [{tag}]
	if len(p) < 3 || p[0] != "forms" || p[2] != "webhooks" || !f.forms[p[1]] {
		tfJSON(w, http.StatusNotFound, map[string]any{"code": "FORM_NOT_FOUND", "description": "Non existing form"})
		return
	}
	form := p[1]
	switch {
	case len(p) == 3 && r.Method == http.MethodGet:
		f.mu.Lock()
		items := []any{}
		keys := make([]string, 0, len(f.hooks))
		for k := range f.hooks {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if h := f.hooks[k]; h.FormID == form {
				items = append(items, f.view(h))
			}
		}
		f.mu.Unlock()
		tfJSON(w, http.StatusOK, map[string]any{"items": items})
	case len(p) == 4 && r.Method == http.MethodPut:
		var body struct {
			URL        string          `json:"url"`
			Enabled    bool            `json:"enabled"`
			Secret     string          `json:"secret"`
			EventTypes map[string]bool `json:"event_types"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.URL == "" {
			tfJSON(w, http.StatusBadRequest, map[string]any{"code": "VALIDATION_ERROR", "description": "url is required"})
			return
		}
		f.mu.Lock()
		f.puts++
		key := form + "/" + p[3]
		h, existed := f.hooks[key]
		if !existed {
			h = &tfHook{ID: fmt.Sprintf("01JGFH7Y3W8N6S2Q9R5T4V%04d", len(f.hooks)+1), FormID: form, Tag: p[3]}
			f.hooks[key] = h
		}
		h.URL, h.Enabled, h.Secret, h.Partial = body.URL, body.Enabled, body.Secret, body.EventTypes["form_response_partial"]
		v := f.view(h)
		lose := f.loseNext
		f.loseNext = false
		f.mu.Unlock()
		if lose {
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				_ = conn.Close()
			}
			return
		}
		status := http.StatusOK
		if !existed {
			status = http.StatusCreated
		}
		tfJSON(w, status, v)
	case len(p) == 4 && r.Method == http.MethodDelete:
		f.mu.Lock()
		_, ok := f.hooks[form+"/"+p[3]]
		delete(f.hooks, form+"/"+p[3])
		f.mu.Unlock()
		if !ok {
			tfJSON(w, http.StatusNotFound, map[string]any{"code": "NOT_FOUND", "description": "webhook not found"})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		tfJSON(w, http.StatusNotFound, map[string]any{"code": "NOT_FOUND", "description": "not found"})
	}
}

func (f *fakeTypeform) hookFor(url string) *tfHook {
	f.mu.Lock()
	defer f.mu.Unlock()
	var found *tfHook
	for _, h := range f.hooks {
		if h.URL == url {
			if found != nil {
				f.t.Fatalf("two webhooks for %s", url)
			}
			c := *h
			found = &c
		}
	}
	return found
}

func (f *fakeTypeform) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// deliver sends a response to h as Typeform does (only while h is enabled).
func (f *fakeTypeform) deliver(h *tfHook, eventID, eventType, token string) int {
	if !h.Enabled {
		return 0
	}
	body, _ := json.Marshal(map[string]any{"event_id": eventID, "event_type": eventType, "form_response": map[string]any{
		"form_id": h.FormID, "token": token, "submitted_at": "2025-01-01T00:00:00Z", "landed_at": "2024-12-31T23:59:00Z",
		"answers": []any{map[string]any{"type": "email", "email": "laura@example.com", "field": map[string]any{"id": "SMEUb7VJz92Q", "type": "email"}}},
	}})
	m := hmac.New(sha256.New, []byte(h.Secret))
	m.Write(body)
	req, _ := http.NewRequest(http.MethodPost, h.URL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Typeform-Signature", "sha256="+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
