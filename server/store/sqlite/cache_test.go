package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

// cacheFixture is one workspace's connection, subscription and connector parameters,
// with ids of their own.
type cacheFixture struct {
	ws, connector string
	conn          *store.Connection
	sub           *store.Subscription
}

func newCacheFixture(t *testing.T, s *Store, n int) *cacheFixture {
	t.Helper()
	ctx := t.Context()
	f := &cacheFixture{ws: fmt.Sprintf("ws-%d", n), connector: fmt.Sprintf("connector-%d", n)}
	require.NoError(t, s.CreateWorkspace(ctx, &store.Workspace{ID: f.ws, Name: f.ws}))
	f.conn = &store.Connection{WorkspaceID: f.ws, ID: fmt.Sprintf("conn-%d", n), ConnectorKey: f.connector, Name: "acme",
		Parameters:  map[string]any{"base": "https://api.example.com", "nested": map[string]any{"list": []any{"a", int64(1)}}},
		Credentials: []byte("sealed-credentials"), Status: store.ConnectionConnected}
	require.NoError(t, s.CreateConnection(ctx, f.conn))
	f.sub = &store.Subscription{WorkspaceID: f.ws, ID: fmt.Sprintf("sub-%d", n), ConnectionID: f.conn.ID,
		ConnectorKey: f.connector, EventKey: "issues", Status: store.StatusActive,
		Parameters: map[string]any{"repo": "hooks", "labels": []any{"bug"}}, State: []byte("sealed-state"),
		WebhookSecret: []byte("sealed-secret")}
	require.NoError(t, s.CreateSubscription(ctx, f.sub))
	require.NoError(t, s.SetConnectorParameters(ctx, f.ws, f.connector, []byte("sealed-params")))
	return f
}

// has reports whether c holds k.
func (c *lru[K, V]) has(k K) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.items.Contains(k)
}

// warm reads f's three rows, and requires those that exist to be cached then.
func warm(t *testing.T, s *Store, f *cacheFixture) {
	t.Helper()
	ctx := t.Context()
	_, err := s.LookupSubscription(ctx, f.sub.ID)
	require.Equal(t, err == nil, s.cache.subs.has(f.sub.ID), "subscription: %v", err)
	_, err = s.GetConnection(ctx, f.ws, f.conn.ID)
	require.Equal(t, err == nil, s.cache.conns.has(wsKey{f.ws, f.conn.ID}), "connection: %v", err)
	_, err = s.GetConnectorParameters(ctx, f.ws, f.connector)
	if err != nil {
		require.ErrorIs(t, err, store.ErrNotFound)
	}
	require.True(t, s.cache.params.has(wsKey{f.ws, f.connector}), "connector parameters, found or not")
}

// dbConnection and dbConnectorParameters read the database, never the cache
// (GetSubscription does not read it).
func dbConnection(ctx context.Context, s *Store, ws, id string) (*store.Connection, error) {
	k, err := getOne(ctx, s, "connection", id,
		`SELECT `+connectionCols+` FROM connections WHERE id = ? AND workspace_id = ?`, scanConnection, id, ws)
	return k.v, err
}

func dbConnectorParameters(ctx context.Context, s *Store, ws, key string) ([]byte, error) {
	return getOne(ctx, s, "connector parameters", key,
		`SELECT sealed FROM connector_parameters WHERE workspace_id = ? AND connector_key = ?`,
		func(sc scanner) ([]byte, error) {
			var b []byte
			return b, sc.Scan(&b)
		}, ws, key)
}

// requireCoherent requires the cached reads of f's rows to answer what the database does.
func requireCoherent(t *testing.T, s *Store, f *cacheFixture) {
	t.Helper()
	ctx := t.Context()
	for range 2 { // a miss, then (when found) a hit
		want, wantErr := s.GetSubscription(ctx, f.ws, f.sub.ID)
		got, err := s.LookupSubscription(ctx, f.sub.ID)
		require.Equal(t, wantErr == nil, err == nil, "LookupSubscription: %v, GetSubscription: %v", err, wantErr)
		require.Equal(t, want, got, "subscription")

		wantC, wantErr := dbConnection(ctx, s, f.ws, f.conn.ID)
		gotC, err := s.GetConnection(ctx, f.ws, f.conn.ID)
		require.Equal(t, wantErr == nil, err == nil, "GetConnection: %v, database: %v", err, wantErr)
		require.Equal(t, wantC, gotC, "connection")

		wantP, wantErr := dbConnectorParameters(ctx, s, f.ws, f.connector)
		gotP, err := s.GetConnectorParameters(ctx, f.ws, f.connector)
		require.Equal(t, wantErr == nil, err == nil, "GetConnectorParameters: %v, database: %v", err, wantErr)
		require.Equal(t, wantP, gotP, "connector parameters")
	}
}

