package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/pagetoken"
)

// CreateDestination inserts d; its workspace must exist and its ID be new there.
func (s *Store) CreateDestination(ctx context.Context, d *store.Destination) error {
	filter, err := encodeJSON(d.Filter, false)
	if err != nil {
		return fmt.Errorf("destination %q filter: %w", d.ID, err)
	}
	created, updated := createTimes(d.CreateTime, d.UpdateTime)
	_, err = s.exec(ctx, `INSERT INTO destinations (workspace_id, id, webhook_id, filter, retry_window, status, status_reason,
		cursor, create_time, update_time) VALUES ($1, $2, $3, $4::text::json, $5, $6, $7, $8, $9, $10)`,
		d.WorkspaceID, d.ID, d.WebhookID, filter, int64(d.RetryWindow), d.Status, d.StatusReason, d.Cursor, created, updated)
	if err = s.insertErr("destination", d.ID, "workspace "+quote(d.WorkspaceID), err); err == nil {
		d.CreateTime, d.UpdateTime = created, updated
	}
	return err
}

const destinationCols = `rid, workspace_id, id, webhook_id, filter::text, retry_window, status, status_reason, cursor,
	delivered, last_delivery_time, create_time, update_time, pending, failed`

func scanDestination(sc scanner) (keyed[*store.Destination], error) {
	d := &store.Destination{}
	var rid, window int64
	var filter *string
	var lastDelivery, created, updated pgtype.Timestamptz
	if err := sc.Scan(&rid, &d.WorkspaceID, &d.ID, &d.WebhookID, &filter, &window, &d.Status, &d.StatusReason, &d.Cursor,
		&d.Delivered, &lastDelivery, &created, &updated, &d.Pending, &d.Failed); err != nil {
		return keyed[*store.Destination]{}, err
	}
	f, err := decodeJSON[store.EventFilter](filter)
	if err != nil {
		return keyed[*store.Destination]{key: rid, v: d}, unreadable(fmt.Sprintf("destination %q filter", d.ID), err)
	}
	d.Filter, d.RetryWindow = f, time.Duration(window)
	d.LastDeliveryTime, d.CreateTime, d.UpdateTime = fromTS(lastDelivery), fromTS(created), fromTS(updated)
	return keyed[*store.Destination]{key: rid, v: d}, nil
}

// GetDestination returns a destination of the workspace with its queue's counts.
func (s *Store) GetDestination(ctx context.Context, workspaceID, id string) (*store.Destination, error) {
	k, err := getOne(ctx, s, "destination", id,
		`SELECT `+destinationCols+` FROM destinations WHERE workspace_id = $1 AND id = $2`, scanDestination, workspaceID, id)
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
		`SELECT `+destinationCols+` FROM destinations WHERE workspace_id = $1 AND rid > $2 ORDER BY rid LIMIT $3`,
		scanDestination, workspaceID, after, size+1)
	if err != nil {
		return nil, "", err
	}
	ds, next := paginate(rows, size, "dst")
	return ds, next, nil
}

// ListDestinationsByStatus returns every workspace's destinations with status.
func (s *Store) ListDestinationsByStatus(ctx context.Context, status string) ([]*store.Destination, error) {
	rows, err := getAll(ctx, s, "list destinations by status",
		`SELECT `+destinationCols+` FROM destinations WHERE status = $1 ORDER BY workspace_id, id`, scanDestination, status)
	return readable(rows), err
}

// UpdateDestination replaces the webhook, filter and retry window.
func (s *Store) UpdateDestination(ctx context.Context, d *store.Destination) error {
	filter, err := encodeJSON(d.Filter, false)
	if err != nil {
		return fmt.Errorf("destination %q filter: %w", d.ID, err)
	}
	updated := now()
	n, err := s.exec(ctx, `UPDATE destinations SET webhook_id = $1, filter = $2::text::json, retry_window = $3, update_time = $4
		WHERE workspace_id = $5 AND id = $6`, d.WebhookID, filter, int64(d.RetryWindow), updated, d.WorkspaceID, d.ID)
	if err = s.mustAffect(n, err, "destination", d.ID); err == nil {
		d.UpdateTime = updated
	}
	return err
}

// SetDestinationStatus sets the status and its reason.
func (s *Store) SetDestinationStatus(ctx context.Context, workspaceID, id, status, reason string) error {
	n, err := s.exec(ctx, `UPDATE destinations SET status = $1, status_reason = $2, update_time = $3 WHERE workspace_id = $4 AND id = $5`,
		status, clean(reason), now(), workspaceID, id)
	return s.mustAffect(n, err, "destination", id)
}

