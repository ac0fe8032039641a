package hookmap

import (
	"context"
	"math"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
)

// Backoff is a jittered exponential backoff: the n-th delay (from 0) is
// min(Max, Initial×Multiplier^n), moved at random by up to ±Jitter of itself.
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64 // below 1 counts as 1
	Jitter     float64 // 0 to 1
}

// or returns b, or def when b is the zero Backoff.
func (b Backoff) or(def Backoff) Backoff {
	if b == (Backoff{}) {
		return def
	}
	return b
}

// Delay returns the n-th delay (n from 0).
func (b Backoff) Delay(n int) time.Duration {
	mult := max(b.Multiplier, 1)
	d := float64(b.Initial) * math.Pow(mult, float64(n))
	if b.Max > 0 && d > float64(b.Max) {
		d = float64(b.Max)
	}
	if j := min(max(b.Jitter, 0), 1); j > 0 {
		d *= 1 + j*(2*rand.Float64()-1)
	}
	return time.Duration(d)
}

// sleep waits the n-th delay; it returns false when done closes first.
func (b Backoff) sleep(done <-chan struct{}, n int) bool {
	t := time.NewTimer(b.Delay(n))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

// RetryPolicy says how unary calls that are safe to retry are retried when they fail
// with UNAVAILABLE (the server restarting, a connection refused or lost).
//
// Safe to retry are the calls that read (Get…, List…), the ones that set a value whatever
// it was before (AckEvents, SetConnectorParameters, UpdateConnection, UpdateWebhook,
// ValidateConnectors, ReloadConnectors), a CreateSubscription with a request_id, and a
// ReconcileWebhooks dry run without repair. Any other call (a create without an
// idempotency key, a delete, a trigger, a replay) is never retried by the client: it
// may have run on the server before the connection failed.
type RetryPolicy struct {
	// MaxAttempts counts the first call; 0 or 1 turns retries off.
	MaxAttempts int
	// Backoff is the delay before each retry (zero: DefaultRetryPolicy's).
	Backoff Backoff
}

// DefaultRetryPolicy is the policy of a client dialed without WithRetry: up to 5
// attempts over about 1.5 s, which covers a server restart.
var DefaultRetryPolicy = RetryPolicy{
	MaxAttempts: 5,
	Backoff:     Backoff{Initial: 100 * time.Millisecond, Max: 2 * time.Second, Multiplier: 2, Jitter: 0.2},
}

// retriable holds, per full method name, whether a request is safe to retry.
var retriable = map[string]func(req any) bool{
	hookmapv1.ConnectorService_ListConnectors_FullMethodName:         always,
	hookmapv1.ConnectorService_GetConnector_FullMethodName:           always,
	hookmapv1.ConnectorService_ValidateConnectors_FullMethodName:     always,
	hookmapv1.ConnectorService_ReloadConnectors_FullMethodName:       always,
	hookmapv1.ConnectorService_SetConnectorParameters_FullMethodName: always,
	hookmapv1.ConnectorService_ListGlobalWebhooks_FullMethodName:     always,

	hookmapv1.ConnectionService_GetConnection_FullMethodName:    always,
	hookmapv1.ConnectionService_ListConnections_FullMethodName:  always,
	hookmapv1.ConnectionService_UpdateConnection_FullMethodName: always,
	// A new URL for an existing connection only: for a new one, a retry would create another.
	hookmapv1.ConnectionService_AuthorizeConnection_FullMethodName: func(req any) bool {
		r, ok := req.(*hookmapv1.AuthorizeConnectionRequest)
		return ok && r.GetConnectionId() != ""
	},

	hookmapv1.SubscriptionService_GetSubscription_FullMethodName:   always,
	hookmapv1.SubscriptionService_ListSubscriptions_FullMethodName: always,
	hookmapv1.SubscriptionService_CreateSubscription_FullMethodName: func(req any) bool {
		r, ok := req.(*hookmapv1.CreateSubscriptionRequest)
		return ok && r.GetRequestId() != ""
	},
	hookmapv1.SubscriptionService_ReconcileWebhooks_FullMethodName: func(req any) bool {
		r, ok := req.(*hookmapv1.ReconcileWebhooksRequest)
		return ok && r.GetMode() == hookmapv1.ReconcileMode_RECONCILE_MODE_DRY_RUN && !r.GetRepair()
	},

	hookmapv1.EventService_AckEvents_FullMethodName:      always,
	hookmapv1.EventService_ListEvents_FullMethodName:     always,
	hookmapv1.EventService_ListDeliveries_FullMethodName: always,
	hookmapv1.EventService_GetDelivery_FullMethodName:    always,

	hookmapv1.DestinationService_GetDestination_FullMethodName:        always,
	hookmapv1.DestinationService_ListDestinations_FullMethodName:      always,
	hookmapv1.DestinationService_ListDestinationEvents_FullMethodName: always,

	hookmapv1.WebhookService_GetWebhook_FullMethodName:      always,
	hookmapv1.WebhookService_ListWebhooks_FullMethodName:    always,
	hookmapv1.WebhookService_UpdateWebhook_FullMethodName:   always,
	hookmapv1.WebhookService_ListInvocations_FullMethodName: always,
	hookmapv1.WebhookService_GetInvocation_FullMethodName:   always,

	hookmapv1.AdminService_ListWorkspaces_FullMethodName: always,
}

func always(any) bool { return true }

// noRetry is a call option that turns the retry policy off for one call (Consume's acks,
// which it retries itself).
type noRetry struct{ grpc.EmptyCallOption }

// unaryInterceptor retries a call that is safe to retry while it fails with UNAVAILABLE,
// within the policy's attempts and the call's deadline.
func (p RetryPolicy) unaryInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err == nil || p.MaxAttempts <= 1 || status.Code(err) != codes.Unavailable || !retriableCall(method, req, opts) {
		return err
	}
	for attempt := 1; attempt < p.MaxAttempts && status.Code(err) == codes.Unavailable; attempt++ {
		d := p.Backoff.Delay(attempt - 1)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
			return err
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		err = invoker(ctx, method, req, reply, cc, opts...)
	}
	return err
}

func retriableCall(method string, req any, opts []grpc.CallOption) bool {
	for _, o := range opts {
		if _, ok := o.(noRetry); ok {
			return false
		}
	}
	safe, ok := retriable[method]
	return ok && safe(req)
}
