package app_test

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hookmap/hookmap/engine/value"
	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/api"
	"github.com/hookmap/hookmap/server/apptest"
)

// rpcCase is one hostile call and the status it must answer.
type rpcCase struct {
	method string // "Service/Method" of package hookmap.v1
	name   string
	req    proto.Message
	code   codes.Code
	reason string // the ErrorInfo reason, where the code covers several causes
	field  string // a BadRequest field violation it must carry
}

// TestHostileRPCs calls every RPC of hookmap.v1 with hostile input: a table of cases with
// the status each must answer (every RPC must have some), then, for every RPC found in the
// registry (so a new one cannot be forgotten), a generic set: malformed, truncated, empty
// and oversized messages, every string field over the limit and long enough to be
// echoed, every JSON-like field at, past and far past the nesting limit, bad page sizes
// and tokens, out-of-range numbers, enums and timestamps. None may answer INTERNAL or
// UNKNOWN, none may send back what it was given at length, and after each the server
// still serves. Finally everything stored reads back, listed, fetched and streamed.
func TestHostileRPCs(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(target.Close)
	h := apptest.Start(t, apptest.WithConnectors("testdata/connectors"), apptest.WithAllowPrivate())
	ctx := h.Ctx()
	webhooks := hookmapv1.NewWebhookServiceClient(h.Conn)

	// Fixtures: a connection and subscription with an event and deliveries (one failed,
	// kept), a connection whose app cannot be reached, an outgoing webhook and one of its
	// invocations.
	conn, err := h.Connections.CreateConnection(ctx, &hookmapv1.CreateConnectionRequest{ConnectorKey: "signedhooks", Name: "s"})
	require.NoError(t, err)
	sub, err := h.Subscriptions.CreateSubscription(ctx, &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: "plain", Parameters: apptest.Struct(t, map[string]any{"secret": "s"}),
	})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, h.PostJSON(sub.GetWebhookUri(), `{"a": 1}`).Status)
	require.Equal(t, http.StatusBadRequest, h.PostJSON(sub.GetWebhookUri(), `{"a": `).Status)
	ds, err := h.Events.ListDeliveries(ctx, &hookmapv1.ListDeliveriesRequest{})
	require.NoError(t, err)
	require.Len(t, ds.GetDeliveries(), 2)
	kept, done := ds.GetDeliveries()[0], ds.GetDeliveries()[1]
	require.True(t, kept.GetReplayable())
	down := "http://" + closedAddr(t)
	unreachable, err := h.Connections.CreateConnection(ctx, &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "fakehooks", Parameters: apptest.Struct(t, map[string]any{"baseUri": down}),
		Credentials: apptest.Struct(t, map[string]any{"apiKey": "k"}),
	})
	require.NoError(t, err)
	_, err = webhooks.RegisterWebhook(ctx, &hookmapv1.RegisterWebhookRequest{Webhook: &hookmapv1.Webhook{Id: "wh", Url: target.URL, Method: "POST"}})
	require.NoError(t, err)
	tr, err := webhooks.TriggerWebhook(ctx, &hookmapv1.TriggerWebhookRequest{WebhookId: "wh", Data: structpb.NewStringValue("x")})
	require.NoError(t, err)
	require.False(t, tr.GetError(), tr.GetErrorMessage())
	_, err = h.Connectors.SetConnectorParameters(ctx, &hookmapv1.SetConnectorParametersRequest{ConnectorKey: "chatapp"})
	require.NoError(t, err)
	// A destination to the target, through a signed webhook.
	_, err = webhooks.RegisterWebhook(ctx, &hookmapv1.RegisterWebhookRequest{Webhook: &hookmapv1.Webhook{
		Id: "signed", Url: target.URL, SigningSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}})
	require.NoError(t, err)
	_, err = h.Destinations.CreateDestination(ctx, &hookmapv1.CreateDestinationRequest{Destination: &hookmapv1.Destination{Id: "dest", WebhookId: "signed"}})
	require.NoError(t, err)

	long := strings.Repeat("x", api.MaxStringField+1)
	huge := strings.Repeat("y", 7<<20) // a 7 MB id
	echo := strings.Repeat("z", 60<<10)
	atLimit, overLimit := nestedStruct(t, value.MaxDepth), nestedStruct(t, value.MaxDepth+1)
	// The variables of subscribe, one of them nested so that the input is at the limit.
	inputAt := &structpb.Struct{Fields: map[string]*structpb.Value{"parameters": structpb.NewStructValue(nestedStruct(t, value.MaxDepth-1))}}
	fakeVars := func(params map[string]any) *structpb.Struct {
		return apptest.Struct(t, map[string]any{
			"connection":  map[string]any{"id": "c", "parameters": map[string]any{"baseUri": down}},
			"credentials": map[string]any{"apiKey": "k"}, "connectorParameters": map[string]any{},
			"parameters": params,
		})
	}
	inv, nf, fp, ae := codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition, codes.AlreadyExists
	cases := []rpcCase{
		{method: "ConnectorService/ListConnectors", name: "nothing to refuse", req: &hookmapv1.ListConnectorsRequest{}, code: codes.OK},
		{method: "ConnectorService/GetConnector", name: "unknown key", req: &hookmapv1.GetConnectorRequest{Key: echo}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "ConnectorService/GetConnector", name: "7 MB key", req: &hookmapv1.GetConnectorRequest{Key: huge}, code: inv, field: "key"},
		{method: "ConnectorService/ValidateConnectors", name: "nothing to refuse", req: &hookmapv1.ValidateConnectorsRequest{}, code: codes.OK},
		{method: "ConnectorService/ReloadConnectors", name: "nothing to refuse", req: &hookmapv1.ReloadConnectorsRequest{}, code: codes.OK},
		{method: "ConnectorService/EvaluateMethod", name: "input past the nesting limit", req: &hookmapv1.EvaluateMethodRequest{ConnectorKey: "signedhooks", EventKey: "plain", Method: "handle", Input: overLimit}, code: inv, field: "input"},
		{method: "ConnectorService/EvaluateMethod", name: "input at the nesting limit", req: &hookmapv1.EvaluateMethodRequest{ConnectorKey: "signedhooks", EventKey: "plain", Method: "subscribe", Input: inputAt}, code: codes.OK},
		{method: "ConnectorService/EvaluateMethod", name: "connector not loaded", req: &hookmapv1.EvaluateMethodRequest{ConnectorKey: "nope", EventKey: "e", Method: "handle"}, code: fp, reason: "CONNECTOR_NOT_LOADED"},
		{method: "ConnectorService/EvaluateMethod", name: "unknown event", req: &hookmapv1.EvaluateMethodRequest{ConnectorKey: "signedhooks", EventKey: echo, Method: "handle"}, code: fp, reason: "EVENT_NOT_FOUND"},
		{method: "ConnectorService/EvaluateMethod", name: "unknown method", req: &hookmapv1.EvaluateMethodRequest{ConnectorKey: "signedhooks", EventKey: "plain", Method: echo}, code: fp, reason: "METHOD_NOT_FOUND"},
		{method: "ConnectorService/EvaluateMethod", name: "unknown global webhook", req: &hookmapv1.EvaluateMethodRequest{ConnectorKey: "chatapp", GlobalWebhookKey: echo, Method: "handle"}, code: fp, reason: "GLOBAL_WEBHOOK_NOT_FOUND"},
		{method: "ConnectorService/EvaluateMethod", name: "rest call without allow_side_effects", req: &hookmapv1.EvaluateMethodRequest{ConnectorKey: "fakehooks", EventKey: "item", Method: "list", Input: fakeVars(map[string]any{"project": "p"})}, code: fp, reason: "SIDE_EFFECTS_NOT_ALLOWED"},
		{method: "ConnectorService/EvaluateMethod", name: "formula fails on the input", req: &hookmapv1.EvaluateMethodRequest{ConnectorKey: "fakehooks", EventKey: "item", Method: "list", AllowSideEffects: true, Input: fakeVars(nil)}, code: fp, reason: "MAPPING_FAILED"},
		{method: "ConnectorService/EvaluateMethod", name: "app cannot be reached", req: &hookmapv1.EvaluateMethodRequest{ConnectorKey: "fakehooks", EventKey: "item", Method: "list", AllowSideEffects: true, Input: fakeVars(map[string]any{"project": "p"})}, code: codes.Unavailable, reason: "APP_UNREACHABLE"},
		{method: "ConnectorService/SetConnectorParameters", name: "parameters past the nesting limit", req: &hookmapv1.SetConnectorParametersRequest{ConnectorKey: "chatapp", Parameters: overLimit}, code: inv, field: "parameters"},
		{method: "ConnectorService/SetConnectorParameters", name: "parameters at the nesting limit", req: &hookmapv1.SetConnectorParametersRequest{ConnectorKey: "signedhooks", Parameters: atLimit}, code: codes.OK},
		{method: "ConnectorService/SetConnectorParameters", name: "connector not loaded", req: &hookmapv1.SetConnectorParametersRequest{ConnectorKey: echo}, code: fp, reason: "CONNECTOR_NOT_LOADED"},
		{method: "ConnectorService/ListGlobalWebhooks", name: "connector not loaded", req: &hookmapv1.ListGlobalWebhooksRequest{ConnectorKey: "nope"}, code: fp, reason: "CONNECTOR_NOT_LOADED"},

		{method: "ConnectionService/CreateConnection", name: "parameters past the nesting limit", req: &hookmapv1.CreateConnectionRequest{ConnectorKey: "signedhooks", Parameters: overLimit}, code: inv, field: "parameters"},
		{method: "ConnectionService/CreateConnection", name: "credentials past the nesting limit", req: &hookmapv1.CreateConnectionRequest{ConnectorKey: "signedhooks", Credentials: overLimit}, code: inv, field: "credentials"},
		{method: "ConnectionService/CreateConnection", name: "parameters and credentials at the nesting limit", req: &hookmapv1.CreateConnectionRequest{ConnectorKey: "signedhooks", Parameters: atLimit, Credentials: atLimit}, code: codes.OK},
		{method: "ConnectionService/CreateConnection", name: "parameters over the size limit", req: &hookmapv1.CreateConnectionRequest{ConnectorKey: "signedhooks", Parameters: apptest.Struct(t, map[string]any{"a": strings.Repeat("x", value.MaxSize)})}, code: inv, field: "parameters"},
		{method: "ConnectionService/CreateConnection", name: "7 MB name", req: &hookmapv1.CreateConnectionRequest{ConnectorKey: "signedhooks", Name: huge}, code: inv, field: "name"},
		{method: "ConnectionService/CreateConnection", name: "connector not loaded", req: &hookmapv1.CreateConnectionRequest{ConnectorKey: "nope"}, code: fp, reason: "CONNECTOR_NOT_LOADED"},
		{method: "ConnectionService/GetConnection", name: "7 MB id", req: &hookmapv1.GetConnectionRequest{Id: huge}, code: inv, field: "id"},
		{method: "ConnectionService/GetConnection", name: "unknown id", req: &hookmapv1.GetConnectionRequest{Id: echo}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "ConnectionService/ListConnections", name: "negative page size", req: &hookmapv1.ListConnectionsRequest{PageSize: -1}, code: inv, field: "page_size"},
		{method: "ConnectionService/ListConnections", name: "huge page size", req: &hookmapv1.ListConnectionsRequest{PageSize: math.MaxInt32}, code: codes.OK},
		{method: "ConnectionService/ListConnections", name: "a token of another list", req: &hookmapv1.ListConnectionsRequest{PageToken: pageToken(t, h, "dlv")}, code: inv, field: "page_token"},
		{method: "ConnectionService/UpdateConnection", name: "parameters past the nesting limit", req: &hookmapv1.UpdateConnectionRequest{Id: conn.GetId(), Parameters: overLimit}, code: inv, field: "parameters"},
		{method: "ConnectionService/UpdateConnection", name: "parameters at the nesting limit", req: &hookmapv1.UpdateConnectionRequest{Id: conn.GetId(), Parameters: atLimit}, code: codes.OK},
		{method: "ConnectionService/UpdateConnection", name: "unknown id", req: &hookmapv1.UpdateConnectionRequest{Id: echo, Name: "n"}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "ConnectionService/DeleteConnection", name: "unknown id", req: &hookmapv1.DeleteConnectionRequest{Id: echo}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "ConnectionService/AuthorizeConnection", name: "neither a connection nor a connector", req: &hookmapv1.AuthorizeConnectionRequest{}, code: inv, field: "connector_key"},
		{method: "ConnectionService/AuthorizeConnection", name: "a connection and a connector", req: &hookmapv1.AuthorizeConnectionRequest{ConnectionId: conn.GetId(), ConnectorKey: "oauthapp"}, code: inv, field: "connection_id"},
		{method: "ConnectionService/AuthorizeConnection", name: "unknown connection", req: &hookmapv1.AuthorizeConnectionRequest{ConnectionId: echo}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "ConnectionService/AuthorizeConnection", name: "connector not loaded", req: &hookmapv1.AuthorizeConnectionRequest{ConnectorKey: echo}, code: fp, reason: "CONNECTOR_NOT_LOADED"},
		{method: "ConnectionService/AuthorizeConnection", name: "connector without an authorization flow", req: &hookmapv1.AuthorizeConnectionRequest{ConnectionId: conn.GetId()}, code: fp, reason: "NO_AUTHORIZATION_FLOW"},
		{method: "ConnectionService/AuthorizeConnection", name: "no client id to build the URL with", req: &hookmapv1.AuthorizeConnectionRequest{ConnectorKey: "oauthapp", Parameters: apptest.Struct(t, map[string]any{"baseUri": down})}, code: fp, reason: "MAPPING_FAILED"},
		{method: "ConnectionService/AuthorizeConnection", name: "parameters past the nesting limit", req: &hookmapv1.AuthorizeConnectionRequest{ConnectorKey: "oauthapp", Parameters: overLimit}, code: inv, field: "parameters"},
		{method: "ConnectionService/AuthorizeConnection", name: "return URL that is no http URL", req: &hookmapv1.AuthorizeConnectionRequest{ConnectorKey: "oauthapp", ReturnUrl: "javascript:alert(1)"}, code: inv, field: "return_url"},
		{method: "ConnectionService/AuthorizeConnection", name: "return URL with a fragment", req: &hookmapv1.AuthorizeConnectionRequest{ConnectorKey: "oauthapp", ReturnUrl: "https://app.example/#" + echo}, code: inv, field: "return_url"},

		{method: "SubscriptionService/CreateSubscription", name: "parameters past the nesting limit", req: &hookmapv1.CreateSubscriptionRequest{ConnectionId: conn.GetId(), EventKey: "plain", Parameters: overLimit}, code: inv, field: "parameters"},
		{method: "SubscriptionService/CreateSubscription", name: "parameters at the nesting limit", req: &hookmapv1.CreateSubscriptionRequest{ConnectionId: conn.GetId(), EventKey: "plain", Parameters: atLimit}, code: codes.OK},
		{method: "SubscriptionService/CreateSubscription", name: "unknown connection", req: &hookmapv1.CreateSubscriptionRequest{ConnectionId: echo, EventKey: "plain"}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "SubscriptionService/CreateSubscription", name: "unknown event", req: &hookmapv1.CreateSubscriptionRequest{ConnectionId: conn.GetId(), EventKey: echo}, code: fp, reason: "EVENT_NOT_FOUND"},
		{method: "SubscriptionService/CreateSubscription", name: "app cannot be reached", req: &hookmapv1.CreateSubscriptionRequest{ConnectionId: unreachable.GetId(), EventKey: "item", Parameters: apptest.Struct(t, map[string]any{"project": "p"})}, code: codes.Unavailable, reason: "APP_UNREACHABLE"},
		{method: "SubscriptionService/GetSubscription", name: "7 MB id", req: &hookmapv1.GetSubscriptionRequest{Id: huge}, code: inv, field: "id"},
		{method: "SubscriptionService/GetSubscription", name: "unknown id", req: &hookmapv1.GetSubscriptionRequest{Id: echo}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "SubscriptionService/ListSubscriptions", name: "unknown connection", req: &hookmapv1.ListSubscriptionsRequest{ConnectionId: echo}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "SubscriptionService/ListSubscriptions", name: "garbage token", req: &hookmapv1.ListSubscriptionsRequest{PageToken: "%%%"}, code: inv, field: "page_token"},
		{method: "SubscriptionService/DeleteSubscription", name: "unknown id", req: &hookmapv1.DeleteSubscriptionRequest{Id: echo}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "SubscriptionService/RefreshSubscription", name: "unknown id", req: &hookmapv1.RefreshSubscriptionRequest{Id: echo}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "SubscriptionService/ReconcileWebhooks", name: "parameters past the nesting limit", req: &hookmapv1.ReconcileWebhooksRequest{ConnectionId: unreachable.GetId(), EventKey: "item", Mode: hookmapv1.ReconcileMode_RECONCILE_MODE_DRY_RUN, Parameters: overLimit}, code: inv, field: "parameters"},
		{method: "SubscriptionService/ReconcileWebhooks", name: "no mode", req: &hookmapv1.ReconcileWebhooksRequest{ConnectionId: unreachable.GetId(), EventKey: "item"}, code: inv, field: "mode"},
		{method: "SubscriptionService/ReconcileWebhooks", name: "unknown mode", req: &hookmapv1.ReconcileWebhooksRequest{ConnectionId: unreachable.GetId(), EventKey: "item", Mode: 99}, code: inv, field: "mode"},
		{method: "SubscriptionService/ReconcileWebhooks", name: "event without a list method", req: &hookmapv1.ReconcileWebhooksRequest{ConnectionId: conn.GetId(), EventKey: "plain", Mode: hookmapv1.ReconcileMode_RECONCILE_MODE_DRY_RUN}, code: fp, reason: "METHOD_NOT_FOUND"},
		{method: "SubscriptionService/ReconcileWebhooks", name: "app cannot be reached", req: &hookmapv1.ReconcileWebhooksRequest{ConnectionId: unreachable.GetId(), EventKey: "item", Mode: hookmapv1.ReconcileMode_RECONCILE_MODE_DRY_RUN, Parameters: apptest.Struct(t, map[string]any{"project": "p"})}, code: codes.Unavailable, reason: "APP_UNREACHABLE"},

		{method: "EventService/StreamEvents", name: "no consumer", req: &hookmapv1.StreamEventsRequest{}, code: inv, field: "consumer"},
		{method: "EventService/StreamEvents", name: "start before the first seq", req: &hookmapv1.StreamEventsRequest{Consumer: "c", Start: &hookmapv1.StreamPosition{Position: &hookmapv1.StreamPosition_Seq{Seq: math.MinInt64}}}, code: inv, field: "start.seq"},
		{method: "EventService/StreamEvents", name: "NUL in the consumer", req: &hookmapv1.StreamEventsRequest{Consumer: "a\x00b"}, code: inv, field: "consumer"},
		{method: "EventService/AckEvents", name: "control character in the consumer", req: &hookmapv1.AckEventsRequest{Consumer: "a\nb", Seq: 0}, code: inv, field: "consumer"},
		{method: "EventService/StreamEvents", name: "7 MB consumer", req: &hookmapv1.StreamEventsRequest{Consumer: huge}, code: inv, field: "consumer"},
		{method: "EventService/StreamEvents", name: "1,001 types in the filter", req: &hookmapv1.StreamEventsRequest{Consumer: "c", Filter: &hookmapv1.EventFilter{Types: make([]string, 1001)}}, code: inv, field: "filter.types"},
		{method: "EventService/AckEvents", name: "seq beyond the last event", req: &hookmapv1.AckEventsRequest{Consumer: "c", Seq: math.MaxInt64}, code: inv, field: "seq"},
		{method: "EventService/AckEvents", name: "negative seq", req: &hookmapv1.AckEventsRequest{Consumer: "c", Seq: -1}, code: inv, field: "seq"},
		{method: "EventService/ListEvents", name: "garbage token", req: &hookmapv1.ListEventsRequest{PageToken: "-5"}, code: inv, field: "page_token"},
		{method: "EventService/ListEvents", name: "1,001 connection ids", req: &hookmapv1.ListEventsRequest{Filter: &hookmapv1.EventFilter{ConnectionIds: make([]string, 1001)}}, code: inv, field: "filter.connection_ids"},
		{method: "EventService/ListEvents", name: "1,000 ids in each filter field", req: &hookmapv1.ListEventsRequest{Filter: &hookmapv1.EventFilter{
			ConnectionIds: make([]string, 1000), SubscriptionIds: make([]string, 1000), EventKeys: make([]string, 1000), Types: make([]string, 1000),
		}}, code: codes.OK},
		{method: "EventService/ListDeliveries", name: "a token of another list", req: &hookmapv1.ListDeliveriesRequest{PageToken: pageToken(t, h, "conn")}, code: inv, field: "page_token"},
		{method: "EventService/ListDeliveries", name: "unknown outcome", req: &hookmapv1.ListDeliveriesRequest{Outcome: 99}, code: inv, field: "outcome"},
		{method: "EventService/GetDelivery", name: "unknown id", req: &hookmapv1.GetDeliveryRequest{Id: echo}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "EventService/GetDelivery", name: "7 MB id", req: &hookmapv1.GetDeliveryRequest{Id: huge}, code: inv, field: "id"},
		{method: "EventService/GetDelivery", name: "unknown record format", req: &hookmapv1.GetDeliveryRequest{Id: kept.GetId(), RecordFormat: 99}, code: inv, field: "record_format"},
		{method: "EventService/GetDelivery", name: "a kept request", req: &hookmapv1.GetDeliveryRequest{Id: kept.GetId()}, code: codes.OK},
		{method: "EventService/ListEvents", name: "unknown record format", req: &hookmapv1.ListEventsRequest{RecordFormat: 99}, code: inv, field: "record_format"},
		{method: "EventService/ReplayDelivery", name: "unknown id", req: &hookmapv1.ReplayDeliveryRequest{Id: echo}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "EventService/ReplayDelivery", name: "nothing kept to replay", req: &hookmapv1.ReplayDeliveryRequest{Id: done.GetId()}, code: fp, reason: "NOTHING_TO_REPLAY"},

		{method: "WebhookService/RegisterWebhook", name: "no webhook", req: &hookmapv1.RegisterWebhookRequest{}, code: inv, field: "webhook"},
		{method: "WebhookService/RegisterWebhook", name: "id taken", req: &hookmapv1.RegisterWebhookRequest{Webhook: &hookmapv1.Webhook{Id: "wh", Url: target.URL, Method: "POST"}}, code: ae, reason: "ALREADY_EXISTS", field: "webhook.id"},
		{method: "WebhookService/RegisterWebhook", name: "7 MB url", req: &hookmapv1.RegisterWebhookRequest{Webhook: &hookmapv1.Webhook{Id: "w2", Url: huge}}, code: inv, field: "webhook.url"},
		{method: "WebhookService/UpdateWebhook", name: "unknown id", req: &hookmapv1.UpdateWebhookRequest{Webhook: &hookmapv1.Webhook{Id: echo, Url: target.URL}}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "WebhookService/GetWebhook", name: "unknown id", req: &hookmapv1.GetWebhookRequest{Id: echo}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "WebhookService/ListWebhooks", name: "garbage token", req: &hookmapv1.ListWebhooksRequest{PageToken: "\x00garbage"}, code: inv, field: "page_token"},
		{method: "WebhookService/DeleteWebhook", name: "unknown id", req: &hookmapv1.DeleteWebhookRequest{Id: echo}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "WebhookService/TriggerWebhook", name: "data past the nesting limit", req: &hookmapv1.TriggerWebhookRequest{WebhookId: "wh", Data: structpb.NewStructValue(overLimit)}, code: inv, field: "data"},
		{method: "WebhookService/TriggerWebhook", name: "data at the nesting limit", req: &hookmapv1.TriggerWebhookRequest{WebhookId: "wh", Data: structpb.NewStructValue(nestedStruct(t, value.MaxDepth-1))}, code: codes.OK},
		{method: "WebhookService/TriggerWebhook", name: "unknown id", req: &hookmapv1.TriggerWebhookRequest{WebhookId: echo}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "WebhookService/ListInvocations", name: "time that is not a time", req: &hookmapv1.ListInvocationsRequest{StartTime: &timestamppb.Timestamp{Seconds: math.MaxInt64}}, code: inv, field: "start_time"},
		{method: "WebhookService/ListInvocations", name: "a token of another list", req: &hookmapv1.ListInvocationsRequest{PageToken: pageToken(t, h, "conn")}, code: inv, field: "page_token"},
		{method: "WebhookService/GetInvocation", name: "unknown id", req: &hookmapv1.GetInvocationRequest{ReferenceId: echo}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "WebhookService/ReloadWebhooks", name: "no webhooks file", req: &hookmapv1.ReloadWebhooksRequest{}, code: fp, reason: "WEBHOOKS_FILE_UNAVAILABLE"},
		{method: "WebhookService/RegisterWebhook", name: "next into an unknown webhook", req: &hookmapv1.RegisterWebhookRequest{Webhook: &hookmapv1.Webhook{Id: "w3", Url: target.URL, Next: &hookmapv1.WebhookNext{WebhookId: echo}}}, code: inv, field: "webhook.next.webhook_id"},
		{method: "WebhookService/RegisterWebhook", name: "next data past the nesting limit", req: &hookmapv1.RegisterWebhookRequest{Webhook: &hookmapv1.Webhook{Id: "w3", Url: target.URL, Next: &hookmapv1.WebhookNext{WebhookId: "wh", Data: structpb.NewStructValue(overLimit)}}}, code: inv},

		{method: "DestinationService/CreateDestination", name: "no destination", req: &hookmapv1.CreateDestinationRequest{}, code: inv, field: "destination"},
		{method: "DestinationService/CreateDestination", name: "unsigned webhook", req: &hookmapv1.CreateDestinationRequest{Destination: &hookmapv1.Destination{Id: "d2", WebhookId: "wh"}}, code: inv, field: "destination.webhook_id"},
		{method: "DestinationService/CreateDestination", name: "unknown webhook", req: &hookmapv1.CreateDestinationRequest{Destination: &hookmapv1.Destination{Id: "d2", WebhookId: echo}}, code: inv, field: "destination.webhook_id"},
		{method: "DestinationService/CreateDestination", name: "id taken", req: &hookmapv1.CreateDestinationRequest{Destination: &hookmapv1.Destination{Id: "dest", WebhookId: "signed"}}, code: ae, reason: "ALREADY_EXISTS", field: "destination.id"},
		{method: "DestinationService/CreateDestination", name: "retry window that is not a duration", req: &hookmapv1.CreateDestinationRequest{Destination: &hookmapv1.Destination{Id: "d2", WebhookId: "signed", RetryWindow: &durationpb.Duration{Seconds: -1, Nanos: 1}}}, code: inv, field: "destination.retry_window"},
		{method: "DestinationService/GetDestination", name: "unknown id", req: &hookmapv1.GetDestinationRequest{Id: echo}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "DestinationService/ListDestinations", name: "garbage token", req: &hookmapv1.ListDestinationsRequest{PageToken: "\x00garbage"}, code: inv, field: "page_token"},
		{method: "DestinationService/UpdateDestination", name: "unknown id", req: &hookmapv1.UpdateDestinationRequest{Destination: &hookmapv1.Destination{Id: echo, WebhookId: "signed"}}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "DestinationService/UpdateDestination", name: "nothing to update", req: &hookmapv1.UpdateDestinationRequest{Destination: &hookmapv1.Destination{Id: "dest"}}, code: inv, field: "update_mask"},
		{method: "DestinationService/DeleteDestination", name: "unknown id", req: &hookmapv1.DeleteDestinationRequest{Id: echo}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "DestinationService/PauseDestination", name: "unknown id", req: &hookmapv1.PauseDestinationRequest{Id: echo}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "DestinationService/ResumeDestination", name: "unknown id", req: &hookmapv1.ResumeDestinationRequest{Id: echo}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "DestinationService/ListDestinationEvents", name: "no destination", req: &hookmapv1.ListDestinationEventsRequest{}, code: inv, field: "destination_id"},
		{method: "DestinationService/ListDestinationEvents", name: "unknown destination", req: &hookmapv1.ListDestinationEventsRequest{DestinationId: echo}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "DestinationService/RetryDestinationEvent", name: "no seq", req: &hookmapv1.RetryDestinationEventRequest{DestinationId: "dest"}, code: inv, field: "seq"},
		{method: "DestinationService/RetryDestinationEvent", name: "no such failed event", req: &hookmapv1.RetryDestinationEventRequest{DestinationId: "dest", Seq: math.MaxInt64}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "DestinationService/RetryDestinationEvents", name: "unknown destination", req: &hookmapv1.RetryDestinationEventsRequest{DestinationId: echo}, code: nf, reason: "RESOURCE_NOT_FOUND"},

		{method: "AdminService/CreateWorkspace", name: "id that is not a workspace id", req: &hookmapv1.CreateWorkspaceRequest{Id: echo}, code: inv, field: "id"},
		{method: "AdminService/CreateWorkspace", name: "id taken", req: &hookmapv1.CreateWorkspaceRequest{Id: "default"}, code: ae, reason: "ALREADY_EXISTS"},
		{method: "AdminService/ListWorkspaces", name: "garbage token", req: &hookmapv1.ListWorkspacesRequest{PageToken: "garbage"}, code: inv, field: "page_token"},
		{method: "AdminService/CreateApiKey", name: "unknown workspace", req: &hookmapv1.CreateApiKeyRequest{WorkspaceId: echo}, code: nf, reason: "RESOURCE_NOT_FOUND"},
		{method: "AdminService/RevokeApiKey", name: "unknown id", req: &hookmapv1.RevokeApiKeyRequest{Id: echo}, code: nf, reason: "RESOURCE_NOT_FOUND"},
	}

	methods := hookmapMethods(t)
	covered := map[string]bool{}
	for _, c := range cases {
		md, ok := methods[c.method]
		require.True(t, ok, "%s is not an RPC of hookmap.v1", c.method)
		covered[c.method] = true
		err := invokeHostile(ctx, h.Conn, md, c.req, c.code != codes.OK)
		what := c.method + ": " + c.name
		st := requireServed(t, err, what)
		require.Equal(t, c.code, st.Code(), "%s: %s", what, st.Message())
		if c.reason != "" {
			require.Equal(t, c.reason, apptest.Reason(st), "%s: %s", what, st.Message())
		}
		if c.field != "" {
			require.Contains(t, apptest.FieldViolations(st), c.field, "%s: %s", what, st.Message())
		}
		stillServes(t, h, what)
	}
	var missing []string
	for name := range methods {
		if !covered[name] {
			missing = append(missing, name)
		}
	}
	slices.Sort(missing)
	require.Empty(t, missing, "every RPC needs hostile cases in this table")

	// The generic set, for every RPC, from a request that is otherwise valid.
	valid := map[string]proto.Message{
		"ConnectorService/GetConnector":           &hookmapv1.GetConnectorRequest{Key: "signedhooks"},
		"ConnectorService/EvaluateMethod":         &hookmapv1.EvaluateMethodRequest{ConnectorKey: "signedhooks", EventKey: "plain", Method: "subscribe"},
		"ConnectorService/SetConnectorParameters": &hookmapv1.SetConnectorParametersRequest{ConnectorKey: "signedhooks"},
		"ConnectorService/ListGlobalWebhooks":     &hookmapv1.ListGlobalWebhooksRequest{ConnectorKey: "chatapp"},
		"ConnectionService/CreateConnection":      &hookmapv1.CreateConnectionRequest{ConnectorKey: "signedhooks", Name: "n"},
		"ConnectionService/GetConnection":         &hookmapv1.GetConnectionRequest{Id: conn.GetId()},
		"ConnectionService/UpdateConnection":      &hookmapv1.UpdateConnectionRequest{Id: conn.GetId(), Name: "n"},
		"ConnectionService/DeleteConnection":      &hookmapv1.DeleteConnectionRequest{Id: "conn_nope"},
		"ConnectionService/AuthorizeConnection": &hookmapv1.AuthorizeConnectionRequest{ConnectorKey: "oauthapp", Name: "n",
			Parameters: apptest.Struct(t, map[string]any{"baseUri": down}), ReturnUrl: "https://app.example/done"},
		"SubscriptionService/CreateSubscription":  &hookmapv1.CreateSubscriptionRequest{ConnectionId: conn.GetId(), EventKey: "plain"},
		"SubscriptionService/GetSubscription":     &hookmapv1.GetSubscriptionRequest{Id: sub.GetId()},
		"SubscriptionService/ListSubscriptions":   &hookmapv1.ListSubscriptionsRequest{ConnectionId: conn.GetId()},
		"SubscriptionService/DeleteSubscription":  &hookmapv1.DeleteSubscriptionRequest{Id: "nope"},
		"SubscriptionService/RefreshSubscription": &hookmapv1.RefreshSubscriptionRequest{Id: sub.GetId()},
		"SubscriptionService/ReconcileWebhooks": &hookmapv1.ReconcileWebhooksRequest{ConnectionId: unreachable.GetId(), EventKey: "item",
			Mode: hookmapv1.ReconcileMode_RECONCILE_MODE_DRY_RUN, Parameters: apptest.Struct(t, map[string]any{"project": "p"})},
		"EventService/StreamEvents":      &hookmapv1.StreamEventsRequest{Consumer: "hostile", Start: &hookmapv1.StreamPosition{Position: &hookmapv1.StreamPosition_Earliest{Earliest: true}}},
		"EventService/AckEvents":         &hookmapv1.AckEventsRequest{Consumer: "hostile", Seq: 1},
		"EventService/ReplayDelivery":    &hookmapv1.ReplayDeliveryRequest{Id: kept.GetId()},
		"EventService/GetDelivery":       &hookmapv1.GetDeliveryRequest{Id: done.GetId()},
		"WebhookService/RegisterWebhook": &hookmapv1.RegisterWebhookRequest{Webhook: &hookmapv1.Webhook{Id: "hostile", Url: target.URL, Method: "POST", Headers: map[string]string{"X-A": "1"}}},
		"WebhookService/UpdateWebhook":   &hookmapv1.UpdateWebhookRequest{Webhook: &hookmapv1.Webhook{Id: "wh", Url: target.URL}},
		"WebhookService/GetWebhook":      &hookmapv1.GetWebhookRequest{Id: "wh"},
		"WebhookService/DeleteWebhook":   &hookmapv1.DeleteWebhookRequest{Id: "nope"},
		"WebhookService/TriggerWebhook":  &hookmapv1.TriggerWebhookRequest{WebhookId: "wh", Data: structpb.NewStringValue("x")},
		"WebhookService/ListInvocations": &hookmapv1.ListInvocationsRequest{WebhookId: "wh"},
		"WebhookService/GetInvocation":   &hookmapv1.GetInvocationRequest{ReferenceId: tr.GetReferenceId()},
		"AdminService/CreateWorkspace":   &hookmapv1.CreateWorkspaceRequest{Id: "hostile"},
		"DestinationService/CreateDestination": &hookmapv1.CreateDestinationRequest{Destination: &hookmapv1.Destination{Id: "hostile", WebhookId: "signed",
			Filter: &hookmapv1.EventFilter{Types: []string{"t"}}}},
		"DestinationService/GetDestination":         &hookmapv1.GetDestinationRequest{Id: "dest"},
		"DestinationService/UpdateDestination":      &hookmapv1.UpdateDestinationRequest{Destination: &hookmapv1.Destination{Id: "dest", RetryWindow: durationpb.New(time.Hour)}},
		"DestinationService/DeleteDestination":      &hookmapv1.DeleteDestinationRequest{Id: "nope"},
		"DestinationService/PauseDestination":       &hookmapv1.PauseDestinationRequest{Id: "nope"},
		"DestinationService/ResumeDestination":      &hookmapv1.ResumeDestinationRequest{Id: "nope"},
		"DestinationService/ListDestinationEvents":  &hookmapv1.ListDestinationEventsRequest{DestinationId: "dest"},
		"DestinationService/RetryDestinationEvent":  &hookmapv1.RetryDestinationEventRequest{DestinationId: "dest", Seq: 1},
		"DestinationService/RetryDestinationEvents": &hookmapv1.RetryDestinationEventsRequest{DestinationId: "dest"},
		"AdminService/CreateApiKey":                 &hookmapv1.CreateApiKeyRequest{WorkspaceId: "default"},
		"AdminService/RevokeApiKey":                 &hookmapv1.RevokeApiKeyRequest{Id: "key_nope"},
		"EventService/ListDeliveries":               &hookmapv1.ListDeliveriesRequest{SubscriptionId: sub.GetId()},
		"EventService/ListEvents":                   &hookmapv1.ListEventsRequest{},
		"ConnectionService/ListConnections":         &hookmapv1.ListConnectionsRequest{},
	}
	names := make([]string, 0, len(methods))
	for name := range methods {
		names = append(names, name)
	}
	slices.Sort(names)
	services := map[string]bool{}
	for _, name := range names {
		md := methods[name]
		base := valid[name]
		if base == nil {
			base = newMessage(t, md.Input())
		}
		service := string(md.Parent().Name())
		for _, m := range hostileMutations(t, base, long, echo, !services[service]) {
			what := name + ": " + m.name
			st := requireServed(t, invokeHostile(ctx, h.Conn, md, m.req, m.code != nil), what)
			if m.code != nil {
				require.Equal(t, *m.code, st.Code(), "%s: %s", what, st.Message())
			}
			if m.reason != "" {
				require.Equal(t, m.reason, apptest.Reason(st), "%s: %s", what, st.Message())
			}
			if m.field != "" {
				require.Contains(t, apptest.FieldViolations(st), m.field, "%s: %s", what, st.Message())
			}
			stillServes(t, h, what)
		}
		services[service] = true
	}

	// Everything that was accepted reads back: listed, fetched and streamed.
	readEverythingBack(t, h)
}

