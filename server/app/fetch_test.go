package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

// fakeFetchApp is an app whose notifications carry no data (the fetchapp test connector):
// a hook collects payloads, numbered from 1, which GET …/payloads?cursor=N&limit=L returns
// with the next cursor and mightHaveMore. It can be told to fail or to hold the next
// payload requests, and it records every call.
type fakeFetchApp struct {
	t      testing.TB
	srv    *httptest.Server
	apiKey string

	mu       sync.Mutex
	hooks    map[string]*fetchHook
	calls    []string // "METHOD path?query"
	failNext int      // answer the next payload requests 503
	hold     chan struct{}
	held     chan struct{} // receives once per held request, when it arrives
}

type fetchHook struct {
	id, url, secret string
	payloads        []map[string]any
}

func newFakeFetchApp(t *testing.T) *fakeFetchApp { return newFakeFetchAppTB(t) }

func newFakeFetchAppTB(t testing.TB) *fakeFetchApp {
	f := &fakeFetchApp{t: t, apiKey: "key-fetch", hooks: map[string]*fetchHook{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeFetchApp) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls = append(f.calls, r.Method+" "+r.URL.RequestURI())
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+f.apiKey {
		writeJSONTo(w, 401, map[string]any{"message": "bad credentials"})
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodPost && len(parts) == 3 && parts[2] == "hooks":
		var body struct{ URL, Secret string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.URL == "" || body.Secret == "" {
			writeJSONTo(w, 400, map[string]any{"message": "url and secret are required"})
			return
		}
		f.mu.Lock()
		h := &fetchHook{id: fmt.Sprintf("hk%d", len(f.hooks)+1), url: body.URL, secret: body.Secret}
		f.hooks[h.id] = h
		f.mu.Unlock()
		writeJSONTo(w, 201, map[string]any{"id": h.id})
	case r.Method == http.MethodGet && len(parts) == 5 && parts[4] == "payloads":
		f.payloads(w, r, parts[3])
	case r.Method == http.MethodDelete && len(parts) == 4:
		f.mu.Lock()
		delete(f.hooks, parts[3])
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSONTo(w, 404, map[string]any{"message": "no route"})
	}
}

func (f *fakeFetchApp) payloads(w http.ResponseWriter, r *http.Request, hookID string) {
	f.mu.Lock()
	hold, held := f.hold, f.held
	fail := f.failNext > 0
	if fail {
		f.failNext--
	}
	f.mu.Unlock()
	if hold != nil {
		held <- struct{}{}
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	if fail {
		writeJSONTo(w, 503, map[string]any{"message": "try again later"})
		return
	}
	cursor, err1 := strconv.Atoi(r.URL.Query().Get("cursor"))
	limit, err2 := strconv.Atoi(r.URL.Query().Get("limit"))
	f.mu.Lock()
	h := f.hooks[hookID]
	f.mu.Unlock()
	switch {
	case h == nil:
		writeJSONTo(w, 404, map[string]any{"message": "no such hook"})
		return
	case err1 != nil || err2 != nil || cursor < 1 || limit < 1:
		writeJSONTo(w, 422, map[string]any{"message": "cursor and limit must be positive integers"})
		return
	}
	f.mu.Lock()
	all := h.payloads
	f.mu.Unlock()
	from := min(cursor-1, len(all))
	to := min(from+limit, len(all))
	writeJSONTo(w, 200, map[string]any{"payloads": all[from:to], "cursor": to + 1, "mightHaveMore": to < len(all)})
}

func writeJSONTo(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// change adds n payloads to every hook.
func (f *fakeFetchApp) change(kind string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.hooks {
		for range n {
			seq := len(h.payloads) + 1
			h.payloads = append(h.payloads, map[string]any{"seq": seq, "kind": kind, "big": "9007199254740993"})
		}
	}
}

// notify sends the hook's notification, signed with its secret, as the app would.
func (f *fakeFetchApp) notify(h *apptest.Harness, sub *hookmapv1.Subscription, body string) *apptest.Response {
	f.mu.Lock()
	var hook *fetchHook
	for _, k := range f.hooks {
		if k.url == sub.GetWebhookUri() {
			hook = k
		}
	}
	f.mu.Unlock()
	require.NotNil(f.t, hook, "no hook for %s", sub.GetWebhookUri())
	if body == "" {
		body = `{"type":"changed","hook":"` + hook.id + `"}`
	}
	return h.PostJSON(sub.GetWebhookUri(), body, "X-Signature", hmacHex(hook.secret, body))
}

func (f *fakeFetchApp) set(fn func(f *fakeFetchApp)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeFetchApp) payloadCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.Contains(c, "/payloads") {
			out = append(out, c)
		}
	}
	return out
}

type fetchWorld struct {
	h   *apptest.Harness
	app *fakeFetchApp
	sub *hookmapv1.Subscription
}

func startFetch(t *testing.T, opts ...apptest.Option) *fetchWorld {
	opts = append([]apptest.Option{apptest.WithConnectors("testdata/connectors"), apptest.WithAllowPrivate(), apptest.WithoutScheduler()}, opts...)
	h := apptest.Start(t, opts...)
	fa := newFakeFetchApp(t)
	conn, err := h.Connections.CreateConnection(h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "fetchapp", Name: "acme",
		Parameters:  apptest.Struct(t, map[string]any{"baseUri": fa.srv.URL}),
		Credentials: apptest.Struct(t, map[string]any{"apiKey": fa.apiKey}),
	})
	require.NoError(t, err)
	sub, err := h.Subscriptions.CreateSubscription(h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: "changes", Parameters: apptest.Struct(t, map[string]any{"project": "p1"}),
	})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())
	return &fetchWorld{h: h, app: fa, sub: sub}
}

