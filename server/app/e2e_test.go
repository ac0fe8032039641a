package app_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

func start(t *testing.T) *apptest.Harness {
	return apptest.Start(t, apptest.WithConnectors("../../connectors", "testdata/connectors"))
}

// setup creates a testhooks connection and an echo subscription.
func setup(t testing.TB, h *apptest.Harness) (*hookmapv1.Connection, *hookmapv1.Subscription) {
	ctx := h.Ctx()
	conn, err := h.Connections.CreateConnection(ctx, &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "testhooks", Name: "acme", Credentials: apptest.Struct(t, map[string]any{"token": "sekret-token"}),
	})
	require.NoError(t, err)
	sub, err := h.Subscriptions.CreateSubscription(ctx, &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: "echo", Parameters: apptest.Struct(t, map[string]any{"topic": "orders"}),
	})
	require.NoError(t, err)
	return conn, sub
}

func TestHealthAndReflection(t *testing.T) {
	h := start(t)
	ctx := h.Ctx()
	hr, err := healthpb.NewHealthClient(h.Conn).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, hr.GetStatus())
	rc, err := grpc_reflection_v1.NewServerReflectionClient(h.Conn).ServerReflectionInfo(ctx)
	require.NoError(t, err)
	require.NoError(t, rc.Send(&grpc_reflection_v1.ServerReflectionRequest{MessageRequest: &grpc_reflection_v1.ServerReflectionRequest_ListServices{}}))
	resp, err := rc.Recv()
	require.NoError(t, err)
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	require.Contains(t, names, "hookmap.v1.EventService")
	require.Contains(t, names, "hookmap.v1.SubscriptionService")
	require.Contains(t, names, "grpc.health.v1.Health")

	for _, path := range []string{"/healthz", "/readyz"} {
		r := h.Do(http.MethodGet, h.Hook(path), nil)
		require.Equal(t, http.StatusOK, r.Status, path)
	}
	r := h.Do(http.MethodGet, h.Hook("/metrics"), nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Contains(t, string(r.Body), "hookmap_receiver_deliveries_total")
}

func TestConnectorsListed(t *testing.T) {
	h := start(t)
	resp, err := h.Connectors.ListConnectors(h.Ctx(), &hookmapv1.ListConnectorsRequest{})
	require.NoError(t, err)
	keys := map[string]*hookmapv1.Connector{}
	for _, c := range resp.GetConnectors() {
		keys[c.GetKey()] = c
	}
	require.Contains(t, keys, "example-webhook")
	require.Contains(t, keys, "testhooks")
	require.Equal(t, "message", keys["example-webhook"].GetEvents()[0].GetKey())
	_, err = h.Connectors.GetConnector(h.Ctx(), &hookmapv1.GetConnectorRequest{Key: "nope"})
	apptest.RequireCode(t, err, codes.NotFound, "nope")
}

func TestConnectionErrors(t *testing.T) {
	h := start(t)
	ctx := h.Ctx()
	_, err := h.Connections.CreateConnection(ctx, &hookmapv1.CreateConnectionRequest{ConnectorKey: "nope"})
	apptest.RequireReason(t, err, codes.FailedPrecondition, "CONNECTOR_NOT_LOADED", `connector "nope" is not loaded`)

	_, err = h.Connections.CreateConnection(ctx, &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "testhooks", Parameters: apptest.Struct(t, map[string]any{"region": "mars"}),
	})
	st := apptest.RequireCode(t, err, codes.InvalidArgument, "parameters.region")
	fv := apptest.FieldViolations(st)
	require.Contains(t, fv, "parameters.region")
	require.Contains(t, fv, "credentials.token", "missing required credential reported too: %v", fv)

	_, err = h.Connections.GetConnection(ctx, &hookmapv1.GetConnectionRequest{Id: "conn_missing"})
	apptest.RequireCode(t, err, codes.NotFound, "conn_missing")

	conn, _ := setup(t, h)
	got, err := h.Connections.GetConnection(ctx, &hookmapv1.GetConnectionRequest{Id: conn.GetId()})
	require.NoError(t, err)
	require.True(t, got.GetHasCredentials())
	require.NotContains(t, got.String(), "sekret", "credentials must never be returned")

	upd, err := h.Connections.UpdateConnection(ctx, &hookmapv1.UpdateConnectionRequest{Id: conn.GetId(), Name: "renamed"})
	require.NoError(t, err)
	require.Equal(t, "renamed", upd.GetName())
	require.True(t, upd.GetHasCredentials())

	// Pagination over connections.
	for i := 0; i < 4; i++ {
		_, err := h.Connections.CreateConnection(ctx, &hookmapv1.CreateConnectionRequest{ConnectorKey: "example-webhook"})
		require.NoError(t, err)
	}
	var seen []string
	tok := ""
	for {
		page, err := h.Connections.ListConnections(ctx, &hookmapv1.ListConnectionsRequest{PageSize: 2, PageToken: tok})
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.GetConnections()), 2)
		for _, c := range page.GetConnections() {
			seen = append(seen, c.GetId())
		}
		if tok = page.GetNextPageToken(); tok == "" {
			break
		}
	}
	require.Len(t, seen, 5)
	require.Equal(t, conn.GetId(), seen[0])
	_, err = h.Connections.ListConnections(ctx, &hookmapv1.ListConnectionsRequest{PageToken: "garbage!"})
	apptest.RequireCode(t, err, codes.InvalidArgument, "page_token")

	// Deleting the connection deletes its subscriptions first.
	_, err = h.Connections.DeleteConnection(ctx, &hookmapv1.DeleteConnectionRequest{Id: conn.GetId()})
	require.NoError(t, err)
	subs, err := h.Subscriptions.ListSubscriptions(ctx, &hookmapv1.ListSubscriptionsRequest{})
	require.NoError(t, err)
	require.Empty(t, subs.GetSubscriptions())
}

