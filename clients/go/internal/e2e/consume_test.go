package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/hookmap/hookmap/clients/go/hookmap"
	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/app"
	"github.com/hookmap/hookmap/server/apptest"
)

// fast makes reconnects and retries quick in tests.
var fast = hookmap.Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Multiplier: 2, Jitter: 0.2}

// env is a real hookmap (in-process, loopback) and a client of it whose calls are logged.
type env struct {
	t *testing.T
	h *apptest.Harness
	c *hookmap.Client

	mu  sync.Mutex
	log []entry // what happened, in order: streams opened, acks committed, events handled

	listCalls atomic.Int32
}

type entry struct {
	kind string // "open", "ack", "handled"
	seq  int64
	who  string
}

func start(t *testing.T, opts ...apptest.Option) *env {
	t.Helper()
	h := apptest.Start(t, append([]apptest.Option{apptest.WithConnectors("../../../../connectors/example-webhook")}, opts...)...)
	return &env{t: t, h: h}
}

// dial connects a client to the harness's server; it is closed when the test ends.
func (e *env) dial(opts ...hookmap.Option) *hookmap.Client {
	e.t.Helper()
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		switch {
		case method == hookmapv1.EventService_AckEvents_FullMethodName && err == nil:
			e.record("ack", req.(*hookmapv1.AckEventsRequest).GetSeq(), "")
		case method == hookmapv1.ConnectionService_ListConnections_FullMethodName:
			e.listCalls.Add(1)
		}
		return err
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if method == hookmapv1.EventService_StreamEvents_FullMethodName {
			e.record("open", 0, "")
		}
		return streamer(ctx, desc, cc, method, opts...)
	}
	c, err := hookmap.Dial(e.t.Context(), e.h.Config.GRPCAddr, append([]hookmap.Option{
		hookmap.WithInsecure(),
		hookmap.WithReconnectBackoff(fast),
		hookmap.WithRetry(hookmap.RetryPolicy{MaxAttempts: 5, Backoff: fast}),
		hookmap.WithLogger(slog.New(slog.NewTextHandler(e.t.Output(), nil))),
		hookmap.WithDialOptions(grpc.WithChainUnaryInterceptor(unary), grpc.WithChainStreamInterceptor(stream)),
	}, opts...)...)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = c.Close() })
	if e.c == nil {
		e.c = c
	}
	return c
}

func (e *env) record(kind string, seq int64, who string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, entry{kind, seq, who})
}

func (e *env) entries() []entry {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]entry(nil), e.log...)
}

// handled returns the distinct seqs handled (by who, or by anyone when who is "").
func (e *env) handled(who string) map[int64]bool {
	out := map[int64]bool{}
	for _, en := range e.entries() {
		if en.kind == "handled" && (who == "" || en.who == who) {
			out[en.seq] = true
		}
	}
	return out
}

func (e *env) waitHandled(who string, n int) {
	e.t.Helper()
	require.Eventually(e.t, func() bool { return len(e.handled(who)) >= n }, 20*time.Second, 2*time.Millisecond,
		"%s handled fewer than %d events", who, n)
}

// subscribe creates an example-webhook connection and subscription through the client
// and returns the subscription.
func (e *env) subscribe(channel string) *hookmapv1.Subscription {
	e.t.Helper()
	ctx := e.t.Context()
	conn, err := e.c.Connections.CreateConnection(ctx, &hookmapv1.CreateConnectionRequest{ConnectorKey: "example-webhook", Name: channel})
	require.NoError(e.t, err)
	params, err := structpb.NewStruct(map[string]any{"channel": channel})
	require.NoError(e.t, err)
	sub, err := e.c.Subscriptions.CreateSubscription(ctx, &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: "message", Parameters: params, RequestId: "sub-" + channel,
	})
	require.NoError(e.t, err)
	return sub
}

// post sends n messages numbered from first to sub's hook.
func (e *env) post(sub *hookmapv1.Subscription, first, n int) {
	e.t.Helper()
	msgs := make([]string, n)
	for i := range msgs {
		msgs[i] = fmt.Sprintf(`{"id":"m%d","i":%d}`, first+i, first+i)
	}
	r := e.h.PostJSON(sub.GetWebhookUri(), `{"messages":[`+strings.Join(msgs, ",")+`]}`)
	require.Equal(e.t, http.StatusOK, r.Status, string(r.Body))
	require.JSONEq(e.t, fmt.Sprintf(`{"received":%d}`, n), string(r.Body))
}

