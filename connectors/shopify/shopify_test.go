package shopify_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/hookmap/hookmap/engine"
	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

const (
	owned    = hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_OWNED
	orphaned = hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_ORPHANED
	foreign  = hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_FOREIGN
	dryRun   = hookmapv1.ReconcileMode_RECONCILE_MODE_DRY_RUN
	wipe     = hookmapv1.ReconcileMode_RECONCILE_MODE_DELETE_ORPHANS
)

// world is hookmap with the shopify connector, the app's client secret set for the
// workspace, a fake shop and a connection to it.
type world struct {
	h    *apptest.Harness
	shop *fakeShop
	conn *hookmapv1.Connection
}

func start(t *testing.T) *world {
	h := apptest.Start(t, apptest.WithConnectors(".."), apptest.WithAllowPrivate())
	shop := newFakeShop(t)
	h.SetConnectorParameters("shopify", map[string]any{"clientSecret": shop.clientSecret})
	w := &world{h: h, shop: shop}
	w.conn = w.connect(t, map[string]any{"accessToken": shop.token})
	return w
}

func (w *world) connect(t *testing.T, credentials map[string]any) *hookmapv1.Connection {
	conn, err := w.h.Connections.CreateConnection(w.h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "shopify", Name: "acme store",
		Parameters:  apptest.Struct(t, map[string]any{"shop": "acme-store", "baseUri": w.shop.baseURI()}),
		Credentials: apptest.Struct(t, credentials),
	})
	require.NoError(t, err)
	return conn
}

func (w *world) subscribe(t *testing.T, conn *hookmapv1.Connection, requestID string, params map[string]any) (*hookmapv1.Subscription, error) {
	return w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: "webhook", RequestId: requestID, Parameters: apptest.Struct(t, params),
	})
}

func (w *world) stream(t *testing.T, sub *hookmapv1.Subscription) *apptest.Stream {
	return w.h.OpenStream(&hookmapv1.StreamEventsRequest{
		Consumer: "c-" + sub.GetId(),
		Filter:   &hookmapv1.EventFilter{SubscriptionIds: []string{sub.GetId()}},
	})
}

const orderBody = `{"id":5678901234567,"admin_graphql_api_id":"gid://shopify/Order/5678901234567",` +
	`"email":"jon@example.com","created_at":"2025-07-01T10:00:00-04:00","currency":"USD",` +
	`"total_price":"199.00","line_items":[{"id":466157049,"title":"IPod Nano - 8gb","quantity":1,"price":"199.00"}]}`

