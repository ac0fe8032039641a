package calendly_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
	cal  *fakeCalendly
	clk  *clock
	conn *hookmapv1.Connection
}

func start(t *testing.T) *world {
	t.Helper()
	clk := &clock{t: time.Now().UTC()}
	h := apptest.Start(t, apptest.WithConnectors(".."), apptest.WithAllowPrivate(), apptest.WithClock(clk.Now), apptest.WithoutScheduler())
	cal := newFakeCalendly(t)
	conn, err := h.Connections.CreateConnection(h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "calendly", Name: "acme",
		Parameters:  apptest.Struct(t, map[string]any{"baseUri": cal.srv.URL}),
		Credentials: apptest.Struct(t, map[string]any{"accessToken": cal.token}),
	})
	require.NoError(t, err)
	return &world{h: h, cal: cal, clk: clk, conn: conn}
}

func (w *world) subscribe(t *testing.T, requestID string, params map[string]any) (*hookmapv1.Subscription, error) {
	t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	return w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: w.conn.GetId(), EventKey: "scheduling", RequestId: requestID, Parameters: apptest.Struct(t, params),
	})
}

func TestInviteesScheduledAndCanceled(t *testing.T) {
	w := start(t)
	sub, err := w.subscribe(t, "", map[string]any{"scope": "user"})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())
	cs := w.cal.subFor(sub.GetWebhookUri())
	require.NotNil(t, cs)
	require.Equal(t, "user", cs.Scope)
	require.Equal(t, w.cal.user, cs.User)
	require.Equal(t, []string{"invitee.created", "invitee.canceled"}, cs.Events)
	require.GreaterOrEqual(t, len(cs.SigningKey), 16, "hookmap chose a signing key")

	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "crm"})
	require.Equal(t, http.StatusOK, w.cal.deliver(cs, "invitee.created", "INV0000000000001", w.clk.Now()))
	require.Equal(t, http.StatusOK, w.cal.deliver(cs, "invitee.created", "INV0000000000001", w.clk.Now()), "a retry is answered 200")
	require.Equal(t, http.StatusOK, w.cal.deliver(cs, "invitee.canceled", "INV0000000000001", w.clk.Now().Add(-2*time.Minute)))
	// Four minutes old: beyond Calendly's advised 3, refused however well signed.
	require.Equal(t, http.StatusUnauthorized, w.cal.deliver(cs, "invitee.created", "INV0000000000002", w.clk.Now().Add(-4*time.Minute)))
	forged := *cs
	forged.SigningKey = "guess"
	require.Equal(t, http.StatusUnauthorized, w.cal.deliver(&forged, "invitee.created", "INV0000000000003", w.clk.Now()))

	evs := stream.Next(2)
	require.Equal(t, "invitee.created", evs[0].GetType())
	require.Equal(t, "invitee.canceled", evs[1].GetType())
	require.Equal(t, true, evs[1].GetRecord().GetStructValue().AsMap()["canceled"])
	stream.None(50 * time.Millisecond)

	_, err = w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Nil(t, w.cal.subFor(sub.GetWebhookUri()))
}

// Calendly creates the subscription but its answer is lost; the retry would get 409
// "Already Exists" from a blind create: it finds the subscription on the second page.
func TestRetriedCreateFindsTheSubscription(t *testing.T) {
	w := start(t)
	for i := range 120 {
		w.cal.add("https://elsewhere.example/" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
	}
	w.cal.set(func() { w.cal.loseNext = true })
	_, err := w.subscribe(t, "req-1", nil)
	require.Error(t, err)
	sub, err := w.subscribe(t, "req-1", nil)
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())
	require.Equal(t, 1, w.cal.count("POST /webhook_subscriptions"))
	cs := w.cal.subFor(sub.GetWebhookUri())
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})
	require.Equal(t, http.StatusOK, w.cal.deliver(cs, "invitee.created", "INV0000000000009", w.clk.Now()), "signed with the first attempt's key")
	require.Equal(t, "invitee.created", stream.Next(1)[0].GetType())

	res, err := w.h.Subscriptions.ReconcileWebhooks(w.h.Ctx(), &hookmapv1.ReconcileWebhooksRequest{
		ConnectionId: w.conn.GetId(), EventKey: "scheduling", Mode: hookmapv1.ReconcileMode_RECONCILE_MODE_DRY_RUN,
	})
	require.NoError(t, err)
	require.Len(t, res.GetWebhooks(), 121, "every page")
}
