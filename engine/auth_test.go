package engine

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func loadTokens(t *testing.T) *Connector {
	t.Helper()
	set, diags := Load(filepath.Join("testdata", "oauth"))
	require.Empty(t, diags)
	c, ok := set.Connector("tokens")
	require.True(t, ok)
	return c
}

func TestAuthBlockLoads(t *testing.T) {
	c := loadTokens(t)
	require.True(t, c.Auth.OAuth2())
	require.Equal(t, 2*time.Minute, c.Auth.RefreshBefore)
	require.NotNil(t, c.Auth.Authorize)
	require.True(t, c.Auth.Authorize.PKCE, "PKCE is on unless the block says otherwise")
	for _, name := range []string{AuthAuthorizationCode, AuthRefreshToken, AuthClientCredentials} {
		m := c.Auth.Method(name)
		require.NotNil(t, m, name)
		require.Equal(t, TypeRESTAPIMapping, m.Type)
		require.Equal(t, filepath.Join("testdata", "oauth", "tokens", "auth", name+".rest.yml"), m.File)
	}
	require.Nil(t, (&Connector{}).Auth.Method(AuthRefreshToken), "a static connector has no token request")
	require.False(t, (&Connector{}).Auth.OAuth2())

	// Every bundled connector with an auth block loads too.
	set, diags := Load(filepath.Join("..", "connectors"))
	require.Empty(t, diags)
	for _, key := range []string{"microsoft-graph", "hubspot"} {
		conn, ok := set.Connector(key)
		require.True(t, ok, key)
		require.True(t, conn.Auth.OAuth2(), key)
		require.NotNil(t, conn.Auth.Method(AuthRefreshToken), key)
	}
}

func TestAuthorizeURL(t *testing.T) {
	c := loadTokens(t)
	vars := map[string]any{
		"connection":          map[string]any{"id": "conn_1", "parameters": map[string]any{"authUri": "https://login.example/tenant-1"}},
		"connectorParameters": map[string]any{"clientId": "app-123", "clientSecret": "never-in-a-url"},
	}
	got, err := c.Auth.Authorize.URL(context.Background(), vars, AuthorizeRequest{
		RedirectURI: "https://hooks.example/oauth/callback", State: "st4te", CodeChallenge: "ch4llenge",
	})
	require.NoError(t, err)
	u, err := url.Parse(got)
	require.NoError(t, err)
	require.Equal(t, "https", u.Scheme)
	require.Equal(t, "login.example", u.Host)
	require.Equal(t, "/tenant-1/authorize", u.Path)
	require.Equal(t, url.Values{
		"audience":              {"api"}, // kept from the uri
		"response_type":         {"code"},
		"client_id":             {"app-123"},
		"redirect_uri":          {"https://hooks.example/oauth/callback"},
		"state":                 {"st4te"}, // the block's query cannot replace it
		"scope":                 {"offline_access items.read"},
		"code_challenge":        {"ch4llenge"},
		"code_challenge_method": {"S256"},
		"prompt":                {"consent"},
	}, u.Query())
	require.NotContains(t, got, "never-in-a-url")

	// Without a client id the URL cannot be made, and says what to set.
	vars["connectorParameters"] = map[string]any{}
	_, err = c.Auth.Authorize.URL(context.Background(), vars, AuthorizeRequest{RedirectURI: "https://h/cb", State: "s"})
	require.ErrorIs(t, err, ErrNoClientID)
	require.Contains(t, err.Error(), "SetConnectorParameters")
}

// tokenServer is an OAuth token endpoint answering each request with answer and keeping
// what it got.
type tokenServer struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []*http.Request
	bod []url.Values
}

