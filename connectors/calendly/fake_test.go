package calendly_test

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
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeCalendly is Calendly's API v2 as the connector uses it: /users/me, webhook
// subscriptions (list by organization and scope, paged with page_token and an absolute
// next_page; create with a signing key, refusing a second one for the same URL and scope
// with 409 as Calendly does; delete), and deliveries signed with Calendly-Webhook-Signature.
type fakeCalendly struct {
	t     *testing.T
	srv   *httptest.Server
	token string
	org   string
	user  string

	mu       sync.Mutex
	subs     map[string]*calSub // by uuid
	nextID   int
	calls    []string
	loseNext bool
}

type calSub struct {
	UUID, URL, Scope, Organization, User, SigningKey string
	Events                                           []string
}

func newFakeCalendly(t *testing.T) *fakeCalendly {
	f := &fakeCalendly{t: t, token: "calendly-pat-0123456789", subs: map[string]*calSub{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	f.org = f.srv.URL + "/organizations/ORG0000000000001"
	f.user = f.srv.URL + "/users/USR0000000000001"
	return f
}

func calJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeCalendly) uri(s *calSub) string { return f.srv.URL + "/webhook_subscriptions/" + s.UUID }

func (f *fakeCalendly) resource(s *calSub) map[string]any {
	var user any
	if s.Scope == "user" {
		user = s.User
	}
	return map[string]any{
		"uri": f.uri(s), "callback_url": s.URL, "state": "active", "scope": s.Scope, "events": s.Events,
		"organization": s.Organization, "user": user, "creator": f.user, "retry_started_at": nil,
		"created_at": "2025-01-01T00:00:00.000000Z", "updated_at": "2025-01-01T00:00:00.000000Z",
	}
}

func (f *fakeCalendly) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		calJSON(w, http.StatusUnauthorized, map[string]any{"title": "Unauthenticated", "message": "The access token is invalid"})
		return
	}
	switch {
	case r.URL.Path == "/users/me" && r.Method == http.MethodGet:
		calJSON(w, http.StatusOK, map[string]any{"resource": map[string]any{"uri": f.user, "name": "Host", "current_organization": f.org}})
	case r.URL.Path == "/webhook_subscriptions" && r.Method == http.MethodGet:
		f.list(w, r)
	case r.URL.Path == "/webhook_subscriptions" && r.Method == http.MethodPost:
		f.create(w, r)
	case strings.HasPrefix(r.URL.Path, "/webhook_subscriptions/") && r.Method == http.MethodDelete:
		id := strings.TrimPrefix(r.URL.Path, "/webhook_subscriptions/")
		f.mu.Lock()
		_, ok := f.subs[id]
		delete(f.subs, id)
		f.mu.Unlock()
		if !ok {
			calJSON(w, http.StatusNotFound, map[string]any{"title": "Resource Not Found", "message": "The server could not find the requested resource."})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		calJSON(w, http.StatusNotFound, map[string]any{"title": "Resource Not Found", "message": "The server could not find the requested resource."})
	}
}

func (f *fakeCalendly) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	scope := q.Get("scope")
	if q.Get("organization") != f.org || (scope != "organization" && scope != "user") || (scope == "user" && q.Get("user") != f.user) {
		calJSON(w, http.StatusBadRequest, map[string]any{"title": "Invalid Argument", "message": "The supplied parameters are invalid."})
		return
	}
	count, _ := strconv.Atoi(q.Get("count"))
	if count < 1 || count > 100 {
		count = 20
	}
	start, _ := strconv.Atoi(q.Get("page_token"))
	f.mu.Lock()
	var all []*calSub
	for _, s := range f.subs {
		if s.Scope == scope {
			all = append(all, s)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].UUID < all[j].UUID })
	end := min(start+count, len(all))
	page := []any{}
	for _, s := range all[min(start, len(all)):end] {
		page = append(page, f.resource(s))
	}
	f.mu.Unlock()
	pag := map[string]any{"count": len(page), "next_page": nil, "next_page_token": nil, "previous_page": nil, "previous_page_token": nil}
	if end < len(all) {
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("page_token", strconv.Itoa(end))
		pag["next_page"] = f.srv.URL + "/webhook_subscriptions?" + next.Encode()
		pag["next_page_token"] = strconv.Itoa(end)
	}
	calJSON(w, http.StatusOK, map[string]any{"collection": page, "pagination": pag})
}

func (f *fakeCalendly) create(w http.ResponseWriter, r *http.Request) {
	var body struct {
		URL          string   `json:"url"`
		Events       []string `json:"events"`
		Organization string   `json:"organization"`
		User         string   `json:"user"`
		Scope        string   `json:"scope"`
		SigningKey   string   `json:"signing_key"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.URL == "" || len(body.Events) == 0 || body.Organization != f.org ||
		(body.Scope != "organization" && body.Scope != "user") || (body.Scope == "user" && body.User != f.user) {
		calJSON(w, http.StatusBadRequest, map[string]any{"title": "Invalid Argument", "message": "The supplied parameters are invalid."})
		return
	}
	f.mu.Lock()
	for _, s := range f.subs {
		if s.URL == body.URL && s.Scope == body.Scope {
			f.mu.Unlock()
			calJSON(w, http.StatusConflict, map[string]any{"title": "Already Exists", "message": "Hook with this url already exists"})
			return
		}
	}
	f.nextID++
	s := &calSub{UUID: fmt.Sprintf("SUB%013d", f.nextID), URL: body.URL, Scope: body.Scope, Organization: body.Organization,
		User: body.User, SigningKey: body.SigningKey, Events: body.Events}
	f.subs[s.UUID] = s
	lose := f.loseNext
	f.loseNext = false
	res := f.resource(s)
	f.mu.Unlock()
	if lose {
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			_ = conn.Close()
		}
		return
	}
	calJSON(w, http.StatusCreated, map[string]any{"resource": res})
}

func (f *fakeCalendly) subFor(url string) *calSub {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.subs {
		if s.URL == url {
			c := *s
			return &c
		}
	}
	return nil
}

func (f *fakeCalendly) add(url string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	id := fmt.Sprintf("SUB%013d", f.nextID)
	f.subs[id] = &calSub{UUID: id, URL: url, Scope: "organization", Organization: f.org, Events: []string{"invitee.created"}}
}

func (f *fakeCalendly) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

func (f *fakeCalendly) count(call string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == call {
			n++
		}
	}
	return n
}

// deliver sends an invitee event of s as Calendly does, signed at sent.
func (f *fakeCalendly) deliver(s *calSub, event, invitee string, sent time.Time) int {
	body, _ := json.Marshal(map[string]any{
		"created_at": sent.UTC().Format("2006-01-02T15:04:05.000000Z"), "created_by": f.user, "event": event,
		"payload": map[string]any{
			"uri": f.srv.URL + "/scheduled_events/EVT0000000000001/invitees/" + invitee, "email": "test@example.com",
			"name": "John Doe", "status": map[bool]string{true: "canceled", false: "active"}[event == "invitee.canceled"],
			"canceled": event == "invitee.canceled", "event": f.srv.URL + "/scheduled_events/EVT0000000000001",
		},
	})
	t := strconv.FormatInt(sent.Unix(), 10)
	m := hmac.New(sha256.New, []byte(s.SigningKey))
	m.Write([]byte(t + "."))
	m.Write(body)
	req, _ := http.NewRequest(http.MethodPost, s.URL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Calendly-Webhook-Signature", "t="+t+",v1="+hex.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
