package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

func testConnections(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws, other := mkWorkspace(t, s), mkWorkspace(t, s)
	c := &store.Connection{
		WorkspaceID: ws, ID: newID("conn"), ConnectorKey: "github", Name: "acme",
		Parameters: map[string]any{
			"baseUri": "https://api.example.com", "portal": int64(12345678901), "ratio": 1.5,
			"nested": map[string]any{"list": []any{int64(1), "two", true, nil}},
		},
		Credentials: []byte("sealed"),
		Status:      store.ConnectionConnected, Grant: store.GrantAuthorizationCode,
		CredentialsExpireTime: at(time.Hour),
		CreateTime:            base, UpdateTime: base,
	}
	require.NoError(t, s.CreateConnection(ctx, c))
	require.Equal(t, int64(1), c.CredentialsVersion, "a new connection's credentials are version 1")

	got, err := s.GetConnection(ctx, ws, c.ID)
	require.NoError(t, err)
	require.Equal(t, c, got, "every field round-trips, integers stay int64")

	_, err = s.GetConnection(ctx, other, c.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "another workspace's connection is not found")
	_, err = s.GetConnection(ctx, ws, "no-such-connection")
	require.ErrorIs(t, err, store.ErrNotFound)

	require.ErrorIs(t, s.CreateConnection(ctx, &store.Connection{WorkspaceID: ws, ID: c.ID, ConnectorKey: "x", Name: "dup"}), store.ErrAlreadyExists)
	require.ErrorIs(t, s.CreateConnection(ctx, &store.Connection{WorkspaceID: "no-such-workspace", ID: newID("conn"), ConnectorKey: "x", Name: "x"}), store.ErrNotFound)

	// Nil parameters and credentials stay nil, zero times stay zero.
	bare := &store.Connection{WorkspaceID: ws, ID: newID("conn"), ConnectorKey: "slack", Name: "bare", Status: store.ConnectionPending, CreateTime: base, UpdateTime: base}
	require.NoError(t, s.CreateConnection(ctx, bare))
	got, err = s.GetConnection(ctx, ws, bare.ID)
	require.NoError(t, err)
	require.Equal(t, bare, got)

	// Update replaces name, parameters, credentials and their status, increments the
	// credentials version, sets UpdateTime and keeps the rest.
	before := time.Now().Add(-time.Second)
	upd := &store.Connection{
		WorkspaceID: ws, ID: c.ID, ConnectorKey: "ignored", Name: "renamed",
		Parameters: map[string]any{"baseUri": "https://other.example.com"}, Credentials: []byte("sealed-2"),
		Status: store.ConnectionDisconnected, LastError: "invalid_grant", CredentialsVersion: 99,
	}
	require.NoError(t, s.UpdateConnection(ctx, upd))
	require.Equal(t, int64(2), upd.CredentialsVersion, "the version is the store's, whatever the record said")
	got, err = s.GetConnection(ctx, ws, c.ID)
	require.NoError(t, err)
	require.Equal(t, "renamed", got.Name)
	require.Equal(t, upd.Parameters, got.Parameters)
	require.Equal(t, []byte("sealed-2"), got.Credentials)
	require.Equal(t, store.ConnectionDisconnected, got.Status)
	require.Equal(t, "invalid_grant", got.LastError)
	require.Equal(t, store.GrantGiven, got.Grant)
	require.True(t, got.CredentialsExpireTime.IsZero())
	require.Equal(t, int64(2), got.CredentialsVersion)
	require.Equal(t, "github", got.ConnectorKey, "the connector never changes")
	require.True(t, got.CreateTime.Equal(base))
	require.True(t, got.UpdateTime.After(before), "UpdateTime %v", got.UpdateTime)
	require.True(t, got.UpdateTime.Equal(upd.UpdateTime), "UpdateTime is set on the given record")

	require.ErrorIs(t, s.UpdateConnection(ctx, &store.Connection{WorkspaceID: ws, ID: "no-such-connection", Name: "x"}), store.ErrNotFound)
	require.ErrorIs(t, s.UpdateConnection(ctx, &store.Connection{WorkspaceID: other, ID: c.ID, Name: "hijack"}), store.ErrNotFound)
	got, err = s.GetConnection(ctx, ws, c.ID)
	require.NoError(t, err)
	require.Equal(t, "renamed", got.Name)

	// Delete.
	require.ErrorIs(t, s.DeleteConnection(ctx, other, c.ID), store.ErrNotFound, "another workspace cannot delete it")
	require.NoError(t, s.DeleteConnection(ctx, ws, c.ID))
	_, err = s.GetConnection(ctx, ws, c.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.DeleteConnection(ctx, ws, c.ID), store.ErrNotFound)
}

func testConnectionPagination(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws, other := mkWorkspace(t, s), mkWorkspace(t, s)
	var want []string
	for i := range 120 {
		c := mkConnection(t, s, ws)
		want = append(want, c.ID)
		if i%10 == 0 {
			mkConnection(t, s, other) // interleaved records of another workspace never show
		}
	}
	var got []string
	token := ""
	pages := 0
	for {
		page, next, err := s.ListConnections(ctx, ws, store.Page{Size: 50, Token: token})
		require.NoError(t, err)
		pages++
		for _, c := range page {
			require.Equal(t, ws, c.WorkspaceID)
			got = append(got, c.ID)
		}
		if next == "" {
			break
		}
		token = next
		require.Less(t, pages, 10)
	}
	require.Equal(t, 3, pages)
	require.Equal(t, want, got)

	_, _, err := s.ListConnections(ctx, ws, store.Page{Token: "%%%"})
	require.ErrorIs(t, err, store.ErrInvalidPageToken)

	page, next, err := s.ListConnections(ctx, mkWorkspace(t, s), store.Page{})
	require.NoError(t, err)
	require.Empty(t, page)
	require.Empty(t, next)
}

// testPageSizeCap checks that a page never holds more than 1000 records.
func testPageSizeCap(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := g; i < 1001; i += 16 {
				err := s.CreateConnection(ctx, &store.Connection{WorkspaceID: ws, ID: newID("conn"), ConnectorKey: "github", Name: "c"})
				if !assert.NoError(t, err) {
					return
				}
			}
		})
	}
	wg.Wait()
	page, next, err := s.ListConnections(ctx, ws, store.Page{Size: 5000})
	require.NoError(t, err)
	require.Len(t, page, 1000)
	require.NotEmpty(t, next)
	page, next, err = s.ListConnections(ctx, ws, store.Page{Size: 5000, Token: next})
	require.NoError(t, err)
	require.Len(t, page, 1)
	require.Empty(t, next)
}

func testDeleteConnectionInUse(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	c := mkConnection(t, s, ws)
	sub := mkSubscription(t, s, c)

	require.ErrorIs(t, s.DeleteConnection(ctx, ws, c.ID), store.ErrInUse, "subscriptions are never deleted with their connection")
	_, err := s.GetSubscription(ctx, ws, sub.ID)
	require.NoError(t, err)
	_, err = s.GetConnection(ctx, ws, c.ID)
	require.NoError(t, err)

	require.NoError(t, s.DeleteSubscription(ctx, ws, sub.ID))
	require.NoError(t, s.DeleteConnection(ctx, ws, c.ID))
}