func TestSubscribeCreatesWebhookAndDeliveriesBecomeEvents(t *testing.T) {
	w := start(t)
	sub, err := w.subscribe(t, w.conn, "", map[string]any{"topic": "orders/create"})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus())

	// Looked up by address and topic, then created with the body Shopify expects.
	hooks := w.shop.webhooks()
	require.Len(t, hooks, 1)
	require.Equal(t, sub.GetWebhookUri(), hooks[0].Address)
	require.Equal(t, "orders/create", hooks[0].Topic)
	require.Equal(t, "json", hooks[0].Format)
	require.Equal(t, []map[string]any{{"webhook": map[string]any{
		"topic": "orders/create", "address": sub.GetWebhookUri(), "format": "json",
	}}}, w.shop.creates)
	require.Equal(t, 1, w.shop.count("GET /admin/api/2025-07/webhooks.json?"))
	require.Equal(t, 1, w.shop.count("POST /admin/api/2025-07/webhooks.json"))

	stream := w.stream(t, sub)
	r := w.shop.send(sub.GetWebhookUri(), delivery{
		Topic: "orders/create", WebhookID: "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", EventID: "98880550-7158-44d4-b7cd-2c97c8a091b5",
		Body: orderBody,
	})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	ev := stream.Next(1)[0]
	require.Equal(t, "orders/create", ev.GetType())
	require.Equal(t, "webhook", ev.GetEventKey())
	require.Equal(t, w.conn.GetId(), ev.GetConnectionId())
	require.Equal(t, "98880550-7158-44d4-b7cd-2c97c8a091b5", ev.GetExternalId())
	rec := ev.GetRecord().GetStructValue().AsMap()
	require.Equal(t, float64(5678901234567), rec["id"])
	require.Equal(t, "jon@example.com", rec["email"])
	require.Equal(t, "199.00", rec["total_price"])
	require.Len(t, rec["line_items"], 1)

	// Shopify retries with the same headers: stored once. The next, new
	// delivery is the next event on the stream.
	r = w.shop.send(sub.GetWebhookUri(), delivery{
		Topic: "orders/create", WebhookID: "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", EventID: "98880550-7158-44d4-b7cd-2c97c8a091b5",
		Body: orderBody,
	})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	require.JSONEq(t, `{"received":0}`, r.Body)
	// The same event sent again as a new delivery (another X-Shopify-Webhook-Id): stored once.
	r = w.shop.send(sub.GetWebhookUri(), delivery{
		Topic: "orders/create", WebhookID: "6c1f0f0e-0a4e-4b8e-9d55-1b7f6a1e2c3d", EventID: "98880550-7158-44d4-b7cd-2c97c8a091b5",
		Body: orderBody,
	})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	require.JSONEq(t, `{"received":0}`, r.Body)
	r = w.shop.send(sub.GetWebhookUri(), delivery{
		Topic: "orders/create", WebhookID: "0b2d3c7e-5a8f-4e0c-9d7e-2f6a1b3c4d5e", EventID: "e2",
		Body: `{"id":5678901234568,"email":"ann@example.com"}`,
	})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	ev2 := stream.Next(1)[0]
	require.Equal(t, "e2", ev2.GetExternalId())
	require.Equal(t, "ann@example.com", ev2.GetRecord().GetStructValue().AsMap()["email"])

	// Without X-Shopify-Event-Id, X-Shopify-Webhook-Id identifies the delivery.
	for range 2 {
		r = w.shop.send(sub.GetWebhookUri(), delivery{Topic: "orders/create", WebhookID: "w-9", Body: `{"id":5678901234569}`})
		require.Equal(t, http.StatusOK, r.Status, r.Body)
	}
	require.Equal(t, "w-9", stream.Next(1)[0].GetExternalId())

	list, err := w.h.Events.ListEvents(w.h.Ctx(), &hookmapv1.ListEventsRequest{
		Filter: &hookmapv1.EventFilter{SubscriptionIds: []string{sub.GetId()}}, PageSize: 10,
	})
	require.NoError(t, err)
	require.Len(t, list.GetEvents(), 3, "re-deliveries were not stored again")
}

func TestBadSignaturesAreRefused(t *testing.T) {
	w := start(t)
	sub, err := w.subscribe(t, w.conn, "", map[string]any{"topic": "orders/paid"})
	require.NoError(t, err)
	stream := w.stream(t, sub)

	// Signed with another app's secret.
	r := w.shop.send(sub.GetWebhookUri(), delivery{Topic: "orders/paid", WebhookID: "w-bad-1", Body: orderBody, Secret: "another-app-secret"})
	require.Equal(t, http.StatusUnauthorized, r.Status, r.Body)
	// A valid signature of another body (the body was altered on the way).
	r = w.shop.send(sub.GetWebhookUri(), delivery{
		Topic: "orders/paid", WebhookID: "w-bad-2", Body: orderBody,
		Signature: w.shop.sign(`{"id":1}`),
	})
	require.Equal(t, http.StatusUnauthorized, r.Status, r.Body)
	// Hex instead of base64 (what a wrong implementation would send).
	r = w.shop.send(sub.GetWebhookUri(), delivery{Topic: "orders/paid", WebhookID: "w-bad-3", Body: orderBody, Signature: hex.EncodeToString([]byte("nope"))})
	require.Equal(t, http.StatusUnauthorized, r.Status, r.Body)
	// No signature at all.
	resp := w.h.PostJSON(sub.GetWebhookUri(), orderBody, "X-Shopify-Topic", "orders/paid", "X-Shopify-Webhook-Id", "w-bad-4")
	require.Equal(t, http.StatusUnauthorized, resp.Status, string(resp.Body))

	// None of them became an event: the first event is the good delivery sent after them.
	r = w.shop.send(sub.GetWebhookUri(), delivery{Topic: "orders/paid", WebhookID: "w-good", Body: orderBody})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	ev := stream.Next(1)[0]
	require.Equal(t, "w-good", ev.GetExternalId())
	require.Equal(t, "orders/paid", ev.GetType())

	deliveries, err := w.h.Events.ListDeliveries(w.h.Ctx(), &hookmapv1.ListDeliveriesRequest{SubscriptionId: sub.GetId(), PageSize: 20})
	require.NoError(t, err)
	rejected := 0
	for _, d := range deliveries.GetDeliveries() {
		if d.GetOutcome() == hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_REJECTED {
			rejected++
			require.Zero(t, d.GetEventCount())
		}
	}
	require.Equal(t, 4, rejected)
}

