package app_test

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
	"github.com/hookmap/hookmap/server/store/postgres/pgtest"
)

const destSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// verifyStandardWebhook checks a request's Standard Webhooks signature the way the spec
// describes it, independently of hookmap's code: HMAC-SHA256, keyed with the base64-decoded
// part of the secret after "whsec_", over "<webhook-id>.<webhook-timestamp>.<body>", sent
// as "v1,<base64>" (one of the space-separated signatures).
func verifyStandardWebhook(t *testing.T, secret string, r apptest.Request) {
	t.Helper()
	id, stamp, sigs := r.Header.Get("Webhook-Id"), r.Header.Get("Webhook-Timestamp"), r.Header.Get("Webhook-Signature")
	require.NotEmpty(t, id)
	_, err := strconv.ParseInt(stamp, 10, 64)
	require.NoError(t, err, "webhook-timestamp is unix seconds")
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + stamp + "." + string(r.Body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	require.Contains(t, strings.Fields(sigs), want, "signature of %s", id)
}

// envelope is the body a destination POSTs.
type envelope struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      struct {
		Seq            int64          `json:"seq"`
		ID             string         `json:"id"`
		SubscriptionID string         `json:"subscription_id"`
		Type           string         `json:"type"`
		Record         map[string]any `json:"record"`
	} `json:"data"`
}

func decodeEnvelope(t *testing.T, r apptest.Request) envelope {
	t.Helper()
	var e envelope
	require.NoError(t, json.Unmarshal(r.Body, &e), string(r.Body))
	require.Equal(t, r.Header.Get("Webhook-Id"), e.Data.ID, "webhook-id is the event id")
	return e
}

// waitFor polls cond (a read of the server's state) until it holds, failing after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// destWorld is a server with a subscription producing events and a signed webhook to a
// loopback endpoint.
type destWorld struct {
	h   *apptest.Harness
	sub *hookmapv1.Subscription
	ep  *apptest.Endpoint
}

func startDestinations(t testing.TB, handle apptest.Handler, opts ...apptest.Option) *destWorld {
	ep := apptest.NewEndpoint(t, handle)
	h := apptest.Start(t, append([]apptest.Option{
		apptest.WithConnectors("testdata/connectors"), apptest.WithAllowPrivate(),
		apptest.WithDestinationBackoff(time.Millisecond, 5*time.Millisecond),
	}, opts...)...)
	_, sub := setup(t, h)
	register(t, h, `{"id": "partner", "url": "`+ep.URL+`/events", "headers": {"Authorization": "Bearer partner-token"},
		"signing_secret": "`+destSecret+`", "timeout": "5s"}`)
	return &destWorld{h: h, sub: sub, ep: ep}
}

// post sends one delivery with events n to the subscription's hook.
func (w *destWorld) post(t testing.TB, sub *hookmapv1.Subscription, ns ...int) {
	t.Helper()
	items := make([]string, len(ns))
	for i, n := range ns {
		items[i] = fmt.Sprintf(`{"n": %d}`, n)
	}
	r := w.h.PostJSON(sub.GetWebhookUri(), `{"items": [`+strings.Join(items, ",")+`]}`)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
}

func (w *destWorld) create(t testing.TB, d *hookmapv1.Destination) *hookmapv1.Destination {
	t.Helper()
	got, err := w.h.Destinations.CreateDestination(w.h.Ctx(), &hookmapv1.CreateDestinationRequest{Destination: d})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.DestinationStatus_DESTINATION_STATUS_ACTIVE, got.GetStatus())
	return got
}

func (w *destWorld) get(t *testing.T, id string) *hookmapv1.Destination {
	t.Helper()
	d, err := w.h.Destinations.GetDestination(w.h.Ctx(), &hookmapv1.GetDestinationRequest{Id: id})
	require.NoError(t, err)
	return d
}

func (w *destWorld) queued(t *testing.T, id string, state hookmapv1.DestinationEventState) []*hookmapv1.DestinationEvent {
	t.Helper()
	resp, err := w.h.Destinations.ListDestinationEvents(w.h.Ctx(), &hookmapv1.ListDestinationEventsRequest{DestinationId: id, State: state})
	require.NoError(t, err)
	return resp.GetEvents()
}

