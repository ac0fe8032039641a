package sqlite

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/hookmap/hookmap/server/store"
)

// A subscription's LastEventTime is not written by the commit that stores its event: that
// was a page of the subscriptions table and a statement in every commit. The writer keeps
// the newest time of each subscription in memory (lastEvents.pending) once the commit is
// durable, and writes them all in the first transaction of a batch once they are due
// (every CheckpointInterval, and when the store closes). Reads lay the pending times over
// what the rows say, so a subscription's LastEventTime is exactly as fresh as before.
//
// Crash: what was pending is lost from memory, not from the database. Each flush also
// records in store_marks the highest event seq it covers; Open recomputes the newer times
// from the events after that seq (at most about a second of them) before anything reads.
//
// Reads lay the pending times over the rows they read, and read again in the rare case
// that a flush cleared pending times meanwhile (lastEvents.gen): the writer clears a
// pending time only after the transaction that wrote it to the row has committed and the
// read caches have it, so a row read after that has it, and one read before is read again.

// lastEventMark is the store_marks row of the highest event seq whose time is in its
// subscription's row.
const lastEventMark = "last_event_time_seq"

// lastEvents holds the subscriptions' newest event times not yet written to their rows,
// by subscription id (ids are unique across workspaces). Only the writer goroutine
// changes it.
type lastEvents struct {
	mu      sync.RWMutex
	pending map[string]pendingTime
	// gen counts the flushes that cleared pending times (written).
	gen atomic.Int64
}

type pendingTime struct {
	ws string
	at int64 // unix nanos
}

// add records the times of a committed transaction.
func (l *lastEvents) add(touched map[subKey]int64) {
	if len(touched) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending == nil {
		l.pending = make(map[string]pendingTime, len(touched))
	}
	for k, at := range touched {
		if p, ok := l.pending[k.sub]; !ok || p.ws != k.ws || at > p.at {
			l.pending[k.sub] = pendingTime{k.ws, at}
		}
	}
}

// at returns a subscription's pending time (0: none).
func (l *lastEvents) at(id, workspaceID string) int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if p, ok := l.pending[id]; ok && p.ws == workspaceID {
		return p.at
	}
	return 0
}

// empty reports whether no time is pending.
func (l *lastEvents) empty() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.pending) == 0
}

// snapshot returns a copy of the pending times (nil when there are none).
func (l *lastEvents) snapshot() map[string]pendingTime {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.pending) == 0 {
		return nil
	}
	return maps.Clone(l.pending)
}

// written drops the times a committed flush wrote, unless a newer one came since.
func (l *lastEvents) written(flushed map[string]pendingTime) {
	if len(flushed) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, p := range flushed {
		if l.pending[id] == p {
			delete(l.pending, id)
		}
	}
	l.gen.Add(1)
}

// overlay moves the LastEventTime of each of subs forward to its pending time, when that
// is newer.
func (l *lastEvents) overlay(subs ...*store.Subscription) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.pending) == 0 {
		return
	}
	for _, sub := range subs {
		if sub == nil {
			continue
		}
		if p, ok := l.pending[sub.ID]; ok && p.ws == sub.WorkspaceID && p.at > nanos(sub.LastEventTime) {
			sub.LastEventTime = fromNanos(p.at)
		}
	}
}

// fresh runs read, which reads subscriptions' rows (from the database or the cache), and
// lays the pending times over what it returns; when a flush cleared pending times while it
// read, it reads again (see the top of this file). Reads in the writer goroutine, where
// nothing changes the pending times, call overlay directly.
func fresh[T any](l *lastEvents, read func() (T, error), subs func(T) []*store.Subscription) (T, error) {
	for {
		gen := l.gen.Load()
		v, err := read()
		if err != nil {
			return v, err
		}
		l.overlay(subs(v)...)
		if l.gen.Load() == gen {
			return v, nil
		}
	}
}

// flushTx writes the pending times to the subscriptions' rows, with the mark of the events
// they cover, in a transaction of its own between two batches: every event up to the mark
// was stored by a committed transaction whose times are pending now (the writer adds them
// after each commit), so once it commits every one of them has its time in its row. A
// flush that fails leaves the times pending for the next.
func (s *Store) flushTx() {
	if s.lastEvent.empty() {
		return
	}
	w, err := s.beginTx()
	if err != nil {
		s.log.Warn("could not write the subscriptions' last event times; they stay in memory", "err", err)
		return
	}
	flushed, err := s.flushLastEvents(w)
	if err == nil {
		err = s.commitTx()
		if err != nil {
			s.cache.drop(&w.ch)
		}
	} else {
		s.rollbackTx()
	}
	if err != nil {
		s.log.Warn("could not write the subscriptions' last event times; they stay in memory", "err", err)
		return
	}
	s.cache.apply(&w.ch)
	s.lastEvent.written(flushed)
	s.batches.Add(1)
	s.countWAL()
}

// flushLastEvents writes the pending times and the mark in w (flushTx), returning what it
// wrote.
func (s *Store) flushLastEvents(w *wtx) (map[string]pendingTime, error) {
	snap := s.lastEvent.snapshot()
	for id, p := range snap {
		if _, err := w.execStmt(s.hot.touchSubscription, p.at, id, p.ws); err != nil {
			return nil, fmt.Errorf("sqlite: subscription %q: %w", id, err)
		}
		w.touchedSubscription(id, p.ws, p.at)
	}
	if _, err := w.exec(`UPDATE store_marks SET value = ? WHERE name = ?`, w.seq, lastEventMark); err != nil {
		return nil, fmt.Errorf("sqlite: last event mark: %w", err)
	}
	return snap, nil
}

// recoverLastEvents sets, after a crash, the last_event_time that was only in memory: the
// newest receive time of each subscription's events after the mark. It runs in Open,
// before the writer starts.
func (s *Store) recoverLastEvents(ctx context.Context) error {
	tx, err := s.wc.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: recover last event times: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var mark, last int64
	if err := tx.QueryRowContext(ctx, `SELECT value FROM store_marks WHERE name = ?`, lastEventMark).Scan(&mark); err != nil {
		return fmt.Errorf("sqlite: recover last event times: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&last); err != nil {
		return fmt.Errorf("sqlite: recover last event times: %w", err)
	}
	if last <= mark {
		return nil // a clean close, or no event since the last flush
	}
	res, err := tx.ExecContext(ctx, `UPDATE subscriptions SET last_event_time = r.t
		FROM (SELECT subscription_id, workspace_id, MAX(receive_time) AS t FROM events
			WHERE seq > ? AND subscription_id <> '' GROUP BY subscription_id, workspace_id) AS r
		WHERE subscriptions.id = r.subscription_id AND subscriptions.workspace_id = r.workspace_id
			AND r.t > subscriptions.last_event_time`, mark)
	if err != nil {
		return fmt.Errorf("sqlite: recover last event times: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE store_marks SET value = ? WHERE name = ?`, last, lastEventMark); err != nil {
		return fmt.Errorf("sqlite: recover last event times: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: recover last event times: %w", err)
	}
	n, _ := res.RowsAffected()
	s.log.Info("recovered the last event time of subscriptions after an unclean stop", "subscriptions", n, "events_after_seq", mark)
	return nil
}
