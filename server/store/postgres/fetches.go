package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/server/store"
)

// fetchRow is a new fetch encoded for its columns.
type fetchRow struct {
	id, workspaceID, subscriptionID, deliveryID string
	deliveryTime, nextAttemptTime, createTime   pgtype.Timestamptz
	data                                        *string
}

// fetchFinish is what FinishFetch commits besides its events and state: the end of the
// fetch (or, with more, its next run), the delivery's count and fetch summary.
type fetchFinish struct {
	f    *store.Fetch
	more bool
}

const fetchCols = `rid, id, workspace_id, subscription_id, delivery_id, delivery_time, data::text, status, attempts, runs,
	next_attempt_time, last_error, lease_token, lease_until, create_time`

func scanFetch(sc scanner) (*store.Fetch, error) {
	f := &store.Fetch{}
	var rid int64
	var deliveryTime, next, leaseUntil, created pgtype.Timestamptz
	var data *string
	if err := sc.Scan(&rid, &f.ID, &f.WorkspaceID, &f.SubscriptionID, &f.DeliveryID, &deliveryTime, &data, &f.Status,
		&f.Attempts, &f.Runs, &next, &f.LastError, &f.LeaseToken, &leaseUntil, &created); err != nil {
		return nil, err
	}
	f.DeliveryTime, f.NextAttemptTime, f.LeaseUntil, f.CreateTime = fromTS(deliveryTime), fromTS(next), fromTS(leaseUntil), fromTS(created)
	if data != nil {
		v, err := value.DecodeStored([]byte(*data))
		if err != nil {
			return nil, fmt.Errorf("fetch %q data: %w", f.ID, err)
		}
		f.Data = v
	}
	return f, nil
}

// CommitDeliveryWithFetches commits the delivery and inserts its fetches in the same
// transaction (group-committed like any delivery), with the delivery's fetch summary
// (PENDING).
func (s *Store) CommitDeliveryWithFetches(ctx context.Context, c *store.DeliveryCommit, fetches []*store.Fetch) (*store.CommitResult, error) {
	if len(fetches) == 0 {
		return s.CommitDelivery(ctx, c)
	}
	if c == nil || c.Delivery == nil {
		return nil, errors.New("postgres: CommitDeliveryWithFetches: fetches need a delivery")
	}
	d := c.Delivery
	created := now()
	rows := make([]fetchRow, len(fetches))
	for i, f := range fetches {
		if f.ID == "" || f.SubscriptionID == "" {
			return nil, fmt.Errorf("postgres: CommitDeliveryWithFetches: fetch %d needs an ID and a SubscriptionID", i)
		}
		if f.WorkspaceID != d.WorkspaceID || f.DeliveryID != d.ID {
			return nil, fmt.Errorf("postgres: CommitDeliveryWithFetches: fetch %q is not of delivery %q of workspace %q", f.ID, d.ID, d.WorkspaceID)
		}
		r := fetchRow{id: f.ID, workspaceID: f.WorkspaceID, subscriptionID: f.SubscriptionID, deliveryID: f.DeliveryID,
			deliveryTime: tsSorted(f.DeliveryTime), nextAttemptTime: tsSorted(f.NextAttemptTime), createTime: tsSorted(orTime(f.CreateTime, created))}
		if f.Data != nil {
			b, err := value.Encode(f.Data)
			if err != nil {
				return nil, fmt.Errorf("fetch %q data: %w", f.ID, err)
			}
			str := string(b)
			r.data = &str
		}
		rows[i] = r
	}
	res, err := s.commit(ctx, c, func(op *commitOp) { op.fetches = rows })
	if err != nil {
		return nil, err
	}
	for _, f := range fetches {
		f.Status, f.Attempts, f.Runs = store.FetchPending, 0, 0
		f.CreateTime = orTime(f.CreateTime, created)
	}
	d.FetchStatus, d.FetchAttempts = store.FetchPending, 0
	return res, nil
}

func orTime(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return t
}

// defaultClaimLimit is ClaimFetches' limit when none is given.
const defaultClaimLimit = 16

