package stripe_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

type world struct {
	h    *apptest.Harness
	fake *fakeStripe
	conn *hookmapv1.Connection
}

// start runs hookmap with the bundled connectors and a fake Stripe, and connects to it.
func start(t *testing.T, params map[string]any) *world {
	t.Helper()
	h := apptest.Start(t, apptest.WithConnectors(".."), apptest.WithAllowPrivate())
	fake := newFakeStripe(t)
	if params == nil {
		params = map[string]any{}
	}
	params["baseUri"] = fake.srv.URL
	conn, err := h.Connections.CreateConnection(h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "stripe", Name: "acme",
		Parameters:  apptest.Struct(t, params),
		Credentials: apptest.Struct(t, map[string]any{"secretKey": fake.secretKey}),
	})
	require.NoError(t, err)
	return &world{h: h, fake: fake, conn: conn}
}

func (w *world) subscribe(t *testing.T, requestID string, params map[string]any) (*hookmapv1.Subscription, error) {
	t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	return w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: w.conn.GetId(), EventKey: "events", RequestId: requestID, Parameters: apptest.Struct(t, params),
	})
}

// only returns the fake's single endpoint, failing unless there is exactly one.
func (w *world) only(t *testing.T) fakeEndpoint {
	t.Helper()
	eps := w.fake.all()
	require.Len(t, eps, 1, "exactly one webhook endpoint in Stripe")
	return eps[0]
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

func TestSubscribeDeliverUnsubscribe(t *testing.T) {
	w := start(t, map[string]any{"apiVersion": "2024-06-20"})
	sub, err := w.subscribe(t, "", map[string]any{
		"enabledEvents": []any{"customer.created", "customer.updated", "invoice.paid"},
		"description":   "hookmap: billing sync",
	})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())

	// The endpoint was created with the subscription's URL and the form fields Stripe takes.
	ep := w.only(t)
	require.Equal(t, sub.GetWebhookUri(), ep.URL)
	require.Equal(t, []string{"customer.created", "customer.updated", "invoice.paid"}, ep.EnabledEvents)
	require.NotNil(t, ep.Description)
	require.Equal(t, "hookmap: billing sync", *ep.Description)
	require.Equal(t, map[string]string{"hookmap_subscription_id": sub.GetId()}, ep.Metadata)
	posts := w.fake.callsTo(http.MethodPost, "/v1/webhook_endpoints")
	require.Len(t, posts, 1)
	require.Equal(t, sub.GetId(), posts[0].Header.Get("Idempotency-Key"))
	require.Equal(t, "Bearer "+w.fake.secretKey, posts[0].Header.Get("Authorization"))
	require.Equal(t, "2024-06-20", posts[0].Header.Get("Stripe-Version"))
	require.NotNil(t, ep.APIVersion, "events are rendered in the connection's API version")
	require.Equal(t, "2024-06-20", *ep.APIVersion)
	require.Equal(t, []string{sub.GetWebhookUri()}, posts[0].Form["url"])
	require.Len(t, w.fake.callsTo(http.MethodGet, "/v1/webhook_endpoints"), 1, "looked up before creating")

	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})

	// customer.created: type, id and record (= data.object).
	customer := map[string]any{"id": "cus_NffrFeUfNV2Hib", "object": "customer", "email": "jenny@example.com",
		"balance": 0, "created": 1680893993, "metadata": map[string]any{}, "livemode": false}
	body := stripeEvent("evt_1NG8Du2eZvKYlo2CUI79vXWy", "customer.created", customer, nil)
	r := w.fake.deliver(t, ep.ID, body)
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	ev := stream.Next(1)[0]
	require.Equal(t, "customer.created", ev.GetType())
	require.Equal(t, "evt_1NG8Du2eZvKYlo2CUI79vXWy", ev.GetExternalId())
	require.Equal(t, sub.GetId(), ev.GetSubscriptionId())
	require.Equal(t, "events", ev.GetEventKey())
	require.Equal(t, decode(t, body)["data"].(map[string]any)["object"], ev.GetRecord().AsInterface())

	// A Stripe retry of the same event (same id, new signature) is acknowledged, not stored
	// again: the next event on the stream is the following one.
	r = w.fake.deliver(t, ep.ID, body)
	require.Equal(t, http.StatusOK, r.Status, r.Body)

	// customer.updated: the record is data.object, without previous_attributes.
	updated := map[string]any{"id": "cus_NffrFeUfNV2Hib", "object": "customer", "email": "jenny.rosen@example.com"}
	body2 := stripeEvent("evt_1NG8Du2eZvKYlo2C0ZQh2w4c", "customer.updated", updated, map[string]any{"email": "jenny@example.com"})
	r = w.fake.deliver(t, ep.ID, body2)
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	ev = stream.Next(1)[0]
	require.Equal(t, "customer.updated", ev.GetType())
	require.Equal(t, "evt_1NG8Du2eZvKYlo2C0ZQh2w4c", ev.GetExternalId())
	require.Equal(t, map[string]any{"id": "cus_NffrFeUfNV2Hib", "object": "customer", "email": "jenny.rosen@example.com"}, ev.GetRecord().AsInterface())

	// During a secret rotation Stripe sends one v1 per secret: any matching one is enough.
	body3 := stripeEvent("evt_3", "invoice.paid", map[string]any{"id": "in_1", "object": "invoice", "amount_paid": 2000}, nil)
	now := time.Now()
	r = post(t, ep.URL, body3, signatureHeader(now, sign("whsec_old"+randHex(8), now, body3), sign(ep.Secret, now, body3)))
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	ev = stream.Next(1)[0]
	require.Equal(t, "invoice.paid", ev.GetType())
	require.Equal(t, map[string]any{"id": "in_1", "object": "invoice", "amount_paid": float64(2000)}, ev.GetRecord().AsInterface())

	// Refused with 401, never events: a wrong secret, a tampered body, no signature, and a
	// correct signature whose timestamp is more than 5 minutes old (a replay).
	bad := stripeEvent("evt_bad", "customer.deleted", map[string]any{"id": "cus_x", "object": "customer"}, nil)
	for name, sig := range map[string]string{
		"wrong secret": signatureHeader(now, sign("whsec_"+randHex(16), now, bad)),
		"tampered":     signatureHeader(now, sign(ep.Secret, now, []byte(strings.Replace(string(bad), "cus_x", "cus_y", 1)))),
		"none":         "",
		"stale":        signatureHeader(now.Add(-6*time.Minute), sign(ep.Secret, now.Add(-6*time.Minute), bad)),
		"v0 only":      signatureHeader(now) + ",v0=" + sign(ep.Secret, now, bad),
	} {
		r := post(t, ep.URL, bad, sig)
		require.Equal(t, http.StatusUnauthorized, r.Status, "%s: %s", name, r.Body)
	}
	// A timestamp 4 minutes old is within the tolerance.
	old := now.Add(-4 * time.Minute)
	body4 := stripeEvent("evt_4", "customer.deleted", map[string]any{"id": "cus_z", "object": "customer"}, nil)
	r = post(t, ep.URL, body4, signatureHeader(old, sign(ep.Secret, old, body4)))
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	ev = stream.Next(1)[0]
	require.Equal(t, "evt_4", ev.GetExternalId(), "the duplicate and the refused deliveries made no events")

	list, err := w.h.Events.ListEvents(w.h.Ctx(), &hookmapv1.ListEventsRequest{PageSize: 100})
	require.NoError(t, err)
	var ids []string
	for _, e := range list.GetEvents() {
		ids = append(ids, e.GetExternalId())
	}
	require.Equal(t, []string{"evt_1NG8Du2eZvKYlo2CUI79vXWy", "evt_1NG8Du2eZvKYlo2C0ZQh2w4c", "evt_3", "evt_4"}, ids)

	// DeleteSubscription deletes the endpoint in Stripe.
	_, err = w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Empty(t, w.fake.all())
	require.Len(t, w.fake.callsTo(http.MethodDelete, "/v1/webhook_endpoints/"+ep.ID), 1)
	// Deliveries to a deleted subscription's URL find nothing.
	r = post(t, ep.URL, body4, signatureHeader(now, sign(ep.Secret, now, body4)))
	require.Equal(t, http.StatusNotFound, r.Status)
}