// TestRegisterWebhookInAnUnknownWorkspace: the admin token naming a workspace that does
// not exist gets NOT_FOUND saying so (RegisterWebhook said "webhook not found"), on
// every workspace-scoped RPC; AdminService calls, which act on no workspace, are not
// refused.
func TestRegisterWebhookInAnUnknownWorkspace(t *testing.T) {
	h := apptest.Start(t, apptest.WithConnectors("testdata/connectors"), apptest.WithAdminToken(adminToken))
	ctx := h.As(adminToken, "nowhere")
	webhooks := hookmapv1.NewWebhookServiceClient(h.Conn)
	_, err := webhooks.RegisterWebhook(ctx, &hookmapv1.RegisterWebhookRequest{Webhook: &hookmapv1.Webhook{Id: "w", Url: "https://example.com/x", Method: "POST"}})
	apptest.RequireReason(t, err, codes.NotFound, "WORKSPACE_NOT_FOUND", `workspace "nowhere" not found`)
	_, err = h.Connections.ListConnections(ctx, &hookmapv1.ListConnectionsRequest{})
	apptest.RequireReason(t, err, codes.NotFound, "WORKSPACE_NOT_FOUND", "nowhere")
	stream, err := h.Events.StreamEvents(ctx, &hookmapv1.StreamEventsRequest{Consumer: "c"})
	require.NoError(t, err)
	_, err = stream.Recv()
	apptest.RequireReason(t, err, codes.NotFound, "WORKSPACE_NOT_FOUND", "nowhere")

	admin := hookmapv1.NewAdminServiceClient(h.Conn)
	_, err = admin.CreateWorkspace(ctx, &hookmapv1.CreateWorkspaceRequest{Id: "nowhere"})
	require.NoError(t, err, "AdminService acts on no workspace")
	_, err = webhooks.RegisterWebhook(ctx, &hookmapv1.RegisterWebhookRequest{Webhook: &hookmapv1.Webhook{Id: "w", Url: "https://example.com/x", Method: "POST"}})
	require.NoError(t, err, "once it exists")
}

