package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookmap/hookmap/server/store"
)

// notification is the payload of a NOTIFY on the store's channel.
type notification struct {
	Instance   string `json:"i"`
	Kind       string `json:"k"` // "e": events committed, "s": a stream opened
	Workspace  string `json:"w"`
	Seq        int64  `json:"q,omitempty"`
	Consumer   string `json:"c,omitempty"`
	Generation int64  `json:"g,omitempty"`
}

// notifier coalesces the "events committed" notifications of this store: per workspace,
// only the highest seq waiting to be sent.
type notifier struct {
	mu      sync.Mutex
	pending map[string]int64
	closed  bool
	wake    chan struct{}
}

func (n *notifier) init() {
	n.pending = map[string]int64{}
	n.wake = make(chan struct{}, 1)
}

func (n *notifier) add(ws string, seq int64) {
	n.mu.Lock()
	if seq > n.pending[ws] {
		n.pending[ws] = seq
	}
	n.mu.Unlock()
	n.signal()
}

func (n *notifier) signal() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) close() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.signal()
}

func (n *notifier) take() (map[string]int64, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.pending) == 0 {
		return nil, n.closed
	}
	p := n.pending
	n.pending = map[string]int64{}
	return p, n.closed
}

// notifier sends what notify collected, after the commits (a NOTIFY inside the delivery
// transaction would make every notifying commit in the database wait for the others).
func (s *Store) notifier() {
	defer close(s.notifierDone)
	for range s.notify.wake {
		pending, closed := s.notify.take()
		if len(pending) > 0 {
			b := &pgx.Batch{}
			for ws, seq := range pending {
				payload, _ := json.Marshal(notification{Instance: s.instance, Kind: "e", Workspace: ws, Seq: seq})
				b.Queue(`SELECT pg_notify($1, $2)`, s.channel, string(payload))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
				s.log.Warn("notify other replicas of new events (their fallback poll will find them)", "err", err)
			}
			cancel()
		}
		if closed {
			return
		}
	}
}

// Watch listens on the store's channel, on a connection of its own, and calls fn with
// what other processes commit, until ctx ends. A lost connection is reopened (with
// backoff) and followed by a ChangeResync.
func (s *Store) Watch(ctx context.Context, fn func(store.Change)) error {
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := s.listen(ctx, fn, attempt > 0)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if s.isClosed.Load() {
			return store.ErrClosed
		}
		s.log.Warn("lost the notification connection; reconnecting", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// listen runs one LISTEN connection until it fails or ctx ends.
func (s *Store) listen(ctx context.Context, fn func(store.Change), resync bool) error {
	conn, err := pgx.ConnectConfig(ctx, s.cfg.ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return err
	}
	if resync {
		fn(store.Change{Kind: store.ChangeResync})
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var msg notification
		if err := json.Unmarshal([]byte(n.Payload), &msg); err != nil || msg.Instance == s.instance {
			continue
		}
		switch msg.Kind {
		case "e":
			fn(store.Change{Kind: store.ChangeEvents, WorkspaceID: msg.Workspace, Seq: msg.Seq})
		case "s":
			fn(store.Change{Kind: store.ChangeStream, WorkspaceID: msg.Workspace, Consumer: msg.Consumer, Generation: msg.Generation})
		}
	}
}

// OpenStream bumps the consumer's stream generation and, in the same transaction,
// notifies the other processes.
func (s *Store) OpenStream(ctx context.Context, workspaceID, consumer string) (int64, error) {
	if s.isClosed.Load() {
		return 0, store.ErrClosed
	}
	var gen int64
	err := s.pool.QueryRow(ctx, `WITH g AS (
			INSERT INTO consumer_streams AS c (workspace_id, name, generation, open_time) VALUES ($1, $2, 1, $3)
			ON CONFLICT (workspace_id, name) DO UPDATE SET generation = c.generation + 1, open_time = excluded.open_time
			RETURNING generation)
		SELECT generation, pg_notify($4, json_build_object('i', $5::text, 'k', 's', 'w', $1::text, 'c', $2::text, 'g', generation)::text)
		FROM g`,
		workspaceID, consumer, now(), s.channel, s.instance).Scan(&gen, nil)
	if err != nil {
		return 0, s.opErr("open stream of "+consumer, err)
	}
	return gen, nil
}

// StreamGeneration returns the consumer's newest stream generation, 0 when none.
func (s *Store) StreamGeneration(ctx context.Context, workspaceID, consumer string) (int64, error) {
	gen, err := getOne(ctx, s, "consumer stream", consumer,
		`SELECT generation FROM consumer_streams WHERE workspace_id = $1 AND name = $2`,
		func(sc scanner) (int64, error) {
			var n int64
			err := sc.Scan(&n)
			return n, err
		}, workspaceID, consumer)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	return gen, err
}
