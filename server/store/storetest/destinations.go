package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

// RunDestinations runs the conformance tests of store.DestinationStore, each as a
// parallel subtest on its own store (open as for RunAll).
func RunDestinations(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Destinations", testDestinations},
		{"DestinationQueue", testDestinationQueue},
		{"DestinationRetry", testDestinationRetry},
		{"DestinationLease", testDestinationLease},
		{"DestinationConnectionEvents", testDestinationConnectionEvents},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func destinationOf(ws, id string) *store.Destination {
	return &store.Destination{
		WorkspaceID: ws, ID: id, WebhookID: "crm",
		Filter:      store.EventFilter{SubscriptionIDs: []string{"sub-1", "sub-2"}, Types: []string{"issue.opened"}},
		RetryWindow: 24 * time.Hour, Status: store.DestinationActive, Cursor: 41,
		CreateTime: base, UpdateTime: base,
	}
}

func mkDestination(t *testing.T, s store.Store, ws, id string) *store.Destination {
	t.Helper()
	d := destinationOf(ws, id)
	require.NoError(t, s.CreateDestination(ctxOf(t), d))
	return d
}

func testDestinations(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws1, ws2 := mkWorkspace(t, s), mkWorkspace(t, s)
	if ws2 < ws1 {
		ws1, ws2 = ws2, ws1
	}
	d := mkDestination(t, s, ws1, "partner")
	got, err := s.GetDestination(ctx, ws1, "partner")
	require.NoError(t, err)
	require.Equal(t, d, got)

	require.ErrorIs(t, s.CreateDestination(ctx, destinationOf(ws1, "partner")), store.ErrAlreadyExists)
	require.ErrorIs(t, s.CreateDestination(ctx, destinationOf(newID("nope"), "x")), store.ErrNotFound)
	mkDestination(t, s, ws2, "partner") // the same id in another workspace
	_, err = s.GetDestination(ctx, ws1, "other")
	require.ErrorIs(t, err, store.ErrNotFound)

	// Pages in creation order.
	for i := range 4 {
		mkDestination(t, s, ws1, fmt.Sprintf("d%d", i))
	}
	var ids []string
	for p := (store.Page{Size: 2}); ; {
		page, next, err := s.ListDestinations(ctx, ws1, p)
		require.NoError(t, err)
		for _, d := range page {
			ids = append(ids, d.ID)
		}
		if next == "" {
			break
		}
		p.Token = next
	}
	require.Equal(t, []string{"partner", "d0", "d1", "d2", "d3"}, ids)
	_, _, err = s.ListDestinations(ctx, ws1, store.Page{Token: "garbage"})
	require.ErrorIs(t, err, store.ErrInvalidPageToken)

	// Update replaces the webhook, filter and window; status is set on its own.
	upd := &store.Destination{WorkspaceID: ws1, ID: "partner", WebhookID: "other", RetryWindow: time.Hour}
	require.NoError(t, s.UpdateDestination(ctx, upd))
	require.NoError(t, s.SetDestinationStatus(ctx, ws1, "partner", store.DestinationDisabled, "the endpoint answered 410 Gone"))
	got, err = s.GetDestination(ctx, ws1, "partner")
	require.NoError(t, err)
	require.Equal(t, "other", got.WebhookID)
	require.Empty(t, got.Filter.SubscriptionIDs)
	require.Equal(t, time.Hour, got.RetryWindow)
	require.Equal(t, store.DestinationDisabled, got.Status)
	require.Equal(t, "the endpoint answered 410 Gone", got.StatusReason)
	require.Equal(t, int64(41), got.Cursor, "the cursor is not the update's")
	require.NotEqual(t, base, got.UpdateTime, "the update sets UpdateTime")
	require.ErrorIs(t, s.UpdateDestination(ctx, destinationOf(ws1, "missing")), store.ErrNotFound)
	require.ErrorIs(t, s.SetDestinationStatus(ctx, ws2, "d0", store.DestinationPaused, ""), store.ErrNotFound)

	byStatus := func(status string) []string {
		ds, err := s.ListDestinationsByStatus(ctx, status)
		require.NoError(t, err)
		var out []string
		for _, d := range ds {
			out = append(out, d.WorkspaceID+"/"+d.ID)
		}
		return out
	}
	require.Equal(t, []string{ws1 + "/d0", ws1 + "/d1", ws1 + "/d2", ws1 + "/d3", ws2 + "/partner"}, byStatus(store.DestinationActive))
	require.Equal(t, []string{ws1 + "/partner"}, byStatus(store.DestinationDisabled))

	require.NoError(t, s.DeleteDestination(ctx, ws1, "partner"))
	require.ErrorIs(t, s.DeleteDestination(ctx, ws1, "partner"), store.ErrNotFound)
	_, err = s.GetDestination(ctx, ws2, "partner")
	require.NoError(t, err, "another workspace's destination stays")
}

func queued(seq int64, sub string) *store.DestinationEvent {
	return &store.DestinationEvent{Seq: seq, EventID: fmt.Sprintf("ev-%d", seq), SubscriptionID: sub,
		State: store.DestinationEventPending, NextAttemptTime: base}
}

func headSeqs(t *testing.T, s store.Store, ws, id string) []int64 {
	t.Helper()
	heads, err := s.DestinationHeads(ctxOf(t), ws, id, 10)
	require.NoError(t, err)
	out := make([]int64, len(heads))
	for i, h := range heads {
		require.Equal(t, ws, h.WorkspaceID)
		require.Equal(t, id, h.DestinationID)
		out[i] = h.Seq
	}
	return out
}

func testDestinationQueue(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	mkDestination(t, s, ws, "d")
	// Two subscriptions, interleaved.
	evs := []*store.DestinationEvent{queued(42, "a"), queued(43, "b"), queued(44, "a"), queued(45, "b"), queued(46, "a")}
	require.NoError(t, s.EnqueueDestinationEvents(ctx, ws, "d", evs, 50))
	d, err := s.GetDestination(ctx, ws, "d")
	require.NoError(t, err)
	require.Equal(t, int64(50), d.Cursor)
	require.Equal(t, int64(5), d.Pending)

	// Queuing again keeps what is queued; the cursor never goes back.
	again := queued(42, "a")
	again.Attempts = 9
	require.NoError(t, s.EnqueueDestinationEvents(ctx, ws, "d", []*store.DestinationEvent{again}, 45))
	d, err = s.GetDestination(ctx, ws, "d")
	require.NoError(t, err)
	require.Equal(t, int64(50), d.Cursor)
	require.Equal(t, int64(5), d.Pending)
	require.ErrorIs(t, s.EnqueueDestinationEvents(ctx, ws, "nope", nil, 1), store.ErrNotFound)

	// One head per subscription: its lowest seq.
	require.Equal(t, []int64{42, 43}, headSeqs(t, s, ws, "d"))
	heads, err := s.DestinationHeads(ctx, ws, "d", 10)
	require.NoError(t, err)
	require.Equal(t, "ev-42", heads[0].EventID)
	require.Equal(t, 0, heads[0].Attempts, "the first queuing is kept")

	// A failed attempt pushes 42 later: b's head is due first; a's head stays 42.
	fail := heads[0]
	fail.Attempts, fail.FirstAttemptTime, fail.NextAttemptTime = 1, at(time.Second), at(time.Minute)
	fail.LastStatus, fail.LastError = 503, "endpoint answered 503 Service Unavailable"
	require.NoError(t, s.UpdateDestinationEvent(ctx, fail))
	require.Equal(t, []int64{43, 42}, headSeqs(t, s, ws, "d"))

	// Acknowledged: removed and counted; the subscription's next event is its head.
	require.NoError(t, s.CompleteDestinationEvent(ctx, ws, "d", 43, at(2*time.Second)))
	require.ErrorIs(t, s.CompleteDestinationEvent(ctx, ws, "d", 43, at(2*time.Second)), store.ErrNotFound)
	require.Equal(t, []int64{45, 42}, headSeqs(t, s, ws, "d"))
	d, err = s.GetDestination(ctx, ws, "d")
	require.NoError(t, err)
	require.Equal(t, int64(1), d.Delivered)
	require.Equal(t, at(2*time.Second), d.LastDeliveryTime)

	// Parked: no longer a head; the subscription goes on with its next event.
	fail.State, fail.NextAttemptTime = store.DestinationEventFailed, time.Time{}
	require.NoError(t, s.UpdateDestinationEvent(ctx, fail))
	require.Equal(t, []int64{44, 45}, headSeqs(t, s, ws, "d"))
	failed, next, err := s.ListDestinationEvents(ctx, ws, "d", store.DestinationEventFailed, store.Page{})
	require.NoError(t, err)
	require.Empty(t, next)
	require.Len(t, failed, 1)
	require.Equal(t, fail, failed[0])
	got, err := s.GetDestinationEvent(ctx, ws, "d", 42)
	require.NoError(t, err)
	require.Equal(t, fail, got)
	_, err = s.GetDestinationEvent(ctx, ws, "d", 43)
	require.ErrorIs(t, err, store.ErrNotFound, "delivered")
	pending, _, err := s.ListDestinationEvents(ctx, ws, "d", store.DestinationEventPending, store.Page{Size: 2})
	require.NoError(t, err)
	require.Equal(t, int64(44), pending[0].Seq)
	all, _, err := s.ListDestinationEvents(ctx, ws, "d", "", store.Page{})
	require.NoError(t, err)
	require.Len(t, all, 4)
	d, err = s.GetDestination(ctx, ws, "d")
	require.NoError(t, err)
	require.Equal(t, []int64{3, 1}, []int64{d.Pending, d.Failed}, "pending, failed")

	// Retried, the parked event is its subscription's head again (ahead of 44).
	n, err := s.RetryDestinationEvents(ctx, ws, "d", 42, at(time.Hour))
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	require.Equal(t, []int64{45, 42}, headSeqs(t, s, ws, "d"))
	d, err = s.GetDestination(ctx, ws, "d")
	require.NoError(t, err)
	require.Equal(t, []int64{4, 0}, []int64{d.Pending, d.Failed})

	missing := queued(99, "a")
	missing.WorkspaceID, missing.DestinationID = ws, "d"
	require.ErrorIs(t, s.UpdateDestinationEvent(ctx, missing), store.ErrNotFound)

	// Another workspace sees none of it; deleting the destination drops its queue.
	other := mkWorkspace(t, s)
	_, _, err = s.ListDestinationEvents(ctx, other, "d", "", store.Page{})
	require.NoError(t, err)
	heads, err = s.DestinationHeads(ctx, other, "d", 10)
	require.NoError(t, err)
	require.Empty(t, heads)
	require.NoError(t, s.DeleteDestination(ctx, ws, "d"))
	mkDestination(t, s, ws, "d")
	require.Empty(t, headSeqs(t, s, ws, "d"))
}

func testDestinationRetry(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	mkDestination(t, s, ws, "d")
	var evs []*store.DestinationEvent
	for seq := int64(1); seq <= 3; seq++ {
		e := queued(seq, fmt.Sprintf("sub-%d", seq))
		e.State, e.Attempts, e.FirstAttemptTime, e.LastError = store.DestinationEventFailed, 7, base, "refused"
		evs = append(evs, e)
	}
	require.NoError(t, s.EnqueueDestinationEvents(ctx, ws, "d", evs, 3))
	require.Empty(t, headSeqs(t, s, ws, "d"))

	n, err := s.RetryDestinationEvents(ctx, ws, "d", 2, at(time.Hour))
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	heads, err := s.DestinationHeads(ctx, ws, "d", 10)
	require.NoError(t, err)
	require.Len(t, heads, 1)
	require.Equal(t, int64(2), heads[0].Seq)
	require.Equal(t, 0, heads[0].Attempts)
	require.True(t, heads[0].FirstAttemptTime.IsZero())
	require.Equal(t, at(time.Hour), heads[0].NextAttemptTime)
	require.Equal(t, "refused", heads[0].LastError, "the last error stays visible")

	_, err = s.RetryDestinationEvents(ctx, ws, "d", 2, base)
	require.ErrorIs(t, err, store.ErrNotFound, "2 is no longer failed")
	n, err = s.RetryDestinationEvents(ctx, ws, "d", 0, base)
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	require.Equal(t, []int64{1, 3, 2}, headSeqs(t, s, ws, "d"))
	n, err = s.RetryDestinationEvents(ctx, ws, "d", 0, base)
	require.NoError(t, err)
	require.Zero(t, n)
}

func testDestinationLease(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	mkDestination(t, s, ws, "d")
	acquire := func(owner string, now time.Duration) bool {
		t.Helper()
		ok, err := s.AcquireDestinationLease(ctx, ws, "d", owner, at(now), at(now+30*time.Second))
		require.NoError(t, err)
		return ok
	}
	require.True(t, acquire("a", 0))
	require.False(t, acquire("b", time.Second), "a holds it")
	require.True(t, acquire("a", 20*time.Second), "renewed until 50s")
	require.False(t, acquire("b", 40*time.Second))
	require.True(t, acquire("b", 51*time.Second), "a's lease expired")
	require.NoError(t, s.ReleaseDestinationLease(ctx, ws, "d", "a"), "not a's: nothing happens")
	require.False(t, acquire("a", 52*time.Second))
	require.NoError(t, s.ReleaseDestinationLease(ctx, ws, "d", "b"))
	require.True(t, acquire("a", 53*time.Second), "released")
	_, err := s.AcquireDestinationLease(ctx, ws, "nope", "a", base, base)
	require.ErrorIs(t, err, store.ErrNotFound)
}

// Connection events have no subscription: each connection's are a lane of their own.
func testDestinationConnectionEvents(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	mkDestination(t, s, ws, "d")
	conn := func(seq int64, c string) *store.DestinationEvent {
		e := queued(seq, "")
		e.ConnectionID = c
		return e
	}
	sub := queued(3, "sub")
	sub.ConnectionID = "conn-a"
	require.NoError(t, s.EnqueueDestinationEvents(ctx, ws, "d",
		[]*store.DestinationEvent{conn(1, "conn-a"), conn(2, "conn-b"), sub, conn(4, "conn-a")}, 4))
	require.Equal(t, []int64{1, 2, 3}, headSeqs(t, s, ws, "d"), "conn-a's connection events, conn-b's, and the subscription's")
	got, err := s.GetDestinationEvent(ctx, ws, "d", 1)
	require.NoError(t, err)
	require.Empty(t, got.SubscriptionID)
	require.Equal(t, "conn-a", got.ConnectionID)
	require.Equal(t, "connection/conn-a", got.Lane())
	require.NoError(t, s.CompleteDestinationEvent(ctx, ws, "d", 1, base))
	require.Equal(t, []int64{2, 3, 4}, headSeqs(t, s, ws, "d"))
}
