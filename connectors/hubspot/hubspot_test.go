package hubspot_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

const (
	portalA = int64(62515)
	portalB = int64(7654321)
	portalC = int64(999001) // installed the app, but no connection here
	tokenA  = "CJSP5qf1KhICAQEYs-gDIIGOBii1hQIyGQAf3xBKmlwHjX7OIpuIFEavB2-qYAGQsF4"
	tokenB  = "CKHx6qf1KhICAQEYlO8FIJ3KCSiv9wEyGQDpQmHm8Q3d2vxwJDtyfI5Ha7qgRY4Pbn0"
)

type world struct {
	t    *testing.T
	h    *apptest.Harness
	fake *fakeHubSpot
	url  string // the global webhook URL: the app's target URL
}

// start runs hookmap with the bundled connectors, the app's client secret set, and a fake
// HubSpot where tokenA belongs to portalA and tokenB to portalB.
func start(t *testing.T) *world {
	h := apptest.Start(t, apptest.WithConnectors(".."), apptest.WithAllowPrivate())
	w := &world{t: t, h: h, fake: newFakeHubSpot(t, map[string]int64{tokenA: portalA, tokenB: portalB})}
	h.SetConnectorParameters("hubspot", map[string]any{"clientSecret": clientSecret})
	w.url = h.GlobalWebhookURL("hubspot", "webhooks")
	require.Regexp(t, `^`+h.BaseURL+`/hooks/g/[A-Za-z0-9_-]{20,}$`, w.url)
	return w
}

func (w *world) connection(token string, params map[string]any) *hookmapv1.Connection {
	w.t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	params["baseUri"] = w.fake.URL()
	conn, err := w.h.Connections.CreateConnection(w.h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "hubspot", Name: "portal of " + token[:8],
		Parameters:  apptest.Struct(w.t, params),
		Credentials: apptest.Struct(w.t, map[string]any{"accessToken": token}),
	})
	require.NoError(w.t, err)
	return conn
}

func (w *world) subscribe(conn *hookmapv1.Connection, params map[string]any) *hookmapv1.Subscription {
	w.t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	sub, err := w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: "crm", Parameters: apptest.Struct(w.t, params),
	})
	require.NoError(w.t, err)
	require.Equal(w.t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())
	return sub
}

func (w *world) deliveries(outcome hookmapv1.DeliveryOutcome) []*hookmapv1.Delivery {
	w.t.Helper()
	dl, err := w.h.Events.ListDeliveries(w.h.Ctx(), &hookmapv1.ListDeliveriesRequest{Outcome: outcome, PageSize: 100})
	require.NoError(w.t, err)
	return dl.GetDeliveries()
}

func (w *world) storedEvents() []*hookmapv1.Event {
	w.t.Helper()
	evs, err := w.h.Events.ListEvents(w.h.Ctx(), &hookmapv1.ListEventsRequest{PageSize: 1000})
	require.NoError(w.t, err)
	return evs.GetEvents()
}

// eventID checks that an event's id is HubSpot's eventId followed by 16 hex digits (of the
// event's hash) and returns the eventId.
func eventID(t *testing.T, e *hookmapv1.Event) string {
	t.Helper()
	id, hash, ok := strings.Cut(e.GetExternalId(), ".")
	require.True(t, ok, e.GetExternalId())
	require.Regexp(t, `^[0-9a-f]{16}$`, hash, e.GetExternalId())
	return id
}

func record(e *hookmapv1.Event) map[string]any { return e.GetRecord().GetStructValue().AsMap() }

// jsonNumbers turns a HubSpot event built in Go into what a Struct holds (numbers as float64).
func jsonNumbers(t *testing.T, e map[string]any) map[string]any { return apptest.Struct(t, e).AsMap() }