// delivery returns the subscription's newest delivery.
func (w *fetchWorld) delivery(t *testing.T) *hookmapv1.Delivery {
	t.Helper()
	ds, err := w.h.Events.ListDeliveries(w.h.Ctx(), &hookmapv1.ListDeliveriesRequest{SubscriptionId: w.sub.GetId(), PageSize: 1})
	require.NoError(t, err)
	require.NotEmpty(t, ds.GetDeliveries())
	return ds.GetDeliveries()[0]
}

func (w *fetchWorld) waitDelivery(t *testing.T, status hookmapv1.FetchStatus) *hookmapv1.Delivery {
	t.Helper()
	var d *hookmapv1.Delivery
	require.Eventually(t, func() bool {
		d = w.delivery(t)
		return d.GetFetch().GetStatus() == status
	}, 10*time.Second, 5*time.Millisecond, "fetch status %s", status)
	return d
}

func seqOf(e *hookmapv1.Event) float64 {
	return e.GetRecord().GetStructValue().AsMap()["seq"].(float64)
}

// The receiver answers the notification before the fetch runs (the app is holding the
// fetch's request when the answer arrives); the fetch then pages through the payloads with
// the cursor kept in state, and the events are streamed.
func TestFetchAfterNotification(t *testing.T) {
	w := startFetch(t)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})
	w.app.change("created", 5)
	hold := make(chan struct{})
	w.app.set(func(f *fakeFetchApp) { f.hold, f.held = hold, make(chan struct{}, 16) })

	r := w.app.notify(w.h, w.sub, "")
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.JSONEq(t, `{"received":0}`, string(r.Body))
	<-w.app.held // the fetch runs after the answer, and the app holds it
	d := w.delivery(t)
	require.Equal(t, hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_OK, d.GetOutcome())
	require.Equal(t, hookmapv1.FetchStatus_FETCH_STATUS_PENDING, d.GetFetch().GetStatus())
	require.Zero(t, d.GetEventCount())

	w.app.set(func(f *fakeFetchApp) { f.hold = nil })
	close(hold)
	evs := stream.Next(5)
	for i, e := range evs {
		require.Equal(t, float64(i+1), seqOf(e))
		require.Equal(t, "created", e.GetType())
		require.Equal(t, w.sub.GetId(), e.GetSubscriptionId())
		if i > 0 {
			require.Greater(t, e.GetSeq(), evs[i-1].GetSeq())
		}
	}
	d = w.waitDelivery(t, hookmapv1.FetchStatus_FETCH_STATUS_OK)
	require.Equal(t, int32(5), d.GetEventCount())
	require.Empty(t, d.GetError())
	require.Equal(t, []string{
		"GET /projects/p1/hooks/hk1/payloads?cursor=1&limit=2",
		"GET /projects/p1/hooks/hk1/payloads?cursor=3&limit=2",
		"GET /projects/p1/hooks/hk1/payloads?cursor=5&limit=2",
	}, w.app.payloadCalls(), "pages, each from the cursor the previous one stored")
	require.EqualValues(t, 6, w.h.SubscriptionState(w.sub.GetId())["cursor"])
	require.Equal(t, "hk1", w.h.SubscriptionState(w.sub.GetId())["hookId"], "the fetch's state is merged")

	// The delivery shows the fetched events; their ids make a re-fetch store nothing twice.
	got, err := w.h.Events.GetDelivery(w.h.Ctx(), &hookmapv1.GetDeliveryRequest{Id: d.GetId()})
	require.NoError(t, err)
	require.Len(t, got.GetEvents(), 5)

	// A ping asks for no fetch; the next change is fetched from the stored cursor.
	r = w.app.notify(w.h, w.sub, `{"type":"ping"}`)
	require.Equal(t, http.StatusOK, r.Status)
	require.Nil(t, w.delivery(t).GetFetch())
	w.app.change("updated", 1)
	require.Equal(t, http.StatusOK, w.app.notify(w.h, w.sub, "").Status)
	next := stream.Next(1)
	require.Equal(t, float64(6), seqOf(next[0]))
	require.Equal(t, "updated", next[0].GetType())
	stream.None(50 * time.Millisecond)
}

