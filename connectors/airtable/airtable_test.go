package airtable_test

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

const (
	baseID = "appT3stBase000001"
	table  = "tblT3stTable00001"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type world struct {
	h    *apptest.Harness
	at   *fakeAirtable
	clk  *clock
	conn *hookmapv1.Connection
}

// start runs hookmap with the bundled connectors, a controllable clock, no refresh
// scheduler (tests run refreshes), the fetcher on, and a connection to a fake Airtable.
func start(t *testing.T) *world {
	t.Helper()
	clk := &clock{t: time.Now().UTC()}
	h := apptest.Start(t, apptest.WithConnectors(".."), apptest.WithAllowPrivate(),
		apptest.WithClock(clk.Now), apptest.WithoutScheduler(), apptest.WithFetchInterval(10*time.Millisecond))
	at := newFakeAirtable(t)
	conn, err := h.Connections.CreateConnection(h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "airtable", Name: "acme",
		Parameters:  apptest.Struct(t, map[string]any{"baseUri": at.srv.URL}),
		Credentials: apptest.Struct(t, map[string]any{"accessToken": at.token}),
	})
	require.NoError(t, err)
	return &world{h: h, at: at, clk: clk, conn: conn}
}

func (w *world) subscribe(t *testing.T, params map[string]any) *hookmapv1.Subscription {
	t.Helper()
	if params == nil {
		params = map[string]any{"baseId": baseID}
	}
	sub, err := w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: w.conn.GetId(), EventKey: "changes", Parameters: apptest.Struct(t, params),
	})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())
	return sub
}

func record(e *hookmapv1.Event) map[string]any { return e.GetRecord().GetStructValue().AsMap() }

// Changes in the base reach the stream: Airtable pings the webhook, hookmap answers at
// once and reads the payloads from its cursor, 50 a page, each record change one event.
func TestChangesAreFetchedAndStreamed(t *testing.T) {
	w := start(t)
	sub := w.subscribe(t, nil)
	hook := w.at.hookFor(sub.GetWebhookUri())
	require.NotNil(t, hook)
	require.Equal(t, map[string]any{"options": map[string]any{"filters": map[string]any{"dataTypes": []any{"tableData"}}}}, hook.Spec)
	st := w.h.SubscriptionState(sub.GetId())
	require.Equal(t, hook.ID, st["webhookId"])
	require.EqualValues(t, 1, st["cursor"])
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "base"})

	ids := w.at.changeRecords(baseID, table, 3)
	evs := stream.Next(3)
	for i, e := range evs {
		require.Equal(t, "record.updated", e.GetType())
		rec := record(e)
		require.Equal(t, ids[i], rec["recordId"])
		require.Equal(t, table, rec["tableId"])
		require.Equal(t, baseID, rec["baseId"])
		require.Equal(t, hook.ID, rec["webhookId"])
		require.EqualValues(t, 1, rec["payloadNumber"])
		require.Equal(t, hook.ID+"/1/"+table+"/"+ids[i]+"/updated", e.GetExternalId())
	}

	// A backlog longer than a page (120 payloads) is read in pages of 50, in order.
	w.at.set(func() {
		for _, h := range w.at.hooks {
			h.NotificationsEnabled = false
		}
	})
	for range 119 {
		w.at.changeRecords(baseID, table, 1)
	}
	w.at.set(func() {
		for _, h := range w.at.hooks {
			h.NotificationsEnabled = true
		}
	})
	reads := w.at.count("GET /v0/bases/" + baseID + "/webhooks/" + hook.ID + "/payloads")
	w.at.changeRecords(baseID, table, 1)
	evs = stream.Next(120)
	for i, e := range evs {
		require.EqualValues(t, i+2, record(e)["payloadNumber"])
	}
	require.Eventually(t, func() bool { return fmt.Sprint(w.h.SubscriptionState(sub.GetId())["cursor"]) == "122" }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, reads+3, w.at.count("GET /v0/bases/"+baseID+"/webhooks/"+hook.ID+"/payloads"), "three pages: 50, 50, 20")
	stream.None(50 * time.Millisecond)
}

