package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/storetest"
)

func TestMain(m *testing.M) {
	if dir := crashChildDir(); dir != "" {
		crashChild(dir) // never returns
	}
	goleak.VerifyTestMain(m)
}

// openTest opens a store in a new temporary directory, closed when the test ends.
func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "hookmap.db"), opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.RunAll(t, func(t *testing.T) store.Store { return openTest(t, Options{}) })
}

func TestAuthConformance(t *testing.T) {
	storetest.RunAuth(t, func(t *testing.T) store.Store { return openTest(t, Options{}) })
}

func TestOutgoingConformance(t *testing.T) {
	storetest.RunOutgoing(t, func(t *testing.T) store.Store { return openTest(t, Options{}) })
}

func TestDestinationConformance(t *testing.T) {
	storetest.RunDestinations(t, func(t *testing.T) store.Store { return openTest(t, Options{}) })
}

func TestFetchConformance(t *testing.T) {
	storetest.RunFetches(t, func(t *testing.T) store.Store { return openTest(t, Options{}) })
}

// A new database file gets Options.PageSize (2 KiB by default); one that exists keeps the
// page size it was created with, and a size SQLite would silently ignore is refused.
func TestPageSize(t *testing.T) {
	pageSize := func(s *Store) int {
		var n int
		require.NoError(t, s.r.QueryRow(`PRAGMA page_size`).Scan(&n))
		return n
	}
	s := openTest(t, Options{})
	require.Equal(t, DefaultPageSize, pageSize(s))
	require.Equal(t, DefaultPageSize, s.pageSize)

	path := filepath.Join(t.TempDir(), "hookmap.db")
	s, err := Open(t.Context(), path, Options{PageSize: 4096})
	require.NoError(t, err)
	require.Equal(t, 4096, pageSize(s))
	require.NoError(t, s.CreateWorkspace(t.Context(), &store.Workspace{ID: "w", Name: "w"}))
	require.NoError(t, s.Close())
	s, err = Open(t.Context(), path, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.Equal(t, 4096, pageSize(s), "an existing file keeps its page size")
	require.Equal(t, 4096, s.pageSize, "the WAL metrics count its frames at its size")
	_, err = s.GetWorkspace(t.Context(), "w")
	require.NoError(t, err)

	_, err = Open(t.Context(), filepath.Join(t.TempDir(), "hookmap.db"), Options{PageSize: 3000})
	require.ErrorContains(t, err, "page size 3000")
}
