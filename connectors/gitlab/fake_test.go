package gitlab_test

import (
	"bytes"
	"crypto/rand"
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
)

// fakeGitLab is the project hooks API of GitLab's REST API v4: list (paged with per_page,
// page and a Link header), create, delete, with a project addressed by id or by its
// URL-encoded path, the token checked (Authorization: Bearer or PRIVATE-TOKEN) and
// GitLab's error bodies. It sends deliveries as GitLab does: X-Gitlab-Token (the hook's
// secret token as is), X-Gitlab-Event, X-Gitlab-Event-UUID, X-Gitlab-Webhook-UUID and,
// from GitLab 17.4 on, Idempotency-Key, kept when a delivery is resent.
type fakeGitLab struct {
	t        *testing.T
	srv      *httptest.Server
	token    string
	pageSize int
	projects map[string]int64 // path with namespace → id

	mu      sync.Mutex
	next    int64
	hooks   []*fakeHook
	calls   []string // "METHOD escaped-path"
	creates []map[string]any
}

type fakeHook struct {
	ID        int64
	ProjectID int64
	URL       string
	Token     string
	Events    map[string]bool
}

func newFakeGitLab(t *testing.T) *fakeGitLab {
	f := &fakeGitLab{t: t, token: "glpat-3Xq9vR2mZk7TnB4wYc1L", pageSize: 100, next: 1044,
		projects: map[string]int64{"gitlabhq/gitlab-test": 3, "mike/diaspora": 15}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGitLab) URL() string { return f.srv.URL + "/api/v4" }

func glError(w http.ResponseWriter, status int, msg any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"message": msg})
	_, _ = w.Write(b)
}

func (h *fakeHook) json() map[string]any {
	m := map[string]any{"id": h.ID, "url": h.URL, "project_id": h.ProjectID, "enable_ssl_verification": true,
		"created_at": "2025-01-01T00:00:00.000Z", "alert_status": "executable"}
	for k, v := range h.Events {
		m[k] = v
	}
	return m
}

// project resolves an :id path segment (escaped, as GitLab wants it: a path's slashes as %2F).
func (f *fakeGitLab) project(seg string) (int64, bool) {
	if n, err := strconv.ParseInt(seg, 10, 64); err == nil {
		for _, id := range f.projects {
			if id == n {
				return n, true
			}
		}
		return 0, false
	}
	p, err := url.PathUnescape(seg)
	if err != nil {
		return 0, false
	}
	id, ok := f.projects[p]
	return id, ok
}

func (f *fakeGitLab) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	f.mu.Lock()
	f.calls = append(f.calls, r.Method+" "+path)
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+f.token && r.Header.Get("PRIVATE-TOKEN") != f.token {
		glError(w, http.StatusUnauthorized, "401 Unauthorized")
		return
	}
	parts := strings.Split(strings.TrimPrefix(path, "/api/v4/"), "/")
	if len(parts) < 3 || parts[0] != "projects" || parts[2] != "hooks" {
		glError(w, http.StatusNotFound, "404 Not Found")
		return
	}
	pid, ok := f.project(parts[1])
	if !ok {
		glError(w, http.StatusNotFound, "404 Project Not Found")
		return
	}
	switch {
	case r.Method == http.MethodGet && len(parts) == 3:
		f.list(w, r, pid)
	case r.Method == http.MethodPost && len(parts) == 3:
		f.create(w, r, pid)
	case r.Method == http.MethodDelete && len(parts) == 4:
		id, _ := strconv.ParseInt(parts[3], 10, 64)
		f.mu.Lock()
		n := len(f.hooks)
		f.hooks = slices.DeleteFunc(f.hooks, func(h *fakeHook) bool { return h.ID == id && h.ProjectID == pid })
		gone := n == len(f.hooks)
		f.mu.Unlock()
		if gone {
			glError(w, http.StatusNotFound, "404 Not found")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		glError(w, http.StatusMethodNotAllowed, "405 Method Not Allowed")
	}
}

