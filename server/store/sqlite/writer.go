package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"

	"github.com/hookmap/hookmap/server/store"
)

// op states: a queued op is claimed by the writer (started) or by its caller giving up
// (abandoned), whichever comes first.
const (
	opQueued int32 = iota
	opStarted
	opAbandoned
)

// op is one queued write. fn runs inside a transaction on the writer goroutine; it may run
// more than once (a batch is rolled back and run again when one of its ops fails), so it
// must keep its results in variables it resets on every run, read by the caller only on
// success.
type op struct {
	fn    func(*wtx) error
	state atomic.Int32
	done  chan error // buffered: the writer never blocks on a caller
}

// wtx is the transaction an op runs in: its statements run on the writer's connection
// (Store.wc) with writeCtx.
type wtx struct {
	s *Store
	// touched is each subscription's newest event time among the transaction's commits,
	// pending in memory once it commits (lastevent.go).
	touched map[subKey]int64
	ch      changes     // the cached rows the ops wrote, applied to the caches after the commit
	tail    tailChanges // the events the ops inserted or deleted, applied to the tail after the commit
	// seq is the highest event seq given out so far, this transaction's events included
	// (insertEvent); the writer keeps it once the transaction is over (runTx).
	seq int64
	// staging: new events and new deliveries are staged and inserted a batch at a time
	// (staged.go), every other statement running after those staged before it (flush).
	staging  bool
	flushErr error // the failure of a staged insert: kept, the transaction then runs again without staging (runTx)
}

type subKey struct{ sub, ws string }

// touch records that the transaction stored an event of subscription sub received at.
func (w *wtx) touch(sub, ws string, at int64) {
	k := subKey{sub, ws}
	if w.touched == nil {
		w.touched = map[subKey]int64{}
	}
	if at > w.touched[k] {
		w.touched[k] = at
	}
}

// exec, execStmt, query and queryRow run their statement after the rows staged before
// it (flush).

func (w *wtx) exec(query string, args ...any) (sql.Result, error) {
	if err := w.flush(); err != nil {
		return nil, err
	}
	return w.s.wc.ExecContext(writeCtx, query, args...)
}

// execStmt runs h, a hot statement (hot.go), in the transaction; one that touches
// neither events nor deliveries does not wait for the staged rows.
func (w *wtx) execStmt(h *hotStmt, args ...any) (driver.Result, error) {
	if w.flushErr != nil {
		return nil, w.flushErr
	}
	if !h.apart {
		if err := w.flush(); err != nil {
			return nil, err
		}
	}
	return w.s.execHot(h, args...)
}

func (w *wtx) query(query string, args ...any) (*sql.Rows, error) {
	if err := w.flush(); err != nil {
		return nil, err
	}
	return w.s.wc.QueryContext(writeCtx, query, args...)
}

func (w *wtx) queryRow(query string, args ...any) *sql.Row {
	// A failed flush is kept (flushErr), and runTx runs the transaction again without
	// staging whatever the op made of this row, so the row may be read regardless.
	_ = w.flush()
	return w.s.wc.QueryRowContext(writeCtx, query, args...)
}

// insertEvent inserts ev, its record encoded as record, with the next event seq, and
// returns that seq. Seqs are the store's, not SQLite's (events has no AUTOINCREMENT,
// migration 13): one above the highest ever given, so none is reused after the newest
// events are deleted. A staging transaction stages the row.
func (w *wtx) insertEvent(ev *store.Event, record string) (int64, error) {
	seq := w.seq + 1
	args := [sqlInsertEventCols]any{seq, ev.ID, ev.WorkspaceID, ev.ConnectionID, ev.SubscriptionID,
		ev.EventKey, ev.Type, record, ev.ExternalID, ev.DeliveryID, nanos(ev.ReceiveTime)}
	if w.staging {
		w.s.staged.events.stage(args[:]...)
	} else if _, err := w.execStmt(w.s.hot.insertEvent, args[:]...); err != nil {
		return 0, err
	}
	w.seq = seq
	w.insertedEvent(seq, ev, record)
	return seq, nil
}

// insertDelivery inserts a new delivery (not a replay), args its deliveryArgs, and
// reports whether it did; false means the caller upserts it instead. A staging
// transaction stages the row; it is inserted with a plain INSERT, a conflict failing the
// staged insert (the transaction then runs again without staging, where the upsert
// decides).
func (w *wtx) insertDelivery(args []any) bool {
	if !w.staging {
		return false
	}
	w.s.staged.deliveries.stage(args...)
	return true
}