func TestSubscriptionErrors(t *testing.T) {
	h := start(t)
	ctx := h.Ctx()
	conn, sub := setup(t, h)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus())
	require.True(t, strings.HasPrefix(sub.GetWebhookUri(), h.BaseURL+"/hooks/"))
	require.GreaterOrEqual(t, len(strings.TrimPrefix(sub.GetWebhookUri(), h.BaseURL+"/hooks/")), 22, "id must carry at least 128 random bits")

	_, err := h.Subscriptions.CreateSubscription(ctx, &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: "echo", Parameters: apptest.Struct(t, map[string]any{"limit": 0}),
	})
	st := apptest.RequireCode(t, err, codes.InvalidArgument, "parametersSchema")
	fv := apptest.FieldViolations(st)
	require.Contains(t, fv, "parameters.topic")
	require.Contains(t, fv, "parameters.limit")

	_, err = h.Subscriptions.CreateSubscription(ctx, &hookmapv1.CreateSubscriptionRequest{ConnectionId: conn.GetId(), EventKey: "nope"})
	apptest.RequireReason(t, err, codes.FailedPrecondition, "EVENT_NOT_FOUND", `no event "nope"`)
	_, err = h.Subscriptions.CreateSubscription(ctx, &hookmapv1.CreateSubscriptionRequest{ConnectionId: "conn_x", EventKey: "echo"})
	apptest.RequireCode(t, err, codes.NotFound, "conn_x")
	_, err = h.Subscriptions.CreateSubscription(ctx, &hookmapv1.CreateSubscriptionRequest{})
	st = apptest.RequireCode(t, err, codes.InvalidArgument, "connection_id")
	require.Contains(t, apptest.FieldViolations(st), "event_key")
	_, err = h.Subscriptions.GetSubscription(ctx, &hookmapv1.GetSubscriptionRequest{Id: "missing"})
	apptest.RequireCode(t, err, codes.NotFound, "missing")

	got, err := h.Subscriptions.GetSubscription(ctx, &hookmapv1.GetSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Equal(t, sub.GetWebhookUri(), got.GetWebhookUri())

	_, err = h.Subscriptions.DeleteSubscription(ctx, &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	_, err = h.Subscriptions.GetSubscription(ctx, &hookmapv1.GetSubscriptionRequest{Id: sub.GetId()})
	apptest.RequireCode(t, err, codes.NotFound, sub.GetId())
	r := h.PostJSON(sub.GetWebhookUri(), `{"items":[]}`)
	require.Equal(t, http.StatusNotFound, r.Status)
}

func TestDeliverStreamAckRestart(t *testing.T) {
	h := start(t)
	ctx := h.Ctx()
	conn, sub := setup(t, h)

	stream := h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "billing"})
	r := h.PostJSON(sub.GetWebhookUri(), `{"items":[{"n":1234567},{"n":2}]}`)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.JSONEq(t, `{"received":2}`, string(r.Body))

	evs := stream.Next(2)
	require.Equal(t, "orders.item", evs[0].GetType())
	require.Equal(t, conn.GetId(), evs[0].GetConnectionId())
	require.Equal(t, sub.GetId(), evs[0].GetSubscriptionId())
	require.Equal(t, "echo", evs[0].GetEventKey())
	rec := evs[0].GetRecord().GetStructValue().AsMap()
	require.Equal(t, 1234567.0, rec["n"])
	require.Equal(t, 1234568.0, rec["next"], "CEL arithmetic on a JSON integer")
	require.Less(t, evs[0].GetSeq(), evs[1].GetSeq())

	_, err := h.Events.AckEvents(ctx, &hookmapv1.AckEventsRequest{Consumer: "billing", Seq: evs[0].GetSeq()})
	require.NoError(t, err)
	_, err = h.Events.AckEvents(ctx, &hookmapv1.AckEventsRequest{Consumer: "billing", Seq: 99999})
	apptest.RequireCode(t, err, codes.InvalidArgument, "seq")
	stream.Close()

	h.Restart()
	// The unacked second event is sent again after reconnect, then new ones as they commit.
	stream = h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "billing"})
	again := stream.Next(1)
	require.Equal(t, evs[1].GetSeq(), again[0].GetSeq())
	r = h.PostJSON(sub.GetWebhookUri(), `{"items":[{"n":3}]}`)
	require.Equal(t, http.StatusOK, r.Status)
	next := stream.Next(1)
	require.Greater(t, next[0].GetSeq(), evs[1].GetSeq())

	// A newer stream of the same consumer replaces the older, which ends ABORTED.
	newer := h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "billing"})
	require.Equal(t, codes.Aborted, status.Code(stream.Err()))
	require.Len(t, newer.Next(2), 2)

	// Filters and explicit start positions.
	filtered := h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "other", Filter: &hookmapv1.EventFilter{Types: []string{"nope"}}})
	filtered.None(200 * time.Millisecond)
	fromSeq := h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "third", Start: &hookmapv1.StreamPosition{Position: &hookmapv1.StreamPosition_Seq{Seq: next[0].GetSeq()}}})
	require.Equal(t, next[0].GetSeq(), fromSeq.Next(1)[0].GetSeq())
	latest := h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "fourth", Start: &hookmapv1.StreamPosition{Position: &hookmapv1.StreamPosition_Latest{Latest: true}}})
	latest.None(100 * time.Millisecond)
}

