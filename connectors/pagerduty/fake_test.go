package pagerduty_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
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
)

// fakePagerDuty is PagerDuty's v3 webhook subscriptions API as the connector uses it:
// list (offset paging, 100 at most, more), create (the delivery method's secret returned
// once), enable, delete; deliveries signed with X-PagerDuty-Signature, with a second
// secret while one rotates.
type fakePagerDuty struct {
	t      *testing.T
	srv    *httptest.Server
	apiKey string

	mu       sync.Mutex
	subs     map[string]*pdSub
	nextID   int
	creates  int
	loseNext bool
}

type pdSub struct {
	ID, URL, FilterType, FilterID string
	Secrets                       []string // the current one first
	Events                        []string
	Disabled                      bool
}

func newFakePagerDuty(t *testing.T) *fakePagerDuty {
	f := &fakePagerDuty{t: t, apiKey: "u+fakeKey0123", subs: map[string]*pdSub{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func pdJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakePagerDuty) view(s *pdSub, secret bool) map[string]any {
	dm := map[string]any{"id": "DM" + s.ID, "type": "http_delivery_method", "url": s.URL, "temporarily_disabled": s.Disabled, "custom_headers": []any{}}
	if secret {
		dm["secret"] = s.Secrets[0]
	}
	filter := map[string]any{"type": s.FilterType}
	if s.FilterID != "" {
		filter["id"] = s.FilterID
	}
	return map[string]any{"id": s.ID, "type": "webhook_subscription", "active": true, "delivery_method": dm, "events": s.Events, "filter": filter}
}

func (f *fakePagerDuty) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Token token="+f.apiKey || r.Header.Get("Accept") != "application/vnd.pagerduty+json;version=2" {
		pdJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{"message": "Unauthorized", "code": 2006}})
		return
	}
	p := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(p) == 1 && p[0] == "webhook_subscriptions" && r.Method == http.MethodGet:
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		if limit < 1 || limit > 100 {
			limit = 25
		}
		f.mu.Lock()
		ids := make([]string, 0, len(f.subs))
		for id := range f.subs {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		end := min(offset+limit, len(ids))
		page := []any{}
		for _, id := range ids[min(offset, len(ids)):end] {
			page = append(page, f.view(f.subs[id], false))
		}
		f.mu.Unlock()
		pdJSON(w, http.StatusOK, map[string]any{"webhook_subscriptions": page, "limit": limit, "offset": offset, "total": nil, "more": end < len(ids)})
	case len(p) == 1 && p[0] == "webhook_subscriptions" && r.Method == http.MethodPost:
		var body struct {
			WS struct {
				DeliveryMethod struct{ Type, URL string } `json:"delivery_method"`
				Events         []string                   `json:"events"`
				Filter         struct{ Type, ID string }  `json:"filter"`
			} `json:"webhook_subscription"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.WS.DeliveryMethod.URL == "" || len(body.WS.Events) == 0 ||
			(body.WS.Filter.Type != "account_reference" && body.WS.Filter.ID == "") {
			pdJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"message": "Invalid Input Provided", "code": 2001}})
			return
		}
		f.mu.Lock()
		f.nextID++
		f.creates++
		s := &pdSub{ID: fmt.Sprintf("PSUB%03d", f.nextID), URL: body.WS.DeliveryMethod.URL, FilterType: body.WS.Filter.Type,
			FilterID: body.WS.Filter.ID, Events: body.WS.Events, Secrets: []string{fmt.Sprintf("secret-%d-Yw3QtBFkz1rcVWwz", f.nextID)}}
		f.subs[s.ID] = s
		lose := f.loseNext
		f.loseNext = false
		v := f.view(s, true)
		f.mu.Unlock()
		if lose {
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				_ = conn.Close()
			}
			return
		}
		pdJSON(w, http.StatusCreated, map[string]any{"webhook_subscription": v})
	case len(p) == 2 && r.Method == http.MethodDelete:
		f.mu.Lock()
		_, ok := f.subs[p[1]]
		delete(f.subs, p[1])
		f.mu.Unlock()
		if !ok {
			pdJSON(w, http.StatusNotFound, map[string]any{"error": map[string]any{"message": "Not Found", "code": 2100}})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case len(p) == 3 && p[2] == "enable" && r.Method == http.MethodPost:
		f.mu.Lock()
		s := f.subs[p[1]]
		if s != nil {
			s.Disabled = false
		}
		f.mu.Unlock()
		if s == nil {
			pdJSON(w, http.StatusNotFound, map[string]any{"error": map[string]any{"message": "Not Found", "code": 2100}})
			return
		}
		pdJSON(w, http.StatusOK, map[string]any{"webhook_subscription": f.view(s, false)})
	default:
		pdJSON(w, http.StatusNotFound, map[string]any{"error": map[string]any{"message": "Not Found", "code": 2100}})
	}
}

func (f *fakePagerDuty) subFor(url string) *pdSub {
	f.mu.Lock()
	defer f.mu.Unlock()
	var found *pdSub
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

func (f *fakePagerDuty) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// deliver sends an incident event to s signed with each of s's secrets (while disabled,
// PagerDuty sends nothing).
func (f *fakePagerDuty) deliver(s *pdSub, id, eventType string) int {
	if s.Disabled {
		return 0
	}
	body, _ := json.Marshal(map[string]any{"event": map[string]any{
		"id": id, "event_type": eventType, "resource_type": "incident", "occurred_at": "2025-01-01T00:00:00.000Z",
		"agent": map[string]any{"id": "PLH1HKV", "type": "user_reference"}, "client": nil,
		"data": map[string]any{"id": "PGR0VU2", "type": "incident", "number": 2, "status": strings.TrimPrefix(eventType, "incident."), "title": "A little bump in the road"},
	}})
	var sigs []string
	for _, secret := range s.Secrets {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		sigs = append(sigs, "v1="+hex.EncodeToString(m.Sum(nil)))
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-PagerDuty-Signature", strings.Join(sigs, ","))
	req.Header.Set("X-Webhook-Subscription", s.ID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