// delivered returns, in arrival order, the events the endpoint acknowledged (2xx), and
// checks every request's signature and envelope.
func delivered(t *testing.T, reqs []apptest.Request, statuses func(i int) int) []envelope {
	t.Helper()
	var out []envelope
	for i, r := range reqs {
		verifyStandardWebhook(t, destSecret, r)
		require.Equal(t, http.MethodPost, r.Method)
		require.Equal(t, "/events", r.Path)
		require.Equal(t, "application/json", r.Header.Get("Content-Type"))
		require.Equal(t, "Bearer partner-token", r.Header.Get("Authorization"), "the registered headers are sent")
		e := decodeEnvelope(t, r)
		if s := statuses(i); s >= 200 && s < 300 {
			out = append(out, e)
		}
	}
	return out
}

// An endpoint that fails three times and then answers: each event is delivered once, in
// order, each request signed; the failures held the later events back.
func TestDestinationRetriesThenDelivers(t *testing.T) {
	const failures = 3
	status := func(i int) int {
		if i < failures {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	}
	w := startDestinations(t, func(rw http.ResponseWriter, _ *http.Request, n int, _ []byte) {
		rw.WriteHeader(status(n - 1))
	})
	w.create(t, &hookmapv1.Destination{Id: "to-partner", WebhookId: "partner",
		Filter: &hookmapv1.EventFilter{SubscriptionIds: []string{w.sub.GetId()}}})
	w.post(t, w.sub, 1, 2, 3)

	reqs := w.ep.WaitFor(t, failures+3)
	waitFor(t, "3 events delivered", func() bool { return w.get(t, "to-partner").GetDeliveredCount() == 3 })
	reqs = w.ep.Requests()
	require.Len(t, reqs, failures+3, "nothing is sent twice once acknowledged")
	got := delivered(t, reqs, status)
	require.Len(t, got, 3)
	var ns []int64
	for i, e := range got {
		require.Equal(t, "orders.item", e.Type)
		require.Equal(t, w.sub.GetId(), e.Data.SubscriptionID)
		ns = append(ns, int64(e.Data.Record["n"].(float64)))
		if i > 0 {
			require.Greater(t, e.Data.Seq, got[i-1].Data.Seq, "in seq order")
		}
	}
	require.Equal(t, []int64{1, 2, 3}, ns)
	// The failures were all the first event's: the others waited for it.
	for i := range failures + 1 {
		require.Equal(t, got[0].Data.ID, reqs[i].Header.Get("Webhook-Id"), "request %d", i)
	}

	d := w.get(t, "to-partner")
	require.Zero(t, d.GetPendingCount())
	require.Zero(t, d.GetFailedCount())
	require.NotNil(t, d.GetLastDeliveryTime())
	require.Empty(t, w.queued(t, "to-partner", hookmapv1.DestinationEventState_DESTINATION_EVENT_STATE_UNSPECIFIED))
}

// An endpoint that answers 410 Gone disables the destination; the event stays queued and
// is delivered once the destination is resumed.
func TestDestinationGoneDisables(t *testing.T) {
	var gone atomic.Bool
	gone.Store(true)
	w := startDestinations(t, func(rw http.ResponseWriter, _ *http.Request, _ int, _ []byte) {
		if gone.Load() {
			rw.WriteHeader(http.StatusGone)
			return
		}
		rw.WriteHeader(http.StatusOK)
	})
	w.create(t, &hookmapv1.Destination{Id: "gone", WebhookId: "partner"})
	w.post(t, w.sub, 1)

	waitFor(t, "the destination disabled", func() bool {
		return w.get(t, "gone").GetStatus() == hookmapv1.DestinationStatus_DESTINATION_STATUS_DISABLED
	})
	d := w.get(t, "gone")
	require.Contains(t, d.GetStatusReason(), "410 Gone")
	require.Len(t, w.ep.Requests(), 1, "a disabled destination sends nothing more")
	q := w.queued(t, "gone", hookmapv1.DestinationEventState_DESTINATION_EVENT_STATE_PENDING)
	require.Len(t, q, 1)
	require.Equal(t, int32(410), q[0].GetLastStatus())
	require.Equal(t, int32(1), q[0].GetAttempts())

	gone.Store(false)
	d, err := w.h.Destinations.ResumeDestination(w.h.Ctx(), &hookmapv1.ResumeDestinationRequest{Id: "gone"})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.DestinationStatus_DESTINATION_STATUS_ACTIVE, d.GetStatus())
	require.Empty(t, d.GetStatusReason())
	waitFor(t, "the event delivered", func() bool { return w.get(t, "gone").GetDeliveredCount() == 1 })
	reqs := w.ep.Requests()
	require.Len(t, reqs, 2)
	require.Equal(t, reqs[0].Header.Get("Webhook-Id"), reqs[1].Header.Get("Webhook-Id"), "the same event, the same webhook-id")
}

