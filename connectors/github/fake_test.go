package github_test

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	apiVersion      = "2022-11-28"
	badCredentials  = `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}`
	notFound        = `{"message":"Not Found","documentation_url":"https://docs.github.com/rest/repos/webhooks","status":"404"}`
	maskedSecret    = "********"
	hookshotVersion = "GitHub-Hookshot/8a3e2f1"
)

// fakeGitHub is a small GitHub REST API with repositories and their webhooks ("Repository
// webhooks"): it checks the token and headers like GitHub, validates create bodies, pages
// lists with Link headers (pointing at /repositories/{id}/hooks, as GitHub does), records
// every call, and sends deliveries signed like GitHub (X-Hub-Signature-256).
type fakeGitHub struct {
	srv      *httptest.Server
	prefix   string // "" like api.github.com, "/api/v3" like GitHub Enterprise Server
	token    string
	pageSize int // the most hooks a page holds, whatever per_page asks

	mu         sync.Mutex
	repos      map[string]*fakeRepo // by lower-case "owner/name"
	nextID     int64
	calls      []string // "METHOD path?query"
	headers    []http.Header
	creates    []map[string]any
	dropCreate bool // the next create stores the hook, then drops the connection unanswered
	// pingOnCreate makes a create send the ping before it answers (GitHub sends it
	// asynchronously right after the create: this is the earliest it can arrive).
	pingOnCreate bool
	pings        []sent // the answers to those pings
}

type fakeRepo struct {
	ID    int64
	Owner string
	Name  string
	Hooks map[int64]*fakeHook
}

// fakeHook is a repository webhook as GitHub stores it (the secret is never shown).
type fakeHook struct {
	ID          int64
	Active      bool
	Events      []string
	URL         string
	ContentType string
	InsecureSSL string
	Secret      string
	CreatedAt   string
}

