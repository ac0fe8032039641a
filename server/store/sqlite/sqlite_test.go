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
