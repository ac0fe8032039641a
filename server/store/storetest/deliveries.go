package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/server/store"
)

func testCommitDelivery(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	c := mkConnection(t, s, ws)
	sub := mkSubscription(t, s, c)

	seq, err := s.LastSeq(ctx, ws)
	require.NoError(t, err)
	require.Zero(t, seq)

	d := deliveryOf(sub, at(time.Minute))
	events := []*store.Event{
		eventOf(sub, "opened", "gh-1", at(time.Minute)),
		eventOf(sub, "closed", "", at(time.Minute)),
		eventOf(sub, "opened", "", at(2*time.Minute)),
	}
	res := commit(t, s, d, events...)
	require.Equal(t, 3, res.Inserted)
	require.Zero(t, res.Duplicates)
	require.Len(t, res.Seqs, 3)
	requireIncreasing(t, res.Seqs)
	require.Positive(t, res.Seqs[0])
	require.Equal(t, res.Seqs[2], res.MaxSeq)
	require.Equal(t, res.Seqs, seqsOf(events), "Seq is set on the given events")

	got := allEvents(t, s, ws, store.EventFilter{})
	for _, e := range got {
		require.Equal(t, eventRecordJSON, e.RecordJSON, "the record's JSON text as stored: keys sorted, integers exact")
		e.RecordJSON = ""
	}
	require.Equal(t, events, got, "every field round-trips, records keep int64")

	seq, err = s.LastSeq(ctx, ws)
	require.NoError(t, err)
	require.Equal(t, res.MaxSeq, seq)

	gotSub, err := s.GetSubscription(ctx, ws, sub.ID)
	require.NoError(t, err)
	require.True(t, gotSub.LastEventTime.Equal(at(2*time.Minute)), "LastEventTime is the newest inserted event: %v", gotSub.LastEventTime)

	gotD, err := s.GetDelivery(ctx, ws, d.ID)
	require.NoError(t, err)
	require.Equal(t, d, gotD)

	// A later commit gets higher seqs.
	more := eventOf(sub, "opened", "", at(3*time.Minute))
	res2 := commit(t, s, deliveryOf(sub, at(3*time.Minute)), more)
	require.Greater(t, res2.MaxSeq, res.MaxSeq)

	// A delivery without events (a rejected request).
	rej := deliveryOf(sub, at(4*time.Minute))
	rej.Outcome, rej.StatusCode, rej.Error = store.OutcomeRejected, 401, "bad signature"
	res3 := commit(t, s, rej)
	require.Zero(t, res3.Inserted)
	require.Zero(t, res3.MaxSeq)
	require.Empty(t, res3.Seqs)
	gotD, err = s.GetDelivery(ctx, ws, rej.ID)
	require.NoError(t, err)
	require.Equal(t, rej, gotD)
	_, err = s.GetDelivery(ctx, ws, "no-such-delivery")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testDuplicates(t *testing.T, s store.Store) {
	ws := mkWorkspace(t, s)
	c := mkConnection(t, s, ws)
	sub, sub2 := mkSubscription(t, s, c), mkSubscription(t, s, c)

	res := commit(t, s, deliveryOf(sub, base), eventOf(sub, "opened", "x-1", base))
	require.Equal(t, 1, res.Inserted)

	// A re-delivery: skipped, seq 0, reported as a duplicate.
	dupEv := eventOf(sub, "opened", "x-1", at(time.Second))
	dup := deliveryOf(sub, at(time.Second))
	res = commit(t, s, dup, dupEv)
	require.Equal(t, 0, res.Inserted)
	// The delivery records it, in the store and in the given record.
	require.Equal(t, store.OutcomeDuplicate, dup.Outcome)
	require.Zero(t, dup.EventCount)
	got, err := s.GetDelivery(ctxOf(t), ws, dup.ID)
	require.NoError(t, err)
	require.Equal(t, store.OutcomeDuplicate, got.Outcome)
	require.Zero(t, got.EventCount)
	require.Equal(t, 1, res.Duplicates)
	require.Equal(t, []int64{0}, res.Seqs)
	require.Zero(t, res.MaxSeq)
	require.Zero(t, dupEv.Seq)

	// Mixed: the new ones are inserted; a key repeated inside one commit is a duplicate too.
	evs := []*store.Event{
		eventOf(sub, "opened", "x-1", at(2*time.Second)),
		eventOf(sub, "opened", "x-2", at(2*time.Second)),
		eventOf(sub, "opened", "x-2", at(2*time.Second)),
		eventOf(sub, "opened", "", at(2*time.Second)),
		eventOf(sub, "opened", "", at(2*time.Second)), // no id: never a duplicate
		eventOf(sub2, "opened", "x-1", at(2*time.Second)),
	}
	mixed := deliveryOf(sub, at(2*time.Second))
	res = commit(t, s, mixed, evs...)
	require.Equal(t, 4, res.Inserted)
	require.Equal(t, 2, res.Duplicates)
	got, err = s.GetDelivery(ctxOf(t), ws, mixed.ID)
	require.NoError(t, err)
	require.Equal(t, store.OutcomeOK, got.Outcome, "some events were new")
	require.Equal(t, 4, got.EventCount)
	require.Zero(t, res.Seqs[0])
	require.Zero(t, res.Seqs[2])
	inserted := []int64{res.Seqs[1], res.Seqs[3], res.Seqs[4], res.Seqs[5]}
	requireIncreasing(t, inserted)
	require.Equal(t, res.Seqs[5], res.MaxSeq)

	require.Len(t, allEvents(t, s, ws, store.EventFilter{}), 5)
}

func testStateUpdates(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	c := mkConnection(t, s, ws)
	sub := mkSubscription(t, s, c)
	gone := mkSubscription(t, s, c)
	require.NoError(t, s.DeleteSubscription(ctx, ws, gone.ID))

	d := deliveryOf(sub, base)
	ev := eventOf(sub, "opened", "", base)
	ev.DeliveryID = d.ID
	newState := []byte("sealed-state-from-handle")
	res, err := s.CommitDelivery(ctx, &store.DeliveryCommit{
		Delivery: d, Events: []*store.Event{ev},
		StateUpdates: []store.StateUpdate{
			{SubscriptionID: sub.ID, State: newState},
			{SubscriptionID: gone.ID, State: []byte("sealed-x")}, // deleted meanwhile: skipped
		},
	})
	require.NoError(t, err)
	require.Equal(t, 1, res.Inserted)
	got, err := s.GetSubscription(ctx, ws, sub.ID)
	require.NoError(t, err)
	require.Equal(t, newState, got.State)
	require.Equal(t, sub.Parameters, got.Parameters)

	// A Change is given the stored state inside the transaction; two of one subscription
	// in one commit apply in order; one of a deleted subscription is not called.
	change := func(tag string) func([]byte) ([]byte, error) {
		return func(stored []byte) ([]byte, error) { return append(append([]byte(nil), stored...), tag...), nil }
	}
	_, err = s.CommitDelivery(ctx, &store.DeliveryCommit{
		Delivery: deliveryOf(sub, base),
		StateUpdates: []store.StateUpdate{
			{SubscriptionID: sub.ID, Change: change("+a")},
			{SubscriptionID: sub.ID, Change: change("+b")},
			{SubscriptionID: gone.ID, Change: func([]byte) ([]byte, error) { return nil, errors.New("called for a deleted subscription") }},
		},
	})
	require.NoError(t, err)
	got, err = s.GetSubscription(ctx, ws, sub.ID)
	require.NoError(t, err)
	require.Equal(t, []byte("sealed-state-from-handle+a+b"), got.State)
}

func testReplay(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	g, err := s.EnsureGlobalWebhook(ctx, &store.GlobalWebhook{WorkspaceID: ws, ID: newID("gw"), ConnectorKey: "slack", Key: "events"})
	require.NoError(t, err)

	failed := &store.Delivery{
		ID: newID("dlv"), WorkspaceID: ws, GlobalWebhookID: g.ID, ReceiveTime: base,
		StatusCode: 500, Outcome: store.OutcomeFailed, Error: "mapping failed", RequestSize: 17,
		Selectors: []string{"team:T1", "team:T2"},
		Request: &store.RawRequest{
			Method: "POST", Path: "/hooks/g/" + g.ID, Query: "a=1&b=%20",
			Headers: map[string][]string{"content-type": {"application/json"}, "x-multi": {"1", "2"}},
			Body:    []byte(`{"event":{"type":"message"}}` + "\x00\xff"),
		},
	}
	_, err = s.CommitDelivery(ctx, &store.DeliveryCommit{Delivery: failed})
	require.NoError(t, err)
	got, err := s.GetDelivery(ctx, ws, failed.ID)
	require.NoError(t, err)
	failed.HasRequest = true
	require.Equal(t, failed, got, "the kept request round-trips")

	// The replay succeeds: the delivery is replaced, not duplicated.
	replayed := &store.Delivery{
		ID: failed.ID, WorkspaceID: ws, GlobalWebhookID: g.ID, ReceiveTime: base,
		StatusCode: 200, Outcome: store.OutcomeOK, EventCount: 0, RequestSize: 17, ReplayCount: 1,
		Selectors: []string{"team:T1"},
	}
	_, err = s.CommitDelivery(ctx, &store.DeliveryCommit{Delivery: replayed})
	require.NoError(t, err)
	got, err = s.GetDelivery(ctx, ws, failed.ID)
	require.NoError(t, err)
	require.Equal(t, replayed, got)
	require.Nil(t, got.Request, "the request is dropped once the replay succeeded")

	list, _, err := s.ListDeliveries(ctx, ws, store.DeliveryFilter{}, store.Page{})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, store.OutcomeOK, list[0].Outcome)
	require.Equal(t, 1, list[0].ReplayCount)
	require.Nil(t, list[0].Request)
	require.False(t, list[0].HasRequest)

	// A replay that fails again keeps the request it is given.
	again := *failed
	again.ReplayCount, again.Error = 2, "mapping failed again"
	again.Request = &store.RawRequest{Method: "PUT", Path: "/hooks/g/" + g.ID, Body: []byte{}}
	_, err = s.CommitDelivery(ctx, &store.DeliveryCommit{Delivery: &again})
	require.NoError(t, err)
	got, err = s.GetDelivery(ctx, ws, failed.ID)
	require.NoError(t, err)
	require.Equal(t, &again, got)
	list, _, err = s.ListDeliveries(ctx, ws, store.DeliveryFilter{}, store.Page{})
	require.NoError(t, err)
	listed := again
	listed.Request = nil
	require.Equal(t, []*store.Delivery{&listed}, list, "listed deliveries say they keep a request without loading it")
}

