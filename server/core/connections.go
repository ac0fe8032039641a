package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/hookmap/hookmap/engine"
	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/server/oauth"
	"github.com/hookmap/hookmap/server/secrets"
	"github.com/hookmap/hookmap/server/store"
)

// ConnectionInput is what a client gives to create or update a connection.
type ConnectionInput struct {
	ConnectorKey string
	Name         string
	Parameters   map[string]any
	Credentials  map[string]any
}

func validateAgainst(s *engine.Schema, root string, v map[string]any) []engine.FieldViolation {
	if s == nil {
		return nil
	}
	if v == nil {
		v = map[string]any{}
	}
	return s.Validate(root, v)
}

// CreateConnection validates and stores a new connection.
func (c *Core) CreateConnection(ctx context.Context, workspaceID string, in ConnectionInput) (*store.Connection, error) {
	var violations []engine.FieldViolation
	if in.ConnectorKey == "" {
		violations = append(violations, engine.FieldViolation{Field: "connector_key", Description: "required"})
		return nil, Invalid("connector_key is required", violations)
	}
	conn, err := c.Connector(in.ConnectorKey)
	if err != nil {
		return nil, err
	}
	violations = append(violations, validateAgainst(conn.ConnectionParametersSchema, "parameters", in.Parameters)...)
	violations = append(violations, validateAgainst(conn.CredentialsSchema, "credentials", in.Credentials)...)
	if len(violations) > 0 {
		return nil, Invalid(violationSummary("connection does not match the connector's schemas", violations), violations)
	}
	now := c.now()
	rec := &store.Connection{
		WorkspaceID:  workspaceID,
		ID:           newConnectionID(),
		ConnectorKey: in.ConnectorKey,
		Name:         in.Name,
		Parameters:   orEmpty(in.Parameters),
		Status:       store.ConnectionConnected,
		CreateTime:   now,
		UpdateTime:   now,
	}
	if err := c.setCredentials(ctx, conn, rec, in.Credentials); err != nil {
		return nil, err
	}
	if err := c.Store.CreateConnection(ctx, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

func newConnectionID() string { return "conn_" + secrets.RandomToken(10) }

// setCredentials seals what a client gives as a connection's credentials into rec, which
// becomes CONNECTED. For an oauth2 connector they are tokens the client already has
// (accessToken, optionally refreshToken and expiresAt or expiresIn), or, without an
// access token, the input of the connector's client credentials grant, run now.
func (c *Core) setCredentials(ctx context.Context, connector *engine.Connector, rec *store.Connection, given map[string]any) error {
	rec.Status, rec.LastError, rec.Grant, rec.CredentialsExpireTime = store.ConnectionConnected, "", store.GrantGiven, time.Time{}
	creds := given
	if connector.Auth.OAuth2() {
		var err error
		if creds, err = c.oauthCredentials(ctx, connector, rec, given); err != nil {
			return err
		}
	}
	rec.Credentials = nil
	if len(creds) > 0 {
		sealed, err := c.Box.SealValue(creds, credentialsAAD(rec.WorkspaceID, rec.ID))
		if err != nil {
			return err
		}
		rec.Credentials = sealed
	}
	return nil
}

// oauthCredentials turns what a client gives to an oauth2 connection into its credentials.
func (c *Core) oauthCredentials(ctx context.Context, connector *engine.Connector, rec *store.Connection, given map[string]any) (map[string]any, error) {
	if _, ok := given[oauth.KeyAccessToken]; ok {
		tokens, err := oauth.ParseTokens(given, c.now())
		if err != nil {
			return nil, Invalid("credentials: "+err.Error(), []engine.FieldViolation{{Field: "credentials", Description: err.Error()}})
		}
		rec.CredentialsExpireTime = tokens.ExpiresAt
		return oauth.Merge(nil, tokens), nil
	}
	m := connector.Auth.Method(engine.AuthClientCredentials)
	if m == nil {
		desc := "accessToken is required: give the tokens the connection has (accessToken, and refreshToken with expiresAt or expiresIn), or connect the account through AuthorizeConnection"
		return nil, Invalid("credentials: "+desc, []engine.FieldViolation{{Field: "credentials.accessToken", Description: desc}})
	}
	cp, err := c.ConnectorParameters(ctx, rec.WorkspaceID, rec.ConnectorKey)
	if err != nil {
		return nil, fmt.Errorf("connector parameters: %w", err)
	}
	vars := map[string]any{
		"connection":          map[string]any{"id": rec.ID, "parameters": orEmpty(rec.Parameters)},
		"connectorParameters": cp,
		"credentials":         orEmpty(given),
	}
	red := oauth.NewRedactor(given, cp)
	started := c.now()
	out, err := m.Run(ctx, vars, c.RunOptions())
	var tokens *oauth.Tokens
	if err == nil {
		if tokens, err = oauth.ParseTokens(out, started); err != nil {
			err = Errorf(codes.FailedPrecondition, "the client credentials grant failed: %s: %s (map the app's answer in its responseMapping)", m.File, err).WithReason(ReasonMappingFailed)
		}
	}
	if err != nil {
		return nil, AppError(ctx, "the client credentials grant failed", red.Error(err))
	}
	rec.Grant, rec.CredentialsExpireTime = store.GrantClientCredentials, tokens.ExpiresAt
	return oauth.Merge(given, tokens), nil
}

// UpdateConnection replaces the fields in mask ("name", "parameters", "credentials").
func (c *Core) UpdateConnection(ctx context.Context, workspaceID, id string, in ConnectionInput, mask map[string]bool) (*store.Connection, error) {
	rec, err := c.Store.GetConnection(ctx, workspaceID, id)
	if err != nil {
		return nil, err
	}
	conn, err := c.Connector(rec.ConnectorKey)
	if err != nil {
		return nil, err
	}
	var violations []engine.FieldViolation
	if mask["parameters"] {
		violations = append(violations, validateAgainst(conn.ConnectionParametersSchema, "parameters", in.Parameters)...)
	}
	if mask["credentials"] {
		violations = append(violations, validateAgainst(conn.CredentialsSchema, "credentials", in.Credentials)...)
	}
	if len(violations) > 0 {
		return nil, Invalid(violationSummary("connection does not match the connector's schemas", violations), violations)
	}
	if mask["name"] {
		rec.Name = in.Name
	}
	if mask["parameters"] {
		rec.Parameters = orEmpty(in.Parameters)
	}
	if mask["credentials"] {
		if err := c.setCredentials(ctx, conn, rec, in.Credentials); err != nil {
			return nil, err
		}
	}
	rec.UpdateTime = c.now()
	if err := c.Store.UpdateConnection(ctx, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// DeleteConnection deletes the connection's subscriptions (running unsubscribe) and then
// the connection. Without force, a failed unsubscribe stops the deletion.
func (c *Core) DeleteConnection(ctx context.Context, workspaceID, id string, force bool) ([]string, error) {
	if _, err := c.Store.GetConnection(ctx, workspaceID, id); err != nil {
		return nil, err
	}
	subs, err := c.connectionSubscriptions(ctx, workspaceID, id)
	if err != nil {
		return nil, err
	}
	var leftovers []string
	for _, s := range subs {
		del, err := c.DeleteSubscription(ctx, workspaceID, s.ID, force)
		if err != nil {
			return leftovers, fmt.Errorf("delete subscription %s: %w", s.ID, err)
		}
		if del.Leftover != "" {
			leftovers = append(leftovers, s.ID+": "+del.Leftover)
		}
	}
	if err := c.Store.DeleteConnection(ctx, workspaceID, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return leftovers, err
	}
	return leftovers, nil
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func violationSummary(prefix string, v []engine.FieldViolation) string {
	parts := make([]string, 0, len(v))
	for _, f := range v {
		// Bounded: a description may quote the value the client sent.
		parts = append(parts, value.Shorten(f.Field, 200)+": "+value.Shorten(f.Description, 500))
	}
	return prefix + ": " + strings.Join(parts, "; ")
}
