package app_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// oauthApp is an external app that authenticates with OAuth 2.0, as the oauthapp test
// connector expects: an authorization endpoint (the user always consents, unless told to
// deny), a token endpoint (authorization code with PKCE S256, refresh tokens rotated on
// every use, client credentials; client_secret_basic), and a hooks API that takes only a
// live access token. Tokens expire on the test's clock. It records every call.
type oauthApp struct {
	t            testing.TB
	srv          *httptest.Server
	clientID     string
	clientSecret string
	now          func() time.Time
	ttl          time.Duration // lifetime of the access tokens it issues

	mu       sync.Mutex
	codes    map[string]*authCode
	access   map[string]time.Time // access token → expiry
	refresh  map[string]bool      // live refresh tokens
	hooks    map[string]string    // hook id → URL
	nextHook int
	calls    []string       // "METHOD path (grant)"
	secrets  []string       // every code, access and refresh token issued
	grants   map[string]int // token requests by grant_type
	deny     bool           // the user declines at the authorization endpoint
	gate     chan struct{}  // when set, token requests wait until it is closed
	arrived  chan struct{}  // a token request arrived (buffered; when gate is set)
}

type authCode struct {
	clientID, redirectURI, challenge string
}

func newOAuthApp(t testing.TB, now func() time.Time) *oauthApp {
	a := &oauthApp{
		t: t, clientID: "client-" + randomHex(4), clientSecret: "client-secret-" + randomHex(12), now: now, ttl: time.Hour,
		codes: map[string]*authCode{}, access: map[string]time.Time{}, refresh: map[string]bool{}, hooks: map[string]string{},
		grants: map[string]int{},
	}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (a *oauthApp) URL() string { return a.srv.URL }

func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (a *oauthApp) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/authorize" && r.Method == http.MethodGet:
		a.authorize(w, r)
	case r.URL.Path == "/oauth/token" && r.Method == http.MethodPost:
		a.token(w, r)
	case strings.HasPrefix(r.URL.Path, "/api/"):
		a.api(w, r)
	default:
		http.NotFound(w, r)
	}
}

// authorize is where the user's browser goes: it checks the request like a provider would
// and sends the browser back to redirect_uri with a code (or access_denied).
func (a *oauthApp) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, "GET /authorize")
	redirect, err := url.Parse(q.Get("redirect_uri"))
	switch {
	case q.Get("client_id") != a.clientID:
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	case err != nil || redirect.Scheme == "" || q.Get("response_type") != "code":
		http.Error(w, "bad redirect_uri or response_type", http.StatusBadRequest)
		return
	case q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43:
		http.Error(w, "PKCE S256 required", http.StatusBadRequest)
		return
	}
	back := redirect.Query()
	back.Set("state", q.Get("state"))
	if a.deny {
		back.Set("error", "access_denied")
		back.Set("error_description", "The user declined.")
	} else {
		code := "code-" + randomHex(16)
		a.secrets = append(a.secrets, code)
		a.codes[code] = &authCode{clientID: q.Get("client_id"), redirectURI: q.Get("redirect_uri"), challenge: q.Get("code_challenge")}
		back.Set("code", code)
		back.Set("account", "acct-42")
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (a *oauthApp) tokenError(w http.ResponseWriter, status int, code, desc string) {
	writeJSONStatus(w, status, map[string]any{"error": code, "error_description": desc})
}

func (a *oauthApp) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		a.tokenError(w, http.StatusBadRequest, "invalid_request", "a form body is required")
		return
	}
	grant := r.PostForm.Get("grant_type")
	a.mu.Lock()
	a.calls = append(a.calls, "POST /oauth/token ("+grant+")")
	a.grants[grant]++
	gate, arrived := a.gate, a.arrived
	a.mu.Unlock()
	if gate != nil {
		arrived <- struct{}{}
		<-gate
	}
	id, secret, ok := r.BasicAuth()
	if !ok || id != a.clientID || secret != a.clientSecret {
		a.tokenError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed.")
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch grant {
	case "authorization_code":
		code := a.codes[r.PostForm.Get("code")]
		delete(a.codes, r.PostForm.Get("code")) // single use
		switch {
		case code == nil:
			a.tokenError(w, http.StatusBadRequest, "invalid_grant", "The authorization code is invalid or was used.")
			return
		case code.redirectURI != r.PostForm.Get("redirect_uri"):
			a.tokenError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match.")
			return
		case s256(r.PostForm.Get("code_verifier")) != code.challenge:
			a.tokenError(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed.")
			return
		}
		writeJSONStatus(w, http.StatusOK, a.issueLocked(true))
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		if !a.refresh[rt] {
			a.tokenError(w, http.StatusBadRequest, "invalid_grant", "The refresh token was revoked.")
			return
		}
		delete(a.refresh, rt) // rotated: a refresh token is used once
		writeJSONStatus(w, http.StatusOK, a.issueLocked(true))
	case "client_credentials":
		writeJSONStatus(w, http.StatusOK, a.issueLocked(false))
	default:
		a.tokenError(w, http.StatusBadRequest, "unsupported_grant_type", grant)
	}
}

func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// issueLocked makes a new access token (and refresh token) and answers RFC 6749 §5.1.
func (a *oauthApp) issueLocked(withRefresh bool) map[string]any {
	at := "at-" + randomHex(16)
	a.secrets = append(a.secrets, at)
	a.access[at] = a.now().Add(a.ttl)
	out := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int(a.ttl / time.Second), "scope": "hooks.write"}
	if withRefresh {
		rt := "rt-" + randomHex(16)
		a.secrets = append(a.secrets, rt)
		a.refresh[rt] = true
		out["refresh_token"] = rt
	}
	return out
}