// TestEvaluateMethodSaysTheGuardRefused: with the network guard on (no
// --allow-private-networks), EvaluateMethod says why the call was refused, as
// CreateSubscription does, instead of an INTERNAL that hides it.
func TestEvaluateMethodSaysTheGuardRefused(t *testing.T) {
	h := apptest.Start(t, apptest.WithConnectors("testdata/connectors"))
	input := apptest.Struct(t, map[string]any{
		"connection":  map[string]any{"id": "c", "parameters": map[string]any{"baseUri": "http://" + closedAddr(t)}},
		"credentials": map[string]any{"apiKey": "k"}, "connectorParameters": map[string]any{}, "parameters": map[string]any{"project": "p"},
	})
	_, err := h.Connectors.EvaluateMethod(h.Ctx(), &hookmapv1.EvaluateMethodRequest{
		ConnectorKey: "fakehooks", EventKey: "item", Method: "list", AllowSideEffects: true, Input: input,
	})
	apptest.RequireReason(t, err, codes.FailedPrecondition, "ADDRESS_REFUSED", "--allow-private-networks")
}

// mutation is one generic hostile request: a message or raw bytes, and what it must answer
// beyond being served (nil code: any status but INTERNAL and UNKNOWN).
type mutation struct {
	name   string
	req    any // proto.Message or []byte
	code   *codes.Code
	reason string
	field  string
}

