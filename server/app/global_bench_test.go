package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/core"
	"github.com/hookmap/hookmap/server/secrets"
)

// BenchmarkGlobalRouting routes one signed delivery (verify, global handle, index lookup
// of the selector, the matched subscription's handle, one commit) with 1,000 and 100,000
// subscriptions of the same connector and global webhook in the store, each with its own
// selector. Routing is an index lookup, so both cost the same:
//
// "lookup" is the index lookup alone; "deliver" the whole delivery, dominated by the
// commit's fsync; "deliver-batch-100" one delivery of 100 events for the same team.
//
//	go test ./server/app -run '^$' -bench BenchmarkGlobalRouting -benchtime 2000x
func BenchmarkGlobalRouting(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("subscriptions=%d", n), func(b *testing.B) {
			w := startChat(b)
			target := w.connect(b, "T0", "message", nil)
			seedSubscriptions(b, w, target, n-1)
			c := w.h.App.Core()
			gw, err := c.EnsureGlobalWebhook(context.Background(), "default", "chatapp", "events")
			require.NoError(b, err)

			b.Run("lookup", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					subs, err := c.Store.MatchSubscriptions(context.Background(), "default", "chatapp", "events", "T0")
					if err != nil || len(subs) != 1 {
						b.Fatalf("match: %v %d", err, len(subs))
					}
				}
			})
			b.Run("deliver", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					i++
					body, _ := json.Marshal(map[string]any{"type": "event_callback", "events": []any{msg(fmt.Sprintf("b%d", i), "T0", "hi")}})
					in := &core.Incoming{
						Method: http.MethodPost, Header: http.Header{"Content-Type": {"application/json"}, "X-Chat-Signature": {chatSign(string(body))}},
						Body: body, Received: time.Now(),
					}
					res := c.HandleGlobalDelivery(context.Background(), gw, in, nil, nil)
					if res.Reply.Status != http.StatusOK || res.Delivery.EventCount != 1 {
						b.Fatalf("routing failed: %d %s", res.Reply.Status, res.Reply.Body)
					}
				}
			})
			// A batch of 100 events for one team (HubSpot and Slack send batches): the
			// subscription's variables are made once per delivery, not once per event.
			b.Run("deliver-batch-100", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					events := make([]any, 100)
					for j := range events {
						i++
						events[j] = msg(fmt.Sprintf("c%d", i), "T0", "hi")
					}
					body, _ := json.Marshal(map[string]any{"type": "event_callback", "events": events})
					in := &core.Incoming{
						Method: http.MethodPost, Header: http.Header{"Content-Type": {"application/json"}, "X-Chat-Signature": {chatSign(string(body))}},
						Body: body, Received: time.Now(),
					}
					res := c.HandleGlobalDelivery(context.Background(), gw, in, nil, nil)
					if res.Reply.Status != http.StatusOK || res.Delivery.EventCount != 100 {
						b.Fatalf("routing failed: %d %s", res.Reply.Status, res.Reply.Body)
					}
				}
			})
		})
	}
}

// seedSubscriptions stores n more ACTIVE subscriptions like target, each with its own
// selector, straight into the store from 64 goroutines (group commit batches them).
func seedSubscriptions(b *testing.B, w *chatWorld, target *hookmapv1.Subscription, n int) {
	st := w.h.App.Core().Store
	proto, err := st.GetSubscription(context.Background(), "default", target.GetId())
	require.NoError(b, err)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	per := (n + 63) / 64
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g * per; i < min(n, (g+1)*per); i++ {
				s := *proto
				s.ID = secrets.RandomToken(16)
				s.Selector = fmt.Sprintf("T%d", i+1)
				s.CreateTime, s.UpdateTime = time.Now(), time.Now()
				if err := st.CreateSubscription(context.Background(), &s); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	require.NoError(b, <-errs)
}
