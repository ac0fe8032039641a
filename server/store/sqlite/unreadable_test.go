package sqlite

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store/storetest"
)

// TestUnreadableRecordsNeverFailAList runs storetest.RunUnreadable: SQLite keeps JSON as
// text, so text that is no JSON at all is what it cannot read back.
func TestUnreadableRecordsNeverFailAList(t *testing.T) {
	s := openTest(t, Options{})
	storetest.RunUnreadable(t, s, func(t *testing.T, d storetest.Damaged) {
		corrupt := func(query string, args ...any) {
			t.Helper()
			require.NoError(t, s.write(t.Context(), func(tx *wtx) error {
				tx.changedAll() // a raw statement: no cached copy may outlive it
				_, err := tx.exec(query, args...)
				return err
			}))
		}
		corrupt(`UPDATE connections SET parameters = '{"a":' WHERE id = ?`, d.Connection)
		corrupt(`UPDATE subscriptions SET parameters = '{"n": 1e400}' WHERE id = ?`, d.Subscription)
		corrupt(`UPDATE events SET record = 'not json' WHERE id = ?`, d.Event)
		corrupt(`UPDATE events SET record = ? WHERE id = ?`, d.Deep, d.DeepEvent)
	})
}
