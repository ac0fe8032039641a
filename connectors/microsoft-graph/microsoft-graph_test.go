package microsoftgraph_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

const (
	eventKey  = "changes"
	inbox     = "/me/mailFolders('Inbox')/messages"
	lifetime  = 4230 * time.Minute // the default expirationMinutes
	refreshAt = lifetime / 10      // renewed when 10 % of the lifetime is left
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

type world struct {
	h     *apptest.Harness
	graph *fakeGraph
	clk   *clock
	conn  *hookmapv1.Connection
}

// start runs hookmap with the bundled connectors, a controllable clock and no background
// scheduler, and a connection to a fake Graph.
func start(t *testing.T) *world {
	t.Helper()
	clk := &clock{t: time.Now().UTC()}
	h := apptest.Start(t, apptest.WithConnectors(".."), apptest.WithAllowPrivate(),
		apptest.WithClock(clk.Now), apptest.WithoutScheduler())
	g := newFakeGraph(t)
	g.now = clk.Now
	conn, err := h.Connections.CreateConnection(h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "microsoft-graph", Name: "contoso",
		Parameters:  apptest.Struct(t, map[string]any{"baseUri": g.baseURI()}),
		Credentials: apptest.Struct(t, map[string]any{"accessToken": g.token}),
	})
	require.NoError(t, err)
	return &world{h: h, graph: g, clk: clk, conn: conn}
}

func (w *world) subscribe(t *testing.T, requestID string, params map[string]any) (*hookmapv1.Subscription, error) {
	t.Helper()
	if params == nil {
		params = map[string]any{"resource": inbox}
	}
	return w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: w.conn.GetId(), EventKey: eventKey, RequestId: requestID, Parameters: apptest.Struct(t, params),
	})
}

// graphSubFor is the fake's subscription whose notificationUrl is the hookmap
// subscription's webhook_uri.
func (w *world) graphSubFor(t *testing.T, sub *hookmapv1.Subscription) *graphSub {
	t.Helper()
	var found *graphSub
	for _, s := range w.graph.all() {
		if s.NotificationURL == sub.GetWebhookUri() {
			require.Nil(t, found, "two Graph subscriptions for %s", sub.GetWebhookUri())
			found = s
		}
	}
	require.NotNil(t, found, "no Graph subscription for %s", sub.GetWebhookUri())
	return found
}

func (w *world) state(t *testing.T, id string) map[string]any {
	t.Helper()
	return w.h.SubscriptionState(id)
}

func record(e *hookmapv1.Event) map[string]any {
	return e.GetRecord().GetStructValue().AsMap()
}

func parseTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err, s)
	return tm
}

func TestSubscribeCreatesGraphSubscriptionAfterHandshake(t *testing.T) {
	w := start(t)
	before := w.clk.Now() // the methods' now is hookmap's clock, fixed unless advanced
	sub, err := w.subscribe(t, "", nil)
	require.NoError(t, err)
	after := w.clk.Now()
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())

	// Look up, then create.
	require.Equal(t, []string{"GET /v1.0/subscriptions", "POST /v1.0/subscriptions"}, w.graph.callLog())
	posts, _, validated := w.graph.recorded()
	require.Len(t, posts, 1)
	body := posts[0]
	require.Equal(t, "created,updated,deleted", body["changeType"])
	require.Equal(t, sub.GetWebhookUri(), body["notificationUrl"])
	require.Equal(t, inbox, body["resource"])
	require.Equal(t, "v1_2", body["latestSupportedTlsVersion"])
	require.NotContains(t, body, "lifecycleNotificationUrl")
	clientState, _ := body["clientState"].(string)
	require.GreaterOrEqual(t, len(clientState), 16, "a random clientState")
	require.LessOrEqual(t, len(clientState), 128)
	exp := parseTime(t, body["expirationDateTime"].(string))
	requireBetween(t, exp, before.Add(lifetime), after.Add(lifetime))

	// Graph validated the URL during the create: the token came back decoded, as text/plain.
	require.Len(t, validated, 1)
	require.Equal(t, sub.GetWebhookUri(), validated[0].URL)

	// State and the renewal time: 10 % of the lifetime before expiry.
	gs := w.graphSubFor(t, sub)
	st := w.state(t, sub.GetId())
	require.Equal(t, gs.ID, st["subscriptionId"])
	require.Equal(t, clientState, st["clientState"])
	require.WithinDuration(t, parseTime(t, gs.ExpirationDateTime).Add(-refreshAt), sub.GetNextRefreshTime().AsTime(), time.Second)
}