// A restart while an event is being retried: the attempts made are kept, and after the
// restart the destination goes on where it was; each event is delivered once, in order.
func TestDestinationRestartMidRetry(t *testing.T) {
	var ok atomic.Bool
	var mu sync.Mutex
	var statuses []int
	w := startDestinations(t, func(rw http.ResponseWriter, _ *http.Request, _ int, _ []byte) {
		s := http.StatusBadGateway
		if ok.Load() {
			s = http.StatusOK
		}
		mu.Lock()
		statuses = append(statuses, s)
		mu.Unlock()
		rw.WriteHeader(s)
	})
	w.create(t, &hookmapv1.Destination{Id: "restart", WebhookId: "partner"})
	w.post(t, w.sub, 1, 2)
	w.ep.WaitFor(t, 2)
	waitFor(t, "two failed attempts stored", func() bool {
		q := w.queued(t, "restart", hookmapv1.DestinationEventState_DESTINATION_EVENT_STATE_PENDING)
		return len(q) == 2 && q[0].GetAttempts() >= 2
	})

	w.h.Restart()
	q := w.queued(t, "restart", hookmapv1.DestinationEventState_DESTINATION_EVENT_STATE_PENDING)
	require.Len(t, q, 2, "both events are still queued after the restart")
	require.GreaterOrEqual(t, q[0].GetAttempts(), int32(2), "the attempts made before the restart are kept")
	require.Equal(t, int32(502), q[0].GetLastStatus())
	require.Zero(t, q[1].GetAttempts(), "the second event waits for the first")

	ok.Store(true)
	waitFor(t, "both events delivered", func() bool { return w.get(t, "restart").GetDeliveredCount() == 2 })
	reqs := w.ep.Requests()
	mu.Lock()
	got := delivered(t, reqs, func(i int) int { return statuses[i] })
	mu.Unlock()
	require.Len(t, got, 2, "each event acknowledged once")
	require.Less(t, got[0].Data.Seq, got[1].Data.Seq)
}

// offsetClock is the real clock moved forward by what the test adds.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) Advance(d time.Duration) { c.off.Add(int64(d)) }
func (c *offsetClock) option() apptest.Option  { return apptest.WithClock(c.Now) }