func TestListEventsPages(t *testing.T) {
	h := start(t)
	ctx := h.Ctx()
	_, sub := setup(t, h)
	items := make([]string, 0, 7)
	for i := 0; i < 7; i++ {
		items = append(items, `{"n":`+string(rune('0'+i))+`}`)
	}
	r := h.PostJSON(sub.GetWebhookUri(), `{"items":[`+strings.Join(items, ",")+`]}`)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	var seqs []int64
	tok := ""
	pages := 0
	for {
		page, err := h.Events.ListEvents(ctx, &hookmapv1.ListEventsRequest{PageSize: 3, PageToken: tok})
		require.NoError(t, err)
		pages++
		for _, e := range page.GetEvents() {
			seqs = append(seqs, e.GetSeq())
		}
		if tok = page.GetNextPageToken(); tok == "" {
			break
		}
	}
	require.Len(t, seqs, 7)
	require.Equal(t, 3, pages)
	for i := 1; i < len(seqs); i++ {
		require.Greater(t, seqs[i], seqs[i-1])
	}
	page, err := h.Events.ListEvents(ctx, &hookmapv1.ListEventsRequest{Filter: &hookmapv1.EventFilter{SubscriptionIds: []string{"other"}}})
	require.NoError(t, err)
	require.Empty(t, page.GetEvents())
}

