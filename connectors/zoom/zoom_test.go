package zoom_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

const (
	accountA, tokenA = "D8cJuqWVQ623CI4Q8yQK0Q", "token-of-account-a"
	accountB, tokenB = "uLoRgfbbTayCX6r2Q_qQsQ", "token-of-account-b"
	accountC         = "Wq3k9vJ0SxGm2lT8nB4cZA" // installed the app, no connection here
)

type world struct {
	t    *testing.T
	h    *apptest.Harness
	fake *fakeZoom
	url  string
}

func start(t *testing.T) *world {
	h := apptest.Start(t, apptest.WithConnectors(".."), apptest.WithAllowPrivate())
	w := &world{t: t, h: h, fake: newFakeZoom(t, map[string]string{tokenA: accountA, tokenB: accountB})}
	h.SetConnectorParameters("zoom", map[string]any{"secretToken": w.fake.secret})
	w.url = h.GlobalWebhookURL("zoom", "events")
	return w
}

func (w *world) subscribe(token string, params map[string]any) (*hookmapv1.Subscription, error) {
	conn, err := w.h.Connections.CreateConnection(w.h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "zoom", Name: token,
		Parameters:  apptest.Struct(w.t, map[string]any{"baseUri": w.fake.URL()}),
		Credentials: apptest.Struct(w.t, map[string]any{"accessToken": token}),
	})
	require.NoError(w.t, err)
	return w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: "events", Parameters: apptest.Struct(w.t, params),
	})
}

func TestValidationAndEventsRoutedByAccount(t *testing.T) {
	w := start(t)

	// The URL validation Zoom runs when the endpoint is saved (and every 72 hours).
	status, body := w.fake.send(w.url, []byte(`{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}`), time.Time{}, "")
	require.Equal(t, http.StatusOK, status, body)
	m := hmac.New(sha256.New, []byte(w.fake.secret))
	m.Write([]byte("qgg8vlvZRS6UYooatFL8Aw"))
	require.JSONEq(t, `{"plainToken":"qgg8vlvZRS6UYooatFL8Aw","encryptedToken":"`+hex.EncodeToString(m.Sum(nil))+`"}`, body)

	subA, err := w.subscribe(tokenA, nil)
	require.NoError(t, err)
	subB, err := w.subscribe(tokenB, map[string]any{"events": []any{"meeting.ended"}})
	require.NoError(t, err)
	require.Equal(t, w.url, subA.GetWebhookUri())
	require.Equal(t, []string{"GET /v2/users/me " + tokenA, "GET /v2/users/me " + tokenB}, w.fake.Calls())
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "zoom"})

	status, body = w.fake.send(w.url, notification("meeting.started", accountA, "85746065432", 1735812000123), time.Time{}, "")
	require.Equal(t, http.StatusOK, status, body)
	ev := stream.Next(1)[0]
	require.Equal(t, subA.GetId(), ev.GetSubscriptionId())
	require.Equal(t, "meeting.started", ev.GetType())
	object := ev.GetRecord().GetStructValue().AsMap()["payload"].(map[string]any)["object"].(map[string]any)
	require.Equal(t, "85746065432", object["id"])
	require.Equal(t, float64(15), object["duration"])

	// B keeps meeting.ended only; C has no connection: answered 200 all the same.
	status, _ = w.fake.send(w.url, notification("meeting.started", accountB, "81234567890", 1735812000200), time.Time{}, "")
	require.Equal(t, http.StatusOK, status)
	status, _ = w.fake.send(w.url, notification("meeting.ended", accountB, "81234567890", 1735812900000), time.Time{}, "")
	require.Equal(t, http.StatusOK, status)
	status, _ = w.fake.send(w.url, notification("meeting.ended", accountC, "89999999999", 1735812900000), time.Time{}, "")
	require.Equal(t, http.StatusOK, status)
	ev = stream.Next(1)[0]
	require.Equal(t, subB.GetId(), ev.GetSubscriptionId())
	require.Equal(t, "meeting.ended", ev.GetType())

	// A meeting id beyond 2^53 is exact, as a string, and Zoom's retry is stored once.
	big := notification("meeting.created", accountA, "9007199254740993", 1735813000000)
	status, _ = w.fake.send(w.url, big, time.Time{}, "")
	require.Equal(t, http.StatusOK, status)
	status, body = w.fake.send(w.url, big, time.Now().Add(time.Minute), "")
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"received": 0}`, body)
	ev = stream.Next(1)[0]
	evs, err := w.h.Events.ListEvents(w.h.Ctx(), &hookmapv1.ListEventsRequest{
		Filter: &hookmapv1.EventFilter{Types: []string{"meeting.created"}}, RecordFormat: hookmapv1.RecordFormat_RECORD_FORMAT_JSON,
	})
	require.NoError(t, err)
	require.Len(t, evs.GetEvents(), 1)
	var rec struct {
		Payload struct {
			Object struct {
				ID any `json:"id"`
			} `json:"object"`
		} `json:"payload"`
	}
	require.NoError(t, json.Unmarshal([]byte(evs.GetEvents()[0].GetRecordJson()), &rec))
	require.Equal(t, "9007199254740993", rec.Payload.Object.ID)
	require.Equal(t, ev.GetId(), evs.GetEvents()[0].GetId())
	stream.None(200 * time.Millisecond)

	// A notification signed with another token, or six minutes ago, is refused.
	status, _ = w.fake.send(w.url, notification("meeting.deleted", accountA, "1", 1735813100000), time.Time{}, "another-apps-token")
	require.Equal(t, http.StatusUnauthorized, status)
	status, _ = w.fake.send(w.url, notification("meeting.deleted", accountA, "1", 1735813100000), time.Now().Add(-6*time.Minute), "")
	require.Equal(t, http.StatusUnauthorized, status)
	stream.None(100 * time.Millisecond)
}

func TestSubscribeNeedsAValidToken(t *testing.T) {
	w := start(t)
	_, err := w.subscribe("revoked", nil)
	apptest.RequireCode(t, err, codes.FailedPrecondition, "Invalid access token.")
}