// A failing fetch is retried with backoff (the delivery says so meanwhile), never
// answering the app with an error; once given up the delivery is FAILED, and
// ReplayDelivery runs it again.
func TestFetchRetriedThenGivenUpAndReplayed(t *testing.T) {
	clk := newClock()
	w := startFetch(t, apptest.WithClock(clk.Now), apptest.WithFetchInterval(10*time.Millisecond))
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})
	w.app.change("created", 1)
	w.app.set(func(f *fakeFetchApp) { f.failNext = 1 })

	r := w.app.notify(w.h, w.sub, "")
	require.Equal(t, http.StatusOK, r.Status, "the app is answered 2xx whatever the fetch does")
	d := w.waitDelivery(t, hookmapv1.FetchStatus_FETCH_STATUS_RETRYING)
	require.Equal(t, hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_OK, d.GetOutcome())
	require.Equal(t, int32(1), d.GetFetch().GetAttempts())
	require.Contains(t, d.GetError(), "fetch failed (attempt 1 of 20, next at ")
	require.Contains(t, d.GetError(), "answered 503")
	stream.None(30 * time.Millisecond)

	clk.Advance(3 * time.Second) // past the first backoff (2s ± 20%)
	require.Equal(t, float64(1), seqOf(stream.Next(1)[0]))
	d = w.waitDelivery(t, hookmapv1.FetchStatus_FETCH_STATUS_OK)
	require.Empty(t, d.GetError())
	require.Equal(t, int32(1), d.GetEventCount())

	// Failing every time: given up after 20 attempts.
	w.app.change("created", 1)
	w.app.set(func(f *fakeFetchApp) { f.failNext = 1000 })
	require.Equal(t, http.StatusOK, w.app.notify(w.h, w.sub, "").Status)
	for attempt := int32(1); attempt < 20; attempt++ {
		require.Eventually(t, func() bool { return w.delivery(t).GetFetch().GetAttempts() == attempt }, 10*time.Second, time.Millisecond, "attempt %d: %v", attempt, w.delivery(t))
		clk.Advance(13 * time.Minute) // beyond the longest backoff (10m + 20%)
	}
	d = w.waitDelivery(t, hookmapv1.FetchStatus_FETCH_STATUS_FAILED)
	require.Equal(t, hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED, d.GetOutcome())
	require.Equal(t, int32(20), d.GetFetch().GetAttempts())
	require.True(t, d.GetReplayable())
	require.Contains(t, d.GetError(), "fetch failed 20 times, given up")
	failed, err := w.h.Events.ListDeliveries(w.h.Ctx(), &hookmapv1.ListDeliveriesRequest{Outcome: hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED})
	require.NoError(t, err)
	require.Len(t, failed.GetDeliveries(), 1)

	w.app.set(func(f *fakeFetchApp) { f.failNext = 0 })
	replayed, err := w.h.Events.ReplayDelivery(w.h.Ctx(), &hookmapv1.ReplayDeliveryRequest{Id: d.GetId()})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_OK, replayed.GetOutcome())
	require.Equal(t, int32(1), replayed.GetReplayCount())
	require.Equal(t, float64(2), seqOf(stream.Next(1)[0]))
	d = w.waitDelivery(t, hookmapv1.FetchStatus_FETCH_STATUS_OK)
	require.Equal(t, hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_OK, d.GetOutcome())
	require.Empty(t, d.GetError())
}

