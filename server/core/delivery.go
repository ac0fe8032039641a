package core

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unsafe"

	"google.golang.org/grpc/codes"

	"github.com/hookmap/hookmap/engine"
	"github.com/hookmap/hookmap/engine/httpbody"
	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/engine/verify"
	"github.com/hookmap/hookmap/server/store"
)

// MaxEventsPerDelivery bounds what one request may produce.
const MaxEventsPerDelivery = 1000

// Incoming is one request received on a hook URL.
type Incoming struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	// Body is never modified once the request is handed to the core: the handle's
	// variables (rawBody, and the strings of data) share its memory.
	Body     []byte
	URL      string // the full public URL the app called (for schemes that sign it)
	Received time.Time
	Replay   bool // a replay of a kept request: verification is skipped
}

// Reply is what the receiver answers. Its Header and Body may be shared with other
// replies (the default reply's are): they are read, never changed.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// Result is the reply and the delivery record written for a request.
type Result struct {
	Reply    Reply
	Delivery *store.Delivery
}

// failure is a delivery that did not produce events.
type failure struct {
	status  int
	outcome string
	msg     string // the detail, for the delivery record and the log
	public  string // what the sender reads; "" for the generic message of the status
	keep    bool   // keep the raw request for replay
}

func (f *failure) Error() string { return f.msg }

// The messages a sender reads when its request failed or could not be verified. The
// sender is a stranger to the service: the detail (a mapping's file and position, what a
// signature check expected) is only in the delivery record and the log.
const (
	MsgKeptForReplay = "the webhook could not be processed; it is kept for replay"
	MsgNotProcessed  = "the webhook could not be processed"
	MsgNotVerified   = "the request could not be verified"
)

// senderMessage is what the sender of f's request reads.
func (f *failure) senderMessage() string {
	switch {
	case f.public != "":
		return f.public
	case f.status == http.StatusUnauthorized:
		return MsgNotVerified
	case f.keep:
		return MsgKeptForReplay
	}
	return MsgNotProcessed
}

// Metrics receives the receiver's counts; nil-safe.
type Metrics interface {
	Delivery(kind, outcome string)
	VerifyFailure(scheme, reason string)
	Evaluation(kind string, cost uint64, limit string)
}

// observeEval reports the CEL cost of a delivery's handles and the limit err reached.
func observeEval(m Metrics, kind string, stats *engine.RunStats, err error) {
	if m == nil {
		return
	}
	limit := ""
	var te *engine.TimeoutError
	switch {
	case errors.Is(err, engine.ErrCostLimit):
		limit = "cost"
	case errors.As(err, &te):
		limit = "time"
	}
	m.Evaluation(kind, stats.CELCost, limit)
}

func (c *Core) rawRequest(in *Incoming) *store.RawRequest {
	return &store.RawRequest{Method: in.Method, Path: in.Path, Query: in.RawQuery, Headers: in.Header, Body: in.Body}
}

// requestVars sets the variables of a handle taken from the request in vars, those reads
// has (data and body always: a body that cannot be parsed is refused whoever reads it).
// A body that cannot be parsed leaves data and body null and returns the failure, so
// that verification still runs first, on the raw bytes.
func requestVars(in *Incoming, vars map[string]any, reads engine.Reads) *failure {
	if reads.Has("method") {
		vars["method"] = in.Method
	}
	if reads.Has("query") {
		query := map[string]any{}
		if in.RawQuery != "" {
			q, _ := url.ParseQuery(in.RawQuery)
			query = httpbody.Query(q)
		}
		vars["query"] = query
	}
	if reads.Has("headers") {
		vars["headers"] = httpbody.LowerHeaders(in.Header)
	}
	// Not a copy: Incoming.Body is never modified once handed over (its contract), and a
	// copy of every body was the largest allocation of a delivery.
	raw := unsafe.String(unsafe.SliceData(in.Body), len(in.Body))
	if reads.Has("rawBody") {
		vars["rawBody"] = raw
	}
	if reads.Has("url") {
		vars["url"] = in.URL
	}
	data, err := httpbody.ParseString(in.Header.Get("Content-Type"), raw) // data's strings share raw
	if err != nil {
		vars["data"], vars["body"] = nil, nil
		msg := "cannot parse body: " + err.Error() // about the sender's own body: it may read it
		return &failure{status: http.StatusBadRequest, outcome: store.OutcomeRejected, msg: msg, public: msg, keep: true}
	}
	vars["data"], vars["body"] = data, data
	return nil
}