// A notification not signed with the webhook's secret is refused and fetches nothing.
func TestForgedNotificationIsRefused(t *testing.T) {
	w := start(t)
	sub := w.subscribe(t, nil)
	hook := w.at.hookFor(sub.GetWebhookUri())
	forged := *hook
	forged.Secret = []byte("not the secret")
	require.Equal(t, http.StatusUnauthorized, w.at.notify(&forged))
	body := []byte(`{"base":{"id":"` + baseID + `"},"webhook":{"id":"` + hook.ID + `"},"timestamp":"2025-01-01T00:00:00.000Z"}`)
	resp, err := http.Post(sub.GetWebhookUri(), "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Zero(t, w.at.count("GET /v0/bases/"+baseID+"/webhooks/"+hook.ID+"/payloads"))
}

// A failing read of the payloads is retried from the same cursor: nothing is lost, and
// Airtable was answered 2xx at once.
func TestFailedFetchIsRetried(t *testing.T) {
	w := start(t)
	sub := w.subscribe(t, nil)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "base"})
	w.at.set(func() { w.at.failNext = 1 })
	ids := w.at.changeRecords(baseID, table, 2)
	var d *hookmapv1.Delivery
	require.Eventually(t, func() bool {
		ds, err := w.h.Events.ListDeliveries(w.h.Ctx(), &hookmapv1.ListDeliveriesRequest{SubscriptionId: sub.GetId()})
		require.NoError(t, err)
		d = ds.GetDeliveries()[0]
		return d.GetFetch().GetStatus() == hookmapv1.FetchStatus_FETCH_STATUS_RETRYING
	}, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, int32(200), d.GetStatusCode())
	require.Contains(t, d.GetError(), "answered 503")
	w.clk.Advance(5 * time.Second)
	evs := stream.Next(2)
	require.Equal(t, ids[0], record(evs[0])["recordId"])
	require.Equal(t, ids[1], record(evs[1])["recordId"])
}

// The webhook is refreshed daily (its notifications turned back on); one Airtable no
// longer has is created again, with a new secret, and its pings are accepted.
func TestRefreshAndHeal(t *testing.T) {
	w := start(t)
	sub := w.subscribe(t, nil)
	hook := w.at.hookFor(sub.GetWebhookUri())
	require.WithinDuration(t, w.clk.Now().Add(24*time.Hour), sub.GetNextRefreshTime().AsTime(), time.Second)

	w.at.set(func() {
		w.at.hooks[hook.ID].NotificationsEnabled = false
		w.at.hooks[hook.ID].Expiration = time.Now().Add(time.Hour)
	})
	w.clk.Advance(24 * time.Hour)
	n, err := w.h.App.Core().RunDueRefreshes(w.h.Ctx())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	after := w.at.hookFor(sub.GetWebhookUri())
	require.True(t, after.NotificationsEnabled)
	require.WithinDuration(t, time.Now().Add(7*24*time.Hour), after.Expiration, time.Minute)

	// Airtable dropped the webhook: the refresh's 404 re-subscribes.
	w.at.set(func() { delete(w.at.hooks, hook.ID) })
	w.clk.Advance(25 * time.Hour)
	got, err := w.h.Subscriptions.RefreshSubscription(w.h.Ctx(), &hookmapv1.RefreshSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.True(t, got.GetHealed())
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, got.GetSubscription().GetStatus())
	fresh := w.at.hookFor(sub.GetWebhookUri())
	require.NotNil(t, fresh)
	require.NotEqual(t, hook.ID, fresh.ID)
	st := w.h.SubscriptionState(sub.GetId())
	require.Equal(t, fresh.ID, st["webhookId"])
	require.EqualValues(t, 1, st["cursor"], "a new webhook's payloads start at 1")

	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "base"})
	w.at.changeRecords(baseID, table, 1)
	ev := stream.Next(1)[0]
	require.Equal(t, fresh.ID, record(ev)["webhookId"])
}

func TestUnsubscribeAndReconcile(t *testing.T) {
	w := start(t)
	sub := w.subscribe(t, nil)
	other := w.subscribe(t, nil)
	hook := w.at.hookFor(other.GetWebhookUri())
	// An orphan: a webhook pointing at this hookmap that no subscription owns.
	w.at.set(func() {
		w.at.hooks["achOrphan0000001"] = &atHook{ID: "achOrphan0000001", BaseID: baseID, NotificationURL: w.h.BaseURL + "/hooks/gone", Expiration: time.Now().Add(time.Hour)}
	})
	_, err := w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Nil(t, w.at.hookFor(sub.GetWebhookUri()))

	res, err := w.h.Subscriptions.ReconcileWebhooks(w.h.Ctx(), &hookmapv1.ReconcileWebhooksRequest{
		ConnectionId: w.conn.GetId(), EventKey: "changes", Parameters: apptest.Struct(t, map[string]any{"baseId": baseID}),
		Mode: hookmapv1.ReconcileMode_RECONCILE_MODE_DELETE_ORPHANS,
	})
	require.NoError(t, err)
	got := map[string]hookmapv1.WebhookClassification{}
	for _, wh := range res.GetWebhooks() {
		got[wh.GetId()] = wh.GetClassification()
	}
	require.Equal(t, map[string]hookmapv1.WebhookClassification{
		hook.ID:            hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_OWNED,
		"achOrphan0000001": hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_ORPHANED,
	}, got)
	w.at.set(func() { require.NotContains(t, w.at.hooks, "achOrphan0000001") })

	// A reconcile needs the base.
	_, err = w.h.Subscriptions.ReconcileWebhooks(w.h.Ctx(), &hookmapv1.ReconcileWebhooksRequest{
		ConnectionId: w.conn.GetId(), EventKey: "changes", Mode: hookmapv1.ReconcileMode_RECONCILE_MODE_DRY_RUN,
	})
	apptest.RequireCode(t, err, codes.InvalidArgument, "baseId")
}
