package app_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
	"github.com/hookmap/hookmap/server/store"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type lifecycle struct {
	h    *apptest.Harness
	app  *fakeApp
	clk  *clock
	conn *hookmapv1.Connection
}

func startLifecycle(t *testing.T, opts ...apptest.Option) *lifecycle {
	clk := newClock()
	opts = append([]apptest.Option{
		apptest.WithConnectors("testdata/connectors"), apptest.WithAllowPrivate(),
		apptest.WithClock(clk.Now), apptest.WithoutScheduler(),
	}, opts...)
	h := apptest.Start(t, opts...)
	fa := newFakeApp(t, clk.Now)
	conn, err := h.Connections.CreateConnection(h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "fakehooks", Name: "acme",
		Parameters:  apptest.Struct(t, map[string]any{"baseUri": fa.srv.URL}),
		Credentials: apptest.Struct(t, map[string]any{"apiKey": fa.apiKey}),
	})
	require.NoError(t, err)
	return &lifecycle{h: h, app: fa, clk: clk, conn: conn}
}

func (l *lifecycle) subscribe(t *testing.T, requestID string) (*hookmapv1.Subscription, error) {
	return l.h.Subscriptions.CreateSubscription(l.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: l.conn.GetId(), EventKey: "item", RequestId: requestID,
		Parameters: apptest.Struct(t, map[string]any{"project": "p1"}),
	})
}

func (l *lifecycle) stored(t *testing.T, id string) *store.Subscription {
	s, err := l.h.App.Core().Store.GetSubscription(context.Background(), "default", id)
	require.NoError(t, err)
	return s
}

func TestSubscribeStoresStateAndUnsubscribes(t *testing.T) {
	l := startLifecycle(t)
	l.app.set(func() { l.app.validate = true })
	sub, err := l.subscribe(t, "")
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus())
	hooks := l.app.hookList()
	require.Len(t, hooks, 1)
	require.Equal(t, sub.GetWebhookUri(), hooks[0].URL)
	require.NotEmpty(t, hooks[0].Secret)
	var validated []string
	l.app.set(func() { validated = append(validated, l.app.validated...) })
	require.Equal(t, []string{sub.GetWebhookUri()}, validated, "the URL answered the app's validation during subscribe")

	st := l.stored(t, sub.GetId())
	require.Equal(t, hooks[0].ID, l.h.SubscriptionState(sub.GetId())["hookId"])
	require.Equal(t, time.UnixMilli(hooks[0].ExpiresAt).UTC(), st.NextRefreshTime.UTC())
	require.NotNil(t, sub.GetNextRefreshTime())

	// Deliveries become events.
	stream := l.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})
	r := l.h.PostJSON(sub.GetWebhookUri(), `{"events":[{"id":"e1","action":"created","item":{"id":7}}]}`)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	ev := stream.Next(1)[0]
	require.Equal(t, "item.created", ev.GetType())

	_, err = l.h.Subscriptions.DeleteSubscription(l.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Empty(t, l.app.hookList())
	require.Equal(t, 1, l.app.count("DELETE /projects/p1/hooks/"+hooks[0].ID))
}

