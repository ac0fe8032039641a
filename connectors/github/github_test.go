package github_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

const (
	owner = "octo-org"
	repo  = "hello-world"
	event = "repo-events"

	owned    = hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_OWNED
	orphaned = hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_ORPHANED
	foreign  = hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_FOREIGN
	dryRun   = hookmapv1.ReconcileMode_RECONCILE_MODE_DRY_RUN
	wipe     = hookmapv1.ReconcileMode_RECONCILE_MODE_DELETE_ORPHANS
)

// world is hookmap with the bundled connectors, a fake GitHub and a connection to it.
type world struct {
	h    *apptest.Harness
	gh   *fakeGitHub
	conn *hookmapv1.Connection
}

func start(t *testing.T, prefix string) *world {
	h := apptest.Start(t, apptest.WithConnectors(".."), apptest.WithAllowPrivate())
	w := &world{h: h, gh: newFakeGitHub(t, prefix)}
	w.conn = w.connect(t, w.gh.token)
	return w
}

func (w *world) connect(t *testing.T, token string) *hookmapv1.Connection {
	conn, err := w.h.Connections.CreateConnection(w.h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "github", Name: "octo-org",
		Parameters:  apptest.Struct(t, map[string]any{"baseUri": w.gh.baseURI()}),
		Credentials: apptest.Struct(t, map[string]any{"accessToken": token}),
	})
	require.NoError(t, err)
	return conn
}

func (w *world) subscribe(t *testing.T, conn *hookmapv1.Connection, requestID string, params map[string]any) (*hookmapv1.Subscription, error) {
	return w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: event, RequestId: requestID, Parameters: apptest.Struct(t, params),
	})
}

func (w *world) stream(sub *hookmapv1.Subscription) *apptest.Stream {
	return w.h.OpenStream(&hookmapv1.StreamEventsRequest{
		Consumer: "c-" + sub.GetId(),
		Filter:   &hookmapv1.EventFilter{SubscriptionIds: []string{sub.GetId()}},
	})
}

// hookOf is the fake's hook pointing at sub's webhook_uri.
func (w *world) hookOf(t *testing.T, sub *hookmapv1.Subscription) fakeHook {
	t.Helper()
	for _, h := range w.gh.hooks(owner, repo) {
		if h.URL == sub.GetWebhookUri() {
			return h
		}
	}
	t.Fatalf("no hook for %s", sub.GetWebhookUri())
	return fakeHook{}
}

func repoParams(events ...any) map[string]any {
	p := map[string]any{"owner": owner, "repo": repo}
	if len(events) > 0 {
		p["events"] = events
	}
	return p
}

const issueOpened = `{"action":"opened","issue":{"url":"https://api.github.com/repos/octo-org/hello-world/issues/1347",` +
	`"id":1234567890123,"number":1347,"title":"Found a bug","state":"open","user":{"login":"octocat","id":1},` +
	`"labels":[{"id":208045946,"name":"bug"}],"body":"I'm having a problem with this."},` +
	`"repository":{"id":1296269,"name":"hello-world","full_name":"octo-org/hello-world","owner":{"login":"octo-org","id":2}},` +
	`"sender":{"login":"octocat","id":1}}`

const pushBody = `{"ref":"refs/heads/main","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246",` +
	`"after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","created":false,"deleted":false,"forced":false,` +
	`"commits":[{"id":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","message":"Update README.md","author":{"name":"Mona","email":"mona@github.com"}}],` +
	`"pusher":{"name":"octocat","email":"octocat@github.com"},` +
	`"repository":{"id":1296269,"name":"hello-world","full_name":"octo-org/hello-world"},"sender":{"login":"octocat","id":1}}`