// allSeqs lists every stored event's seq through the client's iterator.
func (e *env) allSeqs() []int64 {
	e.t.Helper()
	var seqs []int64
	for ev, err := range e.c.Events.AllEvents(e.t.Context(), &hookmapv1.ListEventsRequest{PageSize: 7}) {
		require.NoError(e.t, err)
		seqs = append(seqs, ev.GetSeq())
	}
	return seqs
}

// running is a Consume running in the background.
type running struct {
	t        *testing.T
	cancel   context.CancelFunc
	finished chan struct{}
	err      error
}

// consume runs Consume in the background until stop (or the test's end).
func (e *env) consume(c *hookmap.Client, name string, h hookmap.Handler, opts ...hookmap.ConsumeOption) *running {
	ctx, cancel := context.WithCancel(e.t.Context())
	r := &running{t: e.t, cancel: cancel, finished: make(chan struct{})}
	go func() {
		defer close(r.finished)
		r.err = c.Consume(ctx, name, h, opts...)
	}()
	e.t.Cleanup(func() { _ = r.stop() })
	return r
}

// wait waits for Consume to return by itself and returns its error.
func (r *running) wait() error {
	r.t.Helper()
	select {
	case <-r.finished:
		return r.err
	case <-time.After(20 * time.Second):
		r.t.Fatal("Consume did not return within 20 s")
		return nil
	}
}

// stop ends Consume's context and returns its error.
func (r *running) stop() error {
	r.t.Helper()
	r.cancel()
	return r.wait()
}

// recorder is a handler that logs each event as handled by who.
func (e *env) recorder(who string) hookmap.Handler {
	return func(ctx context.Context, ev *hookmap.Event) error {
		e.record("handled", ev.Seq, who)
		return nil
	}
}

// requireAtLeastOnceInOrder checks a log of one consumer against every stored seq: each
// event is handled, in seq order, none skipped; an event is handled again only as the
// first of a newly opened stream or after it, and only if it is after the ack committed
// before that stream opened.
func requireAtLeastOnceInOrder(t *testing.T, all []int64, log []entry) {
	t.Helper()
	index := map[int64]int{}
	for i, s := range all {
		index[s] = i
	}
	next := 0 // index in all of the event expected next
	var committed, committedAtOpen int64
	again := 0
	for _, en := range log {
		switch en.kind {
		case "open":
			committedAtOpen = committed
		case "ack":
			require.GreaterOrEqual(t, en.seq, committed, "acks never go back")
			committed = en.seq
		case "handled":
			i, ok := index[en.seq]
			require.True(t, ok, "seq %d is not a stored event", en.seq)
			require.LessOrEqual(t, i, next, "seq %d handled before seq %d: events were skipped", en.seq, all[min(next, len(all)-1)])
			if i < next {
				again++
				require.Greater(t, en.seq, committedAtOpen, "seq %d handled again although its ack was committed", en.seq)
			}
			next = i + 1
		}
	}
	require.Equal(t, len(all), next, "every event handled")
	t.Logf("%d events, %d handled again, last committed ack %d", len(all), again, committed)
}

// TestConsumeAcrossRestarts: a consumer keeps consuming while hookmap is stopped and
// restarted on the same ports and data directory, twice, with events arriving before,
// between and after; every event is handled at least once and in order, and only
// events after the last committed ack are handled again.
func TestConsumeAcrossRestarts(t *testing.T) {
	e := start(t)
	c := e.dial()
	sub := e.subscribe("general")
	slow := func(ctx context.Context, ev *hookmap.Event) error {
		time.Sleep(time.Millisecond) // so that restarts land while events are being handled
		e.record("handled", ev.Seq, "")
		return nil
	}
	run := e.consume(c, "billing", slow, hookmap.WithAckBatch(4, 10*time.Millisecond))

	e.post(sub, 0, 30)
	e.waitHandled("", 5)
	e.h.Restart()
	e.post(sub, 30, 30)
	e.waitHandled("", 35)
	e.h.Restart()
	e.post(sub, 60, 30)
	e.waitHandled("", 90)
	require.ErrorIs(t, run.stop(), context.Canceled)

	all := e.allSeqs()
	require.Len(t, all, 90)
	log := e.entries()
	requireAtLeastOnceInOrder(t, all, log)
	opens := 0
	for _, en := range log {
		if en.kind == "open" {
			opens++
		}
	}
	require.GreaterOrEqual(t, opens, 3, "the consumer reconnected after each restart")
	require.Equal(t, all[len(all)-1], log[len(log)-1].seq, "Consume acked the last handled event before returning")
	require.Equal(t, "ack", log[len(log)-1].kind, "Consume acked the last handled event before returning")
}

