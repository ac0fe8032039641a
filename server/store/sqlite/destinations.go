package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/pagetoken"
)

// readable returns the values of rows, leaving out those that cannot be read (getAll
// logged them).
func readable[T any](rows []keyed[T]) []T {
	out := make([]T, 0, len(rows))
	for _, r := range rows {
		if !r.bad {
			out = append(out, r.v)
		}
	}
	return out
}

// CreateDestination inserts d; its workspace must exist and its ID be new there.
func (s *Store) CreateDestination(ctx context.Context, d *store.Destination) error {
	filter, err := encodeJSON(d.Filter, false)
	if err != nil {
		return fmt.Errorf("destination %q filter: %w", d.ID, err)
	}
	created, updated := createTimes(d.CreateTime, d.UpdateTime)
	err = s.write(ctx, func(t *wtx) error {
		_, err := t.exec(`INSERT INTO destinations (workspace_id, id, webhook_id, filter, retry_window, status, status_reason,
			cursor, create_time, update_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			d.WorkspaceID, d.ID, d.WebhookID, filter, int64(d.RetryWindow), d.Status, d.StatusReason, d.Cursor,
			nanos(created), nanos(updated))
		return insertErr("destination", d.ID, "workspace "+quote(d.WorkspaceID), err)
	})
	if err == nil {
		d.CreateTime, d.UpdateTime = created, updated
	}
	return err
}

const destinationCols = `d.rid, d.workspace_id, d.id, d.webhook_id, d.filter, d.retry_window, d.status, d.status_reason,
	d.cursor, d.delivered, d.last_delivery_time, d.create_time, d.update_time, d.pending, d.failed`

func scanDestination(sc scanner) (keyed[*store.Destination], error) {
	d := &store.Destination{}
	var rid, window, lastDelivery, created, updated int64
	var filter sql.NullString
	if err := sc.Scan(&rid, &d.WorkspaceID, &d.ID, &d.WebhookID, &filter, &window, &d.Status, &d.StatusReason,
		&d.Cursor, &d.Delivered, &lastDelivery, &created, &updated, &d.Pending, &d.Failed); err != nil {
		return keyed[*store.Destination]{}, err
	}
	f, err := decodeJSON[store.EventFilter](filter)
	if err != nil {
		return keyed[*store.Destination]{key: rid, v: d}, unreadable(fmt.Sprintf("destination %q filter", d.ID), err)
	}
	d.Filter, d.RetryWindow = f, time.Duration(window)
	d.LastDeliveryTime, d.CreateTime, d.UpdateTime = fromNanos(lastDelivery), fromNanos(created), fromNanos(updated)
	return keyed[*store.Destination]{key: rid, v: d}, nil
}

// GetDestination returns a destination of the workspace with its queue's counts.
func (s *Store) GetDestination(ctx context.Context, workspaceID, id string) (*store.Destination, error) {
	k, err := getOne(ctx, s, "destination", id,
		`SELECT `+destinationCols+` FROM destinations d WHERE d.workspace_id = ? AND d.id = ?`,
		scanDestination, workspaceID, id)
	return k.v, err
}

// ListDestinations lists the workspace's destinations in creation order.
func (s *Store) ListDestinations(ctx context.Context, workspaceID string, p store.Page) ([]*store.Destination, string, error) {
	after, err := pagetoken.After("dst", p.Token)
	if err != nil {
		return nil, "", err
	}
	size := pagetoken.Size(p)
	rows, err := getAll(ctx, s, "list destinations",
		`SELECT `+destinationCols+` FROM destinations d WHERE d.workspace_id = ? AND d.rid > ? ORDER BY d.rid LIMIT ?`,
		true, scanDestination, workspaceID, after, size+1)
	if err != nil {
		return nil, "", err
	}
	ds, next := paginate(rows, size, "dst")
	return ds, next, nil
}

// ListDestinationsByStatus returns every workspace's destinations with status.
func (s *Store) ListDestinationsByStatus(ctx context.Context, status string) ([]*store.Destination, error) {
	rows, err := getAll(ctx, s, "list destinations by status",
		`SELECT `+destinationCols+` FROM destinations d WHERE d.status = ? ORDER BY d.workspace_id, d.id`,
		true, scanDestination, status)
	return readable(rows), err
}

// UpdateDestination replaces the webhook, filter and retry window.
func (s *Store) UpdateDestination(ctx context.Context, d *store.Destination) error {
	filter, err := encodeJSON(d.Filter, false)
	if err != nil {
		return fmt.Errorf("destination %q filter: %w", d.ID, err)
	}
	updated := now()
	err = s.write(ctx, func(t *wtx) error {
		res, err := t.exec(`UPDATE destinations SET webhook_id = ?, filter = ?, retry_window = ?, update_time = ?
			WHERE workspace_id = ? AND id = ?`, d.WebhookID, filter, int64(d.RetryWindow), nanos(updated), d.WorkspaceID, d.ID)
		return mustAffect(res, err, "destination", d.ID)
	})
	if err == nil {
		d.UpdateTime = updated
	}
	return err
}

// SetDestinationStatus sets the status and its reason.
func (s *Store) SetDestinationStatus(ctx context.Context, workspaceID, id, status, reason string) error {
	updated := now()
	return s.write(ctx, func(t *wtx) error {
		res, err := t.exec(`UPDATE destinations SET status = ?, status_reason = ?, update_time = ? WHERE workspace_id = ? AND id = ?`,
			status, reason, nanos(updated), workspaceID, id)
		return mustAffect(res, err, "destination", id)
	})
}

// DeleteDestination deletes a destination; its queued events go with it (ON DELETE CASCADE).
func (s *Store) DeleteDestination(ctx context.Context, workspaceID, id string) error {
	return s.write(ctx, func(t *wtx) error {
		res, err := t.exec(`DELETE FROM destinations WHERE workspace_id = ? AND id = ?`, workspaceID, id)
		return mustAffect(res, err, "destination", id)
	})
}

// destinationRIDIn returns the rid of a destination inside a write transaction.
func destinationRIDIn(t *wtx, workspaceID, id string) (int64, error) {
	var rid int64
	err := t.queryRow(`SELECT rid FROM destinations WHERE workspace_id = ? AND id = ?`, workspaceID, id).Scan(&rid)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("destination %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: destination %q: %w", id, err)
	}
	return rid, nil
}

// laneHeadQuery finds a lane's lowest pending event: one lookup in the lane index. The
// index is named: walking the primary key in seq order would also give the lowest first,
// but through every queued event of the other lanes before it.
const laneHeadQuery = `SELECT seq, next_attempt_time FROM destination_events INDEXED BY destination_events_lane
	WHERE destination_rid = ? AND state = 'PENDING' AND lane = ? ORDER BY seq LIMIT 1`

// resetLane makes a lane point at its lowest pending event, or removes the lane when it
// has none.
func resetLane(t *wtx, rid int64, lane string) error {
	var seq, next int64
	err := t.queryRow(laneHeadQuery, rid, lane).Scan(&seq, &next)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = t.exec(`DELETE FROM destination_lanes WHERE destination_rid = ? AND lane = ?`, rid, lane)
	case err == nil:
		_, err = t.exec(`INSERT INTO destination_lanes (destination_rid, lane, head_seq, next_attempt_time) VALUES (?, ?, ?, ?)
			ON CONFLICT (destination_rid, lane) DO UPDATE SET head_seq = excluded.head_seq,
			next_attempt_time = excluded.next_attempt_time`, rid, lane, seq, next)
	}
	if err != nil {
		return fmt.Errorf("sqlite: destination lane %q: %w", lane, err)
	}
	return nil
}

// addCounts adds to a destination's pending and failed counts.
func addCounts(t *wtx, rid, pending, failed int64) error {
	if pending == 0 && failed == 0 {
		return nil
	}
	if _, err := t.exec(`UPDATE destinations SET pending = pending + ?, failed = failed + ? WHERE rid = ?`, pending, failed, rid); err != nil {
		return fmt.Errorf("sqlite: destination counts: %w", err)
	}
	return nil
}

// EnqueueDestinationEvents queues events and moves the cursor forward, in one transaction.
func (s *Store) EnqueueDestinationEvents(ctx context.Context, workspaceID, id string, events []*store.DestinationEvent, cursor int64) error {
	return s.write(ctx, func(t *wtx) error {
		rid, err := destinationRIDIn(t, workspaceID, id)
		if err != nil {
			return err
		}
		var pending, failed int64
		lanes := map[string]bool{}
		for _, e := range events {
			state := e.State
			if state == "" {
				state = store.DestinationEventPending
			}
			res, err := t.exec(`INSERT INTO destination_events (destination_rid, seq, event_id, subscription_id, connection_id,
				lane, state, attempts, first_attempt_time, next_attempt_time, last_status, last_error)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (destination_rid, seq) DO NOTHING`,
				rid, e.Seq, e.EventID, e.SubscriptionID, e.ConnectionID, e.Lane(), state, e.Attempts, nanos(e.FirstAttemptTime),
				nanos(e.NextAttemptTime), e.LastStatus, e.LastError)
			if err != nil {
				return fmt.Errorf("sqlite: queue event %d for destination %q: %w", e.Seq, id, err)
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				continue // already queued
			}
			if state == store.DestinationEventFailed {
				failed++
			} else {
				pending++
				lanes[e.Lane()] = true
			}
		}
		for lane := range lanes {
			if err := resetLane(t, rid, lane); err != nil {
				return err
			}
		}
		if err := addCounts(t, rid, pending, failed); err != nil {
			return err
		}
		if _, err := t.exec(`UPDATE destinations SET cursor = ? WHERE rid = ? AND cursor < ?`, cursor, rid, cursor); err != nil {
			return fmt.Errorf("sqlite: destination %q cursor: %w", id, err)
		}
		return nil
	})
}

const destinationEventCols = `d.workspace_id, d.id, e.seq, e.event_id, e.subscription_id, e.connection_id, e.state,
	e.attempts, e.first_attempt_time, e.next_attempt_time, e.last_status, e.last_error`

func scanDestinationEvent(sc scanner) (keyed[*store.DestinationEvent], error) {
	e := &store.DestinationEvent{}
	var first, next int64
	if err := sc.Scan(&e.WorkspaceID, &e.DestinationID, &e.Seq, &e.EventID, &e.SubscriptionID, &e.ConnectionID, &e.State,
		&e.Attempts, &first, &next, &e.LastStatus, &e.LastError); err != nil {
		return keyed[*store.DestinationEvent]{}, err
	}
	e.FirstAttemptTime, e.NextAttemptTime = fromNanos(first), fromNanos(next)
	return keyed[*store.DestinationEvent]{key: e.Seq, v: e}, nil
}

// destinationHeadsQuery reads the lanes in due order and each head's event by its key.
const destinationHeadsQuery = `SELECT ` + destinationEventCols + ` FROM destinations d
	JOIN destination_lanes l ON l.destination_rid = d.rid
	JOIN destination_events e ON e.destination_rid = d.rid AND e.seq = l.head_seq
	WHERE d.workspace_id = ? AND d.id = ?
	ORDER BY l.next_attempt_time, l.head_seq LIMIT ?`

// DestinationHeads returns the lowest pending event of each subscription, soonest due
// first: a read of the lanes, whatever the queue's length.
func (s *Store) DestinationHeads(ctx context.Context, workspaceID, id string, limit int) ([]*store.DestinationEvent, error) {
	if limit <= 0 {
		limit = pagetoken.DefaultSize
	}
	rows, err := getAll(ctx, s, "destination heads", destinationHeadsQuery, true, scanDestinationEvent, workspaceID, id, limit)
	return readable(rows), err
}

// queuedIn returns a queued event's state and lane inside a write transaction.
func queuedIn(t *wtx, rid, seq int64, what string) (state, lane string, err error) {
	err = t.queryRow(`SELECT state, lane FROM destination_events WHERE destination_rid = ? AND seq = ?`, rid, seq).Scan(&state, &lane)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", fmt.Errorf("destination event %s/%d: %w", what, seq, store.ErrNotFound)
	}
	if err != nil {
		return "", "", fmt.Errorf("sqlite: destination event %s/%d: %w", what, seq, err)
	}
	return state, lane, nil
}

// CompleteDestinationEvent removes an acknowledged event and counts it.
func (s *Store) CompleteDestinationEvent(ctx context.Context, workspaceID, id string, seq int64, at time.Time) error {
	return s.write(ctx, func(t *wtx) error {
		rid, err := destinationRIDIn(t, workspaceID, id)
		if err != nil {
			return err
		}
		state, lane, err := queuedIn(t, rid, seq, id)
		if err != nil {
			return err
		}
		if _, err := t.exec(`DELETE FROM destination_events WHERE destination_rid = ? AND seq = ?`, rid, seq); err != nil {
			return fmt.Errorf("sqlite: destination event %s/%d: %w", id, seq, err)
		}
		pending, failed := int64(-1), int64(0)
		if state == store.DestinationEventFailed {
			pending, failed = 0, -1
		}
		_, err = t.exec(`UPDATE destinations SET delivered = delivered + 1, last_delivery_time = MAX(last_delivery_time, ?),
			pending = pending + ?, failed = failed + ? WHERE rid = ?`, nanos(at), pending, failed, rid)
		if err != nil {
			return fmt.Errorf("sqlite: destination %q: %w", id, err)
		}
		return resetLane(t, rid, lane)
	})
}

// UpdateDestinationEvent replaces a queued event's delivery state.
func (s *Store) UpdateDestinationEvent(ctx context.Context, e *store.DestinationEvent) error {
	return s.write(ctx, func(t *wtx) error {
		rid, err := destinationRIDIn(t, e.WorkspaceID, e.DestinationID)
		if err != nil {
			return err
		}
		was, lane, err := queuedIn(t, rid, e.Seq, e.DestinationID)
		if err != nil {
			return err
		}
		if _, err := t.exec(`UPDATE destination_events SET state = ?, attempts = ?, first_attempt_time = ?, next_attempt_time = ?,
			last_status = ?, last_error = ? WHERE destination_rid = ? AND seq = ?`,
			e.State, e.Attempts, nanos(e.FirstAttemptTime), nanos(e.NextAttemptTime), e.LastStatus, e.LastError, rid, e.Seq); err != nil {
			return fmt.Errorf("sqlite: destination event %s/%d: %w", e.DestinationID, e.Seq, err)
		}
		switch {
		case was == store.DestinationEventPending && e.State == store.DestinationEventFailed:
			err = addCounts(t, rid, -1, 1)
		case was == store.DestinationEventFailed && e.State != store.DestinationEventFailed:
			err = addCounts(t, rid, 1, -1)
		}
		if err != nil {
			return err
		}
		return resetLane(t, rid, lane)
	})
}

// GetDestinationEvent returns a queued event.
func (s *Store) GetDestinationEvent(ctx context.Context, workspaceID, id string, seq int64) (*store.DestinationEvent, error) {
	k, err := getOne(ctx, s, "destination event", fmt.Sprintf("%s/%d", id, seq),
		`SELECT `+destinationEventCols+` FROM destinations d JOIN destination_events e ON e.destination_rid = d.rid
		WHERE d.workspace_id = ? AND d.id = ? AND e.seq = ?`, scanDestinationEvent, workspaceID, id, seq)
	return k.v, err
}

// The pages of a destination's queue, in seq order: all of it along the primary key, or
// one state along destination_events_state, so listing the few parked events never walks
// a long pending backlog.
const (
	listDestinationEventsAll = `SELECT ` + destinationEventCols + ` FROM destinations d
	JOIN destination_events e ON e.destination_rid = d.rid
	WHERE d.workspace_id = ? AND d.id = ? AND e.seq > ? ORDER BY e.seq LIMIT ?`
	listDestinationEventsByState = `SELECT ` + destinationEventCols + ` FROM destinations d
	JOIN destination_events e INDEXED BY destination_events_state ON e.destination_rid = d.rid
	WHERE d.workspace_id = ? AND d.id = ? AND e.state = ? AND e.seq > ? ORDER BY e.seq LIMIT ?`
)

// ListDestinationEvents lists queued events in seq order.
func (s *Store) ListDestinationEvents(ctx context.Context, workspaceID, id, state string, p store.Page) ([]*store.DestinationEvent, string, error) {
	after, err := pagetoken.After("dev", p.Token)
	if err != nil {
		return nil, "", err
	}
	size := pagetoken.Size(p)
	query, args := listDestinationEventsAll, []any{workspaceID, id, after, size + 1}
	if state != "" {
		query, args = listDestinationEventsByState, []any{workspaceID, id, state, after, size + 1}
	}
	rows, err := getAll(ctx, s, "list destination events", query, true, scanDestinationEvent, args...)
	if err != nil {
		return nil, "", err
	}
	out, next := paginate(rows, size, "dev")
	return out, next, nil
}

// RetryDestinationEvents makes FAILED events (one, or all with seq 0) PENDING again.
func (s *Store) RetryDestinationEvents(ctx context.Context, workspaceID, id string, seq int64, at time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(t *wtx) error {
		n = 0
		rid, err := destinationRIDIn(t, workspaceID, id)
		if err != nil {
			return err
		}
		rows, err := t.query(`SELECT DISTINCT lane FROM destination_events
			WHERE destination_rid = ? AND state = 'FAILED' AND (? = 0 OR seq = ?)`, rid, seq, seq)
		if err != nil {
			return fmt.Errorf("sqlite: retry events of destination %q: %w", id, err)
		}
		var lanes []string
		for rows.Next() {
			var lane string
			if err := rows.Scan(&lane); err != nil {
				_ = rows.Close()
				return fmt.Errorf("sqlite: retry events of destination %q: %w", id, err)
			}
			lanes = append(lanes, lane)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("sqlite: retry events of destination %q: %w", id, err)
		}
		res, err := t.exec(`UPDATE destination_events SET state = 'PENDING', attempts = 0, first_attempt_time = 0,
			next_attempt_time = ? WHERE destination_rid = ? AND state = 'FAILED' AND (? = 0 OR seq = ?)`,
			nanos(at), rid, seq, seq)
		if err != nil {
			return fmt.Errorf("sqlite: retry events of destination %q: %w", id, err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: retry events of destination %q: %w", id, err)
		}
		if seq != 0 && n == 0 {
			return fmt.Errorf("failed event %d of destination %q: %w", seq, id, store.ErrNotFound)
		}
		for _, lane := range lanes {
			if err := resetLane(t, rid, lane); err != nil {
				return err
			}
		}
		return addCounts(t, rid, n, -n)
	})
	return n, err
}

// AcquireDestinationLease takes or renews the destination's lease for owner.
func (s *Store) AcquireDestinationLease(ctx context.Context, workspaceID, id, owner string, at, until time.Time) (bool, error) {
	var held bool
	err := s.write(ctx, func(t *wtx) error {
		held = false
		res, err := t.exec(`UPDATE destinations SET lease_owner = ?, lease_until = ?
			WHERE workspace_id = ? AND id = ? AND (lease_owner = '' OR lease_owner = ? OR lease_until < ?)`,
			owner, nanos(until), workspaceID, id, owner, nanos(at))
		if err != nil {
			return fmt.Errorf("sqlite: lease of destination %q: %w", id, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("sqlite: lease of destination %q: %w", id, err)
		}
		if n == 1 {
			held = true
			return nil
		}
		var one int
		if err := t.queryRow(`SELECT 1 FROM destinations WHERE workspace_id = ? AND id = ?`, workspaceID, id).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("destination %q: %w", id, store.ErrNotFound)
		}
		return nil
	})
	return held, err
}

// ReleaseDestinationLease frees the lease if owner holds it.
func (s *Store) ReleaseDestinationLease(ctx context.Context, workspaceID, id, owner string) error {
	return s.write(ctx, func(t *wtx) error {
		_, err := t.exec(`UPDATE destinations SET lease_owner = '', lease_until = 0 WHERE workspace_id = ? AND id = ? AND lease_owner = ?`,
			workspaceID, id, owner)
		if err != nil {
			return fmt.Errorf("sqlite: release lease of destination %q: %w", id, err)
		}
		return nil
	})
}
