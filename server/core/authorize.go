package core

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/hookmap/hookmap/engine"
	"github.com/hookmap/hookmap/server/oauth"
	"github.com/hookmap/hookmap/server/store"
)

// AuthStateTTL is how long an authorization URL can be completed.
const AuthStateTTL = 15 * time.Minute

// OAuthCallbackPath is the receiver's path of the OAuth 2.0 redirect URI.
const OAuthCallbackPath = "/oauth/callback"

// MaxReturnURL bounds the length of AuthorizeInput.ReturnURL.
const MaxReturnURL = 2048

// OAuthCallbackURL is the redirect URI every app is given: {public-url}/oauth/callback.
func (c *Core) OAuthCallbackURL() string {
	return strings.TrimRight(c.PublicURL, "/") + OAuthCallbackPath
}

func verifierAAD(hash []byte) string { return "auth-state-verifier:" + hex.EncodeToString(hash) }

// AuthorizeInput asks for an authorization URL: for an existing connection
// (ConnectionID), or for a new one (ConnectorKey, Name, Parameters), created PENDING.
type AuthorizeInput struct {
	ConnectionID string
	ConnectorKey string
	Name         string
	Parameters   map[string]any
	// ReturnURL is where the callback sends the user's browser afterwards, with
	// connection_id and status=CONNECTED, or error and error_description, added to its
	// query; "" for a page of hookmap's own.
	ReturnURL string
}

// Authorization is an authorization URL to send the user's browser to.
type Authorization struct {
	URL        string
	Connection *store.Connection
	ExpireTime time.Time
}

// AuthorizeConnection returns the app's authorization URL for a connection: the user who
// opens it grants access in the app, which sends the browser back to hookmap's callback
// with a code that hookmap exchanges for tokens. The URL's state parameter is bound to
// the workspace and the connection, unguessable, single-use, and expires after
// AuthStateTTL.
func (c *Core) AuthorizeConnection(ctx context.Context, workspaceID string, in AuthorizeInput) (*Authorization, error) {
	as := c.Store
	if err := checkAuthorizeInput(in); err != nil {
		return nil, err
	}
	var conn *store.Connection
	var err error
	if in.ConnectionID != "" {
		if conn, err = c.Store.GetConnection(ctx, workspaceID, in.ConnectionID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, Errorf(codes.NotFound, "connection %s not found", Q(in.ConnectionID)).WithReason(ReasonResourceNotFound)
			}
			return nil, err
		}
	} else {
		now := c.now()
		conn = &store.Connection{
			WorkspaceID: workspaceID, ID: newConnectionID(), ConnectorKey: in.ConnectorKey, Name: in.Name,
			Parameters: orEmpty(in.Parameters), Status: store.ConnectionPending, CreateTime: now, UpdateTime: now,
		}
	}
	connector, err := c.Connector(conn.ConnectorKey)
	if err != nil {
		return nil, err
	}
	if !connector.Auth.OAuth2() || connector.Auth.Authorize == nil {
		return nil, Errorf(codes.FailedPrecondition, "connector %s has no authorization code flow (an auth block of type oauth2 with authorize and the authorizationCode token request)", Q(conn.ConnectorKey)).WithReason(ReasonNoAuthorizationFlow)
	}
	if in.ConnectionID == "" {
		if v := validateAgainst(connector.ConnectionParametersSchema, "parameters", in.Parameters); len(v) > 0 {
			return nil, Invalid(violationSummary("connection does not match the connector's schemas", v), v)
		}
	}
	cp, err := c.ConnectorParameters(ctx, workspaceID, conn.ConnectorKey)
	if err != nil {
		return nil, fmt.Errorf("connector parameters: %w", err)
	}
	state, hash := oauth.NewState()
	req := engine.AuthorizeRequest{RedirectURI: c.OAuthCallbackURL(), State: state}
	st := &store.AuthState{
		Hash: hash, WorkspaceID: workspaceID, ConnectionID: conn.ID, ReturnURL: in.ReturnURL,
		CreateTime: c.now().UTC(), ExpireTime: c.now().Add(AuthStateTTL).UTC(),
	}
	if connector.Auth.Authorize.PKCE {
		verifier, challenge := oauth.NewVerifier()
		req.CodeChallenge = challenge
		if st.Verifier, err = c.Box.Seal([]byte(verifier), verifierAAD(hash)); err != nil {
			return nil, err
		}
	}
	vars := map[string]any{
		"connection":          map[string]any{"id": conn.ID, "parameters": orEmpty(conn.Parameters)},
		"connectorParameters": cp,
	}
	u, err := connector.Auth.Authorize.URL(ctx, vars, req)
	if err != nil {
		err = oauth.NewRedactor(cp).Error(err)
		return nil, &Error{Code: codes.FailedPrecondition, Reason: ReasonMappingFailed, Message: "build the authorization URL: " + err.Error(), Err: err}
	}
	// The connection exists only once its URL could be made.
	if in.ConnectionID == "" {
		if err := c.Store.CreateConnection(ctx, conn); err != nil {
			return nil, err
		}
	}
	if err := as.CreateAuthState(ctx, st); err != nil {
		return nil, err
	}
	return &Authorization{URL: u, Connection: conn, ExpireTime: st.ExpireTime}, nil
}

