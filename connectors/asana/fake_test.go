package asana_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
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
)

// fakeAsana is a small Asana REST API for webhooks: POST /webhooks runs the X-Hook-Secret
// handshake against the target before it answers (and refuses to create the webhook
// unless the target echoes the secret with 200 or 204), GET /webhooks lists a workspace's
// webhooks in pages with an opaque offset, DELETE /webhooks/{gid} removes one. Deliveries
// and heartbeats are signed like Asana's: X-Hook-Signature, the hex HMAC-SHA256 of the
// body with the webhook's secret.
type fakeAsana struct {
	t        *testing.T
	srv      *httptest.Server
	token    string
	pageSize int

	mu         sync.Mutex
	next       int64
	workspaces map[string]string // resource gid → its workspace gid
	hooks      []*fakeHook       // in creation order
	calls      []string
	handshakes []handshake // every handshake and how the target answered it
}

type fakeHook struct {
	GID, Resource, Workspace, Target, Secret string
	Filters                                  []any
}

type handshake struct {
	Target, Secret string
	Status         int
	Echo           string
}

func newFakeAsana(t *testing.T) *fakeAsana {
	f := &fakeAsana{
		t: t, token: "2/1199986453870226/1209081737127000:5c1f0e3a9b2d4c6e", pageSize: 100, next: 1209081737121000,
		workspaces: map[string]string{"1209081737120011": "1199986453860000", "1209081737120022": "1199986453860000"},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAsana) URL() string { return f.srv.URL + "/api/1.0" }

func asanaError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"errors": []any{map[string]any{
		"message": msg, "help": "For more information on API status codes and how to handle them, read the docs on errors: https://developers.asana.com/docs/errors",
	}}})
	_, _ = w.Write(b)
}

func writeData(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	b, _ := json.Marshal(v)
	_, _ = w.Write(b)
}

func (h *fakeHook) compact() map[string]any {
	return map[string]any{
		"gid": h.GID, "resource_type": "webhook", "active": true,
		"resource": map[string]any{"gid": h.Resource, "resource_type": "project", "name": "Bugs"},
		"target":   h.Target,
	}
}

func (f *fakeAsana) serve(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, "/api/1.0")
	f.mu.Lock()
	f.calls = append(f.calls, r.Method+" "+path)
	f.mu.Unlock()
	if !ok {
		asanaError(w, http.StatusNotFound, "No matching route for request")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		asanaError(w, http.StatusUnauthorized, "Not Authorized")
		return
	}
	switch {
	case r.Method == http.MethodPost && path == "/webhooks":
		f.create(w, r)
	case r.Method == http.MethodGet && path == "/webhooks":
		f.list(w, r)
	case r.Method == http.MethodDelete && strings.HasPrefix(path, "/webhooks/"):
		gid := strings.TrimPrefix(path, "/webhooks/")
		f.mu.Lock()
		i := slices.IndexFunc(f.hooks, func(h *fakeHook) bool { return h.GID == gid })
		if i >= 0 {
			f.hooks = slices.Delete(f.hooks, i, i+1)
		}
		f.mu.Unlock()
		if i < 0 {
			asanaError(w, http.StatusNotFound, "webhook: Unknown object: "+gid)
			return
		}
		writeData(w, http.StatusOK, map[string]any{"data": map[string]any{}})
	default:
		asanaError(w, http.StatusNotFound, "No matching route for request")
	}
}

