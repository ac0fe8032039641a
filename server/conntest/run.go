package conntest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hookmap/hookmap/engine"
	"github.com/hookmap/hookmap/engine/httpbody"
	"github.com/hookmap/hookmap/engine/mapping"
	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/engine/verify"
	"github.com/hookmap/hookmap/server/core"
	"github.com/hookmap/hookmap/server/hub"
	"github.com/hookmap/hookmap/server/receiver"
	"github.com/hookmap/hookmap/server/registry"
	"github.com/hookmap/hookmap/server/secrets"
	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/sqlite"
)

// PublicURL is the public URL of the server the tests run against: webhook URIs are
// PublicURL + "/hooks/…", and signatures that cover the URL (hubspot) are made over it.
const PublicURL = "https://hookmap.test"

// Options configure Run.
type Options struct {
	// Run, when set, runs only the tests whose name it matches.
	Run *regexp.Regexp
	// Verbose prints every test, not only the failed ones.
	Verbose bool
	// Out receives the report (default os.Stdout).
	Out io.Writer
}

// Summary counts what Run did.
type Summary struct {
	Files, Tests, Failed int
	// Problems are connector load problems and test file problems.
	Problems int
}

// OK reports whether everything passed.
func (s Summary) OK() bool { return s.Failed == 0 && s.Problems == 0 }

// Run loads the connectors in dirs (as hookmap validate does: a connector folder or a
// folder of connectors), runs the test files in each connector's tests folder and
// writes the report to opts.Out. It returns an error only when the run itself cannot
// start (no temporary store).
func Run(ctx context.Context, dirs []string, opts Options) (Summary, error) {
	out := opts.Out
	if out == nil {
		out = os.Stdout
	}
	var sum Summary
	reg, diags := registry.New(dirs...)
	for _, d := range diags {
		fmt.Fprintln(out, d.String())
	}
	sum.Problems += len(diags)
	env, err := newEnv(ctx, reg)
	if err != nil {
		return sum, err
	}
	defer env.close()
	for _, c := range reg.Connectors() {
		files, _ := filepath.Glob(filepath.Join(c.Dir, "tests", "*.test.yml"))
		slices.Sort(files)
		if len(files) == 0 {
			fmt.Fprintf(out, "?    %s (no test files in %s)\n", c.Key, filepath.Join(c.Dir, "tests"))
			continue
		}
		for _, path := range files {
			sum.Files++
			env.runFile(ctx, c, path, opts, out, &sum)
		}
	}
	if sum.OK() {
		fmt.Fprintf(out, "ok: %d tests in %d files\n", sum.Tests, sum.Files)
	} else {
		fmt.Fprintf(out, "FAIL: %d of %d tests failed", sum.Failed, sum.Tests)
		if sum.Problems > 0 {
			fmt.Fprintf(out, "; %d problems in connectors or test files", sum.Problems)
		}
		fmt.Fprintln(out)
	}
	return sum, nil
}

// env is the server the tests run against: the real core and receiver over a SQLite store
// in a temporary folder, with the fake app as the outbound client.
type env struct {
	dir     string
	store   *sqlite.Store
	core    *core.Core
	handler http.Handler
	app     *fakeApp
	clock   *clock
	n       int // tests run, for workspace ids
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func newEnv(ctx context.Context, reg *registry.Registry) (*env, error) {
	dir, err := os.MkdirTemp("", "hookmap-test-")
	if err != nil {
		return nil, fmt.Errorf("temporary folder: %w", err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "hookmap.db"), sqlite.Options{})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("open the test store: %w", err)
	}
	key := make([]byte, secrets.KeySize)
	_, _ = rand.Read(key) // crypto/rand never fails on supported platforms
	box, err := secrets.NewBox(key)
	if err != nil {
		_ = st.Close()
		_ = os.RemoveAll(dir)
		return nil, err
	}
	e := &env{dir: dir, store: st, app: &fakeApp{}, clock: &clock{t: DefaultNow}}
	log := slog.New(slog.DiscardHandler)
	e.core = &core.Core{
		Store: st, Box: box, Registry: reg, Hub: hub.New(), HTTP: e.app,
		PublicURL: PublicURL, Logger: log, Now: e.clock.now, ExactBackoff: true,
	}
	e.handler = (&receiver.Receiver{Core: e.core, Logger: log}).Handler()
	return e, nil
}