// A delivery answered 2xx whose fetch has not run when the server stops is fetched after
// the restart: the fetch was committed with the delivery.
func TestFetchSurvivesRestart(t *testing.T) {
	w := startFetch(t, apptest.WithoutFetcher())
	w.app.change("created", 3)
	require.Equal(t, http.StatusOK, w.app.notify(w.h, w.sub, "").Status)
	require.Empty(t, w.app.payloadCalls(), "no fetcher: nothing fetched yet")
	require.Equal(t, hookmapv1.FetchStatus_FETCH_STATUS_PENDING, w.delivery(t).GetFetch().GetStatus())

	w.h.Config.FetchInterval = time.Second
	w.h.Restart()
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})
	evs := stream.Next(3)
	require.Equal(t, float64(3), seqOf(evs[2]))
	w.waitDelivery(t, hookmapv1.FetchStatus_FETCH_STATUS_OK)

	// Stopped while a fetch is running: the run is abandoned uncounted and runs again
	// after the restart.
	w.app.change("updated", 1)
	hold := make(chan struct{})
	w.app.set(func(f *fakeFetchApp) { f.hold, f.held = hold, make(chan struct{}, 16) })
	require.Equal(t, http.StatusOK, w.app.notify(w.h, w.sub, "").Status)
	<-w.app.held
	w.h.Restart()
	w.app.set(func(f *fakeFetchApp) { f.hold = nil })
	close(hold)
	stream = w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c", Start: &hookmapv1.StreamPosition{Position: &hookmapv1.StreamPosition_Seq{Seq: evs[2].GetSeq() + 1}}})
	ev := stream.Next(1)[0]
	require.Equal(t, float64(4), seqOf(ev))
	d := w.waitDelivery(t, hookmapv1.FetchStatus_FETCH_STATUS_OK)
	require.Zero(t, d.GetFetch().GetAttempts(), "a run cut short by a stop is not a failure")
}

// Fetches of one subscription run one at a time, in the order of their deliveries, and
// each sees the cursor the previous one stored: a burst of notifications fetches each
// payload once.
func TestFetchesOfASubscriptionRunInOrder(t *testing.T) {
	w := startFetch(t)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})
	const n = 6
	var wg sync.WaitGroup
	for i := range n {
		w.app.change(fmt.Sprintf("k%d", i), 1)
		wg.Go(func() { require.Equal(t, http.StatusOK, w.app.notify(w.h, w.sub, "").Status) })
	}
	wg.Wait()
	evs := stream.Next(n)
	for i, e := range evs {
		require.Equal(t, float64(i+1), seqOf(e), "each payload once, in order")
	}
	require.Eventually(t, func() bool {
		ds, err := w.h.Events.ListDeliveries(w.h.Ctx(), &hookmapv1.ListDeliveriesRequest{SubscriptionId: w.sub.GetId()})
		require.NoError(t, err)
		for _, d := range ds.GetDeliveries() {
			if d.GetFetch().GetStatus() != hookmapv1.FetchStatus_FETCH_STATUS_OK {
				return false
			}
		}
		return len(ds.GetDeliveries()) == n
	}, 10*time.Second, 5*time.Millisecond)
	stream.None(50 * time.Millisecond)
}

// BenchmarkFetchAfterNotification measures a notification's way to a client: the 2xx,
// the fetch (one GET of one payload from the app on loopback) and the event streamed.
func BenchmarkFetchAfterNotification(b *testing.B) {
	h := apptest.Start(b, apptest.WithConnectors("testdata/connectors"), apptest.WithAllowPrivate(), apptest.WithoutScheduler())
	fa := newFakeFetchAppTB(b)
	conn, err := h.Connections.CreateConnection(h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "fetchapp", Name: "acme",
		Parameters:  apptest.Struct(b, map[string]any{"baseUri": fa.srv.URL}),
		Credentials: apptest.Struct(b, map[string]any{"apiKey": fa.apiKey}),
	})
	require.NoError(b, err)
	sub, err := h.Subscriptions.CreateSubscription(h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: "changes", Parameters: apptest.Struct(b, map[string]any{"project": "p1"}),
	})
	require.NoError(b, err)
	stream := h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "bench"})
	b.ResetTimer()
	for range b.N {
		fa.change("created", 1)
		if r := fa.notify(h, sub, ""); r.Status != 200 {
			b.Fatalf("answered %d", r.Status)
		}
		stream.Next(1)
	}
}
