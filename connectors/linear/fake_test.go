package linear_test

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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// fakeLinear is Linear's GraphQL API as the connector uses it: the webhooks query (100 a
// page, a cursor), webhookCreate (taking the secret it is given) and webhookDelete, with
// GraphQL errors answered 200 as Linear does, and deliveries signed with Linear-Signature
// and stamped with webhookTimestamp.
type fakeLinear struct {
	t      *testing.T
	srv    *httptest.Server
	apiKey string

	mu       sync.Mutex
	hooks    map[string]*linHook
	order    []string // creation order: the webhooks query's order
	calls    []string // the operation names
	loseNext bool     // store the next created webhook, then drop the connection
}

type linHook struct {
	ID, URL, Secret, TeamID, Label string
	AllPublicTeams                 bool
	ResourceTypes                  []string
}

func newFakeLinear(t *testing.T) *fakeLinear {
	f := &fakeLinear{t: t, apiKey: "lin_api_fake0123456789", hooks: map[string]*linHook{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func gqlJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func gqlError(w http.ResponseWriter, msg, code string) {
	gqlJSON(w, http.StatusOK, map[string]any{"data": nil, "errors": []any{map[string]any{"message": msg, "extensions": map[string]any{"code": code}}}})
}

func (f *fakeLinear) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/graphql" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != f.apiKey {
		gqlJSON(w, http.StatusBadRequest, map[string]any{"errors": []any{map[string]any{"message": "Authentication required, not authenticated", "extensions": map[string]any{"code": "AUTHENTICATION_ERROR"}}}})
		return
	}
	var req struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Query == "" {
		gqlJSON(w, http.StatusBadRequest, map[string]any{"errors": []any{map[string]any{"message": "Must provide query string."}}})
		return
	}
	name := strings.Fields(req.Query)[1]
	name = name[:strings.IndexAny(name+"(", "(")]
	f.mu.Lock()
	f.calls = append(f.calls, name)
	f.mu.Unlock()
	switch name {
	case "Webhooks":
		f.list(w, req.Variables)
	case "WebhookCreate":
		f.create(w, req.Variables)
	case "WebhookDelete":
		id, _ := req.Variables["id"].(string)
		f.mu.Lock()
		_, ok := f.hooks[id]
		delete(f.hooks, id)
		f.mu.Unlock()
		if !ok {
			gqlError(w, "Entity not found", "INPUT_ERROR")
			return
		}
		gqlJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"webhookDelete": map[string]any{"success": true}}})
	default:
		gqlError(w, "Unknown operation "+name, "GRAPHQL_VALIDATION_FAILED")
	}
}

func (f *fakeLinear) list(w http.ResponseWriter, vars map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	after, _ := vars["after"].(string)
	start := 0
	if after != "" {
		start = sort.SearchStrings(f.sortedIDsLocked(), after) + 1
	}
	ids := f.sortedIDsLocked()
	end := min(start+100, len(ids))
	nodes := []any{}
	for _, id := range ids[min(start, len(ids)):end] {
		h := f.hooks[id]
		nodes = append(nodes, map[string]any{"id": h.ID, "url": h.URL, "enabled": true, "secret": h.Secret})
	}
	var cursor any
	if end > 0 && end <= len(ids) {
		cursor = ids[end-1]
	}
	gqlJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"webhooks": map[string]any{
		"nodes": nodes, "pageInfo": map[string]any{"hasNextPage": end < len(ids), "endCursor": cursor},
	}}})
}

func (f *fakeLinear) sortedIDsLocked() []string {
	ids := make([]string, 0, len(f.hooks))
	for id := range f.hooks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (f *fakeLinear) create(w http.ResponseWriter, vars map[string]any) {
	in, _ := vars["input"].(map[string]any)
	url, _ := in["url"].(string)
	if !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://127.0.0.1") {
		gqlError(w, "Invalid input: url must be a valid URL using https", "INPUT_ERROR")
		return
	}
	types, _ := in["resourceTypes"].([]any)
	team, _ := in["teamId"].(string)
	all, _ := in["allPublicTeams"].(bool)
	if len(types) == 0 || (team == "") == !all {
		gqlError(w, "Invalid input: give resourceTypes and either teamId or allPublicTeams", "INPUT_ERROR")
		return
	}
	h := &linHook{ID: uuid.NewString(), URL: url, TeamID: team, AllPublicTeams: all}
	h.Secret, _ = in["secret"].(string)
	if h.Secret == "" {
		h.Secret = "lin_wh_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	}
	h.Label, _ = in["label"].(string)
	for _, t := range types {
		h.ResourceTypes = append(h.ResourceTypes, fmt.Sprint(t))
	}
	f.mu.Lock()
	f.hooks[h.ID] = h
	lose := f.loseNext
	f.loseNext = false
	f.mu.Unlock()
	if lose {
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			_ = conn.Close()
		}
		return
	}
	gqlJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"webhookCreate": map[string]any{
		"success": true, "webhook": map[string]any{"id": h.ID, "enabled": true, "secret": h.Secret},
	}}})
}

// add stores a webhook made elsewhere.
func (f *fakeLinear) add(id, url string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hooks[id] = &linHook{ID: id, URL: url, Secret: "lin_wh_other", AllPublicTeams: true, ResourceTypes: []string{"Issue"}}
}

func (f *fakeLinear) hookFor(url string) *linHook {
	f.mu.Lock()
	defer f.mu.Unlock()
	var found *linHook
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

func (f *fakeLinear) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == op {
			n++
		}
	}
	return n
}

func (f *fakeLinear) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// deliver sends a data change of h as Linear does, stamped at sent.
func (f *fakeLinear) deliver(h *linHook, action, typ string, data map[string]any, sent time.Time) (int, string) {
	body, _ := json.Marshal(map[string]any{
		"action": action, "type": typ, "data": data, "createdAt": sent.UTC().Format("2006-01-02T15:04:05.000Z"),
		"actor":          map[string]any{"id": "2e6eea91-1111-0000-9486-acea0603064d", "type": "user", "name": "Linear User"},
		"organizationId": "dec6a26b-61e6-4a33-9ba0-1d5c6b9bed3a", "webhookId": h.ID, "webhookTimestamp": sent.UnixMilli(),
		"url": "https://linear.app/linear/issue/LIN-1", "updatedFrom": nil,
	})
	req, _ := http.NewRequest(http.MethodPost, h.URL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Linear-Delivery", uuid.NewString())
	req.Header.Set("Linear-Event", typ)
	req.Header.Set("User-Agent", "Linear-Webhook")
	m := hmac.New(sha256.New, []byte(h.Secret))
	m.Write(body)
	req.Header.Set("Linear-Signature", hex.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
