package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookmap/hookmap/server/store"
)

// op states: a queued op is claimed by a committer (started) or by its caller giving up
// (abandoned), whichever comes first.
const (
	opQueued int32 = iota
	opStarted
	opAbandoned
)

// commitOp is one queued CommitDelivery, encoded. A batch may run more than once (when
// one of its ops is refused, or the transaction lost a deadlock), so result is set anew on
// every run and read by the caller only on success.
type commitOp struct {
	commit   *store.DeliveryCommit
	delivery *deliveryRow // nil: a commit without a delivery record
	events   []eventRow
	states   []stateRow
	fetches  []fetchRow   // CommitDeliveryWithFetches: the fetches the delivery asks for
	finish   *fetchFinish // FinishFetch: the fetch whose run the op commits
	result   *store.CommitResult
	state    atomic.Int32
	done     chan error // buffered: a committer never blocks on a caller
}

// enqueue queues op for a committer and waits until its transaction has committed (nil)
// or failed. A caller whose ctx ends while op is still queued gets ctx's error and op
// never runs; once op's batch has started, enqueue waits for the outcome, so an error is
// never reported for a delivery that was committed.
func (s *Store) enqueue(ctx context.Context, op *commitOp) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.isClosed.Load() {
		s.mu.RUnlock()
		return store.ErrClosed
	}
	select {
	case s.queue <- op:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
		if op.state.CompareAndSwap(opQueued, opAbandoned) {
			return ctx.Err()
		}
		return <-op.done
	}
}

// committer takes what is queued (up to MaxBatch) and commits it in one transaction,
// until Close closes the queue and everything queued before is committed.
func (s *Store) committer() {
	defer s.committersDone.Done()
	batch := make([]*commitOp, 0, s.opts.MaxBatch)
	for {
		op, ok := <-s.queue
		if !ok {
			return
		}
		batch = append(batch[:0], op)
	fill:
		for len(batch) < s.opts.MaxBatch {
			select {
			case op, ok := <-s.queue:
				if !ok {
					break fill
				}
				batch = append(batch, op)
			default:
				break fill
			}
		}
		s.runBatch(batch)
		clear(batch)
	}
}

// maxDeadlockRetries bounds how often a batch that lost a deadlock (or a serialization
// failure) runs again before its ops are tried one by one.
const maxDeadlockRetries = 3

// runBatch commits the ops of a batch in one transaction and answers each caller after
// the commit. An op whose delivery id belongs to another workspace is refused alone: the
// transaction is rolled back and the batch runs again without it. Any other failure of a
// batch of several ops is answered by running each op in a transaction of its own, so a
// bad op fails alone.
func (s *Store) runBatch(batch []*commitOp) {
	var ops []*commitOp
	for _, op := range batch {
		if op.state.CompareAndSwap(opQueued, opStarted) {
			ops = append(ops, op)
		}
	}
	if len(ops) == 0 {
		return
	}
	refused := map[*commitOp]error{}
	live := ops
	for len(live) > 0 {
		bad, err := s.commitWithRetry(live)
		switch {
		case len(bad) > 0:
			maps.Copy(refused, bad)
			live = slices.DeleteFunc(slices.Clone(live), func(op *commitOp) bool { return bad[op] != nil })
			s.m.Retry()
		case err == nil:
			for _, op := range live {
				op.done <- nil
			}
			s.answerRefused(ops, refused)
			return
		case len(live) == 1:
			live[0].done <- err
			s.answerRefused(ops, refused)
			return
		default:
			s.m.Retry()
			s.log.Warn("delivery batch failed; committing its deliveries one transaction each", "ops", len(live), "err", err)
			for _, op := range live {
				bad, err := s.commitWithRetry([]*commitOp{op})
				if bad[op] != nil {
					err = bad[op]
				}
				op.done <- err
			}
			s.answerRefused(ops, refused)
			return
		}
	}
	s.answerRefused(ops, refused)
}

func (s *Store) answerRefused(ops []*commitOp, refused map[*commitOp]error) {
	for _, op := range ops {
		if err := refused[op]; err != nil {
			op.done <- err
		}
	}
}

