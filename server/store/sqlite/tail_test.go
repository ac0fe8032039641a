package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

// tailFixture commits a varied mix of events over several workspaces and compares what
// ListEvents and LastSeq return with the tail and from the database alone.
type tailFixture struct {
	t   *testing.T
	s   *Store
	reg *prometheus.Registry
	rng *rand.Rand
	n   int
	// base is the receive time of the first event in order; later ones follow it by a
	// millisecond each (clock), some are received an hour before it (out of seq order).
	base  time.Time
	clock time.Time
	// inOrder: no event is received early.
	inOrder bool
}

var (
	tailWorkspaces = []string{"w1", "w2", "w3"}
	tailConns      = []string{"c1", "c2"}
	tailSubs       = []string{"s1", "s2", "s3", ""}
	tailKeys       = []string{"issues", "pulls"}
	tailTypes      = []string{"opened", "closed", "edited"}
)

func newTailFixture(t *testing.T) *tailFixture {
	reg := prometheus.NewRegistry()
	s := openTest(t, Options{Registerer: reg})
	for _, ws := range tailWorkspaces {
		require.NoError(t, s.CreateWorkspace(t.Context(), &store.Workspace{ID: ws, Name: ws}))
	}
	// The events' connection ids are names only; SetConnectionAuth needs a connection.
	require.NoError(t, s.CreateConnection(t.Context(), &store.Connection{WorkspaceID: "w3", ID: "c1", ConnectorKey: "github", Name: "c1"}))
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return &tailFixture{t: t, s: s, reg: reg, rng: rand.New(rand.NewPCG(1, 2)), base: base, clock: base}
}

func pick[T any](rng *rand.Rand, vs []T) T { return vs[rng.IntN(len(vs))] }

// event returns a new event of ws: a random connection, subscription, key and type, an
// external id from a small pool a third of the time (duplicates), received now (by the
// fixture's clock, nanoseconds included) or, one time in eight, an hour ago.
func (f *tailFixture) event(ws string) *store.Event {
	f.n++
	f.clock = f.clock.Add(time.Millisecond + time.Duration(f.rng.IntN(1000)))
	received := f.clock
	if !f.inOrder && f.rng.IntN(8) == 0 {
		received = f.clock.Add(-time.Hour)
	}
	ext := ""
	if f.rng.IntN(3) == 0 {
		ext = fmt.Sprintf("x%d", f.rng.IntN(5))
	}
	return &store.Event{
		ID: fmt.Sprintf("ev-%d", f.n), WorkspaceID: ws, ConnectionID: pick(f.rng, tailConns),
		SubscriptionID: pick(f.rng, tailSubs), EventKey: pick(f.rng, tailKeys), Type: pick(f.rng, tailTypes),
		ExternalID: ext, ReceiveTime: received,
		Record: map[string]any{
			"n": int64(f.n), "big": int64(1) << 60, "ratio": 0.25, "title": "Bug " + strings.Repeat("x", f.rng.IntN(40)),
			"labels": []any{"a", int64(2), nil}, "user": map[string]any{"login": "octo", "admin": f.n%2 == 0},
		},
	}
}

// delivery returns a commit of a delivery of ws with 1 to 3 events.
func (f *tailFixture) delivery(ws string) *store.DeliveryCommit {
	f.n++
	d := &store.Delivery{ID: fmt.Sprintf("dlv-%d", f.n), WorkspaceID: ws, ReceiveTime: f.clock, StatusCode: 200, Outcome: store.OutcomeOK}
	c := &store.DeliveryCommit{Delivery: d}
	for range 1 + f.rng.IntN(3) {
		ev := f.event(ws)
		ev.DeliveryID = d.ID
		c.Events = append(c.Events, ev)
	}
	d.EventCount = len(c.Events)
	return c
}

// commitMix commits n deliveries of random workspaces, one at a time.
func (f *tailFixture) commitMix(n int) {
	f.t.Helper()
	for range n {
		_, err := f.s.CommitDelivery(f.t.Context(), f.delivery(pick(f.rng, tailWorkspaces)))
		require.NoError(f.t, err)
	}
}