func TestSubscribeTakesThePortalFromTheToken(t *testing.T) {
	w := start(t)
	conn := w.connection(tokenA, nil)
	sub := w.subscribe(conn, nil)
	require.Equal(t, []string{"GET /account-info/v3/details Bearer " + tokenA}, w.fake.Calls())
	require.Equal(t, w.url, sub.GetWebhookUri(), "a global-webhook subscription's URL is the app's target URL")

	// A retried CreateSubscription (same request_id) gives the same subscription back.
	req := &hookmapv1.CreateSubscriptionRequest{ConnectionId: conn.GetId(), EventKey: "crm", RequestId: "create-crm-1"}
	first, err := w.h.Subscriptions.CreateSubscription(w.h.Ctx(), req)
	require.NoError(t, err)
	again, err := w.h.Subscriptions.CreateSubscription(w.h.Ctx(), req)
	require.NoError(t, err)
	require.Equal(t, first.GetId(), again.GetId())
	require.NotEqual(t, sub.GetId(), first.GetId())
	require.Len(t, w.fake.Calls(), 2, "the retry of an ACTIVE subscription asks HubSpot nothing")

	// A connection naming its portal is accepted when the token belongs to it (number or string).
	w.subscribe(w.connection(tokenB, map[string]any{"portalId": portalB}), nil)
	w.subscribe(w.connection(tokenB, map[string]any{"portalId": strconv.FormatInt(portalB, 10)}), nil)

	// ... and refused when the token belongs to another portal.
	wrong := w.connection(tokenA, map[string]any{"portalId": portalB})
	_, err = w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{ConnectionId: wrong.GetId(), EventKey: "crm"})
	apptest.RequireCode(t, err, codes.FailedPrecondition, fmt.Sprintf("belongs to portal %d, not to the connection's portalId %d", portalA, portalB))

	// A token HubSpot does not know fails the subscription with HubSpot's answer.
	revoked := w.connection("revoked-token", nil)
	_, err = w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{ConnectionId: revoked.GetId(), EventKey: "crm"})
	apptest.RequireCode(t, err, codes.FailedPrecondition, "INVALID_AUTHENTICATION")
	require.Contains(t, w.fake.Calls(), "GET /account-info/v3/details Bearer revoked-token 401")

	// The subscription parameters are checked against the event's schema.
	_, err = w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: "crm", Parameters: apptest.Struct(t, map[string]any{"subscriptionTypes": "contact.creation"}),
	})
	apptest.RequireCode(t, err, codes.InvalidArgument, "subscriptionTypes")
}

func TestBatchOfTwoPortalsFansOut(t *testing.T) {
	w := start(t)
	connA, connB := w.connection(tokenA, nil), w.connection(tokenB, nil)
	subA, subB := w.subscribe(connA, nil), w.subscribe(connB, nil)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "crm"})

	e1 := event(101, portalA, "contact.creation", 5101)
	e2 := event(102, portalB, "deal.propertyChange", 7102)
	e3 := event(103, portalA, "contact.propertyChange", 5101)
	st, body := w.fake.send(w.url, e1, e2, e3)
	require.Equal(t, http.StatusOK, st, body)
	require.JSONEq(t, `{"received": 3}`, body)

	got := map[string]*hookmapv1.Event{}
	for _, e := range stream.Next(3) {
		got[eventID(t, e)] = e
	}
	require.Len(t, got, 3)
	for id, want := range map[string]struct {
		sub  *hookmapv1.Subscription
		typ  string
		body map[string]any
	}{
		"101": {subA, "contact.creation", e1},
		"102": {subB, "deal.propertyChange", e2},
		"103": {subA, "contact.propertyChange", e3},
	} {
		ev := got[id]
		require.NotNil(t, ev, id)
		require.Equal(t, want.sub.GetId(), ev.GetSubscriptionId(), id)
		require.Equal(t, want.sub.GetConnectionId(), ev.GetConnectionId(), id)
		require.Equal(t, "crm", ev.GetEventKey())
		require.Equal(t, want.typ, ev.GetType(), id)
		require.Equal(t, jsonNumbers(t, want.body), record(ev), id)
	}
	stream.None(200 * time.Millisecond)
	ok := w.deliveries(hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_OK)
	require.Len(t, ok, 1)
	require.EqualValues(t, 3, ok[0].GetEventCount())
	require.ElementsMatch(t, []string{"62515", "7654321"}, ok[0].GetSelectors())

	// Ids beyond 2^53 survive exactly as event ids (JSON integers stay integers).
	big := event(9007199254740993, portalB, "company.creation", 9007199254740995)
	st, body = w.fake.send(w.url, big)
	require.Equal(t, http.StatusOK, st, body)
	ev := stream.Next(1)[0]
	require.Equal(t, "9007199254740993", eventID(t, ev))
	require.Equal(t, subB.GetId(), ev.GetSubscriptionId())
}