func checkAuthorizeInput(in AuthorizeInput) error {
	var v []engine.FieldViolation
	switch {
	case in.ConnectionID != "" && (in.ConnectorKey != "" || in.Name != "" || in.Parameters != nil):
		v = append(v, engine.FieldViolation{Field: "connection_id", Description: "give connection_id for an existing connection, or connector_key, name and parameters for a new one, not both"})
	case in.ConnectionID == "" && in.ConnectorKey == "":
		v = append(v, engine.FieldViolation{Field: "connector_key", Description: "required for a new connection (or give connection_id)"})
	}
	if in.ReturnURL != "" {
		u, err := url.Parse(in.ReturnURL)
		switch {
		case len(in.ReturnURL) > MaxReturnURL:
			v = append(v, engine.FieldViolation{Field: "return_url", Description: fmt.Sprintf("longer than %d characters", MaxReturnURL)})
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil:
			v = append(v, engine.FieldViolation{Field: "return_url", Description: "must be an absolute http(s) URL without user info"})
		case u.Fragment != "":
			v = append(v, engine.FieldViolation{Field: "return_url", Description: "must not have a fragment (hookmap adds query parameters)"})
		}
	}
	if len(v) > 0 {
		return Invalid(violationSummary("invalid authorization request", v), v)
	}
	return nil
}

// Callback is the outcome of a request to the OAuth callback: either Redirect (the
// request's return URL with the outcome in its query) or Status with Message (an error)
// or, for a success without a return URL, Status 200 and Connection.
type Callback struct {
	Status     int
	Message    string
	Redirect   string
	Connection *store.Connection
}

// callbackError is a failed callback that was bound to a connection: it is answered by
// redirecting to the return URL when there is one.
type callbackError struct {
	status      int
	code, descr string
}

// CompleteAuthorization handles the app's redirect to the OAuth callback with query (code
// and state, or error). A state that is missing, unknown, used or expired answers 400 and
// changes nothing. Otherwise the code is exchanged with the connector's authorizationCode
// token request, the tokens are stored sealed, the connection becomes CONNECTED and a
// connection.connected event goes on its workspace's stream.
func (c *Core) CompleteAuthorization(ctx context.Context, query url.Values) *Callback {
	state := query.Get("state")
	if state == "" {
		return &Callback{Status: http.StatusBadRequest, Message: "the callback has no state parameter"}
	}
	as := c.Store
	st, err := as.ConsumeAuthState(ctx, oauth.HashState(state))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &Callback{Status: http.StatusBadRequest, Message: "unknown or already used state: start the authorization again"}
	case err != nil:
		c.Logger.Error("consume an OAuth state", "err", err)
		return &Callback{Status: http.StatusServiceUnavailable, Message: "temporarily unavailable"}
	case !c.now().Before(st.ExpireTime):
		return &Callback{Status: http.StatusBadRequest, Message: fmt.Sprintf("the authorization expired (it can be completed within %s): start it again", AuthStateTTL)}
	}
	conn, cerr := c.finishAuthorization(ctx, as, st, query)
	if cerr != nil {
		c.Logger.Warn("authorization failed", "connection", st.ConnectionID, "error", cerr.code, "description", cerr.descr)
		if st.ReturnURL != "" {
			return &Callback{Redirect: withQuery(st.ReturnURL, "connection_id", st.ConnectionID, "error", cerr.code, "error_description", cerr.descr)}
		}
		return &Callback{Status: cerr.status, Message: cerr.code + ": " + cerr.descr}
	}
	c.Logger.Info("connection authorized", "connection", conn.ID, "connector", conn.ConnectorKey, "expire_time", conn.CredentialsExpireTime)
	if st.ReturnURL != "" {
		return &Callback{Redirect: withQuery(st.ReturnURL, "connection_id", conn.ID, "status", store.ConnectionConnected), Connection: conn}
	}
	return &Callback{Status: http.StatusOK, Connection: conn}
}

