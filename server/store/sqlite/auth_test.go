package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/core"
	"github.com/hookmap/hookmap/server/store"
)

// TestConnectionAuthMigration: connections written before migration 6 are CONNECTED, with
// credentials given by the client, at version 1.
func TestConnectionAuthMigration(t *testing.T) {
	dir := t.TempDir()
	db, _, _ := v2Database(t, dir)
	require.NoError(t, db.Close())
	s, err := Open(t.Context(), filepath.Join(dir, "hookmap.db"), Options{SealState: core.StateSealer(testBox(t))})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	c, err := s.GetConnection(t.Context(), "w", "c")
	require.NoError(t, err)
	require.Equal(t, store.ConnectionConnected, c.Status)
	require.Equal(t, store.GrantGiven, c.Grant)
	require.Empty(t, c.LastError)
	require.True(t, c.CredentialsExpireTime.IsZero())
	require.Equal(t, int64(1), c.CredentialsVersion)
	require.NoError(t, s.SetConnectionAuth(t.Context(), c))
	require.Equal(t, int64(2), c.CredentialsVersion)
}
