package engine

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/hookmap/hookmap/engine/mapping"
)

// AuthType is how a connector's connections get their credentials.
type AuthType string

// Auth types.
const (
	// AuthStatic: credentials are what the client gives (the default).
	AuthStatic AuthType = "static"
	// AuthOAuth2: hookmap obtains and renews OAuth 2.0 tokens with the connector's token
	// requests.
	AuthOAuth2 AuthType = "oauth2"
)

// Token requests of an oauth2 auth block: each is named after the OAuth 2.0 grant it
// performs and lives in auth/<name>.rest.yml.
const (
	// AuthAuthorizationCode exchanges the code the app sent to the callback for tokens.
	AuthAuthorizationCode = "authorizationCode"
	// AuthRefreshToken exchanges the connection's refresh token for new tokens.
	AuthRefreshToken = "refreshToken"
	// AuthClientCredentials obtains a token for the application itself.
	AuthClientCredentials = "clientCredentials"
)

// authMethods lists the token requests an auth block may declare.
var authMethods = []string{AuthAuthorizationCode, AuthRefreshToken, AuthClientCredentials}

// DefaultRefreshBefore is how long before its expiry an access token is renewed when the
// auth block sets no refreshBefore.
const DefaultRefreshBefore = 5 * time.Minute

// ConnectionEventKey is the event key of the events hookmap puts on a workspace's stream
// about a connection (connection.connected, connection.disconnected). No connector event
// may use it.
const ConnectionEventKey = "connection"

// Auth is a connector's auth block. A connector without one (or with type static) has a
// nil Auth.
type Auth struct {
	Type AuthType
	// Authorize builds the app's authorization URL; set when the connector declares the
	// authorizationCode token request.
	Authorize *Authorize
	// RefreshBefore is how long before its expiry an access token is renewed.
	RefreshBefore time.Duration
	// Methods are the token requests by name (authorizationCode, refreshToken,
	// clientCredentials).
	Methods map[string]*Method

	revoked *mapping.CEL
}

// OAuth2 reports whether a is an oauth2 block (a nil Auth is static).
func (a *Auth) OAuth2() bool { return a != nil && a.Type == AuthOAuth2 }

// Method returns the token request name, nil when the connector does not declare it.
func (a *Auth) Method(name string) *Method {
	if a == nil {
		return nil
	}
	return a.Methods[name]
}

// GrantRevoked reports whether a token request that failed with he means that the grant
// (refresh token, authorization code, client) is refused for good, so retrying cannot help.
// The auth block's grantRevoked condition decides, with vars and `response`
// ({statusCode, headers, data} of the failed request); without one, an answer 400 or 401
// whose JSON error is invalid_grant (RFC 6749 §5.2) is revoked.
func (a *Auth) GrantRevoked(ctx context.Context, vars map[string]any, he *HTTPError) (bool, error) {
	if he == nil {
		return false, nil
	}
	resp := map[string]any{"statusCode": int64(he.StatusCode), "headers": orEmptyMap(he.Headers), "data": he.Data}
	if a == nil || a.revoked == nil {
		if he.StatusCode != 400 && he.StatusCode != 401 {
			return false, nil
		}
		data, _ := he.Data.(map[string]any)
		code, _ := data["error"].(string)
		return code == "invalid_grant", nil
	}
	s := mapping.NewScope(ctx, vars).With(map[string]any{"response": resp})
	return a.revoked.EvalBool(s)
}

func orEmptyMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// Authorize is the authorize block of an oauth2 auth block: where the user's browser is
// sent to grant access.
type Authorize struct {
	// PKCE says whether the URL carries an S256 code_challenge (RFC 7636); on by default.
	PKCE bool

	uri, clientID, scopes, query *mapping.Value
	scopeSeparator               string
}

// AuthorizeRequest is what hookmap adds to the authorization URL.
type AuthorizeRequest struct {
	RedirectURI   string
	State         string
	CodeChallenge string // empty without PKCE
}