// commitWithRetry runs commitBatch, again after a deadlock or serialization failure.
func (s *Store) commitWithRetry(ops []*commitOp) (map[*commitOp]error, error) {
	for attempt := 0; ; attempt++ {
		bad, err := s.commitBatch(ops)
		code := pgCode(err)
		if (code != codeDeadlock && code != codeSerialization) || attempt == maxDeadlockRetries {
			return bad, err
		}
		s.log.Debug("delivery transaction lost a deadlock; running it again", "ops", len(ops), "err", err)
		time.Sleep(retryDelay * time.Duration(attempt+1))
	}
}

// keyRef points at an event of a batch: ops[op].events[ev].
type keyRef struct{ op, ev int }

// idemKey is an idempotency key.
type idemKey struct{ sub, ext string }

// commitBatch writes ops in one transaction, in two round trips:
//
//  1. BEGIN; the idempotency keys of the batch (sorted, so two transactions wait for each
//     other's keys in the same order and never deadlock), which tell the new events from
//     re-deliveries; the deliveries.
//  2. The delivery counts of re-deliveries; the touched subscriptions, locked in id order,
//     and their state updates; then, for each workspace in id order, its event_seqs row
//     (locked until COMMIT: seqs follow commit order) and its events; COMMIT.
//
// A delivery whose id exists in another workspace is refused: bad maps its op to the
// error and the transaction is rolled back.
func (s *Store) commitBatch(ops []*commitOp) (bad map[*commitOp]error, err error) {
	start := time.Now()
	ctx := s.bg
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, s.opErr("commit", err)
	}
	defer conn.Release()
	defer func() {
		if err != nil || len(bad) > 0 {
			rollback(ctx, conn)
		}
	}()

	// Which events are candidates: the first occurrence of each key in the batch.
	inserted := make([][]bool, len(ops))
	first := map[idemKey]keyRef{}
	for i, op := range ops {
		op.result = &store.CommitResult{Seqs: make([]int64, len(op.events))}
		inserted[i] = make([]bool, len(op.events))
		for j, e := range op.events {
			if e.externalID == "" {
				inserted[i][j] = true
				continue
			}
			k := idemKey{e.subscriptionID, e.externalID}
			if _, seen := first[k]; !seen {
				first[k] = keyRef{i, j}
			}
		}
	}
	keys := slices.SortedFunc(maps.Keys(first), func(a, b idemKey) int {
		return cmp.Or(cmp.Compare(a.sub, b.sub), cmp.Compare(a.ext, b.ext))
	})
	t0 := now()

	// Round trip 1.
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	if len(keys) > 0 {
		subs, exts := make([]string, len(keys)), make([]string, len(keys))
		for i, k := range keys {
			subs[i], exts[i] = k.sub, k.ext
		}
		b.Queue(`INSERT INTO idempotency_keys (subscription_id, external_id, create_time)
			SELECT k.s, k.e, $3 FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(s, e, n) ORDER BY k.n
			ON CONFLICT DO NOTHING RETURNING subscription_id, external_id`, subs, exts, t0).
			Query(func(rows pgx.Rows) error {
				for rows.Next() {
					var k idemKey
					if err := rows.Scan(&k.sub, &k.ext); err != nil {
						return err
					}
					ref := first[k]
					inserted[ref.op][ref.ev] = true
				}
				return rows.Err()
			})
	}
	var dels []*commitOp
	for _, op := range ops {
		if op.delivery != nil {
			dels = append(dels, op)
		}
	}
	written := map[string]bool{}
	if len(dels) > 0 {
		queueDeliveries(b, dels).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					return err
				}
				written[id] = true
			}
			return rows.Err()
		})
	}
	held := queueLeaseChecks(b, ops)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, s.opErr("commit", err)
	}
	for _, op := range ops {
		if op.finish != nil && !held[op.finish.f.ID] {
			if bad == nil {
				bad = map[*commitOp]error{}
			}
			bad[op] = fmt.Errorf("fetch %s: %w", quote(op.finish.f.ID), store.ErrLeaseLost)
		}
	}
	for _, op := range dels {
		if !written[op.delivery.id] {
			if bad == nil {
				bad = map[*commitOp]error{}
			}
			// The id exists in another workspace: the conflict update's WHERE refused it.
			bad[op] = fmt.Errorf("delivery %s: %w", quote(op.delivery.id), store.ErrAlreadyExists)
		}
	}
	if len(bad) > 0 {
		return bad, nil
	}

	// State changes read the stored states, locked, first (an extra round trip, only for
	// them).
	changed, bad, err := s.changeStates(ctx, conn, ops)
	if err != nil || len(bad) > 0 {
		return bad, err
	}

	// Round trip 2.
	b = &pgx.Batch{}
	s.queueCounts(b, ops, inserted)
	s.queueSubscriptions(b, ops, inserted, changed, t0)
	base := s.queueEvents(b, ops, inserted)
	queueFetchWrites(b, ops, inserted)
	hook := s.beforeCommit
	if hook == nil {
		b.Queue(`COMMIT`)
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, s.opErr("commit", err)
	}
	if hook != nil {
		hook(ctx, conn.Conn().PgConn().PID())
		if _, err := conn.Exec(ctx, `COMMIT`); err != nil {
			return nil, s.opErr("commit", err)
		}
	}
	if conn.Conn().PgConn().TxStatus() != 'I' {
		return nil, errors.New("postgres: commit: the transaction is still open after COMMIT")
	}

	// Seqs: each workspace's events got base+1, base+2, … in batch order.
	next := map[string]int64{}
	for ws, b := range base {
		next[ws] = *b
	}
	for i, op := range ops {
		r := op.result
		for j, e := range op.events {
			if !inserted[i][j] {
				r.Duplicates++
				continue
			}
			next[e.workspaceID]++
			r.Seqs[j] = next[e.workspaceID]
			r.MaxSeq = max(r.MaxSeq, r.Seqs[j])
			r.Inserted++
		}
	}
	for ws, last := range next {
		s.notify.add(ws, last)
	}
	s.batches.Add(1)
	s.m.Commit(len(ops), time.Since(start))
	return nil, nil
}