// allReads is what a handle whose variables are not known reads.
var allReads = engine.AllReads()

// VerifyOutcome is what a verify block said of a request.
type VerifyOutcome struct {
	OK bool
	// Skipped is true when the block's skipWhen let the request through unverified.
	Skipped bool
	// Reason classifies a failure for metrics: a verify.Reason (missing_header,
	// bad_format, stale_timestamp, mismatch, no_secret), "false" for a {$cel: BOOL} block
	// that is false, "error" for one that failed. Empty when OK.
	Reason string
	// Message says precisely what failed; it never contains a secret or a signature.
	Message string
}

// Verify runs a verify block on a request; vars are the handle's variables (for the
// secret and {$cel: BOOL} blocks). The receiver and EvaluateMethod both use it.
func (c *Core) Verify(ctx context.Context, v *engine.Verify, vars map[string]any, in *Incoming) VerifyOutcome {
	now := c.now()
	if v.Skips() {
		skip, err := v.SkipWhen(ctx, vars, now)
		if err != nil { // fail closed: a condition that cannot be decided verifies
			return VerifyOutcome{Reason: "error", Message: "verify skipWhen: " + err.Error()}
		}
		if skip {
			return VerifyOutcome{OK: true, Skipped: true}
		}
	}
	if v.Scheme == "cel" {
		ok, err := v.CheckCEL(ctx, vars, now)
		switch {
		case err != nil:
			return VerifyOutcome{Reason: "error", Message: err.Error()}
		case !ok:
			return VerifyOutcome{Reason: "false", Message: "the verify expression is false"}
		}
		return VerifyOutcome{OK: true}
	}
	secret, err := v.Secret(ctx, vars, now)
	if err != nil {
		return VerifyOutcome{Reason: string(verify.ReasonNoSecret), Message: "no secret: " + err.Error()}
	}
	if err := verify.Check(v.Config, secret, verify.Request{Method: in.Method, URL: in.URL, Header: in.Header, Body: in.Body}, now); err != nil {
		reason := string(verify.ReasonMismatch)
		var f *verify.Failure
		if errors.As(err, &f) {
			reason = string(f.Reason)
		}
		return VerifyOutcome{Reason: reason, Message: v.Scheme + ": " + err.Error()}
	}
	return VerifyOutcome{OK: true}
}

// checkVerify runs a verify block at the receiver (not on a replay: the request was
// verified when it arrived) and turns a failure into a 401.
func (c *Core) checkVerify(ctx context.Context, v *engine.Verify, vars map[string]any, in *Incoming, m Metrics) *failure {
	if v == nil || in.Replay {
		return nil
	}
	out := c.Verify(ctx, v, vars, in)
	if out.OK {
		return nil
	}
	if m != nil {
		reason := out.Reason
		if reason == "false" {
			reason = "mismatch"
		}
		m.VerifyFailure(v.Scheme, reason)
	}
	return &failure{status: http.StatusUnauthorized, outcome: store.OutcomeRejected, msg: "verification failed: " + out.Message}
}

// handleResult is a validated handle (or fetch) result.
type handleResult struct {
	events   []mappedEvent
	response map[string]any
	state    map[string]any
	hasState bool
	// fetch is what handle's `fetch` key asked for (events with a fetch method).
	fetch fetchRequest
	// more is a fetch's `more`: run the fetch again at once.
	more bool
}

// fetchRequest is what a handle asks of its event's fetch method.
type fetchRequest struct {
	mode fetchMode
	data any // fetchWith: delivery.data of the fetch
	// explicit is true when handle wrote `fetch` (true or a value): an error on an event
	// without a fetch method.
	explicit bool
}

type fetchMode int

const (
	fetchDefault fetchMode = iota // no `fetch` key: fetch with the request's data
	fetchNone                     // fetch: false (or null): no fetch (a handshake, a ping)
	fetchWith                     // fetch: VALUE: fetch with VALUE as delivery.data
)

type mappedEvent struct {
	typ      string
	record   any
	id       string
	selector string // global webhook handle
}

