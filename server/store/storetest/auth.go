package storetest

import (
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

// RunAuth runs the conformance tests of store.AuthStore, each as a parallel subtest on its
// own store; open is as for RunAll.
func RunAuth(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"SetConnectionAuth", testSetConnectionAuth},
		{"SetConnectionAuthRace", testSetConnectionAuthRace},
		{"AuthStates", testAuthStates},
		{"AuthStatesGoWithTheirConnection", testAuthStatesCascade},
		{"PruneAuthStates", testPruneAuthStates},
		{"RenewalLease", testRenewalLease},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			tc.fn(t, s)
		})
	}
}

// connectionEvent is a connection event of c (no subscription).
func connectionEvent(c *store.Connection, typ string) *store.Event {
	return &store.Event{
		ID: newID("ev"), WorkspaceID: c.WorkspaceID, ConnectionID: c.ID, EventKey: "connection", Type: typ,
		Record: map[string]any{"connectionId": c.ID, "status": "DISCONNECTED", "error": "invalid_grant"}, ReceiveTime: at(time.Minute),
	}
}

func testSetConnectionAuth(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws, other := mkWorkspace(t, s), mkWorkspace(t, s)
	c := mkConnection(t, s, ws)
	require.Equal(t, int64(1), c.CredentialsVersion)

	// A write at the current version replaces the credentials and their status, and moves
	// the version on.
	upd := *c
	upd.Credentials, upd.Grant, upd.CredentialsExpireTime = []byte("sealed-renewed"), store.GrantAuthorizationCode, at(time.Hour)
	upd.Status, upd.LastError = store.ConnectionConnected, ""
	require.NoError(t, s.SetConnectionAuth(ctx, &upd))
	require.Equal(t, int64(2), upd.CredentialsVersion)
	got, err := s.GetConnection(ctx, ws, c.ID)
	require.NoError(t, err)
	require.Equal(t, []byte("sealed-renewed"), got.Credentials)
	require.Equal(t, store.GrantAuthorizationCode, got.Grant)
	require.True(t, got.CredentialsExpireTime.Equal(at(time.Hour)))
	require.Equal(t, int64(2), got.CredentialsVersion)
	require.Equal(t, c.Name, got.Name, "name and parameters are kept")
	require.Equal(t, c.Parameters, got.Parameters)
	require.True(t, got.UpdateTime.Equal(upd.UpdateTime))

	// A write at a version that moved on is a conflict and changes nothing.
	stale := *c // version 1
	stale.Credentials = []byte("sealed-stale")
	err = s.SetConnectionAuth(ctx, &stale, connectionEvent(c, "connection.disconnected"))
	require.ErrorIs(t, err, store.ErrConflict)
	got, err = s.GetConnection(ctx, ws, c.ID)
	require.NoError(t, err)
	require.Equal(t, []byte("sealed-renewed"), got.Credentials)
	events := allEvents(t, s, ws, store.EventFilter{})
	require.Empty(t, events, "the events of a conflicting write are not stored")

	// UpdateConnection moves the version too.
	got.Name = "renamed"
	require.NoError(t, s.UpdateConnection(ctx, got))
	require.Equal(t, int64(3), got.CredentialsVersion)
	require.ErrorIs(t, s.SetConnectionAuth(ctx, &upd), store.ErrConflict)

	// Marking it disconnected stores the connection events in the same write, with seqs
	// after the workspace's other events.
	sub := mkSubscription(t, s, c)
	commit(t, s, deliveryOf(sub, at(0)), eventOf(sub, "issues.opened", "", at(0)))
	got.Status, got.LastError = store.ConnectionDisconnected, "invalid_grant: the refresh token was revoked"
	ev := connectionEvent(c, "connection.disconnected")
	require.NoError(t, s.SetConnectionAuth(ctx, got, ev))
	require.Equal(t, int64(4), got.CredentialsVersion)
	events = allEvents(t, s, ws, store.EventFilter{})
	require.Len(t, events, 2)
	require.Equal(t, ev.Seq, events[1].Seq)
	require.Greater(t, events[1].Seq, events[0].Seq)
	require.Equal(t, ev.ID, events[1].ID)
	require.Empty(t, events[1].SubscriptionID)
	require.Equal(t, "connection", events[1].EventKey)
	require.Equal(t, "connection.disconnected", events[1].Type)
	require.Equal(t, c.ID, events[1].ConnectionID)
	require.Equal(t, ev.Record, events[1].Record)
	got2, err := s.GetConnection(ctx, ws, c.ID)
	require.NoError(t, err)
	require.Equal(t, store.ConnectionDisconnected, got2.Status)
	require.Equal(t, "invalid_grant: the refresh token was revoked", got2.LastError)

	// Filters see connection events as any other: by connection, by event key, by type;
	// a subscription filter leaves them out.
	require.Len(t, allEvents(t, s, ws, store.EventFilter{ConnectionIDs: []string{c.ID}}), 2)
	require.Len(t, allEvents(t, s, ws, store.EventFilter{EventKeys: []string{"connection"}}), 1)
	require.Len(t, allEvents(t, s, ws, store.EventFilter{Types: []string{"connection.disconnected"}}), 1)
	require.Len(t, allEvents(t, s, ws, store.EventFilter{SubscriptionIDs: []string{sub.ID}}), 1)

	// Another workspace's connection, an unknown one: not found.
	other1 := *got2
	other1.WorkspaceID = other
	require.ErrorIs(t, s.SetConnectionAuth(ctx, &other1), store.ErrNotFound)
	missing := *got2
	missing.ID = "no-such-connection"
	require.ErrorIs(t, s.SetConnectionAuth(ctx, &missing), store.ErrNotFound)
}

