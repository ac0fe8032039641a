package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/pagetoken"
)

// CreateWorkspace inserts w; a zero CreateTime is set to now.
func (s *Store) CreateWorkspace(ctx context.Context, w *store.Workspace) error {
	created := orNow(w.CreateTime)
	_, err := s.exec(ctx, `INSERT INTO workspaces (id, name, create_time) VALUES ($1, $2, $3)`, w.ID, w.Name, created)
	if err = s.insertErr("workspace", w.ID, "", err); err == nil {
		w.CreateTime = created
	}
	return err
}

const workspaceCols = `rid, id, name, create_time`

func scanWorkspace(sc scanner) (keyed[*store.Workspace], error) {
	w := &store.Workspace{}
	var rid int64
	var created pgtype.Timestamptz
	if err := sc.Scan(&rid, &w.ID, &w.Name, &created); err != nil {
		return keyed[*store.Workspace]{}, err
	}
	w.CreateTime = fromTS(created)
	return keyed[*store.Workspace]{key: rid, v: w}, nil
}

// GetWorkspace returns a workspace by id.
func (s *Store) GetWorkspace(ctx context.Context, id string) (*store.Workspace, error) {
	k, err := getOne(ctx, s, "workspace", id, `SELECT `+workspaceCols+` FROM workspaces WHERE id = $1`, scanWorkspace, id)
	return k.v, err
}

// ListWorkspaces lists workspaces in creation order.
func (s *Store) ListWorkspaces(ctx context.Context, p store.Page) ([]*store.Workspace, string, error) {
	after, err := pagetoken.After("ws", p.Token)
	if err != nil {
		return nil, "", err
	}
	size := pagetoken.Size(p)
	rows, err := getAll(ctx, s, "list workspaces",
		`SELECT `+workspaceCols+` FROM workspaces WHERE rid > $1 ORDER BY rid LIMIT $2`, scanWorkspace, after, size+1)
	if err != nil {
		return nil, "", err
	}
	ws, next := paginate(rows, size, "ws")
	return ws, next, nil
}

// CreateAPIKey inserts k; its workspace must exist (else store.ErrNotFound) and its hash
// must be new (else store.ErrAlreadyExists).
func (s *Store) CreateAPIKey(ctx context.Context, k *store.APIKey) error {
	created := orNow(k.CreateTime)
	_, err := s.exec(ctx, `INSERT INTO api_keys (id, workspace_id, name, hash, create_time, revoke_time) VALUES ($1, $2, $3, $4, $5, $6)`,
		k.ID, k.WorkspaceID, k.Name, k.Hash, created, ts(k.RevokeTime))
	if err = s.insertErr("API key", k.ID, "workspace "+quote(k.WorkspaceID), err); err == nil {
		k.CreateTime = created
	}
	return err
}

// GetAPIKeyByHash returns the key with hash, revoked or not.
func (s *Store) GetAPIKeyByHash(ctx context.Context, hash []byte) (*store.APIKey, error) {
	return getOne(ctx, s, "API key", "(by hash)",
		`SELECT id, workspace_id, name, hash, create_time, revoke_time FROM api_keys WHERE hash = $1`,
		func(sc scanner) (*store.APIKey, error) {
			k := &store.APIKey{}
			var created, revoked pgtype.Timestamptz
			if err := sc.Scan(&k.ID, &k.WorkspaceID, &k.Name, &k.Hash, &created, &revoked); err != nil {
				return nil, err
			}
			k.CreateTime, k.RevokeTime = fromTS(created), fromTS(revoked)
			return k, nil
		}, hash)
}

// RevokeAPIKey sets the key's RevokeTime to at (now when zero). A key revoked already
// keeps its first revocation time.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, at time.Time) error {
	n, err := s.exec(ctx, `UPDATE api_keys SET revoke_time = coalesce(revoke_time, $1) WHERE id = $2`, orNow(at), id)
	return s.mustAffect(n, err, "API key", id)
}

// SetConnectorParameters stores (replaces) the workspace's sealed parameters of a connector.
func (s *Store) SetConnectorParameters(ctx context.Context, workspaceID, connectorKey string, sealed []byte) error {
	if sealed == nil {
		sealed = []byte{}
	}
	_, err := s.exec(ctx, `INSERT INTO connector_parameters (workspace_id, connector_key, sealed, update_time) VALUES ($1, $2, $3, $4)
		ON CONFLICT (workspace_id, connector_key) DO UPDATE SET sealed = excluded.sealed, update_time = excluded.update_time`,
		workspaceID, connectorKey, sealed, now())
	return s.insertErr("connector parameters", connectorKey, "workspace "+quote(workspaceID), err)
}

// GetConnectorParameters returns what SetConnectorParameters stored, store.ErrNotFound
// when it never ran.
func (s *Store) GetConnectorParameters(ctx context.Context, workspaceID, connectorKey string) ([]byte, error) {
	return getOne(ctx, s, "connector parameters", connectorKey,
		`SELECT sealed FROM connector_parameters WHERE workspace_id = $1 AND connector_key = $2`,
		func(sc scanner) ([]byte, error) {
			var b []byte
			err := sc.Scan(&b)
			if b == nil {
				b = []byte{}
			}
			return b, err
		}, workspaceID, connectorKey)
}
