package typeform_test

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

func TestResponsesAndTheIdempotentPUT(t *testing.T) {
	clk := &clock{t: time.Now().UTC()}
	h := apptest.Start(t, apptest.WithConnectors(".."), apptest.WithAllowPrivate(), apptest.WithClock(clk.Now), apptest.WithoutScheduler())
	tf := newFakeTypeform(t)
	conn, err := h.Connections.CreateConnection(h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "typeform", Name: "acme",
		Parameters:  apptest.Struct(t, map[string]any{"baseUri": tf.srv.URL}),
		Credentials: apptest.Struct(t, map[string]any{"accessToken": tf.token}),
	})
	require.NoError(t, err)
	subscribe := func(requestID string) (*hookmapv1.Subscription, error) {
		return h.Subscriptions.CreateSubscription(h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
			ConnectionId: conn.GetId(), EventKey: "responses", RequestId: requestID,
			Parameters: apptest.Struct(t, map[string]any{"formId": "lT4Z3j", "partialResponses": true}),
		})
	}

	// Typeform stores the webhook but the answer is lost: the retry PUTs the same tag
	// again, and there is still one webhook.
	tf.set(func() { tf.loseNext = true })
	_, err = subscribe("req-1")
	require.Error(t, err)
	sub, err := subscribe("req-1")
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())
	hook := tf.hookFor(sub.GetWebhookUri())
	require.Equal(t, "hookmap-"+sub.GetId(), hook.Tag)
	require.True(t, hook.Partial)

	stream := h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "forms"})
	require.Equal(t, http.StatusOK, tf.deliver(hook, "01JGFHKC0XH9ZV8Q1M4TQ6R2BN", "form_response_partial", "tok1"))
	require.Equal(t, http.StatusOK, tf.deliver(hook, "LtWXD3crgy", "form_response", "tok1"))
	require.Equal(t, http.StatusOK, tf.deliver(hook, "LtWXD3crgy", "form_response", "tok1"), "a retry")
	forged := *hook
	forged.Secret = "guess"
	require.Equal(t, http.StatusUnauthorized, tf.deliver(&forged, "X1", "form_response", "tok2"))
	evs := stream.Next(2)
	require.Equal(t, "form_response_partial", evs[0].GetType())
	require.Equal(t, "form_response", evs[1].GetType())
	require.Equal(t, "tok1", evs[1].GetRecord().GetStructValue().AsMap()["token"], "the partial and the final response share the token, not the id")
	stream.None(50 * time.Millisecond)

	// Typeform disabled the webhook after failures; the daily re-subscribe enables it.
	tf.set(func() { tf.hooks["lT4Z3j/"+hook.Tag].Enabled = false })
	clk.Advance(25 * time.Hour)
	n, err := h.App.Core().RunDueRefreshes(h.Ctx())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.True(t, tf.hookFor(sub.GetWebhookUri()).Enabled)

	_, err = h.Subscriptions.DeleteSubscription(h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Nil(t, tf.hookFor(sub.GetWebhookUri()))
}
