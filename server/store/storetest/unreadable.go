package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

// Damaged names the records RunUnreadable asks a backend to damage in its own storage.
type Damaged struct {
	// Connection's parameters, Subscription's parameters and Event's record must become
	// values the store cannot decode.
	Connection, Subscription, Event string
	// DeepEvent's record must become Deep: JSON nested deeper than today's write limit,
	// as an older hookmap may have stored it.
	DeepEvent, Deep string
}

// RunUnreadable checks that a stored value that cannot be decoded (a damaged database)
// fails the Get of its record (store.ErrUnreadable), never a list: a listed connection or
// subscription is left out (its page token still continues after it) and a listed event
// comes with RecordError. A value nested deeper than today's write limit, stored under an
// older one, still reads. damage writes the damaged values straight into s's storage.
func RunUnreadable(t *testing.T, s store.Store, damage func(t *testing.T, d Damaged)) {
	ctx := t.Context()
	require.NoError(t, s.CreateWorkspace(ctx, &store.Workspace{ID: "ws"}))
	var conns []string
	for i := range 3 {
		c := &store.Connection{WorkspaceID: "ws", ID: fmt.Sprintf("conn-%d", i), ConnectorKey: "k", Parameters: map[string]any{"i": int64(i)}}
		require.NoError(t, s.CreateConnection(ctx, c))
		conns = append(conns, c.ID)
	}
	var subs []string
	for i := range 3 {
		sub := &store.Subscription{WorkspaceID: "ws", ID: fmt.Sprintf("sub-%d", i), ConnectionID: conns[0], ConnectorKey: "k",
			EventKey: "e", Status: store.StatusActive, NextRefreshTime: time.Unix(100, 0)}
		require.NoError(t, s.CreateSubscription(ctx, sub))
		subs = append(subs, sub.ID)
	}
	var events []*store.Event
	for i := range 3 {
		events = append(events, &store.Event{ID: fmt.Sprintf("ev-%d", i), WorkspaceID: "ws", SubscriptionID: subs[0],
			ConnectionID: conns[0], EventKey: "e", Type: "t", Record: map[string]any{"i": int64(i)}})
	}
	_, err := s.CommitDelivery(ctx, &store.DeliveryCommit{Events: events})
	require.NoError(t, err)

	damage(t, Damaged{Connection: conns[1], Subscription: subs[1], Event: events[1].ID,
		DeepEvent: events[2].ID, Deep: strings.Repeat(`{"k":`, 100) + `1` + strings.Repeat(`}`, 100)})

	_, err = s.GetConnection(ctx, "ws", conns[1])
	require.ErrorIs(t, err, store.ErrUnreadable)
	_, err = s.GetSubscription(ctx, "ws", subs[1])
	require.ErrorIs(t, err, store.ErrUnreadable)

	// Page by one: the damaged row's page is empty but continues.
	var listed []string
	token := ""
	for range 10 {
		page, next, err := s.ListConnections(ctx, "ws", store.Page{Size: 1, Token: token})
		require.NoError(t, err)
		for _, c := range page {
			listed = append(listed, c.ID)
		}
		if token = next; token == "" {
			break
		}
	}
	require.Equal(t, []string{conns[0], conns[2]}, listed)

	page, _, err := s.ListSubscriptions(ctx, "ws", "", store.Page{})
	require.NoError(t, err)
	require.Len(t, page, 2)
	due, err := s.ClaimDueSubscriptions(ctx, store.DueClaim{Owner: "me", RefreshBefore: time.Unix(200, 0), TTL: time.Minute})
	require.NoError(t, err)
	require.Len(t, due, 2, "the refresh scheduler skips what it cannot read instead of failing or overwriting it")

	evs, err := s.ListEvents(ctx, "ws", store.EventFilter{}, 0, 10)
	require.NoError(t, err)
	require.Len(t, evs, 3)
	require.Equal(t, map[string]any{"i": int64(0)}, evs[0].Record)
	require.Empty(t, evs[0].RecordError)
	require.Nil(t, evs[1].Record)
	require.Contains(t, evs[1].RecordError, store.ErrUnreadable.Error())
	require.Empty(t, evs[2].RecordError, "nested 100 deep, written under an older limit: still readable")
	require.NotNil(t, evs[2].Record)
}
