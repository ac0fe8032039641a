package app_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

// reconcileWorld holds, in the fake app's project p1: two hooks owned by live
// subscriptions, two orphans under hookmap's public URL (one whose delete fails), an
// orphan under an old environment's prefix and two foreign hooks — seven hooks, four pages
// of two.
type reconcileWorld struct {
	*lifecycle
	owned              []*hookmapv1.Subscription
	orphan, badOrphan  string
	oldEnv, foreignIDs []string
}

func newReconcileWorld(t *testing.T) *reconcileWorld {
	l := startLifecycle(t)
	w := &reconcileWorld{lifecycle: l}
	for range 2 {
		sub, err := l.subscribe(t, "")
		require.NoError(t, err)
		w.owned = append(w.owned, sub)
	}
	hooksBase := strings.TrimSuffix(w.owned[0].GetWebhookUri(), w.owned[0].GetId())
	add := func(id, url string) string {
		l.app.set(func() { l.app.hooks[id] = &fakeHook{ID: id, URL: url, Project: "p1"} })
		return id
	}
	w.orphan = add("hook-a1", hooksBase+"0123456789abcdefghijklmnopqrstuv")
	w.badOrphan = add("hook-a2", hooksBase+"vutsrqponmlkjihgfedcba9876543210")
	w.oldEnv = []string{add("hook-a3", "https://old-env.example/hooks/abc")}
	w.foreignIDs = []string{add("hook-a4", "https://elsewhere.example/webhook"), add("hook-a5", "https://zapier.example/hooks/catch/1")}
	add("hook-z9", hooksBase+"other-project") // another project: never listed
	l.app.set(func() { l.app.hooks["hook-z9"].Project = "p2" })
	return w
}

func (w *reconcileWorld) reconcile(t *testing.T, mode hookmapv1.ReconcileMode, prefix string, repair bool) (*hookmapv1.ReconcileWebhooksResponse, error) {
	return w.h.Subscriptions.ReconcileWebhooks(w.h.Ctx(), &hookmapv1.ReconcileWebhooksRequest{
		ConnectionId: w.conn.GetId(), EventKey: "item", Mode: mode, UrlPrefix: prefix, Repair: repair,
		Parameters: apptest.Struct(t, map[string]any{"project": "p1"}),
	})
}

func classes(resp *hookmapv1.ReconcileWebhooksResponse) map[string]hookmapv1.WebhookClassification {
	out := map[string]hookmapv1.WebhookClassification{}
	for _, wh := range resp.GetWebhooks() {
		key := wh.GetId()
		if key == "" {
			key = "missing:" + wh.GetSubscriptionId()
		}
		out[key] = wh.GetClassification()
	}
	return out
}

const (
	owned    = hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_OWNED
	orphaned = hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_ORPHANED
	foreign  = hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_FOREIGN
	missing  = hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_MISSING
	dryRun   = hookmapv1.ReconcileMode_RECONCILE_MODE_DRY_RUN
	wipe     = hookmapv1.ReconcileMode_RECONCILE_MODE_DELETE_ORPHANS
)

func TestReconcileDryRunClassifiesAcrossPagesAndChangesNothing(t *testing.T) {
	w := newReconcileWorld(t)
	before := len(w.app.hookList())
	listsBefore := w.app.count("GET /projects/p1/hooks")

	resp, err := w.reconcile(t, dryRun, "https://old-env.example/", false)
	require.NoError(t, err)
	hooks := w.app.hookList()
	require.Equal(t, map[string]hookmapv1.WebhookClassification{
		w.h.SubscriptionState(w.owned[0].GetId())["hookId"].(string): owned,
		w.h.SubscriptionState(w.owned[1].GetId())["hookId"].(string): owned,
		w.orphan: orphaned, w.badOrphan: orphaned, w.oldEnv[0]: orphaned,
		w.foreignIDs[0]: foreign, w.foreignIDs[1]: foreign,
	}, classes(resp))
	require.Equal(t, int32(2), resp.GetOwned())
	require.Equal(t, int32(3), resp.GetOrphaned())
	require.Equal(t, int32(2), resp.GetForeign())
	require.Zero(t, resp.GetDeleted())
	require.Equal(t, 4, w.app.count("GET /projects/p1/hooks")-listsBefore, "seven hooks, two per page: four pages")
	require.Len(t, hooks, before, "a dry run deletes nothing")
	require.Zero(t, w.app.count("DELETE"))
	for _, wh := range resp.GetWebhooks() {
		if wh.GetClassification() == owned {
			require.NotEmpty(t, wh.GetSubscriptionId())
		}
	}

	// Without url_prefix the old environment's hook is foreign.
	resp, err = w.reconcile(t, dryRun, "", false)
	require.NoError(t, err)
	require.Equal(t, foreign, classes(resp)[w.oldEnv[0]])
}