// DeleteDestination deletes a destination; its queue goes with it (ON DELETE CASCADE).
func (s *Store) DeleteDestination(ctx context.Context, workspaceID, id string) error {
	n, err := s.exec(ctx, `DELETE FROM destinations WHERE workspace_id = $1 AND id = $2`, workspaceID, id)
	return s.mustAffect(n, err, "destination", id)
}

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

// queueTx runs fn in a transaction holding the destination's row lock: the changes of one
// queue (by its sender and by API calls, in any replica) go one at a time, so its lanes
// and counts stay exact.
func (s *Store) queueTx(ctx context.Context, workspaceID, id string, fn func(tx pgx.Tx, rid int64) error) error {
	if s.isClosed.Load() {
		return store.ErrClosed
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var rid int64
		err := tx.QueryRow(ctx, `SELECT rid FROM destinations WHERE workspace_id = $1 AND id = $2 FOR UPDATE`, workspaceID, id).Scan(&rid)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("destination %q: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return s.opErr("destination "+id, err)
		}
		return fn(tx, rid)
	})
	if err != nil && s.isClosed.Load() {
		return store.ErrClosed
	}
	return err
}

// resetLane makes a lane point at its lowest pending event, or removes the lane when it
// has none.
func (s *Store) resetLane(ctx context.Context, tx pgx.Tx, rid int64, lane string) error {
	var seq int64
	var next pgtype.Timestamptz
	err := tx.QueryRow(ctx, `SELECT seq, next_attempt_time FROM destination_events
		WHERE destination_rid = $1 AND state = 'PENDING' AND lane = $2 ORDER BY seq LIMIT 1`, rid, lane).Scan(&seq, &next)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		_, err = tx.Exec(ctx, `DELETE FROM destination_lanes WHERE destination_rid = $1 AND lane = $2`, rid, lane)
	case err == nil:
		_, err = tx.Exec(ctx, `INSERT INTO destination_lanes (destination_rid, lane, head_seq, next_attempt_time)
			VALUES ($1, $2, $3, $4) ON CONFLICT (destination_rid, lane) DO UPDATE
			SET head_seq = excluded.head_seq, next_attempt_time = excluded.next_attempt_time`,
			rid, lane, seq, tsSorted(fromTS(next)))
	}
	if err != nil {
		return s.opErr("destination lane "+lane, err)
	}
	return nil
}

func (s *Store) addCounts(ctx context.Context, tx pgx.Tx, rid, pending, failed int64) error {
	if pending == 0 && failed == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE destinations SET pending = pending + $1, failed = failed + $2 WHERE rid = $3`,
		pending, failed, rid); err != nil {
		return s.opErr("destination counts", err)
	}
	return nil
}

// EnqueueDestinationEvents queues events and moves the cursor forward, in one transaction.
func (s *Store) EnqueueDestinationEvents(ctx context.Context, workspaceID, id string, events []*store.DestinationEvent, cursor int64) error {
	return s.queueTx(ctx, workspaceID, id, func(tx pgx.Tx, rid int64) error {
		var pending, failed int64
		lanes := map[string]bool{}
		for _, e := range events {
			state := e.State
			if state == "" {
				state = store.DestinationEventPending
			}
			tag, err := tx.Exec(ctx, `INSERT INTO destination_events (destination_rid, seq, event_id, subscription_id,
				connection_id, lane, state, attempts, first_attempt_time, next_attempt_time, last_status, last_error)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (destination_rid, seq) DO NOTHING`,
				rid, e.Seq, e.EventID, e.SubscriptionID, e.ConnectionID, e.Lane(), state, e.Attempts, ts(e.FirstAttemptTime),
				ts(e.NextAttemptTime), e.LastStatus, clean(e.LastError))
			if err != nil {
				return s.opErr(fmt.Sprintf("queue event %d for destination %q", e.Seq, id), err)
			}
			if tag.RowsAffected() == 0 {
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
			if err := s.resetLane(ctx, tx, rid, lane); err != nil {
				return err
			}
		}
		if err := s.addCounts(ctx, tx, rid, pending, failed); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE destinations SET cursor = $1 WHERE rid = $2 AND cursor < $1`, cursor, rid); err != nil {
			return s.opErr("destination cursor "+id, err)
		}
		return nil
	})
}

const destinationEventCols = `d.workspace_id, d.id, e.seq, e.event_id, e.subscription_id, e.connection_id, e.state,
	e.attempts, e.first_attempt_time, e.next_attempt_time, e.last_status, e.last_error`