func parseHandleResult(out any, global bool, file string) (*handleResult, error) {
	if out == nil {
		return &handleResult{}, nil
	}
	m, ok := out.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: handle returned %T, want an object {events, response?, state?}", file, out)
	}
	res := &handleResult{}
	if r, ok := m["response"]; ok && r != nil {
		rm, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: response must be an object {status, headers, data}, got %T", file, r)
		}
		res.response = rm
	}
	if !global {
		if err := parseState(res, m, file); err != nil {
			return nil, err
		}
	}
	if f, ok := m["fetch"]; ok && !global {
		switch f {
		case nil, false:
			res.fetch.mode = fetchNone
		case true:
			res.fetch.explicit = true
		default:
			res.fetch = fetchRequest{mode: fetchWith, data: f, explicit: true}
		}
	}
	if err := parseEvents(res, m, global, file); err != nil {
		return nil, err
	}
	return res, nil
}

// parseFetchResult validates a fetch method's result: {events, state?, more?}.
func parseFetchResult(out any, file string) (*handleResult, error) {
	if out == nil {
		return &handleResult{}, nil
	}
	m, ok := out.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: fetch returned %T, want an object {events, state?, more?}", file, out)
	}
	res := &handleResult{}
	for k := range m {
		if k != "events" && k != "state" && k != "more" {
			return nil, fmt.Errorf("%s: fetch returned an unknown key %q (a fetch returns events, state and more)", file, k)
		}
	}
	if err := parseState(res, m, file); err != nil {
		return nil, err
	}
	switch more := m["more"].(type) {
	case nil:
	case bool:
		res.more = more
	default:
		return nil, fmt.Errorf("%s: more must be a boolean, got %T", file, more)
	}
	if err := parseEvents(res, m, false, file); err != nil {
		return nil, err
	}
	return res, nil
}

// parseState reads m's state (absent or null: no change) into res, within the value
// limits so that it can be stored.
func parseState(res *handleResult, m map[string]any, file string) error {
	st := m["state"]
	if st == nil {
		return nil
	}
	sm, ok := st.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: state must be an object, got %T", file, st)
	}
	if err := value.Check(sm); err != nil {
		return fmt.Errorf("%s: state cannot be stored: %w", file, err)
	}
	res.state, res.hasState = sm, true
	return nil
}

// parseEvents reads m's events into res: {type, record, id?} each, or {selector,
// payload, id?} for a global webhook's handle.
func parseEvents(res *handleResult, m map[string]any, global bool, file string) error {
	evs, ok := m["events"]
	if !ok || evs == nil {
		return nil
	}
	list, ok := evs.([]any)
	if !ok {
		return fmt.Errorf("%s: events must be a list, got %T", file, evs)
	}
	if len(list) > MaxEventsPerDelivery {
		return fmt.Errorf("%s: %d events, more than the limit of %d", file, len(list), MaxEventsPerDelivery)
	}
	for i, e := range list {
		em, ok := e.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: events[%d] must be an object, got %T", file, i, e)
		}
		var me mappedEvent
		if id, ok := em["id"]; ok && id != nil {
			me.id = fmt.Sprint(id)
		}
		if global {
			sel, ok := em["selector"]
			if !ok || sel == nil {
				return fmt.Errorf("%s: events[%d].selector is required", file, i)
			}
			me.selector = fmt.Sprint(sel)
			me.record = em["payload"]
			if err := value.Check(me.record); err != nil {
				return fmt.Errorf("%s: events[%d].payload cannot be stored: %w", file, i, err)
			}
		} else {
			t, _ := em["type"].(string)
			if t == "" {
				return fmt.Errorf("%s: events[%d].type must be a non-empty string", file, i)
			}
			me.typ = t
			me.record = em["record"]
			if err := value.Check(me.record); err != nil {
				return fmt.Errorf("%s: events[%d].record cannot be stored: %w", file, i, err)
			}
		}
		res.events = append(res.events, me)
	}
	return nil
}

