package sqlite

import (
	"database/sql"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
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

// Migration 13 (no AUTOINCREMENT on events and deliveries, no events_receive_time, a
// delivery's event seqs in its row) upgrades a database written by the schema before it
// in place: same rows, the same indexes but that one, every delivery's events found as
// before, and the seqs the old sqlite_sequence had given out (here, above the newest
// event left) are never given again.
func TestLeanerEventsAndDeliveriesMigration(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hookmap.db")
	db := databaseAt(t, path, 12)

	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	minute := func(i int) int64 { return start.Add(time.Duration(i) * time.Minute).UnixNano() }
	insertEvent := func(id, ws, delivery string, at int64) {
		t.Helper()
		_, err := db.Exec(`INSERT INTO events (id, workspace_id, connection_id, subscription_id, event_key, type, record,
			delivery_id, receive_time) VALUES (?, ?, 'c', 'sub', 'webhook', 'issue.opened', ?, ?, ?)`,
			id, ws, fmt.Sprintf(`{"id":%q}`, id), delivery, at)
		require.NoError(t, err)
	}
	// Deliveries dlv-00 to dlv-29, one a minute, each with its event (seqs 1 to 30).
	for i := range 30 {
		outcome := store.OutcomeOK
		if i%3 == 0 {
			outcome = store.OutcomeFailed
		}
		_, err := db.Exec(`INSERT INTO deliveries (id, workspace_id, subscription_id, receive_time, status_code, outcome,
			request_method, request_body) VALUES (?, 'w', 'sub', ?, 200, ?, 'POST', ?)`,
			fmt.Sprintf("dlv-%02d", i), minute(i), outcome, []byte(fmt.Sprintf(`{"n":%d}`, i)))
		require.NoError(t, err)
		insertEvent(fmt.Sprintf("ev-%02d", i), "w", fmt.Sprintf("dlv-%02d", i), minute(i))
	}
	insertEvent("ev-05b", "w", "dlv-05", minute(5))       // 31, 32: a replay of dlv-05 (it keeps the receive time)
	insertEvent("ev-05c", "w", "dlv-05", minute(5))       //
	insertEvent("ev-other", "other", "dlv-07", minute(7)) // 33: another workspace's: not dlv-07's
	insertEvent("ev-07-late", "w", "dlv-07", minute(7)+1) // 34: not received with dlv-07: the old query left it out
	insertEvent("ev-gone", "w", "", minute(40))           // 35
	// The newest deliveries, their events and the newest event deleted: sqlite_sequence
	// remembers seq 35, above the highest left (34).
	_, err := db.Exec(`DELETE FROM events WHERE seq BETWEEN 26 AND 30 OR seq = 35`)
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
	require.Equal(t, slices.DeleteFunc(eventIndexes, func(q string) bool { return strings.Contains(q, "events_receive_time") }), got)
	got, auto = schemaOf(t, s.r, "deliveries")
	require.False(t, auto)
	require.Equal(t, deliveryIndexes, got)
	var sequences int
	require.NoError(t, s.r.QueryRow(`SELECT COUNT(*) FROM sqlite_sequence WHERE name IN ('events', 'deliveries')`).Scan(&sequences))
	require.Zero(t, sequences)

	// Every row is there, as it was.
	evs, err := s.ListEvents(t.Context(), "w", store.EventFilter{}, 0, 100)
	require.NoError(t, err)
	require.Len(t, evs, 28)
	for i, ev := range evs[:25] {
		require.Equal(t, int64(i+1), ev.Seq)
		require.Equal(t, fmt.Sprintf("ev-%02d", i), ev.ID)
		require.Equal(t, map[string]any{"id": ev.ID}, ev.Record)
	}
	d, err := s.GetDelivery(t.Context(), "w", "dlv-03")
	require.NoError(t, err)
	require.Equal(t, store.OutcomeFailed, d.Outcome)
	require.JSONEq(t, `{"n":3}`, string(d.Request.Body))
	list, _, err := s.ListDeliveries(t.Context(), "w", store.DeliveryFilter{Outcome: store.OutcomeFailed}, store.Page{Size: 100})
	require.NoError(t, err)
	require.Len(t, list, 9)
	require.Equal(t, "dlv-24", list[0].ID, "newest first")

	// A delivery's events are what the old query found, in seq order.
	for id, want := range map[string][]string{
		"dlv-03": {"ev-03"},
		"dlv-05": {"ev-05", "ev-05b", "ev-05c"},
		"dlv-07": {"ev-07"},
	} {
		d, err := s.GetDelivery(t.Context(), "w", id)
		require.NoError(t, err)
		evs, err := s.DeliveryEvents(t.Context(), "w", d, 10)
		require.NoError(t, err)
		var ids []string
		for _, ev := range evs {
			ids = append(ids, ev.ID)
		}
		require.Equal(t, want, ids, id)
	}
	var runs string
	require.NoError(t, s.r.QueryRow(`SELECT event_seqs FROM deliveries WHERE id = 'dlv-05'`).Scan(&runs))
	require.Equal(t, "6,31-32", runs)

	// The next event is given seq 36, above every seq ever given; the next delivery is
	// listed first, and its event is found.
	r, err := s.CommitDelivery(t.Context(), &store.DeliveryCommit{
		Delivery: &store.Delivery{ID: "dlv-new", WorkspaceID: "w", SubscriptionID: "sub", ReceiveTime: time.Now(),
			StatusCode: 200, Outcome: store.OutcomeOK, EventCount: 1},
		Events: []*store.Event{{ID: "ev-new", WorkspaceID: "w", ConnectionID: "c", SubscriptionID: "sub",
			EventKey: "webhook", Type: "issue.opened", DeliveryID: "dlv-new", ReceiveTime: time.Now(), Record: map[string]any{}}},
	})
	require.NoError(t, err)
	require.Equal(t, int64(36), r.MaxSeq)
	list, _, err = s.ListDeliveries(t.Context(), "w", store.DeliveryFilter{}, store.Page{Size: 1})
	require.NoError(t, err)
	require.Equal(t, "dlv-new", list[0].ID)
	evs, err = s.DeliveryEvents(t.Context(), "w", list[0], 10)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Equal(t, "ev-new", evs[0].ID)
}

// formatSeqRuns and seqRuns agree; duplicates (zeros) leave no gap in a run.
func TestSeqRuns(t *testing.T) {
	for _, tc := range []struct {
		seqs []int64
		want string
		runs [][2]int64
	}{
		{nil, "", nil},
		{[]int64{0, 0}, "", nil},
		{[]int64{7}, "7", [][2]int64{{7, 7}}},
		{[]int64{12, 13, 14}, "12-14", [][2]int64{{12, 14}}},
		{[]int64{12, 0, 13, 0}, "12-13", [][2]int64{{12, 13}}},
		{[]int64{12, 13, 16, 20, 21}, "12-13,16,20-21", [][2]int64{{12, 13}, {16, 16}, {20, 21}}},
	} {
		got := formatSeqRuns(tc.seqs)
		require.Equal(t, tc.want, got)
		var runs [][2]int64
		for lo, hi := range seqRuns(got) {
			runs = append(runs, [2]int64{lo, hi})
		}
		require.Equal(t, tc.runs, runs, got)
	}
	var runs [][2]int64
	for lo, hi := range seqRuns("3-4,x,9") {
		runs = append(runs, [2]int64{lo, hi})
	}
	require.Equal(t, [][2]int64{{3, 4}}, runs, "stops at what it cannot read")
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

// Migration 13 goes down as well as up: the tables get AUTOINCREMENT and
// events_receive_time back with their rows, sqlite_sequence the highest seq ever given,
// and going up again keeps every seq.
func TestLeanerEventsAndDeliveriesDown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookmap.db")
	s, err := Open(t.Context(), path, Options{})
	require.NoError(t, err)
	require.NoError(t, s.CreateWorkspace(t.Context(), &store.Workspace{ID: "w", Name: "w"}))
	for i := range 3 {
		_, err := s.CommitDelivery(t.Context(), &store.DeliveryCommit{
			Delivery: &store.Delivery{ID: fmt.Sprintf("dlv-%d", i), WorkspaceID: "w", ReceiveTime: time.Now(), StatusCode: 200,
				Outcome: store.OutcomeOK, EventCount: 1},
			Events: []*store.Event{{ID: fmt.Sprintf("ev-%d", i), WorkspaceID: "w", ConnectionID: "c", EventKey: "k", Type: "t",
				DeliveryID: fmt.Sprintf("dlv-%d", i), ReceiveTime: time.Now(), Record: map[string]any{"i": int64(i)}}},
		})
		require.NoError(t, err)
	}
	_, err = s.wc.ExecContext(t.Context(), `DELETE FROM events WHERE seq = 3`) // the newest: the floor keeps 3
	require.NoError(t, err)
	require.NoError(t, s.Close())

	db := databaseAt(t, path, 13)
	sub, err := fs.Sub(migrationsFS, "migrations")
	require.NoError(t, err)
	p, err := goose.NewProvider(goose.DialectSQLite3, db, sub, goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations((&Store{}).sealStateMigration()))
	require.NoError(t, err)
	_, err = p.DownTo(t.Context(), 12)
	require.NoError(t, err)
	indexes, auto := schemaOf(t, db, "events")
	require.True(t, auto)
	require.Contains(t, indexes, "CREATE INDEX events_receive_time ON events (receive_time)")
	_, auto = schemaOf(t, db, "deliveries")
	require.True(t, auto)
	var events, deliveries, sequence int64
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM events`).Scan(&events))
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM deliveries`).Scan(&deliveries))
	require.NoError(t, db.QueryRow(`SELECT seq FROM sqlite_sequence WHERE name = 'events'`).Scan(&sequence))
	require.Equal(t, []int64{2, 3, 3}, []int64{events, deliveries, sequence})
	require.NoError(t, db.Close())

	s, err = Open(t.Context(), path, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	r, err := s.CommitDelivery(t.Context(), &store.DeliveryCommit{Events: []*store.Event{{ID: "ev-new", WorkspaceID: "w",
		ConnectionID: "c", EventKey: "k", Type: "t", ReceiveTime: time.Now(), Record: map[string]any{}}}})
	require.NoError(t, err)
	require.Equal(t, int64(4), r.MaxSeq, "above every seq ever given, down and up again")
}