func scanDestinationEvent(sc scanner) (keyed[*store.DestinationEvent], error) {
	e := &store.DestinationEvent{}
	var first, next pgtype.Timestamptz
	if err := sc.Scan(&e.WorkspaceID, &e.DestinationID, &e.Seq, &e.EventID, &e.SubscriptionID, &e.ConnectionID, &e.State,
		&e.Attempts, &first, &next, &e.LastStatus, &e.LastError); err != nil {
		return keyed[*store.DestinationEvent]{}, err
	}
	e.FirstAttemptTime, e.NextAttemptTime = fromTS(first), fromTS(next)
	return keyed[*store.DestinationEvent]{key: e.Seq, v: e}, nil
}

// DestinationHeads returns the lowest pending event of each subscription, soonest due
// first: a read of the lanes, whatever the queue's length.
func (s *Store) DestinationHeads(ctx context.Context, workspaceID, id string, limit int) ([]*store.DestinationEvent, error) {
	if limit <= 0 {
		limit = 50
	}
	rows, err := getAll(ctx, s, "destination heads",
		`SELECT `+destinationEventCols+` FROM destinations d
		JOIN destination_lanes l ON l.destination_rid = d.rid
		JOIN destination_events e ON e.destination_rid = d.rid AND e.seq = l.head_seq
		WHERE d.workspace_id = $1 AND d.id = $2
		ORDER BY l.next_attempt_time, l.head_seq LIMIT $3`,
		scanDestinationEvent, workspaceID, id, limit)
	return readable(rows), err
}

// queued returns a queued event's state and lane.
func (s *Store) queued(ctx context.Context, tx pgx.Tx, rid, seq int64, id string) (state, lane string, err error) {
	err = tx.QueryRow(ctx, `SELECT state, lane FROM destination_events WHERE destination_rid = $1 AND seq = $2`,
		rid, seq).Scan(&state, &lane)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", fmt.Errorf("destination event %s/%d: %w", id, seq, store.ErrNotFound)
	}
	if err != nil {
		return "", "", s.opErr(fmt.Sprintf("destination event %s/%d", id, seq), err)
	}
	return state, lane, nil
}

// CompleteDestinationEvent removes an acknowledged event and counts it.
func (s *Store) CompleteDestinationEvent(ctx context.Context, workspaceID, id string, seq int64, at time.Time) error {
	return s.queueTx(ctx, workspaceID, id, func(tx pgx.Tx, rid int64) error {
		state, lane, err := s.queued(ctx, tx, rid, seq, id)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM destination_events WHERE destination_rid = $1 AND seq = $2`, rid, seq); err != nil {
			return s.opErr(fmt.Sprintf("destination event %s/%d", id, seq), err)
		}
		pending, failed := int64(-1), int64(0)
		if state == store.DestinationEventFailed {
			pending, failed = 0, -1
		}
		if _, err := tx.Exec(ctx, `UPDATE destinations SET delivered = delivered + 1,
			last_delivery_time = greatest(last_delivery_time, $1), pending = pending + $2, failed = failed + $3 WHERE rid = $4`,
			at, pending, failed, rid); err != nil {
			return s.opErr("destination "+id, err)
		}
		return s.resetLane(ctx, tx, rid, lane)
	})
}

// UpdateDestinationEvent replaces a queued event's delivery state.
func (s *Store) UpdateDestinationEvent(ctx context.Context, e *store.DestinationEvent) error {
	return s.queueTx(ctx, e.WorkspaceID, e.DestinationID, func(tx pgx.Tx, rid int64) error {
		was, lane, err := s.queued(ctx, tx, rid, e.Seq, e.DestinationID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE destination_events SET state = $1, attempts = $2, first_attempt_time = $3,
			next_attempt_time = $4, last_status = $5, last_error = $6 WHERE destination_rid = $7 AND seq = $8`,
			e.State, e.Attempts, ts(e.FirstAttemptTime), ts(e.NextAttemptTime), e.LastStatus, clean(e.LastError), rid, e.Seq); err != nil {
			return s.opErr(fmt.Sprintf("destination event %s/%d", e.DestinationID, e.Seq), err)
		}
		switch {
		case was == store.DestinationEventPending && e.State == store.DestinationEventFailed:
			err = s.addCounts(ctx, tx, rid, -1, 1)
		case was == store.DestinationEventFailed && e.State != store.DestinationEventFailed:
			err = s.addCounts(ctx, tx, rid, 1, -1)
		}
		if err != nil {
			return err
		}
		return s.resetLane(ctx, tx, rid, lane)
	})
}