func codeOf(c codes.Code) *codes.Code { return &c }

// hostileMutations returns the generic hostile requests built from base.
func hostileMutations(t *testing.T, base proto.Message, long, echo string, oversize bool) []mutation {
	t.Helper()
	invalid, exhausted := codeOf(codes.InvalidArgument), codeOf(codes.ResourceExhausted)
	valid, err := proto.Marshal(base)
	require.NoError(t, err)
	truncated := protowire.AppendTag(slices.Clone(valid), 1, protowire.BytesType)
	truncated = protowire.AppendVarint(truncated, 100)
	truncated = append(truncated, "abc"...)
	var oversized []byte
	if oversize {
		oversized = protowire.AppendTag(nil, 1000, protowire.BytesType)
		oversized = protowire.AppendBytes(oversized, make([]byte, 9<<20))
	}
	out := []mutation{
		{name: "malformed message", req: []byte{0xff, 0xff, 0xff, 0xff, 0xff}, code: invalid, reason: "MALFORMED_REQUEST"},
		{name: "truncated message", req: truncated, code: invalid, reason: "MALFORMED_REQUEST"},
		{name: "empty message", req: []byte{}},
		{name: "unknown fields", req: protowire.AppendBytes(protowire.AppendTag(slices.Clone(valid), 999, protowire.BytesType), []byte("x"))},
	}
	if oversize {
		// The size limit is a server option: one method of each service shows it holds.
		out = append(out, mutation{name: "message over 8 MiB", req: oversized, code: exhausted})
	}
	if n := firstString(base); n != 0 {
		bad := protowire.AppendBytes(protowire.AppendTag(slices.Clone(valid), n, protowire.BytesType), []byte("\xff\xfe"))
		out = append(out, mutation{name: "invalid UTF-8 in a string", req: bad, code: invalid, reason: "MALFORMED_REQUEST"})
	}
	set := func(name string, field string, edit func(m protoreflect.Message), code *codes.Code) {
		m := proto.Clone(base)
		edit(m.ProtoReflect())
		out = append(out, mutation{name: name, req: m, code: code, field: field})
	}
	var walk func(desc protoreflect.MessageDescriptor, prefix string, at func(m protoreflect.Message) protoreflect.Message)
	walk = func(desc protoreflect.MessageDescriptor, prefix string, at func(m protoreflect.Message) protoreflect.Message) {
		for i := range desc.Fields().Len() {
			fd := desc.Fields().Get(i)
			path := prefix + string(fd.Name())
			target := func(m protoreflect.Message) protoreflect.Message { return at(m) }
			switch {
			case fd.IsMap() && fd.MapKey().Kind() == protoreflect.StringKind && fd.MapValue().Kind() == protoreflect.StringKind:
				set(path+": a value over the limit", path+"[k]", func(m protoreflect.Message) {
					mp := target(m).Mutable(fd).Map()
					mp.Set(protoreflect.ValueOfString("k").MapKey(), protoreflect.ValueOfString(long))
				}, invalid)
			case fd.IsList() && fd.Kind() == protoreflect.StringKind:
				set(path+": an entry over the limit", path+"[0]", func(m protoreflect.Message) {
					target(m).Mutable(fd).List().Append(protoreflect.ValueOfString(long))
				}, invalid)
				set(path+": too many entries", path, func(m protoreflect.Message) {
					l := target(m).Mutable(fd).List()
					for range api.MaxRepeated + 1 {
						l.Append(protoreflect.ValueOfString("a"))
					}
				}, invalid)
			case fd.IsList() || fd.IsMap():
			case fd.Kind() == protoreflect.StringKind:
				set(path+": over the limit", path, func(m protoreflect.Message) { target(m).Set(fd, protoreflect.ValueOfString(long)) }, invalid)
				set(path+": 60 KiB", "", func(m protoreflect.Message) { target(m).Set(fd, protoreflect.ValueOfString(echo)) }, nil)
				if fd.Name() == "page_token" {
					set(path+": not a token", path, func(m protoreflect.Message) { target(m).Set(fd, protoreflect.ValueOfString("%%%")) }, invalid)
				}
			case fd.Kind() == protoreflect.Int32Kind && fd.Name() == "page_size":
				set(path+": negative", path, func(m protoreflect.Message) { target(m).Set(fd, protoreflect.ValueOfInt32(-1)) }, invalid)
				set(path+": the largest", "", func(m protoreflect.Message) { target(m).Set(fd, protoreflect.ValueOfInt32(math.MaxInt32)) }, nil)
			case fd.Kind() == protoreflect.Int32Kind:
				for _, n := range []int32{-1, math.MinInt32, math.MaxInt32} {
					set(fmt.Sprintf("%s: %d", path, n), "", func(m protoreflect.Message) { target(m).Set(fd, protoreflect.ValueOfInt32(n)) }, nil)
				}
			case fd.Kind() == protoreflect.Int64Kind:
				for _, n := range []int64{-1, math.MinInt64, math.MaxInt64} {
					set(fmt.Sprintf("%s: %d", path, n), "", func(m protoreflect.Message) { target(m).Set(fd, protoreflect.ValueOfInt64(n)) }, nil)
				}
			case fd.Kind() == protoreflect.EnumKind:
				set(path+": unknown value", "", func(m protoreflect.Message) { target(m).Set(fd, protoreflect.ValueOfEnum(999)) }, nil)
			case fd.Kind() == protoreflect.MessageKind:
				switch fd.Message().FullName() {
				case "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue":
					for _, d := range []struct {
						name  string
						depth int
						code  *codes.Code
						field string
					}{
						{"at the nesting limit", value.MaxDepth, nil, ""},
						{"past the nesting limit", value.MaxDepth + 1, invalid, path},
					} {
						set(path+": "+d.name, d.field, func(m protoreflect.Message) {
							target(m).Set(fd, protoreflect.ValueOfMessage(jsonLike(t, fd.Message().FullName(), d.depth).ProtoReflect()))
						}, d.code)
					}
					if prefix == "" {
						// Past protobuf's own recursion limit: the message cannot be decoded.
						raw := protowire.AppendTag(slices.Clone(valid), fd.Number(), protowire.BytesType)
						raw = protowire.AppendBytes(raw, deepJSONLike(fd.Message().FullName(), 6000))
						out = append(out, mutation{name: path + ": past protobuf's recursion limit", req: raw, code: invalid, reason: "MALFORMED_REQUEST"})
					}
				case "google.protobuf.Timestamp":
					// Output-only in some messages (create_time): any answer but a failure.
					set(path+": not a time", "", func(m protoreflect.Message) {
						target(m).Set(fd, protoreflect.ValueOfMessage((&timestamppb.Timestamp{Seconds: math.MaxInt64, Nanos: -1}).ProtoReflect()))
					}, nil)
				case "google.protobuf.Duration":
					set(path+": not a duration", "", func(m protoreflect.Message) {
						target(m).Set(fd, protoreflect.ValueOfMessage((&durationpb.Duration{Seconds: math.MaxInt64, Nanos: -1}).ProtoReflect()))
					}, nil)
				default:
					if prefix == "" {
						walk(fd.Message(), path+".", func(m protoreflect.Message) protoreflect.Message { return m.Mutable(fd).Message() })
					}
				}
			}
		}
	}
	walk(base.ProtoReflect().Descriptor(), "", func(m protoreflect.Message) protoreflect.Message { return m })
	return out
}

