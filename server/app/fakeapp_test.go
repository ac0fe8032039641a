package app_test

import (
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

// fakeApp is an external app with a hooks API, for lifecycle tests. It checks the API key
// like the app would, records every call, and can be told to fail.
type fakeApp struct {
	t      *testing.T
	srv    *httptest.Server
	apiKey string
	now    func() time.Time

	mu        sync.Mutex
	hooks     map[string]*fakeHook
	nextID    int
	calls     []string // "METHOD path"
	createErr *fakeErr // next create answers this (after storing the hook when stored is true)
	refresh   map[string]int
	deleteSt  map[string]int
	validate  bool // call the hook URL with ?validationToken during create
	validated []string
}

type fakeErr struct {
	status int
	body   string
	stored bool
}

type fakeHook struct {
	ID        string `json:"id"`
	URL       string `json:"url"`
	Secret    string `json:"-"`
	ExpiresAt int64  `json:"expiresAt"`
	Project   string `json:"project"`
}

func newFakeApp(t *testing.T, now func() time.Time) *fakeApp {
	f := &fakeApp{t: t, apiKey: "key-123", now: now, hooks: map[string]*fakeHook{}, refresh: map[string]int{}, deleteSt: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeApp) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeApp) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+f.apiKey {
		f.writeJSON(w, 401, map[string]any{"message": "bad credentials"})
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 3 || parts[0] != "projects" || parts[2] != "hooks" {
		f.writeJSON(w, 404, map[string]any{"message": "no route"})
		return
	}
	project := parts[1]
	switch {
	case r.Method == http.MethodGet && len(parts) == 3:
		// Pages of ?limit hooks in id order, continued with ?after=<last id>.
		q := r.URL.Query()
		f.mu.Lock()
		list := []*fakeHook{}
		for _, h := range f.hooks {
			if h.Project == project && (q.Get("url") == "" || h.URL == q.Get("url")) && h.ID > q.Get("after") {
				c := *h
				list = append(list, &c)
			}
		}
		f.mu.Unlock()
		sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
		resp := map[string]any{"hooks": list}
		if limit, _ := strconv.Atoi(q.Get("limit")); limit > 0 && len(list) > limit {
			resp["hooks"], resp["next"] = list[:limit], list[limit-1].ID
		}
		f.writeJSON(w, 200, resp)
	case r.Method == http.MethodPost && len(parts) == 3:
		var body struct{ URL, Secret string }
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil || body.URL == "" || body.Secret == "" {
			f.writeJSON(w, 422, map[string]any{"message": "url and secret are required"})
			return
		}
		if f.validate {
			// Like Microsoft Graph: validate the URL during the create call.
			token := fmt.Sprintf("tok-%d", time.Now().UnixNano())
			resp, err := http.Get(body.URL + "?validationToken=" + token)
			if err != nil {
				f.writeJSON(w, 400, map[string]any{"message": "validation request failed: " + err.Error()})
				return
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(got) != token || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
				f.writeJSON(w, 400, map[string]any{"message": fmt.Sprintf("validation failed: %d %q", resp.StatusCode, got)})
				return
			}
			f.mu.Lock()
			f.validated = append(f.validated, body.URL)
			f.mu.Unlock()
		}
		f.mu.Lock()
		ce := f.createErr
		f.createErr = nil
		var h *fakeHook
		if ce == nil || ce.stored {
			f.nextID++
			h = &fakeHook{ID: fmt.Sprintf("hook-%d", f.nextID), URL: body.URL, Secret: body.Secret, Project: project, ExpiresAt: f.now().Add(time.Hour).UnixMilli()}
			f.hooks[h.ID] = h
		}
		f.mu.Unlock()
		if ce != nil {
			w.WriteHeader(ce.status)
			_, _ = w.Write([]byte(ce.body))
			return
		}
		f.writeJSON(w, 201, h)
	case r.Method == http.MethodPatch && len(parts) == 4:
		f.mu.Lock()
		h := f.hooks[parts[3]]
		st := f.refresh[parts[3]]
		if h != nil && st == 0 {
			h.ExpiresAt = f.now().Add(time.Hour).UnixMilli()
		}
		f.mu.Unlock()
		switch {
		case st != 0:
			f.writeJSON(w, st, map[string]any{"message": "refresh refused"})
		case h == nil:
			f.writeJSON(w, 404, map[string]any{"message": "no such hook"})
		default:
			f.writeJSON(w, 200, h)
		}
	case r.Method == http.MethodDelete && len(parts) == 4:
		f.mu.Lock()
		st := f.deleteSt[parts[3]]
		_, ok := f.hooks[parts[3]]
		if st == 0 && ok {
			delete(f.hooks, parts[3])
		}
		f.mu.Unlock()
		switch {
		case st != 0:
			f.writeJSON(w, st, map[string]any{"message": "delete refused"})
		case !ok:
			f.writeJSON(w, 404, map[string]any{"message": "no such hook"})
		default:
			w.WriteHeader(204)
		}
	default:
		f.writeJSON(w, 405, map[string]any{"message": "method not allowed"})
	}
}

func (f *fakeApp) hookList() []*fakeHook {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*fakeHook
	for _, h := range f.hooks {
		c := *h
		out = append(out, &c)
	}
	return out
}

func (f *fakeApp) count(call string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, call) {
			n++
		}
	}
	return n
}

func (f *fakeApp) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}