// ErrNoClientID is returned by Authorize.URL when the client id evaluates to nothing.
var ErrNoClientID = errors.New("the authorize block's clientId is empty (set the app's client id in the connector parameters with SetConnectorParameters)")

// URL evaluates the block with vars (connection, connectorParameters) and returns the
// authorization URL: the block's uri with response_type=code, client_id, redirect_uri,
// scope, state and, with PKCE, code_challenge and code_challenge_method=S256; the block's
// query adds parameters (it cannot replace those).
func (a *Authorize) URL(ctx context.Context, vars map[string]any, req AuthorizeRequest) (string, error) {
	s := mapping.NewScope(ctx, vars)
	text := func(v *mapping.Value, what string) (string, error) {
		if v == nil {
			return "", nil
		}
		out, err := v.Eval(s)
		if err != nil {
			return "", err
		}
		t, err := mapping.Text(out)
		if err != nil {
			return "", fmt.Errorf("authorize.%s: %w", what, err)
		}
		return t, nil
	}
	base, err := text(a.uri, "uri")
	if err != nil {
		return "", err
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("authorize.uri %q is not an absolute http(s) URL", base)
	}
	clientID, err := text(a.clientID, "clientId")
	if err != nil {
		return "", err
	}
	if clientID == "" {
		return "", ErrNoClientID
	}
	scope, err := a.scope(s)
	if err != nil {
		return "", err
	}
	q := u.Query()
	if a.query != nil {
		extra, err := a.query.Eval(s)
		if err != nil {
			return "", err
		}
		m, ok := extra.(map[string]any)
		if extra != nil && !ok {
			return "", fmt.Errorf("authorize.query evaluated to %T, want a map of parameters", extra)
		}
		for k, v := range m {
			if v == nil {
				continue
			}
			t, err := mapping.Text(v)
			if err != nil {
				return "", fmt.Errorf("authorize.query.%s: %w", k, err)
			}
			q.Set(k, t)
		}
	}
	q.Set("response_type", "code")
	q.Set("client_id", clientID)
	q.Set("redirect_uri", req.RedirectURI)
	q.Set("state", req.State)
	if scope != "" {
		q.Set("scope", scope)
	}
	if req.CodeChallenge != "" {
		q.Set("code_challenge", req.CodeChallenge)
		q.Set("code_challenge_method", "S256")
	}
	// A space is %20, not +: the scope list is space-separated, and not every app reads +
	// in a query as a space (Encode writes a literal + as %2B).
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String(), nil
}

// scope evaluates scopes: a list of strings joined with the separator, or one string.
func (a *Authorize) scope(s *mapping.Scope) (string, error) {
	if a.scopes == nil {
		return "", nil
	}
	v, err := a.scopes.Eval(s)
	if err != nil {
		return "", err
	}
	switch t := v.(type) {
	case nil:
		return "", nil
	case string:
		return t, nil
	case []any:
		parts := make([]string, 0, len(t))
		for i, e := range t {
			str, ok := e.(string)
			if !ok {
				return "", fmt.Errorf("authorize.scopes[%d] is %T, want a string", i, e)
			}
			if str != "" {
				parts = append(parts, str)
			}
		}
		return strings.Join(parts, a.scopeSeparator), nil
	}
	return "", fmt.Errorf("authorize.scopes evaluated to %T, want a list of strings or a string", v)
}

// defaultTokenResponse is the responseMapping of a token request whose file has none: the
// standard token response of RFC 6749 §5.1.
const defaultTokenResponse = `
accessToken: {$cel: 'type(response.data) == map ? response.data.?access_token : optional.none()'}
refreshToken: {$cel: 'type(response.data) == map ? response.data.?refresh_token : optional.none()'}
expiresIn: {$cel: 'type(response.data) == map ? response.data.?expires_in : optional.none()'}
`
