package api

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/hookmap/hookmap/engine/value"
	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
)

func nestedObjects(n int) any {
	var v any = "leaf"
	for range n {
		v = map[string]any{"k": v}
	}
	return v
}

// TestMaxDepthFitsProtobufClients: a record value.MaxDepth objects deep, in the deepest
// place hookmap sends one (ListEventsResponse.events[].record), decodes under the default
// recursion limit (100 nested messages) of the C++, Java and Python protobuf runtimes; one
// level more does not. So whatever hookmap accepts, every client can read.
func TestMaxDepthFitsProtobufClients(t *testing.T) {
	page := func(depth int) []byte {
		rec, err := valueFromPlain(nestedObjects(depth))
		require.NoError(t, err)
		b, err := proto.Marshal(&hookmapv1.ListEventsResponse{Events: []*hookmapv1.Event{{Seq: 1, Record: rec}}})
		require.NoError(t, err)
		return b
	}
	clients := proto.UnmarshalOptions{RecursionLimit: 100}
	require.NoError(t, clients.Unmarshal(page(value.MaxDepth), &hookmapv1.ListEventsResponse{}))
	require.Error(t, clients.Unmarshal(page(value.MaxDepth+1), &hookmapv1.ListEventsResponse{}),
		"MaxDepth is the deepest that fits, not below it")
}

func TestCheckRequest(t *testing.T) {
	deep, err := structpb.NewStruct(nestedObjects(value.MaxDepth).(map[string]any))
	require.NoError(t, err)
	atLimit := &hookmapv1.CreateConnectionRequest{ConnectorKey: "k", Parameters: deep}
	require.NoError(t, checkRequest(atLimit), "a Struct is a level: %d objects deep is the limit", value.MaxDepth)

	over, err := structpb.NewStruct(map[string]any{"x": nestedObjects(value.MaxDepth)})
	require.NoError(t, err)
	long := strings.Repeat("x", MaxStringField+1)
	err = checkRequest(&hookmapv1.CreateConnectionRequest{ConnectorKey: long, Credentials: over})
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code())
	require.Contains(t, st.Message(), "connector_key: longer than")
	require.Contains(t, st.Message(), "credentials: nested deeper than 32 levels")
	require.Less(t, len(st.Message()), 1000, "the long value is not echoed")

	many := make([]string, MaxRepeated+1)
	err = checkRequest(&hookmapv1.ListEventsRequest{Filter: &hookmapv1.EventFilter{Types: many}})
	require.ErrorContains(t, err, "filter.types: more than 1000 entries")
	err = checkRequest(&hookmapv1.TriggerWebhookRequest{Headers: map[string]string{"X-A": long}})
	require.ErrorContains(t, err, "headers[X-A]: longer than")
	require.NoError(t, checkRequest(&hookmapv1.TriggerWebhookRequest{Data: structpb.NewStringValue(strings.Repeat("x", 1<<20))}),
		"a Value is held to the value limits, not the string field limit")
}
