package postgres

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/postgres/pgtest"
)

// fixture is a workspace with one subscription.
type fixture struct {
	ws  string
	sub *store.Subscription
}

func newFixture(t testing.TB, s store.Store) fixture {
	t.Helper()
	ctx := t.Context()
	ws := fmt.Sprintf("ws-%d", time.Now().UnixNano())
	require.NoError(t, s.CreateWorkspace(ctx, &store.Workspace{ID: ws, Name: ws}))
	c := &store.Connection{WorkspaceID: ws, ID: ws + "-conn", ConnectorKey: "github", Name: "c"}
	require.NoError(t, s.CreateConnection(ctx, c))
	sub := &store.Subscription{WorkspaceID: ws, ID: ws + "-sub", ConnectionID: c.ID, ConnectorKey: "github", EventKey: "issues", Status: store.StatusActive}
	require.NoError(t, s.CreateSubscription(ctx, sub))
	return fixture{ws, sub}
}

// commitOne commits a delivery of one event with the given external id.
func (f fixture) commitOne(ctx context.Context, s store.Store, ext string) (*store.CommitResult, error) {
	id := fmt.Sprintf("dlv-%s-%d", ext, time.Now().UnixNano())
	now := time.Now().UTC().Truncate(time.Microsecond)
	return s.CommitDelivery(ctx, &store.DeliveryCommit{
		Delivery: &store.Delivery{ID: id, WorkspaceID: f.ws, SubscriptionID: f.sub.ID, ReceiveTime: now, StatusCode: 200, Outcome: store.OutcomeOK, EventCount: 1},
		Events: []*store.Event{{
			ID: "ev-" + id, WorkspaceID: f.ws, ConnectionID: f.sub.ConnectionID, SubscriptionID: f.sub.ID, EventKey: "issues",
			Type: "opened", ExternalID: ext, DeliveryID: id, ReceiveTime: now, Record: map[string]any{"ext": ext},
		}},
	})
}

// tail is a consumer reading a workspace's stream the way StreamEvents does: everything
// after the last seq it has read.
type tail struct {
	s      store.Store
	ws     string
	cursor int64
	seen   []int64
}

func (c *tail) read(t *testing.T) {
	t.Helper()
	for {
		evs, err := c.s.ListEvents(t.Context(), c.ws, store.EventFilter{}, c.cursor, 100)
		require.NoError(t, err)
		for _, e := range evs {
			c.seen = append(c.seen, e.Seq)
			c.cursor = e.Seq
		}
		if len(evs) < 100 {
			return
		}
	}
}

func allSeqs(t *testing.T, s store.Store, ws string) []int64 {
	t.Helper()
	c := &tail{s: s, ws: ws}
	c.read(t)
	return c.seen
}

// TestNoEventSkippedWhileATransactionIsOpen holds one delivery's transaction open after
// it has written its event, commits later deliveries meanwhile, and reads the stream as a
// consumer does: the consumer must end up with every event. With seqs taken from a
// sequence, the later deliveries would commit higher seqs, the consumer would read them
// and move its cursor past the held one's seq, and lose that event when it commits.
// Here the later deliveries wait for the held transaction (they need its workspace's seq
// row), so what the consumer reads meanwhile never runs ahead of an uncommitted seq.
func TestNoEventSkippedWhileATransactionIsOpen(t *testing.T) {
	url := pgtest.Schema(t)
	s := openTest(t, url, Options{Committers: 3, MaxBatch: 1})
	f := newFixture(t, s)
	ctx := t.Context()

	held := make(chan uint32, 1)
	release := make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	defer releaseOnce() // a failing test must not leave the transaction hanging
	var once atomic.Bool
	s.beforeCommit = func(_ context.Context, pid uint32) {
		if once.CompareAndSwap(false, true) {
			held <- pid
			<-release
		}
	}
	var wg sync.WaitGroup
	results := make([]*store.CommitResult, 3)
	wg.Go(func() {
		var err error
		results[0], err = f.commitOne(ctx, s, "first")
		assert.NoError(t, err)
	})
	pid := <-held // the first delivery's events are written, its transaction is open

	consumer := &tail{s: s, ws: f.ws}
	consumer.read(t)
	require.Empty(t, consumer.seen, "an uncommitted event is not visible")

	// Two later deliveries, through other committers, of other subscriptions of the
	// workspace (so that nothing but the order of seqs makes them wait).
	later := make(chan int, 2)
	for i := 1; i <= 2; i++ {
		other := f
		other.sub = &store.Subscription{WorkspaceID: f.ws, ID: fmt.Sprintf("%s-%d", f.sub.ID, i), ConnectionID: f.sub.ConnectionID,
			ConnectorKey: "github", EventKey: "issues", Status: store.StatusActive}
		require.NoError(t, s.CreateSubscription(ctx, other.sub))
		wg.Go(func() {
			var err error
			results[i], err = other.commitOne(ctx, s, fmt.Sprintf("later-%d", i))
			assert.NoError(t, err)
			later <- i
		})
	}
	// Wait until each later delivery has either committed or is waiting for the held
	// transaction, whichever the store does; then the consumer reads.
	probe, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer probe.Close(context.Background())
	done := 0
	require.Eventually(t, func() bool {
		for {
			select {
			case <-later:
				done++
				continue
			default:
			}
			break
		}
		var waiting int
		err := probe.QueryRow(ctx, `WITH RECURSIVE blocked(pid) AS (
				SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))
				UNION SELECT a.pid FROM pg_stat_activity a, blocked b WHERE b.pid = ANY(pg_blocking_pids(a.pid)))
			SELECT count(*) FROM blocked`, int32(pid)).Scan(&waiting)
		return err == nil && done+waiting == 2
	}, 10*time.Second, 5*time.Millisecond)
	consumer.read(t)

	releaseOnce()
	wg.Wait()
	consumer.read(t)

	all := allSeqs(t, s, f.ws)
	require.Len(t, all, 3)
	require.Equal(t, all, consumer.seen, "the consumer read every event, in seq order, none skipped")
	require.Less(t, results[0].MaxSeq, results[1].MaxSeq, "the held delivery committed first and has the lower seq")
	require.Less(t, results[0].MaxSeq, results[2].MaxSeq)
}