func TestUnsubscribe404CountsAsGone(t *testing.T) {
	l := startLifecycle(t)
	sub, err := l.subscribe(t, "")
	require.NoError(t, err)
	l.app.set(func() { l.app.hooks = map[string]*fakeHook{} }) // deleted in the app by someone else
	_, err = l.h.Subscriptions.DeleteSubscription(l.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	_, err = l.h.Subscriptions.GetSubscription(l.h.Ctx(), &hookmapv1.GetSubscriptionRequest{Id: sub.GetId()})
	apptest.RequireCode(t, err, codes.NotFound, sub.GetId())
}

func TestUnsubscribeFailureKeepsDeletingThenRetries(t *testing.T) {
	l := startLifecycle(t)
	sub, err := l.subscribe(t, "")
	require.NoError(t, err)
	hookID := l.app.hookList()[0].ID
	l.app.set(func() { l.app.deleteSt[hookID] = 503 })
	_, err = l.h.Subscriptions.DeleteSubscription(l.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	apptest.RequireReason(t, err, codes.Unavailable, "APP_UNAVAILABLE", "delete refused")
	got, err := l.h.Subscriptions.GetSubscription(l.h.Ctx(), &hookmapv1.GetSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_DELETING, got.GetStatus())
	require.Contains(t, got.GetLastError(), "503")

	// The scheduler retries after the backoff; once the app accepts, it is gone.
	l.app.set(func() { delete(l.app.deleteSt, hookID) })
	l.clk.Advance(2 * time.Minute)
	n, err := l.h.App.Core().RunDueRefreshes(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = l.h.Subscriptions.GetSubscription(l.h.Ctx(), &hookmapv1.GetSubscriptionRequest{Id: sub.GetId()})
	apptest.RequireCode(t, err, codes.NotFound, "")
	require.Empty(t, l.app.hookList())

	// force deletes locally and reports the leftover.
	sub2, err := l.subscribe(t, "")
	require.NoError(t, err)
	hook2 := l.app.hookList()[0].ID
	l.app.set(func() { l.app.deleteSt[hook2] = 500 })
	resp, err := l.h.Subscriptions.DeleteSubscription(l.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub2.GetId(), Force: true})
	require.NoError(t, err)
	require.Contains(t, resp.GetLeftover(), "500")
	require.True(t, resp.GetWebhookMayRemain())
	require.Equal(t, sub2.GetWebhookUri(), resp.GetWebhookUri())
}

// A subscription whose state lacks what unsubscribe needs stays DELETING however often it
// is deleted; force removes it locally and says the app may still hold the hook, which a
// reconcile then finds as an orphan.
func TestForceDeletesAStuckSubscription(t *testing.T) {
	l := startLifecycle(t)
	sub, err := l.subscribe(t, "")
	require.NoError(t, err)
	st := l.stored(t, sub.GetId())
	st.State = nil // no state, e.g. written by a connector version that forgot hookId
	require.NoError(t, l.h.App.Core().Store.UpdateSubscription(context.Background(), st))

	for range 2 {
		_, err = l.h.Subscriptions.DeleteSubscription(l.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
		apptest.RequireCode(t, err, codes.FailedPrecondition, "no such key: hookId")
		require.Contains(t, err.Error(), "force")
		require.Equal(t, store.StatusDeleting, l.stored(t, sub.GetId()).Status)
	}

	resp, err := l.h.Subscriptions.DeleteSubscription(l.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId(), Force: true})
	require.NoError(t, err)
	require.True(t, resp.GetWebhookMayRemain())
	require.Equal(t, sub.GetWebhookUri(), resp.GetWebhookUri())
	require.Contains(t, resp.GetLeftover(), "no such key: hookId")
	require.Contains(t, resp.GetLeftover(), "the app may still hold the webhook for "+sub.GetWebhookUri())
	_, err = l.h.Subscriptions.GetSubscription(l.h.Ctx(), &hookmapv1.GetSubscriptionRequest{Id: sub.GetId()})
	apptest.RequireCode(t, err, codes.NotFound, sub.GetId())
	r := l.h.PostJSON(sub.GetWebhookUri(), `{"events":[]}`)
	require.Equal(t, http.StatusNotFound, r.Status)

	// The hook is still in the app: an orphan for reconcile to delete.
	require.Len(t, l.app.hookList(), 1)
	rec, err := l.h.Subscriptions.ReconcileWebhooks(l.h.Ctx(), &hookmapv1.ReconcileWebhooksRequest{
		ConnectionId: l.conn.GetId(), EventKey: "item", Mode: hookmapv1.ReconcileMode_RECONCILE_MODE_DELETE_ORPHANS,
		Parameters: apptest.Struct(t, map[string]any{"project": "p1"}),
	})
	require.NoError(t, err)
	require.EqualValues(t, 1, rec.GetDeleted())
	require.Empty(t, l.app.hookList())

	// When unsubscribe succeeds, force says nothing remains; a FAILED subscription (nothing
	// registered) is removed without a word either.
	ok, err := l.subscribe(t, "")
	require.NoError(t, err)
	resp, err = l.h.Subscriptions.DeleteSubscription(l.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: ok.GetId(), Force: true})
	require.NoError(t, err)
	require.False(t, resp.GetWebhookMayRemain())
	require.Empty(t, resp.GetLeftover())
	require.Empty(t, l.app.hookList())
	l.app.set(func() { l.app.createErr = &fakeErr{status: 422, body: `{"message":"no"}`} })
	_, err = l.subscribe(t, "")
	require.Error(t, err)
	list, err := l.h.Subscriptions.ListSubscriptions(l.h.Ctx(), &hookmapv1.ListSubscriptionsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetSubscriptions(), 1)
	resp, err = l.h.Subscriptions.DeleteSubscription(l.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: list.GetSubscriptions()[0].GetId(), Force: true})
	require.NoError(t, err)
	require.False(t, resp.GetWebhookMayRemain())
}