func newTokenServer(t *testing.T, answer func(form url.Values) (int, string)) *tokenServer {
	ts := &tokenServer{}
	ts.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		form, err := url.ParseQuery(string(b))
		if r.Header.Get("Content-Type") == "application/json" {
			var m map[string]any
			err = json.Unmarshal(b, &m)
			form = url.Values{}
			for k, v := range m {
				form.Set(k, v.(string))
			}
		}
		require.NoError(t, err)
		ts.mu.Lock()
		ts.got = append(ts.got, r)
		ts.bod = append(ts.bod, form)
		ts.mu.Unlock()
		status, body := answer(form)
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(ts.srv.Close)
	return ts
}

func tokenVars(authURI string) map[string]any {
	return map[string]any{
		"connection":          map[string]any{"id": "conn_1", "parameters": map[string]any{"authUri": authURI}},
		"connectorParameters": map[string]any{"clientId": "app-123", "clientSecret": "s3cret"},
		"credentials":         map[string]any{"accessToken": "old-access", "refreshToken": "old-refresh"},
	}
}

func TestTokenRequests(t *testing.T) {
	c := loadTokens(t)
	ts := newTokenServer(t, func(form url.Values) (int, string) {
		switch form.Get("grant_type") {
		case "authorization_code":
			return 200, `{"token": {"access": "a-1", "refresh": "r-1", "ttl": 3600}}`
		case "refresh_token":
			return 200, `{"access_token": "a-2", "token_type": "Bearer", "expires_in": 1800, "scope": "items.read"}`
		}
		return 200, `{"access_token": "a-3", "expires_in": 600}`
	})
	opts := RunOptions{HTTP: http.DefaultClient, Now: func() time.Time { return time.UnixMilli(1_700_000_000_000) }}

	// authorizationCode: form body, Basic client authentication from the auth api block,
	// tokens nested in the answer mapped by the file, and the callback's extra parameters.
	vars := tokenVars(ts.srv.URL)
	vars["code"], vars["codeVerifier"], vars["redirectUri"] = "c0de", "v3rifier", "https://h/oauth/callback"
	vars["callback"] = map[string]any{"account": "acct-9"}
	out, err := c.Auth.Method(AuthAuthorizationCode).Run(context.Background(), vars, opts)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"accessToken": "a-1", "refreshToken": "r-1", "expiresAt": int64(1_700_003_600_000), "accountId": "acct-9"}, out)
	req, form := ts.got[0], ts.bod[0]
	require.Equal(t, "/token", req.URL.Path)
	require.Equal(t, "application/x-www-form-urlencoded", req.Header.Get("Content-Type"))
	require.Equal(t, "Basic "+base64.StdEncoding.EncodeToString([]byte("app-123:s3cret")), req.Header.Get("Authorization"),
		"the token requests use the auth block's api, not the connector's bearer token")
	require.Equal(t, url.Values{"grant_type": {"authorization_code"}, "code": {"c0de"}, "redirect_uri": {"https://h/oauth/callback"}, "code_verifier": {"v3rifier"}}, form)

	// refreshToken without a responseMapping: the standard token response (RFC 6749 §5.1);
	// an answer without a refresh token leaves it out.
	out, err = c.Auth.Method(AuthRefreshToken).Run(context.Background(), tokenVars(ts.srv.URL), opts)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"accessToken": "a-2", "expiresIn": int64(1800)}, out)
	require.Equal(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"old-refresh"}}, ts.bod[1])

	// clientCredentials: a JSON body with the secret in it, no Authorization header.
	out, err = c.Auth.Method(AuthClientCredentials).Run(context.Background(), tokenVars(ts.srv.URL), opts)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"accessToken": "a-3", "expiresIn": int64(600)}, out)
	require.Empty(t, ts.got[2].Header.Get("Authorization"))
	require.Equal(t, "application/json", ts.got[2].Header.Get("Content-Type"))
	require.Equal(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {"app-123"}, "client_secret": {"s3cret"}}, ts.bod[2])
}

