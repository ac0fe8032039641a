package app_test

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

// TestLastEventTimeWithAuthOn: as production runs it (an admin token, a secret key, the
// service on a workspace API key), a subscription's last_event_time is its newest event's
// receive time as soon as the webhook is answered, although the commit no longer writes
// it, and it is still that after a restart.
func TestLastEventTimeWithAuthOn(t *testing.T) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	h := apptest.Start(t, apptest.WithConnectors("../../connectors"), apptest.WithAdminToken(adminToken),
		apptest.WithSecretKey(hex.EncodeToString(key)), apptest.WithoutScheduler())
	admin := hookmapv1.NewAdminServiceClient(h.Conn)
	_, err := admin.CreateWorkspace(h.As(adminToken), &hookmapv1.CreateWorkspaceRequest{Id: "w", Name: "w"})
	require.NoError(t, err)
	k, err := admin.CreateApiKey(h.As(adminToken), &hookmapv1.CreateApiKeyRequest{WorkspaceId: "w", Name: "k"})
	require.NoError(t, err)
	conn, err := h.Connections.CreateConnection(h.As(k.GetSecret()), &hookmapv1.CreateConnectionRequest{ConnectorKey: "example-webhook", Name: "c"})
	require.NoError(t, err)
	sub, err := h.Subscriptions.CreateSubscription(h.As(k.GetSecret()), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: "message", Parameters: apptest.Struct(t, map[string]any{"channel": "c"}),
	})
	require.NoError(t, err)
	require.Nil(t, sub.GetLastEventTime(), "no event yet")

	for _, id := range []string{"m-1", "m-2"} {
		r := h.PostJSON(sub.GetWebhookUri(), `{"messages":[{"id":"`+id+`","text":"hi"}]}`)
		require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	}
	evs, err := h.Events.ListEvents(h.As(k.GetSecret()), &hookmapv1.ListEventsRequest{})
	require.NoError(t, err)
	require.Len(t, evs.GetEvents(), 2)
	newest := evs.GetEvents()[1].GetReceiveTime().AsTime()

	get := func() *hookmapv1.Subscription {
		t.Helper()
		got, err := h.Subscriptions.GetSubscription(h.As(k.GetSecret()), &hookmapv1.GetSubscriptionRequest{Id: sub.GetId()})
		require.NoError(t, err)
		return got
	}
	require.Equal(t, newest, get().GetLastEventTime().AsTime())
	list, err := h.Subscriptions.ListSubscriptions(h.As(k.GetSecret()), &hookmapv1.ListSubscriptionsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetSubscriptions(), 1)
	require.Equal(t, newest, list.GetSubscriptions()[0].GetLastEventTime().AsTime())

	h.Restart()
	require.Equal(t, newest, get().GetLastEventTime().AsTime(), "kept across a restart")
}
