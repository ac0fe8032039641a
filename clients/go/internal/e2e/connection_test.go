package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/clients/go/hookmap"
	"github.com/hookmap/hookmap/server/store"
)

// disconnect writes what hookmap writes when an app refuses a connection's grant for
// good: the connection DISCONNECTED and a connection event, in one write.
func (e *env) disconnect(connectionID, reason string) {
	e.t.Helper()
	ctx := e.t.Context()
	st := e.h.App.Store()
	conn, err := st.GetConnection(ctx, "default", connectionID)
	require.NoError(e.t, err)
	conn.Status, conn.LastError = store.ConnectionDisconnected, reason
	ev := &store.Event{
		ID: uuid.NewString(), WorkspaceID: "default", ConnectionID: conn.ID, EventKey: "connection", Type: "connection.disconnected",
		Record:      map[string]any{"connectionId": conn.ID, "connectorKey": conn.ConnectorKey, "name": conn.Name, "status": conn.Status, "error": reason},
		ReceiveTime: time.Now(),
	}
	require.NoError(e.t, st.SetConnectionAuth(ctx, conn, ev))
	e.h.App.Core().Hub.Notify("default", ev.Seq)
}

// TestConsumeConnectionEvents: a connection event (no subscription) reaches a consumer
// between the events of subscriptions, in order, decodes into a ConnectionEvent, and is
// matched by a filter on its event key but not by one on subscriptions.
func TestConsumeConnectionEvents(t *testing.T) {
	e := start(t)
	e.c = e.dial()
	a, b := e.subscribe("a"), e.subscribe("b")
	e.post(a, 1, 2)
	e.disconnect(a.GetConnectionId(), "invalid_grant: the refresh token was revoked")
	e.post(b, 3, 2)

	type seen struct {
		ev   *hookmap.Event
		conn *hookmap.ConnectionEvent
	}
	got := make(chan seen, 16)
	handler := func(_ context.Context, ev *hookmap.Event) error {
		s := seen{ev: ev}
		if ev.IsConnectionEvent() {
			ce, err := ev.ConnectionEvent()
			require.NoError(t, err)
			s.conn = ce
		}
		got <- s
		return nil
	}
	next := func(n int) []seen {
		var out []seen
		for len(out) < n {
			select {
			case s := <-got:
				out = append(out, s)
			case <-time.After(10 * time.Second):
				t.Fatalf("got %d of %d events", len(out), n)
			}
		}
		return out
	}

	run := e.consume(e.c, "everything", handler, hookmap.WithConcurrency(3), hookmap.WithAckBatch(1, time.Second))
	all := next(5)
	var conn *seen
	for i := range all {
		if all[i].ev.IsConnectionEvent() {
			require.Nil(t, conn, "one connection event")
			conn = &all[i]
		}
	}
	require.NotNil(t, conn)
	require.Empty(t, conn.ev.SubscriptionID)
	require.Equal(t, a.GetConnectionId(), conn.ev.ConnectionID)
	require.Equal(t, hookmap.TypeConnectionDisconnected, conn.ev.Type)
	require.Equal(t, &hookmap.ConnectionEvent{
		ConnectionID: a.GetConnectionId(), ConnectorKey: "example-webhook", Name: "a", Status: "DISCONNECTED",
		Error: "invalid_grant: the refresh token was revoked",
	}, conn.conn)
	require.ErrorIs(t, run.stop(), context.Canceled)

	// Filters: by event key, the connection event alone; by subscription, never it.
	run = e.consume(e.c, "connections", handler, hookmap.WithFilter(hookmap.Filter{EventKeys: []string{hookmap.ConnectionEventKey}}))
	only := next(1)
	require.True(t, only[0].ev.IsConnectionEvent())
	require.ErrorIs(t, run.stop(), context.Canceled)
	run = e.consume(e.c, "sub-a", handler, hookmap.WithFilter(hookmap.Filter{SubscriptionIDs: []string{a.GetId()}}))
	for _, s := range next(2) {
		require.False(t, s.ev.IsConnectionEvent())
		require.Equal(t, a.GetId(), s.ev.SubscriptionID)
	}
	select {
	case s := <-got:
		t.Fatalf("unexpected event %d (%s)", s.ev.Seq, s.ev.Type)
	default:
	}
	require.ErrorIs(t, run.stop(), context.Canceled)
}
