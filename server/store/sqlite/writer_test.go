package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

// hold queues an op that blocks the writer until the returned release is called.
func hold(t *testing.T, s *Store) (release func()) {
	t.Helper()
	started, unblock := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.write(context.Background(), func(*wtx) error {
			close(started)
			<-unblock
			return nil
		})
	}()
	<-started
	var once sync.Once
	return func() {
		once.Do(func() {
			close(unblock)
			require.NoError(t, <-done)
		})
	}
}

// waitQueued waits until n ops wait in the queue.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return len(s.queue) == n }, 5*time.Second, time.Millisecond)
}

func insertWorkspace(id string) func(*wtx) error {
	return func(w *wtx) error {
		_, err := w.exec(`INSERT INTO workspaces (id, name) VALUES (?, ?)`, id, id)
		return insertErr("workspace", id, "", err)
	}
}

func TestGroupCommitBatches(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := openTest(t, Options{Registerer: reg})
	release := hold(t, s)
	before := s.batches.Load()

	const n = 20
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- s.write(context.Background(), insertWorkspace(newTestID(i))) }()
	}
	waitQueued(t, s, n)
	release()
	for range n {
		require.NoError(t, <-errs)
	}
	require.Equal(t, before+2, s.batches.Load(), "the held op, then all %d queued ops in one transaction", n)
	counts, sums := histogramCounts(t, reg, "hookmap_store_commit_batch_size")
	require.Equal(t, []uint64{2}, counts)
	require.Equal(t, []float64{n + 1}, sums)
}

func TestBadWriteFailsAlone(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := openTest(t, Options{Registerer: reg})
	require.NoError(t, s.CreateWorkspace(t.Context(), &store.Workspace{ID: "taken", Name: "taken"}))
	release := hold(t, s)
	before := s.batches.Load()

	const n = 10
	bad := map[int]bool{3: true, 7: true}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		id := newTestID(i)
		if bad[i] {
			id = "taken"
		}
		wg.Go(func() { errs[i] = s.write(context.Background(), insertWorkspace(id)) })
	}
	waitQueued(t, s, n)
	release()
	wg.Wait()
	for i, err := range errs {
		if bad[i] {
			require.ErrorIs(t, err, store.ErrAlreadyExists)
		} else {
			require.NoError(t, err, "op %d", i)
			_, err := s.GetWorkspace(t.Context(), newTestID(i))
			require.NoError(t, err)
		}
	}
	require.Equal(t, before+2, s.batches.Load(), "the held op, then the %d good ops together", n-len(bad))
	counts, sums := histogramCounts(t, reg, "hookmap_store_commit_batch_size")
	require.Equal(t, []uint64{3}, counts)
	require.Equal(t, []float64{1 + 1 + n - 2}, sums)
}

// TestFailedCommitRetriesOneByOne: a failure at COMMIT (here a deferred foreign key) belongs
// to no op, so each op is run again in its own transaction.
func TestFailedCommitRetriesOneByOne(t *testing.T) {
	s := openTest(t, Options{})
	release := hold(t, s)
	before := s.batches.Load()

	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		fn := insertWorkspace(newTestID(i))
		if i == 2 {
			fn = func(w *wtx) error {
				if _, err := w.exec(`PRAGMA defer_foreign_keys = ON`); err != nil {
					return err
				}
				_, err := w.exec(`INSERT INTO api_keys (id, workspace_id, name, hash) VALUES ('k', 'no-such-workspace', 'k', x'00')`)
				return err
			}
		}
		wg.Go(func() { errs[i] = s.write(context.Background(), fn) })
	}
	waitQueued(t, s, n)
	release()
	wg.Wait()
	for i, err := range errs {
		if i == 2 {
			require.Error(t, err)
			require.True(t, isFKViolation(err), "%v", err)
		} else {
			require.NoError(t, err, "op %d", i)
		}
	}
	require.Equal(t, before+1+n-1, s.batches.Load(), "the held op, then the good ops one transaction each")
	_, err := s.GetWorkspace(t.Context(), newTestID(n-1))
	require.NoError(t, err)
}

