package app_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

// GetDelivery shows a kept request as received, but for the values of headers that carry
// credentials or signatures, and the events a delivery produced.
func TestGetDelivery(t *testing.T) {
	h := start(t)
	ctx := h.Ctx()
	_, sub := setup(t, h)

	body := `{"fail":true,"html":"<script>alert(1)</script>"}`
	r := h.PostJSON(sub.GetWebhookUri()+"?a=1&b=%3Cx%3E", body,
		"Authorization", "Basic c2VjcmV0LXVzZXI6c2VjcmV0LXBhc3M=",
		"X-Hub-Signature-256", "sha256=0123456789abcdef",
		"Cookie", "session=secret-cookie",
		"X-Api-Key", "secret-api-key",
		"X-Title", `"><img src=x onerror=alert(1)>`)
	require.Equal(t, http.StatusInternalServerError, r.Status)
	ds, err := h.Events.ListDeliveries(ctx, &hookmapv1.ListDeliveriesRequest{Outcome: hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED})
	require.NoError(t, err)
	require.Len(t, ds.GetDeliveries(), 1)
	listed := ds.GetDeliveries()[0]
	require.True(t, listed.GetReplayable())
	require.Nil(t, listed.GetRequest(), "a page carries no request")

	d, err := h.Events.GetDelivery(ctx, &hookmapv1.GetDeliveryRequest{Id: listed.GetId()})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED, d.GetOutcome())
	require.Contains(t, d.GetError(), "handle.map.yml:")
	req := d.GetRequest()
	require.Equal(t, "POST", req.GetMethod())
	require.Equal(t, "/hooks/"+sub.GetId(), req.GetPath())
	require.Equal(t, "a=1&b=%3Cx%3E", req.GetQuery())
	require.Equal(t, body, string(req.GetBody()))
	headers := map[string]*hookmapv1.DeliveryHeader{}
	var names []string
	for _, hd := range req.GetHeaders() {
		headers[hd.GetName()] = hd
		names = append(names, hd.GetName())
	}
	require.IsNonDecreasing(t, names)
	for _, name := range []string{"authorization", "x-hub-signature-256", "cookie", "x-api-key"} {
		require.True(t, headers[name].GetRedacted(), name)
		require.Empty(t, headers[name].GetValues(), name)
	}
	require.False(t, headers["x-title"].GetRedacted())
	require.Equal(t, []string{`"><img src=x onerror=alert(1)>`}, headers["x-title"].GetValues())
	require.Equal(t, []string{"application/json"}, headers["content-type"].GetValues())
	require.Empty(t, d.GetEvents())

	// Through the JSON API: no secret anywhere in the answer; the body is base64.
	var js struct {
		Request struct {
			Body string `json:"body"`
		} `json:"request"`
	}
	raw := h.API("hookmap.v1.EventService/GetDelivery", `{"id":"`+d.GetId()+`"}`, "")
	require.Equal(t, http.StatusOK, raw.Status, "%s", raw.Body)
	for _, secret := range []string{"c2VjcmV0LXVzZXI6c2VjcmV0LXBhc3M", "0123456789abcdef", "secret-cookie", "secret-api-key"} {
		require.NotContains(t, string(raw.Body), secret)
	}
	require.NoError(t, json.Unmarshal(raw.Body, &js))
	b, err := base64.StdEncoding.DecodeString(js.Request.Body)
	require.NoError(t, err)
	require.Equal(t, body, string(b))

	// A delivery that worked lists its events.
	r = h.PostJSON(sub.GetWebhookUri(), `{"items":[{"n":1},{"n":2}]}`)
	require.Equal(t, http.StatusOK, r.Status)
	ds, err = h.Events.ListDeliveries(ctx, &hookmapv1.ListDeliveriesRequest{Outcome: hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_OK})
	require.NoError(t, err)
	require.Len(t, ds.GetDeliveries(), 1)
	ok, err := h.Events.GetDelivery(ctx, &hookmapv1.GetDeliveryRequest{Id: ds.GetDeliveries()[0].GetId()})
	require.NoError(t, err)
	require.Nil(t, ok.GetRequest(), "only failed deliveries keep their request")
	require.Len(t, ok.GetEvents(), 2)
	require.Equal(t, "orders.item", ok.GetEvents()[0].GetType())
	require.Equal(t, ok.GetId(), ok.GetEvents()[1].GetDeliveryId())

	_, err = h.Events.GetDelivery(ctx, &hookmapv1.GetDeliveryRequest{Id: "dlv_nope"})
	apptest.RequireCode(t, err, codes.NotFound, "dlv_nope")
	_, err = h.Events.GetDelivery(ctx, &hookmapv1.GetDeliveryRequest{})
	apptest.RequireCode(t, err, codes.InvalidArgument, "id")
}