func TestSubscribeParameters(t *testing.T) {
	w := start(t)
	before := w.clk.Now() // the methods' now is hookmap's clock, fixed unless advanced
	sub, err := w.subscribe(t, "", map[string]any{
		"resource": "/users", "changeType": "updated,deleted", "expirationMinutes": 60, "lifecycleNotifications": true,
	})
	require.NoError(t, err)
	after := w.clk.Now()
	posts, _, validated := w.graph.recorded()
	body := posts[0]
	require.Equal(t, "updated,deleted", body["changeType"])
	require.Equal(t, "/users", body["resource"])
	require.Equal(t, sub.GetWebhookUri(), body["lifecycleNotificationUrl"])
	requireBetween(t, parseTime(t, body["expirationDateTime"].(string)), before.Add(time.Hour), after.Add(time.Hour))
	require.Len(t, validated, 2, "both notification URLs are validated")
	gs := w.graphSubFor(t, sub)
	require.WithinDuration(t, parseTime(t, gs.ExpirationDateTime).Add(-6*time.Minute), sub.GetNextRefreshTime().AsTime(), time.Second)

	// Parameters are checked before Graph is called.
	calls := len(w.graph.callLog())
	_, err = w.subscribe(t, "", map[string]any{"resource": "/users", "changeType": "created,renamed"})
	apptest.RequireCode(t, err, codes.InvalidArgument, "changeType")
	_, err = w.subscribe(t, "", map[string]any{"changeType": "created"})
	apptest.RequireCode(t, err, codes.InvalidArgument, "resource")
	require.Len(t, w.graph.callLog(), calls)

	// Graph refuses a lifetime longer than the resource allows; the answer is reported.
	_, err = w.subscribe(t, "", map[string]any{"resource": inbox, "expirationMinutes": 20000})
	apptest.RequireCode(t, err, codes.FailedPrecondition, "Subscription expiration can only be 10080 minutes in the future")
}

func TestFakeGraphRequiresTheHandshake(t *testing.T) {
	// The fake's create fails when the notification URL does not echo the token as
	// text/plain, as Graph's does: the handshake assertions above can fail.
	g := newFakeGraph(t)
	for _, answer := range []func(http.ResponseWriter, *http.Request){
		func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`"` + r.URL.Query().Get("validationToken") + `"`))
		},
		func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte(url.QueryEscape(r.URL.Query().Get("validationToken"))))
		},
		func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) },
	} {
		endpoint := newEndpoint(t, answer)
		resp := postJSON(t, g, `{"changeType":"created","notificationUrl":"`+endpoint+`","resource":"/users","expirationDateTime":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`","clientState":"s"}`)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	}
	require.Empty(t, g.all())
	ok := newEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(r.URL.Query().Get("validationToken")))
	})
	resp := postJSON(t, g, `{"changeType":"created","notificationUrl":"`+ok+`","resource":"/users","expirationDateTime":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`","clientState":"s"}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Len(t, g.all(), 1)
}

func TestBadTokenIsRefused(t *testing.T) {
	w := start(t)
	w.graph.set(func() { w.graph.token = "rotated" })
	_, err := w.subscribe(t, "", nil)
	st := apptest.RequireCode(t, err, codes.FailedPrecondition, "InvalidAuthenticationToken")
	require.Contains(t, st.Message(), "401")
	require.Empty(t, w.graph.all())
	require.Zero(t, w.graph.count("POST"))
}

