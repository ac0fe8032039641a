package sqlite

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

// walFile is the writer's WAL file as the VFS opened it.
func walFile(t *testing.T, s *Store) *shimFile {
	t.Helper()
	var found *shimFile
	shimFiles.Range(func(_, v any) bool {
		if f := v.(*shimFile); f.wal && f.name == s.path+"-wal" {
			found = f
		}
		return found == nil
	})
	require.NotNil(t, found, "the writer's WAL file is opened through the VFS")
	return found
}

// commitEvents commits n deliveries of one event each, whose records hold pad bytes, in
// one transaction.
func commitEvents(t *testing.T, s *Store, n, pad int) {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, s.write(ctx, func(w *wtx) error {
		for i := range n {
			id := "dlv_" + uuid.Must(uuid.NewV7()).String()
			now := time.Now()
			p, err := prepareCommit(&store.DeliveryCommit{
				Delivery: &store.Delivery{ID: id, WorkspaceID: "default", SubscriptionID: "sub", ReceiveTime: now,
					StatusCode: 200, Outcome: store.OutcomeOK, EventCount: 1},
				Events: []*store.Event{{ID: "evt_" + uuid.Must(uuid.NewV7()).String(), WorkspaceID: "default",
					ConnectionID: "conn", SubscriptionID: "sub", EventKey: "webhook", Type: "t", DeliveryID: id,
					ReceiveTime: now, Record: map[string]any{"i": int64(i), "pad": strings.Repeat("x", pad)}}},
			}, "")
			if err != nil {
				return err
			}
			if _, err := s.runCommit(w, p); err != nil {
				return err
			}
		}
		return nil
	}))
}

func walVFSStore(t *testing.T) *Store {
	t.Helper()
	s := openTest(t, Options{CheckpointInterval: time.Hour})
	ctx := t.Context()
	require.NoError(t, s.CreateWorkspace(ctx, &store.Workspace{ID: "default", Name: "w"}))
	require.NoError(t, s.CreateConnection(ctx, &store.Connection{WorkspaceID: "default", ID: "conn", ConnectorKey: "bench", Name: "c"}))
	require.NoError(t, s.CreateSubscription(ctx, &store.Subscription{WorkspaceID: "default", ID: "sub", ConnectionID: "conn",
		ConnectorKey: "bench", EventKey: "webhook", Status: store.StatusActive}))
	return s
}

// TestWALWritesGathered: a commit's frames (two writes each) reach the file in one write,
// made before the commit's sync.
func TestWALWritesGathered(t *testing.T) {
	s := walVFSStore(t)
	f := walFile(t, s)
	w0, f0 := f.writes.Load(), f.flushes.Load()
	const commits = 20
	for range commits {
		commitEvents(t, s, 25, 100)
	}
	writes, flushes := f.writes.Load()-w0, f.flushes.Load()-f0
	t.Logf("%d commits: SQLite asked for %d WAL writes, %d made", commits, writes, flushes)
	require.GreaterOrEqual(t, writes, int64(commits*2*6), "two writes per frame, several frames per commit")
	require.LessOrEqual(t, flushes, int64(commits*2), "one write per commit (and one for a WAL header)")
	require.Empty(t, f.buf, "nothing is left unwritten after a commit")

	// what was committed is read back, by the writer and by the read pool
	evs, err := s.ListEvents(t.Context(), "default", store.EventFilter{}, 0, 1000)
	require.NoError(t, err)
	require.Len(t, evs, commits*25)
	var n int
	require.NoError(t, s.r.QueryRowContext(t.Context(), "SELECT count(*) FROM deliveries").Scan(&n))
	require.Equal(t, commits*25, n)
}

// TestWALVFSLargeCommit: a commit of over a megabyte of WAL is written in chunks the unix
// VFS accepts (it writes at most 128 KiB per call), and survives a reopen.
func TestWALVFSLargeCommit(t *testing.T) {
	s := walVFSStore(t)
	f := walFile(t, s)
	f0 := f.flushes.Load()
	commitEvents(t, s, 400, 3000)
	require.GreaterOrEqual(t, f.flushes.Load()-f0, int64(1<<20/maxWALChunk), "chunks of at most maxWALChunk")
	path := s.path
	require.NoError(t, s.Close())

	s2, err := Open(t.Context(), path, Options{})
	require.NoError(t, err)
	defer s2.Close()
	evs, err := s2.ListEvents(t.Context(), "default", store.EventFilter{}, 0, 1000)
	require.NoError(t, err)
	require.Len(t, evs, 400)
	require.Equal(t, fmt.Sprint(int64(399)), fmt.Sprint(evs[399].Record.(map[string]any)["i"]))
}
