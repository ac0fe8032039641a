package sqlite

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

// queryPlan returns the EXPLAIN QUERY PLAN details of query, one per line.
func queryPlan(t testing.TB, s *Store, query string, args ...any) string {
	t.Helper()
	rows, err := s.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		lines = append(lines, detail)
	}
	require.NoError(t, rows.Err())
	return strings.Join(lines, "\n")
}

// Every delivery filter pages newest first from an index: the plan searches one index and
// needs no sort, so a page costs the same with 100 or 100,000 deliveries in the store.
func TestDeliveryQueryPlans(t *testing.T) {
	s := openTest(t, Options{})
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	token := []int64{day.UnixNano(), 42}
	for _, tc := range []struct {
		f     store.DeliveryFilter
		index string
	}{
		{store.DeliveryFilter{}, "deliveries_workspace_time"},
		{store.DeliveryFilter{Outcome: store.OutcomeFailed}, "deliveries_workspace_outcome_time"},
		// The outcome indexes hold no OK delivery: OK pages from the time index.
		{store.DeliveryFilter{Outcome: store.OutcomeOK}, "deliveries_workspace_time"},
		{store.DeliveryFilter{SubscriptionID: "s", Outcome: store.OutcomeOK}, "deliveries_subscription_time"},
		{store.DeliveryFilter{GlobalWebhookID: "g", Outcome: store.OutcomeOK}, "deliveries_global_time"},
		{store.DeliveryFilter{SubscriptionID: "s"}, "deliveries_subscription_time"},
		{store.DeliveryFilter{SubscriptionID: "s", Outcome: store.OutcomeFailed}, "deliveries_subscription_outcome_time"},
		{store.DeliveryFilter{GlobalWebhookID: "g"}, "deliveries_global_time"},
		{store.DeliveryFilter{GlobalWebhookID: "g", Outcome: store.OutcomeUnmatched}, "deliveries_global_outcome_time"},
	} {
		for _, timed := range []bool{false, true} {
			for _, keys := range [][]int64{nil, token} {
				f := tc.f
				if timed {
					f.Start, f.End = day.Add(-time.Hour), day
				}
				name := fmt.Sprintf("%s/timed=%v/token=%v", tc.index, timed, keys != nil)
				t.Run(name, func(t *testing.T) {
					index, where, args := deliveryWhere("w", f, keys)
					require.Equal(t, tc.index, index)
					plan := queryPlan(t, s, listDeliveriesQuery(index, where), append(args, 51)...)
					require.Contains(t, plan, "SEARCH deliveries USING INDEX "+tc.index+" (", plan)
					require.NotContains(t, plan, "SCAN", plan)
					require.NotContains(t, plan, "TEMP B-TREE", plan)
				})
			}
		}
	}

	// A delivery's events are read by seq, one run of its event_seqs at a time.
	plan := queryPlan(t, s, deliveryEventsQuery, 10, 20, "d", "w", 100)
	require.Regexp(t, `SEARCH events USING (INTEGER PRIMARY KEY \(rowid>\? AND rowid<\?\)|INDEX events_workspace_seq \(workspace_id=\? AND seq>\? AND seq<\?\))`, plan)
	require.NotContains(t, plan, "SCAN", plan)
	require.NotContains(t, plan, "TEMP B-TREE", plan)

	// Prune finds the first event and delivery it keeps by reading from the oldest.
	for _, q := range []string{
		`SELECT seq FROM events WHERE receive_time >= ? ORDER BY seq LIMIT 1`,
		`SELECT rid FROM deliveries WHERE receive_time >= ? ORDER BY rid LIMIT 1`,
	} {
		plan := queryPlan(t, s, q, day.UnixNano())
		require.NotContains(t, plan, "TEMP B-TREE", plan)
		require.NotContains(t, plan, "USING INDEX", plan)
	}
}

