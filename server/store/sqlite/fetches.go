package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/server/store"
)

const fetchCols = `rid, id, workspace_id, subscription_id, delivery_id, delivery_time, data, status, attempts, runs,
	next_attempt_time, last_error, lease_token, lease_until, create_time`

func scanFetch(sc scanner) (*store.Fetch, error) {
	f := &store.Fetch{}
	var rid, deliveryTime, next, leaseUntil, created int64
	var data sql.NullString
	if err := sc.Scan(&rid, &f.ID, &f.WorkspaceID, &f.SubscriptionID, &f.DeliveryID, &deliveryTime, &data, &f.Status,
		&f.Attempts, &f.Runs, &next, &f.LastError, &f.LeaseToken, &leaseUntil, &created); err != nil {
		return nil, err
	}
	f.DeliveryTime, f.NextAttemptTime, f.LeaseUntil, f.CreateTime = fromNanos(deliveryTime), fromNanos(next), fromNanos(leaseUntil), fromNanos(created)
	if data.Valid {
		v, err := value.DecodeString(data.String)
		if err != nil {
			return nil, fmt.Errorf("fetch %q data: %w", f.ID, err)
		}
		f.Data = v
	}
	return f, nil
}

// CommitDeliveryWithFetches commits the delivery and inserts its fetches in the same
// transaction, with the delivery's fetch summary (PENDING).
func (s *Store) CommitDeliveryWithFetches(ctx context.Context, c *store.DeliveryCommit, fetches []*store.Fetch) (*store.CommitResult, error) {
	if len(fetches) == 0 {
		return s.CommitDelivery(ctx, c)
	}
	if c == nil || c.Delivery == nil {
		return nil, errors.New("sqlite: CommitDeliveryWithFetches: fetches need a delivery")
	}
	d := c.Delivery
	t0 := now()
	type row struct {
		f    *store.Fetch
		data any
	}
	rows := make([]row, len(fetches))
	for i, f := range fetches {
		if f.ID == "" || f.SubscriptionID == "" {
			return nil, fmt.Errorf("sqlite: CommitDeliveryWithFetches: fetch %d needs an ID and a SubscriptionID", i)
		}
		if f.WorkspaceID != d.WorkspaceID || f.DeliveryID != d.ID {
			return nil, fmt.Errorf("sqlite: CommitDeliveryWithFetches: fetch %q is not of delivery %q of workspace %q", f.ID, d.ID, d.WorkspaceID)
		}
		var data any
		if f.Data != nil {
			enc, err := encodeValue(f.Data)
			if err != nil {
				return nil, fmt.Errorf("fetch %q data: %w", f.ID, err)
			}
			data = enc
		}
		rows[i] = row{f, data}
	}
	res, err := s.commitDelivery(ctx, c, func(t *wtx) error {
		for _, r := range rows {
			f := r.f
			created := f.CreateTime
			if created.IsZero() {
				created = t0
			}
			if _, err := t.exec(`INSERT INTO fetches (id, workspace_id, subscription_id, delivery_id, delivery_time, data,
				status, next_attempt_time, create_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				f.ID, f.WorkspaceID, f.SubscriptionID, f.DeliveryID, nanos(f.DeliveryTime), r.data,
				store.FetchPending, nanos(f.NextAttemptTime), nanos(created)); err != nil {
				return fmt.Errorf("sqlite: fetch %q: %w", f.ID, err)
			}
		}
		_, err := t.exec(`INSERT INTO delivery_fetches (delivery_id, fetch_status, fetch_attempts, fetch_time) VALUES (?, ?, 0, ?)
			ON CONFLICT (delivery_id) DO UPDATE SET fetch_status = excluded.fetch_status, fetch_attempts = 0`,
			d.ID, store.FetchPending, nanos(d.ReceiveTime))
		if err != nil {
			return fmt.Errorf("sqlite: delivery %q fetches: %w", d.ID, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, f := range fetches {
		f.Status, f.Attempts, f.Runs = store.FetchPending, 0, 0
		if f.CreateTime.IsZero() {
			f.CreateTime = t0
		}
	}
	d.FetchStatus, d.FetchAttempts = store.FetchPending, 0
	return res, nil
}

// defaultClaimLimit is ClaimFetches' limit when none is given.
const defaultClaimLimit = 16

// ClaimFetches leases the due fetches that head their subscription's queue: the oldest
// unfinished fetch of a subscription none of whose fetches is leased.
//
// The candidates come from fetches_due (unfinished fetches by next attempt time); each is
// checked with two probes of fetches_subscription (an older unfinished fetch of its
// subscription, a running lease of it).
func (s *Store) ClaimFetches(ctx context.Context, c store.FetchClaim) ([]*store.Fetch, error) {
	limit := c.Limit
	if limit <= 0 {
		limit = defaultClaimLimit
	}
	if c.LeaseFor <= 0 {
		return nil, errors.New("sqlite: ClaimFetches: LeaseFor must be positive")
	}
	due := c.Due
	if due.IsZero() {
		due = c.Now
	}
	nowN, until := nanos(c.Now), nanos(c.Now.Add(c.LeaseFor))
	query := claimQuery(c.SubscriptionID != "")
	args := []any{nanos(due), nowN}
	if c.SubscriptionID != "" {
		args = append(args, c.SubscriptionID)
	}
	args = append(args, nowN, limit)
	var out []*store.Fetch
	err := s.write(ctx, func(t *wtx) error {
		out = nil
		rows, err := t.query(query, args...)
		if err != nil {
			return fmt.Errorf("sqlite: claim fetches: %w", err)
		}
		var found []*store.Fetch
		for rows.Next() {
			f, err := scanFetch(rows)
			if err != nil {
				_ = rows.Close()
				return fmt.Errorf("sqlite: claim fetches: %w", err)
			}
			found = append(found, f)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("sqlite: claim fetches: %w", err)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: claim fetches: %w", err)
		}
		for _, f := range found {
			token := uuid.NewString()
			if _, err := t.exec(`UPDATE fetches SET lease_token = ?, lease_until = ? WHERE id = ?`, token, until, f.ID); err != nil {
				return fmt.Errorf("sqlite: claim fetch %q: %w", f.ID, err)
			}
			f.LeaseToken, f.LeaseUntil = token, fromNanos(until)
		}
		out = found
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// claimQuery selects the fetches to claim: arguments due, now, [subscription id,] now,
// limit.
func claimQuery(bySubscription bool) string {
	q := `SELECT ` + fetchCols + ` FROM fetches AS f INDEXED BY fetches_due
		WHERE status <> 'FAILED' AND next_attempt_time <= ? AND lease_until <= ?`
	if bySubscription {
		q += ` AND subscription_id = ?`
	}
	return q + `
		AND NOT EXISTS (SELECT 1 FROM fetches AS g INDEXED BY fetches_subscription
			WHERE g.subscription_id = f.subscription_id AND g.status <> 'FAILED' AND (g.rid < f.rid OR g.lease_until > ?))
		ORDER BY next_attempt_time, rid LIMIT ?`
}

// holdsLease reports whether f is still leased with its token.
func holdsLease(t *wtx, f *store.Fetch) error {
	if f.LeaseToken == "" {
		return fmt.Errorf("fetch %q is not leased: %w", f.ID, store.ErrLeaseLost)
	}
	var one int
	err := t.queryRow(`SELECT 1 FROM fetches WHERE id = ? AND lease_token = ?`, f.ID, f.LeaseToken).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("fetch %q: %w", f.ID, store.ErrLeaseLost)
	}
	if err != nil {
		return fmt.Errorf("sqlite: fetch %q: %w", f.ID, err)
	}
	return nil
}

// FinishFetch commits a run's events and state and ends the fetch (or keeps it first in
// line when the run asked for more), in one transaction.
func (s *Store) FinishFetch(ctx context.Context, f *store.Fetch, done *store.FetchDone) (*store.CommitResult, error) {
	if done == nil {
		done = &store.FetchDone{}
	}
	c := &store.DeliveryCommit{Events: done.Events}
	if done.StateUpdate.SubscriptionID != "" {
		c.StateUpdates = []store.StateUpdate{done.StateUpdate}
	}
	p, err := prepareCommit(c, f.WorkspaceID)
	if err != nil {
		return nil, err
	}
	var res *store.CommitResult
	err = s.write(ctx, func(t *wtx) error {
		res = nil
		if err := holdsLease(t, f); err != nil {
			return err
		}
		r, err := s.runCommit(t, p)
		if err != nil {
			return err
		}
		if done.More { // still due: its next attempt time was passed when it was claimed
			_, err = t.exec(`UPDATE fetches SET status = ?, attempts = 0, runs = runs + 1, last_error = '',
				lease_token = '', lease_until = 0 WHERE id = ?`, store.FetchPending, f.ID)
		} else {
			_, err = t.exec(`DELETE FROM fetches WHERE id = ?`, f.ID)
		}
		if err != nil {
			return fmt.Errorf("sqlite: fetch %q: %w", f.ID, err)
		}
		if r.Inserted > 0 {
			if _, err := t.exec(`UPDATE deliveries SET event_count = event_count + ?,
				outcome = CASE outcome WHEN ? THEN ? ELSE outcome END,
				event_seqs = CASE event_seqs WHEN '' THEN ?4 ELSE event_seqs || ',' || ?4 END
				WHERE id = ? AND workspace_id = ?`,
				r.Inserted, store.OutcomeDuplicate, store.OutcomeOK, formatSeqRuns(r.Seqs), f.DeliveryID, f.WorkspaceID); err != nil {
				return fmt.Errorf("sqlite: delivery %q: %w", f.DeliveryID, err)
			}
		}
		if err := summarizeFetches(t, f, nil); err != nil {
			return err
		}
		res = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.c.Applied(res)
	f.LeaseToken, f.LeaseUntil = "", time.Time{}
	if done.More {
		f.Status, f.Attempts, f.LastError = store.FetchPending, 0, ""
		f.Runs++
	}
	return res, nil
}

// FailFetch records a failed run: the fetch is RETRYING at fail.NextAttemptTime, or
// FAILED when given up, and its lease ends.
func (s *Store) FailFetch(ctx context.Context, f *store.Fetch, fail store.FetchFailure) error {
	status, next := store.FetchRetrying, nanos(fail.NextAttemptTime)
	if fail.GiveUp {
		status, next = store.FetchFailed, 0
	}
	err := s.write(ctx, func(t *wtx) error {
		if err := holdsLease(t, f); err != nil {
			return err
		}
		if _, err := t.exec(`UPDATE fetches SET status = ?, attempts = attempts + 1, last_error = ?, next_attempt_time = ?,
			lease_token = '', lease_until = 0 WHERE id = ?`, status, fail.Error, next, f.ID); err != nil {
			return fmt.Errorf("sqlite: fetch %q: %w", f.ID, err)
		}
		return summarizeFetches(t, f, &fail.DeliveryError)
	})
	if err != nil {
		return err
	}
	f.Status, f.LastError, f.NextAttemptTime = status, fail.Error, fromNanos(next)
	f.Attempts++
	f.LeaseToken, f.LeaseUntil = "", time.Time{}
	return nil
}

// summarizeFetches sets the fetch summary of f's delivery from its remaining fetches:
// FAILED when one was given up, else RETRYING when one is being retried, else PENDING
// while one waits, else OK. A FAILED summary fails the delivery (Outcome FAILED); the
// delivery's error becomes deliveryErr when given (a failure), and is cleared once no
// fetch fails any more.
func summarizeFetches(t *wtx, f *store.Fetch, deliveryErr *string) error {
	var failed, retrying, pending, attempts int
	err := t.queryRow(`SELECT COALESCE(SUM(status = 'FAILED'), 0), COALESCE(SUM(status = 'RETRYING'), 0),
		COALESCE(SUM(status = 'PENDING'), 0), COALESCE(MAX(attempts), 0) FROM fetches WHERE delivery_id = ?`, f.DeliveryID).
		Scan(&failed, &retrying, &pending, &attempts)
	if err != nil {
		return fmt.Errorf("sqlite: delivery %q fetches: %w", f.DeliveryID, err)
	}
	status := store.FetchOK
	switch {
	case failed > 0:
		status = store.FetchFailed
	case retrying > 0:
		status = store.FetchRetrying
	case pending > 0:
		status = store.FetchPending
	}
	if _, err := t.exec(`UPDATE delivery_fetches SET fetch_status = ?, fetch_attempts = ? WHERE delivery_id = ?`,
		status, attempts, f.DeliveryID); err != nil {
		return fmt.Errorf("sqlite: delivery %q fetches: %w", f.DeliveryID, err)
	}
	var q string
	var args []any
	switch {
	case status == store.FetchFailed && deliveryErr != nil:
		q, args = `UPDATE deliveries SET outcome = ?, error = ? WHERE id = ? AND workspace_id = ?`, []any{store.OutcomeFailed, *deliveryErr}
	case status == store.FetchFailed:
		q, args = `UPDATE deliveries SET outcome = ? WHERE id = ? AND workspace_id = ?`, []any{store.OutcomeFailed}
	case status == store.FetchRetrying && deliveryErr != nil:
		q, args = `UPDATE deliveries SET error = ? WHERE id = ? AND workspace_id = ?`, []any{*deliveryErr}
	case status == store.FetchRetrying:
		return nil
	default:
		q = `UPDATE deliveries SET error = '' WHERE id = ? AND workspace_id = ?`
	}
	if _, err := t.exec(q, append(args, f.DeliveryID, f.WorkspaceID)...); err != nil {
		return fmt.Errorf("sqlite: delivery %q: %w", f.DeliveryID, err)
	}
	return nil
}

// ReleaseFetch ends f's lease without counting a run.
func (s *Store) ReleaseFetch(ctx context.Context, f *store.Fetch) error {
	if f.LeaseToken == "" {
		return nil
	}
	err := s.write(ctx, func(t *wtx) error {
		_, err := t.exec(`UPDATE fetches SET lease_token = '', lease_until = 0 WHERE id = ? AND lease_token = ?`, f.ID, f.LeaseToken)
		if err != nil {
			return fmt.Errorf("sqlite: release fetch %q: %w", f.ID, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	f.LeaseToken, f.LeaseUntil = "", time.Time{}
	return nil
}

// RetryFailedFetches queues a delivery's FAILED fetches again and counts a replay of the
// delivery, whose outcome is OK again.
func (s *Store) RetryFailedFetches(ctx context.Context, workspaceID, deliveryID string, at time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(t *wtx) error {
		n = 0
		res, err := t.exec(`UPDATE fetches SET status = ?, attempts = 0, last_error = '', next_attempt_time = ?
			WHERE delivery_id = ? AND workspace_id = ? AND status = ?`,
			store.FetchPending, nanos(at), deliveryID, workspaceID, store.FetchFailed)
		if err != nil {
			return fmt.Errorf("sqlite: retry fetches of delivery %q: %w", deliveryID, err)
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		if _, err := t.exec(`UPDATE deliveries SET outcome = ?, replay_count = replay_count + 1 WHERE id = ? AND workspace_id = ?`,
			store.OutcomeOK, deliveryID, workspaceID); err != nil {
			return fmt.Errorf("sqlite: delivery %q: %w", deliveryID, err)
		}
		return summarizeFetches(t, &store.Fetch{WorkspaceID: workspaceID, DeliveryID: deliveryID}, nil)
	})
	return int(n), err
}

// DeliveryFetches returns a delivery's fetches (unfinished and failed), oldest first.
func (s *Store) DeliveryFetches(ctx context.Context, workspaceID, deliveryID string) ([]*store.Fetch, error) {
	return getAll(ctx, s, "delivery fetches",
		`SELECT `+fetchCols+` FROM fetches WHERE delivery_id = ? AND workspace_id = ? ORDER BY rid`, true,
		scanFetch, deliveryID, workspaceID)
}

// PruneFetches deletes the FAILED fetches created before the cutoff, in chunks.
func (s *Store) PruneFetches(ctx context.Context, before time.Time) (int64, error) {
	return s.deleteChunked(ctx, `DELETE FROM fetches WHERE rid IN
		(SELECT rid FROM fetches INDEXED BY fetches_failed WHERE status = 'FAILED' AND create_time < ? LIMIT ?)`, nanos(before), nil)
}

// voidFetchLeases ends the leases of a previous run: a SQLite database is used by one
// process, so a lease found at open belongs to a process that is gone (a crash between a
// delivery's answer and its fetch) and its fetch can run at once.
func (s *Store) voidFetchLeases(ctx context.Context) error {
	if _, err := s.wc.ExecContext(ctx, `UPDATE fetches SET lease_token = '', lease_until = 0 WHERE lease_until > 0`); err != nil {
		return fmt.Errorf("sqlite: open %s: void fetch leases: %w", s.path, err)
	}
	return nil
}