func TestReconcileDeletesExactlyTheOrphansAndReportsFailures(t *testing.T) {
	w := newReconcileWorld(t)
	w.app.set(func() { w.app.deleteSt[w.badOrphan] = 500 })

	resp, err := w.reconcile(t, wipe, "https://old-env.example/", false)
	require.NoError(t, err)
	byID := map[string]*hookmapv1.ReconciledWebhook{}
	for _, wh := range resp.GetWebhooks() {
		byID[wh.GetId()] = wh
	}
	require.True(t, byID[w.orphan].GetDeleted())
	require.True(t, byID[w.oldEnv[0]].GetDeleted())
	require.False(t, byID[w.badOrphan].GetDeleted())
	require.Contains(t, byID[w.badOrphan].GetError(), "500", "the app's answer is reported")
	require.Equal(t, int32(2), resp.GetDeleted())
	require.Equal(t, int32(1), resp.GetFailed())

	left := map[string]bool{}
	for _, h := range w.app.hookList() {
		left[h.ID] = true
	}
	require.False(t, left[w.orphan])
	require.False(t, left[w.oldEnv[0]])
	require.True(t, left[w.badOrphan], "its delete failed")
	for _, id := range w.foreignIDs {
		require.True(t, left[id], "a foreign hook is never deleted")
	}
	for _, s := range w.owned {
		require.True(t, left[w.h.SubscriptionState(s.GetId())["hookId"].(string)], "an owned hook is never deleted")
	}
	require.True(t, left["hook-z9"], "another project's hook is not even listed")
	require.Equal(t, 3, w.app.count("DELETE"), "exactly the three orphans were asked for")

	// Once the app recovers, a second pass deletes the last orphan.
	w.app.set(func() { delete(w.app.deleteSt, w.badOrphan) })
	resp, err = w.reconcile(t, wipe, "", false)
	require.NoError(t, err)
	require.Equal(t, int32(1), resp.GetDeleted())
	require.Zero(t, resp.GetOrphaned()-1)
}

func TestReconcileFindsAndRepairsMissingHooks(t *testing.T) {
	w := newReconcileWorld(t)
	lost := w.owned[1]
	lostHook := w.h.SubscriptionState(lost.GetId())["hookId"].(string)
	w.app.set(func() { delete(w.app.hooks, lostHook) }) // deleted in the app by someone else

	resp, err := w.reconcile(t, dryRun, "", false)
	require.NoError(t, err)
	require.Equal(t, missing, classes(resp)["missing:"+lost.GetId()])
	require.Equal(t, int32(1), resp.GetMissing())
	for _, wh := range resp.GetWebhooks() {
		if wh.GetClassification() == missing {
			require.Equal(t, lost.GetWebhookUri(), wh.GetUrl())
			require.False(t, wh.GetRepaired())
		}
	}

	resp, err = w.reconcile(t, dryRun, "", true)
	require.NoError(t, err)
	var repaired bool
	for _, wh := range resp.GetWebhooks() {
		if wh.GetSubscriptionId() == lost.GetId() && wh.GetClassification() == missing {
			repaired = wh.GetRepaired()
			require.Empty(t, wh.GetError())
		}
	}
	require.True(t, repaired)
	var found bool
	for _, h := range w.app.hookList() {
		found = found || h.URL == lost.GetWebhookUri()
	}
	require.True(t, found, "the app has a hook for the subscription again")
	require.NotEqual(t, lostHook, w.h.SubscriptionState(lost.GetId())["hookId"], "the new hook's id is stored")
	require.Contains(t, w.stored(t, lost.GetId()).LastError, "repaired")

	resp, err = w.reconcile(t, dryRun, "", false)
	require.NoError(t, err)
	require.Zero(t, resp.GetMissing())
	require.Equal(t, int32(2), resp.GetOwned())
}

func TestReconcileErrors(t *testing.T) {
	w := newReconcileWorld(t)
	_, err := w.reconcile(t, hookmapv1.ReconcileMode_RECONCILE_MODE_UNSPECIFIED, "", false)
	apptest.RequireCode(t, err, codes.InvalidArgument, "mode")
	_, err = w.reconcile(t, dryRun, "ftp://x", false)
	apptest.RequireCode(t, err, codes.InvalidArgument, "url_prefix")

	_, err = w.h.Subscriptions.ReconcileWebhooks(w.h.Ctx(), &hookmapv1.ReconcileWebhooksRequest{
		ConnectionId: "nope", EventKey: "item", Mode: dryRun,
	})
	apptest.RequireCode(t, err, codes.NotFound, "nope")
	_, err = w.h.Subscriptions.ReconcileWebhooks(w.h.Ctx(), &hookmapv1.ReconcileWebhooksRequest{
		ConnectionId: w.conn.GetId(), EventKey: "item", Mode: dryRun,
	})
	apptest.RequireCode(t, err, codes.InvalidArgument, "parameters")

	w.app.set(func() { w.app.apiKey = "rotated" })
	_, err = w.reconcile(t, dryRun, "", false)
	apptest.RequireReason(t, err, codes.FailedPrecondition, "APP_REFUSED", "401")
}