func TestReceiverAnswers(t *testing.T) {
	h := start(t)
	ctx := h.Ctx()
	_, sub := setup(t, h)

	// The mapping's response: a challenge answered as text, no events.
	r := h.Do(http.MethodGet, sub.GetWebhookUri()+"?challenge=abc123", nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "abc123", string(r.Body))
	require.Contains(t, r.Header.Get("Content-Type"), "text/plain")

	// Unknown id: 404 with a JSON error.
	r = h.PostJSON(h.Hook("/hooks/doesnotexist"), `{}`)
	require.Equal(t, http.StatusNotFound, r.Status)
	require.Contains(t, r.Header.Get("Content-Type"), "application/json")
	require.Contains(t, string(r.Body), `"error"`)

	// Too large: 413.
	big := `{"items":[],"pad":"` + strings.Repeat("x", 1<<20) + `"}`
	r = h.PostJSON(sub.GetWebhookUri(), big)
	require.Equal(t, http.StatusRequestEntityTooLarge, r.Status)

	// A mapping error: 500, kept as a failed delivery; the sender reads no internals.
	r = h.PostJSON(sub.GetWebhookUri(), `{"fail":true}`)
	require.Equal(t, http.StatusInternalServerError, r.Status)
	require.Contains(t, string(r.Body), `"delivery_id":"dlv_`)
	require.NotContains(t, string(r.Body), "handle.map.yml")

	// Malformed JSON: 400.
	r = h.PostJSON(sub.GetWebhookUri(), `{"items":[`)
	require.Equal(t, http.StatusBadRequest, r.Status)

	// Idempotent ids: a re-delivery stores nothing new.
	r = h.PostJSON(sub.GetWebhookUri(), `{"items":[{"n":1,"id":"evt-1"}]}`)
	require.JSONEq(t, `{"received":1}`, string(r.Body))
	r = h.PostJSON(sub.GetWebhookUri(), `{"items":[{"n":1,"id":"evt-1"}]}`)
	require.Equal(t, http.StatusOK, r.Status)
	require.JSONEq(t, `{"received":0}`, string(r.Body))

	ds, err := h.Events.ListDeliveries(ctx, &hookmapv1.ListDeliveriesRequest{SubscriptionId: sub.GetId()})
	require.NoError(t, err)
	outcomes := map[hookmapv1.DeliveryOutcome]int{}
	for _, d := range ds.GetDeliveries() {
		outcomes[d.GetOutcome()]++
	}
	require.Equal(t, 2, outcomes[hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_OK], "challenge + first id")
	require.Equal(t, 1, outcomes[hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_DUPLICATE])
	require.Equal(t, 1, outcomes[hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED])
	require.Equal(t, 2, outcomes[hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_REJECTED], "413 and 400")
	for _, d := range ds.GetDeliveries() {
		if d.GetOutcome() == hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED {
			require.True(t, d.GetReplayable())
			require.Contains(t, d.GetError(), "missing")
			require.Contains(t, d.GetError(), "handle.map.yml", "the detail is in the record")
		}
	}
	failed, err := h.Events.ListDeliveries(ctx, &hookmapv1.ListDeliveriesRequest{Outcome: hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED})
	require.NoError(t, err)
	require.Len(t, failed.GetDeliveries(), 1)
}

func TestHandleUpdatesState(t *testing.T) {
	h := start(t)
	ctx := h.Ctx()
	conn, _ := setup(t, h)
	sub, err := h.Subscriptions.CreateSubscription(ctx, &hookmapv1.CreateSubscriptionRequest{ConnectionId: conn.GetId(), EventKey: "counter"})
	require.NoError(t, err)
	stream := h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c", Filter: &hookmapv1.EventFilter{EventKeys: []string{"counter"}}})
	for i := 0; i < 3; i++ {
		r := h.PostJSON(sub.GetWebhookUri(), `{}`)
		require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	}
	evs := stream.Next(3)
	for i, e := range evs {
		require.Equal(t, float64(i+1), e.GetRecord().GetStructValue().AsMap()["count"])
	}
}

func TestExampleConnectorWalkthrough(t *testing.T) {
	h := start(t)
	ctx := h.Ctx()
	conn, err := h.Connections.CreateConnection(ctx, &hookmapv1.CreateConnectionRequest{ConnectorKey: "example-webhook", Name: "demo"})
	require.NoError(t, err)
	sub, err := h.Subscriptions.CreateSubscription(ctx, &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: "message", Parameters: apptest.Struct(t, map[string]any{"channel": "general"}),
	})
	require.NoError(t, err)
	r := h.PostJSON(sub.GetWebhookUri(), `{"messages":[{"id":"m1","text":"hello"},{"id":"m2","text":"world"}]}`)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.JSONEq(t, `{"received":2}`, string(r.Body))
	evs := h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "demo"}).Next(2)
	require.Equal(t, "message.created", evs[0].GetType())
	require.Equal(t, "m1", evs[0].GetExternalId())
	require.Equal(t, "hello", evs[0].GetRecord().GetStructValue().AsMap()["text"])
}
