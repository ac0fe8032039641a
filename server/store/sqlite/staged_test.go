package sqlite

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

// stagedFixture is a store with two workspaces, each with a connection and a subscription.
type stagedFixture struct {
	s    *Store
	subs map[string]*store.Subscription // by workspace
}

func newStagedFixture(t *testing.T) *stagedFixture {
	t.Helper()
	s := openTest(t, Options{})
	ctx := t.Context()
	f := &stagedFixture{s: s, subs: map[string]*store.Subscription{}}
	for _, ws := range []string{"ws-a", "ws-b"} {
		require.NoError(t, s.CreateWorkspace(ctx, &store.Workspace{ID: ws, Name: ws}))
		c := &store.Connection{WorkspaceID: ws, ID: "conn-" + ws, ConnectorKey: "bench", Name: "c"}
		require.NoError(t, s.CreateConnection(ctx, c))
		sub := &store.Subscription{WorkspaceID: ws, ID: "sub-" + ws, ConnectionID: c.ID, ConnectorKey: "bench",
			EventKey: "webhook", Status: store.StatusActive}
		require.NoError(t, s.CreateSubscription(ctx, sub))
		f.subs[ws] = sub
	}
	return f
}

// commit is a new delivery of ws, id a new time-ordered id when "", with one event.
func (f *stagedFixture) commit(ws, id, action string) *store.DeliveryCommit {
	if id == "" {
		id = "dlv_" + uuid.Must(uuid.NewV7()).String()
	}
	sub := f.subs[ws]
	now := time.Now().UTC().Truncate(time.Microsecond)
	return &store.DeliveryCommit{
		Delivery: &store.Delivery{ID: id, WorkspaceID: ws, SubscriptionID: sub.ID, ReceiveTime: now,
			StatusCode: 200, Outcome: store.OutcomeOK, EventCount: 1, RequestSize: 10},
		Events: []*store.Event{{ID: "evt_" + uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws, ConnectionID: sub.ConnectionID,
			SubscriptionID: sub.ID, EventKey: "webhook", Type: "issue." + action, DeliveryID: id, ReceiveTime: now,
			Record: map[string]any{"action": action}}},
	}
}

// commitTogether commits cs in one batch (the writer held until all are queued) and
// returns each one's result and error.
func (f *stagedFixture) commitTogether(t *testing.T, cs []*store.DeliveryCommit, more ...func(*wtx) error) ([]*store.CommitResult, []error, []error) {
	t.Helper()
	release := hold(t, f.s)
	res, errs := make([]*store.CommitResult, len(cs)), make([]error, len(cs))
	moreErrs := make([]error, len(more))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() { res[i], errs[i] = f.s.CommitDelivery(context.Background(), c) })
		waitQueued(t, f.s, i+1) // in this order
	}
	for i, fn := range more {
		wg.Go(func() { moreErrs[i] = f.s.write(context.Background(), fn) })
		waitQueued(t, f.s, len(cs)+i+1)
	}
	release()
	wg.Wait()
	return res, errs, moreErrs
}

// requireStored checks that c's delivery and event are stored as committed, the event
// with seq.
func (f *stagedFixture) requireStored(t *testing.T, c *store.DeliveryCommit, seq int64) {
	t.Helper()
	ctx := t.Context()
	d, err := f.s.GetDelivery(ctx, c.Delivery.WorkspaceID, c.Delivery.ID)
	require.NoError(t, err)
	require.Equal(t, store.OutcomeOK, d.Outcome)
	require.Equal(t, 1, d.EventCount)
	evs, err := f.s.DeliveryEvents(ctx, c.Delivery.WorkspaceID, d, 10)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Equal(t, c.Events[0].ID, evs[0].ID)
	require.Equal(t, seq, evs[0].Seq)
	require.Equal(t, c.Events[0].Record, evs[0].Record)
}

// TestStagedRowsInOneBatch: the deliveries of a batch are inserted by multi-row INSERTs
// (100 rows: 64, 32 and 4), with every row and seq as one INSERT each would have left them.
func TestStagedRowsInOneBatch(t *testing.T) {
	f := newStagedFixture(t)
	before := f.s.batches.Load()
	const n = 100
	cs := make([]*store.DeliveryCommit, n)
	for i := range cs {
		cs[i] = f.commit([]string{"ws-a", "ws-b"}[i%2], "", fmt.Sprint("action-", i))
	}
	// an op of raw statements after them reads the rows staged before it
	var counted [2]int
	count := func(w *wtx) error {
		return w.queryRow(`SELECT (SELECT count(*) FROM deliveries), (SELECT count(*) FROM events)`).Scan(&counted[0], &counted[1])
	}
	res, errs, moreErrs := f.commitTogether(t, cs, count)
	require.NoError(t, moreErrs[0])
	require.Equal(t, [2]int{n, n}, counted)
	require.Equal(t, before+2, f.s.batches.Load(), "the held op, then the %d commits and the count together", n)
	for i := range cs {
		require.NoError(t, errs[i])
		require.Equal(t, []int64{int64(i + 1)}, res[i].Seqs, "seqs follow the order of the batch")
		f.requireStored(t, cs[i], int64(i+1))
	}
	for k, h := range f.s.staged.deliveries.stmts {
		require.Equal(t, k == 2 || k == 5 || k == 6, h != nil, "statement of %d rows", 1<<k)
	}
	for k, h := range f.s.staged.events.stmts {
		require.Equal(t, k == 2 || k == 5 || k == 6, h != nil, "statement of %d rows", 1<<k)
	}
	// the listings and the stream read them as well
	for _, ws := range []string{"ws-a", "ws-b"} {
		ds, _, err := f.s.ListDeliveries(t.Context(), ws, store.DeliveryFilter{SubscriptionID: f.subs[ws].ID}, store.Page{Size: 100})
		require.NoError(t, err)
		require.Len(t, ds, n/2)
		evs, err := f.s.ListEvents(t.Context(), ws, store.EventFilter{}, 0, 100)
		require.NoError(t, err)
		require.Len(t, evs, n/2)
	}
}