// GetDestinationEvent returns a queued event.
func (s *Store) GetDestinationEvent(ctx context.Context, workspaceID, id string, seq int64) (*store.DestinationEvent, error) {
	k, err := getOne(ctx, s, "destination event", fmt.Sprintf("%s/%d", id, seq),
		`SELECT `+destinationEventCols+` FROM destinations d JOIN destination_events e ON e.destination_rid = d.rid
		WHERE d.workspace_id = $1 AND d.id = $2 AND e.seq = $3`, scanDestinationEvent, workspaceID, id, seq)
	return k.v, err
}

// ListDestinationEvents lists queued events in seq order, of one state or all.
func (s *Store) ListDestinationEvents(ctx context.Context, workspaceID, id, state string, p store.Page) ([]*store.DestinationEvent, string, error) {
	after, err := pagetoken.After("dev", p.Token)
	if err != nil {
		return nil, "", err
	}
	size := pagetoken.Size(p)
	query := `SELECT ` + destinationEventCols + ` FROM destinations d JOIN destination_events e ON e.destination_rid = d.rid
		WHERE d.workspace_id = $1 AND d.id = $2 AND e.seq > $3 ORDER BY e.seq LIMIT $4`
	args := []any{workspaceID, id, after, size + 1}
	if state != "" {
		query = `SELECT ` + destinationEventCols + ` FROM destinations d JOIN destination_events e ON e.destination_rid = d.rid
		WHERE d.workspace_id = $1 AND d.id = $2 AND e.state = $5 AND e.seq > $3 ORDER BY e.seq LIMIT $4`
		args = append(args, state)
	}
	rows, err := getAll(ctx, s, "list destination events", query, scanDestinationEvent, args...)
	if err != nil {
		return nil, "", err
	}
	out, next := paginate(rows, size, "dev")
	return out, next, nil
}

// RetryDestinationEvents makes FAILED events (one, or all with seq 0) PENDING again.
func (s *Store) RetryDestinationEvents(ctx context.Context, workspaceID, id string, seq int64, at time.Time) (int64, error) {
	var n int64
	err := s.queueTx(ctx, workspaceID, id, func(tx pgx.Tx, rid int64) error {
		n = 0
		rows, err := tx.Query(ctx, `UPDATE destination_events SET state = 'PENDING', attempts = 0, first_attempt_time = NULL,
			next_attempt_time = $1 WHERE destination_rid = $2 AND state = 'FAILED' AND ($3 = 0 OR seq = $3)
			RETURNING lane`, at, rid, seq)
		if err != nil {
			return s.opErr("retry events of destination "+id, err)
		}
		lanes := map[string]bool{}
		for rows.Next() {
			var lane string
			if err := rows.Scan(&lane); err != nil {
				rows.Close()
				return s.opErr("retry events of destination "+id, err)
			}
			lanes[lane] = true
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return s.opErr("retry events of destination "+id, err)
		}
		if seq != 0 && n == 0 {
			return fmt.Errorf("failed event %d of destination %q: %w", seq, id, store.ErrNotFound)
		}
		for lane := range lanes {
			if err := s.resetLane(ctx, tx, rid, lane); err != nil {
				return err
			}
		}
		return s.addCounts(ctx, tx, rid, n, -n)
	})
	return n, err
}

// AcquireDestinationLease takes or renews the destination's lease for owner.
func (s *Store) AcquireDestinationLease(ctx context.Context, workspaceID, id, owner string, at, until time.Time) (bool, error) {
	var held bool
	err := s.queueTx(ctx, workspaceID, id, func(tx pgx.Tx, rid int64) error {
		tag, err := tx.Exec(ctx, `UPDATE destinations SET lease_owner = $1, lease_until = $2
			WHERE rid = $3 AND (lease_owner = '' OR lease_owner = $1 OR lease_until < $4)`, owner, until, rid, at)
		if err != nil {
			return s.opErr("lease of destination "+id, err)
		}
		held = tag.RowsAffected() == 1
		return nil
	})
	return held, err
}

// ReleaseDestinationLease frees the lease if owner holds it.
func (s *Store) ReleaseDestinationLease(ctx context.Context, workspaceID, id, owner string) error {
	_, err := s.exec(ctx, `UPDATE destinations SET lease_owner = '', lease_until = NULL
		WHERE workspace_id = $1 AND id = $2 AND lease_owner = $3`, workspaceID, id, owner)
	if err != nil {
		return s.opErr("release lease of destination "+id, err)
	}
	return nil
}
