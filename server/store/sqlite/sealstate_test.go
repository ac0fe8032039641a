package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/server/core"
	"github.com/hookmap/hookmap/server/secrets"
	"github.com/hookmap/hookmap/server/store"
)

// v2Database creates, in dir, a database with the schema before state was sealed
// (migrations 1 and 2) holding subscriptions with clear state, as that version wrote it,
// and returns it open (the caller closes it, or copies the files first to get the image a
// crash would leave). Each subscription's state was rewritten several times, so older
// clear versions sit in the files' free space too; every version's secret is returned.
func v2Database(t *testing.T, dir string) (db *sql.DB, subs map[string]string, secretsWritten []string) {
	t.Helper()
	db = databaseAt(t, filepath.Join(dir, "hookmap.db"), 2)

	exec := func(q string, args ...any) {
		t.Helper()
		_, err := db.Exec(q, args...)
		require.NoError(t, err)
	}
	exec(`INSERT INTO workspaces (id, name) VALUES ('w', 'w')`)
	exec(`INSERT INTO connections (id, workspace_id, connector_key, name, parameters) VALUES ('c', 'w', 'github', 'acme', '{}')`)
	subs = map[string]string{}
	for i := range 4 {
		id := fmt.Sprintf("sub-%d", i)
		for v := range 3 {
			secret := fmt.Sprintf("clear-state-secret-%d-v%d-%s", i, v, secrets.RandomToken(8))
			secretsWritten = append(secretsWritten, secret)
			// Each version is shorter than the one before: SQLite moves the row and leaves the
			// older version behind as free space.
			state := fmt.Sprintf(`{"hookId":%d,"secret":%q,"note":%q}`, 9007199254740993+int64(i), secret, strings.Repeat("n", 300*(2-v)))
			if i == 2 {
				// A state larger than a page lives on overflow pages.
				state = fmt.Sprintf(`{"hookId":%d,"secret":%q,"pad":%q}`, 9007199254740993+int64(i), secret, strings.Repeat("x", 9000))
			}
			if v == 0 {
				exec(`INSERT INTO subscriptions (id, workspace_id, connection_id, connector_key, event_key, parameters, state, status)
					VALUES (?, 'w', 'c', 'github', 'repo-events', '{"owner":"acme"}', ?, 'ACTIVE')`, id, state)
			} else {
				exec(`UPDATE subscriptions SET state = ? WHERE id = ?`, state, id)
			}
			subs[id] = state
		}
	}
	// A subscription without state, and the newest one deleted: its rid is never reused.
	exec(`INSERT INTO subscriptions (id, workspace_id, connection_id, connector_key, event_key, status)
		VALUES ('sub-nostate', 'w', 'c', 'github', 'repo-events', 'FAILED')`)
	subs["sub-nostate"] = ""
	exec(`INSERT INTO subscriptions (id, workspace_id, connection_id, connector_key, event_key, state, status)
		VALUES ('sub-deleted', 'w', 'c', 'github', 'repo-events', '{"secret":"gone"}', 'ACTIVE')`)
	exec(`DELETE FROM subscriptions WHERE id = 'sub-deleted'`)
	return db, subs, secretsWritten
}

func testBox(t *testing.T) *secrets.Box {
	b, err := secrets.NewBox(bytes.Repeat([]byte{42}, secrets.KeySize))
	require.NoError(t, err)
	return b
}

// requireNoneOnDisk fails when any file of the database holds one of needles.
func requireNoneOnDisk(t *testing.T, path string, needles []string) {
	t.Helper()
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		b, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		require.NoError(t, err)
		for _, n := range needles {
			require.False(t, bytes.Contains(b, []byte(n)), "%s holds %q in clear", filepath.Base(f), n)
		}
	}
}