func testDeliveryIsolation(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws, other := mkWorkspace(t, s), mkWorkspace(t, s)
	c := mkConnection(t, s, ws)
	sub := mkSubscription(t, s, c)
	d := deliveryOf(sub, base)
	commit(t, s, d, eventOf(sub, "opened", "", base))

	_, err := s.GetDelivery(ctx, other, d.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	list, _, err := s.ListDeliveries(ctx, other, store.DeliveryFilter{}, store.Page{})
	require.NoError(t, err)
	require.Empty(t, list)
	evs, err := s.ListEvents(ctx, other, store.EventFilter{}, 0, 100)
	require.NoError(t, err)
	require.Empty(t, evs)
	seq, err := s.LastSeq(ctx, other)
	require.NoError(t, err)
	require.Zero(t, seq)

	// Another workspace cannot replace the delivery; its commit fails whole.
	oc := mkConnection(t, s, other)
	osub := mkSubscription(t, s, oc)
	hijack := deliveryOf(osub, base)
	hijack.ID = d.ID
	ev := eventOf(osub, "opened", "", base)
	_, err = s.CommitDelivery(ctx, &store.DeliveryCommit{Delivery: hijack, Events: []*store.Event{ev}})
	require.ErrorIs(t, err, store.ErrAlreadyExists)
	got, err := s.GetDelivery(ctx, ws, d.ID)
	require.NoError(t, err)
	require.Equal(t, d, got)
	evs, err = s.ListEvents(ctx, other, store.EventFilter{}, 0, 100)
	require.NoError(t, err)
	require.Empty(t, evs, "a failed commit stores none of its events")
}

func testDeliveryPagination(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	c := mkConnection(t, s, ws)
	s1, s2 := mkSubscription(t, s, c), mkSubscription(t, s, c)
	g, err := s.EnsureGlobalWebhook(ctx, &store.GlobalWebhook{WorkspaceID: ws, ID: newID("gw"), ConnectorKey: "slack", Key: "events"})
	require.NoError(t, err)

	type rec struct {
		id       string
		received time.Time
	}
	var all []rec
	bySub := map[string][]string{}
	var failed, global []string
	for i := range 120 {
		sub := s1
		if i%2 == 1 {
			sub = s2
		}
		// Pairs share a receive time, so pages must break ties without losing any.
		d := deliveryOf(sub, at(time.Duration(i/2)*time.Second))
		if i%3 == 0 {
			d.Outcome = store.OutcomeFailed
			failed = append(failed, d.ID)
		}
		if i%10 == 0 {
			d.SubscriptionID, d.GlobalWebhookID = "", g.ID
			global = append(global, d.ID)
		} else {
			bySub[sub.ID] = append(bySub[sub.ID], d.ID)
		}
		commit(t, s, d)
		all = append(all, rec{d.ID, d.ReceiveTime})
	}
	list := func(f store.DeliveryFilter, size int) ([]string, int) {
		var ids []string
		var last time.Time
		token := ""
		pages := 0
		for {
			page, next, err := s.ListDeliveries(ctx, ws, f, store.Page{Size: size, Token: token})
			require.NoError(t, err)
			pages++
			for _, d := range page {
				if !last.IsZero() {
					require.False(t, d.ReceiveTime.After(last), "newest first")
				}
				last = d.ReceiveTime
				ids = append(ids, d.ID)
			}
			if next == "" {
				return ids, pages
			}
			token = next
			require.Less(t, pages, 30)
		}
	}
	sorted := func(ids []string) []string { return slices.Sorted(slices.Values(ids)) }

	ids, pages := list(store.DeliveryFilter{}, 49) // odd: pages end between two deliveries received together
	require.Equal(t, 3, pages)
	require.Len(t, ids, 120)
	var want []string
	for _, r := range all {
		want = append(want, r.id)
	}
	require.Equal(t, sorted(want), sorted(ids), "every delivery exactly once")
	// Strictly newest first where receive times differ.
	require.Equal(t, all[119].received, all[118].received)
	require.Contains(t, ids[:2], all[119].id)
	require.Contains(t, ids[118:], all[0].id)

	ids, _ = list(store.DeliveryFilter{SubscriptionID: s1.ID}, 7)
	require.Equal(t, sorted(bySub[s1.ID]), sorted(ids))
	ids, _ = list(store.DeliveryFilter{Outcome: store.OutcomeFailed}, 50)
	require.Equal(t, sorted(failed), sorted(ids))
	ids, _ = list(store.DeliveryFilter{GlobalWebhookID: g.ID}, 50)
	require.Equal(t, sorted(global), sorted(ids))
	ids, _ = list(store.DeliveryFilter{GlobalWebhookID: g.ID, Outcome: store.OutcomeFailed}, 3)
	require.Len(t, ids, 4) // i%30 == 0
	for _, id := range ids {
		require.Contains(t, global, id)
		require.Contains(t, failed, id)
	}
	ids, _ = list(store.DeliveryFilter{SubscriptionID: s1.ID, GlobalWebhookID: g.ID}, 50)
	require.Empty(t, ids, "a delivery arrives on a subscription or a global webhook, not both")

	// Received in [10s, 20s): at or after Start, before End.
	var window []string
	for _, r := range all {
		if !r.received.Before(at(10*time.Second)) && r.received.Before(at(20*time.Second)) {
			window = append(window, r.id)
		}
	}
	require.Len(t, window, 20)
	ids, _ = list(store.DeliveryFilter{Start: at(10 * time.Second), End: at(20 * time.Second)}, 7)
	require.Equal(t, sorted(window), sorted(ids))
	ids, _ = list(store.DeliveryFilter{Start: at(59 * time.Second)}, 50)
	require.Len(t, ids, 2)
	ids, _ = list(store.DeliveryFilter{End: at(time.Second), Outcome: store.OutcomeFailed}, 50)
	require.Equal(t, []string{all[0].id}, ids) // 0 failed, 1 not

	ids, _ = list(store.DeliveryFilter{SubscriptionID: s2.ID, Outcome: store.OutcomeFailed}, 50)
	for _, id := range ids {
		require.Contains(t, bySub[s2.ID], id)
		require.Contains(t, failed, id)
	}
	require.NotEmpty(t, ids)

	page, _, err := s.ListDeliveries(ctx, ws, store.DeliveryFilter{}, store.Page{})
	require.NoError(t, err)
	require.Len(t, page, 50, "default page size")
	_, _, err = s.ListDeliveries(ctx, ws, store.DeliveryFilter{}, store.Page{Token: "nope"})
	require.ErrorIs(t, err, store.ErrInvalidPageToken)
}

func testListEventsFilter(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws, other := mkWorkspace(t, s), mkWorkspace(t, s)
	c1, c2 := mkConnection(t, s, ws), mkConnection(t, s, ws)
	sA := mkSubscription(t, s, c1)
	sB := mkSubscription(t, s, c1, func(s *store.Subscription) { s.EventKey = "pulls" })
	sC := mkSubscription(t, s, c2)
	osub := mkSubscription(t, s, mkConnection(t, s, other))

	var all []*store.Event
	for i := range 24 {
		sub := []*store.Subscription{sA, sB, sC}[i%3]
		typ := []string{"opened", "closed"}[i/3%2]
		ev := eventOf(sub, typ, "", at(time.Duration(i)*time.Second))
		commit(t, s, deliveryOf(sub, ev.ReceiveTime), ev)
		all = append(all, ev)
		commit(t, s, deliveryOf(osub, ev.ReceiveTime), eventOf(osub, typ, "", ev.ReceiveTime))
	}
	match := func(pred func(*store.Event) bool) []int64 {
		out := []int64{}
		for _, e := range all {
			if pred(e) {
				out = append(out, e.Seq)
			}
		}
		return out
	}
	cases := []struct {
		name string
		f    store.EventFilter
		pred func(*store.Event) bool
	}{
		{"all", store.EventFilter{}, func(*store.Event) bool { return true }},
		{"connection", store.EventFilter{ConnectionIDs: []string{c2.ID}}, func(e *store.Event) bool { return e.ConnectionID == c2.ID }},
		{"subscriptions ORed", store.EventFilter{SubscriptionIDs: []string{sA.ID, sC.ID}}, func(e *store.Event) bool { return e.SubscriptionID != sB.ID }},
		{"event key", store.EventFilter{EventKeys: []string{"pulls"}}, func(e *store.Event) bool { return e.SubscriptionID == sB.ID }},
		{"fields ANDed", store.EventFilter{ConnectionIDs: []string{c1.ID}, Types: []string{"closed"}}, func(e *store.Event) bool {
			return e.ConnectionID == c1.ID && e.Type == "closed"
		}},
		{"all fields", store.EventFilter{
			ConnectionIDs: []string{c1.ID, c2.ID}, SubscriptionIDs: []string{sA.ID, sB.ID},
			EventKeys: []string{"issues", "pulls"}, Types: []string{"opened"},
		}, func(e *store.Event) bool { return e.SubscriptionID != sC.ID && e.Type == "opened" }},
		{"nothing matches", store.EventFilter{Types: []string{"deleted"}}, func(*store.Event) bool { return false }},
	}
	for _, tc := range cases {
		got := allEvents(t, s, ws, tc.f)
		want := match(tc.pred)
		require.Equal(t, want, seqsOf(got), tc.name)
		for _, e := range got {
			require.Equal(t, ws, e.WorkspaceID, tc.name)
		}
	}

	// afterSeq and limit.
	page, err := s.ListEvents(ctx, ws, store.EventFilter{}, all[4].Seq, 5)
	require.NoError(t, err)
	require.Equal(t, seqsOf(all[5:10]), seqsOf(page))
	page, err = s.ListEvents(ctx, ws, store.EventFilter{Types: []string{"closed"}}, all[4].Seq, 2)
	require.NoError(t, err)
	require.Equal(t, match(func(e *store.Event) bool { return e.Seq > all[4].Seq && e.Type == "closed" })[:2], seqsOf(page))
	page, err = s.ListEvents(ctx, ws, store.EventFilter{}, all[23].Seq, 5)
	require.NoError(t, err)
	require.Empty(t, page)
}

func testEventsOutliveSubscription(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	c := mkConnection(t, s, ws)
	sub := mkSubscription(t, s, c)
	d := deliveryOf(sub, base)
	commit(t, s, d, eventOf(sub, "opened", "k-1", base), eventOf(sub, "opened", "", base))

	require.NoError(t, s.DeleteSubscription(ctx, ws, sub.ID))
	require.NoError(t, s.DeleteConnection(ctx, ws, c.ID))
	require.Len(t, allEvents(t, s, ws, store.EventFilter{}), 2)
	_, err := s.GetDelivery(ctx, ws, d.ID)
	require.NoError(t, err)

	// A late delivery of the deleted subscription still commits its events.
	res := commit(t, s, deliveryOf(sub, at(time.Second)), eventOf(sub, "opened", "k-2", at(time.Second)))
	require.Equal(t, 1, res.Inserted)
}

func testConsumers(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws, other := mkWorkspace(t, s), mkWorkspace(t, s)

	seq, found, err := s.GetCursor(ctx, ws, "billing")
	require.NoError(t, err)
	require.False(t, found)
	require.Zero(t, seq)

	require.NoError(t, s.AckEvents(ctx, ws, "billing", 10))
	seq, found, err = s.GetCursor(ctx, ws, "billing")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, int64(10), seq)

	require.NoError(t, s.AckEvents(ctx, ws, "billing", 5))
	seq, _, err = s.GetCursor(ctx, ws, "billing")
	require.NoError(t, err)
	require.Equal(t, int64(10), seq, "a cursor never moves backwards")
	require.NoError(t, s.AckEvents(ctx, ws, "billing", 10))
	require.NoError(t, s.AckEvents(ctx, ws, "billing", 20))
	seq, _, err = s.GetCursor(ctx, ws, "billing")
	require.NoError(t, err)
	require.Equal(t, int64(20), seq)

	_, found, err = s.GetCursor(ctx, other, "billing")
	require.NoError(t, err)
	require.False(t, found, "consumers belong to a workspace")
	_, found, err = s.GetCursor(ctx, ws, "audit")
	require.NoError(t, err)
	require.False(t, found)

	// Concurrent acks end at the highest.
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() { assert.NoError(t, s.AckEvents(ctx, ws, "race", int64(100+i))) })
	}
	wg.Wait()
	seq, _, err = s.GetCursor(ctx, ws, "race")
	require.NoError(t, err)
	require.Equal(t, int64(129), seq)
}