// buildReply turns a mapping's response (or nil) into the HTTP reply.
func buildReply(resp map[string]any, received int) (Reply, error) {
	if resp == nil {
		return defaultReply(received), nil
	}
	r := Reply{Status: http.StatusOK, Header: http.Header{}}
	if s, ok := resp["status"]; ok && s != nil {
		n, ok := toInt64(s)
		if !ok || n < 100 || n > 599 {
			return r, fmt.Errorf("response.status %v is not an HTTP status", s)
		}
		r.Status = int(n)
	}
	if h, ok := resp["headers"].(map[string]any); ok {
		for k, v := range h {
			r.Header.Set(k, fmt.Sprint(v))
		}
	}
	switch d := resp["data"].(type) {
	case nil:
	case string:
		r.Body = []byte(d)
		if r.Header.Get("Content-Type") == "" {
			r.Header.Set("Content-Type", "text/plain; charset=utf-8")
		}
	default:
		b, err := value.Encode(d)
		if err != nil {
			return r, fmt.Errorf("response.data: %w", err)
		}
		r.Body = b
		if r.Header.Get("Content-Type") == "" {
			r.Header.Set("Content-Type", "application/json")
		}
	}
	return r, nil
}

// defaultReply is the reply to a request whose handle gave no response:
// {"received": N}, N the events it stored.
func defaultReply(received int) Reply {
	if received >= 0 && received < len(defaultBodies) {
		return Reply{Status: http.StatusOK, Header: jsonHeader, Body: defaultBodies[received]}
	}
	body, _ := value.Encode(map[string]any{"received": int64(received)})
	return Reply{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}, Body: body}
}

// jsonHeader and defaultBodies are shared by the default replies of up to 64 events:
// nothing changes a reply's header or body.
var (
	jsonHeader    = http.Header{"Content-Type": {"application/json"}}
	defaultBodies = func() [][]byte {
		out := make([][]byte, 65)
		for i := range out {
			out[i], _ = value.Encode(map[string]any{"received": int64(i)})
		}
		return out
	}()
)

// ErrorReply is the JSON error body the receiver answers with:
// {"error": {"code": 404, "message": "..."}}.
func ErrorReply(status int, msg string) Reply {
	return errorReply(status, msg, "")
}

// errorReply is ErrorReply with the id of the delivery recorded for the request, which
// the sender can quote to the service's operators: {"error": {...}, "delivery_id": "dlv_…"}.
func errorReply(status int, msg, deliveryID string) Reply {
	m := map[string]any{"error": map[string]any{"code": int64(status), "message": msg}}
	if deliveryID != "" {
		m["delivery_id"] = deliveryID
	}
	body, _ := value.Encode(m)
	return Reply{Status: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: body}
}

// Reject records a request refused before it could run (a body over the limit, a
// subscription whose subscribe failed) as REJECTED and returns its reply. subID or gwID
// says where it arrived; size is the announced body size. msg is recorded; public is what
// the sender reads.
func (c *Core) Reject(ctx context.Context, ws, subID, gwID string, size int64, status int, msg, public string, m Metrics) Reply {
	d := c.newDelivery(ws, &Incoming{Received: c.now().UTC()}, nil)
	d.SubscriptionID, d.GlobalWebhookID, d.RequestSize = subID, gwID, size
	res := c.finishFailure(ctx, d, nil, &failure{status: status, outcome: store.OutcomeRejected, msg: msg, public: public})
	if m != nil {
		kind := "subscription"
		if gwID != "" {
			kind = "global"
		}
		m.Delivery(kind, store.OutcomeRejected)
	}
	return res.Reply
}

// newDelivery starts the record of a request; a replay (prior set) keeps the prior
// record's id and receive time and counts one more replay.
func (c *Core) newDelivery(ws string, in *Incoming, prior *store.Delivery) *store.Delivery {
	d := &store.Delivery{
		ID:          "dlv_" + newTimeID(),
		WorkspaceID: ws,
		ReceiveTime: in.Received,
		RequestSize: int64(len(in.Body)),
	}
	if prior != nil {
		d.ID, d.ReceiveTime, d.ReplayCount = prior.ID, prior.ReceiveTime, prior.ReplayCount+1
	}
	return d
}

// finishFailure records a failed or rejected delivery and builds its reply.
func (c *Core) finishFailure(ctx context.Context, d *store.Delivery, in *Incoming, f *failure) *Result {
	d.StatusCode = f.status
	d.Outcome = f.outcome
	d.Error = f.msg
	if f.keep {
		d.Request = c.rawRequest(in)
	}
	if _, err := c.Store.CommitDelivery(context.WithoutCancel(ctx), &store.DeliveryCommit{Delivery: d}); err != nil {
		c.Logger.Error("record failed delivery", "delivery", d.ID, "err", err)
	}
	return &Result{Reply: errorReply(f.status, f.senderMessage(), d.ID), Delivery: d}
}

