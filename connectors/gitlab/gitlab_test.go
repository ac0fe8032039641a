package gitlab_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

type world struct {
	t    *testing.T
	h    *apptest.Harness
	fake *fakeGitLab
	conn *hookmapv1.Connection
}

func start(t *testing.T) *world {
	w := &world{t: t, h: apptest.Start(t, apptest.WithConnectors(".."), apptest.WithAllowPrivate()), fake: newFakeGitLab(t)}
	conn, err := w.h.Connections.CreateConnection(w.h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "gitlab", Name: "acme",
		Parameters:  apptest.Struct(t, map[string]any{"baseUri": w.fake.URL()}),
		Credentials: apptest.Struct(t, map[string]any{"accessToken": w.fake.token}),
	})
	require.NoError(t, err)
	w.conn = conn
	return w
}

func (w *world) subscribe(params map[string]any) (*hookmapv1.Subscription, error) {
	return w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: w.conn.GetId(), EventKey: "project-events", Parameters: apptest.Struct(w.t, params),
	})
}

func TestProjectHookDeliveriesAndUnsubscribe(t *testing.T) {
	w := start(t)
	sub, err := w.subscribe(map[string]any{"project": "gitlabhq/gitlab-test", "events": []any{"issues", "merge_requests"}})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())
	require.Equal(t, []string{"GET /api/v4/projects/gitlabhq%2Fgitlab-test/hooks", "POST /api/v4/projects/gitlabhq%2Fgitlab-test/hooks"}, w.fake.Calls())
	hooks := w.fake.Hooks()
	require.Len(t, hooks, 1)
	hook := hooks[0]
	require.Equal(t, sub.GetWebhookUri(), hook.URL)
	require.GreaterOrEqual(t, len(hook.Token), 32, "the subscription's own random secret")
	require.True(t, hook.Events["issues_events"])
	require.True(t, hook.Events["merge_requests_events"])
	require.False(t, hook.Events["push_events"], "GitLab's default (true) is overridden")

	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "gitlab"})
	d := delivery{event: "Issue Hook", eventUUID: uuid(), idempotencyKey: uuid(), body: issueBody(23, "open")}
	status, body := w.fake.send(hook, d)
	require.Equal(t, http.StatusOK, status, body)
	ev := stream.Next(1)[0]
	require.Equal(t, "issue.open", ev.GetType())
	require.Equal(t, d.idempotencyKey, ev.GetExternalId())
	require.Equal(t, float64(23), ev.GetRecord().GetStructValue().AsMap()["object_attributes"].(map[string]any)["iid"])

	// GitLab resends a failed delivery with the same Idempotency-Key: stored once.
	status, body = w.fake.send(hook, d)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"received": 0}`, body)

	// A GitLab without Idempotency-Key: a recursive chain shares X-Gitlab-Event-UUID, and
	// its events are all kept.
	chain := uuid()
	for _, a := range []string{"close", "reopen"} {
		status, _ = w.fake.send(hook, delivery{event: "Issue Hook", eventUUID: chain, body: issueBody(23, a)})
		require.Equal(t, http.StatusOK, status)
	}
	evs := stream.Next(2)
	require.Equal(t, "issue.close", evs[0].GetType())
	require.Equal(t, "issue.reopen", evs[1].GetType())
	require.NotEqual(t, evs[0].GetExternalId(), evs[1].GetExternalId())

	// A wrong token is refused.
	status, _ = w.fake.send(hook, delivery{event: "Issue Hook", eventUUID: uuid(), body: issueBody(24, "open")}, "guessed")
	require.Equal(t, http.StatusUnauthorized, status)
	stream.None(200 * time.Millisecond)

	// A retried CreateSubscription of the same subscription would find the hook: here a
	// re-subscribe (RefreshSubscription without a refresh method) creates nothing.
	_, err = w.h.Subscriptions.RefreshSubscription(w.h.Ctx(), &hookmapv1.RefreshSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Len(t, w.fake.Hooks(), 1)

	_, err = w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Empty(t, w.fake.Hooks())
}

func TestReconcileAcrossPagesAndRefusals(t *testing.T) {
	w := start(t)
	w.fake.pageSize = 1
	sub, err := w.subscribe(map[string]any{"project": 15})
	require.NoError(t, err)
	orphan := w.fake.addHook(15, w.h.BaseURL+"/hooks/bG9zdC1zdWJzY3JpcHRpb24tb2YtYmVmb3Jl")
	foreign := w.fake.addHook(15, "https://ci.example.com/gitlab")

	res, err := w.h.Subscriptions.ReconcileWebhooks(w.h.Ctx(), &hookmapv1.ReconcileWebhooksRequest{
		ConnectionId: w.conn.GetId(), EventKey: "project-events", Mode: hookmapv1.ReconcileMode_RECONCILE_MODE_DELETE_ORPHANS,
		Parameters: apptest.Struct(t, map[string]any{"project": 15}),
	})
	require.NoError(t, err)
	require.Len(t, res.GetWebhooks(), 3)
	for _, r := range res.GetWebhooks() {
		switch r.GetClassification() {
		case hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_OWNED:
			require.Equal(t, sub.GetId(), r.GetSubscriptionId())
		case hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_ORPHANED:
			require.Equal(t, orphan, mustInt(t, r.GetId()))
			require.True(t, r.GetDeleted())
		default:
			require.Equal(t, foreign, mustInt(t, r.GetId()))
			require.False(t, r.GetDeleted())
		}
	}
	require.Len(t, w.fake.Hooks(), 2)

	// An unknown project and a bad token fail with GitLab's messages.
	_, err = w.subscribe(map[string]any{"project": "nobody/nothing"})
	apptest.RequireCode(t, err, codes.FailedPrecondition, "404 Project Not Found")
	w.fake.token = "rotated"
	_, err = w.subscribe(map[string]any{"project": 15})
	apptest.RequireCode(t, err, codes.FailedPrecondition, "401 Unauthorized")
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return n
}
