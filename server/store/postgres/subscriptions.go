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

// encodeSubscriptionMaps encodes a subscription's parameters and (sealed) state for
// their columns.
func encodeSubscriptionMaps(sub *store.Subscription) (params *string, state []byte, err error) {
	if params, err = encodeMap(sub.Parameters); err != nil {
		return nil, nil, fmt.Errorf("subscription %q parameters: %w", sub.ID, err)
	}
	return params, sub.State, nil
}

// CreateSubscription inserts sub; its connection must exist in its workspace (else
// store.ErrNotFound). Zero CreateTime and UpdateTime are set to now.
func (s *Store) CreateSubscription(ctx context.Context, sub *store.Subscription) error {
	params, state, err := encodeSubscriptionMaps(sub)
	if err != nil {
		return err
	}
	created, updated := createTimes(sub.CreateTime, sub.UpdateTime)
	_, err = s.exec(ctx, `INSERT INTO subscriptions (id, workspace_id, connection_id, connector_key, event_key, parameters, state,
			webhook_secret, status, last_error, global_webhook_key, selector, next_refresh_time, refresh_time,
			refresh_failures, last_event_time, create_time, update_time)
		VALUES ($1, $2, $3, $4, $5, $6::text::json, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		sub.ID, sub.WorkspaceID, sub.ConnectionID, sub.ConnectorKey, sub.EventKey, params, state,
		sub.WebhookSecret, sub.Status, clean(sub.LastError), sub.GlobalWebhookKey, clean(sub.Selector),
		ts(sub.NextRefreshTime), ts(sub.RefreshTime), sub.RefreshFailures, ts(sub.LastEventTime), created, updated)
	if err = s.insertErr("subscription", sub.ID, "connection "+quote(sub.ConnectionID), err); err == nil {
		sub.CreateTime, sub.UpdateTime = created, updated
	}
	return err
}

const subscriptionCols = `rid, id, workspace_id, connection_id, connector_key, event_key, parameters::text, state,
	webhook_secret, status, last_error, global_webhook_key, selector, next_refresh_time, refresh_time, refresh_failures,
	last_event_time, create_time, update_time`

func scanSubscription(sc scanner) (keyed[*store.Subscription], error) {
	s := &store.Subscription{}
	var rid int64
	var next, refreshed, lastEvent, created, updated pgtype.Timestamptz
	var params *string
	if err := sc.Scan(&rid, &s.ID, &s.WorkspaceID, &s.ConnectionID, &s.ConnectorKey, &s.EventKey, &params, &s.State,
		&s.WebhookSecret, &s.Status, &s.LastError, &s.GlobalWebhookKey, &s.Selector, &next, &refreshed,
		&s.RefreshFailures, &lastEvent, &created, &updated); err != nil {
		return keyed[*store.Subscription]{}, err
	}
	var err error
	if s.Parameters, err = decodeMap(params); err != nil {
		return keyed[*store.Subscription]{key: rid, v: s}, unreadable(fmt.Sprintf("subscription %q parameters", s.ID), err)
	}
	s.NextRefreshTime, s.RefreshTime, s.LastEventTime = fromTS(next), fromTS(refreshed), fromTS(lastEvent)
	s.CreateTime, s.UpdateTime = fromTS(created), fromTS(updated)
	return keyed[*store.Subscription]{key: rid, v: s}, nil
}

func scanSubscriptionOnly(sc scanner) (*store.Subscription, error) {
	k, err := scanSubscription(sc)
	return k.v, err
}

// GetSubscription returns a subscription of the workspace.
func (s *Store) GetSubscription(ctx context.Context, workspaceID, id string) (*store.Subscription, error) {
	return getOne(ctx, s, "subscription", id,
		`SELECT `+subscriptionCols+` FROM subscriptions WHERE id = $1 AND workspace_id = $2`, scanSubscriptionOnly, id, workspaceID)
}

// LookupSubscription returns a subscription by its id alone.
func (s *Store) LookupSubscription(ctx context.Context, id string) (*store.Subscription, error) {
	return getOne(ctx, s, "subscription", id,
		`SELECT `+subscriptionCols+` FROM subscriptions WHERE id = $1`, scanSubscriptionOnly, id)
}

// ListSubscriptions lists the workspace's subscriptions (of one connection unless
// connectionID is "") in creation order.
func (s *Store) ListSubscriptions(ctx context.Context, workspaceID, connectionID string, p store.Page) ([]*store.Subscription, string, error) {
	after, err := pagetoken.After("sub", p.Token)
	if err != nil {
		return nil, "", err
	}
	size := pagetoken.Size(p)
	q := `SELECT ` + subscriptionCols + ` FROM subscriptions WHERE workspace_id = $1 AND rid > $2 ORDER BY rid LIMIT $3`
	args := []any{workspaceID, after, size + 1}
	if connectionID != "" {
		q = `SELECT ` + subscriptionCols + ` FROM subscriptions WHERE workspace_id = $1 AND connection_id = $2 AND rid > $3 ORDER BY rid LIMIT $4`
		args = []any{workspaceID, connectionID, after, size + 1}
	}
	rows, err := getAll(ctx, s, "list subscriptions", q, scanSubscription, args...)
	if err != nil {
		return nil, "", err
	}
	subs, next := paginate(rows, size, "sub")
	return subs, next, nil
}

// UpdateSubscription replaces the subscription's mutable fields and sets its UpdateTime
// to now. LastEventTime, which CommitDelivery maintains, keeps the later of the stored
// and the given time. With a StateChange, the stored state is read and locked (FOR
// UPDATE) in the update's transaction, so no write of another replica comes between the
// read and the write of what StateChange makes of it.
func (s *Store) UpdateSubscription(ctx context.Context, sub *store.Subscription) error {
	params, state, err := encodeSubscriptionMaps(sub)
	if err != nil {
		return err
	}
	if s.isClosed.Load() {
		return store.ErrClosed
	}
	updated := now()
	var lastEvent pgtype.Timestamptz
	var changed []byte
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if sub.StateChange != nil {
			var stored []byte
			err := tx.QueryRow(ctx, `SELECT state FROM subscriptions WHERE id = $1 AND workspace_id = $2 FOR UPDATE`,
				sub.ID, sub.WorkspaceID).Scan(&stored)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("subscription %s: %w", quote(sub.ID), store.ErrNotFound)
			}
			if err != nil {
				return s.opErr("update subscription "+sub.ID, err)
			}
			if changed, err = sub.StateChange(stored); err != nil {
				return fmt.Errorf("subscription %q state: %w", sub.ID, err)
			}
			state = changed
		}
		err := tx.QueryRow(ctx, `UPDATE subscriptions SET parameters = $1::text::json, state = $2, webhook_secret = $3,
				status = $4, last_error = $5, global_webhook_key = $6, selector = $7, next_refresh_time = $8, refresh_time = $9,
				refresh_failures = $10, last_event_time = greatest(last_event_time, $11), update_time = $12
			WHERE id = $13 AND workspace_id = $14
			RETURNING last_event_time`,
			params, state, sub.WebhookSecret, sub.Status, clean(sub.LastError), sub.GlobalWebhookKey, clean(sub.Selector),
			ts(sub.NextRefreshTime), ts(sub.RefreshTime), sub.RefreshFailures, ts(sub.LastEventTime), updated,
			sub.ID, sub.WorkspaceID).Scan(&lastEvent)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("subscription %s: %w", quote(sub.ID), store.ErrNotFound)
		}
		if err != nil {
			return s.opErr("update subscription "+sub.ID, err)
		}
		return nil
	})
	if err != nil {
		if s.isClosed.Load() {
			return store.ErrClosed
		}
		return err
	}
	sub.UpdateTime, sub.LastEventTime = updated, fromTS(lastEvent)
	if sub.StateChange != nil {
		sub.State, sub.StateChange = changed, nil
	}
	return nil
}

// DeleteSubscription deletes a subscription of the workspace. Its events, deliveries and
// idempotency keys stay.
func (s *Store) DeleteSubscription(ctx context.Context, workspaceID, id string) error {
	n, err := s.exec(ctx, `DELETE FROM subscriptions WHERE id = $1 AND workspace_id = $2`, id, workspaceID)
	return s.mustAffect(n, err, "subscription", id)
}

// MatchSubscriptions returns the ACTIVE subscriptions routed by a global webhook selector,
// in creation order.
func (s *Store) MatchSubscriptions(ctx context.Context, workspaceID, connectorKey, globalWebhookKey, selector string) ([]*store.Subscription, error) {
	return getAll(ctx, s, "match subscriptions",
		`SELECT `+subscriptionCols+` FROM subscriptions
		WHERE workspace_id = $1 AND connector_key = $2 AND global_webhook_key = $3 AND selector = $4 AND status = 'ACTIVE'
		ORDER BY rid`,
		scanSubscriptionOnly, workspaceID, connectorKey, globalWebhookKey, clean(selector))
}

// ClaimDueSubscriptions leases the subscriptions due for background work to c.Owner (see
// store.DueClaim). FOR UPDATE SKIP LOCKED lets replicas claim at the same time without
// waiting for each other or taking the same rows; lease_until, by the database's clock,
// frees the rows of a replica that died.
func (s *Store) ClaimDueSubscriptions(ctx context.Context, c store.DueClaim) ([]*store.Subscription, error) {
	limit := c.Limit
	if limit <= 0 {
		limit = 100
	}
	return getAll(ctx, s, "claim due subscriptions",
		`WITH due AS (
			SELECT rid FROM subscriptions
			WHERE ((status = 'ACTIVE' AND next_refresh_time <= $1)
				OR (status = 'DELETING' AND (next_refresh_time IS NULL OR next_refresh_time <= $2)))
				AND (lease_until IS NULL OR lease_until <= clock_timestamp())
			ORDER BY next_refresh_time NULLS FIRST, rid
			LIMIT $3
			FOR UPDATE SKIP LOCKED),
		claimed AS (
			UPDATE subscriptions s SET lease_owner = $4, lease_until = clock_timestamp() + $5 * interval '1 microsecond'
			FROM due WHERE s.rid = due.rid
			RETURNING s.*)
		SELECT `+subscriptionCols+` FROM claimed ORDER BY next_refresh_time NULLS FIRST, rid`,
		scanSubscriptionOnly, ts(c.RefreshBefore), ts(c.RetryBefore), limit, c.Owner, c.TTL.Microseconds())
}

// ReleaseSubscription ends owner's lease on a subscription, if owner still holds it.
func (s *Store) ReleaseSubscription(ctx context.Context, id, owner string) error {
	if _, err := s.exec(ctx, `UPDATE subscriptions SET lease_owner = '', lease_until = NULL WHERE id = $1 AND lease_owner = $2`, id, owner); err != nil {
		return s.opErr("release subscription "+id, err)
	}
	return nil
}

// EnsureGlobalWebhook returns the global webhook of (g.WorkspaceID, g.ConnectorKey, g.Key),
// inserting g when there is none. Concurrent calls, in any process, agree on one: an
// insert that loses the race to another waits for it and then reads the winner.
func (s *Store) EnsureGlobalWebhook(ctx context.Context, g *store.GlobalWebhook) (*store.GlobalWebhook, error) {
	created := orNow(g.CreateTime)
	for range 3 {
		n, err := s.exec(ctx, `INSERT INTO global_webhooks (id, workspace_id, connector_key, key, create_time) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (workspace_id, connector_key, key) DO NOTHING`,
			g.ID, g.WorkspaceID, g.ConnectorKey, g.Key, created)
		if err != nil {
			return nil, s.insertErr("global webhook", g.ID, "workspace "+quote(g.WorkspaceID), err)
		}
		if n == 1 {
			g.CreateTime = created
			return g, nil
		}
		got, err := getOne(ctx, s, "global webhook", g.Key,
			`SELECT `+globalWebhookCols+` FROM global_webhooks WHERE workspace_id = $1 AND connector_key = $2 AND key = $3`,
			scanGlobalWebhookOnly, g.WorkspaceID, g.ConnectorKey, g.Key)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted between the two statements: insert again
		}
		return got, err
	}
	return nil, fmt.Errorf("postgres: global webhook %q: no stable row after 3 attempts", g.Key)
}

const globalWebhookCols = `rid, id, workspace_id, connector_key, key, create_time`

func scanGlobalWebhook(sc scanner) (keyed[*store.GlobalWebhook], error) {
	g := &store.GlobalWebhook{}
	var rid int64
	var created pgtype.Timestamptz
	if err := sc.Scan(&rid, &g.ID, &g.WorkspaceID, &g.ConnectorKey, &g.Key, &created); err != nil {
		return keyed[*store.GlobalWebhook]{}, err
	}
	g.CreateTime = fromTS(created)
	return keyed[*store.GlobalWebhook]{key: rid, v: g}, nil
}

func scanGlobalWebhookOnly(sc scanner) (*store.GlobalWebhook, error) {
	k, err := scanGlobalWebhook(sc)
	return k.v, err
}

// LookupGlobalWebhook returns a global webhook by its id alone.
func (s *Store) LookupGlobalWebhook(ctx context.Context, id string) (*store.GlobalWebhook, error) {
	return getOne(ctx, s, "global webhook", id,
		`SELECT `+globalWebhookCols+` FROM global_webhooks WHERE id = $1`, scanGlobalWebhookOnly, id)
}

// ListGlobalWebhooks lists the workspace's global webhooks of a connector (of every
// connector when connectorKey is "") in creation order.
func (s *Store) ListGlobalWebhooks(ctx context.Context, workspaceID, connectorKey string) ([]*store.GlobalWebhook, error) {
	return getAll(ctx, s, "list global webhooks",
		`SELECT `+globalWebhookCols+` FROM global_webhooks WHERE workspace_id = $1 AND ($2 = '' OR connector_key = $2) ORDER BY rid`,
		scanGlobalWebhookOnly, workspaceID, connectorKey)
}