// TestConsumeReplaced: a newer Consume of the same name makes the older return
// ErrReplaced (with the ABORTED status); with WithRetryReplaced the older takes the
// consumer back instead, and the newer is the one replaced.
func TestConsumeReplaced(t *testing.T) {
	e := start(t)
	c := e.dial()
	sub := e.subscribe("general")
	e.post(sub, 0, 1)

	runA := e.consume(c, "billing", e.recorder("A"))
	e.waitHandled("A", 1)
	runB := e.consume(c, "billing", e.recorder("B"))
	errA := runA.wait()
	require.ErrorIs(t, errA, hookmap.ErrReplaced)
	require.Equal(t, codes.Aborted, status.Code(errA))
	e.post(sub, 1, 1)
	e.waitHandled("B", 1)
	require.ErrorIs(t, runB.stop(), context.Canceled)

	runC := e.consume(c, "standby", e.recorder("C"), hookmap.WithRetryReplaced())
	e.waitHandled("C", 2)
	runD := e.consume(c, "standby", e.recorder("D"))
	errD := runD.wait()
	require.ErrorIs(t, errD, hookmap.ErrReplaced, "C reconnected and took the consumer back")
	e.post(sub, 2, 1)
	e.waitHandled("C", 3)
	require.ErrorIs(t, runC.stop(), context.Canceled)
}

// TestConsumeRetriesHandlerErrors: a failing handler is called again with the same
// event, and the events after it wait; WithDeadLetter takes failed events instead, and
// an error from it ends Consume.
func TestConsumeRetriesHandlerErrors(t *testing.T) {
	e := start(t)
	c := e.dial()
	sub := e.subscribe("general")
	e.post(sub, 0, 3)
	all := e.allSeqs()

	var attempts []int64
	var mu sync.Mutex
	failures := 2
	run := e.consume(c, "retry", func(ctx context.Context, ev *hookmap.Event) error {
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, ev.Seq)
		if ev.Seq == all[0] && failures > 0 {
			failures--
			return fmt.Errorf("downstream unavailable")
		}
		e.record("handled", ev.Seq, "retry")
		return nil
	}, hookmap.WithHandlerBackoff(fast))
	e.waitHandled("retry", 3)
	require.ErrorIs(t, run.stop(), context.Canceled)
	require.Equal(t, []int64{all[0], all[0], all[0], all[1], all[2]}, attempts)

	// WithDeadLetter: the second event fails for good and goes to the dead-letter function.
	type dead struct {
		seq int64
		err string
	}
	var dl []dead
	failing := func(ctx context.Context, ev *hookmap.Event) error {
		if ev.Seq == all[1] {
			return fmt.Errorf("poison")
		}
		e.record("handled", ev.Seq, "dlq")
		return nil
	}
	run = e.consume(c, "dlq", failing, hookmap.WithDeadLetter(func(ctx context.Context, ev *hookmap.Event, err error) error {
		mu.Lock()
		defer mu.Unlock()
		dl = append(dl, dead{ev.Seq, err.Error()})
		return nil
	}))
	e.waitHandled("dlq", 2)
	require.ErrorIs(t, run.stop(), context.Canceled)
	require.Equal(t, []dead{{all[1], "poison"}}, dl)
	// The dead-lettered event counts as handled: the next Consume of dlq gets only new events.
	e.post(sub, 3, 1)
	run = e.consume(c, "dlq", e.recorder("dlq-after"))
	e.waitHandled("dlq-after", 1)
	require.ErrorIs(t, run.stop(), context.Canceled)
	require.Equal(t, map[int64]bool{e.allSeqs()[3]: true}, e.handled("dlq-after"))

	// A dead-letter function that fails ends Consume with its error, acking nothing past it.
	errStore := fmt.Errorf("dead-letter store down")
	failed := e.consume(c, "dlq-fails", failing, hookmap.WithDeadLetter(func(context.Context, *hookmap.Event, error) error { return errStore }))
	err := failed.wait()
	require.ErrorIs(t, err, errStore)
	require.ErrorContains(t, err, fmt.Sprintf("event %d", all[1]))
}

