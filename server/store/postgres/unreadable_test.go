package postgres

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store/postgres/pgtest"
	"github.com/hookmap/hookmap/server/store/storetest"
)

// TestUnreadableRecordsNeverFailAList runs storetest.RunUnreadable. The columns are json,
// which holds only valid JSON: a number no float64 holds is what hookmap cannot read back.
func TestUnreadableRecordsNeverFailAList(t *testing.T) {
	s := openTest(t, pgtest.Schema(t), Options{})
	storetest.RunUnreadable(t, s, func(t *testing.T, d storetest.Damaged) {
		corrupt := func(query string, args ...any) {
			t.Helper()
			_, err := s.pool.Exec(t.Context(), query, args...)
			require.NoError(t, err)
		}
		corrupt(`UPDATE connections SET parameters = '{"a": 1e400}' WHERE id = $1`, d.Connection)
		corrupt(`UPDATE subscriptions SET parameters = '{"n": 1e400}' WHERE id = $1`, d.Subscription)
		corrupt(`UPDATE events SET record = '[1e400]' WHERE id = $1`, d.Event)
		corrupt(`UPDATE events SET record = $1::json WHERE id = $2`, d.Deep, d.DeepEvent)
	})
}