// rollback ends conn's failed transaction, if any, so it can go back to the pool (the
// pool closes a connection released inside a transaction).
func rollback(ctx context.Context, conn *pgxpool.Conn) {
	if conn.Conn().PgConn().TxStatus() != 'I' {
		_, _ = conn.Exec(ctx, `ROLLBACK`)
	}
}

// queueDeliveries queues the upsert of the deliveries of ops (a replay replaces its
// delivery, in its own workspace only); it returns the ids it wrote.
func queueDeliveries(b *pgx.Batch, ops []*commitOp) *pgx.QueuedQuery {
	n := len(ops)
	var (
		ids, wss, subs, gws, outcomes, errs = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		received                            = make([]pgtype.Timestamptz, n)
		statuses, counts, replays           = make([]int32, n), make([]int32, n), make([]int32, n)
		sizes                               = make([]int64, n)
		selectors, methods, paths, queries  = make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
		headers                             = make([]*string, n)
		bodies                              = make([][]byte, n)
	)
	for i, op := range ops {
		d := op.delivery
		ids[i], wss[i], subs[i], gws[i], outcomes[i], errs[i] = d.id, d.workspaceID, d.subscriptionID, d.globalWebhookID, d.outcome, d.errText
		received[i], statuses[i], counts[i], replays[i], sizes[i] = d.receiveTime, int32(d.statusCode), int32(d.eventCount), int32(d.replayCount), d.requestSize
		selectors[i], methods[i], paths[i], queries[i], headers[i], bodies[i] = d.selectors, d.method, d.path, d.query, d.headers, d.body
	}
	return b.Queue(`INSERT INTO deliveries (id, workspace_id, subscription_id, global_webhook_id, receive_time, status_code,
			outcome, error, event_count, request_size, selectors, replay_count, request_method, request_path,
			request_query, request_headers, request_body)
		SELECT d.id, d.ws, d.sub, d.gw, d.received, d.status, d.outcome, d.error, d.count, d.size, d.selectors::json,
			d.replays, d.method, d.path, d.query, d.headers::json, d.body
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::int[], $7::text[], $8::text[],
			$9::int[], $10::bigint[], $11::text[], $12::int[], $13::text[], $14::text[], $15::text[], $16::text[], $17::bytea[])
			AS d(id, ws, sub, gw, received, status, outcome, error, count, size, selectors, replays, method, path, query, headers, body)
		ON CONFLICT (id) DO UPDATE SET subscription_id = excluded.subscription_id,
			global_webhook_id = excluded.global_webhook_id, receive_time = excluded.receive_time,
			status_code = excluded.status_code, outcome = excluded.outcome, error = excluded.error,
			event_count = excluded.event_count, request_size = excluded.request_size, selectors = excluded.selectors,
			replay_count = excluded.replay_count, request_method = excluded.request_method,
			request_path = excluded.request_path, request_query = excluded.request_query,
			request_headers = excluded.request_headers, request_body = excluded.request_body,
			fetch_status = '', fetch_attempts = 0
		WHERE deliveries.workspace_id = excluded.workspace_id
		RETURNING id`,
		ids, wss, subs, gws, received, statuses, outcomes, errs, counts, sizes, selectors, replays, methods, paths, queries, headers, bodies)
}