func TestGrantRevoked(t *testing.T) {
	c := loadTokens(t)
	ts := newTokenServer(t, func(form url.Values) (int, string) {
		return 400, `{"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token"}`
	})
	vars := tokenVars(ts.srv.URL)
	_, err := c.Auth.Method(AuthRefreshToken).Run(context.Background(), vars, RunOptions{HTTP: http.DefaultClient})
	var he *HTTPError
	require.ErrorAs(t, err, &he)
	require.Equal(t, map[string]any{"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token"}, he.Data)
	revoked, err := c.Auth.GrantRevoked(context.Background(), vars, he)
	require.NoError(t, err)
	require.True(t, revoked, "the connector's condition")
	he.Data = map[string]any{"status": "BAD_CLIENT_ID"}
	revoked, err = c.Auth.GrantRevoked(context.Background(), vars, he)
	require.NoError(t, err)
	require.False(t, revoked)

	// Without a condition: invalid_grant (RFC 6749 §5.2) on 400 or 401.
	var none *Auth
	for _, tc := range []struct {
		status int
		data   any
		want   bool
	}{
		{400, map[string]any{"error": "invalid_grant", "error_description": "AADSTS70008: expired"}, true},
		{401, map[string]any{"error": "invalid_grant"}, true},
		{400, map[string]any{"error": "invalid_client"}, false},
		{500, map[string]any{"error": "invalid_grant"}, false},
		{400, "invalid_grant", false},
		{400, nil, false},
	} {
		got, err := none.GrantRevoked(context.Background(), nil, &HTTPError{StatusCode: tc.status, Data: tc.data})
		require.NoError(t, err)
		require.Equal(t, tc.want, got, "%d %v", tc.status, tc.data)
	}
}

// TestReauthRetriesTheRequest: a request answered 401 is sent again, once, with the
// credentials Reauth returns; the requests before it are not repeated.
func TestReauthRetriesTheRequest(t *testing.T) {
	c := loadTokens(t)
	var mu sync.Mutex
	valid := "new-access"
	var calls []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Method+" "+r.Header.Get("Authorization"))
		ok := r.Header.Get("Authorization") == "Bearer "+valid || r.Method == http.MethodGet
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error": "expired"}`)
			return
		}
		_, _ = io.WriteString(w, `{"id": "hook-1"}`)
	}))
	t.Cleanup(srv.Close)
	sub := c.Events["items"].Methods[MethodSubscribe]
	vars := map[string]any{
		"connection":  map[string]any{"id": "conn_1", "parameters": map[string]any{"baseUri": srv.URL}},
		"credentials": map[string]any{"accessToken": "old-access"},
		"webhookUri":  "https://h/hooks/1",
	}
	reauths := 0
	opts := RunOptions{HTTP: http.DefaultClient, Reauth: func(context.Context) (map[string]any, error) {
		reauths++
		return map[string]any{"accessToken": "new-access"}, nil
	}}
	out, err := sub.Run(context.Background(), vars, opts)
	require.NoError(t, err)
	require.Equal(t, 1, reauths)
	require.Equal(t, []string{"GET Bearer old-access", "POST Bearer old-access", "POST Bearer new-access"}, calls)
	require.Equal(t, map[string]any{"state": map[string]any{"hookId": "hook-1", "token": "new-access"}}, out,
		"the responseMapping sees the new credentials")

	// A second 401 fails the run: Reauth runs once.
	mu.Lock()
	valid, calls = "never", nil
	mu.Unlock()
	_, err = sub.Run(context.Background(), vars, opts)
	var he *HTTPError
	require.ErrorAs(t, err, &he)
	require.Equal(t, 401, he.StatusCode)
	require.Equal(t, 2, reauths)
	require.Len(t, calls, 3)

	// A failed renewal says so.
	opts.Reauth = func(context.Context) (map[string]any, error) { return nil, errors.New("the grant was revoked") }
	_, err = sub.Run(context.Background(), vars, opts)
	require.ErrorContains(t, err, "answered 401 and renewing the credentials failed: the grant was revoked")

	// Without Reauth a 401 is an error as before.
	opts.Reauth = nil
	_, err = sub.Run(context.Background(), vars, opts)
	require.ErrorAs(t, err, &he)
}
