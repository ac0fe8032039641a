package app_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

// exampleSubscription subscribes (as ctx's caller) to the example-webhook connector's
// message event.
func exampleSubscription(t *testing.T, h *apptest.Harness, ctx context.Context) *hookmapv1.Subscription {
	t.Helper()
	conn, err := h.Connections.CreateConnection(ctx, &hookmapv1.CreateConnectionRequest{ConnectorKey: "example-webhook", Name: "demo"})
	require.NoError(t, err)
	sub, err := h.Subscriptions.CreateSubscription(ctx, &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: "message", Parameters: apptest.Struct(t, map[string]any{"channel": "general"}),
	})
	require.NoError(t, err)
	return sub
}

// postExactRecord subscribes (as ctx's caller) to the example-webhook connector and posts
// it a webhook whose record has an integer no double holds (2^60+1) and keys out of
// order; it returns the record's JSON as stored (keys sorted, every integer exact).
func postExactRecord(t *testing.T, h *apptest.Harness, ctx context.Context) string {
	t.Helper()
	sub := exampleSubscription(t, h, ctx)
	r := h.PostJSON(sub.GetWebhookUri(), `{"order_id":1152921504606846977,"b":[1,2.5],"a":{"z":"x","y":null}}`)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	return `{"a":{"y":null,"z":"x"},"b":[1,2.5],"order_id":1152921504606846977}`
}

// TestRecordFormats: records come as a Value by default (integers beyond 2^53 rounded) and,
// when the request asks for RECORD_FORMAT_JSON, as the stored JSON text with every integer
// exact, from both StreamEvents and ListEvents.
func TestRecordFormats(t *testing.T) {
	h := start(t)
	ctx := h.Ctx()
	want := postExactRecord(t, h, ctx)

	jsonStream := h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "exact", RecordFormat: hookmapv1.RecordFormat_RECORD_FORMAT_JSON})
	ev := jsonStream.Next(1)[0]
	require.Equal(t, want, ev.GetRecordJson())
	require.Nil(t, ev.GetRecord(), "the Value form is not sent beside the JSON text")

	for _, format := range []hookmapv1.RecordFormat{hookmapv1.RecordFormat_RECORD_FORMAT_UNSPECIFIED, hookmapv1.RecordFormat_RECORD_FORMAT_VALUE} {
		ev := h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "value-" + format.String(), RecordFormat: format}).Next(1)[0]
		require.Empty(t, ev.GetRecordJson(), format)
		require.Equal(t, float64(1<<60), ev.GetRecord().GetStructValue().AsMap()["order_id"], "%s: a Value carries a double", format)
	}

	page, err := h.Events.ListEvents(ctx, &hookmapv1.ListEventsRequest{RecordFormat: hookmapv1.RecordFormat_RECORD_FORMAT_JSON})
	require.NoError(t, err)
	require.Len(t, page.GetEvents(), 1)
	require.Equal(t, want, page.GetEvents()[0].GetRecordJson())
	require.Nil(t, page.GetEvents()[0].GetRecord())
	page, err = h.Events.ListEvents(ctx, &hookmapv1.ListEventsRequest{})
	require.NoError(t, err)
	require.Empty(t, page.GetEvents()[0].GetRecordJson())
	require.NotNil(t, page.GetEvents()[0].GetRecord())

	// An unknown format is refused with a field violation, on both calls.
	_, err = h.Events.ListEvents(ctx, &hookmapv1.ListEventsRequest{RecordFormat: 7})
	st := apptest.RequireCode(t, err, codes.InvalidArgument, "record_format")
	require.Contains(t, apptest.FieldViolations(st), "record_format")
	bad := h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "bad", RecordFormat: 7})
	st = apptest.RequireCode(t, bad.Err(), codes.InvalidArgument, "record_format")
	require.Contains(t, apptest.FieldViolations(st), "record_format")
}

// The JSON record format as production serves it (auth on, the calls on a workspace's
// API key): the stream and the list send the stored JSON text, exact, without the Value.
func TestRecordJSONWithAuthOn(t *testing.T) {
	h := apptest.Start(t, apptest.WithConnectors("../../connectors"), apptest.WithAdminToken(adminToken))
	admin := hookmapv1.NewAdminServiceClient(h.Conn)
	_, err := admin.CreateWorkspace(h.As(adminToken), &hookmapv1.CreateWorkspaceRequest{Id: "a", Name: "a"})
	require.NoError(t, err)
	key, err := admin.CreateApiKey(h.As(adminToken), &hookmapv1.CreateApiKeyRequest{WorkspaceId: "a", Name: "k"})
	require.NoError(t, err)
	ctx := h.As(key.GetSecret())
	want := postExactRecord(t, h, ctx)

	stream, err := h.Events.StreamEvents(ctx, &hookmapv1.StreamEventsRequest{Consumer: "exact",
		Start:        &hookmapv1.StreamPosition{Position: &hookmapv1.StreamPosition_Earliest{Earliest: true}},
		RecordFormat: hookmapv1.RecordFormat_RECORD_FORMAT_JSON})
	require.NoError(t, err)
	ev, err := stream.Recv()
	require.NoError(t, err)
	require.Equal(t, want, ev.GetRecordJson())
	require.Nil(t, ev.GetRecord())

	page, err := h.Events.ListEvents(ctx, &hookmapv1.ListEventsRequest{RecordFormat: hookmapv1.RecordFormat_RECORD_FORMAT_JSON})
	require.NoError(t, err)
	require.Len(t, page.GetEvents(), 1)
	require.Equal(t, want, page.GetEvents()[0].GetRecordJson())
	require.Nil(t, page.GetEvents()[0].GetRecord())
}
