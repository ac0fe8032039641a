package app_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

const chatSecret = "chat-signing-secret"

type chatWorld struct {
	h   *apptest.Harness
	url string // the global webhook URL of chatapp/events in the default workspace

	mu        sync.Mutex
	authCalls []string // tokens the fake app's auth.test saw
	fake      *httptest.Server
}

// startChat starts hookmap with the chatapp test connector, its signing secret set, and
// a fake of the app's auth.test (token → team).
func startChat(t testing.TB) *chatWorld {
	h := apptest.Start(t, apptest.WithConnectors("testdata/connectors"), apptest.WithAllowPrivate())
	w := &chatWorld{h: h}
	teams := map[string]string{"Bearer tok-d": "TD", "Bearer tok-e": "TE"}
	w.fake = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		w.authCalls = append(w.authCalls, r.Header.Get("Authorization"))
		w.mu.Unlock()
		rw.Header().Set("Content-Type", "application/json")
		team, ok := teams[r.Header.Get("Authorization")]
		if r.URL.Path != "/auth.test" || !ok {
			rw.WriteHeader(401)
			_, _ = rw.Write([]byte(`{"ok": false, "error": "invalid_auth"}`))
			return
		}
		_ = json.NewEncoder(rw).Encode(map[string]any{"ok": true, "team_id": team})
	}))
	t.Cleanup(w.fake.Close)

	h.SetConnectorParameters("chatapp", map[string]any{"signingSecret": chatSecret})
	w.url = h.GlobalWebhookURL("chatapp", "events")
	return w
}

// connect creates a connection of team and subscribes it to event.
func (w *chatWorld) connect(t testing.TB, team, event string, params map[string]any) *hookmapv1.Subscription {
	conn, err := w.h.Connections.CreateConnection(w.h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "chatapp", Name: "team " + team,
		Parameters: apptest.Struct(t, map[string]any{"team": team, "baseUri": w.fake.URL}),
	})
	require.NoError(t, err)
	if params == nil {
		params = map[string]any{}
	}
	sub, err := w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: event, Parameters: apptest.Struct(t, params),
	})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus())
	return sub
}

func chatSign(body string) string {
	m := hmac.New(sha256.New, []byte(chatSecret))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// send posts a signed batch of chat events.
func (w *chatWorld) send(t testing.TB, events ...map[string]any) *apptest.Response {
	b, err := json.Marshal(map[string]any{"type": "event_callback", "events": events})
	require.NoError(t, err)
	return w.h.PostJSON(w.url, string(b), "X-Chat-Signature", chatSign(string(b)))
}

func msg(id, team, text string) map[string]any {
	return map[string]any{"id": id, "team": team, "kind": "message", "channel": "general", "text": text}
}

func bySubscription(evs []*hookmapv1.Event) map[string]*hookmapv1.Event {
	out := map[string]*hookmapv1.Event{}
	for _, e := range evs {
		out[e.GetSubscriptionId()] = e
	}
	return out
}

func TestGlobalRoutesBySelectorOnly(t *testing.T) {
	w := startChat(t)
	a := w.connect(t, "TA", "message", nil)
	b := w.connect(t, "TB", "message", nil)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})

	r := w.send(t, msg("e1", "TA", "hello A"))
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.JSONEq(t, `{"received": 1}`, string(r.Body))
	ev := stream.Next(1)[0]
	require.Equal(t, a.GetId(), ev.GetSubscriptionId())
	require.Equal(t, a.GetConnectionId(), ev.GetConnectionId())
	require.Equal(t, "message.posted", ev.GetType())
	require.Equal(t, map[string]any{"text": "hello A", "channel": "general", "team": "TA"}, ev.GetRecord().GetStructValue().AsMap())
	stream.None(200 * time.Millisecond)

	// One delivery carrying events of both teams fans out to each, in one commit.
	r = w.send(t, msg("e2", "TB", "hello B"), msg("e3", "TA", "again A"))
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.JSONEq(t, `{"received": 2}`, string(r.Body))
	got := bySubscription(stream.Next(2))
	require.Equal(t, "hello B", got[b.GetId()].GetRecord().GetStructValue().AsMap()["text"])
	require.Equal(t, "again A", got[a.GetId()].GetRecord().GetStructValue().AsMap()["text"])

	// The subscription's own handle filters: a reaction is routed to A but emits nothing.
	r = w.send(t, map[string]any{"id": "e4", "team": "TA", "kind": "reaction"})
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.JSONEq(t, `{"received": 0}`, string(r.Body))
	stream.None(200 * time.Millisecond)
}

func TestGlobalSharedSelectorFansOut(t *testing.T) {
	w := startChat(t)
	subs := []*hookmapv1.Subscription{
		w.connect(t, "TS", "message", nil),
		w.connect(t, "TS", "message", nil),
		w.connect(t, "TS", "message", map[string]any{"channel": "general"}),
	}
	w.connect(t, "TS", "message", map[string]any{"channel": "random"}) // filtered by its handle
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})
	r := w.send(t, msg("s1", "TS", "to everyone"))
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	got := bySubscription(stream.Next(3))
	for _, s := range subs {
		require.Contains(t, got, s.GetId())
		require.Equal(t, "to everyone", got[s.GetId()].GetRecord().GetStructValue().AsMap()["text"])
	}
	stream.None(200 * time.Millisecond)

	// A retry of the same event id by the app is stored once per subscription.
	r = w.send(t, msg("s1", "TS", "to everyone"))
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	stream.None(300 * time.Millisecond)
	dl, err := w.h.Events.ListDeliveries(w.h.Ctx(), &hookmapv1.ListDeliveriesRequest{})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_DUPLICATE, dl.GetDeliveries()[0].GetOutcome())
}

