package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/hookmap/hookmap/clients/go/hookmap"
	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

// BenchmarkConsume measures events per second through Consume, from a store holding b.N
// events to the last one handled and acked, with acks batched (the default: 100 events
// or 1 s) and with one ack per event. The handler does nothing: this is the client's and
// the stream's cost.
func BenchmarkConsume(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts []hookmap.ConsumeOption
	}{
		{"acks=batched", nil},
		{"acks=each-event", []hookmap.ConsumeOption{hookmap.WithAckBatch(1, time.Second)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := apptest.Start(b, apptest.WithConnectors("../../../../connectors/example-webhook"))
			var acks atomic.Int64
			countAcks := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				if method == hookmapv1.EventService_AckEvents_FullMethodName {
					acks.Add(1)
				}
				return invoker(ctx, method, req, reply, cc, opts...)
			}
			c, err := hookmap.Dial(b.Context(), h.Config.GRPCAddr, hookmap.WithInsecure(), hookmap.WithLogger(nil),
				hookmap.WithDialOptions(grpc.WithChainUnaryInterceptor(countAcks)))
			require.NoError(b, err)
			defer c.Close()
			postEvents(b, h, c, b.N)
			acks.Store(0)

			ctx, cancel := context.WithCancel(b.Context())
			defer cancel()
			var handled atomic.Int64
			b.ResetTimer()
			err = c.Consume(ctx, "bench", func(context.Context, *hookmap.Event) error {
				if handled.Add(1) == int64(b.N) {
					cancel()
				}
				return nil
			}, bc.opts...)
			b.StopTimer()
			require.ErrorIs(b, err, context.Canceled)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(acks.Load())/float64(b.N), "acks/event")
		})
	}
}

// postEvents stores n events of about 100 bytes each through the receiver.
func postEvents(b *testing.B, h *apptest.Harness, c *hookmap.Client, n int) {
	b.Helper()
	ctx := b.Context()
	conn, err := c.Connections.CreateConnection(ctx, &hookmapv1.CreateConnectionRequest{ConnectorKey: "example-webhook", Name: "bench"})
	require.NoError(b, err)
	params, err := structpb.NewStruct(map[string]any{"channel": "bench"})
	require.NoError(b, err)
	sub, err := c.Subscriptions.CreateSubscription(ctx, &hookmapv1.CreateSubscriptionRequest{ConnectionId: conn.GetId(), EventKey: "message", Parameters: params})
	require.NoError(b, err)
	const perRequest = 500
	for first := 0; first < n; first += perRequest {
		msgs := make([]string, min(perRequest, n-first))
		for i := range msgs {
			msgs[i] = fmt.Sprintf(`{"id":"m%d","order_id":%d,"text":"an order was placed","amount":1250}`, first+i, 1<<60+first+i)
		}
		r := h.PostJSON(sub.GetWebhookUri(), `{"messages":[`+strings.Join(msgs, ",")+`]}`)
		require.Equal(b, http.StatusOK, r.Status, string(r.Body))
	}
}