func TestUnmatchedPortalIsAnswered200AndRecorded(t *testing.T) {
	w := start(t)
	subA := w.subscribe(w.connection(tokenA, nil), nil)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "crm"})

	// Only events of a portal nobody subscribed: 200 (HubSpot must not retry), UNMATCHED.
	st, body := w.fake.send(w.url, event(201, portalC, "contact.creation", 1), event(202, portalC, "contact.deletion", 1))
	require.Equal(t, http.StatusOK, st, body)
	un := w.deliveries(hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_UNMATCHED)
	require.Len(t, un, 1)
	require.Equal(t, []string{strconv.FormatInt(portalC, 10)}, un[0].GetSelectors())
	require.Zero(t, un[0].GetEventCount())
	require.Empty(t, w.storedEvents())

	// A batch mixing it with a subscribed portal delivers the subscribed one's event.
	st, body = w.fake.send(w.url, event(203, portalC, "contact.creation", 2), event(204, portalA, "ticket.creation", 3))
	require.Equal(t, http.StatusOK, st, body)
	require.JSONEq(t, `{"received": 1}`, body)
	ev := stream.Next(1)[0]
	require.Equal(t, subA.GetId(), ev.GetSubscriptionId())
	require.Equal(t, "204", eventID(t, ev))
	require.Equal(t, "ticket.creation", ev.GetType())
	stream.None(200 * time.Millisecond)
}

func TestNotABatchIsKeptForReplay(t *testing.T) {
	w := start(t)
	w.subscribe(w.connection(tokenA, nil), nil)
	st, body := w.fake.post(w.url, delivery{Body: []byte(`{"eventId": 1, "portalId": 62515}`)})
	require.Equal(t, http.StatusInternalServerError, st, body)
	require.Contains(t, body, "kept for replay")
	failed := w.deliveries(hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED)
	require.Len(t, failed, 1)
	require.Contains(t, failed[0].GetError(), "expected a JSON array of HubSpot webhook events")
	require.True(t, failed[0].GetReplayable())
	require.Empty(t, w.storedEvents())
}

func TestSubscriptionTypesFilter(t *testing.T) {
	w := start(t)
	conn := w.connection(tokenA, nil)
	all := w.subscribe(conn, nil)
	some := w.subscribe(conn, map[string]any{"subscriptionTypes": []any{"contact.creation", "deal.propertyChange"}})
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "crm"})

	st, body := w.fake.send(w.url,
		event(301, portalA, "contact.creation", 1),
		event(302, portalA, "contact.propertyChange", 1),
		event(303, portalA, "deal.propertyChange", 2),
		event(304, portalA, "deal.creation", 2),
	)
	require.Equal(t, http.StatusOK, st, body)
	require.JSONEq(t, `{"received": 6}`, body)
	bySub := map[string][]string{}
	for _, e := range stream.Next(6) {
		bySub[e.GetSubscriptionId()] = append(bySub[e.GetSubscriptionId()], e.GetType())
	}
	require.ElementsMatch(t, []string{"contact.creation", "contact.propertyChange", "deal.propertyChange", "deal.creation"}, bySub[all.GetId()])
	require.ElementsMatch(t, []string{"contact.creation", "deal.propertyChange"}, bySub[some.GetId()])
	stream.None(200 * time.Millisecond)

	// A batch the filter drops entirely is still answered 200, with nothing for "some".
	st, body = w.fake.send(w.url, event(305, portalA, "company.deletion", 3))
	require.Equal(t, http.StatusOK, st, body)
	ev := stream.Next(1)[0]
	require.Equal(t, all.GetId(), ev.GetSubscriptionId())
	stream.None(200 * time.Millisecond)
}

