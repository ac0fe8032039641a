package core_test

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/hookmap/hookmap/server/core"
	"github.com/hookmap/hookmap/server/hub"
	"github.com/hookmap/hookmap/server/registry"
	"github.com/hookmap/hookmap/server/secrets"
	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/sqlite"
)

// plainStore is a store without fetches (a backend that does not implement FetchStore).
type plainStore struct{ store.Store }

// A subscription to an event with a fetch method is refused on a store that keeps no
// fetches: every notification would fail.
func TestFetchNeedsAFetchStore(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "hookmap.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	box, err := secrets.NewBox(bytes.Repeat([]byte{7}, secrets.KeySize))
	require.NoError(t, err)
	reg, diags := registry.New(filepath.Join("..", "app", "testdata", "connectors", "fetchapp"))
	require.Empty(t, diags)
	c := &core.Core{Store: plainStore{st}, Box: box, Registry: reg, Hub: hub.New(), PublicURL: "https://hookmap.test", Logger: slog.New(slog.DiscardHandler)}
	require.NoError(t, st.CreateWorkspace(t.Context(), &store.Workspace{ID: "w", Name: "w"}))
	conn, err := c.CreateConnection(t.Context(), "w", core.ConnectionInput{ConnectorKey: "fetchapp",
		Parameters: map[string]any{"baseUri": "https://app.example.com"}, Credentials: map[string]any{"apiKey": "k"}})
	require.NoError(t, err)
	_, err = c.CreateSubscription(t.Context(), "w", core.SubscriptionInput{ConnectionID: conn.ID, EventKey: "changes", Parameters: map[string]any{"project": "p1"}})
	var ce *core.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, codes.FailedPrecondition, ce.Code)
	require.Contains(t, ce.Message, `event "changes" has a fetch method, which this store cannot run`)
}