// A subscription whose events keep failing does not hold back another subscription's;
// its events are parked after the retry window, listed, and retried one by one or all.
func TestDestinationParksFailingSubscription(t *testing.T) {
	clock := &offsetClock{}
	var healed atomic.Bool
	var badSub atomic.Value
	badSub.Store("")
	w := startDestinations(t, func(rw http.ResponseWriter, _ *http.Request, _ int, body []byte) {
		var e envelope
		_ = json.Unmarshal(body, &e)
		if e.Data.SubscriptionID == badSub.Load().(string) && !healed.Load() {
			rw.WriteHeader(http.StatusInternalServerError)
			return
		}
		rw.WriteHeader(http.StatusOK)
	}, clock.option())
	bad := w.sub
	badSub.Store(bad.GetId())
	good, err := w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: bad.GetConnectionId(), EventKey: "echo", Parameters: apptest.Struct(t, map[string]any{"topic": "refunds"}),
	})
	require.NoError(t, err)
	w.create(t, &hookmapv1.Destination{Id: "mixed", WebhookId: "partner", RetryWindow: durationpb.New(time.Minute)})

	w.post(t, bad, 1, 2)
	w.post(t, good, 3, 4)
	waitFor(t, "the good subscription's events delivered", func() bool { return w.get(t, "mixed").GetDeliveredCount() == 2 })
	q := w.queued(t, "mixed", hookmapv1.DestinationEventState_DESTINATION_EVENT_STATE_PENDING)
	require.Len(t, q, 2)
	require.Equal(t, bad.GetId(), q[0].GetSubscriptionId())
	require.Positive(t, q[0].GetAttempts())
	require.Zero(t, q[1].GetAttempts(), "the bad subscription's second event waits for its first")
	require.Equal(t, "endpoint answered 500 Internal Server Error", q[0].GetLastError())

	// The retry window passes: the first event is parked, then the second (whose window
	// starts at its own first attempt).
	for parked := 1; parked <= 2; parked++ {
		waitFor(t, "an attempt of the bad subscription's head", func() bool {
			q := w.queued(t, "mixed", hookmapv1.DestinationEventState_DESTINATION_EVENT_STATE_PENDING)
			return len(q) > 0 && q[0].GetAttempts() > 0
		})
		clock.Advance(2 * time.Minute)
		waitFor(t, fmt.Sprintf("%d parked", parked), func() bool { return w.get(t, "mixed").GetFailedCount() == int64(parked) })
	}
	d := w.get(t, "mixed")
	require.Zero(t, d.GetPendingCount())
	failed := w.queued(t, "mixed", hookmapv1.DestinationEventState_DESTINATION_EVENT_STATE_FAILED)
	require.Len(t, failed, 2)
	require.Nil(t, failed[0].GetNextAttemptTime())

	healed.Store(true)
	_, err = w.h.Destinations.RetryDestinationEvent(w.h.Ctx(), &hookmapv1.RetryDestinationEventRequest{DestinationId: "mixed", Seq: failed[1].GetSeq()})
	require.NoError(t, err)
	waitFor(t, "the retried event delivered", func() bool { return w.get(t, "mixed").GetDeliveredCount() == 3 })
	require.Equal(t, int64(1), w.get(t, "mixed").GetFailedCount())
	_, err = w.h.Destinations.RetryDestinationEvent(w.h.Ctx(), &hookmapv1.RetryDestinationEventRequest{DestinationId: "mixed", Seq: failed[1].GetSeq()})
	apptest.RequireCode(t, err, codes.NotFound, "no failed event")

	r, err := w.h.Destinations.RetryDestinationEvents(w.h.Ctx(), &hookmapv1.RetryDestinationEventsRequest{DestinationId: "mixed"})
	require.NoError(t, err)
	require.Equal(t, int64(1), r.GetRetried())
	waitFor(t, "every event delivered", func() bool { return w.get(t, "mixed").GetDeliveredCount() == 4 })
	require.Zero(t, w.get(t, "mixed").GetFailedCount())
}