func TestConnectionClientSecretOverridesTheWorkspaces(t *testing.T) {
	w := start(t)
	custom := w.connect(t, map[string]any{"accessToken": w.shop.token, "clientSecret": "custom-app-secret"})
	sub, err := w.subscribe(t, custom, "", map[string]any{"topic": "products/update", "fields": []any{"id", "title", "updated_at"}})
	require.NoError(t, err)
	require.Equal(t, []string{"id", "title", "updated_at"}, w.shop.webhooks()[0].Fields)
	require.Equal(t, []any{"id", "title", "updated_at"}, w.shop.creates[0]["webhook"].(map[string]any)["fields"])
	stream := w.stream(t, sub)

	body := `{"id":632910392,"title":"IPod Nano - 8GB","updated_at":"2025-07-01T10:00:00-04:00"}`
	r := w.shop.send(sub.GetWebhookUri(), delivery{Topic: "products/update", WebhookID: "p-1", Body: body})
	require.Equal(t, http.StatusUnauthorized, r.Status, "the workspace's secret is not this connection's")
	r = w.shop.send(sub.GetWebhookUri(), delivery{Topic: "products/update", WebhookID: "p-2", Body: body, Secret: "custom-app-secret"})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	ev := stream.Next(1)[0]
	require.Equal(t, "p-2", ev.GetExternalId())
	require.Equal(t, "products/update", ev.GetType())
	require.Equal(t, "IPod Nano - 8GB", ev.GetRecord().GetStructValue().AsMap()["title"])
}

func TestRetriedCreateSubscriptionCreatesOneWebhook(t *testing.T) {
	w := start(t)
	// Shopify stores the webhook but the answer is lost.
	w.shop.set(func() { w.shop.dropCreate = true })
	_, err := w.subscribe(t, w.conn, "req-7", map[string]any{"topic": "orders/create"})
	require.Error(t, err)
	require.Len(t, w.shop.webhooks(), 1)

	// The retry with the same request id finds the webhook instead of creating another
	// (which Shopify would refuse with 422 "for this topic has already been taken").
	sub, err := w.subscribe(t, w.conn, "req-7", map[string]any{"topic": "orders/create"})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus())
	hooks := w.shop.webhooks()
	require.Len(t, hooks, 1)
	require.Equal(t, sub.GetWebhookUri(), hooks[0].Address)
	require.Equal(t, 1, w.shop.count("POST "))

	// Again: the same subscription, nothing new in the shop.
	again, err := w.subscribe(t, w.conn, "req-7", map[string]any{"topic": "orders/create"})
	require.NoError(t, err)
	require.Equal(t, sub.GetId(), again.GetId())
	require.Equal(t, 1, w.shop.count("POST "))
	require.Len(t, w.shop.webhooks(), 1)

	// The stored webhook id is the found one: unsubscribe deletes it.
	_, err = w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Empty(t, w.shop.webhooks())
	require.Equal(t, 1, w.shop.count(fmt.Sprintf("DELETE /admin/api/2025-07/webhooks/%d.json", hooks[0].ID)))
}

func TestDeleteSubscriptionRemovesWebhook(t *testing.T) {
	w := start(t)
	keep, err := w.subscribe(t, w.conn, "", map[string]any{"topic": "customers/create"})
	require.NoError(t, err)
	sub, err := w.subscribe(t, w.conn, "", map[string]any{"topic": "app/uninstalled"})
	require.NoError(t, err)
	require.Len(t, w.shop.webhooks(), 2)
	id := w.shop.webhooks()[1].ID

	_, err = w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	hooks := w.shop.webhooks()
	require.Len(t, hooks, 1)
	require.Equal(t, keep.GetWebhookUri(), hooks[0].Address)
	require.Equal(t, 1, w.shop.count(fmt.Sprintf("DELETE /admin/api/2025-07/webhooks/%d.json", id)))
	_, err = w.h.Subscriptions.GetSubscription(w.h.Ctx(), &hookmapv1.GetSubscriptionRequest{Id: sub.GetId()})
	apptest.RequireCode(t, err, codes.NotFound, "")

	// Deleted in the shop by someone else: Shopify answers 404, which counts as gone.
	w.shop.set(func() { delete(w.shop.hooks, hooks[0].ID) })
	_, err = w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: keep.GetId()})
	require.NoError(t, err)
	_, err = w.h.Subscriptions.GetSubscription(w.h.Ctx(), &hookmapv1.GetSubscriptionRequest{Id: keep.GetId()})
	apptest.RequireCode(t, err, codes.NotFound, "")
}