// TestCacheWritesAreSeen runs every write of a cached row after its three rows were
// cached: the write drops the rows it wrote (or, for the last event time, updates it), and
// the reads that follow answer what the database holds.
func TestCacheWritesAreSeen(t *testing.T) {
	s := openTest(t, Options{})
	type dropped struct{ sub, conn, params bool }
	tests := []struct {
		name  string
		setup func(t *testing.T, f *cacheFixture) // before the rows are cached
		write func(t *testing.T, f *cacheFixture)
		drops dropped
		// check, when set, checks what the reads after the write return.
		check func(t *testing.T, f *cacheFixture)
	}{
		{name: "UpdateSubscription", drops: dropped{sub: true},
			write: func(t *testing.T, f *cacheFixture) {
				sub, err := s.GetSubscription(t.Context(), f.ws, f.sub.ID)
				require.NoError(t, err)
				sub.Status, sub.Parameters, sub.State = store.StatusFailed, map[string]any{"repo": "other"}, []byte("sealed-state-2")
				require.NoError(t, s.UpdateSubscription(t.Context(), sub))
			},
			check: func(t *testing.T, f *cacheFixture) {
				got, err := s.LookupSubscription(t.Context(), f.sub.ID)
				require.NoError(t, err)
				require.Equal(t, store.StatusFailed, got.Status)
				require.Equal(t, []byte("sealed-state-2"), got.State)
			}},
		{name: "UpdateSubscription with a StateChange", drops: dropped{sub: true},
			write: func(t *testing.T, f *cacheFixture) {
				sub, err := s.GetSubscription(t.Context(), f.ws, f.sub.ID)
				require.NoError(t, err)
				sub.StateChange = func(stored []byte) ([]byte, error) { return append(stored, "+merged"...), nil }
				require.NoError(t, s.UpdateSubscription(t.Context(), sub))
			},
			check: func(t *testing.T, f *cacheFixture) {
				got, err := s.LookupSubscription(t.Context(), f.sub.ID)
				require.NoError(t, err)
				require.Equal(t, []byte("sealed-state+merged"), got.State)
			}},
		{name: "DeleteSubscription", drops: dropped{sub: true},
			write: func(t *testing.T, f *cacheFixture) {
				require.NoError(t, s.DeleteSubscription(t.Context(), f.ws, f.sub.ID))
			},
			check: func(t *testing.T, f *cacheFixture) {
				_, err := s.LookupSubscription(t.Context(), f.sub.ID)
				require.ErrorIs(t, err, store.ErrNotFound)
			}},
		{name: "CreateSubscription after a lookup that found nothing", drops: dropped{sub: true}, // never cached
			setup: func(t *testing.T, f *cacheFixture) {
				require.NoError(t, s.DeleteSubscription(t.Context(), f.ws, f.sub.ID))
			},
			write: func(t *testing.T, f *cacheFixture) {
				_, err := s.LookupSubscription(t.Context(), f.sub.ID)
				require.ErrorIs(t, err, store.ErrNotFound)
				sub := *f.sub
				require.NoError(t, s.CreateSubscription(t.Context(), &sub))
			},
			check: func(t *testing.T, f *cacheFixture) {
				_, err := s.LookupSubscription(t.Context(), f.sub.ID)
				require.NoError(t, err)
			}},
		{name: "ClaimDueSubscriptions", drops: dropped{sub: true},
			setup: func(t *testing.T, f *cacheFixture) {
				sub, err := s.GetSubscription(t.Context(), f.ws, f.sub.ID)
				require.NoError(t, err)
				sub.NextRefreshTime = time.Unix(1, 0)
				require.NoError(t, s.UpdateSubscription(t.Context(), sub))
			},
			write: func(t *testing.T, f *cacheFixture) {
				claimed, err := s.ClaimDueSubscriptions(t.Context(), store.DueClaim{Owner: "me", RefreshBefore: time.Unix(2, 0), TTL: time.Minute})
				require.NoError(t, err)
				require.Len(t, claimed, 1)
			}},
		{name: "ReleaseSubscription", drops: dropped{sub: true},
			write: func(t *testing.T, f *cacheFixture) {
				require.NoError(t, s.ReleaseSubscription(t.Context(), f.sub.ID, "me"))
			}},
		{name: "CommitDelivery state update", drops: dropped{sub: true},
			write: func(t *testing.T, f *cacheFixture) {
				_, err := s.CommitDelivery(t.Context(), &store.DeliveryCommit{
					StateUpdates: []store.StateUpdate{{SubscriptionID: f.sub.ID, State: []byte("sealed-from-handle")}},
					Events:       []*store.Event{cacheEvent(f, time.Time{})},
				})
				require.NoError(t, err)
			},
			check: func(t *testing.T, f *cacheFixture) {
				got, err := s.LookupSubscription(t.Context(), f.sub.ID)
				require.NoError(t, err)
				require.Equal(t, []byte("sealed-from-handle"), got.State)
			}},
		{name: "CommitDelivery state change", drops: dropped{sub: true},
			write: func(t *testing.T, f *cacheFixture) {
				_, err := s.CommitDelivery(t.Context(), &store.DeliveryCommit{
					Delivery: &store.Delivery{ID: "dlv-" + f.sub.ID, WorkspaceID: f.ws, SubscriptionID: f.sub.ID,
						ReceiveTime: time.Now(), StatusCode: 200, Outcome: store.OutcomeOK},
					StateUpdates: []store.StateUpdate{{SubscriptionID: f.sub.ID,
						Change: func(stored []byte) ([]byte, error) { return append(stored, "+changed"...), nil }}},
				})
				require.NoError(t, err)
			},
			check: func(t *testing.T, f *cacheFixture) {
				got, err := s.LookupSubscription(t.Context(), f.sub.ID)
				require.NoError(t, err)
				require.Equal(t, []byte("sealed-state+changed"), got.State)
			}},
		{name: "CommitDelivery events move the last event time of the cached copy",
			write: func(t *testing.T, f *cacheFixture) {
				_, err := s.CommitDelivery(t.Context(), &store.DeliveryCommit{
					Events: []*store.Event{cacheEvent(f, time.Unix(1000, 0)), cacheEvent(f, time.Unix(3000, 0)), cacheEvent(f, time.Unix(2000, 0))},
				})
				require.NoError(t, err)
				// An older event leaves it (MAX), in the cache as in the database.
				_, err = s.CommitDelivery(t.Context(), &store.DeliveryCommit{Events: []*store.Event{cacheEvent(f, time.Unix(500, 0))}})
				require.NoError(t, err)
			},
			check: func(t *testing.T, f *cacheFixture) {
				got, err := s.LookupSubscription(t.Context(), f.sub.ID)
				require.NoError(t, err)
				require.Equal(t, time.Unix(3000, 0).UTC(), got.LastEventTime)
			}},
		{name: "an event of another workspace does not move it",
			write: func(t *testing.T, f *cacheFixture) {
				ev := cacheEvent(f, time.Unix(4000, 0))
				ev.WorkspaceID = "ws-other"
				_, err := s.CommitDelivery(t.Context(), &store.DeliveryCommit{Events: []*store.Event{ev}})
				require.NoError(t, err)
			},
			check: func(t *testing.T, f *cacheFixture) {
				got, err := s.LookupSubscription(t.Context(), f.sub.ID)
				require.NoError(t, err)
				require.True(t, got.LastEventTime.IsZero())
			}},
		{name: "FinishFetch state update", drops: dropped{sub: true},
			setup: func(t *testing.T, f *cacheFixture) {
				d := &store.Delivery{ID: "dlv-" + f.sub.ID, WorkspaceID: f.ws, SubscriptionID: f.sub.ID,
					ReceiveTime: time.Unix(10, 0), StatusCode: 200, Outcome: store.OutcomeOK}
				_, err := s.CommitDeliveryWithFetches(t.Context(), &store.DeliveryCommit{Delivery: d}, []*store.Fetch{{
					ID: "fch-" + f.sub.ID, WorkspaceID: f.ws, SubscriptionID: f.sub.ID, DeliveryID: d.ID,
					DeliveryTime: d.ReceiveTime, NextAttemptTime: d.ReceiveTime}})
				require.NoError(t, err)
			},
			write: func(t *testing.T, f *cacheFixture) {
				claimed, err := s.ClaimFetches(t.Context(), store.FetchClaim{Now: time.Unix(20, 0), LeaseFor: time.Minute, SubscriptionID: f.sub.ID})
				require.NoError(t, err)
				require.Len(t, claimed, 1)
				_, err = s.FinishFetch(t.Context(), claimed[0], &store.FetchDone{
					StateUpdate: store.StateUpdate{SubscriptionID: f.sub.ID, State: []byte("sealed-from-fetch")}})
				require.NoError(t, err)
			},
			check: func(t *testing.T, f *cacheFixture) {
				got, err := s.LookupSubscription(t.Context(), f.sub.ID)
				require.NoError(t, err)
				require.Equal(t, []byte("sealed-from-fetch"), got.State)
			}},
		{name: "UpdateConnection", drops: dropped{conn: true},
			write: func(t *testing.T, f *cacheFixture) {
				c, err := dbConnection(t.Context(), s, f.ws, f.conn.ID)
				require.NoError(t, err)
				c.Name, c.Parameters, c.Credentials = "renamed", map[string]any{"base": "https://other.example.com"}, []byte("sealed-2")
				require.NoError(t, s.UpdateConnection(t.Context(), c))
			},
			check: func(t *testing.T, f *cacheFixture) {
				got, err := s.GetConnection(t.Context(), f.ws, f.conn.ID)
				require.NoError(t, err)
				require.Equal(t, "renamed", got.Name)
				require.Equal(t, int64(2), got.CredentialsVersion)
			}},
		{name: "SetConnectionAuth", drops: dropped{conn: true},
			write: func(t *testing.T, f *cacheFixture) {
				c, err := dbConnection(t.Context(), s, f.ws, f.conn.ID)
				require.NoError(t, err)
				c.Credentials, c.Status, c.LastError = []byte("sealed-refreshed"), store.ConnectionDisconnected, "revoked"
				require.NoError(t, s.SetConnectionAuth(t.Context(), c))
			},
			check: func(t *testing.T, f *cacheFixture) {
				got, err := s.GetConnection(t.Context(), f.ws, f.conn.ID)
				require.NoError(t, err)
				require.Equal(t, []byte("sealed-refreshed"), got.Credentials)
				require.Equal(t, store.ConnectionDisconnected, got.Status)
			}},
		{name: "ClaimRenewal", drops: dropped{conn: true},
			write: func(t *testing.T, f *cacheFixture) {
				ok, err := s.ClaimRenewal(t.Context(), f.ws, f.conn.ID, "me", time.Minute)
				require.NoError(t, err)
				require.True(t, ok)
			}},
		{name: "ReleaseRenewal", drops: dropped{conn: true},
			write: func(t *testing.T, f *cacheFixture) {
				require.NoError(t, s.ReleaseRenewal(t.Context(), f.ws, f.conn.ID, "me"))
			}},
		{name: "DeleteConnection", drops: dropped{sub: true, conn: true},
			write: func(t *testing.T, f *cacheFixture) {
				require.NoError(t, s.DeleteSubscription(t.Context(), f.ws, f.sub.ID))
				require.NoError(t, s.DeleteConnection(t.Context(), f.ws, f.conn.ID))
			},
			check: func(t *testing.T, f *cacheFixture) {
				_, err := s.GetConnection(t.Context(), f.ws, f.conn.ID)
				require.ErrorIs(t, err, store.ErrNotFound)
			}},
		{name: "CreateConnection after a read that found nothing", drops: dropped{sub: true, conn: true}, // never cached
			setup: func(t *testing.T, f *cacheFixture) {
				require.NoError(t, s.DeleteSubscription(t.Context(), f.ws, f.sub.ID))
				require.NoError(t, s.DeleteConnection(t.Context(), f.ws, f.conn.ID))
			},
			write: func(t *testing.T, f *cacheFixture) {
				_, err := s.GetConnection(t.Context(), f.ws, f.conn.ID)
				require.ErrorIs(t, err, store.ErrNotFound)
				c := *f.conn
				require.NoError(t, s.CreateConnection(t.Context(), &c))
				sub := *f.sub
				require.NoError(t, s.CreateSubscription(t.Context(), &sub))
			}},
		{name: "SetConnectorParameters after a read that found none", drops: dropped{params: true},
			setup: func(t *testing.T, f *cacheFixture) {
				f.connector += "-unset" // a connector of the workspace without parameters
			},
			write: func(t *testing.T, f *cacheFixture) {
				require.True(t, s.cache.params.has(wsKey{f.ws, f.connector}), "none is cached")
				_, err := s.GetConnectorParameters(t.Context(), f.ws, f.connector)
				require.ErrorIs(t, err, store.ErrNotFound)
				require.NoError(t, s.SetConnectorParameters(t.Context(), f.ws, f.connector, []byte("sealed-params-new")))
			},
			check: func(t *testing.T, f *cacheFixture) {
				got, err := s.GetConnectorParameters(t.Context(), f.ws, f.connector)
				require.NoError(t, err)
				require.Equal(t, []byte("sealed-params-new"), got)
			}},
		{name: "SetConnectorParameters", drops: dropped{params: true},
			write: func(t *testing.T, f *cacheFixture) {
				require.NoError(t, s.SetConnectorParameters(t.Context(), f.ws, f.connector, []byte("sealed-params-2")))
			},
			check: func(t *testing.T, f *cacheFixture) {
				got, err := s.GetConnectorParameters(t.Context(), f.ws, f.connector)
				require.NoError(t, err)
				require.Equal(t, []byte("sealed-params-2"), got)
			}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newCacheFixture(t, s, i)
			if tc.setup != nil {
				tc.setup(t, f)
			}
			warm(t, s, f)
			tc.write(t, f)
			require.Equal(t, !tc.drops.sub, s.cache.subs.has(f.sub.ID), "subscription cached after the write")
			require.Equal(t, !tc.drops.conn, s.cache.conns.has(wsKey{f.ws, f.conn.ID}), "connection cached after the write")
			require.Equal(t, !tc.drops.params, s.cache.params.has(wsKey{f.ws, f.connector}), "connector parameters cached after the write")
			requireCoherent(t, s, f)
			if tc.check != nil {
				tc.check(t, f)
			}
		})
	}
}