// finishAuthorization exchanges the callback's code and stores the tokens.
func (c *Core) finishAuthorization(ctx context.Context, as store.AuthStore, st *store.AuthState, query url.Values) (*store.Connection, *callbackError) {
	conn, err := c.Store.GetConnection(ctx, st.WorkspaceID, st.ConnectionID)
	if err != nil {
		return nil, &callbackError{http.StatusBadRequest, "connection_gone", "the connection was deleted"}
	}
	if code := query.Get("error"); code != "" {
		// The user declined, or the app refused the request.
		descr := truncate(query.Get("error_description"), 512)
		c.recordAuthError(ctx, as, conn, truncate("the authorization was refused: "+strings.TrimSuffix(code+": "+descr, ": "), 2048))
		return nil, &callbackError{http.StatusBadRequest, truncate(code, 64), descr}
	}
	code := query.Get("code")
	if code == "" {
		return nil, &callbackError{http.StatusBadRequest, "invalid_request", "the callback has neither a code nor an error"}
	}
	connector, err := c.Connector(conn.ConnectorKey)
	if err != nil || connector.Auth.Method(engine.AuthAuthorizationCode) == nil {
		return nil, &callbackError{http.StatusBadGateway, "server_error", fmt.Sprintf("connector %q has no authorizationCode token request", conn.ConnectorKey)}
	}
	verifier := ""
	if st.Verifier != nil {
		b, err := c.Box.Open(st.Verifier, verifierAAD(st.Hash))
		if err != nil {
			c.Logger.Error("open a PKCE verifier", "connection", conn.ID, "err", err)
			return nil, &callbackError{http.StatusInternalServerError, "server_error", "internal error"}
		}
		verifier = string(b)
	}
	vars, err := c.ConnectionVars(ctx, conn)
	if err != nil {
		c.Logger.Error("connection variables", "connection", conn.ID, "err", err)
		return nil, &callbackError{http.StatusInternalServerError, "server_error", "internal error"}
	}
	callback := map[string]any{}
	for k, vs := range query {
		if k != "code" && k != "state" && len(vs) > 0 {
			callback[k] = vs[0]
		}
	}
	vars["code"], vars["codeVerifier"], vars["redirectUri"], vars["callback"] = code, verifier, c.OAuthCallbackURL(), callback
	red := oauth.NewRedactor(vars["credentials"], vars["connectorParameters"], code, verifier)
	m := connector.Auth.Method(engine.AuthAuthorizationCode)
	started := c.now()
	out, err := m.Run(ctx, vars, c.RunOptions())
	var tokens *oauth.Tokens
	if err == nil {
		if tokens, err = oauth.ParseTokens(out, started); err != nil {
			err = fmt.Errorf("%s: %w (map the app's answer in its responseMapping)", m.File, err)
		}
	}
	if err != nil {
		err = red.Error(err)
		c.recordAuthError(ctx, as, conn, "exchanging the authorization code failed: "+err.Error())
		status := http.StatusBadGateway
		var he *engine.HTTPError
		if errors.As(err, &he) && he.StatusCode >= 400 && he.StatusCode < 500 {
			return nil, &callbackError{status, "token_request_refused", red.String(tokenError(he))}
		}
		return nil, &callbackError{status, "token_request_failed", truncate(err.Error(), 512)}
	}
	// A new authorization is a new set of credentials: nothing of the previous one is kept.
	sealed, err := c.Box.SealValue(oauth.Merge(nil, tokens), credentialsAAD(conn.WorkspaceID, conn.ID))
	if err != nil {
		return nil, &callbackError{http.StatusInternalServerError, "server_error", "internal error"}
	}
	rec := *conn
	for attempt := 0; ; attempt++ {
		rec.Credentials, rec.CredentialsExpireTime, rec.Grant = sealed, tokens.ExpiresAt, store.GrantAuthorizationCode
		rec.Status, rec.LastError = store.ConnectionConnected, ""
		ev := c.statusEvent(&rec, EventConnectionConnected)
		err := as.SetConnectionAuth(ctx, &rec, ev)
		if err == nil {
			c.Hub.Notify(rec.WorkspaceID, ev.Seq)
			return &rec, nil
		}
		// The user's authorization wins over whatever changed meanwhile.
		if !errors.Is(err, store.ErrConflict) || attempt >= conflictRetries {
			c.Logger.Error("store the tokens of an authorization", "connection", conn.ID, "err", err)
			return nil, &callbackError{http.StatusInternalServerError, "server_error", "could not store the tokens"}
		}
		now, err := c.Store.GetConnection(ctx, conn.WorkspaceID, conn.ID)
		if err != nil {
			return nil, &callbackError{http.StatusBadRequest, "connection_gone", "the connection was deleted"}
		}
		rec = *now
	}
}

// withQuery returns u with the non-empty pairs of kv (name, value, …) set in its query.
func withQuery(u string, kv ...string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u // checked when the authorization was asked for
	}
	q := p.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	p.RawQuery = q.Encode()
	return p.String()
}
