package core

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/internal/corefixture"
	"github.com/hookmap/hookmap/server/store"
)

// benchCore is a core (storeCore) with the ingest comparison's connector
// (bench/connector/bench) loaded, and an ACTIVE subscription to its `webhook` event.
func benchCore(tb testing.TB) (*Core, *store.Subscription) {
	tb.Helper()
	ctx := context.Background()
	c := storeCore(tb, corefixture.BenchConnectors)
	conn, err := c.CreateConnection(ctx, testWorkspace, ConnectionInput{ConnectorKey: "bench"})
	require.NoError(tb, err)
	sub, err := c.CreateSubscription(ctx, testWorkspace, SubscriptionInput{ConnectionID: conn.ID, EventKey: "webhook"})
	require.NoError(tb, err)
	require.Equal(tb, store.StatusActive, sub.Status)
	sub, err = c.Store.LookupSubscription(ctx, sub.ID) // as the receiver reads it
	require.NoError(tb, err)
	return c, sub
}

// benchIncoming is the request the receiver makes of a webhook POSTed to sub's URL.
func benchIncoming(c *Core, sub *store.Subscription, body []byte) *Incoming {
	return &Incoming{
		Method: http.MethodPost, Path: "/hooks/" + sub.ID,
		Header: http.Header{
			"Content-Type":   {"application/json"},
			"Content-Length": {"1024"},
			"User-Agent":     {"wrk"},
			"Host":           {"127.0.0.1:8080"},
		},
		Body: body, URL: c.WebhookURI(sub.ID), Received: time.Now().UTC(),
	}
}

// BenchmarkHandleSubscriptionDelivery runs HandleSubscriptionDelivery on a webhook of the
// ingest comparison (its ~1 KiB JSON body, the bench connector's `webhook` event: one CEL
// and one JMESPath expression).
//
//   - handler: the store is SQLite but its CommitDelivery returns at once (corefixture.InstantCommits),
//     so the figures are the handler's own CPU and allocations on the caller's goroutine,
//     with no disk sync in them: what this benchmark is for.
//   - sqlite: the real commit, from many parallel callers (b.RunParallel, 32 per core) so
//     that group commit amortizes the fsync; its figures include the store's writer and
//     depend on the disk.
func BenchmarkHandleSubscriptionDelivery(b *testing.B) {
	body := corefixture.BenchBody()
	b.Run("handler", func(b *testing.B) {
		c, sub := benchCore(b)
		c.Store = &corefixture.InstantCommits{Store: c.Store}
		ctx := context.Background()
		in := benchIncoming(c, sub, body)
		if res := c.HandleSubscriptionDelivery(ctx, sub, in, nil, nil); res.Delivery.Outcome != store.OutcomeOK {
			b.Fatalf("outcome %s: %s", res.Delivery.Outcome, res.Delivery.Error)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			res := c.HandleSubscriptionDelivery(ctx, sub, in, nil, nil)
			if res.Delivery.Outcome != store.OutcomeOK {
				b.Fatalf("outcome %s: %s", res.Delivery.Outcome, res.Delivery.Error)
			}
		}
	})
	b.Run("sqlite", func(b *testing.B) {
		c, sub := benchCore(b)
		ctx := context.Background()
		b.ReportAllocs()
		b.SetParallelism(32)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			in := benchIncoming(c, sub, body) // the handler does not change it
			for pb.Next() {
				res := c.HandleSubscriptionDelivery(ctx, sub, in, nil, nil)
				if res.Delivery.Outcome != store.OutcomeOK {
					b.Errorf("outcome %s: %s", res.Delivery.Outcome, res.Delivery.Error)
					return
				}
			}
		})
	})
}