func cacheEvent(f *cacheFixture, received time.Time) *store.Event {
	return &store.Event{ID: fmt.Sprintf("ev-%s-%d", f.sub.ID, received.UnixNano()), WorkspaceID: f.ws, ConnectionID: f.conn.ID,
		SubscriptionID: f.sub.ID, EventKey: "issues", Type: "opened", Record: map[string]any{"n": int64(1)}, ReceiveTime: received}
}

// TestCacheFillRace: a read that missed and read the database, then lost the race to a
// write that committed and dropped the row before the read could cache it, must not
// cache what it read. The write runs in the hook between the database read and the fill.
func TestCacheFillRace(t *testing.T) {
	s := openTest(t, Options{})
	f := newCacheFixture(t, s, 0)
	ctx := t.Context()
	tests := []struct {
		name  string
		arm   func(write func())
		read  func() (any, error)
		write func()
		// want is what a read returns once the write has committed.
		want func() any
		// fresh: the read already returns want the first time, because a subscription read
		// reads again when a flush of the last event times ran meanwhile (lastevent.go).
		fresh bool
	}{
		{name: "subscription, UpdateSubscription",
			arm:  func(w func()) { s.cache.subs.beforeFill = func(string) { w() } },
			read: func() (any, error) { return s.LookupSubscription(ctx, f.sub.ID) },
			write: func() {
				sub, err := s.GetSubscription(ctx, f.ws, f.sub.ID)
				require.NoError(t, err)
				sub.Status = store.StatusFailed
				require.NoError(t, s.UpdateSubscription(ctx, sub))
			},
			want: func() any { v, _ := s.GetSubscription(ctx, f.ws, f.sub.ID); return v }},
		{name: "subscription, last event time of a delivery written by a flush",
			arm:  func(w func()) { s.cache.subs.beforeFill = func(string) { w() } },
			read: func() (any, error) { return s.LookupSubscription(ctx, f.sub.ID) },
			write: func() {
				_, err := s.CommitDelivery(ctx, &store.DeliveryCommit{Events: []*store.Event{cacheEvent(f, time.Unix(5000, 0))}})
				require.NoError(t, err)
				flushLastEvents(t, s)
			},
			want:  func() any { v, _ := s.GetSubscription(ctx, f.ws, f.sub.ID); return v },
			fresh: true},
		{name: "connection",
			arm:  func(w func()) { s.cache.conns.beforeFill = func(wsKey) { w() } },
			read: func() (any, error) { return s.GetConnection(ctx, f.ws, f.conn.ID) },
			write: func() {
				c, err := dbConnection(ctx, s, f.ws, f.conn.ID)
				require.NoError(t, err)
				c.Name = "renamed"
				require.NoError(t, s.UpdateConnection(ctx, c))
			},
			want: func() any { v, _ := dbConnection(ctx, s, f.ws, f.conn.ID); return v }},
		{name: "connector parameters, none before the write",
			arm: func(w func()) { s.cache.params.beforeFill = func(wsKey) { w() } },
			read: func() (any, error) {
				b, err := s.GetConnectorParameters(ctx, f.ws, "unset")
				if errors.Is(err, store.ErrNotFound) {
					return "none", nil
				}
				return b, err
			},
			write: func() {
				require.NoError(t, s.SetConnectorParameters(ctx, f.ws, "unset", []byte("sealed-params-new")))
			},
			want: func() any { v, _ := dbConnectorParameters(ctx, s, f.ws, "unset"); return v }},
		{name: "connector parameters",
			arm:  func(w func()) { s.cache.params.beforeFill = func(wsKey) { w() } },
			read: func() (any, error) { return s.GetConnectorParameters(ctx, f.ws, f.connector) },
			write: func() {
				require.NoError(t, s.SetConnectorParameters(ctx, f.ws, f.connector, []byte("sealed-params-2")))
			},
			want: func() any { v, _ := dbConnectorParameters(ctx, s, f.ws, f.connector); return v }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.cache.clear()
			var once sync.Once
			wrote := false
			tc.arm(func() { once.Do(func() { tc.write(); wrote = true }) })
			defer tc.arm(func() {})

			before, err := tc.read() // misses, reads the database, then the write commits
			require.NoError(t, err)
			require.True(t, wrote)
			want := tc.want()
			if tc.fresh {
				require.Equal(t, want, before, "the read read again after the flush")
			} else {
				require.NotEqual(t, want, before, "the first read returned the row as it was before the write")
			}

			// Had the first read cached its row, this would be a hit on the old row.
			got, err := tc.read()
			require.NoError(t, err)
			require.Equal(t, want, got)
			got, err = tc.read() // a hit now
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
}

// TestCacheReturnsCopies: callers change what a read returns (core sets fields of a
// connection it read before updating it); that never changes what the next read returns.
func TestCacheReturnsCopies(t *testing.T) {
	s := openTest(t, Options{})
	f := newCacheFixture(t, s, 0)
	ctx := t.Context()
	wantSub, err := s.GetSubscription(ctx, f.ws, f.sub.ID)
	require.NoError(t, err)
	wantConn, err := dbConnection(ctx, s, f.ws, f.conn.ID)
	require.NoError(t, err)
	wantParams := []byte("sealed-params")

	for i := range 3 { // the miss's value, then two hits'
		sub, err := s.LookupSubscription(ctx, f.sub.ID)
		require.NoError(t, err, i)
		require.Equal(t, wantSub, sub, i)
		sub.Status = "CHANGED"
		sub.Parameters["repo"] = "changed"
		sub.Parameters["labels"].([]any)[0] = "changed"
		sub.State[0] = 'X'
		sub.WebhookSecret[0] = 'X'
		sub.StateChange = func([]byte) ([]byte, error) { return nil, nil }

		c, err := s.GetConnection(ctx, f.ws, f.conn.ID)
		require.NoError(t, err, i)
		require.Equal(t, wantConn, c, i)
		c.Name = "changed"
		c.Parameters["nested"].(map[string]any)["list"].([]any)[0] = "changed"
		c.Parameters["added"] = true
		c.Credentials[0] = 'X'

		p, err := s.GetConnectorParameters(ctx, f.ws, f.connector)
		require.NoError(t, err, i)
		require.Equal(t, wantParams, p, i)
		p[0] = 'X'
	}
}

// TestCacheBound: a cache keeps the most recently read rows within its byte budget, and
// never caches a row larger than a sixteenth of it.
func TestCacheBound(t *testing.T) {
	const budget = 32 << 10
	s := openTest(t, Options{CacheBytes: budget})
	ctx := t.Context()
	f := newCacheFixture(t, s, 0)
	const n = 200 // about 100 KiB of subscriptions, estimated
	for i := range n {
		sub := *f.sub
		sub.ID = fmt.Sprintf("bound-%03d", i)
		require.NoError(t, s.CreateSubscription(ctx, &sub))
	}
	for i := range n {
		_, err := s.LookupSubscription(ctx, fmt.Sprintf("bound-%03d", i))
		require.NoError(t, err)
		_, bytes := s.cache.subs.len()
		require.LessOrEqual(t, bytes, int64(budget))
	}
	entries, _ := s.cache.subs.len()
	require.Less(t, entries, n)
	require.Greater(t, entries, n/10)
	// The least recently read went first.
	require.False(t, s.cache.subs.has("bound-000"))
	require.True(t, s.cache.subs.has(fmt.Sprintf("bound-%03d", n-1)))
	require.True(t, s.cache.subs.has(fmt.Sprintf("bound-%03d", n-entries)))
	require.False(t, s.cache.subs.has(fmt.Sprintf("bound-%03d", n-entries-1)))

	// A read hit moves its row to the front: it outlives rows read after it.
	_, err := s.LookupSubscription(ctx, fmt.Sprintf("bound-%03d", n-entries))
	require.NoError(t, err)
	_, err = s.LookupSubscription(ctx, "bound-000")
	require.NoError(t, err)
	require.True(t, s.cache.subs.has(fmt.Sprintf("bound-%03d", n-entries)))
	require.False(t, s.cache.subs.has(fmt.Sprintf("bound-%03d", n-entries+1)))

	// A subscription whose state is over budget/16 is read from the database every time.
	big := *f.sub
	big.ID, big.State = "big", []byte(strings.Repeat("s", budget/maxEntryShare))
	require.NoError(t, s.CreateSubscription(ctx, &big))
	misses := s.cache.subs.misses.Load()
	for range 2 {
		got, err := s.LookupSubscription(ctx, "big")
		require.NoError(t, err)
		require.Equal(t, big.State, got.State)
	}
	require.Equal(t, misses+2, s.cache.subs.misses.Load())
	require.False(t, s.cache.subs.has("big"))
}

// TestCacheOffAndClosed: with CacheBytes < 0 nothing is cached; after Close a cached row
// is not served.
func TestCacheOffAndClosed(t *testing.T) {
	off := openTest(t, Options{CacheBytes: -1})
	f := newCacheFixture(t, off, 0)
	for range 2 {
		got, err := off.LookupSubscription(t.Context(), f.sub.ID)
		require.NoError(t, err)
		require.Equal(t, f.sub.ID, got.ID)
	}
	require.Nil(t, off.cache.subs)

	s := openTest(t, Options{})
	f = newCacheFixture(t, s, 0)
	warm(t, s, f)
	require.NoError(t, s.Close())
	_, err := s.LookupSubscription(t.Context(), f.sub.ID)
	require.ErrorIs(t, err, store.ErrClosed)
	_, err = s.GetConnection(t.Context(), f.ws, f.conn.ID)
	require.ErrorIs(t, err, store.ErrClosed)
	_, err = s.GetConnectorParameters(t.Context(), f.ws, f.connector)
	require.ErrorIs(t, err, store.ErrClosed)
}

// TestCacheConcurrentReadsAndWrites runs readers against a writer changing the same rows
// (for the race detector): once the writer is done, every read answers its last write.
func TestCacheConcurrentReadsAndWrites(t *testing.T) {
	s := openTest(t, Options{})
	f := newCacheFixture(t, s, 0)
	ctx := t.Context()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err1 := s.LookupSubscription(ctx, f.sub.ID)
				_, err2 := s.GetConnection(ctx, f.ws, f.conn.ID)
				_, err3 := s.GetConnectorParameters(ctx, f.ws, f.connector)
				if err := errors.Join(err1, err2, err3); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range 20 {
		sub, err := s.GetSubscription(ctx, f.ws, f.sub.ID)
		require.NoError(t, err)
		sub.LastError = fmt.Sprintf("error %d", i)
		require.NoError(t, s.UpdateSubscription(ctx, sub))
		_, err = s.CommitDelivery(ctx, &store.DeliveryCommit{Events: []*store.Event{cacheEvent(f, time.Unix(int64(i+1), 0))}})
		require.NoError(t, err)
		c, err := dbConnection(ctx, s, f.ws, f.conn.ID)
		require.NoError(t, err)
		c.Name = fmt.Sprintf("name %d", i)
		require.NoError(t, s.UpdateConnection(ctx, c))
		require.NoError(t, s.SetConnectorParameters(ctx, f.ws, f.connector, fmt.Appendf(nil, "params %d", i)))
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	requireCoherent(t, s, f)
	sub, err := s.LookupSubscription(ctx, f.sub.ID)
	require.NoError(t, err)
	require.Equal(t, "error 19", sub.LastError)
	require.Equal(t, time.Unix(20, 0).UTC(), sub.LastEventTime)
}

// TestCacheMetrics: hookmap_store_cache_lookups_total counts hits and misses by cache.
func TestCacheMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := openTest(t, Options{Registerer: reg})
	f := newCacheFixture(t, s, 0)
	warm(t, s, f) // three misses
	warm(t, s, f) // three hits
	_, err := s.GetConnectorParameters(t.Context(), f.ws, "unset")
	require.ErrorIs(t, err, store.ErrNotFound) // a miss
	lookups := func(cache, result string) float64 {
		return counterValue(t, reg, "hookmap_store_cache_lookups_total", "cache", cache, "result", result)
	}
	require.Equal(t, []float64{1, 1, 1, 1, 1, 2}, []float64{
		lookups("subscriptions", "hit"), lookups("subscriptions", "miss"),
		lookups("connections", "hit"), lookups("connections", "miss"),
		lookups("connector_parameters", "hit"), lookups("connector_parameters", "miss"),
	})
}

// TestCacheFailedCommitDrops: when a COMMIT fails (here a deferred foreign key), the writer
// does not know what the database kept: it drops the rows the transaction wrote. The last
// event time of an event the transaction stored never becomes pending (it is recorded
// after a commit only), and the subscription's row, which it did not write, stays cached.
func TestCacheFailedCommitDrops(t *testing.T) {
	s := openTest(t, Options{})
	f := newCacheFixture(t, s, 0)
	warm(t, s, f)
	err := s.write(t.Context(), func(w *wtx) error {
		if _, err := w.exec(`PRAGMA defer_foreign_keys = ON`); err != nil {
			return err
		}
		w.touch(f.sub.ID, f.ws, time.Unix(9000, 0).UnixNano()) // written before the COMMIT
		w.changedConnection(f.ws, f.conn.ID)
		_, err := w.exec(`INSERT INTO api_keys (id, workspace_id, name, hash) VALUES ('k', 'no-such-workspace', 'k', x'00')`)
		return err
	})
	require.True(t, isFKViolation(err), "%v", err)
	require.True(t, s.cache.subs.has(f.sub.ID))
	require.False(t, s.cache.conns.has(wsKey{f.ws, f.conn.ID}))
	require.True(t, s.cache.params.has(wsKey{f.ws, f.connector}))
	sub, err := s.LookupSubscription(t.Context(), f.sub.ID)
	require.NoError(t, err)
	require.True(t, sub.LastEventTime.IsZero(), "the touch was rolled back")
	require.True(t, s.lastEvent.empty())
	requireCoherent(t, s, f)
}

// API keys are cached by hash: a hit reads no database and returns a copy, and a
// revocation is seen by the very next read, even by a read that missed before the revoke
// and fills after it (the fill is refused).
func TestAPIKeyCache(t *testing.T) {
	s := openTest(t, Options{})
	ctx := t.Context()
	require.NoError(t, s.CreateWorkspace(ctx, &store.Workspace{ID: "w", Name: "w"}))
	k := &store.APIKey{ID: "key-1", WorkspaceID: "w", Name: "ci", Hash: []byte("hash-1")}
	require.NoError(t, s.CreateAPIKey(ctx, k))

	got, err := s.GetAPIKeyByHash(ctx, []byte("hash-1"))
	require.NoError(t, err)
	require.True(t, s.cache.keys.has("hash-1"))
	got.Hash[0], got.Name = 'X', "changed"
	hits := s.cache.keys.hits.Load()
	again, err := s.GetAPIKeyByHash(ctx, []byte("hash-1"))
	require.NoError(t, err)
	require.Equal(t, hits+1, s.cache.keys.hits.Load(), "served from the cache")
	require.Equal(t, []byte("hash-1"), again.Hash, "a copy: what the caller changed is not cached")
	require.Equal(t, "ci", again.Name)
	require.True(t, again.RevokeTime.IsZero())

	require.NoError(t, s.RevokeAPIKey(ctx, "key-1", time.Time{}))
	require.False(t, s.cache.keys.has("hash-1"), "a revocation clears the cache")
	revoked, err := s.GetAPIKeyByHash(ctx, []byte("hash-1"))
	require.NoError(t, err)
	require.False(t, revoked.RevokeTime.IsZero(), "the next read sees the revocation")

	// A read that misses, reads the key unrevoked, and fills only after a revocation
	// committed: its fill is refused, so no stale copy outlives the revocation.
	require.NoError(t, s.CreateAPIKey(ctx, &store.APIKey{ID: "key-2", WorkspaceID: "w", Name: "ci", Hash: []byte("hash-2")}))
	s.cache.keys.beforeFill = func(string) {
		s.cache.keys.beforeFill = nil
		require.NoError(t, s.RevokeAPIKey(ctx, "key-2", time.Time{}))
	}
	raced, err := s.GetAPIKeyByHash(ctx, []byte("hash-2"))
	require.NoError(t, err)
	require.True(t, raced.RevokeTime.IsZero(), "read before the revocation")
	require.False(t, s.cache.keys.has("hash-2"), "not cached: a write committed meanwhile")
	after, err := s.GetAPIKeyByHash(ctx, []byte("hash-2"))
	require.NoError(t, err)
	require.False(t, after.RevokeTime.IsZero())

	_, err = s.GetAPIKeyByHash(ctx, []byte("no-such-hash"))
	require.ErrorIs(t, err, store.ErrNotFound)
	require.False(t, s.cache.keys.has("no-such-hash"), "a miss is not cached")
}