func TestSubscribeCreatesHookAndDeliveriesBecomeEvents(t *testing.T) {
	w := start(t, "")
	sub, err := w.subscribe(t, w.conn, "", repoParams("issues", "push"))
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())

	// Looked up first, then created with the body GitHub expects.
	require.Equal(t, []string{
		"GET /repos/octo-org/hello-world/hooks?per_page=100",
		"POST /repos/octo-org/hello-world/hooks",
	}, w.gh.callList())
	for _, hd := range w.gh.headerList() {
		require.Equal(t, "Bearer "+w.gh.token, hd.Get("Authorization"))
		require.Equal(t, "application/vnd.github+json", hd.Get("Accept"))
		require.Equal(t, apiVersion, hd.Get("X-GitHub-Api-Version"))
	}
	require.Len(t, w.gh.createList(), 1)
	create := w.gh.createList()[0]
	config := create["config"].(map[string]any)
	require.GreaterOrEqual(t, len(config["secret"].(string)), 20, "a generated secret")
	require.Equal(t, map[string]any{
		"name": "web", "active": true, "events": []any{"issues", "push"},
		"config": map[string]any{"url": sub.GetWebhookUri(), "content_type": "json", "insecure_ssl": "0", "secret": config["secret"]},
	}, create)
	hooks := w.gh.hooks(owner, repo)
	require.Len(t, hooks, 1)
	hook := hooks[0]
	require.Equal(t, sub.GetWebhookUri(), hook.URL)
	require.Equal(t, "json", hook.ContentType)
	require.Equal(t, []string{"issues", "push"}, hook.Events)
	require.True(t, hook.Active)

	stream := w.stream(sub)

	// GitHub pings the new hook: answered 200, no event.
	r := w.gh.ping(owner, repo, hook.ID)
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	require.JSONEq(t, `{"received":0}`, r.Body)

	// An issue opened: type issues.opened, the payload as record, the delivery GUID as id.
	r = w.gh.send(owner, repo, hook.ID, delivery{Event: "issues", ID: "72d3162e-cc78-11e3-81ab-4c9367dc0958", Body: issueOpened})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	ev := stream.Next(1)[0]
	require.Equal(t, "issues.opened", ev.GetType())
	require.Equal(t, event, ev.GetEventKey())
	require.Equal(t, w.conn.GetId(), ev.GetConnectionId())
	require.Equal(t, "72d3162e-cc78-11e3-81ab-4c9367dc0958", ev.GetExternalId())
	rec := ev.GetRecord().GetStructValue().AsMap()
	require.Equal(t, "opened", rec["action"])
	issue := rec["issue"].(map[string]any)
	require.Equal(t, float64(1347), issue["number"])
	require.Equal(t, float64(1234567890123), issue["id"])
	require.Equal(t, "Found a bug", issue["title"])
	require.Equal(t, "octo-org/hello-world", rec["repository"].(map[string]any)["full_name"])

	// GitHub redelivers with the same GUID: stored once.
	r = w.gh.send(owner, repo, hook.ID, delivery{Event: "issues", ID: "72d3162e-cc78-11e3-81ab-4c9367dc0958", Body: issueOpened})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	require.JSONEq(t, `{"received":0}`, r.Body)

	// A push has no action: the type is the event name alone.
	r = w.gh.send(owner, repo, hook.ID, delivery{Event: "push", ID: "9f6c3a52-7d3a-11ef-9a0b-5e2c4b1d0f11", Body: pushBody})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	ev = stream.Next(1)[0]
	require.Equal(t, "push", ev.GetType())
	require.Equal(t, "9f6c3a52-7d3a-11ef-9a0b-5e2c4b1d0f11", ev.GetExternalId())
	rec = ev.GetRecord().GetStructValue().AsMap()
	require.Equal(t, "refs/heads/main", rec["ref"])
	require.Len(t, rec["commits"], 1)

	// A hook switched to content type form sends payload=<json>, signed as sent.
	r = w.gh.send(owner, repo, hook.ID, delivery{
		Event: "issues", ID: "b1f0c6e2-7d3b-11ef-8c1d-2a9e4f6b7c80", Form: true,
		Body: strings.Replace(issueOpened, `"opened"`, `"closed"`, 1),
	})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	ev = stream.Next(1)[0]
	require.Equal(t, "issues.closed", ev.GetType())
	require.Equal(t, "b1f0c6e2-7d3b-11ef-8c1d-2a9e4f6b7c80", ev.GetExternalId())
	require.Equal(t, "Found a bug", ev.GetRecord().GetStructValue().AsMap()["issue"].(map[string]any)["title"])

	list, err := w.h.Events.ListEvents(w.h.Ctx(), &hookmapv1.ListEventsRequest{
		Filter: &hookmapv1.EventFilter{SubscriptionIds: []string{sub.GetId()}}, PageSize: 10,
	})
	require.NoError(t, err)
	var types []string
	for _, e := range list.GetEvents() {
		types = append(types, e.GetType())
	}
	require.Equal(t, []string{"issues.opened", "push", "issues.closed"}, types, "no ping, no duplicate")
}

