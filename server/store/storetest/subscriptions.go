package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

func testSubscriptions(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws, other := mkWorkspace(t, s), mkWorkspace(t, s)
	c := mkConnection(t, s, ws)
	otherConn := mkConnection(t, s, other)

	sub := &store.Subscription{
		WorkspaceID: ws, ID: newID("sub"), ConnectionID: c.ID, ConnectorKey: "github", EventKey: "issues",
		Parameters:       map[string]any{"owner": "acme", "repo": "hooks", "n": int64(42)},
		State:            []byte("sealed-state"),
		WebhookSecret:    []byte("sealed-secret"),
		Status:           store.StatusPending,
		LastError:        "none yet",
		GlobalWebhookKey: "app", Selector: "team:T1",
		NextRefreshTime: at(time.Hour), RefreshTime: at(-time.Hour), RefreshFailures: 2,
		LastEventTime: at(-time.Minute), CreateTime: base, UpdateTime: at(time.Second),
	}
	require.NoError(t, s.CreateSubscription(ctx, sub))

	got, err := s.GetSubscription(ctx, ws, sub.ID)
	require.NoError(t, err)
	require.Equal(t, sub, got)
	got, err = s.LookupSubscription(ctx, sub.ID)
	require.NoError(t, err)
	require.Equal(t, sub, got)

	_, err = s.GetSubscription(ctx, other, sub.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "another workspace's subscription is not found")
	_, err = s.LookupSubscription(ctx, "no-such-subscription")
	require.ErrorIs(t, err, store.ErrNotFound)

	dup := subscriptionOf(c)
	dup.ID = sub.ID
	require.ErrorIs(t, s.CreateSubscription(ctx, dup), store.ErrAlreadyExists)

	orphan := subscriptionOf(c)
	orphan.ConnectionID = "no-such-connection"
	require.ErrorIs(t, s.CreateSubscription(ctx, orphan), store.ErrNotFound)
	foreign := subscriptionOf(c)
	foreign.ConnectionID = otherConn.ID
	require.ErrorIs(t, s.CreateSubscription(ctx, foreign), store.ErrNotFound, "a connection of another workspace")

	// Zero times and nil maps.
	bare := &store.Subscription{WorkspaceID: ws, ID: newID("sub"), ConnectionID: c.ID, ConnectorKey: "github", EventKey: "push", Status: store.StatusActive}
	require.NoError(t, s.CreateSubscription(ctx, bare))
	require.False(t, bare.CreateTime.IsZero())
	got, err = s.GetSubscription(ctx, ws, bare.ID)
	require.NoError(t, err)
	require.Equal(t, bare, got)

	require.ErrorIs(t, s.DeleteSubscription(ctx, other, sub.ID), store.ErrNotFound)
	require.NoError(t, s.DeleteSubscription(ctx, ws, sub.ID))
	_, err = s.GetSubscription(ctx, ws, sub.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.LookupSubscription(ctx, sub.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.DeleteSubscription(ctx, ws, sub.ID), store.ErrNotFound)
}

func testSubscriptionPagination(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws, other := mkWorkspace(t, s), mkWorkspace(t, s)
	c1, c2 := mkConnection(t, s, ws), mkConnection(t, s, ws)
	oc := mkConnection(t, s, other)
	var all, ofC1 []string
	for i := range 120 {
		c := c1
		if i%2 == 1 {
			c = c2
		}
		sub := mkSubscription(t, s, c)
		all = append(all, sub.ID)
		if c == c1 {
			ofC1 = append(ofC1, sub.ID)
		}
		if i%20 == 0 {
			mkSubscription(t, s, oc)
		}
	}
	list := func(connectionID string, size int) ([]string, int) {
		var ids []string
		token := ""
		pages := 0
		for {
			page, next, err := s.ListSubscriptions(ctx, ws, connectionID, store.Page{Size: size, Token: token})
			require.NoError(t, err)
			pages++
			for _, sub := range page {
				require.Equal(t, ws, sub.WorkspaceID)
				ids = append(ids, sub.ID)
			}
			if next == "" {
				return ids, pages
			}
			token = next
			require.Less(t, pages, 20)
		}
	}
	ids, pages := list("", 50)
	require.Equal(t, all, ids)
	require.Equal(t, 3, pages)
	ids, pages = list(c1.ID, 25)
	require.Equal(t, ofC1, ids)
	require.Equal(t, 3, pages)

	_, _, err := s.ListSubscriptions(ctx, ws, "", store.Page{Token: "bogus"})
	require.ErrorIs(t, err, store.ErrInvalidPageToken)
}

func testUpdateSubscription(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws, other := mkWorkspace(t, s), mkWorkspace(t, s)
	c := mkConnection(t, s, ws)
	sub := mkSubscription(t, s, c, func(s *store.Subscription) { s.LastEventTime = at(time.Hour) })

	before := time.Now().Add(-time.Second)
	upd := *sub
	upd.Parameters = map[string]any{"owner": "other"}
	upd.State = []byte("sealed-state-2")
	upd.WebhookSecret = []byte("sealed-2")
	upd.Status = store.StatusFailed
	upd.LastError = "boom"
	upd.GlobalWebhookKey, upd.Selector = "app", "team:T2"
	upd.NextRefreshTime, upd.RefreshTime, upd.RefreshFailures = at(2*time.Hour), at(time.Minute), 3
	upd.LastEventTime = at(-time.Hour) // older than the stored one: kept
	require.NoError(t, s.UpdateSubscription(ctx, &upd))
	require.True(t, upd.UpdateTime.After(before))

	got, err := s.GetSubscription(ctx, ws, sub.ID)
	require.NoError(t, err)
	require.True(t, got.UpdateTime.After(before), "UpdateTime %v", got.UpdateTime)
	require.True(t, got.LastEventTime.Equal(at(time.Hour)), "LastEventTime never moves back: %v", got.LastEventTime)
	want := upd
	want.UpdateTime, want.LastEventTime = got.UpdateTime, got.LastEventTime
	require.Equal(t, &want, got)

	// A later LastEventTime is taken.
	upd.LastEventTime = at(3 * time.Hour)
	require.NoError(t, s.UpdateSubscription(ctx, &upd))
	got, err = s.GetSubscription(ctx, ws, sub.ID)
	require.NoError(t, err)
	require.True(t, got.LastEventTime.Equal(at(3*time.Hour)))

	// Clearing: zero times, nil maps and nil state are stored as such.
	upd.NextRefreshTime, upd.State, upd.LastError = time.Time{}, nil, ""
	require.NoError(t, s.UpdateSubscription(ctx, &upd))
	got, err = s.GetSubscription(ctx, ws, sub.ID)
	require.NoError(t, err)
	require.True(t, got.NextRefreshTime.IsZero())
	require.Nil(t, got.State)
	require.Empty(t, got.LastError)

	// A StateChange computes the state from the stored one, not from the given State: what
	// another write stored meanwhile is what it is given.
	upd.State = []byte("sealed-by-handle")
	require.NoError(t, s.UpdateSubscription(ctx, &upd))
	stale := upd
	stale.State = []byte("stale-copy")
	var given []byte
	stale.StateChange = func(stored []byte) ([]byte, error) {
		given = stored
		return append(append([]byte(nil), stored...), "+subscribe"...), nil
	}
	require.NoError(t, s.UpdateSubscription(ctx, &stale))
	require.Equal(t, []byte("sealed-by-handle"), given)
	require.Equal(t, []byte("sealed-by-handle+subscribe"), stale.State, "the result is written back")
	require.Nil(t, stale.StateChange)
	got, err = s.GetSubscription(ctx, ws, sub.ID)
	require.NoError(t, err)
	require.Equal(t, []byte("sealed-by-handle+subscribe"), got.State)
	// A failing change fails the update and writes nothing.
	broken := *got
	broken.Status = store.StatusDeleting
	broken.StateChange = func([]byte) ([]byte, error) { return nil, errors.New("cannot open") }
	require.ErrorContains(t, s.UpdateSubscription(ctx, &broken), "cannot open")
	got, err = s.GetSubscription(ctx, ws, sub.ID)
	require.NoError(t, err)
	require.Equal(t, store.StatusFailed, got.Status)
	require.Equal(t, []byte("sealed-by-handle+subscribe"), got.State)

	missing := *sub
	missing.ID = "no-such-subscription"
	require.ErrorIs(t, s.UpdateSubscription(ctx, &missing), store.ErrNotFound)
	missing.StateChange = func(b []byte) ([]byte, error) { return b, nil }
	require.ErrorIs(t, s.UpdateSubscription(ctx, &missing), store.ErrNotFound)
	foreign := *sub
	foreign.WorkspaceID = other
	foreign.Status = store.StatusDeleting
	require.ErrorIs(t, s.UpdateSubscription(ctx, &foreign), store.ErrNotFound)
	got, err = s.GetSubscription(ctx, ws, sub.ID)
	require.NoError(t, err)
	require.Equal(t, store.StatusFailed, got.Status)
}

func testMatchSubscriptions(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws, other := mkWorkspace(t, s), mkWorkspace(t, s)
	c, oc := mkConnection(t, s, ws), mkConnection(t, s, other)
	route := func(key, selector, status string) func(*store.Subscription) {
		return func(s *store.Subscription) { s.GlobalWebhookKey, s.Selector, s.Status = key, selector, status }
	}
	m1 := mkSubscription(t, s, c, route("app", "team:T1", store.StatusActive))
	mkSubscription(t, s, c, route("app", "team:T1", store.StatusPending))
	mkSubscription(t, s, c, route("app", "team:T1", store.StatusFailed))
	mkSubscription(t, s, c, route("app", "team:T2", store.StatusActive))
	mkSubscription(t, s, c, route("other", "team:T1", store.StatusActive))
	mkSubscription(t, s, oc, route("app", "team:T1", store.StatusActive))
	m2 := mkSubscription(t, s, c, route("app", "team:T1", store.StatusActive))

	got, err := s.MatchSubscriptions(ctx, ws, "github", "app", "team:T1")
	require.NoError(t, err)
	require.Equal(t, []*store.Subscription{m1, m2}, got)

	got, err = s.MatchSubscriptions(ctx, ws, "slack", "app", "team:T1")
	require.NoError(t, err)
	require.Empty(t, got)
	got, err = s.MatchSubscriptions(ctx, ws, "github", "app", "team:T9")
	require.NoError(t, err)
	require.Empty(t, got)
}

func testClaimDueSubscriptions(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws, other := mkWorkspace(t, s), mkWorkspace(t, s)
	c, oc := mkConnection(t, s, ws), mkConnection(t, s, other)
	due := func(next time.Time, status string) func(*store.Subscription) {
		return func(s *store.Subscription) { s.NextRefreshTime, s.Status = next, status }
	}
	late := mkSubscription(t, s, c, due(at(-2*time.Hour), store.StatusActive))
	onTime := mkSubscription(t, s, oc, due(base, store.StatusActive)) // every workspace; <= RefreshBefore
	mkSubscription(t, s, c, due(at(time.Hour), store.StatusActive))   // not yet due
	mkSubscription(t, s, c, due(time.Time{}, store.StatusActive))     // no refresh scheduled
	mkSubscription(t, s, c, due(at(-time.Hour), store.StatusFailed))  // only ACTIVE ones are refreshed
	mkSubscription(t, s, c, due(at(-time.Hour), store.StatusPending)) // subscribe still running
	deleting := mkSubscription(t, s, c, due(time.Time{}, store.StatusDeleting))
	retry := mkSubscription(t, s, c, due(at(-time.Minute), store.StatusDeleting))
	mkSubscription(t, s, c, due(at(time.Minute), store.StatusDeleting)) // backing off: RetryBefore is base

	claim := func(owner string, limit int) []string {
		t.Helper()
		got, err := s.ClaimDueSubscriptions(ctx, store.DueClaim{
			Owner: owner, RefreshBefore: at(30 * time.Minute), RetryBefore: base, Limit: limit, TTL: time.Hour,
		})
		require.NoError(t, err)
		ids := []string{}
		for _, sub := range got {
			ids = append(ids, sub.ID)
		}
		return ids
	}
	got := claim("a", 2)
	require.Equal(t, []string{deleting.ID, late.ID}, got, "ordered by NextRefreshTime (zero first), limited")
	require.Equal(t, []string{retry.ID, onTime.ID}, claim("b", 100), "leased ones are skipped")
	require.Empty(t, claim("c", 100), "every due one is leased")

	// The claimed record is the stored one.
	subs, err := s.ClaimDueSubscriptions(ctx, store.DueClaim{Owner: "a", RefreshBefore: base, RetryBefore: base, TTL: time.Hour})
	require.NoError(t, err)
	require.Empty(t, subs)
	require.NoError(t, s.ReleaseSubscription(ctx, late.ID, "a"))
	subs, err = s.ClaimDueSubscriptions(ctx, store.DueClaim{Owner: "c", RefreshBefore: base, RetryBefore: base, TTL: time.Hour})
	require.NoError(t, err)
	require.Equal(t, []*store.Subscription{late}, subs, "a released lease is free")

	// Releasing a lease one does not hold does nothing.
	require.NoError(t, s.ReleaseSubscription(ctx, onTime.ID, "a"))
	require.NoError(t, s.ReleaseSubscription(ctx, "no-such-subscription", "a"))
	require.Empty(t, claim("d", 100))

	// Work recorded under a lease moves the subscription out of the due ones.
	require.NoError(t, s.ReleaseSubscription(ctx, onTime.ID, "b"))
	onTime.NextRefreshTime = at(2 * time.Hour)
	require.NoError(t, s.UpdateSubscription(ctx, onTime))
	require.Empty(t, claim("d", 100))
}

// testLeaseExpiry: a lease whose owner never releases it (the process died) ends with its
// TTL, by the store's clock.
func testLeaseExpiry(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	c := mkConnection(t, s, mkWorkspace(t, s))
	sub := mkSubscription(t, s, c, func(s *store.Subscription) { s.NextRefreshTime = at(-time.Hour) })
	q := store.DueClaim{Owner: "dead", RefreshBefore: base, RetryBefore: base, TTL: time.Millisecond}
	got, err := s.ClaimDueSubscriptions(ctx, q)
	require.NoError(t, err)
	require.Len(t, got, 1)
	time.Sleep(20 * time.Millisecond) // well past the TTL
	q.Owner, q.TTL = "alive", time.Hour
	got, err = s.ClaimDueSubscriptions(ctx, q)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, sub.ID, got[0].ID)
	// The dead owner's late release does not end the new lease.
	require.NoError(t, s.ReleaseSubscription(ctx, sub.ID, "dead"))
	q.Owner = "third"
	got, err = s.ClaimDueSubscriptions(ctx, q)
	require.NoError(t, err)
	require.Empty(t, got)
}