func TestCanceledWhileQueuedNeverRuns(t *testing.T) {
	s := openTest(t, Options{})
	release := hold(t, s)
	defer release()

	ctx, cancel := context.WithCancel(t.Context())
	var ran atomic.Bool
	errc := make(chan error, 1)
	go func() {
		errc <- s.write(ctx, func(*wtx) error { ran.Store(true); return nil })
	}()
	waitQueued(t, s, 1)
	cancel()
	select {
	case err := <-errc:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("a canceled caller waits for the writer")
	}
	release()
	require.NoError(t, s.write(t.Context(), func(*wtx) error { return nil })) // the queue has moved past it
	require.False(t, ran.Load(), "a canceled op never runs")
}

func TestCloseDrainsQueue(t *testing.T) {
	s := openTest(t, Options{})
	release := hold(t, s)
	const n = 30
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- s.write(context.Background(), insertWorkspace(newTestID(i))) }()
	}
	waitQueued(t, s, n)
	closed := make(chan error)
	go func() { closed <- s.Close() }()
	require.Eventually(t, func() bool { return s.isClosed.Load() }, 5*time.Second, time.Millisecond)
	require.ErrorIs(t, s.write(context.Background(), insertWorkspace("late")), store.ErrClosed)
	release()
	for range n {
		require.NoError(t, <-errs, "ops queued before Close are committed")
	}
	require.NoError(t, <-closed)
	require.NoError(t, s.Close(), "a second Close is a no-op")

	s2, err := Open(t.Context(), s.path, Options{})
	require.NoError(t, err)
	defer s2.Close()
	ws, _, err := s2.ListWorkspaces(t.Context(), store.Page{Size: 100})
	require.NoError(t, err)
	require.Len(t, ws, n)
}