// ClaimFetches leases the due fetches that head their subscription's queue: the oldest
// unfinished fetch of a subscription none of whose fetches is leased. The candidates are
// locked (SKIP LOCKED), so replicas claiming at once never take the same fetch, and a
// replica skipping another's locked head finds that head older than the next fetch of
// its subscription, which therefore waits too.
func (s *Store) ClaimFetches(ctx context.Context, c store.FetchClaim) ([]*store.Fetch, error) {
	limit := c.Limit
	if limit <= 0 {
		limit = defaultClaimLimit
	}
	if c.LeaseFor <= 0 {
		return nil, errors.New("postgres: ClaimFetches: LeaseFor must be positive")
	}
	due := c.Due
	if due.IsZero() {
		due = c.Now
	}
	args := []any{ts(due), ts(c.Now), limit, ts(c.Now.Add(c.LeaseFor))}
	bySub := ""
	if c.SubscriptionID != "" {
		args = append(args, c.SubscriptionID)
		bySub = ` AND f.subscription_id = $5`
	}
	out, err := getAll(ctx, s, "claim fetches", `WITH cand AS (
			SELECT f.rid FROM fetches f
			WHERE f.status <> 'FAILED' AND f.next_attempt_time <= $1 AND f.lease_until <= $2`+bySub+`
				AND NOT EXISTS (SELECT 1 FROM fetches g WHERE g.subscription_id = f.subscription_id AND g.status <> 'FAILED'
					AND (g.rid < f.rid OR g.lease_until > $2))
			ORDER BY f.next_attempt_time, f.rid LIMIT $3
			FOR UPDATE OF f SKIP LOCKED)
		UPDATE fetches SET lease_token = gen_random_uuid()::text, lease_until = $4 FROM cand WHERE fetches.rid = cand.rid
		RETURNING fetches.rid, fetches.id, fetches.workspace_id, fetches.subscription_id, fetches.delivery_id,
			fetches.delivery_time, fetches.data::text, fetches.status, fetches.attempts, fetches.runs,
			fetches.next_attempt_time, fetches.last_error, fetches.lease_token, fetches.lease_until, fetches.create_time`,
		scanFetch, args...)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *store.Fetch) int { return a.NextAttemptTime.Compare(b.NextAttemptTime) })
	return out, nil
}

// FinishFetch commits a run's events and state with the fetch's end (or next run), in the
// transaction of a group commit. The lease is checked there: a fetch no longer held
// writes nothing.
func (s *Store) FinishFetch(ctx context.Context, f *store.Fetch, done *store.FetchDone) (*store.CommitResult, error) {
	if done == nil {
		done = &store.FetchDone{}
	}
	if f.LeaseToken == "" {
		return nil, fmt.Errorf("fetch %s is not leased: %w", quote(f.ID), store.ErrLeaseLost)
	}
	c := &store.DeliveryCommit{Events: done.Events}
	if done.StateUpdate.SubscriptionID != "" {
		c.StateUpdates = []store.StateUpdate{done.StateUpdate}
	}
	res, err := s.commit(ctx, c, func(op *commitOp) {
		op.finish = &fetchFinish{f: f, more: done.More}
		for i := range op.states {
			op.states[i].workspaceID = f.WorkspaceID
		}
	})
	if err != nil {
		return nil, err
	}
	f.LeaseToken, f.LeaseUntil = "", time.Time{}
	if done.More {
		f.Status, f.Attempts, f.LastError = store.FetchPending, 0, ""
		f.Runs++
	}
	return res, nil
}

// queueLeaseChecks queues, in a commit's first round trip, the check of the leases of the
// fetches its ops finish (the rows locked until COMMIT); it returns the ids found held,
// filled once the batch has run.
func queueLeaseChecks(b *pgx.Batch, ops []*commitOp) map[string]bool {
	var ids, tokens []string
	for _, op := range ops {
		if op.finish != nil {
			ids, tokens = append(ids, op.finish.f.ID), append(tokens, op.finish.f.LeaseToken)
		}
	}
	held := map[string]bool{}
	if len(ids) == 0 {
		return held
	}
	b.Queue(`SELECT f.id FROM fetches f JOIN unnest($1::text[], $2::text[]) AS u(id, token)
		ON f.id = u.id AND f.lease_token = u.token ORDER BY f.id FOR UPDATE OF f`, ids, tokens).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					return err
				}
				held[id] = true
			}
			return rows.Err()
		})
	return held
}