func TestDefaultEventsAreEverything(t *testing.T) {
	w := start(t, "")
	sub, err := w.subscribe(t, w.conn, "", repoParams())
	require.NoError(t, err)
	require.Equal(t, []any{"*"}, w.gh.createList()[0]["events"])
	require.Equal(t, []string{"*"}, w.hookOf(t, sub).Events)
}

func TestBadSignaturesAreRefused(t *testing.T) {
	w := start(t, "")
	sub, err := w.subscribe(t, w.conn, "", repoParams())
	require.NoError(t, err)
	hook := w.hookOf(t, sub)
	stream := w.stream(sub)

	// Signed with another secret.
	r := w.gh.send(owner, repo, hook.ID, delivery{Event: "issues", ID: "bad-1", Body: issueOpened, Secret: "not-the-hook-secret"})
	require.Equal(t, http.StatusUnauthorized, r.Status, r.Body)
	// A valid signature of another body (altered on the way).
	r = w.gh.send(owner, repo, hook.ID, delivery{Event: "issues", ID: "bad-2", Body: issueOpened, Signature: sign(hook.Secret, `{"action":"opened"}`)})
	require.Equal(t, http.StatusUnauthorized, r.Status, r.Body)
	// The right HMAC without the sha256= prefix.
	r = w.gh.send(owner, repo, hook.ID, delivery{Event: "issues", ID: "bad-3", Body: issueOpened, Signature: strings.TrimPrefix(sign(hook.Secret, issueOpened), "sha256=")})
	require.Equal(t, http.StatusUnauthorized, r.Status, r.Body)
	// No signature at all; and only the legacy SHA-1 header.
	resp := w.h.PostJSON(sub.GetWebhookUri(), issueOpened, "X-GitHub-Event", "issues", "X-GitHub-Delivery", "bad-4")
	require.Equal(t, http.StatusUnauthorized, resp.Status, string(resp.Body))
	resp = w.h.PostJSON(sub.GetWebhookUri(), issueOpened, "X-GitHub-Event", "issues", "X-GitHub-Delivery", "bad-5",
		"X-Hub-Signature", "sha1=7d38cdd689735b008b3c702edd92eea23791c5f6")
	require.Equal(t, http.StatusUnauthorized, resp.Status, string(resp.Body))

	// None of them became an event: the first event is the good delivery sent after them.
	r = w.gh.send(owner, repo, hook.ID, delivery{Event: "issues", ID: "good", Body: issueOpened})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	ev := stream.Next(1)[0]
	require.Equal(t, "good", ev.GetExternalId())
	require.Equal(t, "issues.opened", ev.GetType())

	deliveries, err := w.h.Events.ListDeliveries(w.h.Ctx(), &hookmapv1.ListDeliveriesRequest{SubscriptionId: sub.GetId(), PageSize: 20})
	require.NoError(t, err)
	rejected := 0
	for _, d := range deliveries.GetDeliveries() {
		if d.GetOutcome() == hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_REJECTED {
			rejected++
			require.Zero(t, d.GetEventCount())
		}
	}
	require.Equal(t, 5, rejected)
}