// firstString returns the number of base's first singular string field, 0 when none.
func firstString(base proto.Message) protowire.Number {
	fields := base.ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		if fd := fields.Get(i); fd.Kind() == protoreflect.StringKind && !fd.IsList() && !fd.IsMap() {
			return fd.Number()
		}
	}
	return 0
}

// nestedStruct is a Struct depth objects deep.
func nestedStruct(t *testing.T, depth int) *structpb.Struct {
	var v any = "leaf"
	for range depth - 1 {
		v = map[string]any{"k": v}
	}
	return apptest.Struct(t, map[string]any{"k": v})
}

// jsonLike is a Struct, Value or ListValue depth levels deep.
func jsonLike(t *testing.T, name protoreflect.FullName, depth int) proto.Message {
	s := nestedStruct(t, depth)
	switch name {
	case "google.protobuf.Value":
		return structpb.NewStructValue(s)
	case "google.protobuf.ListValue":
		return &structpb.ListValue{Values: []*structpb.Value{structpb.NewStructValue(nestedStruct(t, depth-1))}}
	}
	return s
}

// deepJSONLike encodes a Struct, Value or ListValue holding lists nested depth deep, by hand
// (each list level is two nested messages).
func deepJSONLike(name protoreflect.FullName, depth int) []byte {
	// sizes[i] is the size of the Value nested i lists deep.
	sizes := make([]int, depth+1)
	leaf := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 0) // null_value
	sizes[0] = len(leaf)
	list := func(inner int) int { return protowire.SizeTag(1) + protowire.SizeBytes(inner) }
	for i := 1; i <= depth; i++ {
		sizes[i] = protowire.SizeTag(6) + protowire.SizeBytes(list(sizes[i-1]))
	}
	v := make([]byte, 0, sizes[depth])
	for i := depth; i >= 1; i-- {
		v = protowire.AppendTag(v, 6, protowire.BytesType) // Value.list_value
		v = protowire.AppendVarint(v, uint64(list(sizes[i-1])))
		v = protowire.AppendTag(v, 1, protowire.BytesType) // ListValue.values
		v = protowire.AppendVarint(v, uint64(sizes[i-1]))
	}
	v = append(v, leaf...)
	switch name {
	case "google.protobuf.Struct":
		entry := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "k")
		entry = protowire.AppendBytes(protowire.AppendTag(entry, 2, protowire.BytesType), v)
		return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), entry)
	case "google.protobuf.ListValue":
		return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), v)
	}
	return v
}

