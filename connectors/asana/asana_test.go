package asana_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

const (
	project   = "1209081737120011"
	workspace = "1199986453860000"
)

type world struct {
	t     *testing.T
	h     *apptest.Harness
	fake  *fakeAsana
	conn  *hookmapv1.Connection
	clock *atomic.Int64 // seconds added to the real time
}

func start(t *testing.T) *world {
	w := &world{t: t, clock: &atomic.Int64{}}
	w.h = apptest.Start(t, apptest.WithConnectors(".."), apptest.WithAllowPrivate(),
		apptest.WithClock(func() time.Time { return time.Now().Add(time.Duration(w.clock.Load()) * time.Second) }))
	w.fake = newFakeAsana(t)
	conn, err := w.h.Connections.CreateConnection(w.h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "asana", Name: "acme",
		Parameters:  apptest.Struct(t, map[string]any{"baseUri": w.fake.URL()}),
		Credentials: apptest.Struct(t, map[string]any{"accessToken": w.fake.token}),
	})
	require.NoError(t, err)
	w.conn = conn
	return w
}

func (w *world) subscribe(params map[string]any) *hookmapv1.Subscription {
	w.t.Helper()
	sub, err := w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: w.conn.GetId(), EventKey: "events", Parameters: apptest.Struct(w.t, params),
	})
	require.NoError(w.t, err)
	require.Equal(w.t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())
	return sub
}

func (w *world) reconcile(repair bool, mode hookmapv1.ReconcileMode) []*hookmapv1.ReconciledWebhook {
	w.t.Helper()
	res, err := w.h.Subscriptions.ReconcileWebhooks(w.h.Ctx(), &hookmapv1.ReconcileWebhooksRequest{
		ConnectionId: w.conn.GetId(), EventKey: "events", Mode: mode, Repair: repair,
		Parameters: apptest.Struct(w.t, map[string]any{"workspace": workspace}),
	})
	require.NoError(w.t, err)
	return res.GetWebhooks()
}

func record(e *hookmapv1.Event) map[string]any { return e.GetRecord().GetStructValue().AsMap() }

func jsonValue(t *testing.T, v any) any {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func TestHandshakeDeliveriesHeartbeatAndUnsubscribe(t *testing.T) {
	w := start(t)
	sub := w.subscribe(map[string]any{"resource": project, "workspace": workspace})

	// The handshake ran during the create call, on the webhook URI with its token, and was
	// answered with the secret.
	hooks := w.fake.Hooks()
	require.Len(t, hooks, 1)
	hook := hooks[0]
	u, err := url.Parse(hook.Target)
	require.NoError(t, err)
	require.Equal(t, sub.GetWebhookUri(), strings.Split(hook.Target, "?")[0])
	require.Regexp(t, `^[0-9]+\.[0-9a-f]{64}$`, u.Query().Get("handshake"))
	require.Equal(t, []handshake{{Target: hook.Target, Secret: hook.Secret, Status: 200, Echo: hook.Secret}}, w.fake.Handshakes())
	st := w.h.SubscriptionState(sub.GetId())
	require.Equal(t, hook.GID, st["hookId"])
	require.Equal(t, hook.Secret, st["hookSecret"])
	require.Equal(t, true, st["confirmed"])

	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "asana"})
	changed := event("changed", "task", "1209081737128423", "2025-01-02T10:00:00.100Z", map[string]any{"field": "completed", "action": "changed"})
	added := event("added", "story", "1209081737128901", "2025-01-02T10:00:01.200Z", nil)
	status, body := w.fake.deliver(&hook, []map[string]any{changed, added})
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `{"received": 2}`, body)
	evs := stream.Next(2)
	require.Equal(t, "task.changed", evs[0].GetType())
	require.Equal(t, jsonValue(t, changed), record(evs[0]))
	require.Regexp(t, `^1209081737128423\.changed\.[0-9a-f]{16}$`, evs[0].GetExternalId())
	require.Equal(t, "story.added", evs[1].GetType())
	require.Equal(t, sub.GetId(), evs[1].GetSubscriptionId())

	// Asana's retry of the same delivery is stored once; the heartbeat is answered, no event.
	status, body = w.fake.deliver(&hook, []map[string]any{changed, added})
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"received": 0}`, body)
	status, body = w.fake.deliver(&hook, nil)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"received": 0}`, body)
	stream.None(200 * time.Millisecond)

	// A forged handshake: without the token it must be signed; with the leaked token, once
	// the create call is long over, it is refused too. The secret stays Asana's.
	r := w.h.Do(http.MethodPost, sub.GetWebhookUri(), nil, "X-Hook-Secret", "attackers-secret")
	require.Equal(t, http.StatusUnauthorized, r.Status, string(r.Body))
	w.clock.Store(11 * 60)
	r = w.h.Do(http.MethodPost, hook.Target, nil, "X-Hook-Secret", "attackers-secret")
	require.Equal(t, http.StatusUnauthorized, r.Status, string(r.Body))
	require.Equal(t, hook.Secret, w.h.SubscriptionState(sub.GetId())["hookSecret"])
	status, _ = w.fake.deliver(&hook, []map[string]any{changed}, "attackers-secret")
	require.Equal(t, http.StatusUnauthorized, status)

	_, err = w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Empty(t, w.fake.Hooks())
	require.Equal(t, "DELETE /webhooks/"+hook.GID, w.fake.Calls()[len(w.fake.Calls())-1])
}