func TestRetryOfTheSameEventIsNotADuplicate(t *testing.T) {
	w := start(t)
	sub := w.subscribe(w.connection(tokenA, nil), nil)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "crm"})

	e := event(401, portalA, "contact.propertyChange", 11)
	st, body := w.fake.send(w.url, e)
	require.Equal(t, http.StatusOK, st, body)
	ev := stream.Next(1)[0]
	require.Equal(t, sub.GetId(), ev.GetSubscriptionId())
	require.Equal(t, "401", eventID(t, ev))

	// HubSpot retries with the same eventId and attemptNumber 1 (e.g. after a timeout).
	retry := event(401, portalA, "contact.propertyChange", 11)
	retry["attemptNumber"] = 1
	st, body = w.fake.send(w.url, retry)
	require.Equal(t, http.StatusOK, st, body)
	stream.None(300 * time.Millisecond)
	require.Len(t, w.storedEvents(), 1)
	require.Len(t, w.deliveries(hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_DUPLICATE), 1)

	// A retried batch with one new event stores only the new one.
	st, body = w.fake.send(w.url, retry, event(402, portalA, "contact.deletion", 11))
	require.Equal(t, http.StatusOK, st, body)
	ev = stream.Next(1)[0]
	require.Equal(t, "402", eventID(t, ev))
	stream.None(200 * time.Millisecond)
	require.Len(t, w.storedEvents(), 2)
}

func TestSignatureIsChecked(t *testing.T) {
	w := start(t)
	w.subscribe(w.connection(tokenA, nil), nil)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "crm"})
	body := batch(t, event(501, portalA, "contact.creation", 1))

	for name, d := range map[string]delivery{
		"wrong secret":          {Body: body, Secret: "another-apps-secret"},
		"no signature":          {Body: body, NoSig: true},
		"6 minutes old":         {Body: body, Timestamp: time.Now().Add(-6 * time.Minute)},
		"signed for other URL":  {Body: body, SignedURL: w.url + "x"},
		"signed for other host": {Body: body, SignedURL: "https://hooks.example.com" + w.url[len(w.h.BaseURL):]},
		"body changed":          {Body: batch(t, event(501, portalA, "contact.deletion", 1)), SignedBody: body},
	} {
		st, resp := w.fake.post(w.url, d)
		require.Equal(t, http.StatusUnauthorized, st, "%s: %s", name, resp)
	}

	stream.None(200 * time.Millisecond)
	require.Empty(t, w.storedEvents())
	require.Len(t, w.deliveries(hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_REJECTED), 6)

	// A timestamp within the 5 minutes is accepted.
	st, resp := w.fake.post(w.url, delivery{Body: body, Timestamp: time.Now().Add(-4 * time.Minute)})
	require.Equal(t, http.StatusOK, st, resp)
	require.Equal(t, "501", eventID(t, stream.Next(1)[0]))

	// HubSpot signs the target URL with some characters of its query decoded (%3A → ":").
	st, resp = w.fake.post(w.url+"?source=crm%3Aapp", delivery{
		Body: batch(t, event(502, portalA, "contact.creation", 2)), SignedURL: w.url + "?source=crm:app",
	})
	require.Equal(t, http.StatusOK, st, resp)
	require.Equal(t, "502", eventID(t, stream.Next(1)[0]))
}

