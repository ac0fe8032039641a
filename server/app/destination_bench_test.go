package app_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

// BenchmarkDestination measures a destination end to end: each iteration commits 100
// events through the receiver (spread over the given number of subscriptions) and waits
// until a loopback endpoint answering 204 has acknowledged them all. With one
// subscription the events go one after the other (ordering); with several, up to 8
// subscriptions are sent to at once. Each event costs an HTTP round trip and a stored
// acknowledgement.
//
//	go test ./server/app -run '^$' -bench BenchmarkDestination -benchtime 20x
func BenchmarkDestination(b *testing.B) {
	for _, subs := range []int{1, 10} {
		b.Run(fmt.Sprintf("subscriptions=%d", subs), func(b *testing.B) {
			w := startDestinations(b, nil)
			all := []*hookmapv1.Subscription{w.sub}
			for i := 1; i < subs; i++ {
				s, err := w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
					ConnectionId: w.sub.GetConnectionId(), EventKey: "echo",
					Parameters: apptest.Struct(b, map[string]any{"topic": fmt.Sprintf("t%d", i)}),
				})
				require.NoError(b, err)
				all = append(all, s)
			}
			w.create(b, &hookmapv1.Destination{Id: "bench", WebhookId: "partner"})
			const perIteration = 100
			sent := 0
			start := time.Now()
			for b.Loop() {
				for i, s := range all {
					n := perIteration / subs
					if i < perIteration%subs {
						n++
					}
					ns := make([]int, n)
					for j := range ns {
						ns[j] = sent + j
					}
					w.post(b, s, ns...)
					sent += n
				}
				w.ep.WaitFor(b, sent)
			}
			b.ReportMetric(float64(sent)/time.Since(start).Seconds(), "events/s")
		})
	}
}
