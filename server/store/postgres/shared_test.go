package postgres

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/postgres/pgtest"
)

// watcher collects what Watch reports.
type watcher struct {
	mu      sync.Mutex
	changes []store.Change
}

func watch(t *testing.T, s *Store) *watcher {
	t.Helper()
	w := &watcher{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Watch(ctx, func(c store.Change) {
			w.mu.Lock()
			w.changes = append(w.changes, c)
			w.mu.Unlock()
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

func (w *watcher) has(c store.Change) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, got := range w.changes {
		if got == c {
			return true
		}
	}
	return false
}

func (w *watcher) all() []store.Change {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]store.Change(nil), w.changes...)
}

// TestWatchReportsOtherReplicasChanges: what one replica commits reaches the other's
// Watch; a replica does not hear itself.
func TestWatchReportsOtherReplicasChanges(t *testing.T) {
	url := pgtest.Schema(t)
	a, b := openTest(t, url, Options{}), openTest(t, url, Options{})
	wa, wb := watch(t, a), watch(t, b)
	f := newFixture(t, a)
	ctx := t.Context()
	// Watch has no "listening" signal: commit until b hears one of the commits.
	var seqs []int64
	require.Eventually(t, func() bool {
		for _, c := range wb.all() {
			if c.Kind == store.ChangeEvents && c.WorkspaceID == f.ws && slices.Contains(seqs, c.Seq) {
				return true
			}
		}
		if res, err := f.commitOne(ctx, a, ""); err == nil {
			seqs = append(seqs, res.MaxSeq)
		}
		return false
	}, 30*time.Second, 20*time.Millisecond)

	gen, err := a.OpenStream(ctx, f.ws, "billing")
	require.NoError(t, err)
	require.Equal(t, int64(1), gen)
	gen2, err := b.OpenStream(ctx, f.ws, "billing")
	require.NoError(t, err)
	require.Equal(t, int64(2), gen2, "generations grow across replicas")
	got, err := a.StreamGeneration(ctx, f.ws, "billing")
	require.NoError(t, err)
	require.Equal(t, int64(2), got)
	got, err = a.StreamGeneration(ctx, f.ws, "audit")
	require.NoError(t, err)
	require.Zero(t, got)

	require.Eventually(t, func() bool {
		return wb.has(store.Change{Kind: store.ChangeStream, WorkspaceID: f.ws, Consumer: "billing", Generation: 1}) &&
			wa.has(store.Change{Kind: store.ChangeStream, WorkspaceID: f.ws, Consumer: "billing", Generation: 2})
	}, 30*time.Second, 10*time.Millisecond)
	for _, c := range wa.all() {
		require.NotEqual(t, store.ChangeEvents, c.Kind, "a replica does not hear its own commits: %+v", c)
		require.NotEqual(t, int64(1), c.Generation, "nor its own streams")
	}
}