func TestSubscribeFailureIsFailedWithTheAppsAnswer(t *testing.T) {
	l := startLifecycle(t)
	l.app.set(func() { l.app.createErr = &fakeErr{status: 422, body: `{"message":"project p1 is archived"}`} })
	_, err := l.subscribe(t, "")
	st := apptest.RequireReason(t, err, codes.FailedPrecondition, "APP_REFUSED", "project p1 is archived")
	require.Contains(t, st.Message(), "422")
	list, err := l.h.Subscriptions.ListSubscriptions(l.h.Ctx(), &hookmapv1.ListSubscriptionsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetSubscriptions(), 1)
	failed := list.GetSubscriptions()[0]
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_FAILED, failed.GetStatus())
	require.Contains(t, failed.GetLastError(), "project p1 is archived")

	l.app.set(func() { l.app.createErr = &fakeErr{status: 503, body: `upstream down`} })
	_, err = l.subscribe(t, "")
	apptest.RequireReason(t, err, codes.Unavailable, "APP_UNAVAILABLE", "upstream down")

	// Wrong credentials: the app's 401 is a failed precondition, not INTERNAL.
	l.app.set(func() { l.app.apiKey = "rotated" })
	_, err = l.subscribe(t, "")
	apptest.RequireReason(t, err, codes.FailedPrecondition, "APP_REFUSED", "bad credentials")
}

func TestRetriedCreateWithRequestIDCreatesOneHook(t *testing.T) {
	l := startLifecycle(t)
	// The app stores the hook but answers 500: the first attempt fails after the insert.
	l.app.set(func() { l.app.createErr = &fakeErr{status: 500, body: "oops", stored: true} })
	_, err := l.subscribe(t, "req-42")
	apptest.RequireReason(t, err, codes.Unavailable, "APP_UNAVAILABLE", "oops")
	require.Len(t, l.app.hookList(), 1)

	sub, err := l.subscribe(t, "req-42")
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus())
	hooks := l.app.hookList()
	require.Len(t, hooks, 1, "look-up-then-insert found the hook of the first attempt")
	require.Equal(t, sub.GetWebhookUri(), hooks[0].URL)
	require.Equal(t, 1, l.app.count("POST /projects/p1/hooks"))
	require.Equal(t, hooks[0].ID, l.h.SubscriptionState(sub.GetId())["hookId"])

	again, err := l.subscribe(t, "req-42")
	require.NoError(t, err)
	require.Equal(t, sub.GetId(), again.GetId())
	require.Equal(t, 1, l.app.count("POST /projects/p1/hooks"), "an ACTIVE subscription is returned as is")

	_, err = l.h.Subscriptions.CreateSubscription(l.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: l.conn.GetId(), EventKey: "item", RequestId: "req-42",
		Parameters: apptest.Struct(t, map[string]any{"project": "other"}),
	})
	apptest.RequireCode(t, err, codes.AlreadyExists, "req-42")
}

