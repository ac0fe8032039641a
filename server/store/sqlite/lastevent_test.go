package sqlite

import (
	"io"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

// rowLastEvent reads a subscription's last_event_time from its row, past the pending times.
func rowLastEvent(t *testing.T, s *Store, id string) time.Time {
	t.Helper()
	var at int64
	require.NoError(t, s.r.QueryRow(`SELECT last_event_time FROM subscriptions WHERE id = ?`, id).Scan(&at))
	return fromNanos(at)
}

func lastEventMarkValue(t *testing.T, s *Store) int64 {
	t.Helper()
	var v int64
	require.NoError(t, s.r.QueryRow(`SELECT value FROM store_marks WHERE name = ?`, lastEventMark).Scan(&v))
	return v
}

// A delivery's commit does not write its subscription's row; every read of the
// subscription returns the new time all the same, and the flush writes it to the row.
func TestLastEventTimePendingThenFlushed(t *testing.T) {
	s := openTest(t, Options{CheckpointInterval: time.Hour})
	ctx := t.Context()
	f := newCacheFixture(t, s, 0)
	other := newCacheFixture(t, s, 1)
	at := time.Unix(7000, 0).UTC()
	res, err := s.CommitDelivery(ctx, &store.DeliveryCommit{Events: []*store.Event{
		cacheEvent(f, at.Add(-time.Second)), cacheEvent(f, at), cacheEvent(other, at.Add(-time.Minute)),
	}})
	require.NoError(t, err)

	require.True(t, rowLastEvent(t, s, f.sub.ID).IsZero(), "the commit left the row alone")
	got, err := s.GetSubscription(ctx, f.ws, f.sub.ID)
	require.NoError(t, err)
	require.Equal(t, at, got.LastEventTime, "GetSubscription")
	got, err = s.LookupSubscription(ctx, f.sub.ID)
	require.NoError(t, err)
	require.Equal(t, at, got.LastEventTime, "LookupSubscription")
	list, _, err := s.ListSubscriptions(ctx, other.ws, "", store.Page{})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, at.Add(-time.Minute), list[0].LastEventTime, "ListSubscriptions")
	_, err = s.GetSubscription(ctx, other.ws, f.sub.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "another workspace's read sees nothing")

	// UpdateSubscription keeps the later time, pending or not.
	got.LastEventTime = time.Time{}
	got.LastError = "e"
	require.NoError(t, s.UpdateSubscription(ctx, got))
	require.Equal(t, at, got.LastEventTime, "UpdateSubscription")

	flushLastEvents(t, s)
	require.Equal(t, at, rowLastEvent(t, s, f.sub.ID))
	require.Equal(t, at.Add(-time.Minute), rowLastEvent(t, s, other.sub.ID))
	require.Equal(t, res.MaxSeq, lastEventMarkValue(t, s), "the mark covers every event stored")
	got, err = s.LookupSubscription(ctx, f.sub.ID)
	require.NoError(t, err)
	require.Equal(t, at, got.LastEventTime, "the cached row has the flushed time")

	// An older event never moves the time back.
	_, err = s.CommitDelivery(ctx, &store.DeliveryCommit{Events: []*store.Event{cacheEvent(f, at.Add(-time.Hour))}})
	require.NoError(t, err)
	flushLastEvents(t, s)
	got, err = s.GetSubscription(ctx, f.ws, f.sub.ID)
	require.NoError(t, err)
	require.Equal(t, at, got.LastEventTime)
}

// Close writes what is pending.
func TestLastEventTimeWrittenAtClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookmap.db")
	s, err := Open(t.Context(), path, Options{CheckpointInterval: time.Hour})
	require.NoError(t, err)
	f := newCacheFixture(t, s, 0)
	at := time.Unix(8000, 0).UTC()
	res, err := s.CommitDelivery(t.Context(), &store.DeliveryCommit{Events: []*store.Event{cacheEvent(f, at)}})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	// Read the file as Close left it: Open would recompute the time from the events.
	db, err := openDB(path, 1, url.Values{"_query_only": {"1"}})
	require.NoError(t, err)
	defer db.Close()
	var row, mark int64
	require.NoError(t, db.QueryRow(`SELECT last_event_time FROM subscriptions WHERE id = ?`, f.sub.ID).Scan(&row))
	require.NoError(t, db.QueryRow(`SELECT value FROM store_marks WHERE name = ?`, lastEventMark).Scan(&mark))
	require.Equal(t, at, fromNanos(row))
	require.Equal(t, res.MaxSeq, mark)
}

// After a crash, the times that were only in memory are recomputed from the events stored
// after the mark, before anything reads.
func TestLastEventTimeRecoveredAfterCrash(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{CheckpointInterval: time.Hour})
	ctx := t.Context()
	f := newCacheFixture(t, s, 0)
	other := newCacheFixture(t, s, 1)
	first := time.Unix(9000, 0).UTC()
	_, err := s.CommitDelivery(ctx, &store.DeliveryCommit{Events: []*store.Event{cacheEvent(f, first), cacheEvent(other, first)}})
	require.NoError(t, err)
	flushLastEvents(t, s) // the mark covers these
	mark := lastEventMarkValue(t, s)
	later := first.Add(time.Hour)
	_, err = s.CommitDelivery(ctx, &store.DeliveryCommit{Events: []*store.Event{cacheEvent(f, later), cacheEvent(f, later.Add(-time.Minute))}})
	require.NoError(t, err)
	require.Equal(t, first, rowLastEvent(t, s, f.sub.ID), "pending only")

	// The crash: the files as the open store left them (every commit is in its WAL, the
	// pending time is not), opened elsewhere.
	crashed := filepath.Join(dir, "crashed.db")
	for _, suffix := range []string{"", "-wal"} {
		copyFile(t, s.path+suffix, crashed+suffix)
	}
	c, err := Open(ctx, crashed, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.Equal(t, later, rowLastEvent(t, c, f.sub.ID), "recovered from the events after the mark")
	require.Equal(t, first, rowLastEvent(t, c, other.sub.ID), "no event after the mark: unchanged")
	require.Greater(t, lastEventMarkValue(t, c), mark)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}

// Migration 12 marks every event of a database written by migration 11 as covered: that
// version wrote last_event_time in the commit.
func TestLastEventMarksMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookmap.db")
	db := databaseAt(t, path, 11)
	for i := range 3 {
		_, err := db.Exec(`INSERT INTO events (id, workspace_id, connection_id, subscription_id, event_key, type, record, receive_time)
			VALUES (?, 'w', 'c', 's', 'e', 't', '{}', ?)`, newTestID(i), int64(i+1)*1e9)
		require.NoError(t, err)
	}
	require.NoError(t, db.Close())
	s, err := Open(t.Context(), path, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.Equal(t, int64(3), lastEventMarkValue(t, s))
}
