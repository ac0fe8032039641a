package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/pagetoken"
)

// keyed is a listed record with the sort key its page token continues after.
type keyed[T any] struct {
	key int64
	v   T
	bad bool // the record cannot be read: its key still counts for the page token
}

func (k *keyed[T]) markUnreadable() { k.bad = true }

// paginate trims a list read with LIMIT size+1 to size and makes the next page token
// from the last row's key.
func paginate[T any](rows []keyed[T], size int, kind string) ([]T, string) {
	return trimPage(rows, size, func(last keyed[T]) string { return pagetoken.Encode(kind, last.key) })
}

// paginateByTime is paginate for lists ordered by (time DESC, rid DESC): the token holds
// both.
func paginateByTime[T any](rows []keyed[T], size int, kind string, at func(T) time.Time) ([]T, string) {
	return trimPage(rows, size, func(last keyed[T]) string { return pagetoken.Encode(kind, nanos(at(last.v)), last.key) })
}

func trimPage[T any](rows []keyed[T], size int, token func(last keyed[T]) string) ([]T, string) {
	next := ""
	if len(rows) > size {
		rows = rows[:size]
		next = token(rows[size-1])
	}
	out := make([]T, 0, len(rows))
	for _, r := range rows {
		if !r.bad {
			out = append(out, r.v)
		}
	}
	return out, next
}

// CreateWorkspace inserts w; a zero CreateTime is set to now.
func (s *Store) CreateWorkspace(ctx context.Context, w *store.Workspace) error {
	created := orNow(w.CreateTime)
	err := s.write(ctx, func(t *wtx) error {
		_, err := t.exec(`INSERT INTO workspaces (id, name, create_time) VALUES (?, ?, ?)`, w.ID, w.Name, nanos(created))
		return insertErr("workspace", w.ID, "", err)
	})
	if err == nil {
		w.CreateTime = created
	}
	return err
}

const workspaceCols = `rid, id, name, create_time`

func scanWorkspace(sc scanner) (keyed[*store.Workspace], error) {
	w := &store.Workspace{}
	var rid, created int64
	if err := sc.Scan(&rid, &w.ID, &w.Name, &created); err != nil {
		return keyed[*store.Workspace]{}, err
	}
	w.CreateTime = fromNanos(created)
	return keyed[*store.Workspace]{key: rid, v: w}, nil
}

// GetWorkspace returns a workspace by id.
func (s *Store) GetWorkspace(ctx context.Context, id string) (*store.Workspace, error) {
	k, err := getOne(ctx, s, "workspace", id, `SELECT `+workspaceCols+` FROM workspaces WHERE id = ?`, scanWorkspace, id)
	return k.v, err
}

// ListWorkspaces lists workspaces in creation order.
func (s *Store) ListWorkspaces(ctx context.Context, p store.Page) ([]*store.Workspace, string, error) {
	after, err := pagetoken.After("ws", p.Token)
	if err != nil {
		return nil, "", err
	}
	size := pagetoken.Size(p)
	rows, err := getAll(ctx, s, "list workspaces", `SELECT `+workspaceCols+` FROM workspaces WHERE rid > ? ORDER BY rid LIMIT ?`, true, scanWorkspace, after, size+1)
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
	err := s.write(ctx, func(t *wtx) error {
		_, err := t.exec(`INSERT INTO api_keys (id, workspace_id, name, hash, create_time, revoke_time) VALUES (?, ?, ?, ?, ?, ?)`,
			k.ID, k.WorkspaceID, k.Name, k.Hash, nanos(created), nanos(k.RevokeTime))
		t.changedAPIKeys()
		return insertErr("API key", k.ID, "workspace "+quote(k.WorkspaceID), err)
	})
	if err == nil {
		k.CreateTime = created
	}
	return err
}