func TestNotificationsBecomeEvents(t *testing.T) {
	w := start(t)
	sub, err := w.subscribe(t, "", nil)
	require.NoError(t, err)
	gs := w.graphSubFor(t, sub)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "mail"})

	// A batch of three notifications: three events, answered 202 Accepted.
	batch := []map[string]any{
		w.graph.notification(gs, "created", "AAMkAGm1", "CQAAABYAAAB1"),
		w.graph.notification(gs, "updated", "AAMkAGm1", "CQAAABYAAAB2"),
		w.graph.notification(gs, "deleted", "AAMkAGm2", "CQAAABYAAAC1"),
	}
	code, body := deliver(t, sub.GetWebhookUri(), batch...)
	require.Equal(t, http.StatusAccepted, code, body)
	evs := stream.Next(3)
	ids := map[string]bool{}
	for i, ev := range evs {
		require.Equal(t, batch[i]["changeType"], ev.GetType())
		require.Equal(t, sub.GetId(), ev.GetSubscriptionId())
		require.Equal(t, eventKey, ev.GetEventKey())
		rec := record(ev)
		require.Equal(t, gs.ID, rec["subscriptionId"])
		require.Equal(t, batch[i]["resource"], rec["resource"])
		require.Equal(t, w.graph.tenantID, rec["tenantId"])
		require.Equal(t, batch[i]["resourceData"], rec["resourceData"])
		require.NotContains(t, rec, "clientState", "the secret is not in the record")
		require.Len(t, ev.GetExternalId(), 64)
		ids[ev.GetExternalId()] = true
	}
	require.Len(t, ids, 3, "each notification has its own id")

	// Graph re-delivers the same batch (our answer was lost): nothing new is stored.
	code, body = deliver(t, sub.GetWebhookUri(), batch...)
	require.Equal(t, http.StatusAccepted, code, body)
	// A wrong clientState is refused and stored nowhere, even next to a good notification.
	forged := w.graph.notification(gs, "created", "AAMkAGm9", "CQAAABYAAAD1")
	forged["clientState"] = "guess"
	code, _ = deliver(t, sub.GetWebhookUri(), forged)
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = deliver(t, sub.GetWebhookUri(), w.graph.notification(gs, "created", "AAMkAGm8", "CQAAABYAAAE1"), forged)
	require.Equal(t, http.StatusUnauthorized, code)
	missing := w.graph.notification(gs, "created", "AAMkAGm7", "CQAAABYAAAF1")
	delete(missing, "clientState")
	code, _ = deliver(t, sub.GetWebhookUri(), missing)
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = deliver(t, sub.GetWebhookUri())
	require.Equal(t, http.StatusUnauthorized, code, "an empty collection carries no clientState")

	// The next event on the stream is the next genuine notification: nothing in between.
	next := w.graph.notification(gs, "updated", "AAMkAGm2", "CQAAABYAAAC2")
	code, _ = deliver(t, sub.GetWebhookUri(), next)
	require.Equal(t, http.StatusAccepted, code)
	ev := stream.Next(1)[0]
	require.Equal(t, "updated", ev.GetType())
	require.Equal(t, "AAMkAGm2", record(ev)["resourceData"].(map[string]any)["id"])
	require.False(t, ids[ev.GetExternalId()])

	list, err := w.h.Events.ListEvents(w.h.Ctx(), &hookmapv1.ListEventsRequest{PageSize: 100})
	require.NoError(t, err)
	require.Len(t, list.GetEvents(), 4)
	dl, err := w.h.Events.ListDeliveries(w.h.Ctx(), &hookmapv1.ListDeliveriesRequest{SubscriptionId: sub.GetId(), PageSize: 100})
	require.NoError(t, err)
	outcomes := map[hookmapv1.DeliveryOutcome]int{}
	for _, d := range dl.GetDeliveries() {
		outcomes[d.GetOutcome()]++
	}
	require.Equal(t, 1, outcomes[hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_DUPLICATE])
	require.Equal(t, 4, outcomes[hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_REJECTED])
}

