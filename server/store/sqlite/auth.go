package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hookmap/hookmap/server/store"
)

// SetConnectionAuth replaces the connection's credentials and their status if its
// credentials version is still c.CredentialsVersion, and appends events, in one
// transaction.
func (s *Store) SetConnectionAuth(ctx context.Context, c *store.Connection, events ...*store.Event) error {
	encoded := make([]encodedEvent, len(events))
	for i, ev := range events {
		if ev.WorkspaceID != c.WorkspaceID {
			return fmt.Errorf("sqlite: SetConnectionAuth: event %q of workspace %q with a connection of workspace %q", ev.ID, ev.WorkspaceID, c.WorkspaceID)
		}
		rec, err := encodeValue(ev.Record)
		if err != nil {
			return fmt.Errorf("event %q record: %w", ev.ID, err)
		}
		encoded[i] = encodedEvent{ev, rec}
	}
	updated := now()
	var version int64
	seqs := make([]int64, len(events))
	err := s.write(ctx, func(t *wtx) error {
		err := t.queryRow(`UPDATE connections SET credentials = ?, status = ?, last_error = ?, grant_type = ?,
				credentials_expire_time = ?, credentials_version = credentials_version + 1, update_time = ?,
				renew_owner = '', renew_until = 0
			WHERE id = ? AND workspace_id = ? AND credentials_version = ? RETURNING credentials_version`,
			blob(c.Credentials), c.Status, c.LastError, c.Grant, nanos(c.CredentialsExpireTime), nanos(updated),
			c.ID, c.WorkspaceID, c.CredentialsVersion).Scan(&version)
		if errors.Is(err, sql.ErrNoRows) {
			var exists bool
			if err := t.queryRow(`SELECT EXISTS (SELECT 1 FROM connections WHERE id = ? AND workspace_id = ?)`, c.ID, c.WorkspaceID).Scan(&exists); err != nil {
				return fmt.Errorf("sqlite: connection %q: %w", c.ID, err)
			}
			if exists {
				return fmt.Errorf("connection %q: credentials version %d: %w", c.ID, c.CredentialsVersion, store.ErrConflict)
			}
			return fmt.Errorf("connection %q: %w", c.ID, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("sqlite: connection %q: %w", c.ID, err)
		}
		t.changedConnection(c.WorkspaceID, c.ID)
		for i, e := range encoded {
			ev := e.ev
			if seqs[i], err = t.insertEvent(ev, e.record); err != nil {
				return fmt.Errorf("sqlite: event %q: %w", ev.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.UpdateTime, c.CredentialsVersion = updated, version
	for i, ev := range events {
		ev.Seq = seqs[i]
	}
	return nil
}

// CreateAuthState stores an authorization in progress.
func (s *Store) CreateAuthState(ctx context.Context, st *store.AuthState) error {
	created := orNow(st.CreateTime)
	err := s.write(ctx, func(t *wtx) error {
		_, err := t.exec(`INSERT INTO auth_states (hash, workspace_id, connection_id, verifier, return_url, create_time, expire_time)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			st.Hash, st.WorkspaceID, st.ConnectionID, blob(st.Verifier), st.ReturnURL, nanos(created), nanos(st.ExpireTime))
		return insertErr("auth state", "of connection "+st.ConnectionID, fmt.Sprintf("connection %q", st.ConnectionID), err)
	})
	if err == nil {
		st.CreateTime = created
	}
	return err
}

// ConsumeAuthState deletes the state with hash and returns it.
func (s *Store) ConsumeAuthState(ctx context.Context, hash []byte) (*store.AuthState, error) {
	var out *store.AuthState
	err := s.write(ctx, func(t *wtx) error {
		st := &store.AuthState{}
		var created, expires int64
		err := t.queryRow(`DELETE FROM auth_states WHERE hash = ?
			RETURNING hash, workspace_id, connection_id, verifier, return_url, create_time, expire_time`, hash).
			Scan(&st.Hash, &st.WorkspaceID, &st.ConnectionID, &st.Verifier, &st.ReturnURL, &created, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("auth state: %w", store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("sqlite: auth state: %w", err)
		}
		st.CreateTime, st.ExpireTime = fromNanos(created), fromNanos(expires)
		out = st
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PruneAuthStates deletes the states that expired before before.
func (s *Store) PruneAuthStates(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(t *wtx) error {
		res, err := t.exec(`DELETE FROM auth_states WHERE expire_time < ?`, nanos(before))
		if err != nil {
			return fmt.Errorf("sqlite: prune auth states: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// ClaimRenewal leases a connection's renewal to owner for ttl unless another owner holds a
// live lease.
func (s *Store) ClaimRenewal(ctx context.Context, workspaceID, id, owner string, ttl time.Duration) (bool, error) {
	var claimed bool
	err := s.write(ctx, func(t *wtx) error {
		t0 := now()
		res, err := t.exec(`UPDATE connections SET renew_owner = ?, renew_until = ?
			WHERE id = ? AND workspace_id = ? AND (renew_owner = ? OR renew_until <= ?)`,
			owner, nanos(t0.Add(ttl)), id, workspaceID, owner, nanos(t0))
		if err != nil {
			return fmt.Errorf("sqlite: claim renewal of connection %q: %w", id, err)
		}
		t.changedConnection(workspaceID, id) // its lease columns
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		claimed = n == 1
		if claimed {
			return nil
		}
		var exists bool
		if err := t.queryRow(`SELECT EXISTS (SELECT 1 FROM connections WHERE id = ? AND workspace_id = ?)`, id, workspaceID).Scan(&exists); err != nil {
			return fmt.Errorf("sqlite: connection %q: %w", id, err)
		}
		if !exists {
			return fmt.Errorf("connection %q: %w", id, store.ErrNotFound)
		}
		return nil
	})
	return claimed, err
}

// ReleaseRenewal ends owner's lease on a connection's renewal.
func (s *Store) ReleaseRenewal(ctx context.Context, workspaceID, id, owner string) error {
	return s.write(ctx, func(t *wtx) error {
		_, err := t.exec(`UPDATE connections SET renew_owner = '', renew_until = 0 WHERE id = ? AND workspace_id = ? AND renew_owner = ?`,
			id, workspaceID, owner)
		if err != nil {
			return fmt.Errorf("sqlite: release renewal of connection %q: %w", id, err)
		}
		t.changedConnection(workspaceID, id) // its lease columns
		return nil
	})
}
