package postgres

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/postgres/pgtest"
	"github.com/hookmap/hookmap/server/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// openTest opens a store on url, closed when the test ends.
func openTest(t testing.TB, url string, opts Options) *Store {
	t.Helper()
	if opts.MaxConns == 0 {
		opts.MaxConns = 4
	}
	s, err := Open(t.Context(), url, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.RunAll(t, func(t *testing.T) store.Store { return openTest(t, pgtest.Schema(t), Options{}) })
}

func TestAuthConformance(t *testing.T) {
	storetest.RunAuth(t, func(t *testing.T) store.Store { return openTest(t, pgtest.Schema(t), Options{}) })
}

func TestOutgoingConformance(t *testing.T) {
	storetest.RunOutgoing(t, func(t *testing.T) store.Store { return openTest(t, pgtest.Schema(t), Options{}) })
}

func TestDestinationConformance(t *testing.T) {
	storetest.RunDestinations(t, func(t *testing.T) store.Store { return openTest(t, pgtest.Schema(t), Options{}) })
}

func TestFetchConformance(t *testing.T) {
	storetest.RunFetches(t, func(t *testing.T) store.Store { return openTest(t, pgtest.Schema(t), Options{}) })
}