func TestGlobalUnmatchedIsRecordedAndAnswered200(t *testing.T) {
	w := startChat(t)
	w.connect(t, "TA", "message", nil)
	r := w.send(t, msg("u1", "TZ", "nobody home"), msg("u2", "TY", "nor here"))
	require.Equal(t, http.StatusOK, r.Status, "apps must not retry forever: %s", r.Body)

	dl, err := w.h.Events.ListDeliveries(w.h.Ctx(), &hookmapv1.ListDeliveriesRequest{
		Outcome: hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_UNMATCHED,
	})
	require.NoError(t, err)
	require.Len(t, dl.GetDeliveries(), 1)
	d := dl.GetDeliveries()[0]
	require.ElementsMatch(t, []string{"TZ", "TY"}, d.GetSelectors())
	require.NotEmpty(t, d.GetGlobalWebhookId())
	require.True(t, strings.HasSuffix(w.url, d.GetGlobalWebhookId()))
	require.Zero(t, d.GetEventCount())
	evs, err := w.h.Events.ListEvents(w.h.Ctx(), &hookmapv1.ListEventsRequest{})
	require.NoError(t, err)
	require.Empty(t, evs.GetEvents())
}

func TestGlobalRecordsAreCheckedAgainstTheEventSchema(t *testing.T) {
	w := startChat(t)
	w.connect(t, "TA", "message", nil)
	bad := msg("s1", "TA", "")
	bad["text"] = 42
	r := w.send(t, bad)
	require.Equal(t, http.StatusInternalServerError, r.Status, string(r.Body))

	dl, err := w.h.Events.ListDeliveries(w.h.Ctx(), &hookmapv1.ListDeliveriesRequest{
		Outcome: hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED,
	})
	require.NoError(t, err)
	require.Len(t, dl.GetDeliveries(), 1)
	require.Contains(t, dl.GetDeliveries()[0].GetError(), "record does not match the event's schema: events[0].record.text")
	require.True(t, dl.GetDeliveries()[0].GetReplayable())
	evs, err := w.h.Events.ListEvents(w.h.Ctx(), &hookmapv1.ListEventsRequest{})
	require.NoError(t, err)
	require.Empty(t, evs.GetEvents())

	r = w.send(t, msg("s2", "TA", "fine"))
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
}

func TestGlobalChallengeAnsweredFromTheMapping(t *testing.T) {
	w := startChat(t)
	body := `{"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}`
	r := w.h.PostJSON(w.url, body, "X-Chat-Signature", chatSign(body))
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.JSONEq(t, `{"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}`, string(r.Body))

	// The signature is checked even for a challenge.
	r = w.h.PostJSON(w.url, body, "X-Chat-Signature", chatSign(body+" "))
	require.Equal(t, http.StatusUnauthorized, r.Status)
	require.NotContains(t, string(r.Body), "challenge")
}

func TestGlobalBadSignatureAndUnknownURL(t *testing.T) {
	w := startChat(t)
	w.connect(t, "TA", "message", nil)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})
	b := `{"type": "event_callback", "events": [{"id": "x1", "team": "TA", "kind": "message", "text": "forged"}]}`
	r := w.h.PostJSON(w.url, b, "X-Chat-Signature", "sha256="+strings.Repeat("0", 64))
	require.Equal(t, http.StatusUnauthorized, r.Status)
	r = w.h.PostJSON(w.url, b)
	require.Equal(t, http.StatusUnauthorized, r.Status)
	stream.None(200 * time.Millisecond)
	dl, err := w.h.Events.ListDeliveries(w.h.Ctx(), &hookmapv1.ListDeliveriesRequest{
		Outcome: hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_REJECTED,
	})
	require.NoError(t, err)
	require.Len(t, dl.GetDeliveries(), 2)

	r = w.h.PostJSON(w.url+"x", b, "X-Chat-Signature", chatSign(b))
	require.Equal(t, http.StatusNotFound, r.Status)
}

func TestGlobalSelectorFromTheAppByRestAPIMapping(t *testing.T) {
	w := startChat(t)
	conn, err := w.h.Connections.CreateConnection(w.h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "chatapp", Name: "asks the app",
		Parameters:  apptest.Struct(t, map[string]any{"baseUri": w.fake.URL}),
		Credentials: apptest.Struct(t, map[string]any{"token": "tok-d"}),
	})
	require.NoError(t, err)
	sub, err := w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: "any",
	})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus())
	w.mu.Lock()
	require.Equal(t, []string{"Bearer tok-d"}, w.authCalls)
	w.mu.Unlock()

	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})
	r := w.send(t, map[string]any{"id": "d1", "team": "TD", "kind": "file_shared", "file": map[string]any{"id": 1234567890123}})
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	ev := stream.Next(1)[0]
	require.Equal(t, sub.GetId(), ev.GetSubscriptionId())
	require.Equal(t, "any", ev.GetType(), "without a handle the event key is the type")
	rec := ev.GetRecord().GetStructValue().AsMap()
	require.Equal(t, "file_shared", rec["kind"], "and the payload is the record")

	// A token the app refuses fails the subscription with the app's answer.
	conn2, err := w.h.Connections.CreateConnection(w.h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "chatapp", Name: "bad token",
		Parameters:  apptest.Struct(t, map[string]any{"baseUri": w.fake.URL}),
		Credentials: apptest.Struct(t, map[string]any{"token": "revoked"}),
	})
	require.NoError(t, err)
	_, err = w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn2.GetId(), EventKey: "any",
	})
	apptest.RequireCode(t, err, codes.FailedPrecondition, "invalid_auth")
}