// queueFetchWrites queues, in a commit's second round trip, the inserts of new fetches
// and the ends of finished runs, with their deliveries' counts and summaries.
func queueFetchWrites(b *pgx.Batch, ops []*commitOp, inserted [][]bool) {
	for i, op := range ops {
		if len(op.fetches) > 0 {
			n := len(op.fetches)
			ids, wss, subs, dels := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			dts, nexts, creates := make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
			data := make([]*string, n)
			for j, r := range op.fetches {
				ids[j], wss[j], subs[j], dels[j] = r.id, r.workspaceID, r.subscriptionID, r.deliveryID
				dts[j], nexts[j], creates[j], data[j] = r.deliveryTime, r.nextAttemptTime, r.createTime, r.data
			}
			b.Queue(`INSERT INTO fetches (id, workspace_id, subscription_id, delivery_id, delivery_time, data, status,
					next_attempt_time, create_time)
				SELECT u.id, u.ws, u.sub, u.del, u.dt, u.data::json, 'PENDING', u.next, u.created
				FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::timestamptz[],
					$8::timestamptz[]) WITH ORDINALITY AS u(id, ws, sub, del, dt, data, next, created, n) ORDER BY u.n`,
				ids, wss, subs, dels, dts, data, nexts, creates)
			b.Queue(`UPDATE deliveries SET fetch_status = 'PENDING', fetch_attempts = 0 WHERE id = $1 AND workspace_id = $2`,
				op.delivery.id, op.delivery.workspaceID)
		}
		if fin := op.finish; fin != nil {
			if fin.more { // still due: its next attempt time was passed when it was claimed
				b.Queue(`UPDATE fetches SET status = 'PENDING', attempts = 0, runs = runs + 1, last_error = '',
					lease_token = '', lease_until = '-infinity' WHERE id = $1`, fin.f.ID)
			} else {
				b.Queue(`DELETE FROM fetches WHERE id = $1`, fin.f.ID)
			}
			n := 0
			for _, ok := range inserted[i] {
				if ok {
					n++
				}
			}
			if n > 0 {
				b.Queue(`UPDATE deliveries SET event_count = event_count + $3,
					outcome = CASE outcome WHEN 'DUPLICATE' THEN 'OK' ELSE outcome END WHERE id = $1 AND workspace_id = $2`,
					fin.f.DeliveryID, fin.f.WorkspaceID, n)
			}
			b.Queue(summarySQL, fin.f.DeliveryID, fin.f.WorkspaceID, nil)
		}
	}
}

// summarySQL sets a delivery's fetch summary from its remaining fetches: FAILED when one
// was given up (the delivery FAILED), else RETRYING when one is being retried, else
// PENDING while one waits, else OK. The delivery's error becomes $3 on a failure when
// given ($3 NULL keeps it), and is cleared once no fetch fails any more.
const summarySQL = `UPDATE deliveries d SET fetch_status = s.st, fetch_attempts = s.att,
		outcome = CASE WHEN s.st = 'FAILED' THEN 'FAILED' ELSE d.outcome END,
		error = CASE WHEN s.st IN ('FAILED', 'RETRYING') THEN coalesce($3::text, d.error) ELSE '' END
	FROM (SELECT CASE WHEN bool_or(status = 'FAILED') THEN 'FAILED' WHEN bool_or(status = 'RETRYING') THEN 'RETRYING'
			WHEN bool_or(status = 'PENDING') THEN 'PENDING' ELSE 'OK' END AS st,
			coalesce(max(attempts), 0) AS att
		FROM fetches WHERE delivery_id = $1) s
	WHERE d.id = $1 AND d.workspace_id = $2`