// seedDeliveries commits n deliveries of sub through the store, a few concurrently (group
// commit), one in every 100 FAILED with its request kept, one a second apart.
func seedDeliveries(tb testing.TB, s *Store, sub *store.Subscription, n int, start time.Time) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				d := &store.Delivery{
					ID: fmt.Sprintf("dlv-%06d", i), WorkspaceID: sub.WorkspaceID, SubscriptionID: sub.ID,
					ReceiveTime: start.Add(time.Duration(i) * time.Second), StatusCode: 200, Outcome: store.OutcomeOK,
					EventCount: 1, RequestSize: 2048,
				}
				if i%100 == 0 {
					d.StatusCode, d.Outcome, d.Error = 500, store.OutcomeFailed, "handle.map.yml:3:5: no such key: messages"
					d.Request = &store.RawRequest{Method: "POST", Path: "/hooks/" + sub.ID,
						Headers: map[string][]string{"content-type": {"application/json"}}, Body: []byte(strings.Repeat("x", 2048))}
				}
				if _, err := s.CommitDelivery(context.Background(), &store.DeliveryCommit{Delivery: d}); err != nil {
					tb.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkListDeliveries100k pages through a store of 100,000 deliveries (1% failed)
// with each filter: the first page, and the page after a token deep in the list.
func BenchmarkListDeliveries100k(b *testing.B) {
	s, sub := benchStore(b)
	ctx := b.Context()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seedDeliveries(b, s, sub, 100_000, start)
	for _, bc := range []struct {
		name string
		f    store.DeliveryFilter
	}{
		{"all", store.DeliveryFilter{}},
		{"failed", store.DeliveryFilter{Outcome: store.OutcomeFailed}},
		{"subscription", store.DeliveryFilter{SubscriptionID: sub.ID}},
		{"subscription-failed", store.DeliveryFilter{SubscriptionID: sub.ID, Outcome: store.OutcomeFailed}},
		{"hour-10", store.DeliveryFilter{Start: start.Add(10 * time.Hour), End: start.Add(11 * time.Hour)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			first, token, err := s.ListDeliveries(ctx, "w", bc.f, store.Page{Size: 50})
			require.NoError(b, err)
			require.Len(b, first, 50)
			for b.Loop() {
				page, _, err := s.ListDeliveries(ctx, "w", bc.f, store.Page{Size: 50, Token: token})
				if err != nil || len(page) == 0 {
					b.Fatal(err, len(page))
				}
			}
		})
	}
}

// A destination's worker never reads its whole queue: the heads come from the lanes in
// due order (no sort), and a subscription's next pending event is one index lookup.
func TestDestinationQueryPlans(t *testing.T) {
	s := openTest(t, Options{})
	plan := queryPlan(t, s, destinationHeadsQuery, "w", "d", 256)
	require.Contains(t, plan, "SEARCH l USING COVERING INDEX destination_lanes_due (destination_rid=?)", plan)
	require.Contains(t, plan, "SEARCH e USING PRIMARY KEY (destination_rid=? AND seq=?)", plan)
	require.NotContains(t, plan, "SCAN", plan)
	require.NotContains(t, plan, "TEMP B-TREE", plan)

	plan = queryPlan(t, s, laneHeadQuery, 1, "sub")
	require.Contains(t, plan, "SEARCH destination_events USING INDEX destination_events_lane (destination_rid=? AND state=? AND lane=?)", plan)
	require.NotContains(t, plan, "TEMP B-TREE", plan)

	// Pages of the queue: no sort, and by state through the state index.
	plan = queryPlan(t, s, listDestinationEventsByState, "w", "d", store.DestinationEventFailed, 0, 51)
	require.Contains(t, plan, "SEARCH e USING INDEX destination_events_state (destination_rid=? AND state=? AND seq>?)", plan)
	require.NotContains(t, plan, "TEMP B-TREE", plan)
	plan = queryPlan(t, s, listDestinationEventsAll, "w", "d", 0, 51)
	require.Contains(t, plan, "SEARCH e USING PRIMARY KEY (destination_rid=? AND seq>?)", plan)
	require.NotContains(t, plan, "TEMP B-TREE", plan)
}

// Prune deletes deliveries oldest first in rid order and stops at the first one within the
// retention: a delivery older than the cutoff but committed after a newer one stays until
// that one goes too. Thousands of them go in several chunks.
func TestPruneDeliveriesInRidOrder(t *testing.T) {
	s, sub := benchStore(t)
	ctx := t.Context()
	cutoff := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	commit := func(id string, at time.Time) {
		t.Helper()
		_, err := s.CommitDelivery(ctx, &store.DeliveryCommit{Delivery: &store.Delivery{
			ID: id, WorkspaceID: sub.WorkspaceID, SubscriptionID: sub.ID, ReceiveTime: at, StatusCode: 200, Outcome: store.OutcomeOK,
		}})
		require.NoError(t, err)
	}
	const old = 2*pruneChunk + 500
	seedDeliveries(t, s, sub, old, cutoff.Add(-72*time.Hour))
	commit("kept-1", cutoff.Add(time.Minute))
	commit("late-old", cutoff.Add(-time.Minute))
	commit("kept-2", cutoff.Add(2*time.Minute))

	res, err := s.Prune(ctx, store.Retention{DeliveriesBefore: cutoff})
	require.NoError(t, err)
	require.Equal(t, int64(old), res.Deliveries)
	ids := func() (ids []string) {
		list, _, err := s.ListDeliveries(ctx, sub.WorkspaceID, store.DeliveryFilter{}, store.Page{Size: 10})
		require.NoError(t, err)
		for _, d := range list {
			ids = append(ids, d.ID)
		}
		return ids
	}
	require.Equal(t, []string{"kept-2", "kept-1", "late-old"}, ids())

	// Once kept-1 is past the retention, the late old delivery goes with it.
	res, err = s.Prune(ctx, store.Retention{DeliveriesBefore: cutoff.Add(90 * time.Second)})
	require.NoError(t, err)
	require.Equal(t, int64(2), res.Deliveries)
	require.Equal(t, []string{"kept-2"}, ids())

	// Nothing old: nothing deleted, whatever the rids.
	res, err = s.Prune(ctx, store.Retention{DeliveriesBefore: cutoff})
	require.NoError(t, err)
	require.Zero(t, res.Deliveries)
	require.Equal(t, []string{"kept-2"}, ids())
}