// GetAPIKeyByHash returns the key with hash, revoked or not. Every authenticated call
// asks, so keys are cached (a revocation clears the cache before RevokeAPIKey returns).
func (s *Store) GetAPIKeyByHash(ctx context.Context, hash []byte) (*store.APIKey, error) {
	if s.isClosed.Load() {
		return nil, store.ErrClosed
	}
	return cached(s.cache.keys, string(hash), cloneAPIKey, func() (*store.APIKey, error) {
		return getOne(ctx, s, "API key", "(by hash)",
			`SELECT id, workspace_id, name, hash, create_time, revoke_time FROM api_keys WHERE hash = ?`,
			func(sc scanner) (*store.APIKey, error) {
				k := &store.APIKey{}
				var created, revoked int64
				if err := sc.Scan(&k.ID, &k.WorkspaceID, &k.Name, &k.Hash, &created, &revoked); err != nil {
					return nil, err
				}
				k.CreateTime, k.RevokeTime = fromNanos(created), fromNanos(revoked)
				return k, nil
			}, hash)
	})
}

func cloneAPIKey(k *store.APIKey) *store.APIKey {
	cp := *k
	cp.Hash = bytes.Clone(k.Hash)
	return &cp
}

// RevokeAPIKey sets the key's RevokeTime to at (now when zero). A key revoked already
// keeps its first revocation time.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, at time.Time) error {
	at = orNow(at)
	return s.write(ctx, func(t *wtx) error {
		res, err := t.exec(`UPDATE api_keys SET revoke_time = CASE WHEN revoke_time = 0 THEN ? ELSE revoke_time END WHERE id = ?`, nanos(at), id)
		t.changedAPIKeys()
		return mustAffect(res, err, "API key", id)
	})
}

// SetConnectorParameters stores (replaces) the workspace's sealed parameters of a connector.
func (s *Store) SetConnectorParameters(ctx context.Context, workspaceID, connectorKey string, sealed []byte) error {
	if sealed == nil {
		sealed = []byte{}
	}
	t0 := now()
	return s.write(ctx, func(t *wtx) error {
		_, err := t.exec(`INSERT INTO connector_parameters (workspace_id, connector_key, sealed, update_time) VALUES (?, ?, ?, ?)
			ON CONFLICT (workspace_id, connector_key) DO UPDATE SET sealed = excluded.sealed, update_time = excluded.update_time`,
			workspaceID, connectorKey, sealed, nanos(t0))
		t.changedConnectorParameters(workspaceID, connectorKey)
		return insertErr("connector parameters", connectorKey, "workspace "+quote(workspaceID), err)
	})
}

// GetConnectorParameters returns what SetConnectorParameters stored, store.ErrNotFound
// when it never ran; from the cache when it holds it (see the package documentation).
// Unlike the other cached reads, it caches that there are none: the receiver asks for
// the parameters of every webhook's connector, and most connectors have none.
func (s *Store) GetConnectorParameters(ctx context.Context, workspaceID, connectorKey string) ([]byte, error) {
	if s.isClosed.Load() {
		return nil, store.ErrClosed
	}
	b, err := cached(s.cache.params, wsKey{workspaceID, connectorKey}, cloneBytes, func() ([]byte, error) {
		b, err := getOne(ctx, s, "connector parameters", connectorKey,
			`SELECT sealed FROM connector_parameters WHERE workspace_id = ? AND connector_key = ?`,
			func(sc scanner) ([]byte, error) {
				var b []byte
				err := sc.Scan(&b)
				if b == nil {
					b = []byte{}
				}
				return b, err
			}, workspaceID, connectorKey)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil // cached as nil: none stored
		}
		return b, err
	})
	if err == nil && b == nil {
		return nil, noConnectorParameters{connectorKey}
	}
	return b, err
}

// noConnectorParameters is GetConnectorParameters' ErrNotFound. Its message is made only
// when read: the receiver asks for a workspace's parameters on every webhook, and most
// workspaces have none.
type noConnectorParameters struct{ key string }

func (e noConnectorParameters) Error() string {
	return fmt.Sprintf("connector parameters %s: %v", quote(e.key), store.ErrNotFound)
}

func (e noConnectorParameters) Unwrap() error { return store.ErrNotFound }