// testConcurrentClaims: owners claiming at once get each due subscription exactly once.
func testConcurrentClaims(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	c := mkConnection(t, s, mkWorkspace(t, s))
	want := map[string]bool{}
	for i := range 60 {
		sub := mkSubscription(t, s, c, func(s *store.Subscription) { s.NextRefreshTime = at(-time.Duration(i+1) * time.Minute) })
		want[sub.ID] = true
	}
	const owners = 6
	claimed := make([][]string, owners)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for o := range owners {
		wg.Go(func() {
			<-start
			for {
				got, err := s.ClaimDueSubscriptions(ctx, store.DueClaim{
					Owner: fmt.Sprintf("owner-%d", o), RefreshBefore: base, RetryBefore: base, Limit: 7, TTL: time.Hour,
				})
				if !assert.NoError(t, err) || len(got) == 0 {
					return
				}
				for _, sub := range got {
					claimed[o] = append(claimed[o], sub.ID)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	seen := map[string]int{}
	for _, ids := range claimed {
		for _, id := range ids {
			seen[id]++
		}
	}
	require.Len(t, seen, len(want))
	for id, n := range seen {
		require.True(t, want[id])
		require.Equal(t, 1, n, "subscription %s claimed %d times", id, n)
	}
}

func testGlobalWebhooks(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws, other := mkWorkspace(t, s), mkWorkspace(t, s)
	g := &store.GlobalWebhook{WorkspaceID: ws, ID: newID("gw"), ConnectorKey: "slack", Key: "events", CreateTime: base}
	got, err := s.EnsureGlobalWebhook(ctx, g)
	require.NoError(t, err)
	require.Equal(t, g, got)

	again, err := s.EnsureGlobalWebhook(ctx, &store.GlobalWebhook{WorkspaceID: ws, ID: newID("gw"), ConnectorKey: "slack", Key: "events", CreateTime: at(time.Hour)})
	require.NoError(t, err)
	require.Equal(t, g, again, "the existing one is returned")

	g2, err := s.EnsureGlobalWebhook(ctx, &store.GlobalWebhook{WorkspaceID: ws, ID: newID("gw"), ConnectorKey: "slack", Key: "interactivity", CreateTime: base})
	require.NoError(t, err)
	require.NotEqual(t, g.ID, g2.ID)
	g3, err := s.EnsureGlobalWebhook(ctx, &store.GlobalWebhook{WorkspaceID: ws, ID: newID("gw"), ConnectorKey: "hubspot", Key: "events", CreateTime: base})
	require.NoError(t, err)
	og, err := s.EnsureGlobalWebhook(ctx, &store.GlobalWebhook{WorkspaceID: other, ID: newID("gw"), ConnectorKey: "slack", Key: "events", CreateTime: base})
	require.NoError(t, err)
	require.NotEqual(t, g.ID, og.ID, "each workspace has its own")

	looked, err := s.LookupGlobalWebhook(ctx, g3.ID)
	require.NoError(t, err)
	require.Equal(t, g3, looked)
	_, err = s.LookupGlobalWebhook(ctx, "no-such-webhook")
	require.ErrorIs(t, err, store.ErrNotFound)

	list, err := s.ListGlobalWebhooks(ctx, ws, "slack")
	require.NoError(t, err)
	require.Equal(t, []*store.GlobalWebhook{g, g2}, list)
	list, err = s.ListGlobalWebhooks(ctx, other, "hubspot")
	require.NoError(t, err)
	require.Empty(t, list)

	_, err = s.EnsureGlobalWebhook(ctx, &store.GlobalWebhook{WorkspaceID: "no-such-workspace", ID: newID("gw"), ConnectorKey: "slack", Key: "events"})
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testEnsureGlobalWebhookRace(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	const n = 20
	ids := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			g, err := s.EnsureGlobalWebhook(ctx, &store.GlobalWebhook{WorkspaceID: ws, ID: newID("gw"), ConnectorKey: "slack", Key: "events"})
			if assert.NoError(t, err) {
				ids[i] = g.ID
			}
		})
	}
	close(start)
	wg.Wait()
	for _, id := range ids {
		require.Equal(t, ids[0], id, "every caller gets the same webhook")
	}
	list, err := s.ListGlobalWebhooks(ctx, ws, "slack")
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, ids[0], list[0].ID)
}