// TestConsumeConcurrency: WithConcurrency handles subscriptions in parallel, each in
// order, and acks only the contiguous watermark: events handled behind an unfinished
// one are handled again by the next Consume.
func TestConsumeConcurrency(t *testing.T) {
	e := start(t)
	c := e.dial()
	subA, subB := e.subscribe("a"), e.subscribe("b")
	e.post(subA, 0, 1)
	e.post(subB, 1, 3)
	e.post(subA, 4, 1)
	all := e.allSeqs()
	require.Len(t, all, 5)

	blocked := make(chan struct{})
	var once sync.Once
	run := e.consume(c, "par", func(ctx context.Context, ev *hookmap.Event) error {
		if ev.SubscriptionID == subA.GetId() {
			// A reconnect (a loaded machine can drop the stream) ends this handler's
			// context and hands A's first event to the next session: at-least-once.
			once.Do(func() { close(blocked) })
			<-ctx.Done() // A's first event never finishes
			return ctx.Err()
		}
		e.record("handled", ev.Seq, "par")
		return nil
	}, hookmap.WithConcurrency(2), hookmap.WithAckBatch(1, time.Millisecond))
	<-blocked
	e.waitHandled("par", 3) // B's events, while A's first is still running
	require.ErrorIs(t, run.stop(), context.Canceled)
	require.Equal(t, map[int64]bool{all[1]: true, all[2]: true, all[3]: true}, e.handled("par"))
	for _, en := range e.entries() {
		require.NotEqual(t, "ack", en.kind, "nothing is acked past the unfinished first event")
	}

	// The next Consume starts at A's first event and handles everything in order.
	run = e.consume(c, "par", e.recorder("again"), hookmap.WithConcurrency(2))
	e.waitHandled("again", 5)
	require.ErrorIs(t, run.stop(), context.Canceled)
	var bySub = map[string][]int64{}
	for _, en := range e.entries() {
		if en.kind == "handled" && en.who == "again" {
			bySub[subOf(en.seq, all, subA, subB)] = append(bySub[subOf(en.seq, all, subA, subB)], en.seq)
		}
	}
	require.Equal(t, []int64{all[0], all[4]}, bySub["a"], "A's events in order")
	require.Equal(t, []int64{all[1], all[2], all[3]}, bySub["b"], "B's events in order")
}

func subOf(seq int64, all []int64, subA, subB *hookmapv1.Subscription) string {
	if seq == all[0] || seq == all[4] {
		return "a"
	}
	return "b"
}

// TestConsumeDecodesExactly: a record's integer 2^60+1 reaches the handler exact, in a
// typed field and in a map.
func TestConsumeDecodesExactly(t *testing.T) {
	e := start(t)
	c := e.dial()
	sub := e.subscribe("general")
	r := e.h.PostJSON(sub.GetWebhookUri(), `{"id":"o1","order_id":1152921504606846977,"total":"12.50"}`)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))

	got := make(chan *hookmap.Event, 1)
	run := e.consume(c, "orders", func(ctx context.Context, ev *hookmap.Event) error {
		got <- ev
		return nil
	})
	ev := <-got
	require.ErrorIs(t, run.stop(), context.Canceled)
	var order struct {
		OrderID int64 `json:"order_id"`
	}
	require.NoError(t, ev.Decode(&order))
	require.Equal(t, int64(1<<60+1), order.OrderID)
	var m map[string]any
	require.NoError(t, ev.Decode(&m))
	require.Equal(t, json.Number("1152921504606846977"), m["order_id"])
	require.Equal(t, "message.created", ev.Type)
	require.Equal(t, "o1", ev.ExternalID)
	require.Equal(t, sub.GetId(), ev.SubscriptionID)
	require.False(t, ev.ReceiveTime.IsZero())
}