func TestDefaultsAndNoVersionHeader(t *testing.T) {
	w := start(t, nil)
	sub, err := w.subscribe(t, "", nil)
	require.NoError(t, err)
	ep := w.only(t)
	require.Equal(t, []string{"*"}, ep.EnabledEvents, "every event type by default")
	require.Nil(t, ep.Description)
	require.Nil(t, ep.APIVersion)
	posts := w.fake.callsTo(http.MethodPost, "/v1/webhook_endpoints")
	require.Len(t, posts, 1)
	require.NotContains(t, posts[0].Header, "Stripe-Version", "no apiVersion: the account's default version")
	require.Equal(t, "application/x-www-form-urlencoded", posts[0].Header.Get("Content-Type"))
	require.Equal(t, sub.GetWebhookUri(), ep.URL)
}

func TestInvalidKeyAndParameters(t *testing.T) {
	w := start(t, nil)
	w.fake.set(func() { w.fake.secretKey = "sk_test_rotated0000" })
	_, err := w.subscribe(t, "", nil)
	apptest.RequireCode(t, err, codes.FailedPrecondition, "Invalid API Key provided")
	require.Contains(t, err.Error(), "401")
	require.Empty(t, w.fake.all())

	_, err = w.subscribe(t, "", map[string]any{"enabledEvents": []any{}})
	apptest.RequireCode(t, err, codes.InvalidArgument, "enabledEvents")

	_, err = w.h.Connections.CreateConnection(w.h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "stripe", Name: "bad", Credentials: apptest.Struct(t, map[string]any{"secretKey": "pk_test_123"}),
	})
	apptest.RequireCode(t, err, codes.InvalidArgument, "secretKey")
}