func TestRetriedCreateSubscriptionCreatesOneHook(t *testing.T) {
	w := start(t, "")
	// Three hooks of other services first: the lost one lands on the second page.
	for i := range 3 {
		w.gh.addHook(owner, repo, fmt.Sprintf("https://ci%d.example.com/github", i), "")
	}
	// GitHub stores the hook but the answer is lost.
	w.gh.set(func() { w.gh.dropCreate = true })
	_, err := w.subscribe(t, w.conn, "req-7", repoParams("issues"))
	require.Error(t, err)
	require.Len(t, w.gh.hooks(owner, repo), 4)
	lost := w.gh.hooks(owner, repo)[3]

	// The retry with the same request id finds the hook on page 2 instead of creating
	// another (which GitHub would refuse with 422 "Hook already exists on this repository").
	sub, err := w.subscribe(t, w.conn, "req-7", repoParams("issues"))
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())
	require.Equal(t, lost.URL, sub.GetWebhookUri())
	require.Len(t, w.gh.hooks(owner, repo), 4)
	require.Equal(t, 1, w.gh.count("POST "))
	require.Equal(t, 2, w.gh.count("GET /repositories/1296269/hooks?per_page=100&page=2"), "both lookups followed the Link header")

	// The found hook's secret is the subscription's: its deliveries verify.
	stream := w.stream(sub)
	r := w.gh.send(owner, repo, lost.ID, delivery{Event: "issues", ID: "d-1", Body: issueOpened})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	require.Equal(t, "d-1", stream.Next(1)[0].GetExternalId())

	// Again: the same subscription, nothing new in GitHub.
	again, err := w.subscribe(t, w.conn, "req-7", repoParams("issues"))
	require.NoError(t, err)
	require.Equal(t, sub.GetId(), again.GetId())
	require.Equal(t, 1, w.gh.count("POST "))

	// The stored hook id is the found one: unsubscribe deletes it.
	_, err = w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Equal(t, 1, w.gh.count(fmt.Sprintf("DELETE /repos/octo-org/hello-world/hooks/%d", lost.ID)))
	require.Len(t, w.gh.hooks(owner, repo), 3)
}

func TestDeleteSubscriptionRemovesHook(t *testing.T) {
	w := start(t, "")
	keep, err := w.subscribe(t, w.conn, "", repoParams("push"))
	require.NoError(t, err)
	sub, err := w.subscribe(t, w.conn, "", repoParams("issues"))
	require.NoError(t, err)
	require.Len(t, w.gh.hooks(owner, repo), 2)
	id := w.hookOf(t, sub).ID

	_, err = w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	hooks := w.gh.hooks(owner, repo)
	require.Len(t, hooks, 1)
	require.Equal(t, keep.GetWebhookUri(), hooks[0].URL)
	require.Equal(t, 1, w.gh.count(fmt.Sprintf("DELETE /repos/octo-org/hello-world/hooks/%d", id)))
	_, err = w.h.Subscriptions.GetSubscription(w.h.Ctx(), &hookmapv1.GetSubscriptionRequest{Id: sub.GetId()})
	apptest.RequireCode(t, err, codes.NotFound, "")

	// Deleted in GitHub by someone else: GitHub answers 404, which counts as gone.
	w.gh.set(func() { delete(w.gh.repos[owner+"/"+repo].Hooks, hooks[0].ID) })
	_, err = w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: keep.GetId()})
	require.NoError(t, err)
	_, err = w.h.Subscriptions.GetSubscription(w.h.Ctx(), &hookmapv1.GetSubscriptionRequest{Id: keep.GetId()})
	apptest.RequireCode(t, err, codes.NotFound, "")
}

func TestGitHubErrorsFailTheSubscription(t *testing.T) {
	w := start(t, "")
	// A wrong token: GitHub's 401 reaches the caller, nothing is created.
	bad := w.connect(t, "ghp_revoked")
	_, err := w.subscribe(t, bad, "", repoParams())
	apptest.RequireCode(t, err, codes.FailedPrecondition, "Bad credentials")
	// A repository the token cannot see: 404.
	_, err = w.subscribe(t, w.conn, "", map[string]any{"owner": owner, "repo": "secret-repo"})
	apptest.RequireCode(t, err, codes.FailedPrecondition, "Not Found")
	// Parameters are checked before GitHub is called.
	_, err = w.subscribe(t, w.conn, "", map[string]any{"owner": owner})
	apptest.RequireCode(t, err, codes.InvalidArgument, "repo")
	require.Empty(t, w.gh.hooks(owner, repo))
	require.Zero(t, w.gh.count("POST "))
}

