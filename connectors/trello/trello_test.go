package trello_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

const board = "5abbe4b7ddc1b351ef961414"

type world struct {
	t    *testing.T
	h    *apptest.Harness
	fake *fakeTrello
	conn *hookmapv1.Connection
}

func start(t *testing.T) *world {
	w := &world{t: t, h: apptest.Start(t, apptest.WithConnectors(".."), apptest.WithAllowPrivate()), fake: newFakeTrello(t)}
	w.h.SetConnectorParameters("trello", map[string]any{"apiKey": w.fake.apiKey, "apiSecret": w.fake.secret})
	w.conn = w.connection(w.fake.token)
	return w
}

func (w *world) connection(token string) *hookmapv1.Connection {
	conn, err := w.h.Connections.CreateConnection(w.h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "trello", Name: "acme",
		Parameters:  apptest.Struct(w.t, map[string]any{"baseUri": w.fake.srv.URL}),
		Credentials: apptest.Struct(w.t, map[string]any{"token": token}),
	})
	require.NoError(w.t, err)
	return conn
}

func (w *world) subscribe(conn *hookmapv1.Connection, params map[string]any) (*hookmapv1.Subscription, error) {
	return w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: "actions", Parameters: apptest.Struct(w.t, params),
	})
}

func TestHeadDuringCreateThenSignedActions(t *testing.T) {
	w := start(t)
	sub, err := w.subscribe(w.conn, map[string]any{"model": board})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())
	// Trello's HEAD reached the new webhook URI while the create call ran, and got 200.
	require.Equal(t, []int{http.StatusOK}, w.fake.Heads())
	hooks := w.fake.Hooks()
	require.Len(t, hooks, 1)
	require.Equal(t, sub.GetWebhookUri(), hooks[0].CallbackURL)
	require.Equal(t, hooks[0].ID, w.h.SubscriptionState(sub.GetId())["hookId"])

	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "trello"})
	a := action("5ad4bc2c4a0e52b3bb52b6bf", "updateCard")
	status, body := w.fake.deliver(hooks[0], a)
	require.Equal(t, http.StatusOK, status, body)
	ev := stream.Next(1)[0]
	require.Equal(t, "updateCard", ev.GetType())
	require.Equal(t, "5ad4bc2c4a0e52b3bb52b6bf", ev.GetExternalId())
	want, _ := json.Marshal(a)
	got, _ := json.Marshal(ev.GetRecord().GetStructValue().AsMap())
	require.JSONEq(t, string(want), string(got))

	// A retry of the same action is stored once.
	status, body = w.fake.deliver(hooks[0], a)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"received": 0}`, body)

	// The same body signed for another callback URL, or unsigned, is refused.
	forged := hooks[0]
	forged.CallbackURL = sub.GetWebhookUri() + "x"
	st := w.h.Do(http.MethodPost, sub.GetWebhookUri(), []byte(`{"action":{"id":"x","type":"deleteCard"}}`),
		"Content-Type", "application/json", "X-Trello-Webhook", sign(w.fake.secret, []byte(`{"action":{"id":"x","type":"deleteCard"}}`), forged.CallbackURL))
	require.Equal(t, http.StatusUnauthorized, st.Status)
	stream.None(200 * time.Millisecond)

	// A second subscription on the same board gets a webhook of its own (its own URL).
	again, err := w.subscribe(w.conn, map[string]any{"model": board, "actionTypes": []any{"commentCard"}})
	require.NoError(t, err)
	require.Len(t, w.fake.Hooks(), 2)
	require.NotEqual(t, sub.GetWebhookUri(), again.GetWebhookUri())

	_, err = w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Len(t, w.fake.Hooks(), 1)
	require.Contains(t, w.fake.Calls(), "DELETE /1/webhooks/"+hooks[0].ID)
}

func TestRefusalsAndTheTokenNeverShown(t *testing.T) {
	w := start(t)
	// A token Trello refuses: the error names the request, never the token.
	bad := w.connection("ATTAbad0000000000000000000000000000000000000000000000000000000000000000")
	_, err := w.subscribe(bad, map[string]any{"model": board})
	st := apptest.RequireCode(t, err, codes.FailedPrecondition, "/1/tokens/***/webhooks answered 401: invalid token")
	require.NotContains(t, st.Message(), "ATTAbad")

	// An unknown model is Trello's 400.
	_, err = w.subscribe(w.conn, map[string]any{"model": "000000000000000000000000"})
	apptest.RequireCode(t, err, codes.FailedPrecondition, "invalid value for idModel")

	// The parameters are checked first.
	_, err = w.subscribe(w.conn, map[string]any{"model": "board-1"})
	apptest.RequireCode(t, err, codes.InvalidArgument, "parameters.model")
}

func TestReconcileDeletesOrphans(t *testing.T) {
	w := start(t)
	sub, err := w.subscribe(w.conn, map[string]any{"model": board})
	require.NoError(t, err)
	orphan := w.fake.addHook(board, w.h.BaseURL+"/hooks/bG9zdC1zdWJzY3JpcHRpb24tb2YtYmVmb3Jl")
	foreign := w.fake.addHook(board, "https://butler.example.com/trello")
	res, err := w.h.Subscriptions.ReconcileWebhooks(w.h.Ctx(), &hookmapv1.ReconcileWebhooksRequest{
		ConnectionId: w.conn.GetId(), EventKey: "actions", Mode: hookmapv1.ReconcileMode_RECONCILE_MODE_DELETE_ORPHANS,
	})
	require.NoError(t, err)
	byID := map[string]*hookmapv1.ReconciledWebhook{}
	for _, r := range res.GetWebhooks() {
		byID[r.GetId()] = r
	}
	own := w.h.SubscriptionState(sub.GetId())["hookId"].(string)
	require.Equal(t, hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_OWNED, byID[own].GetClassification())
	require.True(t, byID[orphan].GetDeleted())
	require.False(t, byID[foreign].GetDeleted())
	var left []string
	for _, h := range w.fake.Hooks() {
		left = append(left, h.ID)
	}
	require.ElementsMatch(t, []string{own, foreign}, left)
	require.False(t, strings.Contains(strings.Join(w.fake.Calls(), " "), "DELETE /1/webhooks/"+foreign))
}
