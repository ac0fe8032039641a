package hookmap

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
)

func TestBackoffDelays(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2}
	for n, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		require.Equal(t, want*time.Millisecond, b.Delay(n), "delay %d", n)
	}
	j := Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.5}
	seen := map[time.Duration]bool{}
	for range 50 {
		d := j.Delay(1)
		require.GreaterOrEqual(t, d, 100*time.Millisecond)
		require.LessOrEqual(t, d, 300*time.Millisecond)
		seen[d] = true
	}
	require.Greater(t, len(seen), 1, "jitter spreads the delays")
}

// TestRetryOnlySafeCalls: UNAVAILABLE is retried for calls that are safe to repeat, never
// for the others, and no other code is retried.
func TestRetryOnlySafeCalls(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 4, Backoff: Backoff{Initial: time.Millisecond, Max: time.Millisecond}}
	unavailable := status.Error(codes.Unavailable, "connection refused")
	tests := []struct {
		name     string
		method   string
		req      any
		errs     []error // what each attempt returns; the last one repeats
		opts     []grpc.CallOption
		attempts int
		code     codes.Code
	}{
		{"a read recovers", hookmapv1.ConnectionService_ListConnections_FullMethodName, &hookmapv1.ListConnectionsRequest{},
			[]error{unavailable, unavailable, nil}, nil, 3, codes.OK},
		{"a read gives up after MaxAttempts", hookmapv1.EventService_ListEvents_FullMethodName, &hookmapv1.ListEventsRequest{},
			[]error{unavailable}, nil, 4, codes.Unavailable},
		{"an ack is safe", hookmapv1.EventService_AckEvents_FullMethodName, &hookmapv1.AckEventsRequest{},
			[]error{unavailable, nil}, nil, 2, codes.OK},
		{"a create is never repeated", hookmapv1.ConnectionService_CreateConnection_FullMethodName, &hookmapv1.CreateConnectionRequest{},
			[]error{unavailable, nil}, nil, 1, codes.Unavailable},
		{"a trigger is never repeated", hookmapv1.WebhookService_TriggerWebhook_FullMethodName, &hookmapv1.TriggerWebhookRequest{},
			[]error{unavailable, nil}, nil, 1, codes.Unavailable},
		{"a delete is never repeated", hookmapv1.SubscriptionService_DeleteSubscription_FullMethodName, &hookmapv1.DeleteSubscriptionRequest{},
			[]error{unavailable, nil}, nil, 1, codes.Unavailable},
		{"a subscription with a request id is", hookmapv1.SubscriptionService_CreateSubscription_FullMethodName,
			&hookmapv1.CreateSubscriptionRequest{RequestId: "r1"}, []error{unavailable, nil}, nil, 2, codes.OK},
		{"a subscription without one is not", hookmapv1.SubscriptionService_CreateSubscription_FullMethodName,
			&hookmapv1.CreateSubscriptionRequest{}, []error{unavailable, nil}, nil, 1, codes.Unavailable},
		{"an authorization URL of an existing connection is", hookmapv1.ConnectionService_AuthorizeConnection_FullMethodName,
			&hookmapv1.AuthorizeConnectionRequest{ConnectionId: "conn_1"}, []error{unavailable, nil}, nil, 2, codes.OK},
		{"one that creates a connection is not", hookmapv1.ConnectionService_AuthorizeConnection_FullMethodName,
			&hookmapv1.AuthorizeConnectionRequest{ConnectorKey: "hubspot"}, []error{unavailable, nil}, nil, 1, codes.Unavailable},
		{"a reconcile dry run is", hookmapv1.SubscriptionService_ReconcileWebhooks_FullMethodName,
			&hookmapv1.ReconcileWebhooksRequest{Mode: hookmapv1.ReconcileMode_RECONCILE_MODE_DRY_RUN}, []error{unavailable, nil}, nil, 2, codes.OK},
		{"a reconcile that deletes is not", hookmapv1.SubscriptionService_ReconcileWebhooks_FullMethodName,
			&hookmapv1.ReconcileWebhooksRequest{Mode: hookmapv1.ReconcileMode_RECONCILE_MODE_DELETE_ORPHANS}, []error{unavailable, nil}, nil, 1, codes.Unavailable},
		{"other codes are final", hookmapv1.ConnectionService_GetConnection_FullMethodName, &hookmapv1.GetConnectionRequest{},
			[]error{status.Error(codes.NotFound, "no"), nil}, nil, 1, codes.NotFound},
		{"noRetry turns it off", hookmapv1.EventService_AckEvents_FullMethodName, &hookmapv1.AckEventsRequest{},
			[]error{unavailable, nil}, []grpc.CallOption{noRetry{}}, 1, codes.Unavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			attempts := 0
			invoker := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, opts ...grpc.CallOption) error {
				err := tc.errs[min(attempts, len(tc.errs)-1)]
				attempts++
				return err
			}
			err := p.unaryInterceptor(t.Context(), tc.method, tc.req, nil, nil, invoker, tc.opts...)
			require.Equal(t, tc.code, status.Code(err))
			require.Equal(t, tc.attempts, attempts)
		})
	}
}

// TestRetryStopsAtTheDeadline: no retry is started that the call's deadline cannot wait for.
func TestRetryStopsAtTheDeadline(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 10, Backoff: Backoff{Initial: time.Hour}}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	attempts := 0
	err := p.unaryInterceptor(ctx, hookmapv1.ConnectionService_ListConnections_FullMethodName, &hookmapv1.ListConnectionsRequest{}, nil, nil,
		func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
			attempts++
			return status.Error(codes.Unavailable, "down")
		})
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Equal(t, 1, attempts)
}

func TestRouterKeepsASubscriptionOnOneWorker(t *testing.T) {
	rt := newRouter(3)
	a1, b1 := rt.pick("a"), rt.pick("b")
	require.NotEqual(t, a1, b1, "an idle worker is preferred")
	require.Equal(t, a1, rt.pick("a"), "a's events stay on a's worker while it has some")
	c1 := rt.pick("c")
	require.NotContains(t, []int{a1, b1}, c1)
	rt.done("b")
	// b has none left: its next event goes to the least loaded worker, b's old one.
	require.Equal(t, b1, rt.pick("b"))
	rt.done("a")
	rt.done("a")
	require.Empty(t, rt.bySub["a"])
}