func TestShopifyErrorsFailTheSubscription(t *testing.T) {
	w := start(t)
	// A wrong access token: Shopify's 401 reaches the caller.
	bad := w.connect(t, map[string]any{"accessToken": "shpat_revoked"})
	_, err := w.subscribe(t, bad, "", map[string]any{"topic": "orders/create"})
	apptest.RequireCode(t, err, codes.FailedPrecondition, "Invalid API key or access token")
	// A topic the shop does not know: Shopify's 422 names it.
	_, err = w.subscribe(t, w.conn, "", map[string]any{"topic": "orders/unknown"})
	apptest.RequireCode(t, err, codes.FailedPrecondition, "Invalid topic specified: orders/unknown")
	require.Empty(t, w.shop.webhooks())

	// Parameters are checked before any call.
	before := w.shop.count("")
	_, err = w.subscribe(t, w.conn, "", map[string]any{})
	apptest.RequireCode(t, err, codes.InvalidArgument, "topic")
	_, err = w.h.Connections.CreateConnection(w.h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "shopify", Name: "nowhere", Credentials: apptest.Struct(t, map[string]any{"accessToken": "x"}),
	})
	apptest.RequireCode(t, err, codes.InvalidArgument, "")
	_, err = w.h.Connections.CreateConnection(w.h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "shopify", Name: "bad shop", Parameters: apptest.Struct(t, map[string]any{"shop": "https://evil.example/x"}),
		Credentials: apptest.Struct(t, map[string]any{"accessToken": "x"}),
	})
	apptest.RequireCode(t, err, codes.InvalidArgument, "shop")
	require.Equal(t, before, w.shop.count(""))
}

func TestReconcileAcrossPages(t *testing.T) {
	w := start(t)
	sub, err := w.subscribe(t, w.conn, "", map[string]any{"topic": "orders/create"})
	require.NoError(t, err)
	ownedID := w.shop.webhooks()[0].ID
	orphanID := w.shop.add(w.h.BaseURL+"/hooks/"+apptest.RandomID(t), "orders/updated")
	foreignID := w.shop.add("https://erp.example.com/shopify/orders", "orders/create")
	foreign2ID := w.shop.add("https://zapier.example/hooks/catch/1/", "products/create")
	before := w.shop.webhooks()
	require.Len(t, before, 4) // two pages of two

	reconcile := func(mode hookmapv1.ReconcileMode) *hookmapv1.ReconcileWebhooksResponse {
		resp, err := w.h.Subscriptions.ReconcileWebhooks(w.h.Ctx(), &hookmapv1.ReconcileWebhooksRequest{
			ConnectionId: w.conn.GetId(), EventKey: "webhook", Mode: mode,
			Parameters: apptest.Struct(t, map[string]any{"topic": "orders/create"}),
		})
		require.NoError(t, err)
		return resp
	}
	classes := func(resp *hookmapv1.ReconcileWebhooksResponse) map[string]hookmapv1.WebhookClassification {
		out := map[string]hookmapv1.WebhookClassification{}
		for _, wh := range resp.GetWebhooks() {
			out[wh.GetId()] = wh.GetClassification()
		}
		return out
	}
	id := func(n int64) string { return fmt.Sprint(n) }

	lists := w.shop.count("GET ")
	resp := reconcile(dryRun)
	require.Equal(t, map[string]hookmapv1.WebhookClassification{
		id(ownedID): owned, id(orphanID): orphaned, id(foreignID): foreign, id(foreign2ID): foreign,
	}, classes(resp))
	for _, wh := range resp.GetWebhooks() {
		require.False(t, wh.GetDeleted())
		if wh.GetId() == id(ownedID) {
			require.Equal(t, sub.GetWebhookUri(), wh.GetUrl())
		}
	}
	require.Equal(t, 2, w.shop.count("GET ")-lists, "both pages were read")
	require.Equal(t, 1, w.shop.count("GET /admin/api/2025-07/webhooks.json?limit=250&page_info="), "the second page through the Link header")
	require.Equal(t, before, w.shop.webhooks(), "a dry run changes nothing")
	require.Zero(t, w.shop.count("DELETE "))

	resp = reconcile(wipe)
	require.Equal(t, orphaned, classes(resp)[id(orphanID)])
	for _, wh := range resp.GetWebhooks() {
		require.Equal(t, wh.GetId() == id(orphanID), wh.GetDeleted(), wh.GetId())
		require.Empty(t, wh.GetError())
	}
	require.Equal(t, 1, w.shop.count("DELETE "))
	require.Equal(t, 1, w.shop.count(fmt.Sprintf("DELETE /admin/api/2025-07/webhooks/%d.json", orphanID)))
	var left []int64
	for _, h := range w.shop.webhooks() {
		left = append(left, h.ID)
	}
	require.Equal(t, []int64{ownedID, foreignID, foreign2ID}, left)
	require.True(t, strings.HasPrefix(sub.GetWebhookUri(), w.h.BaseURL+"/hooks/"))

	// The shop-wide reconcile needs no parameter (listParametersSchema): the subscription
	// of every topic is checked for MISSING, while a topic narrows it.
	orders, err := w.subscribe(t, w.conn, "", map[string]any{"topic": "orders/paid"})
	require.NoError(t, err)
	w.shop.set(func() { // deleted in Shopify by someone
		for id, h := range w.shop.hooks {
			if h.Address == orders.GetWebhookUri() {
				delete(w.shop.hooks, id)
			}
		}
	})
	all, err := w.h.Subscriptions.ReconcileWebhooks(w.h.Ctx(), &hookmapv1.ReconcileWebhooksRequest{
		ConnectionId: w.conn.GetId(), EventKey: "webhook", Mode: dryRun,
	})
	require.NoError(t, err)
	require.Equal(t, map[string]hookmapv1.WebhookClassification{
		id(ownedID): owned, id(foreignID): foreign, id(foreign2ID): foreign, "missing:" + orders.GetId(): hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_MISSING,
	}, missingKeyed(all))
	require.EqualValues(t, 1, reconcile(dryRun).GetOwned())
	require.Zero(t, reconcile(dryRun).GetMissing(), "topic orders/create narrows MISSING to its subscriptions")
	_, err = w.h.Subscriptions.ReconcileWebhooks(w.h.Ctx(), &hookmapv1.ReconcileWebhooksRequest{
		ConnectionId: w.conn.GetId(), EventKey: "webhook", Mode: dryRun, Parameters: apptest.Struct(t, map[string]any{"topic": "Orders Create"}),
	})
	apptest.RequireCode(t, err, codes.InvalidArgument, "parameters do not match the event's listParametersSchema")
}