// testSetConnectionAuthRace: of writers racing from the same version, exactly one wins.
func testSetConnectionAuthRace(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	c := mkConnection(t, s, ws)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := *c
			w.Credentials = []byte{byte(i)}
			errs[i] = s.SetConnectionAuth(ctx, &w)
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		if err == nil {
			require.Equal(t, -1, won, "two writers won")
			won = i
			continue
		}
		require.ErrorIs(t, err, store.ErrConflict)
	}
	require.GreaterOrEqual(t, won, 0, "nobody won")
	got, err := s.GetConnection(ctx, ws, c.ID)
	require.NoError(t, err)
	require.Equal(t, []byte{byte(won)}, got.Credentials)
	require.Equal(t, int64(2), got.CredentialsVersion)
}

func stateOf(c *store.Connection, token string, expires time.Time) *store.AuthState {
	h := sha256.Sum256([]byte(token))
	return &store.AuthState{
		Hash: h[:], WorkspaceID: c.WorkspaceID, ConnectionID: c.ID, Verifier: []byte("sealed-verifier"),
		ReturnURL: "https://app.example.com/done?x=1", CreateTime: base, ExpireTime: expires,
	}
}

func testAuthStates(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	c := mkConnection(t, s, ws)
	st := stateOf(c, "state-1", at(10*time.Minute))
	require.NoError(t, s.CreateAuthState(ctx, st))
	require.ErrorIs(t, s.CreateAuthState(ctx, stateOf(c, "state-1", at(time.Hour))), store.ErrAlreadyExists)
	missing := stateOf(c, "state-2", at(time.Hour))
	missing.ConnectionID = "no-such-connection"
	require.ErrorIs(t, s.CreateAuthState(ctx, missing), store.ErrNotFound)
	bare := stateOf(c, "state-3", at(time.Hour))
	bare.Verifier, bare.ReturnURL = nil, ""
	require.NoError(t, s.CreateAuthState(ctx, bare))

	// Consumed once: every field round-trips, then it is gone.
	got, err := s.ConsumeAuthState(ctx, st.Hash)
	require.NoError(t, err)
	require.Equal(t, st, got)
	_, err = s.ConsumeAuthState(ctx, st.Hash)
	require.ErrorIs(t, err, store.ErrNotFound)
	got, err = s.ConsumeAuthState(ctx, bare.Hash)
	require.NoError(t, err)
	require.Nil(t, got.Verifier)
	require.Empty(t, got.ReturnURL)
	unknown := sha256.Sum256([]byte("never-issued"))
	_, err = s.ConsumeAuthState(ctx, unknown[:])
	require.ErrorIs(t, err, store.ErrNotFound)

	// Racing consumers: one gets the state.
	race := stateOf(c, "state-4", at(time.Hour))
	require.NoError(t, s.CreateAuthState(ctx, race))
	var wg sync.WaitGroup
	wins := make(chan bool, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.ConsumeAuthState(ctx, race.Hash)
			if err != nil {
				require.ErrorIs(t, err, store.ErrNotFound)
			}
			wins <- err == nil
		}()
	}
	wg.Wait()
	close(wins)
	n := 0
	for w := range wins {
		if w {
			n++
		}
	}
	require.Equal(t, 1, n)
}

