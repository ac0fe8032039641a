package twilio_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

const (
	numberA, phoneA = "PN3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e", "+14155552671"
	numberB, phoneB = "PN0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c", "+14155552672"
	demoReply       = "https://demo.twilio.com/welcome/sms/reply"
)

type world struct {
	t    *testing.T
	h    *apptest.Harness
	fake *fakeTwilio
	conn *hookmapv1.Connection
}

func start(t *testing.T) *world {
	w := &world{t: t, h: apptest.Start(t, apptest.WithConnectors(".."), apptest.WithAllowPrivate()), fake: newFakeTwilio(t)}
	w.fake.addNumber(numberA, phoneA, demoReply)
	w.fake.addNumber(numberB, phoneB, "")
	conn, err := w.h.Connections.CreateConnection(w.h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "twilio", Name: "acme",
		Parameters:  apptest.Struct(t, map[string]any{"baseUri": w.fake.srv.URL}),
		Credentials: apptest.Struct(t, map[string]any{"accountSid": w.fake.accountSid, "authToken": w.fake.authToken}),
	})
	require.NoError(t, err)
	w.conn = conn
	return w
}

func (w *world) subscribe(params map[string]any) *hookmapv1.Subscription {
	w.t.Helper()
	sub, err := w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: w.conn.GetId(), EventKey: "messages", Parameters: apptest.Struct(w.t, params),
	})
	require.NoError(w.t, err)
	require.Equal(w.t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())
	return sub
}

func (w *world) unsubscribe(sub *hookmapv1.Subscription) {
	w.t.Helper()
	_, err := w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(w.t, err)
}

func TestSMSURLIsSetMessagesArriveAndTheURLIsRestored(t *testing.T) {
	w := start(t)
	sub := w.subscribe(map[string]any{"phoneNumber": phoneA})
	require.Equal(t, sub.GetWebhookUri(), w.fake.number(numberA).SmsURL)
	require.Equal(t, "POST", w.fake.number(numberA).SmsMethod)

	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "sms"})
	msg := message("SM1f0e8ae6ade43cb3c0ce4525424e404f", "+14155550100", phoneA, "Hello & welcome: 100% 🎉")
	status, h, body := w.fake.send(numberA, msg, "")
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, "text/xml", h.Get("Content-Type"))
	require.Equal(t, `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`, body)
	ev := stream.Next(1)[0]
	require.Equal(t, "message.received", ev.GetType())
	require.Equal(t, "SM1f0e8ae6ade43cb3c0ce4525424e404f", ev.GetExternalId())
	rec := ev.GetRecord().GetStructValue().AsMap()
	require.Equal(t, "Hello & welcome: 100% 🎉", rec["Body"])
	require.Equal(t, "+14155550100", rec["From"])
	require.Len(t, rec, len(msg))

	// The same message again is stored once; another token's or a tampered one is refused.
	status, _, _ = w.fake.send(numberA, msg, "")
	require.Equal(t, http.StatusOK, status)
	status, _, _ = w.fake.send(numberA, message("SM2", "+14155550100", phoneA, "hi"), "the-token-of-another-account")
	require.Equal(t, http.StatusUnauthorized, status)
	tampered := message("SM3", "+14155550100", phoneA, "hi")
	sig := signature(w.fake.authToken, sub.GetWebhookUri(), tampered)
	tampered.Set("Body", "send money")
	r := w.h.Do(http.MethodPost, sub.GetWebhookUri(), []byte(tampered.Encode()),
		"Content-Type", "application/x-www-form-urlencoded", "X-Twilio-Signature", sig)
	require.Equal(t, http.StatusUnauthorized, r.Status)
	stream.None(200 * time.Millisecond)

	w.unsubscribe(sub)
	require.Equal(t, demoReply, w.fake.number(numberA).SmsURL, "the SMS URL it replaced is back")
}

func TestTwoSubscriptionsOnOneNumber(t *testing.T) {
	w := start(t)
	a := w.subscribe(map[string]any{"phoneNumberSid": numberB})
	b := w.subscribe(map[string]any{"phoneNumberSid": numberB})
	require.Equal(t, b.GetWebhookUri(), w.fake.number(numberB).SmsURL, "the last subscription has the number")

	// Deleting a, which no longer has the number, leaves the number alone.
	calls := len(w.fake.Calls())
	w.unsubscribe(a)
	require.Equal(t, b.GetWebhookUri(), w.fake.number(numberB).SmsURL)
	require.Len(t, w.fake.Calls(), calls+1, "one GET, no update")

	// Deleting b does not put a's dead URL back: the SMS URL is cleared.
	w.unsubscribe(b)
	require.Equal(t, "", w.fake.number(numberB).SmsURL)
}

func TestReconcileAndRefusals(t *testing.T) {
	w := start(t)
	w.fake.pageSize = 1
	sub := w.subscribe(map[string]any{"phoneNumberSid": numberA})
	w.fake.addNumber("PN1111111111111111111111111111111b", "+14155552673", w.h.BaseURL+"/hooks/bG9zdC1zdWJzY3JpcHRpb24tb2YtYmVmb3Jl")
	w.fake.addNumber("PN2222222222222222222222222222222c", "+14155552674", "https://studio.twilio.com/v2/Flows/FW1/Executions")

	res, err := w.h.Subscriptions.ReconcileWebhooks(w.h.Ctx(), &hookmapv1.ReconcileWebhooksRequest{
		ConnectionId: w.conn.GetId(), EventKey: "messages", Mode: hookmapv1.ReconcileMode_RECONCILE_MODE_DELETE_ORPHANS,
	})
	require.NoError(t, err)
	got := map[string]hookmapv1.WebhookClassification{}
	for _, r := range res.GetWebhooks() {
		got[r.GetId()] = r.GetClassification()
	}
	require.Equal(t, map[string]hookmapv1.WebhookClassification{
		numberA:                              hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_OWNED,
		"PN1111111111111111111111111111111b": hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_ORPHANED,
		"PN2222222222222222222222222222222c": hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_FOREIGN,
	}, got, "numberB has no SMS URL: not listed")
	require.Equal(t, "", w.fake.number("PN1111111111111111111111111111111b").SmsURL)
	require.Equal(t, "https://studio.twilio.com/v2/Flows/FW1/Executions", w.fake.number("PN2222222222222222222222222222222c").SmsURL)
	require.Equal(t, sub.GetWebhookUri(), w.fake.number(numberA).SmsURL)

	// A number the account does not have, and a wrong auth token, fail with Twilio's words.
	_, err = w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: w.conn.GetId(), EventKey: "messages", Parameters: apptest.Struct(t, map[string]any{"phoneNumberSid": "PN99999999999999999999999999999999"}),
	})
	apptest.RequireCode(t, err, codes.FailedPrecondition, "20404")
	_, err = w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: w.conn.GetId(), EventKey: "messages", Parameters: apptest.Struct(t, map[string]any{}),
	})
	apptest.RequireCode(t, err, codes.InvalidArgument, "parameters")
}