func TestPragmas(t *testing.T) {
	s := openTest(t, Options{})
	ctx := t.Context()
	pragma := func(db *sql.DB, name string) string {
		var v string
		require.NoError(t, db.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v))
		return v
	}
	// The writer connection is the writer goroutine's: read its settings from inside a write.
	want := map[string]string{
		"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "wal_autocheckpoint": "0",
		"busy_timeout": "10000", "query_only": "0",
	}
	got := map[string]string{}
	require.NoError(t, s.write(ctx, func(w *wtx) error {
		for name := range want {
			var v string
			if err := w.queryRow("PRAGMA " + name).Scan(&v); err != nil {
				return err
			}
			got[name] = v
		}
		return nil
	}))
	require.Equal(t, want, got)
	require.Equal(t, "1", pragma(s.r, "query_only"))
	require.Equal(t, "wal", pragma(s.r, "journal_mode"))
	require.Equal(t, "1", pragma(s.r, "foreign_keys"))
	require.Equal(t, "0", pragma(s.ck, "wal_autocheckpoint"))
	require.Equal(t, "2", pragma(s.ck, "synchronous"))
	require.Equal(t, "0", pragma(s.ck, "busy_timeout"), "the checkpointer never waits for a lock")

	_, err := s.r.ExecContext(ctx, `INSERT INTO workspaces (id, name) VALUES ('x', 'x')`)
	require.Error(t, err, "the read pool cannot write")

	// _txlock=immediate: a write transaction holds the write lock from BEGIN, before it
	// writes anything.
	other, err := sql.Open("sqlite", s.path+"?_busy_timeout=0")
	require.NoError(t, err)
	defer other.Close()
	var beginErr error
	require.NoError(t, s.write(ctx, func(*wtx) error {
		_, beginErr = other.ExecContext(ctx, "BEGIN IMMEDIATE")
		return nil
	}))
	require.Error(t, beginErr, "the writer's empty transaction already holds the lock")

	// Every embedded migration is applied, and the Go one.
	files, err := fs.Glob(migrationsFS, "migrations/*.sql")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var applied int
	require.NoError(t, s.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM goose_db_version WHERE version_id > 0").Scan(&applied))
	require.Equal(t, len(files)+1, applied)

	fi, err := os.Stat(s.path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

func TestCheckpointTruncatesLargeWAL(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := openTest(t, Options{WALTruncateSize: 256 << 10, CheckpointInterval: time.Hour, Registerer: reg})
	s.sinceWake = math.MinInt64 // nor does the writer wake the checkpointer: this test runs it
	ctx := t.Context()
	require.NoError(t, s.CreateWorkspace(ctx, &store.Workspace{ID: "w", Name: "w"}))
	body := make([]byte, 8<<10)
	for i := range 100 {
		require.NoError(t, s.SetConnectorParameters(ctx, "w", newTestID(i), body))
	}
	require.Greater(t, s.walSize(), int64(256<<10), "no automatic checkpoint shrank the WAL")

	require.True(t, s.checkpoint())
	require.Zero(t, s.walSize(), "TRUNCATE resets the WAL")
	require.True(t, s.checkpoint(), "PASSIVE on an empty WAL")
	counts, _ := histogramCounts(t, reg, "hookmap_store_checkpoint_duration_seconds")
	require.Equal(t, []uint64{2, 1}, counts, "PASSIVE twice, TRUNCATE once (after the first, complete PASSIVE)")

	// The data is intact.
	got, err := s.GetConnectorParameters(ctx, "w", newTestID(99))
	require.NoError(t, err)
	require.Equal(t, body, got)
}

// TestBackgroundCheckpoint: a reader pinning an old snapshot makes the WAL grow (it cannot
// be reused) without stalling the writer; once the reader is gone the checkpointer resets it.
func TestBackgroundCheckpoint(t *testing.T) {
	s := openTest(t, Options{WALTruncateSize: 64 << 10, CheckpointInterval: 5 * time.Millisecond})
	ctx := t.Context()
	require.NoError(t, s.CreateWorkspace(ctx, &store.Workspace{ID: "w", Name: "w"}))

	reader, err := sql.Open("sqlite", s.path)
	require.NoError(t, err)
	defer reader.Close()
	conn, err := reader.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "BEGIN")
	require.NoError(t, err)
	var n int
	require.NoError(t, conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM workspaces").Scan(&n)) // takes the snapshot

	body := make([]byte, 8<<10)
	var slowest time.Duration
	for i := range 40 {
		start := time.Now()
		require.NoError(t, s.SetConnectorParameters(ctx, "w", newTestID(i), body))
		slowest = max(slowest, time.Since(start))
		time.Sleep(time.Millisecond) // let the checkpointer run between commits
	}
	require.Greater(t, s.walSize(), int64(64<<10), "the pinned WAL grows")
	require.Less(t, slowest, 200*time.Millisecond, "checkpoints make the writer wait for the reader once at most (restartWait)")

	_, err = conn.ExecContext(ctx, "COMMIT")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s.walSize() == 0 }, 10*time.Second, 5*time.Millisecond)
	got, err := s.GetConnectorParameters(ctx, "w", newTestID(39))
	require.NoError(t, err)
	require.Equal(t, body, got)
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "hookmap.db")
	reg := prometheus.NewRegistry()
	s, err := Open(t.Context(), path, Options{Registerer: reg})
	require.NoError(t, err)
	require.NoError(t, s.CreateWorkspace(t.Context(), &store.Workspace{ID: "w", Name: "w"}))
	require.NoError(t, s.Close())

	s, err = Open(t.Context(), path, Options{Registerer: reg}) // same registry: metrics re-registered
	require.NoError(t, err)
	defer s.Close()
	_, err = s.GetWorkspace(t.Context(), "w")
	require.NoError(t, err)
}

func TestOpenRejectsMemory(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file::memory:", "a?b"} {
		_, err := Open(t.Context(), p, Options{})
		require.Error(t, err, p)
	}
}

func TestPanicInWriteIsAnError(t *testing.T) {
	s := openTest(t, Options{})
	err := s.write(t.Context(), func(*wtx) error { panic("boom") })
	require.ErrorContains(t, err, "boom")
	require.NoError(t, s.write(t.Context(), insertWorkspace("after")))
	_, err = s.GetWorkspace(t.Context(), "after")
	require.NoError(t, err, "the writer survived the panic")
}

// The WAL metric counts the frames commits append: a small write is a few whole frames
// (each a page and its header), and a write of a 100 KiB value at least 100 KiB more.
func TestWALWrittenMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := openTest(t, Options{Registerer: reg, CheckpointInterval: time.Hour})
	written := func() float64 { return counterValue(t, reg, "hookmap_store_wal_written_bytes_total") }
	before := written()
	require.NoError(t, s.write(t.Context(), insertWorkspace("small")))
	small := written() - before
	require.Positive(t, small)
	frame := float64(DefaultPageSize + walFrameHeader)
	require.Zero(t, math.Mod(small, frame), "whole frames")
	require.NoError(t, s.write(t.Context(), func(w *wtx) error {
		_, err := w.exec(`INSERT INTO workspaces (id, name) VALUES (?, ?)`, "large", strings.Repeat("x", 100<<10))
		return err
	}))
	require.GreaterOrEqual(t, written()-before-small, float64(100<<10)/DefaultPageSize*frame)
}

