package sqlite

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

// Migration 11 (narrower delivery indexes) upgrades a database written by the schema
// before it (migration 10) in place: every delivery is still listed by every filter, from
// the new indexes, and pruned.
func TestNarrowDeliveryIndexesMigration(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hookmap.db")
	db := databaseAt(t, path, 10)

	// Deliveries as the version before wrote them: one an hour, every fifth FAILED, one
	// subscription's and one global webhook's.
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 40 {
		outcome, subID, gwID := store.OutcomeOK, "sub", ""
		if i%5 == 0 {
			outcome = store.OutcomeFailed
		}
		if i%2 == 1 {
			subID, gwID = "", "gw"
		}
		_, err := db.Exec(`INSERT INTO deliveries (id, workspace_id, subscription_id, global_webhook_id, receive_time, status_code, outcome)
			VALUES (?, 'w', ?, ?, ?, 200, ?)`, fmt.Sprintf("dlv-%02d", i), subID, gwID, start.Add(time.Duration(i)*time.Hour).UnixNano(), outcome)
		require.NoError(t, err)
	}
	require.NoError(t, db.Close())

	s, err := Open(t.Context(), path, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	var version int64
	require.NoError(t, s.r.QueryRow(`SELECT MAX(version_id) FROM goose_db_version`).Scan(&version))
	require.GreaterOrEqual(t, version, int64(11))
	var receiveIndex int
	require.NoError(t, s.r.QueryRow(`SELECT COUNT(*) FROM sqlite_schema WHERE name = 'deliveries_receive_time'`).Scan(&receiveIndex))
	require.Zero(t, receiveIndex)

	count := func(f store.DeliveryFilter) int {
		n := 0
		token := ""
		for {
			page, next, err := s.ListDeliveries(t.Context(), "w", f, store.Page{Size: 7, Token: token})
			require.NoError(t, err)
			for _, d := range page {
				if f.Outcome != "" {
					require.Equal(t, f.Outcome, d.Outcome)
				}
			}
			n += len(page)
			if next == "" {
				return n
			}
			token = next
		}
	}
	for _, tc := range []struct {
		f    store.DeliveryFilter
		want int
	}{
		{store.DeliveryFilter{}, 40},
		{store.DeliveryFilter{Outcome: store.OutcomeFailed}, 8},
		{store.DeliveryFilter{Outcome: store.OutcomeOK}, 32},
		{store.DeliveryFilter{SubscriptionID: "sub"}, 20},
		{store.DeliveryFilter{SubscriptionID: "sub", Outcome: store.OutcomeFailed}, 4},
		{store.DeliveryFilter{SubscriptionID: "sub", Outcome: store.OutcomeOK}, 16},
		{store.DeliveryFilter{GlobalWebhookID: "gw"}, 20},
		{store.DeliveryFilter{GlobalWebhookID: "gw", Outcome: store.OutcomeFailed}, 4},
		{store.DeliveryFilter{GlobalWebhookID: "gw", Outcome: store.OutcomeOK}, 16},
	} {
		require.Equal(t, tc.want, count(tc.f), "%+v", tc.f)
	}
	res, err := s.Prune(t.Context(), store.Retention{DeliveriesBefore: start.Add(10 * time.Hour)})
	require.NoError(t, err)
	require.Equal(t, int64(10), res.Deliveries)
	require.Equal(t, 30, count(store.DeliveryFilter{}))
}