// TestAckKeepsTheBatchStaged: a consumer's ack between deliveries of a batch does not
// flush the rows staged before it (its statement touches neither table): the 100
// deliveries around it still go in one flush (64, 32 and 4 rows), and the cursor moves.
func TestAckKeepsTheBatchStaged(t *testing.T) {
	f := newStagedFixture(t)
	release := hold(t, f.s)
	const n = 100
	var wg sync.WaitGroup
	errs := make([]error, n+1)
	for i := range n + 1 {
		if i == n/2 {
			wg.Go(func() { errs[i] = f.s.AckEvents(context.Background(), "ws-a", "reader", 7) })
		} else {
			c := f.commit("ws-a", "", fmt.Sprint("action-", i))
			wg.Go(func() { _, errs[i] = f.s.CommitDelivery(context.Background(), c) })
		}
		waitQueued(t, f.s, i+1)
	}
	release()
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	for k, h := range f.s.staged.deliveries.stmts {
		require.Equal(t, k == 2 || k == 5 || k == 6, h != nil, "statement of %d rows", 1<<k)
	}
	cursor, found, err := f.s.GetCursor(t.Context(), "ws-a", "reader")
	require.NoError(t, err)
	require.True(t, found)
	require.EqualValues(t, 7, cursor)
}

// TestStagedInsertFailureRunsRowByRow: a staged delivery whose id exists fails the
// multi-row INSERT; the batch runs again row by row, where the op that fails fails alone
// and the one that replaces its own workspace's delivery does so, as without staging.
func TestStagedInsertFailureRunsRowByRow(t *testing.T) {
	f := newStagedFixture(t)
	ctx := t.Context()
	taken := f.commit("ws-a", "", "taken") // another workspace's id
	_, err := f.s.CommitDelivery(ctx, taken)
	require.NoError(t, err)
	own := f.commit("ws-b", "", "first") // the same workspace's id, written again
	_, err = f.s.CommitDelivery(ctx, own)
	require.NoError(t, err)
	before := f.s.batches.Load()

	const n = 10
	cs := make([]*store.DeliveryCommit, n)
	for i := range cs {
		switch i {
		case 3:
			cs[i] = f.commit("ws-b", taken.Delivery.ID, "stolen")
		case 6:
			cs[i] = f.commit("ws-b", own.Delivery.ID, "again")
		default:
			cs[i] = f.commit("ws-b", "", fmt.Sprint("action-", i))
		}
	}
	// an op of raw statements after them reads the rows staged before it, and a failed
	// staged insert does not fail it
	var counted int
	count := func(w *wtx) error {
		counted = 0
		return w.queryRow(`SELECT count(*) FROM deliveries WHERE workspace_id = 'ws-b'`).Scan(&counted)
	}
	res, errs, moreErrs := f.commitTogether(t, cs, count)
	require.NoError(t, moreErrs[0])
	require.Equal(t, n-1, counted, "the earlier one and the batch's new ones (not the refused one, nor the one written again): 1 + 8")
	require.Equal(t, before+2, f.s.batches.Load(), "the held op, then the good ops together")

	seq := int64(2)
	for i, c := range cs {
		if i == 3 {
			require.ErrorIs(t, errs[i], store.ErrAlreadyExists)
			continue
		}
		require.NoError(t, errs[i], "op %d", i)
		seq++
		require.Equal(t, []int64{seq}, res[i].Seqs, "op %d", i)
		if i != 6 {
			f.requireStored(t, c, seq)
		}
	}
	d, err := f.s.GetDelivery(ctx, "ws-b", own.Delivery.ID)
	require.NoError(t, err)
	evs, err := f.s.DeliveryEvents(ctx, "ws-b", d, 10)
	require.NoError(t, err)
	require.Len(t, evs, 2, "the delivery written again lists its first event and the new one")
	d, err = f.s.GetDelivery(ctx, "ws-a", taken.Delivery.ID)
	require.NoError(t, err)
	evs, err = f.s.DeliveryEvents(ctx, "ws-a", d, 10)
	require.NoError(t, err)
	require.Equal(t, "issue.taken", evs[0].Type, "the other workspace's delivery is untouched")
	_, err = f.s.GetDelivery(ctx, "ws-b", taken.Delivery.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	stream, err := f.s.ListEvents(ctx, "ws-b", store.EventFilter{}, 0, 100)
	require.NoError(t, err)
	require.Len(t, stream, n, "the earlier event and the batch's but the refused op's")
}
