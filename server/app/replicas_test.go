package app_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/app"
	"github.com/hookmap/hookmap/server/apptest"
	"github.com/hookmap/hookmap/server/store/postgres/pgtest"
)

// replicas starts n hookmap processes (in-process) on one Postgres database with one
// secret key, as behind a load balancer, with opts.
func replicas(t *testing.T, n int, opts ...apptest.Option) []*apptest.Harness {
	url := pgtest.Schema(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	var hs []*apptest.Harness
	for range n {
		hs = append(hs, apptest.Start(t, append([]apptest.Option{apptest.WithConnectors("../../connectors", "testdata/connectors"),
			apptest.WithStore(url), apptest.WithSecretKey(hex.EncodeToString(key))}, opts...)...))
	}
	return hs
}

// Two replicas behave as one hookmap: a subscription created through one is served by
// the other, a webhook received by one reaches a stream on the other at once (pushed, not
// polled: the fallback poll is far longer than the wait), and a consumer's newer stream
// on one replica ends its older stream on the other with ABORTED.
func TestReplicasShareOnePostgres(t *testing.T) {
	hs := replicas(t, 2)
	a, b := hs[0], hs[1]
	_, sub := setup(t, a) // created through a

	got, err := b.Subscriptions.GetSubscription(b.Ctx(), &hookmapv1.GetSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, got.GetStatus())

	older := a.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "billing"})
	path := strings.TrimPrefix(sub.GetWebhookUri(), a.BaseURL)
	r := b.PostJSON(b.Hook(path), `{"items": [{"n": 1, "id": "d-1"}, {"n": 2}]}`) // received by b
	require.Equal(t, 200, r.Status, string(r.Body))
	evs := older.Next(2) // streamed by a
	require.Equal(t, "orders.item", evs[0].GetType())
	require.Less(t, evs[0].GetSeq(), evs[1].GetSeq())

	// A re-delivery to the other replica is a duplicate.
	r = a.PostJSON(a.Hook(path), `{"items": [{"n": 1, "id": "d-1"}]}`)
	require.Equal(t, 200, r.Status, string(r.Body))
	require.Contains(t, string(r.Body), `"received":0`)

	// The consumer connects to b: a's stream ends, b's resumes after the acked cursor.
	_, err = b.Events.AckEvents(b.Ctx(), &hookmapv1.AckEventsRequest{Consumer: "billing", Seq: evs[0].GetSeq()})
	require.NoError(t, err)
	newer := b.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "billing"})
	require.Equal(t, codes.Aborted, status.Code(older.Err()))
	require.Equal(t, evs[1].GetSeq(), newer.Next(1)[0].GetSeq())
	r = a.PostJSON(a.Hook(path), `{"items": [{"n": 3}]}`)
	require.Equal(t, 200, r.Status, string(r.Body))
	require.Equal(t, "orders.item", newer.Next(1)[0].GetType())
}

// With Postgres, a replica without --secret-key refuses to start: a key file per replica
// would leave each unable to read the secrets the others sealed.
func TestPostgresNeedsSecretKey(t *testing.T) {
	cfg := app.Defaults()
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Store = "postgres://hookmap@127.0.0.1:1/hookmap"
	_, err := app.Start(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var se *app.StartError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "--secret-key", se.Flag)
	require.Contains(t, err.Error(), "Postgres")
	require.NotContains(t, err.Error(), "\n", "one line")
}

