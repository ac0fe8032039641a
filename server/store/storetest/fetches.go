package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

// RunFetches runs the conformance tests of store.FetchStore, each as a parallel subtest
// on its own store (open as for RunAll).
func RunFetches(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CommitWithFetches", testCommitWithFetches},
		{"ClaimOnePerSubscriptionInOrder", testClaimOrder},
		{"ClaimWhenDue", testClaimDue},
		{"LeaseExpiry", testFetchLeaseExpiry},
		{"FinishCommitsEventsAndState", testFinishFetch},
		{"FinishWithMore", testFinishMore},
		{"FailRetryGiveUpReplay", testFailFetch},
		{"RequeuedFetchWaitsForRunningOne", testRequeueWaits},
		{"Release", testReleaseFetch},
		{"FetchIsolation", testFetchIsolation},
		{"PruneFetches", testPruneFetches},
		{"ConcurrentClaims", testConcurrentFetchClaims},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// fetchOf is a fetch of delivery d for its subscription, due at the delivery's time.
func fetchOf(d *store.Delivery, data any) *store.Fetch {
	return &store.Fetch{
		ID: newID("fch"), WorkspaceID: d.WorkspaceID, SubscriptionID: d.SubscriptionID, DeliveryID: d.ID,
		DeliveryTime: d.ReceiveTime, Data: data, NextAttemptTime: d.ReceiveTime,
	}
}

// commitFetch commits a delivery of sub received at received, asking for one fetch.
func commitFetch(t *testing.T, s store.Store, sub *store.Subscription, received time.Time, data any) (*store.Delivery, *store.Fetch) {
	t.Helper()
	d := deliveryOf(sub, received)
	f := fetchOf(d, data)
	_, err := s.CommitDeliveryWithFetches(ctxOf(t), &store.DeliveryCommit{Delivery: d}, []*store.Fetch{f})
	require.NoError(t, err)
	return d, f
}

func claim(t *testing.T, s store.Store, now time.Time, edit ...func(*store.FetchClaim)) []*store.Fetch {
	t.Helper()
	c := store.FetchClaim{Now: now, LeaseFor: time.Minute, Limit: 10}
	for _, e := range edit {
		e(&c)
	}
	got, err := s.ClaimFetches(ctxOf(t), c)
	require.NoError(t, err)
	return got
}

func fetchIDs(fs []*store.Fetch) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.ID
	}
	return out
}

func getDelivery(t *testing.T, s store.Store, ws, id string) *store.Delivery {
	t.Helper()
	d, err := s.GetDelivery(ctxOf(t), ws, id)
	require.NoError(t, err)
	return d
}