func (f *fakeGitLab) list(w http.ResponseWriter, r *http.Request, pid int64) {
	q := r.URL.Query()
	per, _ := strconv.Atoi(q.Get("per_page"))
	if per < 1 {
		per = 20
	}
	per = min(per, f.pageSize)
	page, _ := strconv.Atoi(q.Get("page"))
	page = max(page, 1)
	f.mu.Lock()
	var all []*fakeHook
	for _, h := range f.hooks {
		if h.ProjectID == pid {
			all = append(all, h)
		}
	}
	f.mu.Unlock()
	out := []any{}
	for i := (page - 1) * per; i < len(all) && i < page*per; i++ {
		out = append(out, all[i].json())
	}
	if page*per < len(all) {
		next := *r.URL
		next.Scheme, next.Host = "http", r.Host
		nq := next.Query()
		nq.Set("page", strconv.Itoa(page+1))
		next.RawQuery = nq.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, next.String()))
		w.Header().Set("X-Next-Page", strconv.Itoa(page+1))
	}
	w.Header().Set("Content-Type", "application/json")
	b, _ := json.Marshal(out)
	_, _ = w.Write(b)
}

func (f *fakeGitLab) create(w http.ResponseWriter, r *http.Request, pid int64) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		glError(w, http.StatusBadRequest, "400 Bad request - body is not JSON")
		return
	}
	u, _ := body["url"].(string)
	if pu, err := url.Parse(u); u == "" || err != nil || (pu.Scheme != "http" && pu.Scheme != "https") {
		glError(w, http.StatusUnprocessableEntity, map[string]any{"url": []string{"is blocked: Only allowed schemes are http, https"}})
		return
	}
	h := &fakeHook{ProjectID: pid, URL: u, Events: map[string]bool{}}
	h.Token, _ = body["token"].(string)
	for k, v := range body {
		if b, ok := v.(bool); ok && strings.HasSuffix(k, "_events") {
			h.Events[k] = b
		}
	}
	f.mu.Lock()
	f.next++
	h.ID = f.next
	f.hooks = append(f.hooks, h)
	f.creates = append(f.creates, body)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	b, _ := json.Marshal(h.json())
	_, _ = w.Write(b)
}

func (f *fakeGitLab) Hooks() []fakeHook {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeHook
	for _, h := range f.hooks {
		out = append(out, *h)
	}
	return out
}

func (f *fakeGitLab) addHook(pid int64, u string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	f.hooks = append(f.hooks, &fakeHook{ID: f.next, ProjectID: pid, URL: u, Token: "x", Events: map[string]bool{"push_events": true}})
	return f.next
}

func (f *fakeGitLab) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func uuid() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// delivery is one request GitLab sends to a hook.
type delivery struct {
	event          string // X-Gitlab-Event: "Push Hook"
	eventUUID      string
	idempotencyKey string // empty: a GitLab before 17.4
	body           []byte
}

// send delivers d to h with the hook's token (or token when given).
func (f *fakeGitLab) send(h fakeHook, d delivery, token ...string) (int, string) {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.URL, bytes.NewReader(d.body))
	if err != nil {
		f.t.Fatal(err)
	}
	tok := h.Token
	if len(token) > 0 {
		tok = token[0]
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitLab/17.8.0")
	req.Header.Set("X-Gitlab-Event", d.event)
	req.Header.Set("X-Gitlab-Token", tok)
	req.Header.Set("X-Gitlab-Instance", f.srv.URL)
	req.Header.Set("X-Gitlab-Webhook-UUID", uuid())
	req.Header.Set("X-Gitlab-Event-UUID", d.eventUUID)
	if d.idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", d.idempotencyKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func issueBody(iid int, action string) []byte {
	return []byte(fmt.Sprintf(`{"object_kind":"issue","event_type":"issue","user":{"id":1,"name":"Administrator","username":"root"},`+
		`"project":{"id":3,"path_with_namespace":"gitlabhq/gitlab-test"},"object_attributes":{"id":%d,"iid":%d,"title":"New API: create/update/delete file","state":"opened","action":%q}}`,
		300+iid, iid, action))
}