// HandleSubscriptionDelivery runs a request received on a subscription's URL: verify,
// parse, handle, then commit its events (and new state) durably before the reply.
func (c *Core) HandleSubscriptionDelivery(ctx context.Context, sub *store.Subscription, in *Incoming, prior *store.Delivery, m Metrics) *Result {
	d := c.newDelivery(sub.WorkspaceID, in, prior)
	d.SubscriptionID = sub.ID
	res := c.handleSubscription(ctx, sub, in, d, m)
	if m != nil {
		m.Delivery("subscription", res.Delivery.Outcome)
	}
	return res
}

func (c *Core) handleSubscription(ctx context.Context, sub *store.Subscription, in *Incoming, d *store.Delivery, m Metrics) *Result {
	_, ev, err := c.Event(sub.ConnectorKey, sub.EventKey)
	if err != nil {
		return c.finishFailure(ctx, d, in, &failure{status: 500, outcome: store.OutcomeFailed, msg: err.Error(), keep: true})
	}
	handle := ev.Methods[engine.MethodHandle]
	if handle == nil {
		return c.finishFailure(ctx, d, in, &failure{status: 500, outcome: store.OutcomeFailed, msg: fmt.Sprintf("event %q has no handle method", ev.Key), keep: true})
	}
	// the variables the verify block and the handle may read, and no other
	reads := ev.HandleReads()
	vars, _, err := c.subscriptionVars(ctx, sub, reads)
	if err != nil {
		return c.finishFailure(ctx, d, in, &failure{status: 500, outcome: store.OutcomeFailed, msg: err.Error(), keep: true})
	}
	f := requestVars(in, vars, reads)
	if f != nil && ev.Verify == nil {
		return c.finishFailure(ctx, d, in, f)
	}
	// verify and handle share one evaluation deadline; a handle that runs alone (no verify
	// block, or a replay) is bounded by its run's own, the same limit. The commit has its
	// own context.
	ectx := ctx
	if ev.Verify != nil && !in.Replay {
		var cancel context.CancelFunc
		ectx, cancel = engine.WithTimeout(ctx, c.EvalTimeout)
		defer cancel()
	}
	if vf := c.checkVerify(ectx, ev.Verify, vars, in, m); vf != nil {
		return c.finishFailure(ctx, d, in, vf)
	}
	if f != nil {
		return c.finishFailure(ctx, d, in, f)
	}
	opts := c.RunOptions()
	opts.Stats = &engine.RunStats{}
	out, err := handle.Run(ectx, vars, opts)
	observeEval(m, "subscription", opts.Stats, err)
	if err != nil {
		return c.finishFailure(ctx, d, in, &failure{status: 500, outcome: store.OutcomeFailed, msg: "handle failed: " + err.Error(), keep: true})
	}
	hr, err := parseHandleResult(out, false, handle.File)
	if err != nil {
		return c.finishFailure(ctx, d, in, &failure{status: 500, outcome: store.OutcomeFailed, msg: err.Error(), keep: true})
	}
	events, err := buildEvents(sub, ev, hr.events, "", d, in)
	if err != nil {
		return c.finishFailure(ctx, d, in, &failure{status: 500, outcome: store.OutcomeFailed, msg: err.Error(), keep: true})
	}
	fetch, err := c.fetchFor(sub, ev, hr.fetch, vars["data"], d, in)
	if err != nil {
		return c.finishFailure(ctx, d, in, &failure{status: 500, outcome: store.OutcomeFailed, msg: handle.File + ": " + err.Error(), keep: true})
	}
	reply, err := buildReply(hr.response, len(events))
	if err != nil {
		return c.finishFailure(ctx, d, in, &failure{status: 500, outcome: store.OutcomeFailed, msg: handle.File + ": " + err.Error(), keep: true})
	}
	commit := &store.DeliveryCommit{Delivery: d, Events: events}
	if hr.hasState { // merged into the stored state inside the commit (mergeState)
		commit.StateUpdates = []store.StateUpdate{{SubscriptionID: sub.ID, Change: c.stateMerge(sub.ID, hr.state)}}
	}
	var fetches []*store.Fetch
	if fetch != nil {
		fetches = append(fetches, fetch)
	}
	return c.commit(ctx, in, d, commit, fetches, reply, hr.response == nil)
}