// write queues fn for the writer and waits until its transaction has committed (nil) or
// failed. A caller whose ctx ends while fn is still queued gets ctx's error and fn never
// runs; once fn's batch has started, write waits for the outcome.
func (s *Store) write(ctx context.Context, fn func(*wtx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o := &op{fn: fn, done: make(chan error, 1)}
	s.mu.RLock()
	if s.isClosed.Load() {
		s.mu.RUnlock()
		return store.ErrClosed
	}
	select {
	case s.queue <- o:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		if o.state.CompareAndSwap(opQueued, opAbandoned) {
			return ctx.Err()
		}
		return <-o.done
	}
}

// writer is the one goroutine that writes. It runs until Close closes the queue, after
// committing everything queued before that.
func (s *Store) writer() {
	defer close(s.writerDone)
	batch := make([]*op, 0, s.opts.MaxBatch)
	for {
		var o *op
		var ok bool
		select {
		case o, ok = <-s.queue:
		case <-s.flushWake:
			s.flushTx()
			continue
		}
		if !ok {
			s.flushTx() // Close: the last event times go to the rows
			return
		}
		batch = append(batch[:0], o)
	fill:
		for len(batch) < s.opts.MaxBatch {
			select {
			case o, ok := <-s.queue:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		if mode := s.restartMode.Swap(restartNone); mode != restartNone {
			s.restartWAL(mode)
		}
		s.runBatch(batch)
		clear(batch) // drop references for the GC
	}
}

// runBatch commits the ops of a batch in one transaction and answers each caller after
// the commit. An op that fails fails alone: the transaction is rolled back and the batch
// runs again without it, the others in their order (k failing ops cost k+1 transactions
// but one fsync); the failed op gets its error once the others have committed. A failure
// that belongs to no op is either a COMMIT failure, answered by running every op again in
// a transaction of its own, or a BEGIN failure (the write lock was not obtained within the
// busy timeout), which fails the whole batch.
func (s *Store) runBatch(batch []*op) {
	ops := batch[:0]
	for _, o := range batch {
		if o.state.CompareAndSwap(opQueued, opStarted) {
			ops = append(ops, o)
		}
	}
	if len(ops) == 0 {
		return
	}
	live := ops
	var failed map[*op]error // ops removed from the batch, answered after the commit
	answer := func(err error) {
		for _, o := range ops {
			if ferr, ok := failed[o]; ok {
				o.done <- ferr
			} else {
				o.done <- err
			}
		}
	}
	for len(live) > 0 {
		bad, err := s.runTx(live)
		switch {
		case err == nil:
			answer(nil)
			return
		case bad >= 0:
			if failed == nil {
				failed = map[*op]error{}
				live = slices.Clone(live)
			}
			failed[live[bad]] = err
			live = slices.Delete(live, bad, bad+1)
			s.m.Retry()
			s.log.Debug("write failed in a batch; running the batch again without it", "ops", len(live), "err", err)
		case errors.Is(err, errBegin):
			clear(failed)
			answer(err)
			return
		case len(ops) == 1:
			ops[0].done <- err
			return
		default:
			s.m.Retry()
			s.log.Warn("batch commit failed; running its writes one transaction each", "ops", len(ops), "err", err)
			for _, o := range ops {
				_, err := s.runTx([]*op{o})
				o.done <- err
			}
			return
		}
	}
	answer(nil) // every op failed
}

// writeCtx is the context of the writer's transactions. A transaction never runs under a
// caller's context (a caller that gives up cannot abort its neighbours' commit), and Close
// lets the writer finish what was queued, so nothing ever cancels one.
var writeCtx = context.Background()

// beginTx begins a write transaction (BEGIN IMMEDIATE) on the writer's connection. Should
// a transaction still be open (a ROLLBACK that failed), it is rolled back and BEGIN tried
// once more: the writer never works inside a transaction it did not begin.
func (s *Store) beginTx() (*wtx, error) {
	if _, err := s.execHot(s.hot.begin); err != nil {
		if !strings.Contains(err.Error(), "within a transaction") {
			return nil, err
		}
		s.rollbackTx()
		if _, err := s.execHot(s.hot.begin); err != nil {
			return nil, err
		}
	}
	w := &wtx{s: s, seq: s.seq}
	w.tail.ops = s.tailOps[:0]
	return w, nil
}

// endTx takes back what w borrowed from the writer, once w is over.
func (s *Store) endTx(w *wtx) {
	clear(w.tail.ops) // not to keep the events alive until the next transaction
	if cap(w.tail.ops) <= maxReusedTailOps {
		s.tailOps = w.tail.ops[:0]
	}
}

// maxReusedTailOps bounds the buffer of tail changes the writer keeps between
// transactions (a large prune's is let go).
const maxReusedTailOps = 1024

// commitTx commits the transaction beginTx began; after a failure the transaction is
// rolled back (when SQLite has not already done so).
func (s *Store) commitTx() error {
	if _, err := s.execHot(s.hot.commit); err != nil {
		s.rollbackTx()
		return err
	}
	return nil
}

// rollbackTx rolls the transaction back. SQLite has already rolled it back after some
// errors (a full disk, an I/O error), and then says no transaction is active: either way
// none is once it returns.
func (s *Store) rollbackTx() {
	_, _ = s.execHot(s.hot.rollback)
}

// errBegin marks a failure to begin a write transaction.
var errBegin = errors.New("sqlite: begin")

// runTx runs ops in one transaction and commits it. When an op fails (or panics) the
// transaction is rolled back and bad is that op's index; a failure of BEGIN or COMMIT
// has bad = -1.
//
// A transaction first runs staging (staged.go); when a staged insert fails, which op's
// row failed is unknown, so it is rolled back and run again without staging.
func (s *Store) runTx(ops []*op) (bad int, err error) {
	bad, err = s.runTxStaging(ops, true)
	if errors.Is(err, errStagedInsert) {
		s.m.Retry()
		s.log.Debug("a staged insert failed; running the transaction again row by row", "ops", len(ops), "err", err)
		bad, err = s.runTxStaging(ops, false)
	}
	return bad, err
}

func (s *Store) runTxStaging(ops []*op, staging bool) (bad int, err error) {
	start := time.Now()
	w, err := s.beginTx()
	if err != nil {
		return -1, fmt.Errorf("%w: %w", errBegin, err)
	}
	w.staging = staging
	defer s.endTx(w)
	for i, o := range ops {
		if err := runOp(o, w); err != nil {
			s.rollbackTx() // the seqs it gave out are given again
			s.staged.reset()
			if w.flushErr != nil {
				return -1, w.flushErr
			}
			return i, err
		}
	}
	if err := w.flush(); err != nil {
		s.rollbackTx()
		return -1, err
	}
	// Whether a failed COMMIT kept the transaction is unknown: its seqs are never given
	// again either way.
	s.seq = w.seq
	if err := s.commitTx(); err != nil {
		s.cache.drop(&w.ch) // dropping is always safe; an update is only after a commit
		s.tail.forget()     // the events the database kept are unknown
		return -1, fmt.Errorf("sqlite: commit: %w", err)
	}
	// After the commit, before runBatch answers the callers: a read that follows a write
	// never gets a copy cached before it.
	s.cache.apply(&w.ch)
	s.lastEvent.add(w.touched)
	s.tail.apply(&w.tail, w.ch.all)
	s.batches.Add(1)
	s.m.Commit(len(ops), time.Since(start))
	s.countWAL()
	return -1, nil
}

// countWAL adds the pages the writer connection appended to the WAL since the last call
// (SQLITE_DBSTATUS_CACHE_WRITE, which counts WAL frames in WAL mode) to the metrics.
//
// Every WALTruncateSize/8 bytes written it also wakes the checkpointer: under a heavy load
// the WAL grows by tens of megabytes a second, faster than a checkpoint a second keeps up
// with, and the restart that bounds it is decided after a checkpoint (maybeRestart).
func (s *Store) countWAL() {
	_ = s.wc.Raw(func(dc any) error {
		st, ok := dc.(sqlite.DBStatus)
		if !ok {
			return nil
		}
		frames, _, err := st.Status(sqlite.DBStatusCacheWrite, true)
		if err != nil {
			return nil
		}
		s.m.walWritten(frames, s.pageSize)
		s.sinceWake += int64(frames) * int64(s.pageSize+walFrameHeader)
		if s.sinceWake >= s.opts.WALTruncateSize/8 {
			s.sinceWake = 0
			select {
			case s.ckWake <- struct{}{}:
			default: // a round is due already
			}
		}
		return nil
	})
}

// runOp runs one op's function, turning a panic into its error.
func runOp(o *op, w *wtx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sqlite: panic in a write: %v", p)
		}
	}()
	return o.fn(w)
}