// Under sustained writes with readers always about (a consumer streaming), a PASSIVE
// checkpoint is never complete; the writer restarts the WAL once it holds half of
// WALTruncateSize, so the file stays bounded instead of growing with everything written.
func TestWALBoundedUnderSustainedLoad(t *testing.T) {
	const limit = 256 << 10
	reg := prometheus.NewRegistry()
	s := openTest(t, Options{WALTruncateSize: limit, CheckpointInterval: 5 * time.Millisecond, Registerer: reg})
	ctx := t.Context()
	require.NoError(t, s.CreateWorkspace(ctx, &store.Workspace{ID: "w", Name: "w"}))
	written := func() float64 { return counterValue(t, reg, "hookmap_store_wal_written_bytes_total") }

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var peak atomic.Int64
	body := make([]byte, 4<<10)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := s.SetConnectorParameters(ctx, "w", newTestID(w*100+i%100), body); err != nil {
					t.Error(err)
					return
				}
				if size := s.walSize(); size > peak.Load() {
					peak.Store(size)
				}
			}
		})
	}
	for r := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.GetConnectorParameters(ctx, "w", newTestID(r*100+i%100)); err != nil && !errors.Is(err, store.ErrNotFound) {
					t.Error(err)
					return
				}
				time.Sleep(100 * time.Microsecond) // a consumer reads, then waits for more
			}
		})
	}
	require.Eventually(t, func() bool { return written() > 24*limit }, time.Minute, time.Millisecond)
	close(stop)
	wg.Wait()
	// Without the restarts the file holds about everything written (24 times the limit);
	// with them, the limit's half plus what commits add while a restart is due or
	// postponed by the readers.
	require.LessOrEqual(t, peak.Load(), int64(4*limit), "WAL peak after %.0f MiB written", written()/(1<<20))
	counts, _ := histogramCounts(t, reg, "hookmap_store_checkpoint_duration_seconds")
	require.GreaterOrEqual(t, len(counts), 2, "PASSIVE, and RESTART or TRUNCATE by the writer")
}

// Under a heavy load the writer wakes the checkpointer every WALTruncateSize/8 bytes, so
// the WAL stays bounded even when the checkpointer's own period is long.
func TestWriterWakesCheckpointer(t *testing.T) {
	const limit = 256 << 10
	s := openTest(t, Options{WALTruncateSize: limit, CheckpointInterval: time.Hour})
	ctx := t.Context()
	require.NoError(t, s.CreateWorkspace(ctx, &store.Workspace{ID: "w", Name: "w"}))
	body := make([]byte, 4<<10)
	var peak int64
	for i := range 400 { // 1.6 MiB of parameters, several times the limit
		require.NoError(t, s.SetConnectorParameters(ctx, "w", newTestID(i%50), body))
		peak = max(peak, s.walSize())
	}
	require.LessOrEqual(t, peak, int64(2*limit))
}

// A transaction left open on the writer's connection (a ROLLBACK that failed) is rolled
// back by the next BEGIN, whose write then commits.
func TestBeginAfterATransactionLeftOpen(t *testing.T) {
	s := openTest(t, Options{})
	require.NoError(t, s.write(t.Context(), func(w *wtx) error {
		_, err := w.exec(`INSERT INTO workspaces (id, name) VALUES ('left', 'left')`)
		return err
	}))
	// The writer is idle between batches: open a transaction on its connection as a
	// failed ROLLBACK would leave it, with a write in it that must not survive.
	_, err := s.wc.ExecContext(t.Context(), `BEGIN IMMEDIATE`)
	require.NoError(t, err)
	_, err = s.wc.ExecContext(t.Context(), `INSERT INTO workspaces (id, name) VALUES ('orphan', 'orphan')`)
	require.NoError(t, err)
	require.NoError(t, s.CreateWorkspace(t.Context(), &store.Workspace{ID: "after", Name: "after"}))
	_, err = s.GetWorkspace(t.Context(), "after")
	require.NoError(t, err)
	_, err = s.GetWorkspace(t.Context(), "orphan")
	require.ErrorIs(t, err, store.ErrNotFound, "the transaction left open was rolled back")
}
