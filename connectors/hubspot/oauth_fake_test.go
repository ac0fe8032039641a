package hubspot_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// fakeOAuth is HubSpot's OAuth for public apps: app.hubspot.com/oauth/authorize, where a
// user installs the app into their account (the portal is chosen there), and
// api.hubapi.com/oauth/v1/token for the authorization code and refresh token grants, the
// client id and secret in the form body. Access tokens live 30 minutes; a refresh answers
// the same refresh token again. Uninstalling the app revokes the account's tokens; HubSpot
// then refuses the refresh token with 400 {"status": "BAD_REFRESH_TOKEN"}.
type fakeOAuth struct {
	now      func() time.Time
	clientID string
	ttl      time.Duration

	mu      sync.Mutex
	portal  int64 // the account the next user installs the app into
	codes   map[string]*hsCode
	access  map[string]hsToken
	refresh map[string]int64 // refresh token → portal
	grants  map[string]int
	issued  []string
}

type hsCode struct {
	portal      int64
	redirectURI string
}

type hsToken struct {
	portal  int64
	expires time.Time
}

func newFakeOAuth(now func() time.Time) *fakeOAuth {
	return &fakeOAuth{now: now, clientID: "5f3c4a2e-7d1b-4f6a-9c8e-0a1b2c3d4e5f", ttl: 30 * time.Minute,
		codes: map[string]*hsCode{}, access: map[string]hsToken{}, refresh: map[string]int64{}, grants: map[string]int{}}
}

func hsRandom(prefix string) string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func hsError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]any{"status": code, "message": msg, "correlationId": "4f3c1f5e-1d2b-4c6a-9a8e-0b1c2d3e4f50"})
	writeJSON(w, status, string(b))
}

func (o *fakeOAuth) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if q.Get("client_id") != o.clientID || err != nil || redirect.Host == "" || q.Get("scope") == "" {
		http.Error(w, "Authorization failed because there is a mismatch between the redirect URL, client ID or scopes", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	code := hsRandom("na1-")
	o.issued = append(o.issued, code)
	o.codes[code] = &hsCode{portal: o.portal, redirectURI: q.Get("redirect_uri")}
	o.mu.Unlock()
	back := redirect.Query()
	back.Set("code", code)
	back.Set("state", q.Get("state"))
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (o *fakeOAuth) token(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.ParseForm() != nil {
		hsError(w, http.StatusBadRequest, "BAD_GRANT_TYPE", "the request must be form-encoded")
		return
	}
	form := r.PostForm
	o.mu.Lock()
	defer o.mu.Unlock()
	o.grants[form.Get("grant_type")]++
	if form.Get("client_id") != o.clientID {
		hsError(w, http.StatusBadRequest, "BAD_CLIENT_ID", "missing or unknown client id")
		return
	}
	if form.Get("client_secret") != clientSecret {
		hsError(w, http.StatusBadRequest, "BAD_CLIENT_SECRET", "missing or invalid client secret")
		return
	}
	var portal int64
	var rt string
	switch form.Get("grant_type") {
	case "authorization_code":
		c := o.codes[form.Get("code")]
		delete(o.codes, form.Get("code"))
		if c == nil || c.redirectURI != form.Get("redirect_uri") {
			hsError(w, http.StatusBadRequest, "BAD_AUTH_CODE", "missing or unknown auth code")
			return
		}
		portal, rt = c.portal, hsRandom("na1-rt-")
		o.refresh[rt] = portal
		o.issued = append(o.issued, rt)
	case "refresh_token":
		rt = form.Get("refresh_token")
		p, ok := o.refresh[rt]
		if !ok {
			hsError(w, http.StatusBadRequest, "BAD_REFRESH_TOKEN", "missing or invalid refresh token")
			return
		}
		portal = p
	default:
		hsError(w, http.StatusBadRequest, "BAD_GRANT_TYPE", "unsupported grant_type")
		return
	}
	at := hsRandom("CJSP")
	o.access[at] = hsToken{portal: portal, expires: o.now().Add(o.ttl)}
	o.issued = append(o.issued, at)
	b, _ := json.Marshal(map[string]any{"token_type": "bearer", "refresh_token": rt, "access_token": at, "expires_in": int(o.ttl / time.Second)})
	writeJSON(w, http.StatusOK, string(b))
}

// portalOf returns the portal of a live access token.
func (o *fakeOAuth) portalOf(token string) (int64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	t, ok := o.access[token]
	if !ok || !o.now().Before(t.expires) {
		return 0, false
	}
	return t.portal, true
}

// uninstall removes the app from portal: its tokens are revoked.
func (o *fakeOAuth) uninstall(portal int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, t := range o.access {
		if t.portal == portal {
			delete(o.access, k)
		}
	}
	for k, p := range o.refresh {
		if p == portal {
			delete(o.refresh, k)
		}
	}
}

func (o *fakeOAuth) grantCount(grant string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.grants[grant]
}

func (o *fakeOAuth) set(fn func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fn()
}

func (o *fakeOAuth) secrets() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.issued...)
}