// testConcurrentCommits: 50 goroutines commit concurrently; every commit is stored, with
// distinct seqs increasing in each goroutine's commit order and within each commit.
func testConcurrentCommits(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	c := mkConnection(t, s, ws)
	subs := make([]*store.Subscription, 5)
	for i := range subs {
		subs[i] = mkSubscription(t, s, c)
	}
	const goroutines, commits = 50, 4
	seqs := make([][]int64, goroutines)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range goroutines {
		wg.Go(func() {
			<-start
			sub := subs[g%len(subs)]
			for i := range commits {
				d := deliveryOf(sub, at(time.Duration(i)*time.Second))
				evs := []*store.Event{eventOf(sub, "opened", fmt.Sprintf("g%d-%d", g, i), d.ReceiveTime), eventOf(sub, "closed", "", d.ReceiveTime)}
				for _, e := range evs {
					e.DeliveryID = d.ID
				}
				res, err := s.CommitDelivery(ctx, &store.DeliveryCommit{Delivery: d, Events: evs})
				if !assert.NoError(t, err) {
					return
				}
				assert.Equal(t, 2, res.Inserted)
				assert.Less(t, res.Seqs[0], res.Seqs[1])
				seqs[g] = append(seqs[g], res.Seqs...)
			}
		})
	}
	close(start)
	wg.Wait()
	require.False(t, t.Failed())

	seen := map[int64]bool{}
	var want []int64
	for g := range goroutines {
		require.Len(t, seqs[g], 2*commits)
		requireIncreasing(t, seqs[g])
		for _, q := range seqs[g] {
			require.False(t, seen[q], "seq %d assigned twice", q)
			seen[q] = true
			want = append(want, q)
		}
	}
	slices.Sort(want)
	got := allEvents(t, s, ws, store.EventFilter{})
	require.Equal(t, want, seqsOf(got), "every acknowledged event is stored, in seq order")
	last, err := s.LastSeq(ctx, ws)
	require.NoError(t, err)
	require.Equal(t, want[len(want)-1], last)
	list, _, err := s.ListDeliveries(ctx, ws, store.DeliveryFilter{}, store.Page{Size: 1000})
	require.NoError(t, err)
	require.Len(t, list, goroutines*commits)

	page, err := s.ListEvents(ctx, ws, store.EventFilter{}, 0, 0)
	require.NoError(t, err)
	require.Equal(t, want[:100], seqsOf(page), "limit 0 lists 100 events")
}

