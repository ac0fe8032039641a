package core

import (
	"context"
	"crypto/rand"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/hub"
	"github.com/hookmap/hookmap/server/registry"
	"github.com/hookmap/hookmap/server/secrets"
	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/sqlite"
)

// testWorkspace is the workspace storeCore creates.
const testWorkspace = "default"

// storeCore is a core over a SQLite store in a temporary folder with the connectors of dir
// loaded (every one without problems) and the workspace testWorkspace.
func storeCore(tb testing.TB, dir string) *Core {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "hookmap.db"), sqlite.Options{})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = st.Close() })
	key := make([]byte, secrets.KeySize)
	_, _ = rand.Read(key)
	box, err := secrets.NewBox(key)
	require.NoError(tb, err)
	reg, diags := registry.New(dir)
	require.Empty(tb, diags)
	require.NoError(tb, st.CreateWorkspace(ctx, &store.Workspace{ID: testWorkspace, Name: testWorkspace, CreateTime: time.Now().UTC()}))
	return &Core{
		Store: st, Box: box, Registry: reg, Hub: hub.New(), PublicURL: "http://127.0.0.1:8080",
		Logger: slog.New(slog.DiscardHandler),
	}
}
