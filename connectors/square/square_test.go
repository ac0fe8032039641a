package square_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

func TestPaymentsOfOneSellerWithExactAmounts(t *testing.T) {
	h := apptest.Start(t, apptest.WithConnectors(".."), apptest.WithAllowPrivate(), apptest.WithoutScheduler())
	sq := newFakeSquare(t)
	conn, err := h.Connections.CreateConnection(h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "square", Name: "acme",
		Parameters:  apptest.Struct(t, map[string]any{"baseUri": sq.srv.URL}),
		Credentials: apptest.Struct(t, map[string]any{"accessToken": sq.token}),
	})
	require.NoError(t, err)
	subscribe := func(requestID string) (*hookmapv1.Subscription, error) {
		return h.Subscriptions.CreateSubscription(h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
			ConnectionId: conn.GetId(), EventKey: "notifications", RequestId: requestID,
			Parameters: apptest.Struct(t, map[string]any{"merchantId": "6SSW7HV8K2ST5"}),
		})
	}

	// Square creates the subscription but the answer is lost: the retry sends the same
	// idempotency key and gets the same subscription (and its signature key) back.
	sq.set(func() { sq.loseNext = true })
	_, err = subscribe("req-1")
	require.Error(t, err)
	sub, err := subscribe("req-1")
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())
	require.Equal(t, 1, sq.creates)
	s := sq.subFor(sub.GetWebhookUri())
	require.NotNil(t, s)
	require.Equal(t, "2025-01-23", s.APIVersion)
	require.Equal(t, s.SignatureKey, h.SubscriptionState(sub.GetId())["signatureKey"])

	stream := h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "payments", RecordFormat: hookmapv1.RecordFormat_RECORD_FORMAT_JSON})
	require.Equal(t, http.StatusOK, sq.notify(s, "6SSW7HV8K2ST5", "e1", "9007199254740993"))
	require.Equal(t, http.StatusOK, sq.notify(s, "OTHERSELLER01", "e2", "100"), "another seller's event is answered, not kept")
	forged := *s
	forged.SignatureKey = "guess"
	require.Equal(t, http.StatusUnauthorized, sq.notify(&forged, "6SSW7HV8K2ST5", "e3", "1"))
	ev := stream.Next(1)[0]
	require.Equal(t, "payment.updated", ev.GetType())
	require.Equal(t, "e1", ev.GetExternalId())
	require.Contains(t, ev.GetRecordJson(), `"amount_money":{"amount":"9007199254740993","currency":"USD"}`, "an amount beyond 2^53 is a string")
	require.Contains(t, ev.GetRecordJson(), `"version":2`, "small integers stay numbers")
	stream.None(50 * time.Millisecond)

	// The subscription disappeared from Square: a repair creates a new one with the next
	// idempotency key (the first key would answer the old subscription again).
	sq.set(func() { delete(sq.subs, s.ID) })
	res, err := h.Subscriptions.ReconcileWebhooks(h.Ctx(), &hookmapv1.ReconcileWebhooksRequest{
		ConnectionId: conn.GetId(), EventKey: "notifications", Mode: hookmapv1.ReconcileMode_RECONCILE_MODE_DRY_RUN, Repair: true,
	})
	require.NoError(t, err)
	require.Len(t, res.GetWebhooks(), 1)
	require.True(t, res.GetWebhooks()[0].GetRepaired(), res.GetWebhooks()[0].GetError())
	fresh := sq.subFor(sub.GetWebhookUri())
	require.NotNil(t, fresh)
	require.NotEqual(t, s.ID, fresh.ID)
	require.Equal(t, 2, sq.creates)
	require.Equal(t, http.StatusOK, sq.notify(fresh, "6SSW7HV8K2ST5", "e4", "250"))
	require.Equal(t, "e4", stream.Next(1)[0].GetExternalId())

	_, err = h.Subscriptions.DeleteSubscription(h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Nil(t, sq.subFor(sub.GetWebhookUri()))
}