func (e *env) close() {
	_ = e.store.Close()
	_ = os.RemoveAll(e.dir)
}

func (e *env) runFile(ctx context.Context, c *engine.Connector, path string, opts Options, out io.Writer, sum *Summary) {
	f, fails := ParseFile(path)
	if len(fails) > 0 {
		fmt.Fprintf(out, "FAIL %s: the test file has problems\n", path)
		for _, fl := range fails {
			fmt.Fprintln(out, "    "+fl.String())
		}
		sum.Problems += len(fails)
		return
	}
	ran, failed := 0, 0
	for _, t := range f.Tests {
		if opts.Run != nil && !opts.Run.MatchString(t.Name) {
			continue
		}
		ran++
		start := time.Now()
		fails := e.runTest(ctx, c, f, t)
		if len(fails) > 0 {
			failed++
			fmt.Fprintf(out, "--- FAIL: %s (%s)\n", t.Name, path)
			for _, fl := range fails {
				fmt.Fprintln(out, "    "+fl.String())
			}
		} else if opts.Verbose {
			fmt.Fprintf(out, "--- ok: %s (%s)\n", t.Name, time.Since(start).Round(time.Millisecond))
		}
	}
	sum.Tests += ran
	sum.Failed += failed
	switch {
	case ran == 0:
		fmt.Fprintf(out, "?    %s (no test matches)\n", path)
	case failed == 0:
		fmt.Fprintf(out, "ok   %s (%d tests)\n", path, ran)
	default:
		fmt.Fprintf(out, "FAIL %s (%d of %d tests failed)\n", path, failed, ran)
	}
}

// testRun is one test being run.
type testRun struct {
	e        *env
	ctx      context.Context
	t        *Test
	conn     *engine.Connector
	ev       *engine.Event
	ws       string
	connRec  *store.Connection
	subID    string
	stepNode *yaml.Node
}

func (e *env) runTest(ctx context.Context, c *engine.Connector, f *File, t *Test) (fails []Failure) {
	e.n++
	tr := &testRun{e: e, ctx: ctx, t: t, conn: c, ws: fmt.Sprintf("test-%d", e.n)}
	top := &checker{file: f.Path, scope: tr.scope}
	defer func() {
		if p := recover(); p != nil { // a bug of the runner or the server: this test fails, the others run
			e.app.end()
			top.fail(t.node, "internal error while running the test: %v", p)
			fails = top.fails
		}
	}()
	e.clock.set(t.now)
	if err := e.store.CreateWorkspace(ctx, &store.Workspace{ID: tr.ws, Name: t.Name}); err != nil {
		top.fail(t.node, "cannot start the test: %s", err)
		return top.fails
	}
	if err := tr.setup(top); err != nil {
		return top.fails
	}
	for _, s := range t.steps {
		tr.stepNode = s.node
		c := &checker{file: f.Path, scope: tr.scope}
		stop := tr.step(s, c)
		top.fails = append(top.fails, c.fails...)
		if stop {
			break
		}
	}
	return top.fails
}

var errSetup = errors.New("setup failed")

// setup creates the connection and, unless the test subscribes, its subscription.
func (tr *testRun) setup(c *checker) error {
	t, cr := tr.t, tr.e.core
	switch {
	case t.event != "":
		ev, ok := tr.conn.Events[t.event]
		if !ok {
			c.fail(t.node, "connector %q has no event %q (it has: %s)", tr.conn.Key, t.event, strings.Join(value.SortedKeys(tr.conn.Events), ", "))
			return errSetup
		}
		tr.ev = ev
	case t.globalWebhook != "":
		if _, ok := tr.conn.GlobalWebhooks[t.globalWebhook]; !ok {
			c.fail(t.node, "connector %q has no global webhook %q", tr.conn.Key, t.globalWebhook)
			return errSetup
		}
	case len(tr.conn.Events) == 1:
		for _, ev := range tr.conn.Events {
			tr.ev = ev
		}
	default:
		c.fail(t.node, "say which event the test is about: event: one of %s (or globalWebhook: KEY)", strings.Join(value.SortedKeys(tr.conn.Events), ", "))
		return errSetup
	}
	if t.connectorParams != nil {
		if err := cr.SetConnectorParameters(tr.ctx, tr.ws, tr.conn.Key, t.connectorParams); err != nil {
			c.fail(t.node, "connectorParameters: %s", err)
			return errSetup
		}
	}
	params, _ := t.connection["parameters"].(map[string]any)
	creds, _ := t.connection["credentials"].(map[string]any)
	conn, err := cr.CreateConnection(tr.ctx, tr.ws, core.ConnectionInput{ConnectorKey: tr.conn.Key, Name: t.Name, Parameters: params, Credentials: creds})
	if err != nil {
		c.fail(t.node, "connection: %s", err)
		return errSetup
	}
	tr.connRec = conn
	switch {
	case tr.ev == nil, t.given == nil && t.steps[0].kind == stepSubscribe:
		return nil
	case t.given == nil && tr.ev.Type == engine.TypeGlobalWebhook:
		return nil // the global webhook's deliveries, with no subscriber
	}
	return tr.givenSubscription(c)
}