// Pausing stops sending and keeps the events; resuming sends them. Bad destinations are
// refused with the field, and a webhook in use cannot be deleted.
func TestDestinationPauseAndValidation(t *testing.T) {
	w := startDestinations(t, nil)
	ctx := w.h.Ctx()
	w.create(t, &hookmapv1.Destination{Id: "paused", WebhookId: "partner"})
	d, err := w.h.Destinations.PauseDestination(ctx, &hookmapv1.PauseDestinationRequest{Id: "paused"})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.DestinationStatus_DESTINATION_STATUS_PAUSED, d.GetStatus())
	w.post(t, w.sub, 1)
	_, err = w.h.Destinations.ResumeDestination(ctx, &hookmapv1.ResumeDestinationRequest{Id: "paused"})
	require.NoError(t, err)
	waitFor(t, "the event delivered after resume", func() bool { return w.get(t, "paused").GetDeliveredCount() == 1 })

	register(t, w.h, `{"id": "unsigned", "url": "https://example.com/"}`)
	register(t, w.h, `{"id": "get", "url": "https://example.com/", "method": "GET", "signing_secret": "`+destSecret+`"}`)
	for _, tc := range []struct {
		d     *hookmapv1.Destination
		field string
		desc  string
	}{
		{&hookmapv1.Destination{Id: "x", WebhookId: "unsigned"}, "destination.webhook_id", "no signing_secret"},
		{&hookmapv1.Destination{Id: "x", WebhookId: "get"}, "destination.webhook_id", "events are POSTed"},
		{&hookmapv1.Destination{Id: "x", WebhookId: "nope"}, "destination.webhook_id", `no webhook "nope"`},
		{&hookmapv1.Destination{Id: "x/y", WebhookId: "partner"}, "destination.id", "letters, digits"},
		{&hookmapv1.Destination{Id: "x", WebhookId: "partner", RetryWindow: durationpb.New(time.Second)}, "destination.retry_window", "between 1m0s and 720h0m0s"},
		{&hookmapv1.Destination{Id: "x", WebhookId: "partner", Start: &hookmapv1.StreamPosition{Position: &hookmapv1.StreamPosition_Seq{Seq: 0}}}, "destination.start.seq", "at least 1"},
	} {
		_, err := w.h.Destinations.CreateDestination(ctx, &hookmapv1.CreateDestinationRequest{Destination: tc.d})
		st := apptest.RequireCode(t, err, codes.InvalidArgument, tc.desc)
		require.Contains(t, apptest.FieldViolations(st), tc.field)
	}
	_, err = w.h.Destinations.CreateDestination(ctx, &hookmapv1.CreateDestinationRequest{Destination: &hookmapv1.Destination{Id: "paused", WebhookId: "partner"}})
	apptest.RequireCode(t, err, codes.AlreadyExists, "paused")
	_, err = w.h.Webhooks.DeleteWebhook(ctx, &hookmapv1.DeleteWebhookRequest{Id: "partner"})
	apptest.RequireCode(t, err, codes.FailedPrecondition, `used by destination "paused"`)

	_, err = w.h.Destinations.DeleteDestination(ctx, &hookmapv1.DeleteDestinationRequest{Id: "paused"})
	require.NoError(t, err)
	_, err = w.h.Webhooks.DeleteWebhook(ctx, &hookmapv1.DeleteWebhookRequest{Id: "partner"})
	require.NoError(t, err)
	_, err = w.h.Destinations.GetDestination(ctx, &hookmapv1.GetDestinationRequest{Id: "paused"})
	apptest.RequireCode(t, err, codes.NotFound, "paused")
}

// Two replicas on one Postgres: one of them sends for the destination (its lease), so
// events received by either replica reach the endpoint once each, in order, whichever
// replica the destination was created on.
func TestDestinationAcrossReplicas(t *testing.T) {
	ep := apptest.NewEndpoint(t, func(rw http.ResponseWriter, _ *http.Request, n int, _ []byte) {
		if n <= 2 {
			rw.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		rw.WriteHeader(http.StatusOK)
	})
	url := pgtest.Schema(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	var hs []*apptest.Harness
	for range 2 {
		hs = append(hs, apptest.Start(t, apptest.WithConnectors("testdata/connectors"), apptest.WithAllowPrivate(),
			apptest.WithStore(url), apptest.WithSecretKey(hex.EncodeToString(key)),
			apptest.WithDestinationBackoff(time.Millisecond, 5*time.Millisecond)))
	}
	a, b := hs[0], hs[1]
	_, sub := setup(t, a)
	register(t, a, `{"id": "partner", "url": "`+ep.URL+`/events", "headers": {"Authorization": "Bearer partner-token"}, "signing_secret": "`+destSecret+`"}`)
	_, err := b.Destinations.CreateDestination(b.Ctx(), &hookmapv1.CreateDestinationRequest{
		Destination: &hookmapv1.Destination{Id: "shared", WebhookId: "partner"}})
	require.NoError(t, err)

	path := strings.TrimPrefix(sub.GetWebhookUri(), a.BaseURL)
	for i, h := range []*apptest.Harness{a, b, a, b} {
		r := h.PostJSON(h.Hook(path), fmt.Sprintf(`{"items": [{"n": %d}]}`, i))
		require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	}
	waitFor(t, "4 events delivered", func() bool {
		d, err := a.Destinations.GetDestination(a.Ctx(), &hookmapv1.GetDestinationRequest{Id: "shared"})
		require.NoError(t, err)
		return d.GetDeliveredCount() == 4
	})
	reqs := ep.Requests()
	got := delivered(t, reqs, func(i int) int {
		if i < 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	require.Len(t, got, 4, "each event acknowledged once")
	for i := range got {
		require.Equal(t, int64(i), int64(got[i].Data.Record["n"].(float64)), "in order")
	}
}
