package sqlite

import (
	"database/sql"
	"fmt"
	"io/fs"
	"net/url"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func newTestID(i int) string { return fmt.Sprintf("id-%04d", i) }

// histogramCounts returns the sample count and sum of the histogram series of the metric
// family name, one entry per series.
func histogramCounts(t *testing.T, reg *prometheus.Registry, name string) (counts []uint64, sums []float64) {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			counts = append(counts, m.GetHistogram().GetSampleCount())
			sums = append(sums, m.GetHistogram().GetSampleSum())
		}
	}
	return counts, sums
}

// counterValue sums the counter family name's series that carry every label of labels
// (name, value pairs); the test fails when reg has no such family. It may be called from
// any goroutine (it reports with t.Errorf).
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Errorf("gather: %v", err)
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var v float64
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			v += m.GetCounter().GetValue()
		}
		return v
	}
	t.Errorf("no metric %s", name)
	return 0
}

// databaseAt creates the database at path with the schema of migration version (as the
// version of hookmap that stopped there wrote it) and returns it open; the caller closes
// it.
func databaseAt(t *testing.T, path string, version int64) *sql.DB {
	t.Helper()
	require.NoError(t, prepareFile(path))
	db, err := openDB(path, 1, url.Values{
		"_journal_mode": {"WAL"}, "_synchronous": {"FULL"}, "_foreign_keys": {"1"},
		"_pragma": {"wal_autocheckpoint(0)"},
	})
	require.NoError(t, err)
	sub, err := fs.Sub(migrationsFS, "migrations")
	require.NoError(t, err)
	p, err := goose.NewProvider(goose.DialectSQLite3, db, sub, goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations((&Store{}).sealStateMigration()))
	require.NoError(t, err)
	_, err = p.UpTo(t.Context(), version)
	require.NoError(t, err)
	return db
}

// flushLastEvents has the writer write the pending last event times (what its tick does
// every CheckpointInterval) and waits until it has.
func flushLastEvents(t testing.TB, s *Store) {
	t.Helper()
	s.flushWake <- struct{}{}
	require.Eventually(t, s.lastEvent.empty, 10*time.Second, time.Millisecond, "the writer flushes the last event times")
}
