package app_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/app"
	"github.com/hookmap/hookmap/server/apptest"
	"github.com/hookmap/hookmap/server/store/postgres/pgtest"
)

// replicas starts n hookmap processes (in-process) on one Postgres database with one
// secret key, as behind a load balancer.
func replicas(t *testing.T, n int) []*apptest.Harness {
	url := pgtest.Schema(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	var hs []*apptest.Harness
	for range n {
		hs = append(hs, apptest.Start(t, apptest.WithConnectors("../../connectors", "testdata/connectors"),
			apptest.WithStore(url), apptest.WithSecretKey(hex.EncodeToString(key))))
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
