package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	"github.com/hookmap/hookmap/engine"
	"github.com/hookmap/hookmap/server/oauth"
	"github.com/hookmap/hookmap/server/store"
)

// renewTimeout bounds one renewal of a connection's credentials (its token request and
// the write of the new tokens), whoever waits for it.
const renewTimeout = time.Minute

// renewLease is how long a process holds the lease on a connection's renewal (longer than
// renewTimeout: a process that died frees it after this), and renewPoll how often a
// process waiting for another's renewal looks for its result.
const (
	renewLease = renewTimeout + 30*time.Second
	renewPoll  = 100 * time.Millisecond
)

// conflictRetries is how many times a write of credentials is tried again when another
// writer changed the connection meanwhile.
const conflictRetries = 3

// Connection event types, on the workspace's stream with event key "connection" and no
// subscription.
const (
	EventConnectionConnected    = "connection.connected"
	EventConnectionDisconnected = "connection.disconnected"
)

// AuthMetrics receives the counts of credential renewals; Core.AuthMetrics may be nil.
type AuthMetrics interface {
	// CredentialRenewal counts a token request: grant is the token request's name, result
	// renewed, failed or revoked.
	CredentialRenewal(grant, result string)
	// RenewalWaiting adds delta to the method runs waiting for a renewal.
	RenewalWaiting(delta float64)
}

func (c *Core) renewalCounted(grant, result string) {
	if c.AuthMetrics != nil {
		c.AuthMetrics.CredentialRenewal(grant, result)
	}
}

// connectionAuth returns the auth block of a connection's connector (nil: static).
func (c *Core) connectionAuth(conn *store.Connection) *engine.Auth {
	if k, ok := c.Registry.Connector(conn.ConnectorKey); ok {
		return k.Auth
	}
	return nil
}

// ErrNotConnected is wrapped by the error of a method of a connection that is PENDING or
// DISCONNECTED.
var ErrNotConnected = errors.New("connection not connected")

// Usable returns nil when the connection's methods may run, else FAILED_PRECONDITION
// (wrapping ErrNotConnected) saying why not: waiting for authorization, or disconnected
// with the app's error.
func Usable(conn *store.Connection) error {
	var msg string
	switch conn.Status {
	case store.ConnectionPending:
		msg = fmt.Sprintf("connection %s is waiting for its user to authorize it (the authorization URL of AuthorizeConnection)", conn.ID)
	case store.ConnectionDisconnected:
		msg = fmt.Sprintf("connection %s is disconnected: %s; connect it again (AuthorizeConnection) or give it new credentials (UpdateConnection)", conn.ID, conn.LastError)
	default:
		return nil
	}
	return &Error{Code: codes.FailedPrecondition, Reason: ReasonNotConnected, Message: msg, Err: ErrNotConnected}
}

// runConnMethod runs a method of a connection (subscribe, refresh, unsubscribe, list,
// delete, getEventsSelector) with vars, the connection's variables and the method's own,
// and opts.
// For an oauth2 connector it first renews credentials that expire within the connector's
// refreshBefore, and renews them once more when the app answers a request 401 (the
// request is then sent again). Secret values (credentials, connector parameters) are
// taken out of the error it returns.
func (c *Core) runConnMethod(ctx context.Context, conn *store.Connection, m *engine.Method, vars map[string]any, opts engine.RunOptions) (any, error) {
	auth := c.connectionAuth(conn)
	red := func(err error) error {
		if err == nil {
			return nil
		}
		return oauth.NewRedactor(vars["credentials"], vars["connectorParameters"]).Error(err)
	}
	if !auth.OAuth2() {
		out, err := m.Run(ctx, vars, opts)
		return out, red(err)
	}
	if err := Usable(conn); err != nil {
		return nil, err
	}
	creds, _ := vars["credentials"].(map[string]any)
	if c.renewable(conn, auth, creds) && c.due(conn, auth) {
		fresh, err := c.renewCredentials(ctx, conn, oauth.String(creds, oauth.KeyAccessToken))
		switch {
		case err == nil:
			vars = cloneVars(vars)
			vars["credentials"] = fresh
			creds = fresh
		case c.now().Before(conn.CredentialsExpireTime) && !errors.Is(err, ErrNotConnected):
			// Not expired yet: go on with the token we have; the next run tries again.
			c.Logger.Warn("renewing credentials before they expire failed; using the current ones", "connection", conn.ID, "expire_time", conn.CredentialsExpireTime, "err", err)
		default:
			return nil, err
		}
	}
	if c.renewable(conn, auth, creds) {
		used := oauth.String(creds, oauth.KeyAccessToken)
		opts.Reauth = func(ctx context.Context) (map[string]any, error) {
			return c.renewCredentials(ctx, conn, used)
		}
	}
	out, err := m.Run(ctx, vars, opts)
	return out, red(err)
}