// testBadWriteFailsAlone: among concurrent commits, the ones that fail (a delivery id
// taken by another workspace) fail alone; their neighbours commit.
func testBadWriteFailsAlone(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws, other := mkWorkspace(t, s), mkWorkspace(t, s)
	sub := mkSubscription(t, s, mkConnection(t, s, ws))
	osub := mkSubscription(t, s, mkConnection(t, s, other))
	taken := deliveryOf(osub, base)
	commit(t, s, taken)

	const n = 40
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			d := deliveryOf(sub, base)
			if i%5 == 0 {
				d.ID = taken.ID
			}
			ev := eventOf(sub, "opened", "", base)
			ev.DeliveryID = d.ID
			_, errs[i] = s.CommitDelivery(ctx, &store.DeliveryCommit{Delivery: d, Events: []*store.Event{ev}})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if i%5 == 0 {
			require.ErrorIs(t, err, store.ErrAlreadyExists, "commit %d", i)
		} else {
			require.NoError(t, err, "commit %d", i)
		}
	}
	require.Len(t, allEvents(t, s, ws, store.EventFilter{}), n-n/5)
}

func testCanceledContext(t *testing.T, s store.Store) {
	ws := mkWorkspace(t, s)
	sub := mkSubscription(t, s, mkConnection(t, s, ws))
	ctx, cancel := context.WithCancel(ctxOf(t))
	cancel()
	_, err := s.CommitDelivery(ctx, &store.DeliveryCommit{Delivery: deliveryOf(sub, base), Events: []*store.Event{eventOf(sub, "opened", "", base)}})
	require.Error(t, err)
	require.True(t, errors.Is(err, context.Canceled), "got %v", err)
	seq, err := s.LastSeq(ctxOf(t), ws)
	require.NoError(t, err)
	require.Zero(t, seq, "nothing was written")
}