func TestNotificationsWithoutEtagAreNeverDropped(t *testing.T) {
	w := start(t)
	sub, err := w.subscribe(t, "", map[string]any{"resource": "/users", "changeType": "updated,deleted"})
	require.NoError(t, err)
	gs := w.graphSubFor(t, sub)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "dir"})

	// Directory notifications name the user but no version: two updates of the same user
	// look alike, and both are events.
	user := func() map[string]any {
		return map[string]any{
			"subscriptionId": gs.ID, "subscriptionExpirationDateTime": gs.ExpirationDateTime,
			"changeType": "updated", "clientState": *gs.ClientState, "tenantId": w.graph.tenantID,
			"resource": "Users/6e14ba0f-0d32-4e0a-8c1b-5a3f2b4c7d8e",
			"resourceData": map[string]any{
				"@odata.type": "#Microsoft.Graph.User", "@odata.id": "Users/6e14ba0f-0d32-4e0a-8c1b-5a3f2b4c7d8e",
				"id": "6e14ba0f-0d32-4e0a-8c1b-5a3f2b4c7d8e", "organizationId": w.graph.tenantID,
			},
		}
	}
	for range 2 {
		code, body := deliver(t, sub.GetWebhookUri(), user())
		require.Equal(t, http.StatusAccepted, code, body)
	}
	evs := stream.Next(2)
	for _, ev := range evs {
		require.Equal(t, "updated", ev.GetType())
		require.Empty(t, ev.GetExternalId())
		require.Equal(t, "6e14ba0f-0d32-4e0a-8c1b-5a3f2b4c7d8e", record(ev)["resourceData"].(map[string]any)["id"])
	}

	// A message notification re-delivered after the subscription was renewed (a new
	// subscriptionExpirationDateTime) is the same change: stored once.
	mail := w.graph.notification(gs, "created", "AAMkAGm1", "CQAAABYAAAB1")
	code, _ := deliver(t, sub.GetWebhookUri(), mail)
	require.Equal(t, http.StatusAccepted, code)
	first := stream.Next(1)[0]
	require.Len(t, first.GetExternalId(), 64)
	renewed := w.graph.notification(gs, "created", "AAMkAGm1", "CQAAABYAAAB1")
	renewed["subscriptionExpirationDateTime"] = time.Now().Add(70 * time.Hour).UTC().Format(time.RFC3339)
	code, _ = deliver(t, sub.GetWebhookUri(), renewed)
	require.Equal(t, http.StatusAccepted, code)
	next := w.graph.notification(gs, "updated", "AAMkAGm1", "CQAAABYAAAB2")
	code, _ = deliver(t, sub.GetWebhookUri(), next)
	require.Equal(t, http.StatusAccepted, code)
	ev := stream.Next(1)[0]
	require.Equal(t, "updated", ev.GetType(), "the re-delivery was not stored")
	require.NotEqual(t, first.GetExternalId(), ev.GetExternalId())
}

func TestValidationRequestIsEchoed(t *testing.T) {
	w := start(t)
	sub, err := w.subscribe(t, "", nil)
	require.NoError(t, err)
	token := "Validation: Testing client application reachability for subscription Request-Id: 8b6e3f0a-1c2d"
	r := w.h.Do(http.MethodPost, sub.GetWebhookUri()+"?validationToken="+url.QueryEscape(token), nil, "Content-Type", "text/plain; charset=utf-8")
	require.Equal(t, http.StatusOK, r.Status)
	require.True(t, strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain"), r.Header.Get("Content-Type"))
	require.Equal(t, token, string(r.Body))
	list, err := w.h.Events.ListEvents(w.h.Ctx(), &hookmapv1.ListEventsRequest{PageSize: 10})
	require.NoError(t, err)
	require.Empty(t, list.GetEvents())
}

func TestLifecycleNotifications(t *testing.T) {
	w := start(t)
	sub, err := w.subscribe(t, "", map[string]any{"resource": inbox, "lifecycleNotifications": true})
	require.NoError(t, err)
	gs := w.graphSubFor(t, sub)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "lc"})
	code, body := deliver(t, sub.GetWebhookUri(), w.graph.lifecycle(gs, "reauthorizationRequired"), w.graph.lifecycle(gs, "missed"))
	require.Equal(t, http.StatusAccepted, code, body)
	evs := stream.Next(2)
	require.Equal(t, "lifecycle.reauthorizationRequired", evs[0].GetType())
	require.Equal(t, "lifecycle.missed", evs[1].GetType())
	require.Equal(t, gs.ID, record(evs[0])["subscriptionId"])
	require.NotContains(t, record(evs[0]), "clientState")
}

func TestRetriedCreateMakesOneGraphSubscription(t *testing.T) {
	w := start(t)
	// The same request_id twice: the ACTIVE subscription is returned, Graph is not called.
	a, err := w.subscribe(t, "req-1", nil)
	require.NoError(t, err)
	b, err := w.subscribe(t, "req-1", nil)
	require.NoError(t, err)
	require.Equal(t, a.GetId(), b.GetId())
	require.Equal(t, 1, w.graph.count("POST /v1.0/subscriptions"))

	// Graph creates the subscription but its answer is lost: the retry finds it by URL.
	w.graph.set(func() { w.graph.loseNext = true })
	_, err = w.subscribe(t, "req-2", nil)
	require.Error(t, err)
	require.Len(t, w.graph.all(), 2)
	sub, err := w.subscribe(t, "req-2", nil)
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus())
	require.Len(t, w.graph.all(), 2, "no second Graph subscription")
	require.Equal(t, 2, w.graph.count("POST /v1.0/subscriptions"))
	gs := w.graphSubFor(t, sub)
	require.Equal(t, gs.ID, w.state(t, sub.GetId())["subscriptionId"])

	// Notifications carry the clientState of the first attempt, and they are accepted.
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c", Filter: &hookmapv1.EventFilter{SubscriptionIds: []string{sub.GetId()}}})
	code, body := deliver(t, sub.GetWebhookUri(), w.graph.notification(gs, "created", "AAMkAGm1", "CQAAABYAAAB1"))
	require.Equal(t, http.StatusAccepted, code, body)
	require.Equal(t, "created", stream.Next(1)[0].GetType())
}