// queueCounts queues the correction of the deliveries some of whose events were
// re-deliveries: they record what was new (and an OK delivery with nothing new is
// DUPLICATE).
func (s *Store) queueCounts(b *pgx.Batch, ops []*commitOp, inserted [][]bool) {
	var ids, outcomes []string
	var counts []int32
	for i, op := range ops {
		if op.delivery == nil {
			continue
		}
		n := 0
		for _, ok := range inserted[i] {
			if ok {
				n++
			}
		}
		if n == len(op.events) {
			continue
		}
		outcome := op.delivery.outcome
		if n == 0 && outcome == store.OutcomeOK {
			outcome = store.OutcomeDuplicate
		}
		ids, outcomes, counts = append(ids, op.delivery.id), append(outcomes, outcome), append(counts, int32(n))
	}
	if len(ids) > 0 {
		b.Queue(`UPDATE deliveries d SET event_count = u.n, outcome = u.o
			FROM unnest($1::text[], $2::int[], $3::text[]) AS u(id, n, o) WHERE d.id = u.id`, ids, counts, outcomes)
	}
}

// queueSubscriptions queues the writes to subscriptions: LastEventTime of each one with
// new events (the latest receive time, now for an event without one), and the state
// updates (the last one of a subscription wins). The rows are locked first in id order.
func (s *Store) queueSubscriptions(b *pgx.Batch, ops []*commitOp, inserted [][]bool, changed map[subKey][]byte, t0 time.Time) {
	latest := map[subKey]time.Time{}
	states := map[subKey][]byte{}
	for i, op := range ops {
		for j, e := range op.events {
			if !inserted[i][j] || e.subscriptionID == "" {
				continue
			}
			k := subKey{e.subscriptionID, e.workspaceID}
			at := e.ev.ReceiveTime
			if at.IsZero() {
				at = t0
			}
			if prev, ok := latest[k]; !ok || at.After(prev) {
				latest[k] = at
			}
		}
		for _, u := range op.states {
			if u.change == nil {
				states[subKey{u.id, u.workspaceID}] = u.state
			}
		}
	}
	if changed != nil {
		states = changed // every update of the batch, applied in order
	}
	if len(latest)+len(states) == 0 {
		return
	}
	ids := map[string]bool{}
	for k := range latest {
		ids[k.id] = true
	}
	for k := range states {
		ids[k.id] = true
	}
	b.Queue(`SELECT 1 FROM subscriptions WHERE id = ANY($1) ORDER BY id FOR UPDATE`, slices.Sorted(maps.Keys(ids)))
	if len(latest) > 0 {
		var tids, tws []string
		var times []time.Time
		for k, at := range latest {
			tids, tws, times = append(tids, k.id), append(tws, k.ws), append(times, at)
		}
		b.Queue(`UPDATE subscriptions s SET last_event_time = greatest(s.last_event_time, u.t)
			FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(id, ws, t) WHERE s.id = u.id AND s.workspace_id = u.ws`,
			tids, tws, times)
	}
	if len(states) > 0 {
		var sids, sws []string
		var vals [][]byte
		for k, v := range states {
			sids, sws, vals = append(sids, k.id), append(sws, k.ws), append(vals, v)
		}
		b.Queue(`UPDATE subscriptions s SET state = u.state, update_time = $4
			FROM unnest($1::text[], $2::text[], $3::bytea[]) AS u(id, ws, state) WHERE s.id = u.id AND s.workspace_id = u.ws`,
			sids, sws, vals, t0)
	}
}