func TestRefreshOnScheduleAndAfterRestart(t *testing.T) {
	l := startLifecycle(t)
	sub, err := l.subscribe(t, "")
	require.NoError(t, err)
	first := l.stored(t, sub.GetId()).NextRefreshTime

	// Not due yet.
	n, err := l.h.App.Core().RunDueRefreshes(context.Background())
	require.NoError(t, err)
	require.Zero(t, n)
	require.Zero(t, l.app.count("PATCH"))

	// Within the safety margin of expiry: refreshed, next time moved on.
	l.clk.Advance(time.Hour - time.Minute)
	n, err = l.h.App.Core().RunDueRefreshes(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, 1, l.app.count("PATCH"))
	st := l.stored(t, sub.GetId())
	require.True(t, st.NextRefreshTime.After(first), "next refresh %v after %v", st.NextRefreshTime, first)
	require.False(t, st.RefreshTime.IsZero())

	// Due times live in the store: after a restart the due refresh still runs.
	l.clk.Advance(time.Hour)
	l.h.Restart()
	n, err = l.h.App.Core().RunDueRefreshes(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, 2, l.app.count("PATCH"))

	// RefreshSubscription forces one now.
	resp, err := l.h.Subscriptions.RefreshSubscription(l.h.Ctx(), &hookmapv1.RefreshSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.False(t, resp.GetHealed())
	require.Equal(t, 3, l.app.count("PATCH"))
}

func TestSelfHealOn410(t *testing.T) {
	l := startLifecycle(t)
	sub, err := l.subscribe(t, "")
	require.NoError(t, err)
	old := l.app.hookList()[0].ID
	l.app.set(func() { l.app.refresh[old] = 410; delete(l.app.hooks, old) })
	resp, err := l.h.Subscriptions.RefreshSubscription(l.h.Ctx(), &hookmapv1.RefreshSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.True(t, resp.GetHealed())
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, resp.GetSubscription().GetStatus())
	require.Contains(t, resp.GetSubscription().GetLastError(), "healed")
	hooks := l.app.hookList()
	require.Len(t, hooks, 1)
	require.NotEqual(t, old, hooks[0].ID)
	require.Equal(t, sub.GetWebhookUri(), hooks[0].URL, "same subscription, same URL")
	require.Equal(t, hooks[0].ID, l.h.SubscriptionState(sub.GetId())["hookId"])
}

func TestRepeatedRefreshFailuresHeal(t *testing.T) {
	l := startLifecycle(t)
	sub, err := l.subscribe(t, "")
	require.NoError(t, err)
	old := l.app.hookList()[0].ID
	l.app.set(func() { l.app.refresh[old] = 500 })
	for i := 1; i < 3; i++ {
		_, err := l.h.Subscriptions.RefreshSubscription(l.h.Ctx(), &hookmapv1.RefreshSubscriptionRequest{Id: sub.GetId()})
		apptest.RequireReason(t, err, codes.Unavailable, "APP_UNAVAILABLE", "refresh")
		require.Equal(t, i, l.stored(t, sub.GetId()).RefreshFailures)
	}
	resp, err := l.h.Subscriptions.RefreshSubscription(l.h.Ctx(), &hookmapv1.RefreshSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.True(t, resp.GetHealed())
	require.Equal(t, 0, l.stored(t, sub.GetId()).RefreshFailures)
}

func TestSSRFGuardRefusesLoopbackWithoutFlag(t *testing.T) {
	clk := newClock()
	h := apptest.Start(t, apptest.WithConnectors("testdata/connectors"), apptest.WithClock(clk.Now), apptest.WithoutScheduler())
	fa := newFakeApp(t, clk.Now)
	conn, err := h.Connections.CreateConnection(h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "fakehooks", Parameters: apptest.Struct(t, map[string]any{"baseUri": fa.srv.URL}),
		Credentials: apptest.Struct(t, map[string]any{"apiKey": fa.apiKey}),
	})
	require.NoError(t, err)
	_, err = h.Subscriptions.CreateSubscription(h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: "item", Parameters: apptest.Struct(t, map[string]any{"project": "p1"}),
	})
	// A refusal by policy is not worth retrying: FAILED_PRECONDITION, saying which flag.
	apptest.RequireReason(t, err, codes.FailedPrecondition, "ADDRESS_REFUSED", "--allow-private-networks")
	require.Zero(t, fa.count(""), "the app was never reached")
}