// inTx runs fn in a transaction.
func (s *Store) inTx(ctx context.Context, what string, fn func(tx pgx.Tx) error) error {
	if s.isClosed.Load() {
		return store.ErrClosed
	}
	err := pgx.BeginFunc(ctx, s.pool, fn)
	if err != nil && !errors.Is(err, store.ErrLeaseLost) {
		return s.opErr(what, err)
	}
	return err
}

// FailFetch records a failed run: the fetch is RETRYING at fail.NextAttemptTime, or
// FAILED when given up, and its lease ends.
func (s *Store) FailFetch(ctx context.Context, f *store.Fetch, fail store.FetchFailure) error {
	status, next := store.FetchRetrying, tsSorted(fail.NextAttemptTime)
	if fail.GiveUp {
		status, next = store.FetchFailed, tsSorted(time.Time{})
	}
	if f.LeaseToken == "" {
		return fmt.Errorf("fetch %s is not leased: %w", quote(f.ID), store.ErrLeaseLost)
	}
	derr := clean(fail.DeliveryError)
	err := s.inTx(ctx, "fail fetch", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE fetches SET status = $3, attempts = attempts + 1, last_error = $4, next_attempt_time = $5,
			lease_token = '', lease_until = '-infinity' WHERE id = $1 AND lease_token = $2`,
			f.ID, f.LeaseToken, status, clean(fail.Error), next)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("fetch %s: %w", quote(f.ID), store.ErrLeaseLost)
		}
		_, err = tx.Exec(ctx, summarySQL, f.DeliveryID, f.WorkspaceID, derr)
		return err
	})
	if err != nil {
		return err
	}
	f.Status, f.LastError, f.NextAttemptTime = status, fail.Error, fromTS(next)
	f.Attempts++
	f.LeaseToken, f.LeaseUntil = "", time.Time{}
	return nil
}

// ReleaseFetch ends f's lease without counting a run.
func (s *Store) ReleaseFetch(ctx context.Context, f *store.Fetch) error {
	if f.LeaseToken == "" {
		return nil
	}
	if _, err := s.exec(ctx, `UPDATE fetches SET lease_token = '', lease_until = '-infinity' WHERE id = $1 AND lease_token = $2`,
		f.ID, f.LeaseToken); err != nil {
		return s.opErr("release fetch", err)
	}
	f.LeaseToken, f.LeaseUntil = "", time.Time{}
	return nil
}

// RetryFailedFetches queues a delivery's FAILED fetches again and counts a replay of the
// delivery, whose outcome is OK again.
func (s *Store) RetryFailedFetches(ctx context.Context, workspaceID, deliveryID string, at time.Time) (int, error) {
	var n int64
	err := s.inTx(ctx, "retry fetches", func(tx pgx.Tx) error {
		n = 0
		tag, err := tx.Exec(ctx, `UPDATE fetches SET status = 'PENDING', attempts = 0, last_error = '', next_attempt_time = $3
			WHERE delivery_id = $1 AND workspace_id = $2 AND status = 'FAILED'`, deliveryID, workspaceID, tsSorted(at))
		if err != nil {
			return err
		}
		if n = tag.RowsAffected(); n == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE deliveries SET outcome = 'OK', replay_count = replay_count + 1
			WHERE id = $1 AND workspace_id = $2`, deliveryID, workspaceID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, summarySQL, deliveryID, workspaceID, nil)
		return err
	})
	return int(n), err
}

// DeliveryFetches returns a delivery's fetches (unfinished and failed), oldest first.
func (s *Store) DeliveryFetches(ctx context.Context, workspaceID, deliveryID string) ([]*store.Fetch, error) {
	return getAll(ctx, s, "delivery fetches",
		`SELECT `+fetchCols+` FROM fetches WHERE delivery_id = $1 AND workspace_id = $2 ORDER BY rid`, scanFetch, deliveryID, workspaceID)
}

// PruneFetches deletes the FAILED fetches created before the cutoff.
func (s *Store) PruneFetches(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.exec(ctx, `DELETE FROM fetches WHERE status = 'FAILED' AND create_time < $1`, ts(before))
	if err != nil {
		return 0, s.opErr("prune fetches", err)
	}
	return n, nil
}
