package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/pagetoken"
)

// CreateConnection inserts c; its workspace must exist (else store.ErrNotFound). Zero
// CreateTime and UpdateTime are set to now.
func (s *Store) CreateConnection(ctx context.Context, c *store.Connection) error {
	params, err := encodeMap(c.Parameters)
	if err != nil {
		return fmt.Errorf("connection %q parameters: %w", c.ID, err)
	}
	created, updated := createTimes(c.CreateTime, c.UpdateTime)
	_, err = s.exec(ctx, `INSERT INTO connections (id, workspace_id, connector_key, name, parameters, credentials, status,
			last_error, grant_type, credentials_expire_time, credentials_version, create_time, update_time)
		VALUES ($1, $2, $3, $4, $5::text::json, $6, $7, $8, $9, $10, 1, $11, $12)`,
		c.ID, c.WorkspaceID, c.ConnectorKey, c.Name, params, c.Credentials, c.Status, clean(c.LastError), c.Grant,
		ts(c.CredentialsExpireTime), created, updated)
	if err = s.insertErr("connection", c.ID, "workspace "+quote(c.WorkspaceID), err); err == nil {
		c.CreateTime, c.UpdateTime, c.CredentialsVersion = created, updated, 1
	}
	return err
}

const connectionCols = `rid, id, workspace_id, connector_key, name, parameters::text, credentials, status, last_error,
	grant_type, credentials_expire_time, credentials_version, create_time, update_time`

func scanConnection(sc scanner) (keyed[*store.Connection], error) {
	c := &store.Connection{}
	var rid int64
	var expires, created, updated pgtype.Timestamptz
	var params *string
	if err := sc.Scan(&rid, &c.ID, &c.WorkspaceID, &c.ConnectorKey, &c.Name, &params, &c.Credentials, &c.Status,
		&c.LastError, &c.Grant, &expires, &c.CredentialsVersion, &created, &updated); err != nil {
		return keyed[*store.Connection]{}, err
	}
	var err error
	if c.Parameters, err = decodeMap(params); err != nil {
		return keyed[*store.Connection]{key: rid, v: c}, unreadable(fmt.Sprintf("connection %q parameters", c.ID), err)
	}
	c.CredentialsExpireTime, c.CreateTime, c.UpdateTime = fromTS(expires), fromTS(created), fromTS(updated)
	return keyed[*store.Connection]{key: rid, v: c}, nil
}

// GetConnection returns a connection of the workspace.
func (s *Store) GetConnection(ctx context.Context, workspaceID, id string) (*store.Connection, error) {
	k, err := getOne(ctx, s, "connection", id,
		`SELECT `+connectionCols+` FROM connections WHERE id = $1 AND workspace_id = $2`, scanConnection, id, workspaceID)
	return k.v, err
}

// ListConnections lists the workspace's connections in creation order.
func (s *Store) ListConnections(ctx context.Context, workspaceID string, p store.Page) ([]*store.Connection, string, error) {
	after, err := pagetoken.After("conn", p.Token)
	if err != nil {
		return nil, "", err
	}
	size := pagetoken.Size(p)
	rows, err := getAll(ctx, s, "list connections",
		`SELECT `+connectionCols+` FROM connections WHERE workspace_id = $1 AND rid > $2 ORDER BY rid LIMIT $3`,
		scanConnection, workspaceID, after, size+1)
	if err != nil {
		return nil, "", err
	}
	cs, next := paginate(rows, size, "conn")
	return cs, next, nil
}

// UpdateConnection replaces the connection's name, parameters, credentials, status, last
// error, grant and credentials expire time, increments its credentials version and sets
// its UpdateTime to now.
func (s *Store) UpdateConnection(ctx context.Context, c *store.Connection) error {
	params, err := encodeMap(c.Parameters)
	if err != nil {
		return fmt.Errorf("connection %q parameters: %w", c.ID, err)
	}
	if s.isClosed.Load() {
		return store.ErrClosed
	}
	updated := now()
	var version int64
	err = s.pool.QueryRow(ctx, `UPDATE connections SET name = $1, parameters = $2::text::json, credentials = $3, status = $4,
			last_error = $5, grant_type = $6, credentials_expire_time = $7, credentials_version = credentials_version + 1,
			update_time = $8, renew_owner = '', renew_until = '-infinity'
		WHERE id = $9 AND workspace_id = $10 RETURNING credentials_version`,
		c.Name, params, c.Credentials, c.Status, clean(c.LastError), c.Grant, ts(c.CredentialsExpireTime), updated,
		c.ID, c.WorkspaceID).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("connection %q: %w", c.ID, store.ErrNotFound)
	}
	if err != nil {
		return s.opErr("update connection", err)
	}
	c.UpdateTime, c.CredentialsVersion = updated, version
	return nil
}

// DeleteConnection deletes a connection. Its subscriptions are not deleted: while any
// remains the deletion fails with store.ErrInUse.
func (s *Store) DeleteConnection(ctx context.Context, workspaceID, id string) error {
	n, err := s.exec(ctx, `DELETE FROM connections WHERE id = $1 AND workspace_id = $2`, id, workspaceID)
	if pgCode(err) == codeForeignKeyViolation {
		return fmt.Errorf("connection %s has subscriptions: %w", quote(id), store.ErrInUse)
	}
	return s.mustAffect(n, err, "connection", id)
}
