package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/pagetoken"
)

// encodeSubscriptionMaps encodes a subscription's parameters and (sealed) state for their
// columns.
func encodeSubscriptionMaps(sub *store.Subscription) (params, state any, err error) {
	if params, err = encodeMap(sub.Parameters); err != nil {
		return nil, nil, fmt.Errorf("subscription %q parameters: %w", sub.ID, err)
	}
	return params, blob(sub.State), nil
}

// CreateSubscription inserts sub; its connection must exist in its workspace (else
// store.ErrNotFound). Zero CreateTime and UpdateTime are set to now.
func (s *Store) CreateSubscription(ctx context.Context, sub *store.Subscription) error {
	params, state, err := encodeSubscriptionMaps(sub)
	if err != nil {
		return err
	}
	created, updated := createTimes(sub.CreateTime, sub.UpdateTime)
	err = s.write(ctx, func(t *wtx) error {
		_, err := t.exec(`INSERT INTO subscriptions (id, workspace_id, connection_id, connector_key, event_key, parameters, state,
				webhook_secret, status, last_error, global_webhook_key, selector, next_refresh_time, refresh_time,
				refresh_failures, last_event_time, create_time, update_time)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sub.ID, sub.WorkspaceID, sub.ConnectionID, sub.ConnectorKey, sub.EventKey, params, state,
			blob(sub.WebhookSecret), sub.Status, sub.LastError, sub.GlobalWebhookKey, sub.Selector,
			nanos(sub.NextRefreshTime), nanos(sub.RefreshTime), sub.RefreshFailures, nanos(sub.LastEventTime),
			nanos(created), nanos(updated))
		t.changedSubscription(sub.ID)
		return insertErr("subscription", sub.ID, "connection "+quote(sub.ConnectionID), err)
	})
	if err == nil {
		sub.CreateTime, sub.UpdateTime = created, updated
	}
	return err
}

const subscriptionCols = `rid, id, workspace_id, connection_id, connector_key, event_key, parameters, state, webhook_secret,
	status, last_error, global_webhook_key, selector, next_refresh_time, refresh_time, refresh_failures,
	last_event_time, create_time, update_time`

func scanSubscription(sc scanner) (keyed[*store.Subscription], error) {
	s := &store.Subscription{}
	var rid, next, refreshed, lastEvent, created, updated int64
	var params sql.NullString
	if err := sc.Scan(&rid, &s.ID, &s.WorkspaceID, &s.ConnectionID, &s.ConnectorKey, &s.EventKey, &params, &s.State,
		&s.WebhookSecret, &s.Status, &s.LastError, &s.GlobalWebhookKey, &s.Selector, &next, &refreshed,
		&s.RefreshFailures, &lastEvent, &created, &updated); err != nil {
		return keyed[*store.Subscription]{}, err
	}
	var err error
	if s.Parameters, err = decodeMap(params); err != nil {
		return keyed[*store.Subscription]{key: rid, v: s}, unreadable(fmt.Sprintf("subscription %q parameters", s.ID), err)
	}
	s.NextRefreshTime, s.RefreshTime, s.LastEventTime = fromNanos(next), fromNanos(refreshed), fromNanos(lastEvent)
	s.CreateTime, s.UpdateTime = fromNanos(created), fromNanos(updated)
	return keyed[*store.Subscription]{key: rid, v: s}, nil
}

func scanSubscriptionOnly(sc scanner) (*store.Subscription, error) {
	k, err := scanSubscription(sc)
	return k.v, err
}

// GetSubscription returns a subscription of the workspace.
func (s *Store) GetSubscription(ctx context.Context, workspaceID, id string) (*store.Subscription, error) {
	return fresh(&s.lastEvent, func() (*store.Subscription, error) {
		return getOne(ctx, s, "subscription", id,
			`SELECT `+subscriptionCols+` FROM subscriptions WHERE id = ? AND workspace_id = ?`, scanSubscriptionOnly, id, workspaceID)
	}, one)
}

// one is a read's subscription as a list, for fresh.
func one(sub *store.Subscription) []*store.Subscription { return []*store.Subscription{sub} }

// LookupSubscription returns a subscription by its id alone, from the cache when it holds
// it (see the package documentation).
func (s *Store) LookupSubscription(ctx context.Context, id string) (*store.Subscription, error) {
	if s.isClosed.Load() {
		return nil, store.ErrClosed
	}
	return fresh(&s.lastEvent, func() (*store.Subscription, error) {
		return cached(s.cache.subs, id, cloneSubscription, func() (*store.Subscription, error) {
			return getOne(ctx, s, "subscription", id,
				`SELECT `+subscriptionCols+` FROM subscriptions WHERE id = ?`, scanSubscriptionOnly, id)
		})
	}, one)
}

// ListSubscriptions lists the workspace's subscriptions (of one connection unless
// connectionID is "") in creation order.
func (s *Store) ListSubscriptions(ctx context.Context, workspaceID, connectionID string, p store.Page) ([]*store.Subscription, string, error) {
	after, err := pagetoken.After("sub", p.Token)
	if err != nil {
		return nil, "", err
	}
	size := pagetoken.Size(p)
	q := `SELECT ` + subscriptionCols + ` FROM subscriptions WHERE workspace_id = ? AND rid > ? ORDER BY rid LIMIT ?`
	args := []any{workspaceID, after, size + 1}
	if connectionID != "" {
		q = `SELECT ` + subscriptionCols + ` FROM subscriptions WHERE workspace_id = ? AND connection_id = ? AND rid > ? ORDER BY rid LIMIT ?`
		args = []any{workspaceID, connectionID, after, size + 1}
	}
	rows, err := fresh(&s.lastEvent, func() ([]keyed[*store.Subscription], error) {
		return getAll(ctx, s, "list subscriptions", q, true, scanSubscription, args...)
	}, func(rows []keyed[*store.Subscription]) []*store.Subscription {
		subs := make([]*store.Subscription, len(rows))
		for i, r := range rows {
			subs[i] = r.v
		}
		return subs
	})
	if err != nil {
		return nil, "", err
	}
	subs, next := paginate(rows, size, "sub")
	return subs, next, nil
}

// UpdateSubscription replaces the subscription's mutable fields (parameters, state,
// webhook secret, status, last error, routing, refresh times and failures) and sets its
// UpdateTime to now. LastEventTime, which CommitDelivery maintains, keeps the later of the
// stored and the given time. With a StateChange the state written is what it makes of the
// stored one, in the same transaction, and sub.State is set to it.
func (s *Store) UpdateSubscription(ctx context.Context, sub *store.Subscription) error {
	params, state, err := encodeSubscriptionMaps(sub)
	if err != nil {
		return err
	}
	updated := now()
	var lastEvent int64
	var changed []byte
	err = s.write(ctx, func(t *wtx) error {
		state := state
		if sub.StateChange != nil {
			stored, found, err := storedState(t, sub.ID, sub.WorkspaceID)
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("subscription %s: %w", quote(sub.ID), store.ErrNotFound)
			}
			if changed, err = sub.StateChange(stored); err != nil {
				return fmt.Errorf("subscription %q state: %w", sub.ID, err)
			}
			state = blob(changed)
		}
		err := t.queryRow(`UPDATE subscriptions SET parameters = ?, state = ?, webhook_secret = ?, status = ?, last_error = ?,
				global_webhook_key = ?, selector = ?, next_refresh_time = ?, refresh_time = ?, refresh_failures = ?,
				last_event_time = MAX(last_event_time, ?), update_time = ?
			WHERE id = ? AND workspace_id = ?
			RETURNING last_event_time`,
			params, state, blob(sub.WebhookSecret), sub.Status, sub.LastError, sub.GlobalWebhookKey, sub.Selector,
			nanos(sub.NextRefreshTime), nanos(sub.RefreshTime), sub.RefreshFailures, nanos(sub.LastEventTime),
			nanos(updated), sub.ID, sub.WorkspaceID).Scan(&lastEvent)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("subscription %s: %w", quote(sub.ID), store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("sqlite: update subscription %q: %w", sub.ID, err)
		}
		// The writer's goroutine: the pending times hold still.
		lastEvent = max(lastEvent, s.lastEvent.at(sub.ID, sub.WorkspaceID))
		t.changedSubscription(sub.ID)
		return nil
	})
	if err == nil {
		sub.UpdateTime, sub.LastEventTime = updated, fromNanos(lastEvent)
		if sub.StateChange != nil {
			sub.State, sub.StateChange = changed, nil
		}
	}
	return err
}

// storedState reads a subscription's stored (sealed) state inside the writer's
// transaction, so that no other write comes between it and the write of its change; found
// is false when the subscription does not exist.
func storedState(t *wtx, id, workspaceID string) (state []byte, found bool, err error) {
	err = t.queryRow(`SELECT state FROM subscriptions WHERE id = ? AND workspace_id = ?`, id, workspaceID).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: subscription %q state: %w", id, err)
	}
	return state, true, nil
}

// DeleteSubscription deletes a subscription of the workspace. Its events, deliveries and
// idempotency keys stay.
func (s *Store) DeleteSubscription(ctx context.Context, workspaceID, id string) error {
	return s.write(ctx, func(t *wtx) error {
		res, err := t.exec(`DELETE FROM subscriptions WHERE id = ? AND workspace_id = ?`, id, workspaceID)
		t.changedSubscription(id)
		return mustAffect(res, err, "subscription", id)
	})
}

// MatchSubscriptions returns the ACTIVE subscriptions routed by a global webhook selector,
// in creation order.
func (s *Store) MatchSubscriptions(ctx context.Context, workspaceID, connectorKey, globalWebhookKey, selector string) ([]*store.Subscription, error) {
	return fresh(&s.lastEvent, func() ([]*store.Subscription, error) {
		return getAll(ctx, s, "match subscriptions",
			`SELECT `+subscriptionCols+` FROM subscriptions
			WHERE workspace_id = ? AND connector_key = ? AND global_webhook_key = ? AND selector = ? AND status = ?
			ORDER BY rid`,
			true, scanSubscriptionOnly, workspaceID, connectorKey, globalWebhookKey, selector, store.StatusActive)
	}, func(subs []*store.Subscription) []*store.Subscription { return subs })
}

// ClaimDueSubscriptions leases the subscriptions due for background work to c.Owner (see
// store.DueClaim). Writes are serialized by the writer, so two claims never lease the
// same subscription.
func (s *Store) ClaimDueSubscriptions(ctx context.Context, c store.DueClaim) ([]*store.Subscription, error) {
	limit := c.Limit
	if limit <= 0 {
		limit = 100
	}
	var out []*store.Subscription
	err := s.write(ctx, func(t *wtx) error {
		out = nil
		t0 := now()
		rows, err := t.query(`UPDATE subscriptions SET lease_owner = ?1, lease_until = ?2
			WHERE rid IN (
				SELECT rid FROM subscriptions
				WHERE lease_until <= ?3 AND (
					(status = 'ACTIVE' AND next_refresh_time > 0 AND next_refresh_time <= ?4)
					OR (status = 'DELETING' AND next_refresh_time <= ?5))
				ORDER BY next_refresh_time, rid LIMIT ?6)
			RETURNING `+subscriptionCols,
			c.Owner, nanos(t0.Add(c.TTL)), nanos(t0), nanos(c.RefreshBefore), nanos(c.RetryBefore), limit)
		if err != nil {
			return fmt.Errorf("sqlite: claim due subscriptions: %w", err)
		}
		defer rows.Close()
		var rowsKeyed []keyed[*store.Subscription]
		for rows.Next() {
			k, err := scanSubscription(rows)
			if k.v != nil {
				t.changedSubscription(k.v.ID) // its lease columns
				s.lastEvent.overlay(k.v)      // the writer's goroutine: the pending times hold still
			}
			if errors.Is(err, store.ErrUnreadable) {
				// Left leased until its TTL: one damaged subscription never stops the others.
				s.log.ErrorContext(ctx, "a due subscription cannot be read; it is skipped", "err", err)
				continue
			}
			if err != nil {
				return fmt.Errorf("sqlite: claim due subscriptions: %w", err)
			}
			rowsKeyed = append(rowsKeyed, k)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: claim due subscriptions: %w", err)
		}
		// RETURNING does not keep the subquery's order.
		slices.SortFunc(rowsKeyed, func(a, b keyed[*store.Subscription]) int {
			if c := a.v.NextRefreshTime.Compare(b.v.NextRefreshTime); c != 0 {
				return c
			}
			return cmp.Compare(a.key, b.key)
		})
		for _, k := range rowsKeyed {
			out = append(out, k.v)
		}
		return nil
	})
	return out, err
}

// ReleaseSubscription ends owner's lease on a subscription, if owner still holds it.
func (s *Store) ReleaseSubscription(ctx context.Context, id, owner string) error {
	return s.write(ctx, func(t *wtx) error {
		if _, err := t.exec(`UPDATE subscriptions SET lease_owner = '', lease_until = 0 WHERE id = ? AND lease_owner = ?`, id, owner); err != nil {
			return fmt.Errorf("sqlite: release subscription %q: %w", id, err)
		}
		t.changedSubscription(id)
		return nil
	})
}

// EnsureGlobalWebhook returns the global webhook of (g.WorkspaceID, g.ConnectorKey, g.Key),
// inserting g when there is none. All writes are serialized by the writer, so concurrent
// calls agree on one.
func (s *Store) EnsureGlobalWebhook(ctx context.Context, g *store.GlobalWebhook) (*store.GlobalWebhook, error) {
	created := orNow(g.CreateTime)
	var got *store.GlobalWebhook
	err := s.write(ctx, func(t *wtx) error {
		got = nil
		existing, err := scanGlobalWebhook(t.queryRow(`SELECT `+globalWebhookCols+` FROM global_webhooks
			WHERE workspace_id = ? AND connector_key = ? AND key = ?`, g.WorkspaceID, g.ConnectorKey, g.Key))
		if err == nil {
			got = existing.v
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: global webhook: %w", err)
		}
		_, err = t.exec(`INSERT INTO global_webhooks (id, workspace_id, connector_key, key, create_time) VALUES (?, ?, ?, ?, ?)`,
			g.ID, g.WorkspaceID, g.ConnectorKey, g.Key, nanos(created))
		return insertErr("global webhook", g.ID, "workspace "+quote(g.WorkspaceID), err)
	})
	if err != nil {
		return nil, err
	}
	if got == nil {
		g.CreateTime = created
		got = g
	}
	return got, nil
}

const globalWebhookCols = `rid, id, workspace_id, connector_key, key, create_time`

func scanGlobalWebhook(sc scanner) (keyed[*store.GlobalWebhook], error) {
	g := &store.GlobalWebhook{}
	var rid, created int64
	if err := sc.Scan(&rid, &g.ID, &g.WorkspaceID, &g.ConnectorKey, &g.Key, &created); err != nil {
		return keyed[*store.GlobalWebhook]{}, err
	}
	g.CreateTime = fromNanos(created)
	return keyed[*store.GlobalWebhook]{key: rid, v: g}, nil
}

func scanGlobalWebhookOnly(sc scanner) (*store.GlobalWebhook, error) {
	k, err := scanGlobalWebhook(sc)
	return k.v, err
}

// LookupGlobalWebhook returns a global webhook by its id alone.
func (s *Store) LookupGlobalWebhook(ctx context.Context, id string) (*store.GlobalWebhook, error) {
	return getOne(ctx, s, "global webhook", id,
		`SELECT `+globalWebhookCols+` FROM global_webhooks WHERE id = ?`, scanGlobalWebhookOnly, id)
}

// ListGlobalWebhooks lists the workspace's global webhooks of a connector (of every
// connector when connectorKey is "") in creation order.
func (s *Store) ListGlobalWebhooks(ctx context.Context, workspaceID, connectorKey string) ([]*store.GlobalWebhook, error) {
	return getAll(ctx, s, "list global webhooks",
		`SELECT `+globalWebhookCols+` FROM global_webhooks WHERE workspace_id = ?1 AND (?2 = '' OR connector_key = ?2) ORDER BY rid`,
		true, scanGlobalWebhookOnly, workspaceID, connectorKey)
}