// commit writes a delivery with its events (and the fetches it asks for) and answers only
// once it is durable.
func (c *Core) commit(ctx context.Context, in *Incoming, d *store.Delivery, commit *store.DeliveryCommit, fetches []*store.Fetch, reply Reply, defaultReply bool) *Result {
	d.StatusCode = reply.Status
	d.Outcome = store.OutcomeOK
	d.EventCount = len(commit.Events)
	d.Request = nil
	var res *store.CommitResult
	var err error
	if len(fetches) == 0 {
		res, err = c.Store.CommitDelivery(ctx, commit)
	} else {
		res, err = c.Store.CommitDeliveryWithFetches(ctx, commit, fetches)
	}
	if err != nil {
		c.Logger.Error("commit delivery", "delivery", d.ID, "err", err)
		return c.finishFailure(ctx, d, in, &failure{status: 500, outcome: store.OutcomeFailed, msg: "could not store the events; the request is kept for replay", keep: true})
	}
	if len(fetches) > 0 {
		c.wakeFetcher()
	}
	// The store recorded in d what was new: its event count, DUPLICATE when nothing was.
	if defaultReply && res.Duplicates > 0 {
		reply, _ = buildReply(nil, res.Inserted)
	}
	if res.MaxSeq > 0 {
		c.Hub.Notify(d.WorkspaceID, res.MaxSeq)
	}
	return &Result{Reply: reply, Delivery: d}
}

// HandleGlobalDelivery runs a request received on a global webhook URL: verify, run the
// global handle, route each {selector, payload} to the matching subscriptions, run their
// handles, and commit every resulting event in one transaction before the reply.
func (c *Core) HandleGlobalDelivery(ctx context.Context, gw *store.GlobalWebhook, in *Incoming, prior *store.Delivery, m Metrics) *Result {
	d := c.newDelivery(gw.WorkspaceID, in, prior)
	d.GlobalWebhookID = gw.ID
	res := c.handleGlobal(ctx, gw, in, d, m)
	if m != nil {
		m.Delivery("global", res.Delivery.Outcome)
	}
	return res
}

