package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

// A SQLite database has one process: a lease found at open belongs to a process that died
// between a delivery's answer and its fetch, and is void, so the fetch runs at once.
func TestOpenVoidsFetchLeases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookmap.db")
	s, err := Open(t.Context(), path, Options{})
	require.NoError(t, err)
	ctx := t.Context()
	require.NoError(t, s.CreateWorkspace(ctx, &store.Workspace{ID: "w", Name: "w"}))
	require.NoError(t, s.CreateConnection(ctx, &store.Connection{WorkspaceID: "w", ID: "c", ConnectorKey: "k", Name: "n"}))
	require.NoError(t, s.CreateSubscription(ctx, &store.Subscription{WorkspaceID: "w", ID: "s", ConnectionID: "c", ConnectorKey: "k", EventKey: "e", Status: store.StatusActive}))
	now := time.Now().UTC()
	d := &store.Delivery{ID: "d", WorkspaceID: "w", SubscriptionID: "s", ReceiveTime: now, StatusCode: 200, Outcome: store.OutcomeOK}
	f := &store.Fetch{ID: "f", WorkspaceID: "w", SubscriptionID: "s", DeliveryID: "d", DeliveryTime: now, NextAttemptTime: now}
	_, err = s.CommitDeliveryWithFetches(ctx, &store.DeliveryCommit{Delivery: d}, []*store.Fetch{f})
	require.NoError(t, err)
	claim := store.FetchClaim{Now: now, LeaseFor: time.Hour, Limit: 1}
	got, err := s.ClaimFetches(ctx, claim)
	require.NoError(t, err)
	require.Len(t, got, 1)
	got, err = s.ClaimFetches(ctx, claim)
	require.NoError(t, err)
	require.Empty(t, got, "leased")
	require.NoError(t, s.Close())

	s, err = Open(t.Context(), path, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	got, err = s.ClaimFetches(ctx, claim)
	require.NoError(t, err)
	require.Len(t, got, 1, "the dead process's lease is void")
}

// The claim reads candidates from the due index and checks each with the subscription
// index: it never scans the fetches.
func TestClaimQueryPlan(t *testing.T) {
	s := openTest(t, Options{})
	for _, by := range []bool{false, true} {
		args := []any{1, 1, 1, 1}
		if by {
			args = append(args, "s")
		}
		plan := queryPlan(t, s, claimQuery(by), args...)
		require.Contains(t, plan, "SEARCH f USING INDEX fetches_due (next_attempt_time<?)", plan)
		require.Contains(t, plan, "SEARCH g USING INDEX fetches_subscription (subscription_id=?)", plan)
		require.NotContains(t, plan, "SCAN", plan)
	}
}