// subKey names a subscription.
type subKey struct{ id, ws string }

// changeStates applies the state updates of a batch that has state changes: it reads and
// locks (in id order) the stored states of the subscriptions they update, then applies
// every update of the batch in order, and returns the final state of each. An update of
// a subscription that does not exist is skipped (its change is not called); an op whose
// change fails is refused (bad). It returns nil when the batch has no change.
func (s *Store) changeStates(ctx context.Context, conn *pgxpool.Conn, ops []*commitOp) (map[subKey][]byte, map[*commitOp]error, error) {
	ids := map[string]bool{}
	hasChange := false
	for _, op := range ops {
		for _, u := range op.states {
			ids[u.id] = true
			hasChange = hasChange || u.change != nil
		}
	}
	if !hasChange {
		return nil, nil, nil
	}
	stored := map[subKey][]byte{}
	rows, err := conn.Query(ctx, `SELECT id, workspace_id, state FROM subscriptions WHERE id = ANY($1) ORDER BY id FOR UPDATE`,
		slices.Sorted(maps.Keys(ids)))
	if err != nil {
		return nil, nil, s.opErr("commit", err)
	}
	for rows.Next() {
		var k subKey
		var st []byte
		if err := rows.Scan(&k.id, &k.ws, &st); err != nil {
			rows.Close()
			return nil, nil, s.opErr("commit", err)
		}
		stored[k] = st
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, s.opErr("commit", err)
	}
	var bad map[*commitOp]error
	for _, op := range ops {
		for _, u := range op.states {
			k := subKey{u.id, u.workspaceID}
			cur, ok := stored[k]
			if !ok {
				continue // deleted meanwhile: the events are kept, the state has nowhere to go
			}
			if u.change == nil {
				stored[k] = u.state
				continue
			}
			next, err := u.change(cur)
			if err != nil {
				if bad == nil {
					bad = map[*commitOp]error{}
				}
				bad[op] = fmt.Errorf("subscription %q state: %w", u.id, err)
				break
			}
			stored[k] = next
		}
	}
	return stored, bad, nil
}

// queueEvents queues, for each workspace of the batch in id order, the update of its
// event_seqs row (which takes its next seqs and locks it until COMMIT) and the insert of
// its new events, numbered in batch order. It returns where each workspace's seqs start:
// its events get base+1, base+2, … once the batch has run.
func (s *Store) queueEvents(b *pgx.Batch, ops []*commitOp, inserted [][]bool) map[string]*int64 {
	type cols struct {
		ids, conns, subs, keys, types, records, exts, dels []string
		received                                           []pgtype.Timestamptz
	}
	byWS := map[string]*cols{}
	for i, op := range ops {
		for j, e := range op.events {
			if !inserted[i][j] {
				continue
			}
			c := byWS[e.workspaceID]
			if c == nil {
				c = &cols{}
				byWS[e.workspaceID] = c
			}
			c.ids, c.conns, c.subs, c.keys = append(c.ids, e.id), append(c.conns, e.connectionID), append(c.subs, e.subscriptionID), append(c.keys, e.eventKey)
			c.types, c.records, c.exts, c.dels = append(c.types, e.typ), append(c.records, e.record), append(c.exts, e.externalID), append(c.dels, e.deliveryID)
			c.received = append(c.received, e.receiveTime)
		}
	}
	base := map[string]*int64{}
	for _, ws := range slices.Sorted(maps.Keys(byWS)) {
		c := byWS[ws]
		n := int64(len(c.ids))
		start := new(int64)
		base[ws] = start
		b.Queue(`WITH c AS (
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
			ws, n, c.ids, c.conns, c.subs, c.keys, c.types, c.records, c.exts, c.dels, c.received).
			QueryRow(func(row pgx.Row) error { return row.Scan(start) })
	}
	return base
}
