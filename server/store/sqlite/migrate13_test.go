package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

// schemaOf returns the SQL of table's indexes and triggers, and whether the table is
// declared with AUTOINCREMENT.
func schemaOf(t *testing.T, db *sql.DB, table string) (indexes []string, autoincrement bool) {
	t.Helper()
	var def string
	require.NoError(t, db.QueryRow(`SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?`, table).Scan(&def))
	rows, err := db.Query(`SELECT sql FROM sqlite_schema WHERE tbl_name = ? AND type = 'index' AND sql IS NOT NULL ORDER BY name`, table)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var q string
		require.NoError(t, rows.Scan(&q))
		indexes = append(indexes, strings.Join(strings.Fields(q), " "))
	}
	require.NoError(t, rows.Err())
	return indexes, strings.Contains(def, "AUTOINCREMENT")
}

// Migration 13 (no AUTOINCREMENT on events and deliveries) upgrades a database written by
// the schema before it in place: same rows, same indexes, and the seqs the old
// sqlite_sequence had given out (here, above the newest event left) are never given again.
func TestPlainRowidsMigration(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hookmap.db")
	db := databaseAt(t, path, 12)

	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 30 {
		at := start.Add(time.Duration(i) * time.Minute).UnixNano()
		outcome := store.OutcomeOK
		if i%3 == 0 {
			outcome = store.OutcomeFailed
		}
		_, err := db.Exec(`INSERT INTO deliveries (id, workspace_id, subscription_id, receive_time, status_code, outcome,
			request_method, request_body) VALUES (?, 'w', 'sub', ?, 200, ?, 'POST', ?)`,
			fmt.Sprintf("dlv-%02d", i), at, outcome, []byte(fmt.Sprintf(`{"n":%d}`, i)))
		require.NoError(t, err)
		_, err = db.Exec(`INSERT INTO events (id, workspace_id, connection_id, subscription_id, event_key, type, record,
			delivery_id, receive_time) VALUES (?, 'w', 'c', 'sub', 'webhook', 'issue.opened', ?, ?, ?)`,
			fmt.Sprintf("ev-%02d", i), fmt.Sprintf(`{"n":%d}`, i), fmt.Sprintf("dlv-%02d", i), at)
		require.NoError(t, err)
	}
	// The newest five events and deliveries deleted: sqlite_sequence remembers seq 30.
	_, err := db.Exec(`DELETE FROM events WHERE seq > 25`)
	require.NoError(t, err)
	_, err = db.Exec(`DELETE FROM deliveries WHERE rid > 25`)
	require.NoError(t, err)
	eventIndexes, auto := schemaOf(t, db, "events")
	require.True(t, auto)
	deliveryIndexes, auto := schemaOf(t, db, "deliveries")
	require.True(t, auto)
	require.NoError(t, db.Close())

	s, err := Open(t.Context(), path, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	got, auto := schemaOf(t, s.r, "events")
	require.False(t, auto)
	require.Equal(t, eventIndexes, got)
	got, auto = schemaOf(t, s.r, "deliveries")
	require.False(t, auto)
	require.Equal(t, deliveryIndexes, got)
	var sequences int
	require.NoError(t, s.r.QueryRow(`SELECT COUNT(*) FROM sqlite_sequence WHERE name IN ('events', 'deliveries')`).Scan(&sequences))
	require.Zero(t, sequences)

	// Every row is there, as it was.
	evs, err := s.ListEvents(t.Context(), "w", store.EventFilter{}, 0, 100)
	require.NoError(t, err)
	require.Len(t, evs, 25)
	for i, ev := range evs {
		require.Equal(t, int64(i+1), ev.Seq)
		require.Equal(t, fmt.Sprintf("ev-%02d", i), ev.ID)
		require.Equal(t, map[string]any{"n": int64(i)}, ev.Record)
	}
	d, err := s.GetDelivery(t.Context(), "w", "dlv-03")
	require.NoError(t, err)
	require.Equal(t, store.OutcomeFailed, d.Outcome)
	require.JSONEq(t, `{"n":3}`, string(d.Request.Body))
	list, _, err := s.ListDeliveries(t.Context(), "w", store.DeliveryFilter{Outcome: store.OutcomeFailed}, store.Page{Size: 100})
	require.NoError(t, err)
	require.Len(t, list, 9)
	require.Equal(t, "dlv-24", list[0].ID, "newest first")
	dEvents, err := s.DeliveryEvents(t.Context(), "w", d, 10)
	require.NoError(t, err)
	require.Len(t, dEvents, 1)
	require.Equal(t, "ev-03", dEvents[0].ID)

	// The next event is given seq 31, above every seq ever given; the next delivery is
	// listed first.
	r, err := s.CommitDelivery(t.Context(), &store.DeliveryCommit{
		Delivery: &store.Delivery{ID: "dlv-new", WorkspaceID: "w", SubscriptionID: "sub", ReceiveTime: time.Now(),
			StatusCode: 200, Outcome: store.OutcomeOK, EventCount: 1},
		Events: []*store.Event{{ID: "ev-new", WorkspaceID: "w", ConnectionID: "c", SubscriptionID: "sub",
			EventKey: "webhook", Type: "issue.opened", DeliveryID: "dlv-new", ReceiveTime: time.Now(), Record: map[string]any{}}},
	})
	require.NoError(t, err)
	require.Equal(t, int64(31), r.MaxSeq)
	list, _, err = s.ListDeliveries(t.Context(), "w", store.DeliveryFilter{}, store.Page{Size: 1})
	require.NoError(t, err)
	require.Equal(t, "dlv-new", list[0].ID)
}

// Without AUTOINCREMENT a seq is still never given twice: not after every event is
// pruned, not after a restart that follows, nor after a crash (the floor is written by
// the prune's own transaction).
func TestEventSeqsNeverReused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookmap.db")
	ctx := t.Context()
	s, err := Open(ctx, path, Options{})
	require.NoError(t, err)
	require.NoError(t, s.CreateWorkspace(ctx, &store.Workspace{ID: "w", Name: "w"}))
	commit := func(s *Store) int64 {
		t.Helper()
		r, err := s.CommitDelivery(ctx, &store.DeliveryCommit{Events: []*store.Event{{ID: fmt.Sprint(time.Now().UnixNano()),
			WorkspaceID: "w", ConnectionID: "c", EventKey: "webhook", Type: "t", ReceiveTime: time.Now(), Record: map[string]any{}}}})
		require.NoError(t, err)
		require.Equal(t, 1, r.Inserted)
		return r.MaxSeq
	}
	pruneAll := func(s *Store) {
		t.Helper()
		res, err := s.Prune(ctx, store.Retention{EventsBefore: time.Now().Add(time.Hour)})
		require.NoError(t, err)
		require.Positive(t, res.Events)
		evs, err := s.ListEvents(ctx, "w", store.EventFilter{}, 0, 10)
		require.NoError(t, err)
		require.Empty(t, evs)
	}
	var last int64
	for range 5 {
		last = commit(s)
	}
	require.Equal(t, int64(5), last)
	pruneAll(s)
	require.Equal(t, int64(6), commit(s), "after every event was pruned")
	pruneAll(s)
	require.NoError(t, s.Close())

	s, err = Open(ctx, path, Options{})
	require.NoError(t, err)
	require.Equal(t, int64(7), commit(s), "after a restart with no event left")
	pruneAll(s)
	crashed := s // not closed: what a kill -9 leaves (the WAL holds the prune)
	t.Cleanup(func() { _ = crashed.Close() })

	s, err = Open(ctx, path, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.Equal(t, int64(8), commit(s), "after a crash with no event left")
}