func (f *fakeAsana) create(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Data struct {
			Resource string `json:"resource"`
			Target   string `json:"target"`
			Filters  []any  `json:"filters"`
		} `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		asanaError(w, http.StatusBadRequest, "Could not parse request data, invalid JSON")
		return
	}
	switch {
	case req.Data.Resource == "":
		asanaError(w, http.StatusBadRequest, "resource: Missing input")
		return
	case req.Data.Target == "":
		asanaError(w, http.StatusBadRequest, "target: Missing input")
		return
	}
	f.mu.Lock()
	ws, known := f.workspaces[req.Data.Resource]
	f.mu.Unlock()
	if !known {
		asanaError(w, http.StatusNotFound, "resource: Unknown object: "+req.Data.Resource)
		return
	}
	// The handshake, in the middle of the create call.
	secret := randomHex(32)
	hs := handshake{Target: req.Data.Target, Secret: secret}
	hr, err := http.NewRequest(http.MethodPost, req.Data.Target, nil)
	if err == nil {
		hr.Header.Set("X-Hook-Secret", secret)
		var resp *http.Response
		if resp, err = http.DefaultClient.Do(hr); err == nil {
			hs.Status, hs.Echo = resp.StatusCode, resp.Header.Get("X-Hook-Secret")
			_ = resp.Body.Close()
		}
	}
	f.mu.Lock()
	f.handshakes = append(f.handshakes, hs)
	f.mu.Unlock()
	if err != nil || (hs.Status != http.StatusOK && hs.Status != http.StatusNoContent) || hs.Echo != secret {
		asanaError(w, http.StatusBadRequest, "The remote server did not respond with the handshake secret.")
		return
	}
	f.mu.Lock()
	f.next++
	h := &fakeHook{GID: strconv.FormatInt(f.next, 10), Resource: req.Data.Resource, Workspace: ws, Target: req.Data.Target, Secret: secret, Filters: req.Data.Filters}
	f.hooks = append(f.hooks, h)
	f.mu.Unlock()
	writeData(w, http.StatusCreated, map[string]any{"data": h.compact()})
}

// list pages a workspace's webhooks; the offset is an opaque token, as Asana's.
func (f *fakeAsana) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ws := q.Get("workspace")
	if ws == "" {
		asanaError(w, http.StatusBadRequest, "workspace: Missing input")
		return
	}
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit < 1 || limit > 100 {
		asanaError(w, http.StatusBadRequest, "limit: Must be between 1 and 100")
		return
	}
	limit = min(limit, f.pageSize)
	start := 0
	if o := q.Get("offset"); o != "" {
		b, err := base64.RawURLEncoding.DecodeString(o)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "page:"))
		if err != nil || err2 != nil {
			asanaError(w, http.StatusBadRequest, "offset: Your pagination token is invalid.")
			return
		}
		start = n
	}
	f.mu.Lock()
	var all []*fakeHook
	for _, h := range f.hooks {
		if h.Workspace == ws && (q.Get("resource") == "" || h.Resource == q.Get("resource")) {
			all = append(all, h)
		}
	}
	f.mu.Unlock()
	page := []any{}
	for i := start; i < len(all) && i < start+limit; i++ {
		page = append(page, all[i].compact())
	}
	var next any
	if start+limit < len(all) {
		off := base64.RawURLEncoding.EncodeToString([]byte("page:" + strconv.Itoa(start+limit)))
		next = map[string]any{"offset": off, "path": "/webhooks?workspace=" + ws + "&limit=" + strconv.Itoa(limit) + "&offset=" + off,
			"uri": f.URL() + "/webhooks?workspace=" + ws + "&limit=" + strconv.Itoa(limit) + "&offset=" + off}
	}
	writeData(w, http.StatusOK, map[string]any{"data": page, "next_page": next})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (f *fakeAsana) hook(gid string) *fakeHook {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.hooks {
		if h.GID == gid {
			c := *h
			return &c
		}
	}
	return nil
}

func (f *fakeAsana) Hooks() []fakeHook {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeHook
	for _, h := range f.hooks {
		out = append(out, *h)
	}
	return out
}

// forget removes a webhook as Asana does after a day of failed deliveries.
func (f *fakeAsana) forget(gid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hooks = slices.DeleteFunc(f.hooks, func(h *fakeHook) bool { return h.GID == gid })
}

// addHook adds a webhook created elsewhere (another integration, or a lost hookmap one).
func (f *fakeAsana) addHook(resource, target string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	h := &fakeHook{GID: strconv.FormatInt(f.next, 10), Resource: resource, Workspace: f.workspaces[resource], Target: target, Secret: randomHex(32)}
	f.hooks = append(f.hooks, h)
	return h.GID
}

func (f *fakeAsana) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeAsana) Handshakes() []handshake {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.handshakes)
}

// deliver POSTs {"events": events} to the webhook's target signed with its secret (or
// with secret when given), as Asana does, and returns the answer.
func (f *fakeAsana) deliver(h *fakeHook, events []map[string]any, secret ...string) (int, string) {
	f.t.Helper()
	if events == nil {
		events = []map[string]any{}
	}
	body, err := json.Marshal(map[string]any{"events": events})
	if err != nil {
		f.t.Fatal(err)
	}
	key := h.Secret
	if len(secret) > 0 {
		key = secret[0]
	}
	m := hmac.New(sha256.New, []byte(key))
	m.Write(body)
	req, err := http.NewRequest(http.MethodPost, h.Target, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	req.Header.Set("X-Hook-Signature", hex.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// event is an Asana event as the webhooks guide shows them.
func event(action, resourceType, gid, createdAt string, change map[string]any) map[string]any {
	e := map[string]any{
		"user":       map[string]any{"gid": "1199986453870226", "resource_type": "user"},
		"created_at": createdAt,
		"action":     action,
		"resource":   map[string]any{"gid": gid, "resource_type": resourceType},
		"parent":     nil,
	}
	if change != nil {
		e["change"] = change
	}
	return e
}