func newFakeGitHub(t *testing.T, prefix string) *fakeGitHub {
	f := &fakeGitHub{
		prefix: prefix, token: "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
		pageSize: 2, repos: map[string]*fakeRepo{}, nextID: 12345677,
	}
	f.addRepo("octo-org", "hello-world", 1296269)
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// baseURI is the REST API base a connection points at.
func (f *fakeGitHub) baseURI() string { return f.srv.URL + f.prefix }

func (f *fakeGitHub) addRepo(owner, name string, id int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.repos[strings.ToLower(owner+"/"+name)] = &fakeRepo{ID: id, Owner: owner, Name: name, Hooks: map[int64]*fakeHook{}}
}

func writeRaw(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	writeRaw(w, status, string(b))
}

func validationFailed(w http.ResponseWriter, message, doc string) {
	writeJSON(w, 422, map[string]any{
		"message":           "Validation Failed",
		"errors":            []any{map[string]any{"resource": "Hook", "code": "custom", "message": message}},
		"documentation_url": "https://docs.github.com/rest/repos/webhooks#" + doc,
		"status":            "422",
	})
}

var (
	repoHooksPath = regexp.MustCompile(`^/repos/([^/]+)/([^/]+)/hooks$`)
	repoHookPath  = regexp.MustCompile(`^/repos/([^/]+)/([^/]+)/hooks/([0-9]+)$`)
	byIDHooksPath = regexp.MustCompile(`^/repositories/([0-9]+)/hooks$`)
)

func (f *fakeGitHub) serve(w http.ResponseWriter, r *http.Request) {
	call := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		call += "?" + r.URL.RawQuery
	}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.headers = append(f.headers, r.Header.Clone())
	f.mu.Unlock()

	w.Header().Set("X-GitHub-Api-Version-Selected", apiVersion)
	path, ok := strings.CutPrefix(r.URL.Path, f.prefix)
	if !ok {
		writeRaw(w, 404, notFound)
		return
	}
	// GitHub refuses requests without a User-Agent and unknown API versions.
	if r.Header.Get("User-Agent") == "" {
		writeRaw(w, 403, `{"message":"Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required)."}`)
		return
	}
	if v := r.Header.Get("X-GitHub-Api-Version"); v != "" && v != apiVersion {
		writeRaw(w, 400, fmt.Sprintf(`{"message":"API version %s is not supported.","documentation_url":"https://docs.github.com/rest/overview/api-versions","status":"400"}`, v))
		return
	}
	auth := r.Header.Get("Authorization")
	if auth != "Bearer "+f.token && auth != "token "+f.token {
		writeRaw(w, 401, badCredentials)
		return
	}

	switch {
	case repoHooksPath.MatchString(path):
		m := repoHooksPath.FindStringSubmatch(path)
		repo := f.repo(m[1], m[2])
		switch {
		case repo == nil:
			writeRaw(w, 404, notFound)
		case r.Method == http.MethodGet:
			f.list(w, r, repo)
		case r.Method == http.MethodPost:
			f.create(w, r, repo)
		default:
			writeRaw(w, 404, notFound)
		}
	case byIDHooksPath.MatchString(path) && r.Method == http.MethodGet:
		id, _ := strconv.ParseInt(byIDHooksPath.FindStringSubmatch(path)[1], 10, 64)
		var repo *fakeRepo
		f.mu.Lock()
		for _, rp := range f.repos {
			if rp.ID == id {
				repo = rp
			}
		}
		f.mu.Unlock()
		if repo == nil {
			writeRaw(w, 404, notFound)
			return
		}
		f.list(w, r, repo)
	case repoHookPath.MatchString(path) && r.Method == http.MethodDelete:
		m := repoHookPath.FindStringSubmatch(path)
		repo := f.repo(m[1], m[2])
		id, _ := strconv.ParseInt(m[3], 10, 64)
		f.mu.Lock()
		ok := repo != nil && repo.Hooks[id] != nil
		if ok {
			delete(repo.Hooks, id)
		}
		f.mu.Unlock()
		if !ok {
			writeRaw(w, 404, notFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		writeRaw(w, 404, notFound)
	}
}

// repo finds a repository; owner and name are not case sensitive.
func (f *fakeGitHub) repo(owner, name string) *fakeRepo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.repos[strings.ToLower(owner+"/"+name)]
}

// hookJSON is a hook as GitHub's API shows it.
func (f *fakeGitHub) hookJSON(base string, repo *fakeRepo, h *fakeHook) map[string]any {
	config := map[string]any{"content_type": h.ContentType, "insecure_ssl": h.InsecureSSL, "url": h.URL}
	if h.Secret != "" {
		config["secret"] = maskedSecret
	}
	self := fmt.Sprintf("%s/repos/%s/%s/hooks/%d", base, repo.Owner, repo.Name, h.ID)
	return map[string]any{
		"type": "Repository", "id": h.ID, "name": "web", "active": h.Active, "events": h.Events,
		"config": config, "updated_at": h.CreatedAt, "created_at": h.CreatedAt,
		"url": self, "test_url": self + "/test", "ping_url": self + "/pings", "deliveries_url": self + "/deliveries",
		"last_response": map[string]any{"code": nil, "status": "unused", "message": nil},
	}
}

func (f *fakeGitHub) list(w http.ResponseWriter, r *http.Request, repo *fakeRepo) {
	q := r.URL.Query()
	perPage, page := 30, 1
	if s := q.Get("per_page"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			perPage = min(n, 100)
		}
	}
	if s := q.Get("page"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			page = n
		}
	}
	size := min(perPage, f.pageSize)
	base := "http://" + r.Host + f.prefix

	f.mu.Lock()
	var hooks []*fakeHook
	for _, h := range repo.Hooks {
		hooks = append(hooks, h)
	}
	slices.SortFunc(hooks, func(a, b *fakeHook) int { return cmp.Compare(a.ID, b.ID) })
	last := max(1, (len(hooks)+size-1)/size)
	out := []any{}
	for i := (page - 1) * size; i < min(page*size, len(hooks)); i++ {
		out = append(out, f.hookJSON(base, repo, hooks[i]))
	}
	f.mu.Unlock()

	pageURL := func(n int) string {
		return fmt.Sprintf("%s/repositories/%d/hooks?per_page=%d&page=%d", base, repo.ID, perPage, n)
	}
	var links []string
	if page > 1 {
		links = append(links, fmt.Sprintf(`<%s>; rel="prev"`, pageURL(page-1)))
	}
	if page < last {
		links = append(links, fmt.Sprintf(`<%s>; rel="next"`, pageURL(page+1)), fmt.Sprintf(`<%s>; rel="last"`, pageURL(last)))
	}
	if page > 1 {
		links = append(links, fmt.Sprintf(`<%s>; rel="first"`, pageURL(1)))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	writeJSON(w, 200, out)
}

