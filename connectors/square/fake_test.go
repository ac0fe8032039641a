package square_test

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
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
)

// fakeSquare is Square's webhook subscriptions API as the connector uses it: create
// (idempotent by idempotency_key: the same key answers the first response again, a key
// reused with another body is refused), list (cursor), delete; and notifications signed
// with x-square-hmacsha256-signature over the notification URL and the body.
type fakeSquare struct {
	t     *testing.T
	srv   *httptest.Server
	token string

	mu       sync.Mutex
	subs     map[string]*sqSub
	keys     map[string]sqKey // idempotency keys
	creates  int
	loseNext bool
}

type sqSub struct {
	ID, URL, SignatureKey, APIVersion string
	EventTypes                        []string
}

type sqKey struct {
	body     string
	response []byte
}

func newFakeSquare(t *testing.T) *fakeSquare {
	f := &fakeSquare{t: t, token: "EAAAfakeToken", subs: map[string]*sqSub{}, keys: map[string]sqKey{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func sqError(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []any{map[string]any{"category": "INVALID_REQUEST_ERROR", "code": code, "detail": detail}}})
}

func (f *fakeSquare) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		sqError(w, http.StatusUnauthorized, "UNAUTHORIZED", "This request could not be authorized.")
		return
	}
	if r.Header.Get("Square-Version") == "" {
		sqError(w, http.StatusBadRequest, "INVALID_VALUE", "Square-Version is required")
		return
	}
	const base = "/v2/webhooks/subscriptions"
	switch {
	case r.URL.Path == base && r.Method == http.MethodPost:
		f.create(w, r)
	case r.URL.Path == base && r.Method == http.MethodGet:
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		if limit < 1 || limit > 100 {
			limit = 100
		}
		start, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
		f.mu.Lock()
		ids := make([]string, 0, len(f.subs))
		for id := range f.subs {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		end := min(start+limit, len(ids))
		page := []any{}
		for _, id := range ids[min(start, len(ids)):end] {
			s := f.subs[id]
			page = append(page, map[string]any{"id": s.ID, "name": "x", "enabled": true, "event_types": s.EventTypes, "notification_url": s.URL, "api_version": s.APIVersion})
		}
		f.mu.Unlock()
		resp := map[string]any{"subscriptions": page}
		if end < len(ids) {
			resp["cursor"] = strconv.Itoa(end)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	case strings.HasPrefix(r.URL.Path, base+"/") && r.Method == http.MethodDelete:
		id := strings.TrimPrefix(r.URL.Path, base+"/")
		f.mu.Lock()
		_, ok := f.subs[id]
		delete(f.subs, id)
		f.mu.Unlock()
		if !ok {
			sqError(w, http.StatusNotFound, "NOT_FOUND", "Subscription not found.")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
	default:
		sqError(w, http.StatusNotFound, "NOT_FOUND", "Not found.")
	}
}

func (f *fakeSquare) create(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body struct {
		Key string `json:"idempotency_key"`
		Sub struct {
			Name       string   `json:"name"`
			EventTypes []string `json:"event_types"`
			URL        string   `json:"notification_url"`
			APIVersion string   `json:"api_version"`
		} `json:"subscription"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.Key == "" || body.Sub.URL == "" || len(body.Sub.EventTypes) == 0 {
		sqError(w, http.StatusBadRequest, "INVALID_VALUE", "idempotency_key, notification_url and event_types are required")
		return
	}
	canon, _ := json.Marshal(body.Sub)
	f.mu.Lock()
	if k, ok := f.keys[body.Key]; ok {
		f.mu.Unlock()
		if k.body != string(canon) {
			sqError(w, http.StatusBadRequest, "IDEMPOTENCY_KEY_REUSED", "The idempotency key was used with another request.")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(k.response)
		return
	}
	f.creates++
	s := &sqSub{ID: "wbhk_" + strings.ReplaceAll(uuid.NewString(), "-", ""), URL: body.Sub.URL, APIVersion: body.Sub.APIVersion,
		EventTypes: body.Sub.EventTypes, SignatureKey: base64.RawURLEncoding.EncodeToString([]byte(uuid.NewString()))[:22]}
	f.subs[s.ID] = s
	resp, _ := json.Marshal(map[string]any{"subscription": map[string]any{
		"id": s.ID, "name": body.Sub.Name, "enabled": true, "event_types": s.EventTypes, "notification_url": s.URL,
		"api_version": s.APIVersion, "signature_key": s.SignatureKey, "created_at": "2025-01-01 00:00:00 +0000 UTC",
	}})
	f.keys[body.Key] = sqKey{body: string(canon), response: resp}
	lose := f.loseNext
	f.loseNext = false
	f.mu.Unlock()
	if lose {
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			_ = conn.Close()
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(resp)
}

func (f *fakeSquare) subFor(url string) *sqSub {
	f.mu.Lock()
	defer f.mu.Unlock()
	var found *sqSub
	for _, s := range f.subs {
		if s.URL == url {
			if found != nil {
				f.t.Fatalf("two subscriptions for %s", url)
			}
			c := *s
			found = &c
		}
	}
	return found
}

func (f *fakeSquare) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// notify sends a payment event of merchant to s, signed as Square signs it. body is the
// notification's JSON text, written by hand so that its integers are exactly as given.
func (f *fakeSquare) notify(s *sqSub, merchant, eventID string, amount string) int {
	body := fmt.Sprintf(`{"merchant_id":%q,"type":"payment.updated","event_id":%q,"created_at":"2025-01-01T00:00:00Z",`+
		`"data":{"type":"payment","id":"hYy9pRFVxpDsO1FB05SunFWUe9JZY","object":{"payment":{"id":"hYy9pRFVxpDsO1FB05SunFWUe9JZY",`+
		`"amount_money":{"amount":%s,"currency":"USD"},"status":"COMPLETED","version":2}}}}`, merchant, eventID, amount)
	m := hmac.New(sha256.New, []byte(s.SignatureKey))
	m.Write([]byte(s.URL + body))
	req, _ := http.NewRequest(http.MethodPost, s.URL, bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-square-hmacsha256-signature", base64.StdEncoding.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
