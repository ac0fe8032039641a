package pagerduty_test

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

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestIncidentsRotationRefreshAndReconcile(t *testing.T) {
	clk := &clock{t: time.Now().UTC()}
	h := apptest.Start(t, apptest.WithConnectors(".."), apptest.WithAllowPrivate(), apptest.WithClock(clk.Now), apptest.WithoutScheduler())
	pd := newFakePagerDuty(t)
	conn, err := h.Connections.CreateConnection(h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "pagerduty", Name: "acme",
		Parameters:  apptest.Struct(t, map[string]any{"baseUri": pd.srv.URL}),
		Credentials: apptest.Struct(t, map[string]any{"apiKey": pd.apiKey}),
	})
	require.NoError(t, err)
	subscribe := func(requestID string) (*hookmapv1.Subscription, error) {
		return h.Subscriptions.CreateSubscription(h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
			ConnectionId: conn.GetId(), EventKey: "incidents", RequestId: requestID,
			Parameters: apptest.Struct(t, map[string]any{"filterType": "service_reference", "filterId": "PF9KMXH"}),
		})
	}

	// PagerDuty creates the subscription but its answer (with the only copy of the secret)
	// is lost: the retry deletes it and creates another, whose secret it keeps.
	pd.set(func() { pd.loseNext = true })
	_, err = subscribe("req-1")
	require.Error(t, err)
	sub, err := subscribe("req-1")
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())
	ps := pd.subFor(sub.GetWebhookUri())
	require.NotNil(t, ps)
	require.Equal(t, 2, pd.creates)
	require.Equal(t, "PF9KMXH", ps.FilterID)
	require.Equal(t, ps.Secrets[0], h.SubscriptionState(sub.GetId())["secret"])

	stream := h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "oncall"})
	require.Equal(t, http.StatusOK, pd.deliver(ps, "ev-1", "incident.triggered"))
	// PagerDuty rotates the secret: deliveries carry the new signature first, then ours.
	rotating := *ps
	rotating.Secrets = []string{"the-next-secret", ps.Secrets[0]}
	require.Equal(t, http.StatusOK, pd.deliver(&rotating, "ev-2", "incident.acknowledged"))
	rotated := *ps
	rotated.Secrets = []string{"the-next-secret"}
	require.Equal(t, http.StatusUnauthorized, pd.deliver(&rotated, "ev-3", "incident.resolved"))
	evs := stream.Next(2)
	require.Equal(t, "incident.triggered", evs[0].GetType())
	require.Equal(t, "incident.acknowledged", evs[1].GetType())
	require.Equal(t, "ev-2", evs[1].GetExternalId())

	// Temporarily disabled after failures: the daily refresh enables it.
	pd.set(func() { pd.subs[ps.ID].Disabled = true })
	clk.Advance(25 * time.Hour)
	n, err := h.App.Core().RunDueRefreshes(h.Ctx())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.False(t, pd.subFor(sub.GetWebhookUri()).Disabled)

	// Reconcile pages (offset) and deletes an orphan.
	pd.set(func() {
		for i := range 120 {
			id := "PO" + string(rune('A'+i/26)) + string(rune('A'+i%26))
			pd.subs[id] = &pdSub{ID: id, URL: "https://elsewhere.example/" + id, FilterType: "account_reference", Secrets: []string{"x"}, Events: []string{"incident.triggered"}}
		}
		pd.subs["PZORPH"] = &pdSub{ID: "PZORPH", URL: h.BaseURL + "/hooks/gone", FilterType: "account_reference", Secrets: []string{"x"}, Events: []string{"incident.triggered"}}
	})
	res, err := h.Subscriptions.ReconcileWebhooks(h.Ctx(), &hookmapv1.ReconcileWebhooksRequest{
		ConnectionId: conn.GetId(), EventKey: "incidents", Mode: hookmapv1.ReconcileMode_RECONCILE_MODE_DELETE_ORPHANS,
	})
	require.NoError(t, err)
	require.Len(t, res.GetWebhooks(), 122)
	pd.set(func() { require.NotContains(t, pd.subs, "PZORPH") })

	_, err = h.Subscriptions.DeleteSubscription(h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Nil(t, pd.subFor(sub.GetWebhookUri()))
}