func TestLookupFollowsNextLink(t *testing.T) {
	w := start(t)
	for i := range 5 {
		w.graph.add("0000000"+string(rune('a'+i)), "https://elsewhere.example/notify/"+string(rune('a'+i)))
	}
	// A lost answer leaves a Graph subscription on the sixth position: three pages.
	w.graph.set(func() { w.graph.loseNext = true })
	_, err := w.subscribe(t, "req-3", nil)
	require.Error(t, err)
	gets := w.graph.count("GET /v1.0/subscriptions")
	sub, err := w.subscribe(t, "req-3", nil)
	require.NoError(t, err)
	require.Equal(t, 3, w.graph.count("GET /v1.0/subscriptions")-gets, "six subscriptions, two per page")
	require.Equal(t, 1, w.graph.count("POST"))
	require.Equal(t, w.graphSubFor(t, sub).ID, w.state(t, sub.GetId())["subscriptionId"])
}

func TestRefreshRenewsBeforeExpiry(t *testing.T) {
	w := start(t)
	sub, err := w.subscribe(t, "", nil)
	require.NoError(t, err)
	gs := w.graphSubFor(t, sub)
	core := w.h.App.Core()

	n, err := core.RunDueRefreshes(context.Background())
	require.NoError(t, err)
	require.Zero(t, n, "not due yet")
	require.Zero(t, w.graph.count("PATCH"))

	// Time passes to within 10 % of the lifetime: the subscription is about to expire.
	w.clk.Advance(lifetime - refreshAt + time.Minute)
	start := w.clk.Now() // the methods' now is hookmap's clock
	soon := start.Add(5 * time.Minute).UTC().Format(time.RFC3339)
	w.graph.set(func() { w.graph.subs[gs.ID].ExpirationDateTime = soon })
	n, err = core.RunDueRefreshes(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, 1, w.graph.count("PATCH /v1.0/subscriptions/"+gs.ID))
	_, patches, _ := w.graph.recorded()
	require.Len(t, patches, 1)
	require.Len(t, patches[0], 1, "only expirationDateTime is sent: %v", patches[0])
	exp := parseTime(t, patches[0]["expirationDateTime"].(string))
	require.True(t, exp.After(parseTime(t, soon)))
	require.WithinDuration(t, start.Add(lifetime), exp, 5*time.Second)
	renewed := parseTime(t, w.graph.get(gs.ID).ExpirationDateTime)
	require.Equal(t, exp, renewed)
	got, err := w.h.Subscriptions.GetSubscription(w.h.Ctx(), &hookmapv1.GetSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.WithinDuration(t, renewed.Add(-refreshAt), got.GetNextRefreshTime().AsTime(), time.Second)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, got.GetStatus())
	require.Equal(t, 1, w.graph.count("POST"), "renewed, not re-created")
	n, err = core.RunDueRefreshes(context.Background())
	require.NoError(t, err)
	require.Zero(t, n, "renewed until the next 90 % of the lifetime: not due again")

	// Graph removed the subscription (404 on renew): hookmap subscribes again, same URL.
	w.graph.set(func() { delete(w.graph.subs, gs.ID) })
	resp, err := w.h.Subscriptions.RefreshSubscription(w.h.Ctx(), &hookmapv1.RefreshSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.True(t, resp.GetHealed())
	again := w.graphSubFor(t, sub)
	require.NotEqual(t, gs.ID, again.ID)
	require.Equal(t, again.ID, w.state(t, sub.GetId())["subscriptionId"])
	_, _, validated := w.graph.recorded()
	require.Len(t, validated, 2, "the new Graph subscription was validated too")
}

func TestDeleteRemovesGraphSubscription(t *testing.T) {
	w := start(t)
	sub, err := w.subscribe(t, "", nil)
	require.NoError(t, err)
	gs := w.graphSubFor(t, sub)
	other, err := w.subscribe(t, "", map[string]any{"resource": "/users"})
	require.NoError(t, err)

	_, err = w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Equal(t, 1, w.graph.count("DELETE /v1.0/subscriptions/"+gs.ID))
	require.Nil(t, w.graph.get(gs.ID))
	require.Len(t, w.graph.all(), 1, "the other subscription stays")
	_, err = w.h.Subscriptions.GetSubscription(w.h.Ctx(), &hookmapv1.GetSubscriptionRequest{Id: sub.GetId()})
	apptest.RequireCode(t, err, codes.NotFound, sub.GetId())

	// Already gone in Graph (404): the subscription is deleted all the same.
	w.graph.set(func() { w.graph.subs = map[string]*graphSub{} })
	_, err = w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: other.GetId()})
	require.NoError(t, err)
	_, err = w.h.Subscriptions.GetSubscription(w.h.Ctx(), &hookmapv1.GetSubscriptionRequest{Id: other.GetId()})
	apptest.RequireCode(t, err, codes.NotFound, other.GetId())
}