func (c *Core) handleGlobal(ctx context.Context, gw *store.GlobalWebhook, in *Incoming, d *store.Delivery, m Metrics) *Result {
	conn, err := c.Connector(gw.ConnectorKey)
	if err != nil {
		return c.finishFailure(ctx, d, in, &failure{status: 500, outcome: store.OutcomeFailed, msg: err.Error(), keep: true})
	}
	def := conn.GlobalWebhooks[gw.Key]
	if def == nil || def.Handle == nil {
		return c.finishFailure(ctx, d, in, &failure{status: 500, outcome: store.OutcomeFailed, msg: fmt.Sprintf("connector %q has no global webhook %q", gw.ConnectorKey, gw.Key), keep: true})
	}
	cp, err := c.ConnectorParameters(ctx, gw.WorkspaceID, gw.ConnectorKey)
	if err != nil {
		return c.finishFailure(ctx, d, in, &failure{status: 500, outcome: store.OutcomeFailed, msg: err.Error(), keep: true})
	}
	vars := make(map[string]any, globalVarCount)
	f := requestVars(in, vars, allReads)
	vars["parameters"] = cp
	// verify, the global handle and the handles it routes to share one evaluation
	// deadline; the commit has its own context
	ectx, cancel := engine.WithTimeout(ctx, c.EvalTimeout)
	defer cancel()
	if vf := c.checkVerify(ectx, def.Verify, vars, in, m); vf != nil {
		return c.finishFailure(ctx, d, in, vf)
	}
	if f != nil {
		return c.finishFailure(ctx, d, in, f)
	}
	opts := c.RunOptions()
	opts.Stats = &engine.RunStats{}
	var evalErr error // the first handle error, for the metrics
	defer func() { observeEval(m, "global", opts.Stats, evalErr) }()
	out, err := def.Handle.Run(ectx, vars, opts)
	if err != nil {
		evalErr = err
		return c.finishFailure(ctx, d, in, &failure{status: 500, outcome: store.OutcomeFailed, msg: "global handle failed: " + err.Error(), keep: true})
	}
	hr, err := parseHandleResult(out, true, def.Handle.File)
	if err != nil {
		return c.finishFailure(ctx, d, in, &failure{status: 500, outcome: store.OutcomeFailed, msg: err.Error(), keep: true})
	}
	var events []*store.Event
	var fetches []*store.Fetch
	var unmatched []string
	matched := map[string][]*store.Subscription{} // a batch often repeats a selector
	subVars := map[string]map[string]any{}
	for _, ge := range hr.events {
		subs, seen := matched[ge.selector]
		if !seen {
			d.Selectors = append(d.Selectors, ge.selector)
			var err error
			subs, err = c.Store.MatchSubscriptions(ectx, gw.WorkspaceID, gw.ConnectorKey, gw.Key, ge.selector)
			if err != nil {
				return c.finishFailure(ctx, d, in, &failure{status: 500, outcome: store.OutcomeFailed, msg: "route: " + err.Error(), keep: true})
			}
			matched[ge.selector] = subs
		}
		if len(subs) == 0 {
			if !seen {
				unmatched = append(unmatched, ge.selector)
			}
			continue
		}
		for _, sub := range subs {
			evs, fetch, err := c.routeToSubscription(ectx, sub, ge, subVars, vars, in, d, opts)
			if err != nil {
				evalErr = err
				return c.finishFailure(ctx, d, in, &failure{status: 500, outcome: store.OutcomeFailed, msg: fmt.Sprintf("subscription %s: %s", sub.ID, err), keep: true})
			}
			events = append(events, evs...)
			if fetch != nil {
				fetches = append(fetches, fetch)
			}
			if len(events) > MaxEventsPerDelivery {
				return c.finishFailure(ctx, d, in, &failure{status: 500, outcome: store.OutcomeFailed, msg: fmt.Sprintf("delivery produced more than %d events", MaxEventsPerDelivery), keep: true})
			}
		}
	}
	reply, err := buildReply(hr.response, len(events))
	if err != nil {
		return c.finishFailure(ctx, d, in, &failure{status: 500, outcome: store.OutcomeFailed, msg: def.Handle.File + ": " + err.Error(), keep: true})
	}
	if len(events) == 0 && len(fetches) == 0 && len(unmatched) > 0 {
		d.StatusCode = reply.Status
		d.Outcome = store.OutcomeUnmatched
		d.Error = "no subscription matches selectors " + strings.Join(unmatched, ", ")
		if _, err := c.Store.CommitDelivery(ctx, &store.DeliveryCommit{Delivery: d}); err != nil {
			return c.finishFailure(ctx, d, in, &failure{status: 500, outcome: store.OutcomeFailed, msg: "could not record the delivery", keep: true})
		}
		return &Result{Reply: reply, Delivery: d}
	}
	return c.commit(ctx, in, d, &store.DeliveryCommit{Delivery: d, Events: events}, fetches, reply, hr.response == nil)
}

// buildEvents makes the events of sub from a handle's mapped events (defaultID for those
// without an id), each record checked against the event's schema.
func buildEvents(sub *store.Subscription, ev *engine.Event, mapped []mappedEvent, defaultID string, d *store.Delivery, in *Incoming) ([]*store.Event, error) {
	events := make([]*store.Event, 0, len(mapped))
	for i, me := range mapped {
		if ev.Schema != nil {
			if v := ev.Schema.Validate(fmt.Sprintf("events[%d].record", i), me.record); len(v) > 0 {
				return nil, errors.New(violationSummary("record does not match the event's schema", v))
			}
		}
		events = append(events, &store.Event{
			ID: newTimeID(), WorkspaceID: sub.WorkspaceID, ConnectionID: sub.ConnectionID,
			SubscriptionID: sub.ID, EventKey: sub.EventKey, Type: me.typ, Record: me.record,
			ExternalID: cmp.Or(me.id, defaultID), DeliveryID: d.ID, ReceiveTime: in.Received,
		})
	}
	return events, nil
}

