package airtable_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
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
	"time"
)

// fakeAirtable is Airtable's webhooks API as the connector uses it: create (returning the
// MAC secret once), list, delete, refresh, enableNotifications and list payloads (paged
// with a cursor, 50 at most, mightHaveMore). Each change appends a payload to every
// webhook of the base and, when its notifications are on, pings its notificationUrl with
// a notification signed as Airtable signs it. It checks the token and records every call.
type fakeAirtable struct {
	t     *testing.T
	srv   *httptest.Server
	token string

	mu       sync.Mutex
	hooks    map[string]*atHook // by id
	nextID   int
	calls    []string // "METHOD path?query"
	failNext int      // answer the next payload reads 503
}

type atHook struct {
	ID, BaseID, NotificationURL string
	Secret                      []byte
	Spec                        map[string]any
	Expiration                  time.Time
	NotificationsEnabled        bool
	Payloads                    []map[string]any
}

func newFakeAirtable(t *testing.T) *fakeAirtable {
	f := &fakeAirtable{t: t, token: "patT3stT0ken.0123456789abcdef", hooks: map[string]*atHook{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func atError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"type": typ, "message": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func iso(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (f *fakeAirtable) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls = append(f.calls, r.Method+" "+r.URL.RequestURI())
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		atError(w, http.StatusUnauthorized, "AUTHENTICATION_REQUIRED", "Authentication required")
		return
	}
	p := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // v0 bases {base} webhooks [{id} [action]]
	if len(p) < 4 || p[0] != "v0" || p[1] != "bases" || p[3] != "webhooks" {
		atError(w, http.StatusNotFound, "NOT_FOUND", "Could not find what you are looking for")
		return
	}
	base := p[2]
	switch {
	case len(p) == 4 && r.Method == http.MethodGet:
		f.list(w, base)
	case len(p) == 4 && r.Method == http.MethodPost:
		f.create(w, r, base)
	case len(p) == 5 && r.Method == http.MethodDelete:
		f.mu.Lock()
		h := f.hooks[p[4]]
		if h != nil && h.BaseID == base {
			delete(f.hooks, p[4])
		}
		f.mu.Unlock()
		if h == nil || h.BaseID != base {
			atError(w, http.StatusNotFound, "NOT_FOUND", "Could not find what you are looking for")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{})
	case len(p) == 6:
		f.mu.Lock()
		h := f.hooks[p[4]]
		f.mu.Unlock()
		if h == nil || h.BaseID != base {
			atError(w, http.StatusNotFound, "NOT_FOUND", "Could not find what you are looking for")
			return
		}
		switch {
		case p[5] == "payloads" && r.Method == http.MethodGet:
			f.payloads(w, r, h)
		case p[5] == "refresh" && r.Method == http.MethodPost:
			f.mu.Lock()
			h.Expiration = time.Now().Add(7 * 24 * time.Hour)
			exp := h.Expiration
			f.mu.Unlock()
			writeJSON(w, http.StatusOK, map[string]any{"expirationTime": iso(exp)})
		case p[5] == "enableNotifications" && r.Method == http.MethodPost:
			var body struct{ Enable *bool }
			if json.NewDecoder(r.Body).Decode(&body) != nil || body.Enable == nil {
				atError(w, http.StatusUnprocessableEntity, "INVALID_REQUEST_UNKNOWN", "Invalid request: parameter validation failed. Check your request data.")
				return
			}
			f.mu.Lock()
			h.NotificationsEnabled = *body.Enable
			f.mu.Unlock()
			writeJSON(w, http.StatusOK, map[string]any{})
		default:
			atError(w, http.StatusNotFound, "NOT_FOUND", "Could not find what you are looking for")
		}
	default:
		atError(w, http.StatusNotFound, "NOT_FOUND", "Could not find what you are looking for")
	}
}

func (f *fakeAirtable) list(w http.ResponseWriter, base string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []map[string]any{}
	for _, h := range f.sortedLocked() {
		if h.BaseID != base {
			continue
		}
		var url any
		if h.NotificationURL != "" {
			url = h.NotificationURL
		}
		out = append(out, map[string]any{
			"id": h.ID, "notificationUrl": url, "specification": h.Spec, "expirationTime": iso(h.Expiration),
			"areNotificationsEnabled": h.NotificationsEnabled, "isHookEnabled": true,
			"cursorForNextPayload": len(h.Payloads) + 1, "lastSuccessfulNotificationTime": nil, "lastNotificationResult": nil,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": out})
}

func (f *fakeAirtable) sortedLocked() []*atHook {
	out := make([]*atHook, 0, len(f.hooks))
	for _, h := range f.hooks {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (f *fakeAirtable) create(w http.ResponseWriter, r *http.Request, base string) {
	var body struct {
		NotificationURL *string        `json:"notificationUrl"`
		Specification   map[string]any `json:"specification"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		atError(w, http.StatusUnprocessableEntity, "INVALID_REQUEST_UNKNOWN", "Invalid request: parameter validation failed. Check your request data.")
		return
	}
	opts, _ := body.Specification["options"].(map[string]any)
	filters, _ := opts["filters"].(map[string]any)
	types, _ := filters["dataTypes"].([]any)
	if len(types) == 0 {
		atError(w, http.StatusUnprocessableEntity, "INVALID_REQUEST_UNKNOWN", "Invalid request: parameter validation failed. Check your request data.")
		return
	}
	for k := range opts {
		if k != "filters" && k != "includes" {
			atError(w, http.StatusUnprocessableEntity, "INVALID_REQUEST_UNKNOWN", "Invalid request: unknown option "+k)
			return
		}
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	f.mu.Lock()
	f.nextID++
	h := &atHook{
		ID: fmt.Sprintf("ach%014d", f.nextID), BaseID: base, Secret: secret, Spec: body.Specification,
		Expiration: time.Now().Add(7 * 24 * time.Hour), NotificationsEnabled: true,
	}
	if body.NotificationURL != nil {
		h.NotificationURL = *body.NotificationURL
	}
	f.hooks[h.ID] = h
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"id": h.ID, "macSecretBase64": base64.StdEncoding.EncodeToString(secret), "expirationTime": iso(h.Expiration)})
}

func (f *fakeAirtable) payloads(w http.ResponseWriter, r *http.Request, h *atHook) {
	q := r.URL.Query()
	cursor, limit := 1, 50
	var err error
	if s := q.Get("cursor"); s != "" {
		if cursor, err = strconv.Atoi(s); err != nil || cursor < 1 {
			atError(w, http.StatusUnprocessableEntity, "INVALID_REQUEST_UNKNOWN", "Invalid request: cursor")
			return
		}
	}
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 50 {
			atError(w, http.StatusUnprocessableEntity, "INVALID_REQUEST_UNKNOWN", "Invalid request: limit")
			return
		}
	}
	f.mu.Lock()
	fail := f.failNext > 0
	if fail {
		f.failNext--
	}
	all := h.Payloads
	f.mu.Unlock()
	if fail {
		atError(w, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "Try again later")
		return
	}
	from := min(cursor-1, len(all))
	to := min(from+limit, len(all))
	writeJSON(w, http.StatusOK, map[string]any{"payloads": all[from:to], "cursor": to + 1, "mightHaveMore": to < len(all)})
}

// changeRecords appends a payload updating n records of table tbl to every webhook of the
// base and notifies them; it returns the record ids.
func (f *fakeAirtable) changeRecords(base, tbl string, n int) []string {
	f.mu.Lock()
	txn := 0
	for _, h := range f.hooks {
		txn = max(txn, len(h.Payloads))
	}
	records := map[string]any{}
	var ids []string
	for i := range n {
		id := fmt.Sprintf("rec%014d", txn*1000+i)
		ids = append(ids, id)
		records[id] = map[string]any{
			"current":  map[string]any{"cellValuesByFieldId": map[string]any{"fldName0000000001": fmt.Sprintf("row %d", i)}},
			"previous": map[string]any{"cellValuesByFieldId": map[string]any{"fldName0000000001": nil}},
		}
	}
	payload := map[string]any{
		"timestamp": iso(time.Now()), "baseTransactionNumber": txn + 1, "payloadFormat": "v0",
		"actionMetadata":    map[string]any{"source": "client", "sourceMetadata": map[string]any{"user": map[string]any{"id": "usr00000000000001", "email": "ada@example.com", "permissionLevel": "create"}}},
		"changedTablesById": map[string]any{tbl: map[string]any{"changedRecordsById": records}},
	}
	var notify []*atHook
	for _, h := range f.sortedLocked() {
		if h.BaseID == base {
			h.Payloads = append(h.Payloads, payload)
			if h.NotificationsEnabled && h.NotificationURL != "" {
				c := *h
				notify = append(notify, &c)
			}
		}
	}
	f.mu.Unlock()
	sort.Strings(ids)
	for _, h := range notify {
		f.notify(h)
	}
	return ids
}

// notify pings a webhook's notificationUrl as Airtable does; a failure turns the
// webhook's notifications off (Airtable gives up after repeated failures).
func (f *fakeAirtable) notify(h *atHook) int {
	body, _ := json.Marshal(map[string]any{"base": map[string]any{"id": h.BaseID}, "webhook": map[string]any{"id": h.ID}, "timestamp": iso(time.Now())})
	req, _ := http.NewRequest(http.MethodPost, h.NotificationURL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	m := hmac.New(sha256.New, h.Secret)
	m.Write(body)
	req.Header.Set("X-Airtable-Content-MAC", "hmac-sha256="+hex.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Errorf("notify %s: %v", h.NotificationURL, err)
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		f.mu.Lock()
		if cur := f.hooks[h.ID]; cur != nil {
			cur.NotificationsEnabled = false
		}
		f.mu.Unlock()
	}
	return resp.StatusCode
}

func (f *fakeAirtable) hookFor(url string) *atHook {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.hooks {
		if h.NotificationURL == url {
			c := *h
			return &c
		}
	}
	return nil
}

func (f *fakeAirtable) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

func (f *fakeAirtable) count(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}