// TestConsumeStartPositions: WithStartSeq starts at the given event, WithStartLatest
// after the last stored one, and filters narrow the stream.
func TestConsumeStartPositions(t *testing.T) {
	e := start(t)
	c := e.dial()
	subA, subB := e.subscribe("a"), e.subscribe("b")
	e.post(subA, 0, 3)
	e.post(subB, 3, 1)
	all := e.allSeqs()

	run := e.consume(c, "from-seq", e.recorder("seq"), hookmap.WithStartSeq(all[1]))
	e.waitHandled("seq", 3)
	require.ErrorIs(t, run.stop(), context.Canceled)
	require.Equal(t, map[int64]bool{all[1]: true, all[2]: true, all[3]: true}, e.handled("seq"))

	run = e.consume(c, "only-b", e.recorder("b"), hookmap.WithFilter(hookmap.Filter{SubscriptionIDs: []string{subB.GetId()}}))
	e.waitHandled("b", 1)
	require.ErrorIs(t, run.stop(), context.Canceled)
	require.Equal(t, map[int64]bool{all[3]: true}, e.handled("b"))

	// Latest: only what is stored after the stream opened.
	opened := func() int {
		n := 0
		for _, en := range e.entries() {
			if en.kind == "open" {
				n++
			}
		}
		return n
	}
	before := opened()
	run = e.consume(c, "latest", e.recorder("latest"), hookmap.WithStartLatest())
	require.Eventually(t, func() bool { return opened() > before }, 10*time.Second, time.Millisecond)
	// The stream is open on the client; post until the server's stream delivers (an
	// event stored before the server registered the stream is not sent, by design).
	require.Eventually(t, func() bool {
		e.post(subA, 100+len(e.allSeqs()), 1)
		return len(e.handled("latest")) > 0
	}, 10*time.Second, 20*time.Millisecond)
	require.ErrorIs(t, run.stop(), context.Canceled)
	for seq := range e.handled("latest") {
		require.Greater(t, seq, all[3], "no event stored before the stream started")
	}
}

// TestErrorsKeepTheStatus: errors from calls, iterators and Consume are gRPC statuses with
// their field violations.
func TestErrorsKeepTheStatus(t *testing.T) {
	e := start(t)
	c := e.dial()
	ctx := t.Context()

	_, err := c.Connections.CreateConnection(ctx, &hookmapv1.CreateConnectionRequest{Name: "no connector"})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	requireViolation(t, err, "connector_key")

	for _, err := range c.Connections.AllConnections(ctx, &hookmapv1.ListConnectionsRequest{PageSize: -1}) {
		require.Equal(t, codes.InvalidArgument, status.Code(err))
		requireViolation(t, err, "page_size")
	}

	err = c.Consume(ctx, "", e.recorder("x"))
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	requireViolation(t, err, "consumer")
	require.ErrorContains(t, err, "consume")

	err = c.Consume(ctx, "x", e.recorder("x"), hookmap.WithConcurrency(0), hookmap.WithAckBatch(0, 0))
	require.ErrorContains(t, err, "WithConcurrency(0)")
	require.ErrorContains(t, err, "WithAckBatch(0, 0s)")
}

func requireViolation(t *testing.T, err error, field string) {
	t.Helper()
	var fields []string
	for _, v := range hookmap.FieldViolations(err) {
		fields = append(fields, v.GetField())
	}
	require.Contains(t, fields, field, "field violations of %v", err)
}

