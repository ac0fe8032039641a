package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

// testReadsAfterWrites reads a subscription (by id), its connection and its connector's
// parameters before and after each write of them: a backend that keeps these rows in
// memory must answer the write's result at once.
func testReadsAfterWrites(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	c := mkConnection(t, s, ws)
	sub := mkSubscription(t, s, c)
	require.NoError(t, s.SetConnectorParameters(ctx, ws, c.ConnectorKey, []byte("sealed-1")))

	lookup := func() *store.Subscription {
		t.Helper()
		got, err := s.LookupSubscription(ctx, sub.ID)
		require.NoError(t, err)
		want, err := s.GetSubscription(ctx, ws, sub.ID)
		require.NoError(t, err)
		require.Equal(t, want, got)
		return got
	}
	conn := func() *store.Connection {
		t.Helper()
		got, err := s.GetConnection(ctx, ws, c.ID)
		require.NoError(t, err)
		return got
	}
	params := func() []byte {
		t.Helper()
		got, err := s.GetConnectorParameters(ctx, ws, c.ConnectorKey)
		require.NoError(t, err)
		return got
	}

	for range 2 { // each read may be served from memory the second time
		lookup()
		conn()
		params()
	}

	// Subscriptions: UpdateSubscription, the state and last event time of a delivery.
	up := lookup()
	up.Status, up.LastError = store.StatusFailed, "subscribe failed"
	require.NoError(t, s.UpdateSubscription(ctx, up))
	require.Equal(t, "subscribe failed", lookup().LastError)

	_, err := s.CommitDelivery(ctx, &store.DeliveryCommit{
		Events:       []*store.Event{eventOf(sub, "opened", "", at(time.Hour))},
		StateUpdates: []store.StateUpdate{{SubscriptionID: sub.ID, State: []byte("sealed-state-2")}},
	})
	require.NoError(t, err)
	got := lookup()
	require.Equal(t, []byte("sealed-state-2"), got.State)
	require.Equal(t, at(time.Hour), got.LastEventTime)

	_, err = s.CommitDelivery(ctx, &store.DeliveryCommit{Events: []*store.Event{eventOf(sub, "opened", "", at(2*time.Hour))}})
	require.NoError(t, err)
	require.Equal(t, at(2*time.Hour), lookup().LastEventTime, "a delivery's events alone move the last event time")

	// Connections: UpdateConnection, SetConnectionAuth.
	cu := conn()
	cu.Name = "renamed"
	require.NoError(t, s.UpdateConnection(ctx, cu))
	require.Equal(t, "renamed", conn().Name)
	ca := conn()
	ca.Credentials, ca.Status = []byte("sealed-credentials-2"), store.ConnectionDisconnected
	require.NoError(t, s.SetConnectionAuth(ctx, ca))
	got2 := conn()
	require.Equal(t, []byte("sealed-credentials-2"), got2.Credentials)
	require.Equal(t, ca.CredentialsVersion, got2.CredentialsVersion)

	// Connector parameters.
	require.NoError(t, s.SetConnectorParameters(ctx, ws, c.ConnectorKey, []byte("sealed-2")))
	require.Equal(t, []byte("sealed-2"), params())

	// Deletions.
	require.NoError(t, s.DeleteSubscription(ctx, ws, sub.ID))
	_, err = s.LookupSubscription(ctx, sub.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NoError(t, s.DeleteConnection(ctx, ws, c.ID))
	_, err = s.GetConnection(ctx, ws, c.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
}

// testReturnedValuesAreCopies: a caller may change what LookupSubscription,
// GetConnection and GetConnectorParameters return (core sets the fields of a record it
// read before writing it back); the next read returns the stored row all the same.
func testReturnedValuesAreCopies(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	c := mkConnection(t, s, ws)
	c.Parameters = map[string]any{"nested": map[string]any{"list": []any{"a"}}}
	require.NoError(t, s.UpdateConnection(ctx, c))
	sub := mkSubscription(t, s, c, func(sub *store.Subscription) {
		sub.Parameters = map[string]any{"labels": []any{"bug"}}
		sub.WebhookSecret = []byte("sealed-secret")
	})
	require.NoError(t, s.SetConnectorParameters(ctx, ws, c.ConnectorKey, []byte("sealed-params")))

	for range 3 {
		got, err := s.LookupSubscription(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, sub, got)
		got.Status = "CHANGED"
		got.Parameters["labels"].([]any)[0] = "changed"
		got.Parameters["added"] = true
		got.State[0], got.WebhookSecret[0] = 'X', 'X'

		gc, err := s.GetConnection(ctx, ws, c.ID)
		require.NoError(t, err)
		require.Equal(t, c, gc)
		gc.Name = "changed"
		gc.Parameters["nested"].(map[string]any)["list"].([]any)[0] = "changed"
		gc.Credentials[0] = 'X'

		gp, err := s.GetConnectorParameters(ctx, ws, c.ConnectorKey)
		require.NoError(t, err)
		require.Equal(t, []byte("sealed-params"), gp)
		gp[0] = 'X'
	}
}