func TestHandshakeFailuresFailTheSubscription(t *testing.T) {
	w := start(t)
	// A resource Asana does not know: its 404 fails the subscription with its message.
	_, err := w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: w.conn.GetId(), EventKey: "events",
		Parameters: apptest.Struct(t, map[string]any{"resource": "42"}),
	})
	require.ErrorContains(t, err, "resource: Unknown object: 42")
	require.Empty(t, w.fake.Handshakes())

	// The parameters are checked before anything is sent.
	_, err = w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: w.conn.GetId(), EventKey: "events",
		Parameters: apptest.Struct(t, map[string]any{"resource": project, "filters": []any{map[string]any{"action": "renamed"}}}),
	})
	require.ErrorContains(t, err, "parameters.filters")
}

func TestReconcileRepairRedoesTheHandshake(t *testing.T) {
	w := start(t)
	w.fake.pageSize = 1
	sub := w.subscribe(map[string]any{"resource": project, "workspace": workspace})
	old := w.fake.Hooks()[0]
	foreign := w.fake.addHook(project, "https://zapier.example.com/hooks/asana")
	orphan := w.fake.addHook("1209081737120022", w.h.BaseURL+"/hooks/bG9zdC1zdWJzY3JpcHRpb24tb2YtYmVmb3Jl?handshake=1.00")

	dry := w.reconcile(false, hookmapv1.ReconcileMode_RECONCILE_MODE_DRY_RUN)
	got := map[string]hookmapv1.WebhookClassification{}
	for _, r := range dry {
		got[r.GetId()] = r.GetClassification()
	}
	require.Equal(t, map[string]hookmapv1.WebhookClassification{
		old.GID: hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_OWNED,
		foreign: hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_FOREIGN,
		orphan:  hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_ORPHANED,
	}, got)

	// Asana deletes a webhook whose deliveries failed for a day: reconcile finds it missing
	// and repair creates a new one, whose handshake (a new secret) is accepted.
	w.fake.forget(old.GID)
	res := w.reconcile(true, hookmapv1.ReconcileMode_RECONCILE_MODE_DELETE_ORPHANS)
	var missing *hookmapv1.ReconciledWebhook
	for _, r := range res {
		if r.GetClassification() == hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_MISSING {
			missing = r
		}
		if r.GetId() == orphan {
			require.True(t, r.GetDeleted())
		}
	}
	require.NotNil(t, missing, "%v", res)
	require.True(t, missing.GetRepaired(), missing.GetError())
	require.Equal(t, sub.GetId(), missing.GetSubscriptionId())

	var fresh *fakeHook
	for _, h := range w.fake.Hooks() {
		if h.GID != foreign {
			fresh = w.fake.hook(h.GID)
		}
	}
	require.NotNil(t, fresh)
	require.Len(t, w.fake.Hooks(), 2, "the foreign webhook and the new one")
	require.NotEqual(t, old.Secret, fresh.Secret)
	st := w.h.SubscriptionState(sub.GetId())
	require.Equal(t, fresh.GID, st["hookId"])
	require.Equal(t, fresh.Secret, st["hookSecret"])

	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "asana"})
	status, _ := w.fake.deliver(fresh, []map[string]any{event("removed", "task", "1209081737128423", "2025-01-03T08:00:00.000Z", nil)})
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "task.removed", stream.Next(1)[0].GetType())
	// The old webhook's secret no longer verifies anything.
	status, _ = w.fake.deliver(fresh, []map[string]any{event("added", "task", "1209081737128424", "2025-01-03T08:00:00.000Z", nil)}, old.Secret)
	require.Equal(t, http.StatusUnauthorized, status)
}