func testAuthStatesCascade(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	c := mkConnection(t, s, ws)
	st := stateOf(c, "cascade", at(time.Hour))
	require.NoError(t, s.CreateAuthState(ctx, st))
	require.NoError(t, s.DeleteConnection(ctx, ws, c.ID), "a pending authorization does not keep its connection")
	_, err := s.ConsumeAuthState(ctx, st.Hash)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testPruneAuthStates(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws := mkWorkspace(t, s)
	c := mkConnection(t, s, ws)
	old := stateOf(c, "old", at(-time.Minute))
	live := stateOf(c, "live", at(time.Minute))
	require.NoError(t, s.CreateAuthState(ctx, old))
	require.NoError(t, s.CreateAuthState(ctx, live))
	n, err := s.PruneAuthStates(ctx, base)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	_, err = s.ConsumeAuthState(ctx, old.Hash)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.ConsumeAuthState(ctx, live.Hash)
	require.NoError(t, err)
}

func testRenewalLease(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	ws, other := mkWorkspace(t, s), mkWorkspace(t, s)
	c := mkConnection(t, s, ws)
	claim := func(owner string, ttl time.Duration) bool {
		t.Helper()
		ok, err := s.ClaimRenewal(ctx, ws, c.ID, owner, ttl)
		require.NoError(t, err)
		return ok
	}
	require.True(t, claim("a", time.Minute))
	require.False(t, claim("b", time.Minute), "a holds it")
	require.True(t, claim("a", time.Minute), "its owner takes it again")
	require.NoError(t, s.ReleaseRenewal(ctx, ws, c.ID, "b"), "releasing another's lease does nothing")
	require.False(t, claim("b", time.Minute))
	require.NoError(t, s.ReleaseRenewal(ctx, ws, c.ID, "a"))
	require.True(t, claim("b", time.Minute), "released")

	// A write of the credentials ends the lease.
	got, err := s.GetConnection(ctx, ws, c.ID)
	require.NoError(t, err)
	got.Credentials = []byte("renewed")
	require.NoError(t, s.SetConnectionAuth(ctx, got))
	require.True(t, claim("a", time.Minute), "ended by SetConnectionAuth")
	got.Name = "renamed"
	require.NoError(t, s.UpdateConnection(ctx, got))
	require.True(t, claim("b", 0), "ended by UpdateConnection")
	require.True(t, claim("a", time.Minute), "a lease of no time has expired")

	// Unknown connections.
	_, err = s.ClaimRenewal(ctx, other, c.ID, "a", time.Minute)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.ClaimRenewal(ctx, ws, "no-such-connection", "a", time.Minute)
	require.ErrorIs(t, err, store.ErrNotFound)

	// Racing claims: one wins.
	d := mkConnection(t, s, ws)
	var wg sync.WaitGroup
	wins := make(chan bool, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.ClaimRenewal(ctx, ws, d.ID, newID("owner")+string(rune('a'+i)), time.Minute)
			require.NoError(t, err)
			wins <- ok
		}()
	}
	wg.Wait()
	close(wins)
	n := 0
	for w := range wins {
		if w {
			n++
		}
	}
	require.Equal(t, 1, n)
}