// routeToSubscription maps one routed payload with the subscription event's own handle
// (or takes the payload as the record, the event key as the type), and makes the fetch
// it asks for when the event has a fetch method. subVars holds each subscription's
// variables for the delivery, made once however many payloads it gets.
func (c *Core) routeToSubscription(ctx context.Context, sub *store.Subscription, ge mappedEvent, subVars map[string]map[string]any, reqVars map[string]any, in *Incoming, d *store.Delivery, opts engine.RunOptions) ([]*store.Event, *store.Fetch, error) {
	_, ev, err := c.Event(sub.ConnectorKey, sub.EventKey)
	if err != nil {
		return nil, nil, err
	}
	handle := ev.Methods[engine.MethodHandle]
	if handle == nil {
		if ev.Methods[engine.MethodFetch] != nil { // the payload only announces the events
			f, err := c.fetchFor(sub, ev, fetchRequest{}, ge.record, d, in)
			return nil, f, err
		}
		evs, err := buildEvents(sub, ev, []mappedEvent{{typ: sub.EventKey, record: ge.record, id: ge.id}}, "", d, in)
		return evs, nil, err
	}
	vars, ok := subVars[sub.ID]
	if !ok {
		if vars, _, err = c.subscriptionVars(ctx, sub, allReads); err != nil {
			return nil, nil, err
		}
		for _, k := range []string{"method", "query", "headers", "rawBody"} {
			vars[k] = reqVars[k]
		}
		subVars[sub.ID] = vars
	}
	vars["data"], vars["body"] = ge.record, ge.record // handles run one at a time
	out, err := handle.Run(ctx, vars, opts)
	if err != nil {
		return nil, nil, err
	}
	hr, err := parseHandleResult(out, false, handle.File)
	if err != nil {
		return nil, nil, err
	}
	evs, err := buildEvents(sub, ev, hr.events, ge.id, d, in)
	if err != nil {
		return nil, nil, err
	}
	f, err := c.fetchFor(sub, ev, hr.fetch, ge.record, d, in)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", handle.File, err)
	}
	return evs, f, nil
}

// publicRequestURL is the full URL an app called: the public URL, the path and the query.
func (c *Core) publicRequestURL(path, rawQuery string) string {
	u := strings.TrimRight(c.PublicURL, "/") + path
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	return u
}

// ReplayDelivery runs a kept request again through the current connector; the delivery
// records the new outcome and its events are emitted.
func (c *Core) ReplayDelivery(ctx context.Context, workspaceID, id string, m Metrics) (*store.Delivery, error) {
	d, err := c.Store.GetDelivery(ctx, workspaceID, id)
	if err != nil {
		return nil, err
	}
	if d.Request == nil && d.FetchStatus == store.FetchFailed {
		return c.retryFailedFetches(ctx, d)
	}
	if d.Request == nil {
		return nil, Errorf(codes.FailedPrecondition, "delivery %s has no kept request (only failed deliveries keep theirs)", id).WithReason(ReasonNothingToReplay)
	}
	in := &Incoming{
		Method: d.Request.Method, Path: d.Request.Path, RawQuery: d.Request.Query,
		Header: http.Header(d.Request.Headers), Body: d.Request.Body, Received: d.ReceiveTime, Replay: true,
		URL: c.publicRequestURL(d.Request.Path, d.Request.Query),
	}
	if in.Header == nil {
		in.Header = http.Header{}
	}
	switch {
	case d.SubscriptionID != "":
		sub, err := c.Store.GetSubscription(ctx, workspaceID, d.SubscriptionID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, Errorf(codes.FailedPrecondition, "subscription %s of delivery %s is gone", d.SubscriptionID, id).WithReason(ReasonReplayTargetGone)
		}
		if err != nil {
			return nil, err
		}
		return c.HandleSubscriptionDelivery(ctx, sub, in, d, m).Delivery, nil
	case d.GlobalWebhookID != "":
		gw, err := c.Store.LookupGlobalWebhook(ctx, d.GlobalWebhookID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, Errorf(codes.FailedPrecondition, "global webhook %s of delivery %s is gone", d.GlobalWebhookID, id).WithReason(ReasonReplayTargetGone)
		}
		if err != nil {
			return nil, err
		}
		return c.HandleGlobalDelivery(ctx, gw, in, d, m).Delivery, nil
	}
	return nil, Errorf(codes.FailedPrecondition, "delivery %s has neither a subscription nor a global webhook", id).WithReason(ReasonReplayTargetGone)
}