// missingKeyed is each webhook's classification by id, "missing:<subscription>" for MISSING.
func missingKeyed(resp *hookmapv1.ReconcileWebhooksResponse) map[string]hookmapv1.WebhookClassification {
	out := map[string]hookmapv1.WebhookClassification{}
	for _, wh := range resp.GetWebhooks() {
		key := wh.GetId()
		if key == "" {
			key = "missing:" + wh.GetSubscriptionId()
		}
		out[key] = wh.GetClassification()
	}
	return out
}

// The API base is built from shop and apiVersion unless baseUri replaces it.
func TestAPIBaseFromShopAndVersion(t *testing.T) {
	c := apptest.LoadConnector(t, ".") // this connector's folder alone
	unsubscribe := c.Events["webhook"].Methods["unsubscribe"]
	for _, tc := range []struct {
		params map[string]any
		want   string
	}{
		{map[string]any{"shop": "acme"}, "https://acme.myshopify.com/admin/api/2025-07/webhooks/1047897601.json"},
		{map[string]any{"shop": "acme.myshopify.com", "apiVersion": "2025-10"}, "https://acme.myshopify.com/admin/api/2025-10/webhooks/1047897601.json"},
		{map[string]any{"shop": "acme", "baseUri": "https://proxy.example/admin/api/2025-07"}, "https://proxy.example/admin/api/2025-07/webhooks/1047897601.json"},
	} {
		rec := &apptest.Recorder{Body: `{}`}
		_, err := unsubscribe.Run(context.Background(), map[string]any{
			"connection":  map[string]any{"id": "c1", "parameters": tc.params},
			"credentials": map[string]any{"accessToken": "shpat_abc"},
			"state":       map[string]any{"webhookId": int64(1047897601), "topic": "orders/create"},
			"parameters":  map[string]any{"topic": "orders/create"},
		}, engine.RunOptions{HTTP: rec})
		require.NoError(t, err)
		require.Len(t, rec.Requests, 1)
		require.Equal(t, http.MethodDelete, rec.Requests[0].Method)
		require.Equal(t, tc.want, rec.Requests[0].URL.String())
		require.Equal(t, "shpat_abc", rec.Requests[0].Header.Get("X-Shopify-Access-Token"))
	}
}