func TestReconcileAcrossPages(t *testing.T) {
	w := start(t)
	sub, err := w.subscribe(t, "", nil)
	require.NoError(t, err)
	ownedID := w.graphSubFor(t, sub).ID
	// Graph lists every subscription of the app, whatever its resource: a live hookmap
	// subscription on another resource is owned too, never an orphan.
	users, err := w.subscribe(t, "", map[string]any{"resource": "/users"})
	require.NoError(t, err)
	usersID := w.graphSubFor(t, users).ID
	orphan := "00000000-0000-0000-0000-00000000000a"
	w.graph.add(orphan, w.h.BaseURL+"/hooks/"+apptest.RandomID(t))
	foreign := "ffffffff-0000-0000-0000-00000000000f"
	w.graph.add(foreign, "https://elsewhere.example/api/notify")

	reconcile := func(mode hookmapv1.ReconcileMode) *hookmapv1.ReconcileWebhooksResponse {
		resp, err := w.h.Subscriptions.ReconcileWebhooks(w.h.Ctx(), &hookmapv1.ReconcileWebhooksRequest{
			ConnectionId: w.conn.GetId(), EventKey: eventKey, Mode: mode,
			Parameters: apptest.Struct(t, map[string]any{"resource": inbox}),
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

	gets := w.graph.count("GET /v1.0/subscriptions")
	resp := reconcile(hookmapv1.ReconcileMode_RECONCILE_MODE_DRY_RUN)
	require.Equal(t, 2, w.graph.count("GET /v1.0/subscriptions")-gets, "four subscriptions, two per page")
	require.Equal(t, map[string]hookmapv1.WebhookClassification{
		ownedID: hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_OWNED,
		usersID: hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_OWNED,
		orphan:  hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_ORPHANED,
		foreign: hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_FOREIGN,
	}, classes(resp))
	require.Zero(t, resp.GetDeleted())
	require.Zero(t, w.graph.count("DELETE"))
	require.Len(t, w.graph.all(), 4, "a dry run changes nothing")

	resp = reconcile(hookmapv1.ReconcileMode_RECONCILE_MODE_DELETE_ORPHANS)
	require.Equal(t, int32(1), resp.GetDeleted())
	require.Zero(t, resp.GetFailed())
	require.Equal(t, 1, w.graph.count("DELETE"))
	require.Equal(t, 1, w.graph.count("DELETE /v1.0/subscriptions/"+orphan))
	require.Nil(t, w.graph.get(orphan))
	require.NotNil(t, w.graph.get(ownedID))
	require.NotNil(t, w.graph.get(usersID))
	require.NotNil(t, w.graph.get(foreign))
	for _, wh := range resp.GetWebhooks() {
		require.Equal(t, wh.GetId() == orphan, wh.GetDeleted(), wh.GetId())
	}
}

// newEndpoint is a notification endpoint answering with fn.
func newEndpoint(t *testing.T, fn http.HandlerFunc) string {
	s := httptestServer(t, fn)
	return s + "/notify"
}

func postJSON(t *testing.T, g *fakeGraph, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.baseURI()+"/subscriptions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+g.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp
}

// requireBetween checks lo <= got <= hi, with a second of slack for the format's rounding
// to whole seconds.
func requireBetween(t *testing.T, got, lo, hi time.Time) {
	t.Helper()
	require.False(t, got.Before(lo.Add(-time.Second)) || got.After(hi.Add(time.Second)), "%s not within [%s, %s]", got, lo, hi)
}