func TestSealStateMigration(t *testing.T) {
	for _, crashed := range []bool{false, true} {
		t.Run(map[bool]string{false: "clean shutdown", true: "crash image with a WAL"}[crashed], func(t *testing.T) {
			src := t.TempDir()
			db, subs, written := v2Database(t, src)
			dir := src
			if crashed {
				// Copy the files while the old version still has them open: what a crash leaves
				// (the clear states are in the WAL, not yet in the database file).
				dir = t.TempDir()
				for _, f := range []string{"hookmap.db", "hookmap.db-wal"} {
					b, err := os.ReadFile(filepath.Join(src, f))
					require.NoError(t, err)
					require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o600))
				}
				wal, err := os.ReadFile(filepath.Join(dir, "hookmap.db-wal"))
				require.NoError(t, err)
				require.True(t, bytes.Contains(wal, []byte(written[0])), "the image's WAL holds clear state (the test checks what it means to)")
			}
			require.NoError(t, db.Close())
			path := filepath.Join(dir, "hookmap.db")
			if !crashed {
				b, err := os.ReadFile(path)
				require.NoError(t, err)
				stale := 0
				for _, w := range written {
					if !strings.Contains(w, "-v2-") && bytes.Contains(b, []byte(w)) {
						stale++
					}
				}
				require.NotZero(t, stale, "the old database holds replaced clear states in free space (the test checks what it means to)")
			}

			// Without the key the upgrade is refused, and changes nothing.
			_, err := Open(t.Context(), path, Options{})
			require.ErrorContains(t, err, "secret key")

			box := testBox(t)
			s, err := Open(t.Context(), path, Options{SealState: core.StateSealer(box)})
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			c := &core.Core{Box: box}
			for id, want := range subs {
				sub, err := s.GetSubscription(t.Context(), "w", id)
				require.NoError(t, err, id)
				if want == "" {
					require.Nil(t, sub.State, id)
					continue
				}
				require.NotContains(t, string(sub.State), "secret", "sealed")
				got, err := c.SubscriptionState(sub)
				require.NoError(t, err, id)
				js, err := value.Encode(got)
				require.NoError(t, err)
				require.JSONEq(t, want, string(js), id)
				require.Equal(t, map[string]any{"owner": "acme"}, sub.Parameters, "other columns are kept")
				require.Equal(t, store.StatusActive, sub.Status)
			}
			requireNoneOnDisk(t, path, written)

			// The table is whole again: its indexes, its sequence (a new subscription never gets
			// the deleted one's rid), new sealed writes.
			var indexes int
			require.NoError(t, s.r.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'subscriptions' AND name LIKE 'subscriptions_%'`).Scan(&indexes))
			require.Equal(t, len(subscriptionsIndexes), indexes)
			var maxRID, deletedRID int64
			require.NoError(t, s.r.QueryRow(`SELECT MAX(rid) FROM subscriptions`).Scan(&maxRID))
			require.NoError(t, s.r.QueryRow(`SELECT seq FROM sqlite_sequence WHERE name = 'subscriptions'`).Scan(&deletedRID))
			require.Equal(t, maxRID+1, deletedRID)
			fresh := &store.Subscription{WorkspaceID: "w", ID: "sub-new", ConnectionID: "c", ConnectorKey: "github", EventKey: "e", Status: store.StatusActive, State: []byte("sealed")}
			require.NoError(t, s.CreateSubscription(t.Context(), fresh))
			var rid int64
			require.NoError(t, s.r.QueryRow(`SELECT rid FROM subscriptions WHERE id = 'sub-new'`).Scan(&rid))
			require.Equal(t, deletedRID+1, rid)
			var fk int
			require.NoError(t, s.r.QueryRow(`SELECT COUNT(*) FROM pragma_foreign_key_check`).Scan(&fk))
			require.Zero(t, fk)
			require.NoError(t, s.Close())
			requireNoneOnDisk(t, path, written)

			// Opening again applies nothing more.
			s2, err := Open(context.Background(), path, Options{})
			require.NoError(t, err)
			require.NoError(t, s2.Close())
		})
	}
}

// A database without clear state upgrades without the key.
func TestSealStateMigrationNothingToSeal(t *testing.T) {
	dir := t.TempDir()
	db, _, _ := v2Database(t, dir)
	_, err := db.Exec(`UPDATE subscriptions SET state = NULL`)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	s, err := Open(t.Context(), filepath.Join(dir, "hookmap.db"), Options{})
	require.NoError(t, err)
	require.NoError(t, s.Close())
}