// Two replicas whose methods of one connection need a new token at once renew it once:
// the other waits for the first one's result instead of spending the refresh token too
// (the app rotates refresh tokens: a second use would be refused, and the connection
// wrongly disconnected).
func TestReplicasRenewAConnectionOnce(t *testing.T) {
	hs := replicas(t, 2, apptest.WithAllowPrivate(), apptest.WithoutScheduler())
	a, b := hs[0], hs[1]
	oa := newOAuthApp(t, time.Now)
	a.SetConnectorParameters("oauthapp", map[string]any{"clientId": oa.clientID, "clientSecret": oa.clientSecret})
	tokens := oa.tokens(t)
	conn, err := a.Connections.CreateConnection(a.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "oauthapp", Name: "shared", Parameters: apptest.Struct(t, map[string]any{"baseUri": oa.URL()}),
		Credentials: apptest.Struct(t, map[string]any{"accessToken": tokens["access_token"], "refreshToken": tokens["refresh_token"], "expiresIn": 3600}),
	})
	require.NoError(t, err)
	subs := map[*apptest.Harness]*hookmapv1.Subscription{}
	for _, h := range hs {
		sub, err := h.Subscriptions.CreateSubscription(h.Ctx(), &hookmapv1.CreateSubscriptionRequest{ConnectionId: conn.GetId(), EventKey: "hook"})
		require.NoError(t, err)
		subs[h] = sub
	}
	stream := a.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "ops", Filter: &hookmapv1.EventFilter{EventKeys: []string{"connection"}}})

	oa.revokeAccess()
	arrived, release := oa.hold()
	errs := make(chan error, 2)
	for _, h := range hs {
		go func() {
			_, err := h.Subscriptions.RefreshSubscription(h.Ctx(), &hookmapv1.RefreshSubscriptionRequest{Id: subs[h].GetId()})
			errs <- err
		}()
	}
	<-arrived // one replica's token request is at the app, held
	// ... and the other replica waits for it, holding no token request of its own.
	require.Eventually(t, func() bool {
		return metricOf(t, a, "hookmap_credential_renewals_waiting") == 1 && metricOf(t, b, "hookmap_credential_renewals_waiting") == 1
	}, 10*time.Second, 5*time.Millisecond)
	release()
	for range hs {
		require.NoError(t, <-errs)
	}
	require.Equal(t, 1, oa.grantCount("refresh_token"))
	got, err := b.Connections.GetConnection(b.Ctx(), &hookmapv1.GetConnectionRequest{Id: conn.GetId()})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.ConnectionStatus_CONNECTION_STATUS_CONNECTED, got.GetStatus(), got.GetLastError())

	// A revoked grant disconnects it once, and the event reaches a stream on the other replica.
	oa.revokeGrant()
	_, err = b.Subscriptions.RefreshSubscription(b.Ctx(), &hookmapv1.RefreshSubscriptionRequest{Id: subs[b].GetId()})
	require.Error(t, err)
	ev := stream.Next(1)[0]
	require.Equal(t, "connection.disconnected", ev.GetType())
	stream.None(100 * time.Millisecond)
}

// Replicas share the fetches: notifications received by any of them are fetched once each,
// one at a time per subscription across the replicas (the cursor each run reads is the one
// the previous run stored), and every payload is streamed once, in order.
func TestReplicasFetchOnceInOrder(t *testing.T) {
	hs := replicas(t, 3, apptest.WithAllowPrivate(), apptest.WithFetchInterval(20*time.Millisecond))
	fa := newFakeFetchApp(t)
	conn, err := hs[0].Connections.CreateConnection(hs[0].Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "fetchapp", Name: "acme",
		Parameters:  apptest.Struct(t, map[string]any{"baseUri": fa.srv.URL}),
		Credentials: apptest.Struct(t, map[string]any{"apiKey": fa.apiKey}),
	})
	require.NoError(t, err)
	sub, err := hs[0].Subscriptions.CreateSubscription(hs[0].Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: "changes", Parameters: apptest.Struct(t, map[string]any{"project": "p1"}),
	})
	require.NoError(t, err)
	stream := hs[1].OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})
	const n = 9
	for i := range n {
		fa.change("created", 1)
		h := hs[i%len(hs)]
		path := strings.TrimPrefix(sub.GetWebhookUri(), hs[0].BaseURL)
		mirror := &hookmapv1.Subscription{WebhookUri: h.Hook(path)}
		fa.mu.Lock()
		for _, k := range fa.hooks {
			k.url = mirror.GetWebhookUri() // the app posts to this replica
		}
		fa.mu.Unlock()
		require.Equal(t, 200, fa.notify(h, mirror, "").Status)
	}
	evs := stream.Next(n)
	for i, e := range evs {
		require.Equal(t, float64(i+1), seqOf(e), "each payload once, in order")
	}
	stream.None(100 * time.Millisecond)
	// Each run read from the cursor a previous one stored: never backwards.
	last := 0
	for _, c := range fa.payloadCalls() {
		var cursor int
		_, err := fmt.Sscanf(c[strings.Index(c, "cursor=")+len("cursor="):], "%d", &cursor)
		require.NoError(t, err, c)
		require.GreaterOrEqual(t, cursor, last, "cursors never move backwards: %v", fa.payloadCalls())
		last = cursor
	}
}