// TestTailingConsumerAcrossReplicas: two stores on one database (two replicas) commit
// concurrently while a consumer tails the stream; it reads every committed event once, in
// seq order, and each replica's seqs follow its commit order.
func TestTailingConsumerAcrossReplicas(t *testing.T) {
	url := pgtest.Schema(t)
	replicas := []*Store{openTest(t, url, Options{}), openTest(t, url, Options{})}
	f := newFixture(t, replicas[0])
	ctx := t.Context()

	const writers, commits = 8, 25
	var wg sync.WaitGroup
	var stop atomic.Bool
	consumer := &tail{s: replicas[1], ws: f.ws}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for !stop.Load() {
			consumer.read(t)
		}
	}()
	for w := range writers {
		wg.Go(func() {
			s := replicas[w%2]
			var last int64
			for i := range commits {
				res, err := f.commitOne(ctx, s, fmt.Sprintf("w%d-%d", w, i))
				if !assert.NoError(t, err) {
					return
				}
				assert.Greater(t, res.MaxSeq, last)
				last = res.MaxSeq
			}
		})
	}
	wg.Wait()
	stop.Store(true)
	<-readerDone
	consumer.read(t)

	all := allSeqs(t, replicas[0], f.ws)
	require.Len(t, all, writers*commits)
	require.True(t, slices.IsSorted(all))
	require.Equal(t, all, consumer.seen, "the tailing consumer read every event exactly once")
	require.Equal(t, int64(1), all[0])
	require.Equal(t, int64(writers*commits), all[len(all)-1], "seqs have no gaps")
}

// TestDedupAcrossReplicas: the same event id delivered to two replicas at once is stored
// once.
func TestDedupAcrossReplicas(t *testing.T) {
	url := pgtest.Schema(t)
	replicas := []*Store{openTest(t, url, Options{}), openTest(t, url, Options{})}
	f := newFixture(t, replicas[0])
	ctx := t.Context()
	var wg sync.WaitGroup
	var inserted atomic.Int64
	for i := range 20 {
		wg.Go(func() {
			res, err := f.commitOne(ctx, replicas[i%2], fmt.Sprintf("ext-%d", i/4))
			if assert.NoError(t, err) {
				inserted.Add(int64(res.Inserted))
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 5, inserted.Load())
	require.Len(t, allSeqs(t, replicas[1], f.ws), 5)
}

// TestTextPostgresCannotHold: a NUL or invalid UTF-8 in a sender-controlled field does
// not fail the delivery; the character is stored as U+FFFD.
func TestTextPostgresCannotHold(t *testing.T) {
	s := openTest(t, pgtest.Schema(t), Options{})
	f := newFixture(t, s)
	ctx := t.Context()
	res, err := s.CommitDelivery(ctx, &store.DeliveryCommit{
		Delivery: &store.Delivery{ID: "d1", WorkspaceID: f.ws, SubscriptionID: f.sub.ID, StatusCode: 500, Outcome: store.OutcomeFailed,
			Error: "bad \x00 byte", Request: &store.RawRequest{Method: "POST", Path: "/hooks/x\x00", Query: "a=\xff", Body: []byte{0, 0xff}}},
		Events: []*store.Event{{ID: "e1", WorkspaceID: f.ws, SubscriptionID: f.sub.ID, Type: "a\x00b", ExternalID: "id\xfe", Record: "x"}},
	})
	require.NoError(t, err)
	require.Equal(t, 1, res.Inserted)
	d, err := s.GetDelivery(ctx, f.ws, "d1")
	require.NoError(t, err)
	require.Equal(t, "bad \uFFFD byte", d.Error)
	require.Equal(t, "/hooks/x\uFFFD", d.Request.Path)
	require.Equal(t, "a=\uFFFD", d.Request.Query)
	require.Equal(t, []byte{0, 0xff}, d.Request.Body, "bodies are bytes, kept as they are")
	evs, err := s.ListEvents(ctx, f.ws, store.EventFilter{}, 0, 10)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Equal(t, "a\uFFFDb", evs[0].Type)
	require.Equal(t, "id\uFFFD", evs[0].ExternalID)
}