func (f *fakeGitHub) create(w http.ResponseWriter, r *http.Request, repo *fakeRepo) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		writeRaw(w, 400, `{"message":"Problems parsing JSON","documentation_url":"https://docs.github.com/rest/repos/webhooks#create-a-repository-webhook","status":"400"}`)
		return
	}
	f.mu.Lock()
	f.creates = append(f.creates, body)
	f.mu.Unlock()

	if name, ok := body["name"]; ok && name != "web" {
		validationFailed(w, "Name must be 'web'", "create-a-repository-webhook")
		return
	}
	config, _ := body["config"].(map[string]any)
	hookURL, _ := config["url"].(string)
	if u, err := url.Parse(hookURL); hookURL == "" || err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		validationFailed(w, "Config must contain URL for webhooks", "create-a-repository-webhook")
		return
	}
	contentType, _ := config["content_type"].(string)
	if contentType == "" {
		contentType = "form" // GitHub's default
	}
	if contentType != "json" && contentType != "form" {
		validationFailed(w, "Content type must be json or form", "create-a-repository-webhook")
		return
	}
	insecure := "0"
	switch v := config["insecure_ssl"].(type) {
	case nil:
	case string:
		insecure = v
	case float64:
		insecure = strconv.FormatFloat(v, 'f', -1, 64)
	}
	if insecure != "0" && insecure != "1" {
		validationFailed(w, "Insecure ssl must be 0 or 1", "create-a-repository-webhook")
		return
	}
	secret, _ := config["secret"].(string)
	events := []string{"push"} // GitHub's default
	if v, ok := body["events"]; ok {
		list, ok := v.([]any)
		events = events[:0]
		for _, e := range list {
			s, isStr := e.(string)
			ok = ok && isStr && s != ""
			events = append(events, s)
		}
		if !ok || len(events) == 0 {
			validationFailed(w, "Events must be a list of event names", "create-a-repository-webhook")
			return
		}
	}
	active := true
	if v, ok := body["active"].(bool); ok {
		active = v
	}

	f.mu.Lock()
	for _, h := range repo.Hooks {
		if h.URL == hookURL {
			f.mu.Unlock()
			validationFailed(w, "Hook already exists on this repository", "create-a-repository-webhook")
			return
		}
	}
	f.nextID++
	h := &fakeHook{
		ID: f.nextID, Active: active, Events: events, URL: hookURL, ContentType: contentType,
		InsecureSSL: insecure, Secret: secret, CreatedAt: time.Now().UTC().Format(time.RFC3339),
	}
	repo.Hooks[h.ID] = h
	drop := f.dropCreate
	f.dropCreate = false
	pingNow := f.pingOnCreate
	out := f.hookJSON("http://"+r.Host+f.prefix, repo, h)
	f.mu.Unlock()
	if pingNow {
		res := f.ping(repo.Owner, repo.Name, h.ID)
		f.mu.Lock()
		f.pings = append(f.pings, res)
		f.mu.Unlock()
	}
	if drop {
		// Stored, but the answer is lost: the connection closes before any response.
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			_ = conn.Close()
		}
		return
	}
	w.Header().Set("Location", out["url"].(string))
	writeJSON(w, 201, out)
}

