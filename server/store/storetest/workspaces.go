package storetest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

func testWorkspaces(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	w := &store.Workspace{ID: newID("ws"), Name: "Acme", CreateTime: base}
	require.NoError(t, s.CreateWorkspace(ctx, w))

	got, err := s.GetWorkspace(ctx, w.ID)
	require.NoError(t, err)
	require.Equal(t, w, got)

	err = s.CreateWorkspace(ctx, &store.Workspace{ID: w.ID, Name: "Other"})
	require.ErrorIs(t, err, store.ErrAlreadyExists)
	got, err = s.GetWorkspace(ctx, w.ID)
	require.NoError(t, err)
	require.Equal(t, "Acme", got.Name, "a failed duplicate create changes nothing")

	_, err = s.GetWorkspace(ctx, "no-such-workspace")
	require.ErrorIs(t, err, store.ErrNotFound)

	// A zero CreateTime is set by the store.
	before := time.Now().Add(-time.Second)
	w2 := &store.Workspace{ID: newID("ws"), Name: "Now"}
	require.NoError(t, s.CreateWorkspace(ctx, w2))
	require.False(t, w2.CreateTime.IsZero())
	got, err = s.GetWorkspace(ctx, w2.ID)
	require.NoError(t, err)
	require.True(t, got.CreateTime.After(before), "CreateTime %v", got.CreateTime)
	require.True(t, got.CreateTime.Equal(w2.CreateTime))
}

func testWorkspacePagination(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	var want []string
	for i := range 120 {
		id := fmt.Sprintf("ws-%03d-%s", 119-i, newID("p")) // ids sort opposite to creation order
		require.NoError(t, s.CreateWorkspace(ctx, &store.Workspace{ID: id, Name: id, CreateTime: base}))
		want = append(want, id)
	}
	var got []string
	var sizes []int
	token := ""
	for {
		page, next, err := s.ListWorkspaces(ctx, store.Page{Size: 50, Token: token})
		require.NoError(t, err)
		sizes = append(sizes, len(page))
		for _, w := range page {
			got = append(got, w.ID)
		}
		if next == "" {
			break
		}
		token = next
		require.Less(t, len(sizes), 10, "pagination does not end")
	}
	require.Equal(t, []int{50, 50, 20}, sizes)
	require.Equal(t, want, got, "creation order")

	page, _, err := s.ListWorkspaces(ctx, store.Page{})
	require.NoError(t, err)
	require.Len(t, page, 50, "default page size")

	page, next, err := s.ListWorkspaces(ctx, store.Page{Size: 5000})
	require.NoError(t, err)
	require.Len(t, page, 120)
	require.Empty(t, next)

	_, _, err = s.ListWorkspaces(ctx, store.Page{Token: "not a token!"})
	require.ErrorIs(t, err, store.ErrInvalidPageToken)
}

func testAPIKeys(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	h := sha256.Sum256([]byte("secret-1"))
	k := &store.APIKey{ID: newID("key"), WorkspaceID: ws, Name: "ci", Hash: h[:], CreateTime: base}
	require.NoError(t, s.CreateAPIKey(ctx, k))

	got, err := s.GetAPIKeyByHash(ctx, bytes.Clone(h[:]))
	require.NoError(t, err)
	require.Equal(t, k, got)
	require.True(t, got.RevokeTime.IsZero())

	h2 := sha256.Sum256([]byte("secret-2"))
	require.ErrorIs(t, s.CreateAPIKey(ctx, &store.APIKey{ID: k.ID, WorkspaceID: ws, Name: "dup", Hash: h2[:]}), store.ErrAlreadyExists)
	require.ErrorIs(t, s.CreateAPIKey(ctx, &store.APIKey{ID: newID("key"), WorkspaceID: ws, Name: "same hash", Hash: h[:]}), store.ErrAlreadyExists)
	require.ErrorIs(t, s.CreateAPIKey(ctx, &store.APIKey{ID: newID("key"), WorkspaceID: "no-such-workspace", Name: "x", Hash: h2[:]}), store.ErrNotFound)

	unknown := sha256.Sum256([]byte("unknown"))
	_, err = s.GetAPIKeyByHash(ctx, unknown[:])
	require.ErrorIs(t, err, store.ErrNotFound)

	revoked := at(time.Hour)
	require.NoError(t, s.RevokeAPIKey(ctx, k.ID, revoked))
	got, err = s.GetAPIKeyByHash(ctx, h[:])
	require.NoError(t, err, "revoked keys are still returned")
	require.True(t, got.RevokeTime.Equal(revoked), "RevokeTime %v", got.RevokeTime)

	require.ErrorIs(t, s.RevokeAPIKey(ctx, "no-such-key", revoked), store.ErrNotFound)
}