func TestRetriedCreateWithSameRequestIDMakesOneEndpoint(t *testing.T) {
	w := start(t, nil)
	sub, err := w.subscribe(t, "req-1", nil)
	require.NoError(t, err)
	again, err := w.subscribe(t, "req-1", nil)
	require.NoError(t, err)
	require.Equal(t, sub.GetId(), again.GetId())
	ep := w.only(t)
	require.Equal(t, sub.GetWebhookUri(), ep.URL)
	require.Len(t, w.fake.callsTo(http.MethodPost, "/v1/webhook_endpoints"), 1)
}

// expectWorking delivers an event signed with ep's secret and expects it on the stream.
func expectWorking(t *testing.T, w *world, stream *apptest.Stream, ep fakeEndpoint, id string) {
	t.Helper()
	r := w.fake.deliver(t, ep.ID, stripeEvent(id, "charge.succeeded", map[string]any{"id": "ch_" + id, "object": "charge"}, nil))
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	ev := stream.Next(1)[0]
	require.Equal(t, id, ev.GetExternalId())
	require.Equal(t, "charge.succeeded", ev.GetType())
}

func TestLostCreateResponseIsReplayed(t *testing.T) {
	w := start(t, nil)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})
	// The answer is lost twice: Go's transport retries a POST carrying an Idempotency-Key
	// once by itself when a reused connection drops, so the second loss is what surfaces.
	w.fake.set(func() { w.fake.drop = 2 })
	_, err := w.subscribe(t, "req-lost", nil)
	require.Error(t, err, "the create's answer was lost")
	first := w.only(t) // Stripe made the endpoint all the same

	sub, err := w.subscribe(t, "req-lost", nil)
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())
	ep := w.only(t)
	require.Equal(t, first.ID, ep.ID, "the idempotency key replayed the first create")
	require.Equal(t, sub.GetWebhookUri(), ep.URL)
	posts := w.fake.callsTo(http.MethodPost, "/v1/webhook_endpoints")
	require.GreaterOrEqual(t, len(posts), 2)
	for _, p := range posts {
		require.Equal(t, sub.GetId(), p.Header.Get("Idempotency-Key"))
	}
	w.fake.set(func() {
		require.Equal(t, 1, w.fake.created, "Stripe created one endpoint; the other answers were replays")
	})
	require.Empty(t, w.fake.callsTo(http.MethodDelete, "/v1/webhook_endpoints/"+ep.ID))
	expectWorking(t, w, stream, ep, "evt_after_replay") // the replayed secret is the endpoint's
}

func TestLostCreateAfterIdempotencyWindowReplacesEndpoint(t *testing.T) {
	w := start(t, nil)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})
	w.fake.set(func() { w.fake.drop = 2 })
	_, err := w.subscribe(t, "req-late", nil)
	require.Error(t, err)
	stale := w.only(t)
	w.fake.forgetIdempotencyKeys() // more than 24 hours later

	sub, err := w.subscribe(t, "req-late", nil)
	require.NoError(t, err)
	ep := w.only(t)
	require.NotEqual(t, stale.ID, ep.ID, "a fresh endpoint whose secret is known")
	require.Equal(t, sub.GetWebhookUri(), ep.URL)
	require.Len(t, w.fake.callsTo(http.MethodDelete, "/v1/webhook_endpoints/"+stale.ID), 1, "the endpoint with an unknown secret was deleted")
	expectWorking(t, w, stream, ep, "evt_fresh")

	// The stale endpoint's secret no longer verifies.
	body := stripeEvent("evt_stale", "charge.succeeded", map[string]any{"id": "ch_1", "object": "charge"}, nil)
	now := time.Now()
	r := post(t, ep.URL, body, signatureHeader(now, sign(stale.Secret, now, body)))
	require.Equal(t, http.StatusUnauthorized, r.Status)
}