// givenSubscription writes the subscription a test starts from: ACTIVE, with the given
// state (and, for a global-webhook event, selector), as subscribe would have left it.
func (tr *testRun) givenSubscription(c *checker) error {
	g := tr.t.given
	if g == nil {
		g = &given{node: tr.t.node}
	}
	now := tr.e.clock.now()
	sub := &store.Subscription{
		WorkspaceID: tr.ws, ID: secrets.RandomToken(16), ConnectionID: tr.connRec.ID, ConnectorKey: tr.conn.Key,
		EventKey: tr.ev.Key, Parameters: orEmpty(tr.t.params), Status: store.StatusActive,
		CreateTime: now, UpdateTime: now,
	}
	if v := validate(tr.ev.ParametersSchema, sub.Parameters); v != "" {
		c.fail(tr.t.node, "parameters do not match the event's parametersSchema: %s", v)
		return errSetup
	}
	if tr.ev.Type == engine.TypeGlobalWebhook {
		if g.selector == "" {
			c.fail(g.node, "a test of global-webhook event %q that does not subscribe needs subscription: {selector: …} (what getEventsSelector would return)", tr.ev.Key)
			return errSetup
		}
		key := tr.t.globalWebhook
		if key == "" && len(tr.conn.GlobalWebhooks) == 1 {
			key = value.SortedKeys(tr.conn.GlobalWebhooks)[0]
		}
		if tr.conn.GlobalWebhooks[key] == nil {
			c.fail(g.node, "say which global webhook routes to the subscription: globalWebhook: one of %s", strings.Join(value.SortedKeys(tr.conn.GlobalWebhooks), ", "))
			return errSetup
		}
		sub.GlobalWebhookKey, sub.Selector = key, g.selector
	}
	secret := secrets.RandomToken(24)
	state := map[string]any{}
	if g.state != nil {
		// The state's formulas see the subscription being made: {$cel: webhookUri}.
		vars := tr.vars()
		vars["subscriptionId"], vars["webhookUri"], vars["webhookSecret"] = sub.ID, tr.e.core.WebhookURI(sub.ID), secret
		vars["parameters"] = sub.Parameters
		s := mapping.NewScope(tr.ctx, vars)
		s.SetNow(tr.t.now)
		v, err := g.state.Eval(s)
		if err != nil {
			c.fail(g.node, "subscription.state: %s", err)
			return errSetup
		}
		m, ok := v.(map[string]any)
		if !ok {
			c.fail(g.node, "subscription.state must be a map, got %s", value.KindName(v))
			return errSetup
		}
		state = m
	}
	sealed, err := tr.e.core.SealWebhookSecret(sub.ID, secret)
	if err == nil {
		sub.WebhookSecret = sealed
		sub.State, err = tr.e.core.SealState(sub.ID, state)
	}
	if err == nil {
		err = tr.e.store.CreateSubscription(tr.ctx, sub)
	}
	if err != nil {
		c.fail(g.node, "cannot create the subscription: %s", err)
		return errSetup
	}
	tr.subID = sub.ID
	return nil
}

