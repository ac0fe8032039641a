package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/server/store"
)

// SetConnectionAuth replaces the connection's credentials and their status if its
// credentials version is still c.CredentialsVersion, and appends events, in one
// transaction. The events take their seqs as CommitDelivery's do: the workspace's
// event_seqs row is the transaction's last write, locked until COMMIT.
func (s *Store) SetConnectionAuth(ctx context.Context, c *store.Connection, events ...*store.Event) error {
	var ids, conns, subs, keys, types, records, exts, dels []string
	var received []pgtype.Timestamptz
	for _, ev := range events {
		if ev.WorkspaceID != c.WorkspaceID {
			return fmt.Errorf("postgres: SetConnectionAuth: event %q of workspace %q with a connection of workspace %q", ev.ID, ev.WorkspaceID, c.WorkspaceID)
		}
		rec, err := value.Encode(ev.Record)
		if err != nil {
			return fmt.Errorf("event %q record: %w", ev.ID, err)
		}
		ids, conns, subs, keys = append(ids, ev.ID), append(conns, ev.ConnectionID), append(subs, ev.SubscriptionID), append(keys, ev.EventKey)
		types, records, exts, dels = append(types, clean(ev.Type)), append(records, string(rec)), append(exts, clean(ev.ExternalID)), append(dels, ev.DeliveryID)
		received = append(received, tsSorted(ev.ReceiveTime))
	}
	if s.isClosed.Load() {
		return store.ErrClosed
	}
	updated := now()
	var version, base int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE connections SET credentials = $1, status = $2, last_error = $3, grant_type = $4,
				credentials_expire_time = $5, credentials_version = credentials_version + 1, update_time = $6,
				renew_owner = '', renew_until = '-infinity'
			WHERE id = $7 AND workspace_id = $8 AND credentials_version = $9 RETURNING credentials_version`,
			c.Credentials, c.Status, clean(c.LastError), c.Grant, ts(c.CredentialsExpireTime), updated,
			c.ID, c.WorkspaceID, c.CredentialsVersion).Scan(&version)
		if errors.Is(err, pgx.ErrNoRows) {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM connections WHERE id = $1 AND workspace_id = $2)`, c.ID, c.WorkspaceID).Scan(&exists); err != nil {
				return err
			}
			if exists {
				return fmt.Errorf("connection %q: credentials version %d: %w", c.ID, c.CredentialsVersion, store.ErrConflict)
			}
			return fmt.Errorf("connection %q: %w", c.ID, store.ErrNotFound)
		}
		if err != nil || len(ids) == 0 {
			return err
		}
		return tx.QueryRow(ctx, `WITH c AS (
				INSERT INTO event_seqs AS s (workspace_id, last_seq) VALUES ($1, $2)
				ON CONFLICT (workspace_id) DO UPDATE SET last_seq = s.last_seq + excluded.last_seq
				RETURNING last_seq),
			ins AS (
				INSERT INTO events (workspace_id, seq, id, connection_id, subscription_id, event_key, type, record,
					external_id, delivery_id, receive_time)
				SELECT $1, c.last_seq - $2 + e.n, e.id, e.conn, e.sub, e.key, e.type, e.record::json, e.ext, e.del, e.received
				FROM c, unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
					$11::timestamptz[]) WITH ORDINALITY AS e(id, conn, sub, key, type, record, ext, del, received, n))
			SELECT last_seq - $2 FROM c`,
			c.WorkspaceID, int64(len(ids)), ids, conns, subs, keys, types, records, exts, dels, received).Scan(&base)
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			return err
		}
		return s.opErr("set connection auth", err)
	}
	c.UpdateTime, c.CredentialsVersion = updated, version
	for i, ev := range events {
		ev.Seq = base + int64(i) + 1
	}
	if len(events) > 0 {
		s.notify.add(c.WorkspaceID, base+int64(len(events)))
	}
	return nil
}

// CreateAuthState stores an authorization in progress.
func (s *Store) CreateAuthState(ctx context.Context, st *store.AuthState) error {
	created := orNow(st.CreateTime)
	_, err := s.exec(ctx, `INSERT INTO auth_states (hash, workspace_id, connection_id, verifier, return_url, create_time, expire_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		st.Hash, st.WorkspaceID, st.ConnectionID, st.Verifier, st.ReturnURL, created, st.ExpireTime)
	if err = s.insertErr("auth state", "of connection "+st.ConnectionID, fmt.Sprintf("connection %q", st.ConnectionID), err); err == nil {
		st.CreateTime = created
	}
	return err
}

// ConsumeAuthState deletes the state with hash and returns it.
func (s *Store) ConsumeAuthState(ctx context.Context, hash []byte) (*store.AuthState, error) {
	if s.isClosed.Load() {
		return nil, store.ErrClosed
	}
	st := &store.AuthState{}
	var created, expires pgtype.Timestamptz
	err := s.pool.QueryRow(ctx, `DELETE FROM auth_states WHERE hash = $1
		RETURNING hash, workspace_id, connection_id, verifier, return_url, create_time, expire_time`, hash).
		Scan(&st.Hash, &st.WorkspaceID, &st.ConnectionID, &st.Verifier, &st.ReturnURL, &created, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("auth state: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, s.opErr("consume auth state", err)
	}
	st.CreateTime, st.ExpireTime = fromTS(created), fromTS(expires)
	return st, nil
}

// PruneAuthStates deletes the states that expired before before.
func (s *Store) PruneAuthStates(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.exec(ctx, `DELETE FROM auth_states WHERE expire_time < $1`, before)
	if err != nil {
		return 0, s.opErr("prune auth states", err)
	}
	return n, nil
}

// ClaimRenewal leases a connection's renewal to owner for ttl (by the database's clock)
// unless another owner holds a live lease.
func (s *Store) ClaimRenewal(ctx context.Context, workspaceID, id, owner string, ttl time.Duration) (bool, error) {
	n, err := s.exec(ctx, `UPDATE connections SET renew_owner = $1, renew_until = now() + $2 * interval '1 microsecond'
		WHERE id = $3 AND workspace_id = $4 AND (renew_owner = $1 OR renew_until <= now())`,
		owner, ttl.Microseconds(), id, workspaceID)
	if err != nil {
		return false, s.opErr("claim renewal", err)
	}
	if n == 1 {
		return true, nil
	}
	if _, err := s.GetConnection(ctx, workspaceID, id); err != nil {
		return false, err
	}
	return false, nil
}

// ReleaseRenewal ends owner's lease on a connection's renewal.
func (s *Store) ReleaseRenewal(ctx context.Context, workspaceID, id, owner string) error {
	_, err := s.exec(ctx, `UPDATE connections SET renew_owner = '', renew_until = '-infinity'
		WHERE id = $1 AND workspace_id = $2 AND renew_owner = $3`, id, workspaceID, owner)
	if err != nil {
		return s.opErr("release renewal", err)
	}
	return nil
}