// api is the hooks API: a live access token or 401.
func (a *oauthApp) api(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	a.calls = append(a.calls, r.Method+" "+r.URL.Path)
	exp, ok := a.access[token]
	if !ok || !a.now().Before(exp) {
		writeJSONStatus(w, http.StatusUnauthorized, map[string]any{"error": "invalid_token"})
		a.calls[len(a.calls)-1] += " 401"
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/api")
	switch {
	case path == "/hooks" && r.Method == http.MethodPost:
		var body struct{ URL string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		a.nextHook++
		id := fmt.Sprintf("hook-%d", a.nextHook)
		a.hooks[id] = body.URL
		writeJSONStatus(w, http.StatusCreated, map[string]any{"id": id, "url": body.URL})
	case strings.HasPrefix(path, "/hooks/") && r.Method == http.MethodPatch:
		id := strings.TrimPrefix(path, "/hooks/")
		if _, ok := a.hooks[id]; !ok {
			writeJSONStatus(w, http.StatusNotFound, map[string]any{"error": "not_found"})
			return
		}
		writeJSONStatus(w, http.StatusOK, map[string]any{"id": id})
	case strings.HasPrefix(path, "/hooks/") && r.Method == http.MethodDelete:
		delete(a.hooks, strings.TrimPrefix(path, "/hooks/"))
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

// revokeAccess makes every access token issued so far invalid (the app rotated its keys):
// the next API call answers 401.
func (a *oauthApp) revokeAccess() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.access)
}

// revokeGrant revokes every refresh token and access token (the user removed the app).
func (a *oauthApp) revokeGrant() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.access)
	clear(a.refresh)
}

// grantCount returns how many token requests of grant_type grant were made.
func (a *oauthApp) grantCount(grant string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.grants[grant]
}

func (a *oauthApp) callLog() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.calls...)
}

func (a *oauthApp) set(fn func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fn()
}

// hold makes token requests wait until the returned function is called.
func (a *oauthApp) hold() (arrived <-chan struct{}, release func()) {
	gate, arr := make(chan struct{}), make(chan struct{}, 100)
	a.set(func() { a.gate, a.arrived = gate, arr })
	return arr, func() {
		a.set(func() { a.gate = nil })
		close(gate)
	}
}

// issued returns every code, access token and refresh token the app handed out.
func (a *oauthApp) issued() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.secrets...)
}

// tokens issues an access and a refresh token outside hookmap (a client service that
// connected the account itself).
func (a *oauthApp) tokens(t testing.TB) map[string]any {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.issueLocked(true)
}