// addHook stores a hook as if created earlier (by hookmap or by someone else).
func (f *fakeGitHub) addHook(owner, name, hookURL, secret string) int64 {
	repo := f.repo(owner, name)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	repo.Hooks[f.nextID] = &fakeHook{
		ID: f.nextID, Active: true, Events: []string{"push"}, URL: hookURL, ContentType: "json",
		InsecureSSL: "0", Secret: secret, CreatedAt: time.Now().UTC().Format(time.RFC3339),
	}
	return f.nextID
}

// hooks is a copy of a repository's hooks in id order.
func (f *fakeGitHub) hooks(owner, name string) []fakeHook {
	repo := f.repo(owner, name)
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeHook
	for _, h := range repo.Hooks {
		out = append(out, *h)
	}
	slices.SortFunc(out, func(a, b fakeHook) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// count is how many calls started with prefix ("POST /repos/…").
func (f *fakeGitHub) count(prefix string) int {
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

// callList, headerList and createList are copies of what the fake recorded.
func (f *fakeGitHub) callList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeGitHub) headerList() []http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.headers)
}

func (f *fakeGitHub) createList() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.creates)
}

func (f *fakeGitHub) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// delivery is one webhook request as GitHub sends it.
type delivery struct {
	Event     string // X-GitHub-Event
	ID        string // X-GitHub-Delivery: a GUID, the same when GitHub redelivers
	Body      string // the JSON payload
	Form      bool   // the hook's content type is form: payload=<json>
	Secret    string // signing key; the hook's secret when empty
	Signature string // X-Hub-Signature-256 as given when non-empty
}

type sent struct {
	Status int
	Body   string
}

// sign is GitHub's X-Hub-Signature-256: "sha256=" + hex(HMAC-SHA256(secret, raw body)).
func sign(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// send POSTs d to the hook's URL the way GitHub does, signed with the hook's secret.
// It may run on the fake's own goroutines: it reports failures as status 0.
func (f *fakeGitHub) send(owner, name string, hookID int64, d delivery) sent {
	repo := f.repo(owner, name)
	f.mu.Lock()
	h := *repo.Hooks[hookID]
	repoID := repo.ID
	f.mu.Unlock()
	body, contentType := d.Body, "application/json"
	if d.Form || h.ContentType == "form" {
		body, contentType = url.Values{"payload": {d.Body}}.Encode(), "application/x-www-form-urlencoded"
	}
	secret := d.Secret
	if secret == "" {
		secret = h.Secret
	}
	req, err := http.NewRequest(http.MethodPost, h.URL, bytes.NewReader([]byte(body)))
	if err != nil {
		return sent{Body: err.Error()}
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", hookshotVersion)
	req.Header.Set("X-GitHub-Event", d.Event)
	req.Header.Set("X-GitHub-Delivery", d.ID)
	req.Header.Set("X-GitHub-Hook-ID", strconv.FormatInt(h.ID, 10))
	req.Header.Set("X-GitHub-Hook-Installation-Target-Type", "repository")
	req.Header.Set("X-GitHub-Hook-Installation-Target-ID", strconv.FormatInt(repoID, 10))
	switch {
	case d.Signature != "":
		req.Header.Set("X-Hub-Signature-256", d.Signature)
	case secret != "":
		req.Header.Set("X-Hub-Signature-256", sign(secret, body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return sent{Body: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return sent{Status: resp.StatusCode, Body: string(b)}
}

// ping sends the ping GitHub sends right after a hook is created.
func (f *fakeGitHub) ping(owner, name string, hookID int64) sent {
	repo := f.repo(owner, name)
	f.mu.Lock()
	hook := f.hookJSON(f.baseURI(), repo, repo.Hooks[hookID])
	f.mu.Unlock()
	payload, _ := json.Marshal(map[string]any{
		"zen": "Design for failure.", "hook_id": hookID, "hook": hook,
		"repository": map[string]any{"id": repo.ID, "name": repo.Name, "full_name": repo.Owner + "/" + repo.Name},
		"sender":     map[string]any{"login": "octocat", "id": 1, "type": "User"},
	})
	return f.send(owner, name, hookID, delivery{Event: "ping", ID: "4ab3b7d0-7d3a-11ef-8a4e-1f2e3d4c5b6a", Body: string(payload)})
}
