package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

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
	err = s.write(ctx, func(t *wtx) error {
		_, err := t.exec(`INSERT INTO connections (id, workspace_id, connector_key, name, parameters, credentials, status,
				last_error, grant_type, credentials_expire_time, credentials_version, create_time, update_time)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
			c.ID, c.WorkspaceID, c.ConnectorKey, c.Name, params, blob(c.Credentials), c.Status, c.LastError, c.Grant,
			nanos(c.CredentialsExpireTime), nanos(created), nanos(updated))
		t.changedConnection(c.WorkspaceID, c.ID)
		return insertErr("connection", c.ID, "workspace "+quote(c.WorkspaceID), err)
	})
	if err == nil {
		c.CreateTime, c.UpdateTime, c.CredentialsVersion = created, updated, 1
	}
	return err
}

const connectionCols = `rid, id, workspace_id, connector_key, name, parameters, credentials, status, last_error, grant_type,
	credentials_expire_time, credentials_version, create_time, update_time`

func scanConnection(sc scanner) (keyed[*store.Connection], error) {
	c := &store.Connection{}
	var rid, expires, created, updated int64
	var params sql.NullString
	if err := sc.Scan(&rid, &c.ID, &c.WorkspaceID, &c.ConnectorKey, &c.Name, &params, &c.Credentials, &c.Status,
		&c.LastError, &c.Grant, &expires, &c.CredentialsVersion, &created, &updated); err != nil {
		return keyed[*store.Connection]{}, err
	}
	var err error
	if c.Parameters, err = decodeMap(params); err != nil {
		return keyed[*store.Connection]{key: rid, v: c}, unreadable(fmt.Sprintf("connection %q parameters", c.ID), err)
	}
	c.CredentialsExpireTime, c.CreateTime, c.UpdateTime = fromNanos(expires), fromNanos(created), fromNanos(updated)
	return keyed[*store.Connection]{key: rid, v: c}, nil
}

// GetConnection returns a connection of the workspace, from the cache when it holds it
// (see the package documentation).
func (s *Store) GetConnection(ctx context.Context, workspaceID, id string) (*store.Connection, error) {
	if s.isClosed.Load() {
		return nil, store.ErrClosed
	}
	return cached(s.cache.conns, wsKey{workspaceID, id}, cloneConnection, func() (*store.Connection, error) {
		k, err := getOne(ctx, s, "connection", id,
			`SELECT `+connectionCols+` FROM connections WHERE id = ? AND workspace_id = ?`, scanConnection, id, workspaceID)
		return k.v, err
	})
}

// ListConnections lists the workspace's connections in creation order.
func (s *Store) ListConnections(ctx context.Context, workspaceID string, p store.Page) ([]*store.Connection, string, error) {
	after, err := pagetoken.After("conn", p.Token)
	if err != nil {
		return nil, "", err
	}
	size := pagetoken.Size(p)
	rows, err := getAll(ctx, s, "list connections",
		`SELECT `+connectionCols+` FROM connections WHERE workspace_id = ? AND rid > ? ORDER BY rid LIMIT ?`,
		true, scanConnection, workspaceID, after, size+1)
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
	updated := now()
	var version int64
	err = s.write(ctx, func(t *wtx) error {
		err := t.queryRow(`UPDATE connections SET name = ?, parameters = ?, credentials = ?, status = ?, last_error = ?,
				grant_type = ?, credentials_expire_time = ?, credentials_version = credentials_version + 1, update_time = ?,
				renew_owner = '', renew_until = 0
			WHERE id = ? AND workspace_id = ? RETURNING credentials_version`,
			c.Name, params, blob(c.Credentials), c.Status, c.LastError, c.Grant, nanos(c.CredentialsExpireTime),
			nanos(updated), c.ID, c.WorkspaceID).Scan(&version)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("connection %q: %w", c.ID, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("sqlite: connection %q: %w", c.ID, err)
		}
		t.changedConnection(c.WorkspaceID, c.ID)
		return nil
	})
	if err == nil {
		c.UpdateTime, c.CredentialsVersion = updated, version
	}
	return err
}

// DeleteConnection deletes a connection. Its subscriptions are not deleted: while any
// remains the deletion fails with store.ErrInUse.
func (s *Store) DeleteConnection(ctx context.Context, workspaceID, id string) error {
	return s.write(ctx, func(t *wtx) error {
		res, err := t.exec(`DELETE FROM connections WHERE id = ? AND workspace_id = ?`, id, workspaceID)
		t.changedConnection(workspaceID, id)
		if isFKViolation(err) {
			return fmt.Errorf("connection %s has subscriptions: %w", quote(id), store.ErrInUse)
		}
		return mustAffect(res, err, "connection", id)
	})
}