func reconcile(t *testing.T, w *world, mode hookmapv1.ReconcileMode, repair bool) *hookmapv1.ReconcileWebhooksResponse {
	t.Helper()
	resp, err := w.h.Subscriptions.ReconcileWebhooks(w.h.Ctx(), &hookmapv1.ReconcileWebhooksRequest{
		ConnectionId: w.conn.GetId(), EventKey: "events", Parameters: apptest.Struct(t, map[string]any{}), Mode: mode, Repair: repair,
	})
	require.NoError(t, err)
	return resp
}

func TestReconcile(t *testing.T) {
	w := start(t, nil)
	sub, err := w.subscribe(t, "", nil)
	require.NoError(t, err)
	owned := w.only(t).ID
	orphan := w.fake.add(w.h.BaseURL + "/hooks/" + randHex(16))
	foreign := w.fake.add("https://billing.example.com/stripe/webhook")
	foreign2 := w.fake.add("https://zapier.example/hooks/catch/123/abc")
	w.fake.set(func() { w.fake.calls = nil })

	resp := reconcile(t, w, hookmapv1.ReconcileMode_RECONCILE_MODE_DRY_RUN, false)
	got := map[string]hookmapv1.WebhookClassification{}
	for _, wh := range resp.GetWebhooks() {
		got[wh.GetId()] = wh.GetClassification()
		require.False(t, wh.GetDeleted())
	}
	require.Equal(t, map[string]hookmapv1.WebhookClassification{
		owned:    hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_OWNED,
		orphan:   hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_ORPHANED,
		foreign:  hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_FOREIGN,
		foreign2: hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_FOREIGN,
	}, got)
	lists := w.fake.callsTo(http.MethodGet, "/v1/webhook_endpoints")
	require.Len(t, lists, 2, "two pages of two")
	require.Empty(t, lists[0].Query.Get("starting_after"))
	require.NotEmpty(t, lists[1].Query.Get("starting_after"))
	require.Len(t, w.fake.all(), 4, "DRY_RUN changes nothing")
	for _, wh := range resp.GetWebhooks() {
		if wh.GetId() == owned {
			require.Equal(t, sub.GetId(), wh.GetSubscriptionId())
		}
	}

	resp = reconcile(t, w, hookmapv1.ReconcileMode_RECONCILE_MODE_DELETE_ORPHANS, false)
	require.EqualValues(t, 1, resp.GetDeleted())
	for _, wh := range resp.GetWebhooks() {
		require.Equal(t, wh.GetId() == orphan, wh.GetDeleted(), wh.GetId())
	}
	var left []string
	for _, e := range w.fake.all() {
		left = append(left, e.ID)
	}
	require.ElementsMatch(t, []string{owned, foreign, foreign2}, left)
	dels := 0
	w.fake.set(func() {
		for _, c := range w.fake.calls {
			if c.Method == http.MethodDelete {
				dels++
				require.Equal(t, "/v1/webhook_endpoints/"+orphan, c.Path)
			}
		}
	})
	require.Equal(t, 1, dels)
}

// A subscription whose endpoint was deleted in Stripe is MISSING; repair subscribes again.
// The idempotency key would replay the deleted endpoint, so subscribe creates a fresh one.
func TestReconcileRepairsMissingEndpoint(t *testing.T) {
	w := start(t, nil)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})
	sub, err := w.subscribe(t, "", nil)
	require.NoError(t, err)
	gone := w.only(t)
	w.fake.remove(gone.ID)

	resp := reconcile(t, w, hookmapv1.ReconcileMode_RECONCILE_MODE_DRY_RUN, true)
	require.Len(t, resp.GetWebhooks(), 1)
	wh := resp.GetWebhooks()[0]
	require.Equal(t, hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_MISSING, wh.GetClassification())
	require.Equal(t, sub.GetId(), wh.GetSubscriptionId())
	require.True(t, wh.GetRepaired(), wh.GetError())

	ep := w.only(t)
	require.NotEqual(t, gone.ID, ep.ID)
	require.Equal(t, sub.GetWebhookUri(), ep.URL)
	posts := w.fake.callsTo(http.MethodPost, "/v1/webhook_endpoints")
	require.Len(t, posts, 3, "create, its replay, and a create under a new key")
	require.Equal(t, sub.GetId(), posts[1].Header.Get("Idempotency-Key"))
	require.NotEqual(t, sub.GetId(), posts[2].Header.Get("Idempotency-Key"))
	expectWorking(t, w, stream, ep, "evt_repaired")

	resp = reconcile(t, w, hookmapv1.ReconcileMode_RECONCILE_MODE_DRY_RUN, false)
	require.Len(t, resp.GetWebhooks(), 1)
	require.Equal(t, hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_OWNED, resp.GetWebhooks()[0].GetClassification())
}