// lastSeqAll is the highest seq in the events table.
func (f *tailFixture) lastSeqAll() int64 {
	f.t.Helper()
	var last int64
	require.NoError(f.t, f.s.r.QueryRowContext(f.t.Context(), `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&last))
	return last
}

// hits is how many ListEvents the tail served alone.
func (f *tailFixture) hits() float64 {
	return counterValue(f.t, f.reg, "hookmap_store_cache_lookups_total", "cache", "events", "result", "hit")
}

// requireEquivalent compares ListEvents and LastSeq with the tail to the database's
// answers for many (workspace, after, filter, limit), and returns how many reads the
// tail served alone.
func (f *tailFixture) requireEquivalent(label string) int {
	t, s, ctx := f.t, f.s, f.t.Context()
	t.Helper()
	lo, _, _ := s.tail.state()
	last := f.lastSeqAll()
	afters := []int64{-1, last / 2, lo - 2, lo - 1, lo, last - 3, last}
	// Each filter with the default limit (100, more than any workspace here has), the
	// first and the last also with small limits, which stop reads in the tail or before.
	filters := []store.EventFilter{
		{},
		{ConnectionIDs: []string{"c1"}},
		{SubscriptionIDs: []string{"s2", "s3"}},
		{SubscriptionIDs: []string{""}},
		{EventKeys: []string{"pulls"}, Types: []string{"closed", "closed"}},
		{ConnectionIDs: []string{"c2"}, SubscriptionIDs: []string{"s1", ""}, EventKeys: []string{"issues"}, Types: []string{"opened", "edited"}},
	}
	before := f.hits()
	for _, ws := range []string{"w1", "no-such-workspace"} {
		want, err := s.lastSeq(ctx, ws, nil)
		require.NoError(t, err)
		got, err := s.LastSeq(ctx, ws)
		require.NoError(t, err)
		require.Equal(t, want, got, "%s: LastSeq(%s)", label, ws)
		for _, after := range afters {
			for fi, filter := range filters {
				limits := []int{0}
				if fi == 0 || fi == len(filters)-1 {
					limits = append(limits, 1, 4)
				}
				for _, limit := range limits {
					want, err := s.listEvents(ctx, ws, filter, after, limit, nil)
					require.NoError(t, err)
					got, err := s.ListEvents(ctx, ws, filter, after, limit)
					require.NoError(t, err)
					require.Equal(t, want, got, "%s: ListEvents(%s, filter %d, after %d, limit %d), tail lo %d", label, ws, fi, after, limit, lo)
				}
			}
		}
	}
	return int(f.hits() - before)
}

// requireServed checks that the tail is in use: lo is known, the tail holds events, and
// a read of the newest events is served from memory.
func (f *tailFixture) requireServed(label string) {
	f.t.Helper()
	lo, known, n := f.s.tail.state()
	require.True(f.t, known, label)
	require.Positive(f.t, n, label)
	last := f.lastSeqAll()
	require.Equal(f.t, last+1, lo+int64(n), "%s: the tail holds the seqs from lo to the newest", label)
	before := f.hits()
	ws := tailWorkspaces[0]
	got, err := f.s.ListEvents(f.t.Context(), ws, store.EventFilter{}, lo-1, 0)
	require.NoError(f.t, err)
	require.Equal(f.t, before+1, f.hits(), "%s: served from memory", label)
	want, err := f.s.listEvents(f.t.Context(), ws, store.EventFilter{}, lo-1, 0, nil)
	require.NoError(f.t, err)
	require.Equal(f.t, want, got)
}

// requireUnknown checks that the tail holds nothing, lo unknown, and that reads go to
// the database.
func (f *tailFixture) requireUnknown(label string) {
	f.t.Helper()
	_, known, n := f.s.tail.state()
	require.Equal(f.t, []any{false, 0}, []any{known, n}, label)
	before := f.hits()
	last := f.lastSeqAll()
	got, err := f.s.ListEvents(f.t.Context(), "w1", store.EventFilter{}, last-5, 0)
	require.NoError(f.t, err)
	want, err := f.s.listEvents(f.t.Context(), "w1", store.EventFilter{}, last-5, 0, nil)
	require.NoError(f.t, err)
	require.Equal(f.t, want, got, label)
	require.Equal(f.t, before, f.hits(), "%s: read from the database", label)
	seq, err := f.s.LastSeq(f.t.Context(), "w1")
	require.NoError(f.t, err)
	want1, err := f.s.lastSeq(f.t.Context(), "w1", nil)
	require.NoError(f.t, err)
	require.Equal(f.t, want1, seq, label)
}

// TestTailEquivalence: ListEvents and LastSeq answer exactly as the database does, with
// duplicates, a batch rolled back and run again without its failing op, eviction, prunes,
// a failed COMMIT and a raw statement along the way.
func TestTailEquivalence(t *testing.T) {
	f := newTailFixture(t)
	s, ctx := f.s, t.Context()
	lo, known, n := s.tail.state()
	require.Equal(t, []any{int64(1), true, 0}, []any{lo, known, n}, "an empty database's tail starts at seq 1")

	f.commitMix(40)
	f.requireServed("mix")
	require.Positive(t, f.requireEquivalent("mix"))

	// A batch with a failing op: its events were inserted, then rolled back with the
	// batch; the batch runs again without it and its seqs go to the others' events.
	other := f.delivery("w2")
	_, err := s.CommitDelivery(ctx, other)
	require.NoError(t, err)
	release := hold(t, s)
	commits := make([]*store.DeliveryCommit, 6)
	for i := range commits {
		commits[i] = f.delivery(pick(f.rng, tailWorkspaces))
	}
	bad := f.delivery("w1")
	bad.Delivery.ID = other.Delivery.ID // exists in w2: refused after its events were inserted
	commits[2] = bad
	errs := make([]error, len(commits))
	var wg sync.WaitGroup
	for i, c := range commits {
		wg.Go(func() { _, errs[i] = s.CommitDelivery(context.Background(), c) })
	}
	waitQueued(t, s, len(commits))
	before := s.batches.Load()
	release()
	wg.Wait()
	for i, err := range errs {
		if i == 2 {
			require.ErrorIs(t, err, store.ErrAlreadyExists)
		} else {
			require.NoError(t, err, "commit %d", i)
		}
	}
	require.Equal(t, before+2, s.batches.Load(), "the held op, then the good commits in one transaction")
	f.requireServed("after a rolled-back batch")
	require.Positive(t, f.requireEquivalent("after a rolled-back batch"))

	// Events of a connection's authorization.
	conn, err := s.GetConnection(ctx, "w3", "c1")
	require.NoError(t, err)
	require.NoError(t, s.SetConnectionAuth(ctx, conn, f.event("w3"), f.event("w3")))
	f.requireServed("after SetConnectionAuth")

	// Prune of the events received an hour early, committed among newer ones: events go in
	// seq order up to the first one within the retention, so the early ones after it stay
	// (until their neighbours go), and the tail drops exactly what was deleted.
	cutoff := f.base.Add(-30 * time.Minute)
	_, err = s.Prune(ctx, store.Retention{EventsBefore: cutoff})
	require.NoError(t, err)
	var oldest int64
	require.NoError(t, s.r.QueryRow(`SELECT receive_time FROM events ORDER BY seq LIMIT 1`).Scan(&oldest))
	require.GreaterOrEqual(t, oldest, nanos(cutoff), "the oldest event left is within the retention")
	f.requireEquivalent("after a prune of events committed out of receive-time order")

	// Events received in order, then a prune of the oldest of them: the tail drops those.
	f.inOrder = true
	f.commitMix(20)
	mid := f.clock
	f.commitMix(20)
	loBefore, _, _ := s.tail.state()
	res, err := s.Prune(ctx, store.Retention{EventsBefore: mid})
	require.NoError(t, err)
	require.Positive(t, res.Events)
	lo, _, _ = s.tail.state()
	require.Greater(t, lo, loBefore, "the pruned events left the tail")
	f.requireServed("after a prune in order")
	require.Positive(t, f.requireEquivalent("after a prune in order"))

	// A prune and commits in one batch, in either order: the prune deletes no event of its
	// transaction (they come after the first one it keeps, which it found before), and the
	// tail keeps them.
	for _, pruneFirst := range []bool{false, true} {
		last := f.lastSeqAll()
		release := hold(t, s)
		early := f.delivery("w1")
		for _, ev := range early.Events {
			ev.ReceiveTime, ev.ExternalID = f.base.Add(-2*time.Hour), "" // no duplicate
		}
		late := f.delivery("w1")
		var wg sync.WaitGroup
		queue := func(fn func() error) {
			n := len(s.queue)
			wg.Go(func() { require.NoError(t, fn()) })
			waitQueued(t, s, n+1)
		}
		commitEarly := func() error { _, err := s.CommitDelivery(ctx, early); return err }
		prune := func() error {
			_, err := s.Prune(ctx, store.Retention{EventsBefore: f.base.Add(-time.Hour)})
			return err
		}
		if pruneFirst {
			queue(prune)
			queue(commitEarly)
		} else {
			queue(commitEarly)
			queue(prune)
		}
		queue(func() error { _, err := s.CommitDelivery(ctx, late); return err })
		release()
		wg.Wait()
		inserted := func(c *store.DeliveryCommit) (seqs []int64) {
			for _, ev := range c.Events {
				if ev.Seq != 0 { // else a duplicate
					seqs = append(seqs, ev.Seq)
				}
			}
			return seqs
		}
		require.NotEmpty(t, inserted(early))
		want := append(inserted(early), inserted(late)...)
		got, err := s.ListEvents(ctx, "w1", store.EventFilter{}, last, 0)
		require.NoError(t, err)
		var gotSeqs []int64
		for _, e := range got {
			gotSeqs = append(gotSeqs, e.Seq)
		}
		require.Equal(t, want, gotSeqs)
		f.requireServed(fmt.Sprintf("after a prune in a batch (prune first: %v)", pruneFirst))
		f.requireEquivalent(fmt.Sprintf("after a prune in a batch (prune first: %v)", pruneFirst))
	}

	// Records of 1 MiB (in a workspace of their own, not to decode them at every read):
	// the tail's bytes bound evicts the oldest, other workspaces' included.
	require.NoError(t, s.CreateWorkspace(ctx, &store.Workspace{ID: "large", Name: "large"}))
	for i := range 10 {
		ev := f.event("large")
		ev.Record = map[string]any{"i": int64(i), "blob": strings.Repeat("y", 1<<20)}
		_, err := s.CommitDelivery(ctx, &store.DeliveryCommit{Events: []*store.Event{ev}})
		require.NoError(t, err)
	}
	lo, _, n = s.tail.state()
	require.Less(t, n, 10, "evicted by size")
	large, err := s.lastSeq(ctx, "large", nil)
	require.NoError(t, err)
	require.Equal(t, large+1-int64(n), lo)
	f.commitMix(5)
	f.requireServed("after eviction")
	require.Positive(t, f.requireEquivalent("after eviction"))

	// A failed COMMIT: what the database kept is unknown, so every read goes to it until
	// the next commit of events.
	err = s.write(ctx, func(w *wtx) error {
		if _, err := w.exec(`PRAGMA defer_foreign_keys = ON`); err != nil {
			return err
		}
		if _, err := w.insertEvent(f.event("w1"), `{}`); err != nil {
			return err
		}
		_, err := w.exec(`INSERT INTO api_keys (id, workspace_id, name, hash) VALUES ('k', 'no-such-workspace', 'k', x'00')`)
		return err
	})
	require.True(t, isFKViolation(err), "%v", err)
	_, known, n = s.tail.state()
	require.Equal(t, []any{false, 0}, []any{known, n})
	f.requireUnknown("after a failed commit")
	f.commitMix(3)
	f.requireServed("after a commit that follows a failed one")

	// A raw statement (changedAll): the tail forgets too.
	require.NoError(t, s.write(ctx, func(w *wtx) error {
		w.changedAll()
		_, err := w.exec(`UPDATE events SET type = 'rewritten' WHERE seq = (SELECT MAX(seq) FROM events)`)
		return err
	}))
	f.requireUnknown("after a raw statement")
	f.commitMix(3)
	f.requireServed("after a raw statement and a commit")
}

// TestTailReturnsCopies: a caller may change the events it gets; the next read is as
// stored.
func TestTailReturnsCopies(t *testing.T) {
	f := newTailFixture(t)
	s, ctx := f.s, t.Context()
	f.commitMix(5)
	read := func() []*store.Event {
		evs, err := s.ListEvents(ctx, "w1", store.EventFilter{}, 0, 0)
		require.NoError(t, err)
		require.NotEmpty(t, evs)
		return evs
	}
	hits := f.hits()
	got := read()
	require.Equal(t, hits+1, f.hits(), "served from memory")
	for _, e := range got {
		e.Type, e.RecordJSON = "changed", "changed"
		e.Record.(map[string]any)["n"] = "changed"
		e.Record.(map[string]any)["user"].(map[string]any)["login"] = "changed"
		e.Record.(map[string]any)["labels"].([]any)[0] = "changed"
	}
	want, err := s.listEvents(ctx, "w1", store.EventFilter{}, 0, 0, nil)
	require.NoError(t, err)
	require.Equal(t, want, read())
}

// TestTailAfterReopen: a reopened store's tail starts above the highest seq the events
// table ever had, also when the newest events were pruned, and serves from the next commit.
func TestTailAfterReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookmap.db")
	s, err := Open(t.Context(), path, Options{})
	require.NoError(t, err)
	first := s
	t.Cleanup(func() { _ = first.Close() })
	require.NoError(t, s.CreateWorkspace(t.Context(), &store.Workspace{ID: "w1", Name: "w1"}))
	f := &tailFixture{t: t, s: s, rng: rand.New(rand.NewPCG(3, 4)), base: time.Now(), clock: time.Now()}
	var last int64
	for range 3 {
		res, err := s.CommitDelivery(t.Context(), &store.DeliveryCommit{Events: []*store.Event{f.event("w1")}})
		require.NoError(t, err)
		last = res.MaxSeq
	}
	_, err = s.Prune(t.Context(), store.Retention{EventsBefore: f.clock.Add(time.Hour)})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	reg := prometheus.NewRegistry()
	s, err = Open(t.Context(), path, Options{Registerer: reg})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	lo, known, n := s.tail.state()
	require.Equal(t, []any{last + 1, true, 0}, []any{lo, known, n})
	seq, err := s.LastSeq(t.Context(), "w1")
	require.NoError(t, err)
	require.Zero(t, seq, "every event was pruned")

	ev := f.event("w1")
	res, err := s.CommitDelivery(t.Context(), &store.DeliveryCommit{Events: []*store.Event{ev}})
	require.NoError(t, err)
	require.Equal(t, last+1, res.MaxSeq)
	got, err := s.ListEvents(t.Context(), "w1", store.EventFilter{}, last, 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, ev.ID, got[0].ID)
	require.Equal(t, 1.0, counterValue(t, reg, "hookmap_store_cache_lookups_total", "cache", "events", "result", "hit"))
	require.Equal(t, 0.0, counterValue(t, reg, "hookmap_store_cache_lookups_total", "cache", "events", "result", "miss"))
	got, err = s.ListEvents(t.Context(), "w1", store.EventFilter{}, 0, 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, 1.0, counterValue(t, reg, "hookmap_store_cache_lookups_total", "cache", "events", "result", "miss"),
		"a read from before lo goes to the database")
}

// TestTailConcurrentReaders: while writers commit, a stream-like reader gets every event
// once, in order, and a reader that moves its cursor to LastSeq (as the destination
// worker does) never passes an event ListEvents did not return.
func TestTailConcurrentReaders(t *testing.T) {
	f := newTailFixture(t)
	s, ctx := f.s, t.Context()
	commits := make([][]*store.DeliveryCommit, 4)
	for w := range commits {
		for range 40 {
			commits[w] = append(commits[w], f.delivery(pick(f.rng, tailWorkspaces[:2])))
		}
	}
	done := make(chan struct{})
	var writers sync.WaitGroup
	for _, cs := range commits {
		writers.Go(func() {
			for _, c := range cs {
				if _, err := s.CommitDelivery(ctx, c); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	go func() { writers.Wait(); close(done) }()

	type window struct {
		cursor, last int64
		got          []int64
	}
	streamed := make([][]int64, len(tailWorkspaces[:2]))
	windows := make([][]window, len(tailWorkspaces[:2]))
	var readers sync.WaitGroup
	for i, ws := range tailWorkspaces[:2] {
		readers.Go(func() { // a stream: small batches from where it stopped
			var after int64
			for finished := false; ; {
				select {
				case <-done:
					finished = true
				default:
				}
				evs, err := s.ListEvents(ctx, ws, store.EventFilter{}, after, 7)
				if err != nil {
					t.Error(err)
					return
				}
				for _, e := range evs {
					streamed[i] = append(streamed[i], e.Seq)
					after = e.Seq
				}
				if finished && len(evs) == 0 {
					return
				}
			}
		})
		readers.Go(func() { // a cursor moved to LastSeq
			var cursor int64
			for finished := false; !finished; {
				select {
				case <-done:
					finished = true
				default:
				}
				last, err := s.LastSeq(ctx, ws)
				if err != nil {
					t.Error(err)
					return
				}
				evs, err := s.ListEvents(ctx, ws, store.EventFilter{}, cursor, maxEventsLimit)
				if err != nil {
					t.Error(err)
					return
				}
				w := window{cursor: cursor, last: last}
				for _, e := range evs {
					w.got = append(w.got, e.Seq)
				}
				windows[i] = append(windows[i], w)
				cursor = max(cursor, last)
				if len(evs) > 0 {
					cursor = max(cursor, evs[len(evs)-1].Seq)
				}
			}
		})
	}
	readers.Wait()
	for i, ws := range tailWorkspaces[:2] {
		all, err := s.listEvents(ctx, ws, store.EventFilter{}, 0, maxEventsLimit, nil)
		require.NoError(t, err)
		var seqs []int64
		for _, e := range all {
			seqs = append(seqs, e.Seq)
		}
		require.NotEmpty(t, seqs)
		require.Equal(t, seqs, streamed[i], "%s: the stream got every event once, in order", ws)
		for _, w := range windows[i] {
			var want []int64
			for _, seq := range seqs {
				if seq > w.cursor && (seq <= w.last || (len(w.got) > 0 && seq <= w.got[len(w.got)-1])) {
					want = append(want, seq)
				}
			}
			require.Equal(t, want, w.got, "%s: after %d with LastSeq %d", ws, w.cursor, w.last)
		}
	}
}

// TestTailBounds: the ring keeps the newest tailMaxEvents events and tailMaxBytes of
// them, lo following the oldest kept.
func TestTailBounds(t *testing.T) {
	tl := newTail(1, &metrics{}, false)
	ws := []string{"a", "b"}
	push := func(seq int64, record string) {
		tl.mu.Lock()
		defer tl.mu.Unlock()
		tl.push(&tailEvent{seq: seq, ws: ws[seq%2], record: record, received: seq})
	}
	const total = tailMaxEvents + 1000
	for seq := int64(1); seq <= total; seq++ {
		push(seq, "{}")
	}
	lo, known, n := tl.state()
	require.Equal(t, []any{int64(total - tailMaxEvents + 1), true, tailMaxEvents}, []any{lo, known, n})
	require.Equal(t, map[string]int64{"a": total, "b": total - 1}, tl.newest)
	evs, served, _ := tl.list("b", &store.EventFilter{}, lo-1, 3, nil)
	require.True(t, served)
	require.Equal(t, []int64{lo, lo + 2, lo + 4}, []int64{evs[0].Seq, evs[1].Seq, evs[2].Seq})
	_, served, below := tl.list("b", &store.EventFilter{}, lo-2, 3, nil)
	require.Equal(t, []any{false, lo}, []any{served, below})

	// A record over the bytes bound: everything goes, the large one too.
	push(total+1, strings.Repeat("z", tailMaxBytes))
	lo, known, n = tl.state()
	require.Equal(t, []any{int64(total + 2), true, 0}, []any{lo, known, n})
	require.Zero(t, tl.bytes)
	require.Empty(t, tl.newest)
	evs, served, _ = tl.list("b", &store.EventFilter{}, total+1, 3, nil)
	require.True(t, served)
	require.Empty(t, evs)

	// A seq out of order (AUTOINCREMENT rules it out) turns the tail off for good.
	push(total+5, "{}")
	push(total+3, "{}")
	push(total+6, "{}")
	_, known, n = tl.state()
	require.Equal(t, []any{false, 0}, []any{known, n})
	_, served, below = tl.list("b", &store.EventFilter{}, total+5, 3, nil)
	require.Equal(t, []any{false, int64(0)}, []any{served, below})
}

// TestTailErrors: a read the tail would serve fails as the database's would, with the
// caller's context ended or the store closed.
func TestTailErrors(t *testing.T) {
	f := newTailFixture(t)
	s := f.s
	f.commitMix(3)
	last := f.lastSeqAll()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.ListEvents(ctx, "w1", store.EventFilter{}, last-1, 0)
	require.ErrorIs(t, err, context.Canceled)
	_, err = s.LastSeq(ctx, "w1")
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, s.Close())
	_, err = s.ListEvents(t.Context(), "w1", store.EventFilter{}, last-1, 0)
	require.ErrorIs(t, err, store.ErrClosed)
	_, err = s.LastSeq(t.Context(), "w1")
	require.ErrorIs(t, err, store.ErrClosed)
}