// hookmapMethods returns every RPC of package hookmap.v1 in the registry, by
// "Service/Method".
func hookmapMethods(t *testing.T) map[string]protoreflect.MethodDescriptor {
	out := map[string]protoreflect.MethodDescriptor{}
	protoregistry.GlobalFiles.RangeFilesByPackage("hookmap.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			s := fd.Services().Get(i)
			for j := range s.Methods().Len() {
				m := s.Methods().Get(j)
				out[string(s.Name())+"/"+string(m.Name())] = m
			}
		}
		return true
	})
	require.GreaterOrEqual(t, len(out), 34, "the registry holds hookmap.v1's services")
	return out
}

func newMessage(t *testing.T, md protoreflect.MessageDescriptor) proto.Message {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
	require.NoError(t, err)
	return mt.New().Interface()
}

// rawCodec sends a []byte as the message: what no client library would build.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*(v.(*[]byte)) = data.Materialize()
	return nil
}

// invokeHostile invokes md with req (a message or raw bytes); a server stream is opened and its
// first message read. Unless refused, a stream with nothing to send yet counts as served.
func invokeHostile(ctx context.Context, conn *grpc.ClientConn, md protoreflect.MethodDescriptor, req any, refused bool) error {
	name := "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
	var opts []grpc.CallOption
	var reply any
	if _, raw := req.([]byte); raw {
		opts = append(opts, grpc.ForceCodecV2(rawCodec{}))
		reply = new([]byte)
	} else {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
		if err != nil {
			return err
		}
		reply = mt.New().Interface()
	}
	if !md.IsStreamingServer() {
		return conn.Invoke(ctx, name, req, reply, opts...)
	}
	wait := 300 * time.Millisecond
	if refused {
		wait = time.Minute // the answer comes, however slow the machine
	}
	sctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	s, err := conn.NewStream(sctx, &grpc.StreamDesc{ServerStreams: true}, name, opts...)
	if err == nil {
		err = s.SendMsg(req)
	}
	if err == nil {
		err = s.CloseSend()
	}
	if err == nil {
		err = s.RecvMsg(reply)
	}
	if status.Code(err) == codes.DeadlineExceeded && ctx.Err() == nil {
		return nil // open, waiting for events
	}
	return err
}