func TestBatchOfHundredEvents(t *testing.T) {
	w := start(t)
	subA := w.subscribe(w.connection(tokenA, nil), nil)
	subB := w.subscribe(w.connection(tokenB, nil), nil)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "crm"})

	var events []map[string]any
	for i := range 100 {
		portal := portalA
		if i%4 == 3 {
			portal = portalB
		}
		events = append(events, event(int64(10000+i), portal, "contact.propertyChange", int64(i)))
	}
	st, body := w.fake.send(w.url, events...)
	require.Equal(t, http.StatusOK, st, body)
	require.JSONEq(t, `{"received": 100}`, body)
	count := map[string]int{}
	ids := map[string]bool{}
	for _, e := range stream.Next(100) {
		count[e.GetSubscriptionId()]++
		ids[e.GetExternalId()] = true
		eventID(t, e)
	}
	require.Equal(t, map[string]int{subA.GetId(): 75, subB.GetId(): 25}, count)
	require.Len(t, ids, 100)
	stream.None(200 * time.Millisecond)
}

func TestDeleteSubscriptionStopsRouting(t *testing.T) {
	w := start(t)
	sub := w.subscribe(w.connection(tokenA, nil), nil)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "crm"})
	st, body := w.fake.send(w.url, event(601, portalA, "contact.creation", 1))
	require.Equal(t, http.StatusOK, st, body)
	require.Equal(t, "601", eventID(t, stream.Next(1)[0]))

	_, err := w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	calls := len(w.fake.Calls())
	st, body = w.fake.send(w.url, event(602, portalA, "contact.creation", 2))
	require.Equal(t, http.StatusOK, st, body)
	stream.None(300 * time.Millisecond)
	require.Len(t, w.deliveries(hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_UNMATCHED), 1)
	require.Len(t, w.fake.Calls(), calls, "nothing to remove in HubSpot: the app's target URL stays")
}

func TestConnectorParametersNeedTheClientSecret(t *testing.T) {
	h := apptest.Start(t, apptest.WithConnectors(".."), apptest.WithAllowPrivate())
	_, err := h.Connectors.SetConnectorParameters(h.Ctx(), &hookmapv1.SetConnectorParametersRequest{
		ConnectorKey: "hubspot", Parameters: apptest.Struct(t, map[string]any{}),
	})
	apptest.RequireCode(t, err, codes.InvalidArgument, "parameters.clientSecret: required")
}

// HubSpot's eventId is not unique: its test deliveries reuse eventId 100 for every
// subscription type. Events that differ in anything but attemptNumber are all kept; a
// retry of one (attemptNumber 1) is still a duplicate.
func TestEventIDIsNotUnique(t *testing.T) {
	w := start(t)
	sub := w.subscribe(w.connection(tokenA, nil), nil)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "crm"})

	creation := event(100, portalA, "contact.creation", 123)
	change := event(100, portalA, "contact.propertyChange", 123)
	change["occurredAt"] = creation["occurredAt"]
	st, body := w.fake.send(w.url, creation, change)
	require.Equal(t, http.StatusOK, st, body)
	require.JSONEq(t, `{"received": 2}`, body)
	evs := stream.Next(2)
	require.NotEqual(t, evs[0].GetExternalId(), evs[1].GetExternalId())
	require.ElementsMatch(t, []string{"contact.creation", "contact.propertyChange"}, []string{evs[0].GetType(), evs[1].GetType()})
	for _, e := range evs {
		require.Equal(t, "100", eventID(t, e))
		require.Equal(t, sub.GetId(), e.GetSubscriptionId())
	}

	// The same property change of another property is another event too.
	other := event(100, portalA, "contact.propertyChange", 123)
	other["occurredAt"], other["propertyName"] = creation["occurredAt"], "phone"
	st, body = w.fake.send(w.url, other)
	require.Equal(t, http.StatusOK, st, body)
	require.JSONEq(t, `{"received": 1}`, body)
	stream.Next(1)

	// HubSpot's retries of them are not.
	creation["attemptNumber"], change["attemptNumber"] = 1, 2
	st, body = w.fake.send(w.url, change, creation)
	require.Equal(t, http.StatusOK, st, body)
	require.JSONEq(t, `{"received": 0}`, body)
	stream.None(200 * time.Millisecond)
	require.Len(t, w.storedEvents(), 3)
}