func TestListDeliveriesByTime(t *testing.T) {
	h := start(t)
	ctx := h.Ctx()
	_, sub := setup(t, h)
	before := time.Now()
	for range 3 {
		require.Equal(t, http.StatusOK, h.PostJSON(sub.GetWebhookUri(), `{"items":[]}`).Status)
	}
	count := func(req *hookmapv1.ListDeliveriesRequest) int {
		ds, err := h.Events.ListDeliveries(ctx, req)
		require.NoError(t, err)
		return len(ds.GetDeliveries())
	}
	require.Equal(t, 3, count(&hookmapv1.ListDeliveriesRequest{StartTime: timestamppb.New(before)}))
	require.Equal(t, 0, count(&hookmapv1.ListDeliveriesRequest{EndTime: timestamppb.New(before)}))
	require.Equal(t, 0, count(&hookmapv1.ListDeliveriesRequest{StartTime: timestamppb.New(time.Now().Add(time.Hour))}))
	_, err := h.Events.ListDeliveries(ctx, &hookmapv1.ListDeliveriesRequest{StartTime: timestamppb.New(before), EndTime: timestamppb.New(before)})
	apptest.RequireCode(t, err, codes.InvalidArgument, "end_time: must be after start_time")
	_, err = h.Events.ListDeliveries(ctx, &hookmapv1.ListDeliveriesRequest{StartTime: &timestamppb.Timestamp{Nanos: -1}})
	apptest.RequireCode(t, err, codes.InvalidArgument, "start_time")
}

// ListConnectors gives each connector's and event's JSON Schemas (the console draws its
// forms from them) and, to the admin, the problems of the last load.
func TestListConnectorsSchemasAndProblems(t *testing.T) {
	broken := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(broken, "broken"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(broken, "broken", "spec.yml"), []byte("name: [unclosed\n"), 0o644))
	h := apptest.Start(t, apptest.WithConnectors("../../connectors", broken), apptest.WithAdminToken(adminToken))
	resp, err := h.Connectors.ListConnectors(h.As(adminToken), &hookmapv1.ListConnectorsRequest{})
	require.NoError(t, err)
	require.NotNil(t, resp.GetLoadTime())
	require.NotEmpty(t, resp.GetDiagnostics())
	require.Contains(t, resp.GetDiagnostics()[0].GetFile(), "broken")
	require.Positive(t, resp.GetDiagnostics()[0].GetLine())
	var msg *hookmapv1.ConnectorEvent
	for _, c := range resp.GetConnectors() {
		if c.GetKey() == "example-webhook" {
			msg = c.GetEvents()[0]
		}
	}
	require.NotNil(t, msg)
	ps := msg.GetParametersSchema().AsMap()
	require.Equal(t, []any{"channel"}, ps["required"])
	require.Contains(t, ps["properties"], "channel")

	// A workspace key sees the connectors, not the server's files.
	key, err := hookmapv1.NewAdminServiceClient(h.Conn).CreateApiKey(h.As(adminToken), &hookmapv1.CreateApiKeyRequest{WorkspaceId: "default", Name: "k"})
	require.NoError(t, err)
	resp, err = h.Connectors.ListConnectors(h.As(key.GetSecret()), &hookmapv1.ListConnectorsRequest{})
	require.NoError(t, err)
	require.NotEmpty(t, resp.GetConnectors())
	require.Empty(t, resp.GetDiagnostics())
}