func testPrune(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	sub := mkSubscription(t, s, mkConnection(t, s, ws))

	old, recent := at(-48*time.Hour), base
	var oldSeqs, recentSeqs []int64
	for i := range 5 {
		r := commit(t, s, deliveryOf(sub, old), eventOf(sub, "opened", fmt.Sprintf("old-%d", i), old))
		oldSeqs = append(oldSeqs, r.MaxSeq)
	}
	for i := range 3 {
		r := commit(t, s, deliveryOf(sub, recent), eventOf(sub, "opened", fmt.Sprintf("new-%d", i), recent))
		recentSeqs = append(recentSeqs, r.MaxSeq)
	}

	res, err := s.Prune(ctx, store.Retention{})
	require.NoError(t, err)
	require.Equal(t, store.PruneResult{}, res, "zero cutoffs keep everything")

	res, err = s.Prune(ctx, store.Retention{DeliveriesBefore: at(-24 * time.Hour), EventsBefore: at(-24 * time.Hour)})
	require.NoError(t, err)
	require.Equal(t, store.PruneResult{Deliveries: 5, Events: 5}, res)
	require.Equal(t, recentSeqs, seqsOf(allEvents(t, s, ws, store.EventFilter{})))
	list, _, err := s.ListDeliveries(ctx, ws, store.DeliveryFilter{}, store.Page{})
	require.NoError(t, err)
	require.Len(t, list, 3)

	// Idempotency keys were stored at commit (now): a cutoff in the past keeps them…
	res, err = s.Prune(ctx, store.Retention{IdempotencyKeysBefore: time.Now().Add(-time.Hour)})
	require.NoError(t, err)
	require.Zero(t, res.IdempotencyKeys)
	r := commit(t, s, deliveryOf(sub, recent), eventOf(sub, "opened", "old-0", recent))
	require.Equal(t, 1, r.Duplicates)

	// …one in the future removes them, and the external ids are new again.
	res, err = s.Prune(ctx, store.Retention{IdempotencyKeysBefore: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	require.Equal(t, int64(8), res.IdempotencyKeys)
	r = commit(t, s, deliveryOf(sub, recent), eventOf(sub, "opened", "old-0", recent))
	require.Equal(t, 1, r.Inserted)
	require.Greater(t, r.MaxSeq, recentSeqs[2], "seqs are never reused after a prune")
	_ = oldSeqs
}

func testDeliveryEvents(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws, other := mkWorkspace(t, s), mkWorkspace(t, s)
	sub := mkSubscription(t, s, mkConnection(t, s, ws))
	d := deliveryOf(sub, base)
	commit(t, s, d, eventOf(sub, "a", "", base), eventOf(sub, "b", "", base), eventOf(sub, "c", "", base))
	// Another delivery received at the same instant, and one a moment later.
	same := deliveryOf(sub, base)
	commit(t, s, same, eventOf(sub, "z", "", base))
	commit(t, s, deliveryOf(sub, at(time.Nanosecond)), eventOf(sub, "later", "", at(time.Nanosecond)))

	got, err := s.GetDelivery(ctx, ws, d.ID)
	require.NoError(t, err)
	evs, err := s.DeliveryEvents(ctx, ws, got, 100)
	require.NoError(t, err)
	var types []string
	for _, e := range evs {
		require.Equal(t, d.ID, e.DeliveryID)
		types = append(types, e.Type)
	}
	require.Equal(t, []string{"a", "b", "c"}, types, "in seq order")
	require.Less(t, evs[0].Seq, evs[2].Seq)

	evs, err = s.DeliveryEvents(ctx, ws, got, 2)
	require.NoError(t, err)
	require.Len(t, evs, 2)
	evs, err = s.DeliveryEvents(ctx, other, got, 100)
	require.NoError(t, err)
	require.Empty(t, evs, "another workspace sees none")

	// A replay (the same delivery, its receive time kept) commits more events: the
	// delivery's events are all of them, in seq order, after another delivery's commit.
	commit(t, s, deliveryOf(sub, at(time.Second)), eventOf(sub, "between", "", at(time.Second)))
	replay := *d
	replay.ReplayCount = 1
	commit(t, s, &replay, eventOf(sub, "d", "", base), eventOf(sub, "e", "", base))
	got, err = s.GetDelivery(ctx, ws, d.ID)
	require.NoError(t, err)
	evs, err = s.DeliveryEvents(ctx, ws, got, 100)
	require.NoError(t, err)
	types = nil
	for _, e := range evs {
		require.Equal(t, d.ID, e.DeliveryID)
		types = append(types, e.Type)
	}
	require.Equal(t, []string{"a", "b", "c", "d", "e"}, types, "the first commit's and the replay's, in seq order")
	evs, err = s.DeliveryEvents(ctx, ws, got, 4)
	require.NoError(t, err)
	require.Len(t, evs, 4, "the limit holds across commits")
}

// A caller that promises to read only RecordJSON (EventFilter.JSONRecords) gets every
// event's record as JSON that decodes to what was committed, whether the store decoded
// it or not; the other filters still apply.
func testListEventsJSONRecords(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	sub := mkSubscription(t, s, mkConnection(t, s, ws))
	var committed []*store.Event
	for i := range 5 {
		ev := eventOf(sub, fmt.Sprintf("t%d", i%2), "", base)
		ev.Record = map[string]any{"i": int64(i), "nested": map[string]any{"list": []any{"a", 1.5, true, nil}}}
		commit(t, s, deliveryOf(sub, base), ev)
		committed = append(committed, ev)
	}
	evs, err := s.ListEvents(ctx, ws, store.EventFilter{JSONRecords: true}, 0, 100)
	require.NoError(t, err)
	require.Len(t, evs, 5)
	for i, e := range evs {
		require.Empty(t, e.RecordError)
		rec, err := value.DecodeStored([]byte(e.RecordJSON))
		require.NoError(t, err, e.RecordJSON)
		require.Equal(t, committed[i].Record, rec)
	}
	evs, err = s.ListEvents(ctx, ws, store.EventFilter{Types: []string{"t1"}, JSONRecords: true}, 0, 100)
	require.NoError(t, err)
	require.Len(t, evs, 2, "the filters still apply")
}