// requireServed asserts err is a status a client chose by its input (never INTERNAL or
// UNKNOWN) whose message echoes nothing long, and returns it.
func requireServed(t *testing.T, err error, what string) *status.Status {
	t.Helper()
	st, ok := status.FromError(err)
	require.True(t, ok, "%s: not a status: %v", what, err)
	require.NotContains(t, []codes.Code{codes.Internal, codes.Unknown}, st.Code(), "%s: %s", what, st.Message())
	require.LessOrEqual(t, len(st.Message()), 4<<10, "%s: the message echoes what it was sent", what)
	for field, desc := range apptest.FieldViolations(st) {
		require.LessOrEqual(t, len(field)+len(desc), 2<<10, "%s: a violation echoes what it was sent", what)
	}
	return st
}

// stillServes asserts the server answers a call that reads the store.
func stillServes(t *testing.T, h *apptest.Harness, what string) {
	t.Helper()
	_, err := h.Connections.ListConnections(h.Ctx(), &hookmapv1.ListConnectionsRequest{PageSize: 1})
	require.NoError(t, err, "after %s", what)
}

// pageToken returns a valid page token of another list: "conn" (connections) or "dlv"
// (deliveries), each of which holds at least two records.
func pageToken(t *testing.T, h *apptest.Harness, kind string) string {
	t.Helper()
	var next string
	var err error
	switch kind {
	case "conn":
		var r *hookmapv1.ListConnectionsResponse
		r, err = h.Connections.ListConnections(h.Ctx(), &hookmapv1.ListConnectionsRequest{PageSize: 1})
		next = r.GetNextPageToken()
	default:
		var r *hookmapv1.ListDeliveriesResponse
		r, err = h.Events.ListDeliveries(h.Ctx(), &hookmapv1.ListDeliveriesRequest{PageSize: 1})
		next = r.GetNextPageToken()
	}
	require.NoError(t, err)
	require.NotEmpty(t, next)
	return next
}

