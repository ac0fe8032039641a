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

	// A delivery's events are found through the receive_time index (then sorted: they are
	// only that delivery's).
	plan := queryPlan(t, s, deliveryEventsQuery, day.UnixNano(), "d", "w", 100)
	require.Contains(t, plan, "SEARCH events USING INDEX events_receive_time (receive_time=?)", plan)
	require.NotContains(t, plan, "SCAN", plan)
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