// TestTokenAndWorkspace: with auth on, a client without a token gets UNAUTHENTICATED
// (Consume returns it at once instead of retrying); the admin token acts on the workspace
// WithWorkspace names; a workspace API key sees its own workspace.
func TestTokenAndWorkspace(t *testing.T) {
	const admin = "admin-token-0123456789"
	e := start(t, func(c *app.Config) { c.AdminToken = admin })
	ctx := t.Context()

	anon := e.dial()
	_, err := anon.Connections.ListConnections(ctx, &hookmapv1.ListConnectionsRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	err = anon.Consume(ctx, "billing", e.recorder("anon"))
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)

	root := e.dial(hookmap.WithToken(admin))
	_, err = root.Admin.CreateWorkspace(ctx, &hookmapv1.CreateWorkspaceRequest{Id: "acme", Name: "Acme"})
	require.NoError(t, err)
	var ids []string
	for ws, err := range root.Admin.AllWorkspaces(ctx, nil) {
		require.NoError(t, err)
		ids = append(ids, ws.GetId())
	}
	require.Equal(t, []string{"default", "acme"}, ids)

	acme := e.dial(hookmap.WithToken(admin), hookmap.WithWorkspace("acme"))
	conn, err := acme.Connections.CreateConnection(ctx, &hookmapv1.CreateConnectionRequest{ConnectorKey: "example-webhook", Name: "acme-conn"})
	require.NoError(t, err)
	key, err := root.Admin.CreateApiKey(ctx, &hookmapv1.CreateApiKeyRequest{WorkspaceId: "acme", Name: "svc"})
	require.NoError(t, err)
	svc := e.dial(hookmap.WithToken(key.GetSecret()))

	names := func(c *hookmap.Client) []string {
		var out []string
		for cn, err := range c.Connections.AllConnections(ctx, nil) {
			require.NoError(t, err)
			out = append(out, cn.GetName())
		}
		return out
	}
	require.Empty(t, names(root), "the admin token acts on default without WithWorkspace")
	require.Equal(t, []string{conn.GetName()}, names(acme))
	require.Equal(t, []string{conn.GetName()}, names(svc))

	// A destination the key creates is its workspace's alone.
	_, err = svc.Webhooks.RegisterWebhook(ctx, &hookmapv1.RegisterWebhookRequest{Webhook: &hookmapv1.Webhook{
		Id: "partner", Url: "http://127.0.0.1:1/events", SigningSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	}})
	require.NoError(t, err)
	_, err = svc.Destinations.CreateDestination(ctx, &hookmapv1.CreateDestinationRequest{Destination: &hookmapv1.Destination{
		Id: "to-partner", WebhookId: "partner",
	}})
	require.NoError(t, err)
	dests := func(c *hookmap.Client) []string {
		var out []string
		for d, err := range c.Destinations.AllDestinations(ctx, nil) {
			require.NoError(t, err)
			out = append(out, d.GetId())
		}
		return out
	}
	require.Equal(t, []string{"to-partner"}, dests(svc))
	require.Equal(t, []string{"to-partner"}, dests(acme))
	require.Empty(t, dests(root))
	_, err = anon.Destinations.ListDestinations(ctx, &hookmapv1.ListDestinationsRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
}

// TestIterators: AllX pages through ListX as the loop asks, and stops when it breaks.
func TestIterators(t *testing.T) {
	e := start(t)
	c := e.dial()
	ctx := t.Context()
	var want []string
	for i := range 5 {
		cn, err := c.Connections.CreateConnection(ctx, &hookmapv1.CreateConnectionRequest{ConnectorKey: "example-webhook", Name: fmt.Sprintf("c%d", i)})
		require.NoError(t, err)
		want = append(want, cn.GetId())
	}
	req := &hookmapv1.ListConnectionsRequest{PageSize: 2}
	var got []string
	for cn, err := range c.Connections.AllConnections(ctx, req) {
		require.NoError(t, err)
		got = append(got, cn.GetId())
	}
	require.Equal(t, want, got)
	require.Equal(t, int32(3), e.listCalls.Load(), "three pages of two")
	require.Empty(t, req.GetPageToken(), "the caller's request is not changed")

	e.listCalls.Store(0)
	for range c.Connections.AllConnections(ctx, req) {
		break
	}
	require.Equal(t, int32(1), e.listCalls.Load(), "breaking stops the paging")

	var keys []string
	for cn, err := range c.Connectors.AllConnectors(ctx, nil) {
		require.NoError(t, err)
		keys = append(keys, cn.GetKey())
	}
	require.Equal(t, []string{"example-webhook"}, keys)
}

// TestConsumeEndsWhenTheClientCloses: Close makes a running Consume return instead of
// reconnecting forever.
func TestConsumeEndsWhenTheClientCloses(t *testing.T) {
	e := start(t)
	c := e.dial()
	sub := e.subscribe("general")
	e.post(sub, 0, 1)
	run := e.consume(c, "closing", e.recorder("closing"))
	e.waitHandled("closing", 1)
	require.NoError(t, c.Close())
	err := run.wait()
	require.ErrorContains(t, err, "the client was closed")
	require.Equal(t, codes.Canceled, status.Code(err))
}