func testConnectorParameters(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws, other := mkWorkspace(t, s), mkWorkspace(t, s)

	_, err := s.GetConnectorParameters(ctx, ws, "slack")
	require.ErrorIs(t, err, store.ErrNotFound)

	require.NoError(t, s.SetConnectorParameters(ctx, ws, "slack", []byte("sealed-1")))
	got, err := s.GetConnectorParameters(ctx, ws, "slack")
	require.NoError(t, err)
	require.Equal(t, []byte("sealed-1"), got)

	require.NoError(t, s.SetConnectorParameters(ctx, ws, "slack", []byte("sealed-2")))
	got, err = s.GetConnectorParameters(ctx, ws, "slack")
	require.NoError(t, err)
	require.Equal(t, []byte("sealed-2"), got, "Set replaces")

	_, err = s.GetConnectorParameters(ctx, ws, "hubspot")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetConnectorParameters(ctx, other, "slack")
	require.ErrorIs(t, err, store.ErrNotFound, "another workspace's parameters are invisible")

	require.ErrorIs(t, s.SetConnectorParameters(ctx, "no-such-workspace", "slack", []byte("x")), store.ErrNotFound)
}

func testPing(t *testing.T, s store.Store) {
	require.NoError(t, s.Ping(ctxOf(t)))
}

func testClose(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	c := mkConnection(t, s, ws)
	sub := mkSubscription(t, s, c)

	// Writes racing Close either commit or fail with ErrClosed; nothing hangs.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, err := s.CommitDelivery(ctx, &store.DeliveryCommit{Delivery: deliveryOf(sub, base)})
			if err != nil {
				assert.ErrorIs(t, err, store.ErrClosed)
			}
		})
	}
	require.NoError(t, s.Close())
	wg.Wait()

	checks := map[string]error{}
	_, checks["GetWorkspace"] = s.GetWorkspace(ctx, ws)
	checks["CreateWorkspace"] = s.CreateWorkspace(ctx, &store.Workspace{ID: newID("ws"), Name: "late"})
	_, _, checks["ListConnections"] = s.ListConnections(ctx, ws, store.Page{})
	_, checks["LookupSubscription"] = s.LookupSubscription(ctx, sub.ID)
	checks["UpdateSubscription"] = s.UpdateSubscription(ctx, sub)
	_, checks["CommitDelivery"] = s.CommitDelivery(ctx, &store.DeliveryCommit{Delivery: deliveryOf(sub, base)})
	_, checks["ListEvents"] = s.ListEvents(ctx, ws, store.EventFilter{}, 0, 10)
	_, checks["LastSeq"] = s.LastSeq(ctx, ws)
	checks["AckEvents"] = s.AckEvents(ctx, ws, "c", 1)
	_, checks["EnsureGlobalWebhook"] = s.EnsureGlobalWebhook(ctx, &store.GlobalWebhook{WorkspaceID: ws, ID: newID("gw"), ConnectorKey: "slack", Key: "events"})
	_, checks["Prune"] = s.Prune(ctx, store.Retention{EventsBefore: base})
	checks["Ping"] = s.Ping(ctx)
	for name, err := range checks {
		require.ErrorIs(t, err, store.ErrClosed, name)
	}
}
