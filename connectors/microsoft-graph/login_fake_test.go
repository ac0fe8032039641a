package microsoftgraph_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// fakeLogin is the Microsoft identity platform's v2.0 endpoints as a confidential client
// (a web app with a client secret) uses them: /{tenant}/oauth2/v2.0/authorize, where the
// user signs in and consents, and /{tenant}/oauth2/v2.0/token for the authorization code
// (with PKCE), refresh token and client credentials grants, with the client secret in the
// form body. Refresh tokens are issued only with the offline_access scope; a refresh
// answers a new refresh token and the old one keeps working, as Entra ID's do, until it is
// revoked. Errors are Entra ID's: {error, error_description "AADSTS…", error_codes, …}.
type fakeLogin struct {
	mu       sync.Mutex
	codes    map[string]*loginCode
	access   map[string]time.Time // access token → expiry
	refresh  map[string]bool
	grants   map[string]int // token requests by grant_type
	tokens   []string       // every token and code issued
	failWith string         // the next refresh answers this error (invalid_grant, interaction_required)
	deny     bool           // the user cancels the sign-in
	forms    []url.Values   // the token requests' bodies
}

type loginCode struct {
	redirectURI, challenge, scope, tenant string
}

func newFakeLogin() *fakeLogin {
	return &fakeLogin{codes: map[string]*loginCode{}, access: map[string]time.Time{}, refresh: map[string]bool{}, grants: map[string]int{}}
}

func randomToken(prefix string) string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// valid reports whether token is an access token the platform issued that is live at now.
func (l *fakeLogin) valid(token string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	exp, ok := l.access[token]
	return ok && now.Before(exp)
}

func loginError(w http.ResponseWriter, status int, code string, aadsts int, desc string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error": code, "error_description": "AADSTS" + itoa(aadsts) + ": " + desc + " Trace ID: 0b8c5d2a-1e3f Correlation ID: 4c7a-9d6b Timestamp: 2025-01-01 00:00:00Z",
		"error_codes": []int{aadsts}, "timestamp": "2025-01-01 00:00:00Z",
		"trace_id": "0b8c5d2a-1e3f-4c7a-9d6b-2f1e0a9c8b7d", "correlation_id": "4c7a9d6b-2f1e-0a9c-8b7d-0b8c5d2a1e3f",
	})
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func tenantOf(path string) string {
	return strings.Split(strings.TrimPrefix(path, "/"), "/")[0]
}

// authorize signs the user in (always successfully, unless deny) and sends the browser
// back to redirect_uri with a code.
func (f *fakeGraph) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	switch {
	case q.Get("client_id") != f.clientID:
		http.Error(w, "AADSTS700016: Application not found in the directory.", http.StatusBadRequest)
		return
	case err != nil || redirect.Host == "" || q.Get("response_type") != "code":
		http.Error(w, "AADSTS50011: The redirect URI does not match.", http.StatusBadRequest)
		return
	case q.Get("code_challenge_method") != "S256":
		http.Error(w, "AADSTS501491: Invalid size of Code_Challenge parameter.", http.StatusBadRequest)
		return
	}
	l := f.login
	back := redirect.Query()
	back.Set("state", q.Get("state"))
	l.mu.Lock()
	if l.deny {
		back.Set("error", "access_denied")
		back.Set("error_description", "AADSTS65004: User declined to consent to access the app.")
	} else {
		code := randomToken("0.AXoA")
		l.tokens = append(l.tokens, code)
		l.codes[code] = &loginCode{redirectURI: q.Get("redirect_uri"), challenge: q.Get("code_challenge"), scope: q.Get("scope"), tenant: tenantOf(r.URL.Path)}
		back.Set("code", code)
		back.Set("session_state", "8d3fe8a6-5f0f-4e3a-9b43-1f4a5d7c2e10")
	}
	l.mu.Unlock()
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (f *fakeGraph) issueToken(w http.ResponseWriter, r *http.Request) {
	l := f.login
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		loginError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	form := r.PostForm
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forms = append(l.forms, form)
	l.grants[form.Get("grant_type")]++
	if form.Get("client_id") != f.clientID {
		loginError(w, http.StatusBadRequest, "unauthorized_client", 700016, "Application with identifier '"+form.Get("client_id")+"' was not found in the directory.")
		return
	}
	if form.Get("client_secret") != f.clientSecret {
		loginError(w, http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided.")
		return
	}
	scope := form.Get("scope")
	switch form.Get("grant_type") {
	case "authorization_code":
		c := l.codes[form.Get("code")]
		delete(l.codes, form.Get("code"))
		switch {
		case c == nil:
			loginError(w, http.StatusBadRequest, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed.")
			return
		case c.redirectURI != form.Get("redirect_uri"):
			loginError(w, http.StatusBadRequest, "invalid_grant", 50148, "The redirect_uri does not match the one of the authorization request.")
			return
		case s256(form.Get("code_verifier")) != c.challenge:
			loginError(w, http.StatusBadRequest, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
			return
		}
		scope = c.scope
	case "refresh_token":
		if l.failWith != "" {
			code := l.failWith
			l.failWith = ""
			if code == "interaction_required" {
				loginError(w, http.StatusBadRequest, code, 50076, "Due to a configuration change made by your administrator, you must use multi-factor authentication to access the resource.")
			} else {
				loginError(w, http.StatusBadRequest, code, 70008, "The provided authorization code or refresh token has expired due to inactivity.")
			}
			return
		}
		if !l.refresh[form.Get("refresh_token")] {
			loginError(w, http.StatusBadRequest, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
			return
		}
	case "client_credentials":
		if scope != "https://graph.microsoft.com/.default" {
			loginError(w, http.StatusBadRequest, "invalid_scope", 1002012, "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.")
			return
		}
		if t := tenantOf(r.URL.Path); t == "common" || t == "organizations" || t == "consumers" {
			loginError(w, http.StatusBadRequest, "invalid_request", 90007, "Use a tenant-specific endpoint or configure the application to be multi-tenant.")
			return
		}
	default:
		loginError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
		return
	}
	at := "eyJ0eXAiOiJKV1QiLCJub25jZSI6" + randomToken("")
	l.access[at] = f.now().Add(f.tokenTTL)
	l.tokens = append(l.tokens, at)
	out := map[string]any{
		"token_type": "Bearer", "scope": scope, "access_token": at,
		"expires_in": int(f.tokenTTL / time.Second), "ext_expires_in": int(f.tokenTTL / time.Second),
	}
	if form.Get("grant_type") != "client_credentials" && strings.Contains(" "+scope+" ", " offline_access ") {
		rt := randomToken("0.AXoA-rt.")
		l.refresh[rt] = true
		l.tokens = append(l.tokens, rt)
		out["refresh_token"] = rt
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	_ = json.NewEncoder(w).Encode(out)
}

func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// grantCount returns how many token requests of grant_type grant were made.
func (l *fakeLogin) grantCount(grant string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.grants[grant]
}

func (l *fakeLogin) set(fn func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fn()
}

// lastForm is the body of the last token request.
func (l *fakeLogin) lastForm() url.Values {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.forms[len(l.forms)-1]
}

// issued returns every code and token the platform handed out.
func (l *fakeLogin) issued() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.tokens...)
}
