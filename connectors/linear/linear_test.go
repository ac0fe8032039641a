package linear_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

type world struct {
	h    *apptest.Harness
	lin  *fakeLinear
	clk  *clock
	conn *hookmapv1.Connection
}

func start(t *testing.T) *world {
	t.Helper()
	clk := &clock{t: time.Now().UTC()}
	h := apptest.Start(t, apptest.WithConnectors(".."), apptest.WithAllowPrivate(), apptest.WithClock(clk.Now), apptest.WithoutScheduler())
	lin := newFakeLinear(t)
	conn, err := h.Connections.CreateConnection(h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "linear", Name: "acme",
		Parameters:  apptest.Struct(t, map[string]any{"baseUri": lin.srv.URL}),
		Credentials: apptest.Struct(t, map[string]any{"apiKey": lin.apiKey}),
	})
	require.NoError(t, err)
	return &world{h: h, lin: lin, clk: clk, conn: conn}
}

func (w *world) subscribe(t *testing.T, requestID string, params map[string]any) (*hookmapv1.Subscription, error) {
	t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	return w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: w.conn.GetId(), EventKey: "changes", RequestId: requestID, Parameters: apptest.Struct(t, params),
	})
}

func TestChangesAreSignedAndTimed(t *testing.T) {
	w := start(t)
	sub, err := w.subscribe(t, "", map[string]any{"teamId": "72b2a2dc-6f4f-4423-9d34-24b5bd10634a", "resourceTypes": []any{"Issue"}})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())
	hook := w.lin.hookFor(sub.GetWebhookUri())
	require.NotNil(t, hook)
	require.Equal(t, "72b2a2dc-6f4f-4423-9d34-24b5bd10634a", hook.TeamID)
	require.False(t, hook.AllPublicTeams)
	require.Equal(t, []string{"Issue"}, hook.ResourceTypes)
	require.Equal(t, "hookmap", hook.Label)
	require.Equal(t, hook.Secret, w.h.SubscriptionState(sub.GetId())["secret"])

	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "issues"})
	code, body := w.lin.deliver(hook, "create", "Issue", map[string]any{"id": "2174add1-f7c8-44e3-bbf3-2d60b5ea8bc9", "identifier": "LIN-1", "number": 1}, w.clk.Now())
	require.Equal(t, http.StatusOK, code, body)
	ev := stream.Next(1)[0]
	require.Equal(t, "Issue.create", ev.GetType())
	require.Equal(t, "LIN-1", ev.GetRecord().GetStructValue().AsMap()["data"].(map[string]any)["identifier"])

	// Sent 30 s ago (a slow network) passes; two minutes ago (a replay) does not, whatever
	// its signature; nor does a delivery from the future.
	code, _ = w.lin.deliver(hook, "update", "Issue", map[string]any{"id": "x"}, w.clk.Now().Add(-30*time.Second))
	require.Equal(t, http.StatusOK, code)
	code, _ = w.lin.deliver(hook, "update", "Issue", map[string]any{"id": "x"}, w.clk.Now().Add(-2*time.Minute))
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = w.lin.deliver(hook, "update", "Issue", map[string]any{"id": "x"}, w.clk.Now().Add(2*time.Minute))
	require.Equal(t, http.StatusUnauthorized, code)
	forged := *hook
	forged.Secret = "lin_wh_guess"
	code, _ = w.lin.deliver(&forged, "update", "Issue", map[string]any{"id": "x"}, w.clk.Now())
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, "Issue.update", stream.Next(1)[0].GetType())
	stream.None(50 * time.Millisecond)

	_, err = w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Nil(t, w.lin.hookFor(sub.GetWebhookUri()))
}

// Linear creates the webhook but its answer is lost: the retry finds it by URL, on the
// second page of the workspace's webhooks, and creates no second one.
func TestRetriedCreateFindsTheWebhook(t *testing.T) {
	w := start(t)
	for i := range 150 {
		w.lin.add(fmt.Sprintf("00000000-0000-4000-8000-%012d", i), fmt.Sprintf("https://elsewhere.example/%d", i))
	}
	w.lin.set(func() { w.lin.loseNext = true })
	_, err := w.subscribe(t, "req-1", nil)
	require.Error(t, err)
	sub, err := w.subscribe(t, "req-1", nil)
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())
	require.Equal(t, 1, w.lin.count("WebhookCreate"))
	hook := w.lin.hookFor(sub.GetWebhookUri())
	require.Equal(t, hook.ID, w.h.SubscriptionState(sub.GetId())["webhookId"])

	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})
	code, body := w.lin.deliver(hook, "create", "Comment", map[string]any{"id": "c1", "body": "hi"}, w.clk.Now())
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "Comment.create", stream.Next(1)[0].GetType())

	// Reconcile reads both pages; the 150 others are FOREIGN.
	res, err := w.h.Subscriptions.ReconcileWebhooks(w.h.Ctx(), &hookmapv1.ReconcileWebhooksRequest{
		ConnectionId: w.conn.GetId(), EventKey: "changes", Mode: hookmapv1.ReconcileMode_RECONCILE_MODE_DRY_RUN,
	})
	require.NoError(t, err)
	require.Len(t, res.GetWebhooks(), 151)

	// Past 200 webhooks the look-up would be truncated: subscribe refuses to guess.
	for i := 150; i < 200; i++ {
		w.lin.add(fmt.Sprintf("00000000-0000-4000-8000-%012d", i), fmt.Sprintf("https://elsewhere.example/%d", i))
	}
	_, err = w.subscribe(t, "", nil)
	apptest.RequireCode(t, err, codes.FailedPrecondition, "more than 200 webhooks")
}

func TestBadKeyIsRefused(t *testing.T) {
	w := start(t)
	w.lin.set(func() { w.lin.apiKey = "rotated" })
	_, err := w.subscribe(t, "", nil)
	apptest.RequireCode(t, err, codes.FailedPrecondition, "Authentication required")
}
