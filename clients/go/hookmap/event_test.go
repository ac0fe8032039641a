package hookmap

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
)

func TestEventDecodeIsExact(t *testing.T) {
	received := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	ev, err := NewEvent(&hookmapv1.Event{
		Seq: 7, Id: "ev1", ConnectionId: "c", SubscriptionId: "s", EventKey: "k", Type: "t", ExternalId: "x",
		DeliveryId: "d", ReceiveTime: timestamppb.New(received),
		RecordJson: `{"id":1152921504606846977,"price":12.5,"tags":["a"],"nested":{"big":-9223372036854775808}}`,
	})
	require.NoError(t, err)
	require.Equal(t, &Event{
		Seq: 7, ID: "ev1", ConnectionID: "c", SubscriptionID: "s", EventKey: "k", Type: "t", ExternalID: "x",
		DeliveryID: "d", ReceiveTime: received,
		Record: json.RawMessage(`{"id":1152921504606846977,"price":12.5,"tags":["a"],"nested":{"big":-9223372036854775808}}`),
	}, ev)

	var typed struct {
		ID     int64       `json:"id"`
		Number json.Number `json:"price"`
		Nested struct {
			Big int64 `json:"big"`
		} `json:"nested"`
	}
	require.NoError(t, ev.Decode(&typed))
	require.Equal(t, int64(1<<60+1), typed.ID)
	require.Equal(t, json.Number("12.5"), typed.Number)
	require.Equal(t, int64(-1<<63), typed.Nested.Big)

	var m map[string]any
	require.NoError(t, ev.Decode(&m))
	require.Equal(t, json.Number("1152921504606846977"), m["id"], "numbers in an any are json.Number")

	var wrong struct {
		ID string `json:"id"`
	}
	err = ev.Decode(&wrong)
	require.ErrorContains(t, err, "event 7: decode record")
}

func TestNewEventFromTheValueForm(t *testing.T) {
	rec, err := structpb.NewValue(map[string]any{"n": 3.0, "s": "x"})
	require.NoError(t, err)
	ev, err := NewEvent(&hookmapv1.Event{Seq: 1, Record: rec})
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, ev.Decode(&m))
	require.Equal(t, map[string]any{"n": json.Number("3"), "s": "x"}, m)

	empty, err := NewEvent(&hookmapv1.Event{Seq: 2})
	require.NoError(t, err)
	require.JSONEq(t, "null", string(empty.Record))
}

func TestConnectionEvent(t *testing.T) {
	ev, err := NewEvent(&hookmapv1.Event{
		Seq: 9, Id: "ev9", ConnectionId: "conn_1", EventKey: "connection", Type: "connection.disconnected",
		RecordJson: `{"connectionId":"conn_1","connectorKey":"microsoft-graph","name":"contoso","status":"DISCONNECTED","error":"invalid_grant: AADSTS70008"}`,
	})
	require.NoError(t, err)
	require.True(t, ev.IsConnectionEvent())
	require.Equal(t, "connection:conn_1", ev.orderKey(), "connection events of a connection keep their order")
	ce, err := ev.ConnectionEvent()
	require.NoError(t, err)
	require.Equal(t, &ConnectionEvent{ConnectionID: "conn_1", ConnectorKey: "microsoft-graph", Name: "contoso", Status: "DISCONNECTED", Error: "invalid_grant: AADSTS70008"}, ce)

	// An event of a subscription, even one whose connector names an event "connection"
	// (the loader refuses that key, but a client cannot know), is not a connection event.
	sub, err := NewEvent(&hookmapv1.Event{Seq: 10, ConnectionId: "conn_1", SubscriptionId: "sub_1", EventKey: "connection", Type: "x", RecordJson: `{}`})
	require.NoError(t, err)
	require.False(t, sub.IsConnectionEvent())
	require.Equal(t, "sub_1", sub.orderKey())
	_, err = sub.ConnectionEvent()
	require.ErrorContains(t, err, "event 10 (x of subscription sub_1) is not a connection event")
}