// readEverythingBack lists, fetches and streams everything the workspace holds.
func readEverythingBack(t *testing.T, h *apptest.Harness) {
	t.Helper()
	ctx := h.Ctx()
	webhooks := hookmapv1.NewWebhookServiceClient(h.Conn)
	pages := func(list func(token string) (string, error)) {
		token := ""
		for {
			next, err := list(token)
			require.NoError(t, err)
			if token = next; token == "" {
				return
			}
		}
	}
	pages(func(token string) (string, error) {
		r, err := h.Connections.ListConnections(ctx, &hookmapv1.ListConnectionsRequest{PageToken: token})
		for _, c := range r.GetConnections() {
			_, gerr := h.Connections.GetConnection(ctx, &hookmapv1.GetConnectionRequest{Id: c.GetId()})
			require.NoError(t, gerr)
		}
		return r.GetNextPageToken(), err
	})
	pages(func(token string) (string, error) {
		r, err := h.Subscriptions.ListSubscriptions(ctx, &hookmapv1.ListSubscriptionsRequest{PageToken: token})
		for _, s := range r.GetSubscriptions() {
			_, gerr := h.Subscriptions.GetSubscription(ctx, &hookmapv1.GetSubscriptionRequest{Id: s.GetId()})
			require.NoError(t, gerr)
		}
		return r.GetNextPageToken(), err
	})
	pages(func(token string) (string, error) {
		r, err := h.Events.ListDeliveries(ctx, &hookmapv1.ListDeliveriesRequest{PageToken: token})
		return r.GetNextPageToken(), err
	})
	pages(func(token string) (string, error) {
		r, err := webhooks.ListWebhooks(ctx, &hookmapv1.ListWebhooksRequest{PageToken: token})
		return r.GetNextPageToken(), err
	})
	pages(func(token string) (string, error) {
		r, err := webhooks.ListInvocations(ctx, &hookmapv1.ListInvocationsRequest{PageToken: token})
		return r.GetNextPageToken(), err
	})
	events := listAllEvents(t, h)
	require.NotEmpty(t, events)
	streamed := h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "read-back",
		Start: &hookmapv1.StreamPosition{Position: &hookmapv1.StreamPosition_Earliest{Earliest: true}}}).Next(len(events))
	for _, e := range streamed {
		require.Empty(t, e.GetRecordError())
	}
	for _, k := range []string{"signedhooks", "chatapp"} {
		_, err := h.Connectors.ListGlobalWebhooks(ctx, &hookmapv1.ListGlobalWebhooksRequest{ConnectorKey: k})
		require.NoError(t, err)
	}
}

// closedAddr returns a loopback address that drops every connection it accepts: an app
// that cannot be reached. The listener stays the test's, so no other process can take
// the port meanwhile and answer.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	return l.Addr().String()
}

// TestListEventsPagesStayUnderTheClientLimit: however large the page asked for, a page of
// big records ends before it outgrows the 4 MiB a gRPC client receives by default, and
// the next pages hold the rest.
func TestListEventsPagesStayUnderTheClientLimit(t *testing.T) {
	h := apptest.Start(t, apptest.WithConnectors("testdata/connectors"))
	conn, err := h.Connections.CreateConnection(h.Ctx(), &hookmapv1.CreateConnectionRequest{ConnectorKey: "signedhooks"})
	require.NoError(t, err)
	sub, err := h.Subscriptions.CreateSubscription(h.Ctx(), &hookmapv1.CreateSubscriptionRequest{ConnectionId: conn.GetId(), EventKey: "plain"})
	require.NoError(t, err)
	const n = 6
	for i := range n {
		body := fmt.Sprintf(`{"i": %d, "s": %q}`, i, strings.Repeat("x", 900<<10))
		require.Equal(t, http.StatusOK, h.PostJSON(sub.GetWebhookUri(), body).Status)
	}
	var sizes []int
	total := 0
	token := ""
	for {
		page, err := h.Events.ListEvents(h.Ctx(), &hookmapv1.ListEventsRequest{PageSize: 1000, PageToken: token}, grpc.MaxCallRecvMsgSize(4<<20))
		require.NoError(t, err)
		require.LessOrEqual(t, proto.Size(page), 4<<20)
		sizes = append(sizes, len(page.GetEvents()))
		total += len(page.GetEvents())
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	require.Equal(t, n, total)
	require.Greater(t, len(sizes), 1, "the events did not fit in one page: %v", sizes)
}