// renewable reports whether hookmap can get new credentials for the connection: with its
// refresh token, or with the client credentials grant it was connected with.
func (c *Core) renewable(conn *store.Connection, auth *engine.Auth, creds map[string]any) bool {
	switch {
	case auth.Method(engine.AuthRefreshToken) != nil && oauth.String(creds, oauth.KeyRefreshToken) != "":
		return true
	case conn.Grant == store.GrantClientCredentials && auth.Method(engine.AuthClientCredentials) != nil:
		return true
	}
	return false
}

// due reports whether the connection's access token expires within refreshBefore.
func (c *Core) due(conn *store.Connection, auth *engine.Auth) bool {
	exp := conn.CredentialsExpireTime
	return !exp.IsZero() && !c.now().Add(auth.RefreshBefore).Before(exp)
}

// renewCredentials returns new credentials for the connection whose access token stale
// expires or was refused. Concurrent renewals of one connection share one token request;
// a renewal that finds the stored credentials renewed since stale was read returns them.
func (c *Core) renewCredentials(ctx context.Context, conn *store.Connection, stale string) (map[string]any, error) {
	if c.AuthMetrics != nil {
		c.AuthMetrics.RenewalWaiting(1)
		defer c.AuthMetrics.RenewalWaiting(-1)
	}
	key := conn.WorkspaceID + "\x00" + conn.ID
	ch := c.renewals.DoChan(key, func() (any, error) {
		// The renewal outlives a caller that gives up: others may be waiting for it.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), renewTimeout)
		defer cancel()
		return c.renew(rctx, conn.WorkspaceID, conn.ID, stale)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(map[string]any), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// renew runs the connection's refreshToken (or clientCredentials) token request and
// stores the new credentials before returning them. A grant the app refuses for good
// marks the connection DISCONNECTED and puts a connection.disconnected event on the
// workspace's stream.
func (c *Core) renew(ctx context.Context, workspaceID, id, stale string) (map[string]any, error) {
	as := c.Store
	// renewed reads the connection: done is true when its credentials were renewed since
	// the caller read them (by another method run, or another process).
	renewed := func() (conn *store.Connection, vars map[string]any, done bool, err error) {
		conn, err = c.Store.GetConnection(ctx, workspaceID, id)
		if err != nil {
			return nil, nil, false, fmt.Errorf("connection %s: %w", id, err)
		}
		if err := Usable(conn); err != nil {
			return nil, nil, false, err
		}
		if vars, err = c.ConnectionVars(ctx, conn); err != nil {
			return nil, nil, false, err
		}
		creds := vars["credentials"].(map[string]any)
		return conn, vars, oauth.String(creds, oauth.KeyAccessToken) != stale && !c.due(conn, c.connectionAuth(conn)), nil
	}
	conn, vars, done, err := renewed()
	if err != nil || done {
		return credsOf(vars), err
	}
	// Processes sharing the store renew a connection once: the others wait for the result.
	owner := c.InstanceID()
	for {
		claimed, err := as.ClaimRenewal(ctx, workspaceID, id, owner, renewLease)
		if err != nil {
			return nil, fmt.Errorf("lease the renewal of connection %s: %w", id, err)
		}
		if claimed {
			break
		}
		t := time.NewTimer(renewPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		if conn, vars, done, err = renewed(); err != nil || done {
			return credsOf(vars), err
		}
	}
	written := false // a write of the credentials ends the lease
	defer func() {
		if written {
			return
		}
		if err := as.ReleaseRenewal(context.WithoutCancel(ctx), workspaceID, id, owner); err != nil {
			c.Logger.Warn("release the renewal lease", "connection", id, "err", err)
		}
	}()
	if conn, vars, done, err = renewed(); err != nil || done {
		return credsOf(vars), err
	}
	auth := c.connectionAuth(conn)
	creds := vars["credentials"].(map[string]any)
	grant := engine.AuthRefreshToken
	if oauth.String(creds, oauth.KeyRefreshToken) == "" || auth.Method(engine.AuthRefreshToken) == nil {
		grant = engine.AuthClientCredentials
	}
	m := auth.Method(grant)
	if m == nil || !c.renewable(conn, auth, creds) {
		return nil, Errorf(codes.FailedPrecondition, "connection %s has no refresh token and was not connected with the client credentials grant: its credentials cannot be renewed", id).WithReason(ReasonNotRenewable)
	}
	red := oauth.NewRedactor(creds, vars["connectorParameters"])
	started := c.now()
	out, err := m.Run(ctx, vars, c.RunOptions())
	var tokens *oauth.Tokens
	if err == nil {
		if tokens, err = oauth.ParseTokens(out, started); err != nil {
			err = Errorf(codes.FailedPrecondition, "%s: %s (map the app's answer in its responseMapping)", m.File, err).WithReason(ReasonMappingFailed)
		}
	}
	if err != nil {
		var he *engine.HTTPError
		if errors.As(err, &he) {
			revoked, rerr := auth.GrantRevoked(ctx, vars, he)
			if rerr != nil {
				c.Logger.Warn("auth.grantRevoked failed; the renewal is treated as transient", "connection", id, "err", red.Error(rerr))
			}
			if revoked {
				c.renewalCounted(grant, "revoked")
				out, err := c.disconnect(ctx, as, conn, creds, red.String(fmt.Sprintf("the app refused the %s grant: %s", grant, tokenError(he))))
				written = out != nil || errors.Is(err, ErrNotConnected)
				return out, err
			}
		}
		err = red.Error(err)
		c.renewalCounted(grant, "failed")
		c.Logger.Warn("renewing credentials failed", "connection", id, "connector", conn.ConnectorKey, "grant", grant, "err", err)
		c.recordAuthError(ctx, as, conn, "renewing the credentials failed: "+err.Error())
		return nil, AppError(ctx, fmt.Sprintf("renewing the credentials of connection %s failed", id), err)
	}
	c.renewalCounted(grant, "renewed")
	fresh := oauth.Merge(creds, tokens)
	stored, err := c.storeCredentials(ctx, as, conn, creds, fresh, tokens.ExpiresAt)
	if err != nil {
		return nil, err
	}
	written = true
	c.Logger.Info("credentials renewed", "connection", id, "connector", conn.ConnectorKey, "grant", grant, "expire_time", tokens.ExpiresAt)
	return stored, nil
}

func credsOf(vars map[string]any) map[string]any {
	creds, _ := vars["credentials"].(map[string]any)
	return creds
}

// tokenError is what a failed token request's answer says, for a connection's last error:
// the OAuth error and its description when the answer has them, else the status and body.
func tokenError(he *engine.HTTPError) string {
	if m, ok := he.Data.(map[string]any); ok {
		code, _ := m["error"].(string)
		desc, _ := m["error_description"].(string)
		switch {
		case code != "" && desc != "":
			return code + ": " + desc
		case code != "":
			return code
		}
	}
	msg := fmt.Sprintf("%s %s answered %d", he.Method, he.URL, he.StatusCode)
	if he.Body != "" {
		msg += ": " + he.Body
	}
	return msg
}

// storeCredentials writes fresh credentials over the ones read (prev) with conn's
// version. When another writer changed the connection meanwhile, the write is tried again
// if the stored credentials are still prev's tokens; if they are not (someone else renewed
// them or gave new ones), those are returned instead.
func (c *Core) storeCredentials(ctx context.Context, as store.AuthStore, conn *store.Connection, prev, fresh map[string]any, expires time.Time) (map[string]any, error) {
	sealed, err := c.Box.SealValue(fresh, credentialsAAD(conn.WorkspaceID, conn.ID))
	if err != nil {
		return nil, err
	}
	rec := *conn
	for attempt := 0; ; attempt++ {
		rec.Credentials, rec.CredentialsExpireTime = sealed, expires
		rec.Status, rec.LastError = store.ConnectionConnected, ""
		err := as.SetConnectionAuth(ctx, &rec)
		if err == nil {
			return fresh, nil
		}
		if !errors.Is(err, store.ErrConflict) || attempt >= conflictRetries {
			return nil, fmt.Errorf("store the renewed credentials of connection %s: %w", conn.ID, err)
		}
		now, theirs, err := c.reread(ctx, conn)
		if err != nil {
			return nil, err
		}
		if !sameTokens(prev, theirs) {
			return theirs, Usable(now)
		}
		rec = *now
	}
}

// reread reads a connection and its credentials again.
func (c *Core) reread(ctx context.Context, conn *store.Connection) (*store.Connection, map[string]any, error) {
	now, err := c.Store.GetConnection(ctx, conn.WorkspaceID, conn.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("connection %s: %w", conn.ID, err)
	}
	creds, err := c.openCredentials(now)
	if err != nil {
		return nil, nil, err
	}
	return now, creds, nil
}

func sameTokens(a, b map[string]any) bool {
	return oauth.String(a, oauth.KeyAccessToken) == oauth.String(b, oauth.KeyAccessToken) &&
		oauth.String(a, oauth.KeyRefreshToken) == oauth.String(b, oauth.KeyRefreshToken)
}

// disconnect marks the connection DISCONNECTED with reason and puts a
// connection.disconnected event on its workspace's stream, in one write. If its
// credentials changed since creds were read (renewed elsewhere, or given anew), it is
// not disconnected and those are returned.
func (c *Core) disconnect(ctx context.Context, as store.AuthStore, conn *store.Connection, creds map[string]any, reason string) (map[string]any, error) {
	reason = truncate(reason, 2048)
	rec := *conn
	for attempt := 0; ; attempt++ {
		rec.Status, rec.LastError = store.ConnectionDisconnected, reason
		ev := c.statusEvent(&rec, EventConnectionDisconnected)
		err := as.SetConnectionAuth(ctx, &rec, ev)
		if err == nil {
			c.Hub.Notify(rec.WorkspaceID, ev.Seq)
			c.Logger.Warn("connection disconnected: the app refused its grant", "connection", rec.ID, "connector", rec.ConnectorKey, "reason", reason)
			return nil, Usable(&rec)
		}
		if !errors.Is(err, store.ErrConflict) || attempt >= conflictRetries {
			return nil, fmt.Errorf("mark connection %s disconnected: %w", conn.ID, err)
		}
		now, theirs, err := c.reread(ctx, conn)
		if err != nil {
			return nil, err
		}
		if !sameTokens(creds, theirs) {
			return theirs, Usable(now)
		}
		rec = *now
	}
}

// recordAuthError keeps what went wrong in the connection's last error (best effort: a
// concurrent write wins).
func (c *Core) recordAuthError(ctx context.Context, as store.AuthStore, conn *store.Connection, msg string) {
	rec := *conn
	rec.LastError = truncate(msg, 2048)
	if err := as.SetConnectionAuth(ctx, &rec); err != nil && !errors.Is(err, store.ErrConflict) {
		c.Logger.Warn("record the connection's last error", "connection", conn.ID, "err", err)
	}
}

// statusEvent is an event about conn on its workspace's stream: event key
// "connection", no subscription, its record the connection's id, connector, name, status
// and error.
func (c *Core) statusEvent(conn *store.Connection, typ string) *store.Event {
	rec := map[string]any{
		"connectionId": conn.ID, "connectorKey": conn.ConnectorKey, "name": conn.Name, "status": conn.Status,
	}
	if conn.LastError != "" {
		rec["error"] = conn.LastError
	}
	return &store.Event{
		ID: uuid.NewString(), WorkspaceID: conn.WorkspaceID, ConnectionID: conn.ID,
		EventKey: engine.ConnectionEventKey, Type: typ, Record: rec, ReceiveTime: c.now().UTC(),
	}
}