func testCommitWithFetches(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	sub := mkSubscription(t, s, mkConnection(t, s, ws))
	d := deliveryOf(sub, at(time.Second))
	ev := eventOf(sub, "ping", "", d.ReceiveTime)
	ev.DeliveryID = d.ID
	d.EventCount = 1
	data := map[string]any{"webhook": map[string]any{"id": "ach00000000000001"}, "cursor": int64(9007199254740993)}
	f := fetchOf(d, data)
	res, err := s.CommitDeliveryWithFetches(ctx, &store.DeliveryCommit{Delivery: d, Events: []*store.Event{ev}}, []*store.Fetch{f})
	require.NoError(t, err)
	require.Equal(t, 1, res.Inserted)
	require.Equal(t, store.FetchPending, d.FetchStatus)
	require.Equal(t, store.FetchPending, f.Status)

	got := getDelivery(t, s, ws, d.ID)
	require.Equal(t, store.FetchPending, got.FetchStatus)
	require.Zero(t, got.FetchAttempts)
	require.Equal(t, store.OutcomeOK, got.Outcome)
	listed, _, err := s.ListDeliveries(ctx, ws, store.DeliveryFilter{SubscriptionID: sub.ID}, store.Page{})
	require.NoError(t, err)
	require.Len(t, listed, 1)
	require.Equal(t, store.FetchPending, listed[0].FetchStatus)

	fs, err := s.DeliveryFetches(ctx, ws, d.ID)
	require.NoError(t, err)
	require.Len(t, fs, 1)
	require.Equal(t, f.ID, fs[0].ID)
	require.Equal(t, sub.ID, fs[0].SubscriptionID)
	require.Equal(t, data, fs[0].Data, "data keeps integers exact")
	require.True(t, d.ReceiveTime.Equal(fs[0].DeliveryTime))
	require.Equal(t, store.FetchPending, fs[0].Status)

	// A delivery without fetches has no fetch status.
	plain := deliveryOf(sub, at(2*time.Second))
	_, err = s.CommitDeliveryWithFetches(ctx, &store.DeliveryCommit{Delivery: plain}, nil)
	require.NoError(t, err)
	require.Empty(t, getDelivery(t, s, ws, plain.ID).FetchStatus)

	// A fetch that belongs to another delivery is refused, and nothing is written.
	other := deliveryOf(sub, at(3*time.Second))
	bad := fetchOf(d, nil)
	_, err = s.CommitDeliveryWithFetches(ctx, &store.DeliveryCommit{Delivery: other}, []*store.Fetch{bad})
	require.Error(t, err)
	_, err = s.GetDelivery(ctx, ws, other.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testClaimOrder(t *testing.T, s store.Store) {
	ws := mkWorkspace(t, s)
	c := mkConnection(t, s, ws)
	a, b := mkSubscription(t, s, c), mkSubscription(t, s, c)
	_, a1 := commitFetch(t, s, a, at(time.Second), "a1")
	_, b1 := commitFetch(t, s, b, at(2*time.Second), "b1")
	_, a2 := commitFetch(t, s, a, at(3*time.Second), "a2")

	now := at(time.Minute)
	got := claim(t, s, now)
	require.ElementsMatch(t, []string{a1.ID, b1.ID}, fetchIDs(got), "one per subscription, the oldest")
	for _, f := range got {
		require.NotEmpty(t, f.LeaseToken)
		require.True(t, f.LeaseUntil.Equal(now.Add(time.Minute)))
	}
	require.Empty(t, claim(t, s, now), "a subscription with a running lease waits")

	var lease *store.Fetch
	for _, f := range got {
		if f.ID == a1.ID {
			lease = f
		}
	}
	_, err := s.FinishFetch(ctxOf(t), lease, &store.FetchDone{})
	require.NoError(t, err)
	next := claim(t, s, now)
	require.Equal(t, []string{a2.ID}, fetchIDs(next), "the next of the subscription, once the first is done")
	require.Equal(t, "a2", next[0].Data)

	// Limit, and a claim narrowed to one subscription.
	_, err = s.FinishFetch(ctxOf(t), next[0], &store.FetchDone{})
	require.NoError(t, err)
	_, c1 := commitFetch(t, s, mkSubscription(t, s, c), at(4*time.Second), nil)
	_, d1 := commitFetch(t, s, mkSubscription(t, s, c), at(5*time.Second), nil)
	require.Equal(t, []string{c1.ID}, fetchIDs(claim(t, s, now, func(c *store.FetchClaim) { c.Limit = 1 })))
	require.Equal(t, []string{d1.ID}, fetchIDs(claim(t, s, now, func(c *store.FetchClaim) { c.SubscriptionID = d1.SubscriptionID })))
}

func testClaimDue(t *testing.T, s store.Store) {
	ws := mkWorkspace(t, s)
	sub := mkSubscription(t, s, mkConnection(t, s, ws))
	d := deliveryOf(sub, at(0))
	f := fetchOf(d, nil)
	f.NextAttemptTime = at(time.Hour)
	_, err := s.CommitDeliveryWithFetches(ctxOf(t), &store.DeliveryCommit{Delivery: d}, []*store.Fetch{f})
	require.NoError(t, err)
	require.Empty(t, claim(t, s, at(time.Minute)))
	// Due names a later time than the clock of the lease.
	require.Len(t, claim(t, s, at(time.Minute), func(c *store.FetchClaim) { c.Due = at(time.Hour) }), 1)
}

func testFetchLeaseExpiry(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	sub := mkSubscription(t, s, mkConnection(t, s, ws))
	d, _ := commitFetch(t, s, sub, at(0), nil)
	first := claim(t, s, at(time.Second))
	require.Len(t, first, 1)
	require.Empty(t, claim(t, s, at(30*time.Second)), "leased")
	second := claim(t, s, at(2*time.Minute)) // the first lease (1m) ended
	require.Len(t, second, 1)
	require.NotEqual(t, first[0].LeaseToken, second[0].LeaseToken)

	// The run that lost its lease writes nothing.
	ev := eventOf(sub, "changed", "x1", d.ReceiveTime)
	ev.DeliveryID = d.ID
	_, err := s.FinishFetch(ctx, first[0], &store.FetchDone{Events: []*store.Event{ev}})
	require.ErrorIs(t, err, store.ErrLeaseLost)
	require.Empty(t, allEvents(t, s, ws, store.EventFilter{}))
	require.ErrorIs(t, s.FailFetch(ctx, first[0], store.FetchFailure{Error: "x", NextAttemptTime: at(time.Hour)}), store.ErrLeaseLost)
	fs, err := s.DeliveryFetches(ctx, ws, d.ID)
	require.NoError(t, err)
	require.Zero(t, fs[0].Attempts)

	_, err = s.FinishFetch(ctx, second[0], &store.FetchDone{Events: []*store.Event{ev}})
	require.NoError(t, err)
	require.Len(t, allEvents(t, s, ws, store.EventFilter{}), 1)
}

func testFinishFetch(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	sub := mkSubscription(t, s, mkConnection(t, s, ws))
	d, _ := commitFetch(t, s, sub, at(time.Second), nil)
	got := claim(t, s, at(time.Minute))
	require.Len(t, got, 1)

	e1, e2 := eventOf(sub, "record.created", "p1", d.ReceiveTime), eventOf(sub, "record.updated", "p2", d.ReceiveTime)
	for _, e := range []*store.Event{e1, e2} {
		e.DeliveryID = d.ID
	}
	res, err := s.FinishFetch(ctx, got[0], &store.FetchDone{
		Events: []*store.Event{e1, e2},
		StateUpdate: store.StateUpdate{SubscriptionID: sub.ID, Change: func(stored []byte) ([]byte, error) {
			return append(append([]byte(nil), stored...), "+cursor"...), nil
		}},
	})
	require.NoError(t, err)
	require.Equal(t, 2, res.Inserted)
	require.Positive(t, e1.Seq)
	require.Greater(t, e2.Seq, e1.Seq)

	st, err := s.GetSubscription(ctx, ws, sub.ID)
	require.NoError(t, err)
	require.Equal(t, "sealed-state+cursor", string(st.State))
	dd := getDelivery(t, s, ws, d.ID)
	require.Equal(t, store.FetchOK, dd.FetchStatus)
	require.Equal(t, 2, dd.EventCount)
	require.Equal(t, store.OutcomeOK, dd.Outcome)
	evs, err := s.DeliveryEvents(ctx, ws, dd, 10)
	require.NoError(t, err)
	require.Len(t, evs, 2, "fetched events are the delivery's")
	fs, err := s.DeliveryFetches(ctx, ws, d.ID)
	require.NoError(t, err)
	require.Empty(t, fs, "a finished fetch is gone")
	require.Empty(t, claim(t, s, at(time.Minute)))

	// Duplicates (by external id) are skipped; the count grows by what was new.
	d2, _ := commitFetch(t, s, sub, at(2*time.Second), nil)
	got = claim(t, s, at(time.Minute))
	again, e3 := eventOf(sub, "record.updated", "p2", d2.ReceiveTime), eventOf(sub, "record.deleted", "p3", d2.ReceiveTime)
	again.DeliveryID, e3.DeliveryID = d2.ID, d2.ID
	res, err = s.FinishFetch(ctx, got[0], &store.FetchDone{Events: []*store.Event{again, e3}})
	require.NoError(t, err)
	require.Equal(t, 1, res.Inserted)
	require.Equal(t, 1, res.Duplicates)
	require.Equal(t, 1, getDelivery(t, s, ws, d2.ID).EventCount)
}

func testFinishMore(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	sub := mkSubscription(t, s, mkConnection(t, s, ws))
	d, f := commitFetch(t, s, sub, at(time.Second), map[string]any{"n": int64(1)})
	_, later := commitFetch(t, s, sub, at(2*time.Second), nil)
	got := claim(t, s, at(time.Minute))
	require.Equal(t, []string{f.ID}, fetchIDs(got))
	ev := eventOf(sub, "page", "page-1", d.ReceiveTime)
	ev.DeliveryID = d.ID
	_, err := s.FinishFetch(ctx, got[0], &store.FetchDone{Events: []*store.Event{ev}, More: true})
	require.NoError(t, err)
	require.Equal(t, 1, got[0].Runs)

	dd := getDelivery(t, s, ws, d.ID)
	require.Equal(t, store.FetchPending, dd.FetchStatus, "the fetch goes on")
	require.Equal(t, 1, dd.EventCount)
	// It stays first in line, ahead of the later delivery's fetch.
	next := claim(t, s, at(time.Minute))
	require.Equal(t, []string{f.ID}, fetchIDs(next))
	require.Equal(t, 1, next[0].Runs)
	require.Equal(t, map[string]any{"n": int64(1)}, next[0].Data)
	_, err = s.FinishFetch(ctx, next[0], &store.FetchDone{})
	require.NoError(t, err)
	require.Equal(t, store.FetchOK, getDelivery(t, s, ws, d.ID).FetchStatus)
	require.Equal(t, []string{later.ID}, fetchIDs(claim(t, s, at(time.Minute))))
}

func testFailFetch(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	sub := mkSubscription(t, s, mkConnection(t, s, ws))
	d, f := commitFetch(t, s, sub, at(time.Second), nil)
	_, later := commitFetch(t, s, sub, at(2*time.Second), nil)

	got := claim(t, s, at(time.Minute))
	require.Equal(t, []string{f.ID}, fetchIDs(got))
	require.NoError(t, s.FailFetch(ctx, got[0], store.FetchFailure{
		Error: "GET /payloads answered 503", DeliveryError: "fetch attempt 1 failed: 503", NextAttemptTime: at(2 * time.Minute),
	}))
	require.Equal(t, store.FetchRetrying, got[0].Status)
	require.Equal(t, 1, got[0].Attempts)
	dd := getDelivery(t, s, ws, d.ID)
	require.Equal(t, store.FetchRetrying, dd.FetchStatus)
	require.Equal(t, 1, dd.FetchAttempts)
	require.Equal(t, store.OutcomeOK, dd.Outcome, "retried: the delivery is not failed")
	require.Equal(t, "fetch attempt 1 failed: 503", dd.Error)
	require.Empty(t, claim(t, s, at(90*time.Second)), "not before its next attempt, and the later one waits")

	got = claim(t, s, at(2*time.Minute))
	require.Equal(t, []string{f.ID}, fetchIDs(got))
	require.Equal(t, 1, got[0].Attempts)
	require.Equal(t, "GET /payloads answered 503", got[0].LastError)
	require.NoError(t, s.FailFetch(ctx, got[0], store.FetchFailure{Error: "503 again", DeliveryError: "fetch failed after 2 attempts: 503", GiveUp: true}))
	dd = getDelivery(t, s, ws, d.ID)
	require.Equal(t, store.FetchFailed, dd.FetchStatus)
	require.Equal(t, 2, dd.FetchAttempts)
	require.Equal(t, store.OutcomeFailed, dd.Outcome)
	require.Equal(t, "fetch failed after 2 attempts: 503", dd.Error)
	failed, _, err := s.ListDeliveries(ctx, ws, store.DeliveryFilter{Outcome: store.OutcomeFailed}, store.Page{})
	require.NoError(t, err)
	require.Len(t, failed, 1)

	// A given-up fetch does not hold up the subscription's next one.
	got = claim(t, s, at(3*time.Minute))
	require.Equal(t, []string{later.ID}, fetchIDs(got))
	_, err = s.FinishFetch(ctx, got[0], &store.FetchDone{})
	require.NoError(t, err)

	// Replay: queued again from zero attempts, the delivery OK again.
	n, err := s.RetryFailedFetches(ctx, ws, d.ID, at(4*time.Minute))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	dd = getDelivery(t, s, ws, d.ID)
	require.Equal(t, store.FetchPending, dd.FetchStatus)
	require.Equal(t, store.OutcomeOK, dd.Outcome)
	require.Empty(t, dd.Error)
	require.Equal(t, 1, dd.ReplayCount)
	got = claim(t, s, at(4*time.Minute))
	require.Equal(t, []string{f.ID}, fetchIDs(got))
	require.Zero(t, got[0].Attempts)
	_, err = s.FinishFetch(ctx, got[0], &store.FetchDone{})
	require.NoError(t, err)
	require.Equal(t, store.FetchOK, getDelivery(t, s, ws, d.ID).FetchStatus)
	n, err = s.RetryFailedFetches(ctx, ws, d.ID, at(5*time.Minute))
	require.NoError(t, err)
	require.Zero(t, n, "nothing failed any more")
}

func testRequeueWaits(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	sub := mkSubscription(t, s, mkConnection(t, s, ws))
	d, _ := commitFetch(t, s, sub, at(time.Second), nil)
	got := claim(t, s, at(time.Minute))
	require.NoError(t, s.FailFetch(ctx, got[0], store.FetchFailure{Error: "x", DeliveryError: "x", GiveUp: true}))
	_, later := commitFetch(t, s, sub, at(2*time.Second), nil)
	running := claim(t, s, at(time.Minute))
	require.Equal(t, []string{later.ID}, fetchIDs(running))

	// The failed one, queued again, is older, but the subscription has a run in progress.
	_, err := s.RetryFailedFetches(ctx, ws, d.ID, at(time.Minute))
	require.NoError(t, err)
	require.Empty(t, claim(t, s, at(time.Minute)), "one run per subscription at a time")
	_, err = s.FinishFetch(ctx, running[0], &store.FetchDone{})
	require.NoError(t, err)
	require.Len(t, claim(t, s, at(time.Minute)), 1)
}

func testReleaseFetch(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	sub := mkSubscription(t, s, mkConnection(t, s, ws))
	d, f := commitFetch(t, s, sub, at(time.Second), nil)
	got := claim(t, s, at(time.Minute))
	stale := *got[0]
	require.NoError(t, s.ReleaseFetch(ctx, got[0]))
	again := claim(t, s, at(time.Minute))
	require.Equal(t, []string{f.ID}, fetchIDs(again), "released: claimable at once")
	require.Zero(t, again[0].Attempts, "a release is not a failed run")
	require.NoError(t, s.ReleaseFetch(ctx, &stale), "a lease not held any more is left alone")
	require.Empty(t, claim(t, s, at(time.Minute)), "the newer lease holds")
	require.Equal(t, store.FetchPending, getDelivery(t, s, ws, d.ID).FetchStatus)
}

func testFetchIsolation(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws, other := mkWorkspace(t, s), mkWorkspace(t, s)
	sub := mkSubscription(t, s, mkConnection(t, s, ws))
	d, _ := commitFetch(t, s, sub, at(time.Second), nil)
	got := claim(t, s, at(time.Minute))
	require.NoError(t, s.FailFetch(ctx, got[0], store.FetchFailure{Error: "x", DeliveryError: "x", GiveUp: true}))

	fs, err := s.DeliveryFetches(ctx, other, d.ID)
	require.NoError(t, err)
	require.Empty(t, fs)
	n, err := s.RetryFailedFetches(ctx, other, d.ID, at(time.Minute))
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, store.FetchFailed, getDelivery(t, s, ws, d.ID).FetchStatus)
}

func testPruneFetches(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	c := mkConnection(t, s, ws)
	sub, sub2 := mkSubscription(t, s, c), mkSubscription(t, s, c)
	old, _ := commitFetch(t, s, sub, at(time.Second), nil)
	got := claim(t, s, at(time.Minute))
	require.NoError(t, s.FailFetch(ctx, got[0], store.FetchFailure{Error: "x", DeliveryError: "x", GiveUp: true}))
	pending, _ := commitFetch(t, s, sub2, at(2*time.Second), nil)

	fs, err := s.DeliveryFetches(ctx, ws, old.ID)
	require.NoError(t, err)
	require.Len(t, fs, 1)
	n, err := s.PruneFetches(ctx, fs[0].CreateTime)
	require.NoError(t, err)
	require.Zero(t, n, "created at the cutoff: kept")
	n, err = s.PruneFetches(ctx, fs[0].CreateTime.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	fs, err = s.DeliveryFetches(ctx, ws, old.ID)
	require.NoError(t, err)
	require.Empty(t, fs)
	fs, err = s.DeliveryFetches(ctx, ws, pending.ID)
	require.NoError(t, err)
	require.Len(t, fs, 1, "unfinished fetches are never pruned")
}

// Claims racing (replicas) never run two fetches of one subscription at once, and each
// subscription's fetches are claimed in the order of their deliveries.
func testConcurrentFetchClaims(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	c := mkConnection(t, s, ws)
	const subs, each = 3, 6
	var want []string
	order := map[string][]string{} // subscription → its fetch ids, in delivery order
	for i := range subs {
		sub := mkSubscription(t, s, c)
		for j := range each {
			_, f := commitFetch(t, s, sub, at(time.Duration(i*each+j)*time.Millisecond), nil)
			order[sub.ID] = append(order[sub.ID], f.ID)
			want = append(want, f.ID)
		}
	}
	var mu sync.Mutex
	busy := map[string]bool{}
	done := map[string][]string{}
	finished := 0
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for range 200 {
				mu.Lock()
				if finished == len(want) {
					mu.Unlock()
					return
				}
				mu.Unlock()
				got, err := s.ClaimFetches(ctx, store.FetchClaim{Now: at(time.Hour), LeaseFor: time.Hour, Limit: 2})
				if !assertNoError(t, err) {
					return
				}
				for _, f := range got {
					// Claims are recorded as they happen: the next fetch of a subscription
					// can only be claimed once this one is finished, below.
					mu.Lock()
					if busy[f.SubscriptionID] {
						mu.Unlock()
						t.Errorf("two fetches of subscription %s claimed at once", f.SubscriptionID)
						return
					}
					busy[f.SubscriptionID] = true
					done[f.SubscriptionID] = append(done[f.SubscriptionID], f.ID)
					mu.Unlock()
					time.Sleep(time.Millisecond) // a run: a second claim would find it busy
					mu.Lock()
					busy[f.SubscriptionID] = false
					finished++
					mu.Unlock()
					if _, err := s.FinishFetch(ctx, f, &store.FetchDone{}); !assertNoError(t, err) {
						return
					}
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, order, done, "every fetch once, each subscription's in order")
	require.Empty(t, claim(t, s, at(3*time.Hour)), "every fetch finished (no lease left to expire)")
}

// assertNoError reports err as a test error (from a goroutine) and whether there was none.
func assertNoError(t *testing.T, err error) bool {
	if err != nil {
		t.Errorf("unexpected error: %v", err)
		return false
	}
	return true
}