func validate(s *engine.Schema, v map[string]any) string {
	if s == nil {
		return ""
	}
	var parts []string
	for _, f := range s.Validate("parameters", v) {
		parts = append(parts, f.Field+": "+f.Description)
	}
	return strings.Join(parts, "; ")
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// subscription returns the test's subscription as stored now: the one subscribe returned
// or the test started from, else (while subscribe runs) the newest of the connection.
func (tr *testRun) subscription() *store.Subscription {
	if tr.subID != "" {
		s, err := tr.e.store.GetSubscription(tr.ctx, tr.ws, tr.subID)
		if err != nil {
			return nil
		}
		return s
	}
	if tr.connRec == nil {
		return nil
	}
	subs, _, err := tr.e.store.ListSubscriptions(tr.ctx, tr.ws, tr.connRec.ID, store.Page{Size: 1000})
	if err != nil || len(subs) == 0 {
		return nil
	}
	return subs[len(subs)-1]
}

// state opens a subscription's state; one that cannot be opened reads as null (and fails
// any expectation of it).
func (tr *testRun) state(sub *store.Subscription) any {
	m, err := tr.e.core.SubscriptionState(sub)
	if err != nil {
		return nil
	}
	return m
}

// vars are the variables formulas of the test file see.
func (tr *testRun) vars() map[string]any {
	v := map[string]any{
		"webhookUri": "", "webhookSecret": "", "subscriptionId": "", "globalWebhookUri": "",
		"parameters": orEmpty(tr.t.params), "connectorParameters": orEmpty(tr.t.connectorParams),
		"connection": map[string]any{"id": "", "parameters": map[string]any{}}, "state": map[string]any{},
	}
	if tr.connRec != nil {
		v["connection"] = map[string]any{"id": tr.connRec.ID, "parameters": orEmpty(tr.connRec.Parameters)}
	}
	if sub := tr.subscription(); sub != nil {
		v["subscriptionId"], v["webhookUri"], v["state"] = sub.ID, tr.e.core.WebhookURI(sub.ID), tr.state(sub)
		v["parameters"] = orEmpty(sub.Parameters)
		if s, err := tr.e.core.WebhookSecret(sub); err == nil {
			v["webhookSecret"] = s
		}
	}
	if u := tr.globalURL(); u != "" {
		v["globalWebhookUri"] = u
	}
	return v
}

// globalURL is the URL of the global webhook the test's deliveries go to, if any.
func (tr *testRun) globalURL() string {
	key := tr.t.globalWebhook
	if key == "" && tr.ev != nil && tr.ev.Type == engine.TypeGlobalWebhook && len(tr.conn.GlobalWebhooks) == 1 {
		key = value.SortedKeys(tr.conn.GlobalWebhooks)[0]
	}
	if sub := tr.subscription(); sub != nil && sub.GlobalWebhookKey != "" {
		key = sub.GlobalWebhookKey
	}
	if key == "" {
		return ""
	}
	g, err := tr.e.core.EnsureGlobalWebhook(tr.ctx, tr.ws, tr.conn.Key, key)
	if err != nil {
		return ""
	}
	return tr.e.core.GlobalWebhookURL(g.ID)
}

func (tr *testRun) scope() *mapping.Scope {
	s := mapping.NewScope(tr.ctx, tr.vars())
	s.SetNow(tr.t.now)
	return s
}

// step runs one step; true stops the test (nothing after it could be meaningful).
func (tr *testRun) step(s *step, c *checker) bool {
	tr.e.app.begin(tr, s.app, c)
	var res map[string]any
	var stop bool
	switch s.kind {
	case stepSubscribe:
		res, stop = tr.subscribe(s, c)
	case stepDeliver:
		res = tr.deliver(s.request, c)
	case stepFetch:
		res = tr.fetch(c)
	case stepRefresh:
		res = tr.refresh(c)
	case stepUnsubscribe:
		res = tr.unsubscribe(s, c)
	case stepReconcile:
		res = tr.reconcile(s)
	}
	if off := tr.e.app.end(); off || res == nil {
		return true
	}
	check(c, s.node, s.kind, s.expect, res)
	return stop
}

// check compares a step's results with its expectations, and applies the defaults of
// what is not expected: a step succeeds (no error, a 2xx answer, an ACTIVE subscription).
func check(c *checker, at *yaml.Node, kind string, expect map[string]*exp, res map[string]any) {
	for _, k := range stepExpectKeys[kind] {
		if e := expect[k]; e != nil {
			v, present := res[k]
			e.m.match(c, k, v, present)
		}
	}
	// A delivery's error (and a fetch's) is its record's: see status and fetch below.
	if _, ok := expect["error"]; !ok && kind != stepDeliver && kind != stepFetch {
		if msg, failed := res["error"]; failed {
			c.fail(at, "expected %s to succeed, got error: %s", kind, msg)
			return
		}
	}
	switch kind {
	case stepSubscribe:
		if expect["status"] == nil && expect["error"] == nil && res["status"] != store.StatusActive {
			c.fail(at, "expected the subscription ACTIVE, got %s", show(res["status"], res["status"] != nil))
		}
	case stepDeliver:
		st, _ := res["status"].(int64)
		if expect["status"] == nil && expect["outcome"] == nil && expect["error"] == nil && (st < 200 || st > 299) {
			// the sender's answer is generic; the delivery's record says why
			why := show(res["body"], true)
			if e, ok := res["error"].(string); ok {
				why = e
			}
			c.fail(at, "expected a 2xx answer, got %d: %s", st, why)
			return
		}
	}
	if kind == stepDeliver || kind == stepFetch {
		f, _ := res["fetch"].(string)
		if expect["fetch"] == nil && expect["outcome"] == nil && expect["error"] == nil && (f == store.FetchRetrying || f == store.FetchFailed) {
			c.fail(at, "expected the fetch to succeed, got %s: %s", f, show(res["error"], true))
		}
	}
}

func (tr *testRun) subscribe(s *step, c *checker) (map[string]any, bool) {
	params := tr.t.params
	if s.params != nil {
		params = s.params
	}
	sub, err := tr.e.core.CreateSubscription(tr.ctx, tr.ws, core.SubscriptionInput{
		ConnectionID: tr.connRec.ID, EventKey: tr.ev.Key, Parameters: params,
	})
	res := map[string]any{}
	if err != nil {
		res["error"] = err.Error()
	}
	if sub == nil {
		return res, true
	}
	tr.subID = sub.ID
	tr.subResults(res)
	return res, false
}

// subResults adds the stored subscription's status, state and nextRefreshTimestamp.
func (tr *testRun) subResults(res map[string]any) {
	sub := tr.subscription()
	if sub == nil {
		return
	}
	res["status"] = sub.Status
	res["state"] = tr.state(sub)
	if !sub.NextRefreshTime.IsZero() {
		res["nextRefreshTimestamp"] = sub.NextRefreshTime.UnixMilli()
	}
}

func (tr *testRun) refresh(c *checker) map[string]any {
	if tr.subID == "" {
		c.fail(tr.stepNode, "refresh needs a subscription: subscribe first, or start from subscription: {state: …}")
		return nil
	}
	_, out, err := tr.e.core.RefreshSubscription(tr.ctx, tr.ws, tr.subID)
	if err == nil {
		err = out.Err
	}
	res := map[string]any{"healed": out.Healed}
	if err != nil {
		res["error"] = err.Error()
	}
	tr.subResults(res)
	return res
}

func (tr *testRun) unsubscribe(s *step, c *checker) map[string]any {
	if tr.subID == "" {
		c.fail(tr.stepNode, "unsubscribe needs a subscription: subscribe first, or start from subscription: {state: …}")
		return nil
	}
	del, err := tr.e.core.DeleteSubscription(tr.ctx, tr.ws, tr.subID, s.force)
	res := map[string]any{"webhookMayRemain": del.WebhookMayRemain}
	if err != nil {
		res["error"] = err.Error()
	}
	return res
}

func (tr *testRun) reconcile(s *step) map[string]any {
	params := tr.t.params
	if s.params != nil {
		params = s.params
	}
	got, err := tr.e.core.ReconcileWebhooks(tr.ctx, tr.ws, core.ReconcileInput{
		ConnectionID: tr.connRec.ID, EventKey: tr.ev.Key, Parameters: params,
		DeleteOrphan: s.mode == "delete-orphans", URLPrefix: s.prefix, Repair: s.repair,
	})
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	hooks := []any{}
	for _, w := range got {
		m := map[string]any{"url": w.URL, "classification": w.Classification, "deleted": w.Deleted, "repaired": w.Repaired}
		if w.ID != "" {
			m["id"] = w.ID
		}
		if w.SubscriptionID != "" {
			m["subscriptionId"] = w.SubscriptionID
		}
		if w.Error != "" {
			m["error"] = w.Error
		}
		hooks = append(hooks, m)
	}
	return map[string]any{"webhooks": hooks}
}

// deliver sends a request to the subscription's webhook URI (or the global webhook's
// URL) through the receiver's handler, and returns what came of it.
func (tr *testRun) deliver(o *outgoing, c *checker) map[string]any {
	target := tr.globalURL()
	if sub := tr.subscription(); (sub != nil && sub.GlobalWebhookKey == "") || (sub == nil && tr.subID != "" && tr.ev.Type == engine.TypeWebhook) {
		target = tr.e.core.WebhookURI(tr.subID) // also once deleted: its URL answers 404
	}
	if target == "" {
		c.fail(o.node, "deliver needs a subscription (subscribe first, or start from subscription: {state: …}) or globalWebhook: KEY")
		return nil
	}
	var lastSeq int64
	if tr.subscription() != nil || tr.t.globalWebhook != "" {
		lastSeq, _ = tr.e.store.LastSeq(tr.ctx, tr.ws)
	}
	rec, ok := tr.send(o, target, c)
	if !ok {
		return nil
	}
	res := replyResult(rec)
	// The fetches the delivery asked for run now, as the server's fetcher would at once.
	tr.runFetches(time.Time{}, c)
	tr.deliveryResults(res, lastSeq)
	return res
}

// fetch runs the subscription's unfinished fetches now, retries included whatever their
// next attempt time, and returns what came of them.
func (tr *testRun) fetch(c *checker) map[string]any {
	if tr.subID == "" {
		c.fail(tr.stepNode, "fetch needs a subscription: subscribe first, or start from subscription: {state: …}")
		return nil
	}
	lastSeq, _ := tr.e.store.LastSeq(tr.ctx, tr.ws)
	tr.runFetches(maxTime, c)
	res := map[string]any{}
	tr.deliveryResults(res, lastSeq)
	return res
}

// maxTime is later than any next attempt time (and within the nanoseconds a store keeps).
var maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// runFetches runs the test subscription's fetches due by due (zero: the test's clock)
// when its event has a fetch method.
func (tr *testRun) runFetches(due time.Time, c *checker) {
	if tr.subID == "" || tr.ev == nil || tr.ev.Methods[engine.MethodFetch] == nil {
		return
	}
	if _, err := tr.e.core.RunFetches(tr.ctx, core.FetchRun{SubscriptionID: tr.subID, Due: due}); err != nil {
		c.fail(tr.stepNode, "cannot run the fetch: %s", err)
	}
}

// deliveryResults adds the newest delivery's outcome, error and fetch status, the events
// stored after lastSeq and the subscription's state to res.
func (tr *testRun) deliveryResults(res map[string]any, lastSeq int64) {
	if ds, _, err := tr.e.store.ListDeliveries(tr.ctx, tr.ws, store.DeliveryFilter{}, store.Page{Size: 1}); err == nil && len(ds) > 0 {
		res["outcome"] = ds[0].Outcome
		if ds[0].Error != "" {
			res["error"] = ds[0].Error
		}
		if ds[0].FetchStatus != "" {
			res["fetch"] = ds[0].FetchStatus
		}
	}
	events := []any{}
	if evs, err := tr.e.store.ListEvents(tr.ctx, tr.ws, store.EventFilter{}, lastSeq, 10000); err == nil {
		for _, ev := range evs {
			m := map[string]any{"type": ev.Type, "record": ev.Record}
			if ev.ExternalID != "" {
				m["id"] = ev.ExternalID
			}
			events = append(events, m)
		}
	}
	res["events"] = events
	if sub := tr.subscription(); sub != nil {
		res["state"] = tr.state(sub)
	}
}

// replyResult is what the receiver answered: status, headers and the body parsed by its
// Content-Type.
func replyResult(rec *httptest.ResponseRecorder) map[string]any {
	body := rec.Body.Bytes()
	parsed, err := httpbody.Parse(rec.Header().Get("Content-Type"), body)
	if err != nil {
		parsed = string(body)
	}
	return map[string]any{"status": int64(rec.Code), "headers": rec.Header(), "body": parsed}
}

// call is an app's request to the webhook while the connector's request waits for its
// answer (a handshake); its expectations are checked at once.
func (tr *testRun) call(o *outgoing, c *checker) {
	target := ""
	if sub := tr.subscription(); sub != nil {
		target = tr.e.core.WebhookURI(sub.ID)
	}
	if target == "" {
		c.fail(o.node, "call: there is no subscription to call yet")
		return
	}
	rec, ok := tr.send(o, target, c)
	if !ok {
		return
	}
	res := replyResult(rec)
	for _, k := range []string{"status", "headers", "body"} {
		if e := o.expect[k]; e != nil {
			v, present := res[k]
			e.m.match(c, "call "+k, v, present)
		}
	}
	if st := res["status"].(int64); o.expect["status"] == nil && (st < 200 || st > 299) {
		c.fail(o.node, "expected the call to be answered 2xx, got %d: %s", st, show(res["body"], true))
	}
}

// send builds, signs and serves one request to target.
func (tr *testRun) send(o *outgoing, target string, c *checker) (*httptest.ResponseRecorder, bool) {
	s := tr.scope()
	body, contentType, err := bodyOf(o.body, o.bodyFile, s)
	if err != nil {
		c.fail(o.node, "body: %s", err)
		return nil, false
	}
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	if err := addHeaders(h, o.headers, s); err != nil {
		c.fail(o.node, "headers: %s", err)
		return nil, false
	}
	u := target
	if o.query != nil {
		qv, err := o.query.Eval(s)
		if err != nil {
			c.fail(o.node, "query: %s", err)
			return nil, false
		}
		q := url.Values{}
		qm, _ := qv.(map[string]any)
		for _, k := range value.SortedKeys(qm) {
			for _, v := range listOf(qm[k]) {
				q.Add(k, fmt.Sprint(v))
			}
		}
		if len(q) > 0 {
			u += "?" + q.Encode()
		}
	}
	if o.sign != nil {
		sv, err := o.sign.secret.Eval(s)
		if err != nil {
			c.fail(o.sign.node, "sign.secret: %s", err)
			return nil, false
		}
		secret, _ := sv.(string)
		sig, err := verify.Sign(o.sign.config, secret, verify.Request{Method: o.method, URL: u, Header: h, Body: body}, tr.t.now.Add(-o.sign.age))
		if err != nil {
			c.fail(o.sign.node, "cannot sign: %s", err)
			return nil, false
		}
		for k, vs := range sig {
			h[k] = vs
		}
	}
	req := httptest.NewRequestWithContext(tr.ctx, o.method, u, bytes.NewReader(body))
	req.Header = h
	rec := httptest.NewRecorder()
	tr.e.handler.ServeHTTP(rec, req)
	return rec, true
}

func listOf(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

// bodyOf evaluates a body: a string is sent as is, anything else as JSON; a file is read.
func bodyOf(v *mapping.Value, file string, s *mapping.Scope) ([]byte, string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, "", err
		}
		ct := ""
		switch strings.ToLower(filepath.Ext(file)) {
		case ".json":
			ct = "application/json"
		case ".xml":
			ct = "application/xml"
		}
		return b, ct, nil
	}
	if v == nil {
		return nil, "", nil
	}
	out, err := v.Eval(s)
	if err != nil {
		return nil, "", err
	}
	switch t := out.(type) {
	case nil:
		return nil, "", nil
	case string:
		return []byte(t), "", nil
	}
	b, err := value.Encode(out)
	return b, "application/json", err
}

// addHeaders sets the headers a mapping value evaluates to (each a value or a list).
func addHeaders(h http.Header, v *mapping.Value, s *mapping.Scope) error {
	if v == nil {
		return nil
	}
	out, err := v.Eval(s)
	if err != nil {
		return err
	}
	m, ok := out.(map[string]any)
	if !ok && out != nil {
		return fmt.Errorf("must be a map of names to values, got %s", value.KindName(out))
	}
	for _, k := range value.SortedKeys(m) {
		h.Del(k)
		for _, e := range listOf(m[k]) {
			h.Add(k, fmt.Sprint(e))
		}
	}
	return nil
}

// response builds the fake app's answer of an exchange.
func (tr *testRun) response(x *exchange) (int, http.Header, []byte, error) {
	s := tr.scope()
	body, ct, err := bodyOf(x.body, x.file, s)
	if err != nil {
		return 0, nil, nil, err
	}
	h := http.Header{}
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	if err := addHeaders(h, x.headers, s); err != nil {
		return 0, nil, nil, err
	}
	return x.status, h, body, nil
}