func TestEnterpriseServerBaseURI(t *testing.T) {
	w := start(t, "/api/v3")
	sub, err := w.subscribe(t, w.conn, "", repoParams("issues"))
	require.NoError(t, err)
	require.Equal(t, 1, w.gh.count("GET /api/v3/repos/octo-org/hello-world/hooks?per_page=100"))
	require.Equal(t, 1, w.gh.count("POST /api/v3/repos/octo-org/hello-world/hooks"))
	hook := w.hookOf(t, sub)
	stream := w.stream(sub)
	r := w.gh.send(owner, repo, hook.ID, delivery{Event: "issues", ID: "ghes-1", Body: issueOpened})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	require.Equal(t, "issues.opened", stream.Next(1)[0].GetType())
	_, err = w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Equal(t, 1, w.gh.count(fmt.Sprintf("DELETE /api/v3/repos/octo-org/hello-world/hooks/%d", hook.ID)))
	require.Empty(t, w.gh.hooks(owner, repo))
}

func TestReconcileFindsAndDeletesOrphans(t *testing.T) {
	w := start(t, "")
	sub, err := w.subscribe(t, w.conn, "", repoParams("push"))
	require.NoError(t, err)
	ownedID := w.hookOf(t, sub).ID
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	orphanURL := w.h.BaseURL + "/hooks/" + hex.EncodeToString(b)
	orphanID := w.gh.addHook(owner, repo, orphanURL, "lost-secret")
	foreignID := w.gh.addHook(owner, repo, "https://ci.example.com/github-webhook", "")
	foreign2ID := w.gh.addHook(owner, repo, "https://chat.example.com/hooks/abc", "x")
	before := w.gh.hooks(owner, repo)
	require.Len(t, before, 4, "two pages of two")

	reconcile := func(mode hookmapv1.ReconcileMode) *hookmapv1.ReconcileWebhooksResponse {
		resp, err := w.h.Subscriptions.ReconcileWebhooks(w.h.Ctx(), &hookmapv1.ReconcileWebhooksRequest{
			ConnectionId: w.conn.GetId(), EventKey: event,
			Parameters: apptest.Struct(t, map[string]any{"owner": owner, "repo": repo}), Mode: mode,
		})
		require.NoError(t, err)
		return resp
	}
	classes := func(resp *hookmapv1.ReconcileWebhooksResponse) map[string]hookmapv1.WebhookClassification {
		out := map[string]hookmapv1.WebhookClassification{}
		for _, wh := range resp.GetWebhooks() {
			out[wh.GetId()] = wh.GetClassification()
		}
		return out
	}
	id := func(n int64) string { return fmt.Sprint(n) }

	lists := w.gh.count("GET ")
	resp := reconcile(dryRun)
	require.Equal(t, map[string]hookmapv1.WebhookClassification{
		id(ownedID): owned, id(orphanID): orphaned, id(foreignID): foreign, id(foreign2ID): foreign,
	}, classes(resp))
	for _, wh := range resp.GetWebhooks() {
		require.False(t, wh.GetDeleted())
		switch wh.GetId() {
		case id(ownedID):
			require.Equal(t, sub.GetWebhookUri(), wh.GetUrl())
		case id(orphanID):
			require.Equal(t, orphanURL, wh.GetUrl())
		}
	}
	require.Equal(t, 2, w.gh.count("GET ")-lists, "both pages were read")
	require.Equal(t, 1, w.gh.count("GET /repositories/1296269/hooks?per_page=100&page=2"), "the second page through the Link header")
	require.Equal(t, before, w.gh.hooks(owner, repo), "a dry run changes nothing")
	require.Zero(t, w.gh.count("DELETE "))

	resp = reconcile(wipe)
	require.Equal(t, orphaned, classes(resp)[id(orphanID)])
	for _, wh := range resp.GetWebhooks() {
		require.Equal(t, wh.GetId() == id(orphanID), wh.GetDeleted(), wh.GetId())
		require.Empty(t, wh.GetError())
	}
	require.Equal(t, 1, w.gh.count("DELETE "))
	require.Equal(t, 1, w.gh.count(fmt.Sprintf("DELETE /repos/octo-org/hello-world/hooks/%d", orphanID)))
	var left []int64
	for _, h := range w.gh.hooks(owner, repo) {
		left = append(left, h.ID)
	}
	require.Equal(t, []int64{ownedID, foreignID, foreign2ID}, left)
}

// GitHub pings a new hook right after creating it, possibly before hookmap has stored the
// subscription's state: the ping still verifies (the secret is the subscription's
// webhookSecret, known from the start) and is answered 200; so is a later ping
// (POST /repos/{owner}/{repo}/hooks/{hook_id}/pings). No ping is an event.
func TestPingDuringCreate(t *testing.T) {
	w := start(t, "")
	w.gh.set(func() { w.gh.pingOnCreate = true })
	sub, err := w.subscribe(t, w.conn, "", repoParams("issues"))
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())
	var pings []sent
	w.gh.set(func() { pings = slices.Clone(w.gh.pings) })
	require.Len(t, pings, 1)
	require.Equal(t, http.StatusOK, pings[0].Status, "the ping sent before subscribe returned verifies: %s", pings[0].Body)
	deliveries, err := w.h.Events.ListDeliveries(w.h.Ctx(), &hookmapv1.ListDeliveriesRequest{SubscriptionId: sub.GetId(), PageSize: 20})
	require.NoError(t, err)
	require.Len(t, deliveries.GetDeliveries(), 1)
	require.Equal(t, hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_OK, deliveries.GetDeliveries()[0].GetOutcome())
	require.Zero(t, deliveries.GetDeliveries()[0].GetEventCount())

	stream := w.stream(sub)
	hook := w.hookOf(t, sub)
	r := w.gh.ping(owner, repo, hook.ID)
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	r = w.gh.send(owner, repo, hook.ID, delivery{Event: "issues", ID: "after-ping", Body: issueOpened})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	ev := stream.Next(1)[0]
	require.Equal(t, "after-ping", ev.GetExternalId(), "the pings were not events")
}

// A hook deleted in GitHub by someone else is MISSING; repair runs subscribe again, which
// creates a new hook with the same URL and secret, and its id is the one unsubscribe uses.
// MISSING is reported for the subscriptions whose parameters include the reconcile's, so
// {owner, repo} covers a subscription with events too.
func TestReconcileRepairsMissingHook(t *testing.T) {
	w := start(t, "")
	sub, err := w.subscribe(t, w.conn, "", repoParams("issues"))
	require.NoError(t, err)
	old := w.hookOf(t, sub)
	w.gh.set(func() { delete(w.gh.repos[owner+"/"+repo].Hooks, old.ID) })

	resp, err := w.h.Subscriptions.ReconcileWebhooks(w.h.Ctx(), &hookmapv1.ReconcileWebhooksRequest{
		ConnectionId: w.conn.GetId(), EventKey: event, Mode: dryRun, Repair: true,
		Parameters: apptest.Struct(t, repoParams()), // the repository: every subscription on it is covered
	})
	require.NoError(t, err)
	require.Equal(t, int32(1), resp.GetMissing())
	require.Len(t, resp.GetWebhooks(), 1)
	wh := resp.GetWebhooks()[0]
	require.Equal(t, hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_MISSING, wh.GetClassification())
	require.Equal(t, sub.GetId(), wh.GetSubscriptionId())
	require.True(t, wh.GetRepaired(), wh.GetError())

	fresh := w.hookOf(t, sub)
	require.NotEqual(t, old.ID, fresh.ID)
	require.Equal(t, old.Secret, fresh.Secret, "the subscription's secret again")
	stream := w.stream(sub)
	r := w.gh.send(owner, repo, fresh.ID, delivery{Event: "issues", ID: "after-repair", Body: issueOpened})
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	require.Equal(t, "after-repair", stream.Next(1)[0].GetExternalId())

	_, err = w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Equal(t, 1, w.gh.count(fmt.Sprintf("DELETE /repos/octo-org/hello-world/hooks/%d", fresh.ID)))
	require.Empty(t, w.gh.hooks(owner, repo))
}
