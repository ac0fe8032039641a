package conntest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hookmap/hookmap/engine"
	"github.com/hookmap/hookmap/engine/mapping"
	"github.com/hookmap/hookmap/engine/verify"
	"github.com/hookmap/hookmap/engine/yamlsrc"
)

// DefaultNow is the clock of a test that does not set now: fixed, so that signatures,
// tolerances and nextRefreshTimestamp are the same on every run.
var DefaultNow = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Step kinds.
const (
	stepSubscribe   = "subscribe"
	stepDeliver     = "deliver"
	stepRefresh     = "refresh"
	stepUnsubscribe = "unsubscribe"
	stepReconcile   = "reconcile"
	stepFetch       = "fetch"
)

var stepKinds = []string{stepSubscribe, stepDeliver, stepFetch, stepRefresh, stepUnsubscribe, stepReconcile}

// testVars are the variables formulas of a test file see.
var testVars = []string{
	"webhookUri", "webhookSecret", "subscriptionId", "globalWebhookUri",
	"parameters", "connection", "connectorParameters", "state",
}

// File is a parsed test file.
type File struct {
	Path  string
	Tests []*Test
}

// settings are what a file sets for all its tests and a test may set for itself.
type settings struct {
	event, globalWebhook string
	connection           map[string]any // {parameters, credentials}
	connectorParams      map[string]any
	params               map[string]any
	now                  time.Time
	has                  map[string]bool
}

// merge returns s with what t sets replacing it.
func (s settings) merge(t settings) settings {
	out := s
	out.has = map[string]bool{}
	for k := range s.has {
		out.has[k] = true
	}
	for k := range t.has {
		out.has[k] = true
		switch k {
		case "event":
			out.event = t.event
		case "globalWebhook":
			out.globalWebhook = t.globalWebhook
		case "connection":
			out.connection = t.connection
		case "connectorParameters":
			out.connectorParams = t.connectorParams
		case "parameters":
			out.params = t.params
		case "now":
			out.now = t.now
		}
	}
	return out
}

// Test is one test of a file.
type Test struct {
	Name string
	node *yaml.Node
	settings
	given *given
	steps []*step
}

// given is the subscription a test starts from when it does not subscribe.
type given struct {
	state    *mapping.Value // a map; its formulas see the new subscription's id, URI and secret
	selector string
	node     *yaml.Node
}

// step is one action of a test.
type step struct {
	kind string
	node *yaml.Node

	params  map[string]any  // subscribe, reconcile: parameters that replace the test's
	request *outgoing       // deliver
	force   bool            // unsubscribe
	mode    string          // reconcile: dry-run or delete-orphans
	prefix  string          // reconcile: urlPrefix
	repair  bool            // reconcile: re-subscribe the MISSING subscriptions
	app     []*exchange     // the requests the connector must send, in order
	expect  map[string]*exp // by key
}

// exp is one expectation of a step, at its node.
type exp struct {
	key  string
	node *yaml.Node
	m    matcher
}

// outgoing is a request sent to hookmap's receiver: a delivery, or an app's handshake.
type outgoing struct {
	node     *yaml.Node
	method   string
	query    *mapping.Value
	headers  *mapping.Value
	body     *mapping.Value
	bodyFile string
	sign     *signing
	expect   map[string]*exp // for a handshake call: what the receiver must answer
}

// signing is how the runner signs a delivery.
type signing struct {
	node   *yaml.Node
	config verify.Config
	secret *mapping.Value
	age    time.Duration
}

// exchange is one request the connector must send and the fake app's answer.
type exchange struct {
	node    *yaml.Node
	request map[string]*exp // method, url, path, query, headers, body
	call    *outgoing       // sent to the webhook before the answer (a handshake)
	status  int
	headers *mapping.Value
	body    *mapping.Value
	file    string
}

// Failure is a problem of a test file or a test: "file:line:col: message".
type Failure struct {
	File      string
	Line, Col int
	Message   string
}

func (f Failure) String() string {
	if f.Line <= 0 {
		return fmt.Sprintf("%s: %s", f.File, f.Message)
	}
	return fmt.Sprintf("%s:%d:%d: %s", f.File, f.Line, max(f.Col, 1), f.Message)
}

// reader parses one test file, collecting its problems.
type reader struct {
	path  string
	src   *yamlsrc.File
	mc    *mapping.Compiler
	fails []Failure
}

func (r *reader) add(n *yaml.Node, format string, args ...any) {
	f := Failure{File: r.path, Line: 1, Col: 1, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		f.Line, f.Col = n.Line, n.Column
	}
	r.fails = append(r.fails, f)
}

func (r *reader) addProblems(probs []yamlsrc.Problem) {
	for _, p := range probs {
		r.fails = append(r.fails, Failure{File: r.path, Line: max(p.Line, 1), Col: max(p.Col, 1), Message: p.Message})
	}
}

// pairs returns the entries of a mapping (nil for null), reporting another kind.
func (r *reader) pairs(n *yaml.Node, what string) []yamlsrc.Pair {
	if yamlsrc.IsNull(n) {
		return nil
	}
	if yamlsrc.Resolve(n).Kind != yaml.MappingNode {
		r.add(n, "%s must be a mapping, got %s", what, yamlsrc.KindName(n))
		return nil
	}
	ps, probs := yamlsrc.Pairs(n)
	r.addProblems(probs)
	return ps
}

func (r *reader) unknown(p yamlsrc.Pair, where string, known []string) {
	r.add(p.KeyNode, "unknown key %q in %s (expected %s)", p.Key, where, strings.Join(known, ", "))
}

func (r *reader) str(p yamlsrc.Pair) (string, bool) {
	n := yamlsrc.Resolve(p.Value)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		r.add(p.Value, "%s must be a string, got %s", p.Key, yamlsrc.KindName(p.Value))
		return "", false
	}
	return n.Value, true
}

func (r *reader) object(p yamlsrc.Pair) map[string]any {
	if yamlsrc.IsNull(p.Value) {
		return map[string]any{}
	}
	v, err := yamlsrc.Plain(p.Value)
	if err != nil {
		r.add(p.Value, "%s: %s", p.Key, err)
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		r.add(p.Value, "%s must be a mapping, got %s", p.Key, yamlsrc.KindName(p.Value))
		return nil
	}
	return m
}

// value compiles an input: a YAML value with formulas over the test's variables.
func (r *reader) value(n *yaml.Node) *mapping.Value {
	if n == nil {
		return nil
	}
	v := r.mc.Compile(n)
	r.addProblems(r.mc.Problems)
	r.mc.Problems = nil
	return v
}

// ParseFile reads a test file. Problems of the file are returned as failures; the file
// is usable only without them.
func ParseFile(path string) (*File, []Failure) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, []Failure{{File: path, Message: "cannot read: " + err.Error()}}
	}
	return parse(path, b)
}

// parse parses the bytes of the test file at path (files it names are relative to path).
func parse(path string, b []byte) (*File, []Failure) {
	r := &reader{path: path}
	if len(b) > engine.MaxFileBytes {
		return nil, []Failure{{File: path, Message: fmt.Sprintf("file is larger than %d bytes", engine.MaxFileBytes)}}
	}
	src, err := yamlsrc.Parse(b)
	if err != nil {
		if p, ok := err.(*yamlsrc.Problem); ok {
			r.addProblems([]yamlsrc.Problem{*p})
		} else {
			r.add(nil, "%s", err)
		}
		return nil, r.fails
	}
	r.src = src
	env, err := mapping.NewEnv(testVars...)
	if err != nil {
		return nil, []Failure{{File: path, Message: err.Error()}}
	}
	r.mc = &mapping.Compiler{Env: env, File: src, Path: path}
	f := &File{Path: path}
	if src.Root == nil {
		r.add(nil, "a test file needs tests: a list of tests")
		return nil, r.fails
	}
	var defaults settings
	var testsPair *yamlsrc.Pair
	ps := r.pairs(src.Root, "a test file")
	for i, p := range ps {
		if r.setting(&defaults, p) {
			continue
		}
		if p.Key == "tests" {
			testsPair = &ps[i]
			continue
		}
		r.unknown(p, "a test file", append(slices.Clone(settingKeys), "tests"))
	}
	if testsPair == nil {
		r.add(src.Root, "a test file needs tests: a list of tests")
		return nil, r.fails
	}
	list := yamlsrc.Resolve(testsPair.Value)
	if list == nil || list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
		r.add(testsPair.Value, "tests must be a list of tests, each {name, steps}")
		return nil, r.fails
	}
	names := map[string]bool{}
	for _, n := range list.Content {
		t := r.test(n, defaults)
		if t == nil {
			continue
		}
		if names[t.Name] {
			r.add(t.node, "two tests are named %q", t.Name)
		}
		names[t.Name] = true
		f.Tests = append(f.Tests, t)
	}
	if len(r.fails) > 0 {
		slices.SortStableFunc(r.fails, func(a, b Failure) int {
			if a.Line != b.Line {
				return a.Line - b.Line
			}
			return a.Col - b.Col
		})
		return nil, r.fails
	}
	return f, nil
}

var settingKeys = []string{"event", "globalWebhook", "connection", "connectorParameters", "parameters", "now"}

// setting reads one of settingKeys into s; false when p is not one.
func (r *reader) setting(s *settings, p yamlsrc.Pair) bool {
	if !slices.Contains(settingKeys, p.Key) {
		return false
	}
	if s.has == nil {
		s.has = map[string]bool{}
	}
	s.has[p.Key] = true
	switch p.Key {
	case "event":
		s.event, _ = r.str(p)
	case "globalWebhook":
		s.globalWebhook, _ = r.str(p)
	case "connection":
		s.connection = map[string]any{}
		for _, q := range r.pairs(p.Value, "connection") {
			switch q.Key {
			case "parameters", "credentials":
				s.connection[q.Key] = r.object(q)
			default:
				r.unknown(q, "connection", []string{"parameters", "credentials"})
			}
		}
	case "connectorParameters":
		s.connectorParams = r.object(p)
	case "parameters":
		s.params = r.object(p)
	case "now":
		str, ok := r.str(p)
		if !ok {
			break
		}
		t, err := time.Parse(time.RFC3339, str)
		if err != nil {
			r.add(p.Value, "now must be an RFC 3339 time such as 2025-01-01T00:00:00Z, got %q", str)
			break
		}
		s.now = t.UTC()
	}
	return true
}

var testKeys = append(slices.Clone(settingKeys), "name", "subscription", "steps")

func (r *reader) test(n *yaml.Node, defaults settings) *Test {
	t := &Test{node: n}
	var own settings
	var stepsPair *yamlsrc.Pair
	ps := r.pairs(n, "a test")
	for i, p := range ps {
		if r.setting(&own, p) {
			continue
		}
		switch p.Key {
		case "name":
			t.Name, _ = r.str(p)
		case "subscription":
			t.given = r.given(p)
		case "steps":
			stepsPair = &ps[i]
		default:
			r.unknown(p, "a test", testKeys)
		}
	}
	if t.Name == "" {
		r.add(n, "a test needs a name")
	}
	t.settings = defaults.merge(own)
	if t.now.IsZero() {
		t.now = DefaultNow
	}
	if stepsPair == nil {
		r.add(n, "a test needs steps: a list of subscribe, deliver, fetch, refresh, unsubscribe or reconcile")
		return nil
	}
	list := yamlsrc.Resolve(stepsPair.Value)
	if list == nil || list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
		r.add(stepsPair.Value, "steps must be a list of subscribe, deliver, fetch, refresh, unsubscribe or reconcile")
		return nil
	}
	for _, sn := range list.Content {
		if s := r.step(sn); s != nil {
			t.steps = append(t.steps, s)
		}
	}
	if t.given != nil && len(t.steps) > 0 && t.steps[0].kind == stepSubscribe {
		r.add(t.given.node, "a test either starts from a subscription or subscribes, not both")
	}
	return t
}

func (r *reader) given(p yamlsrc.Pair) *given {
	g := &given{node: p.KeyNode}
	for _, q := range r.pairs(p.Value, "subscription") {
		switch q.Key {
		case "state":
			if m := r.object(q); m != nil {
				g.state = r.value(q.Value)
			}
		case "selector":
			g.selector, _ = r.str(q)
		default:
			r.unknown(q, "subscription", []string{"state", "selector"})
		}
	}
	return g
}

func (r *reader) step(n *yaml.Node) *step {
	s := &step{node: n, expect: map[string]*exp{}}
	var expectPair *yamlsrc.Pair
	ps := r.pairs(n, "a step")
	for i, p := range ps {
		switch {
		case slices.Contains(stepKinds, p.Key):
			if s.kind != "" {
				r.add(p.KeyNode, "a step does one thing: %s and %s are two steps", s.kind, p.Key)
				continue
			}
			s.kind = p.Key
			r.stepInput(s, p)
		case p.Key == "app":
			s.app = r.app(p)
		case p.Key == "expect":
			expectPair = &ps[i]
		default:
			r.unknown(p, "a step", append(slices.Clone(stepKinds), "app", "expect"))
		}
	}
	if s.kind == "" {
		r.add(n, "a step needs one of %s", strings.Join(stepKinds, ", "))
		return nil
	}
	if expectPair != nil {
		r.expectations(s.expect, *expectPair, stepExpectKeys[s.kind], "the expectations of "+s.kind)
	}
	return s
}

// stepExpectKeys are what each kind of step can expect.
var stepExpectKeys = map[string][]string{
	stepSubscribe:   {"status", "state", "nextRefreshTimestamp", "error"},
	stepDeliver:     {"status", "headers", "body", "outcome", "error", "events", "state", "fetch"},
	stepFetch:       {"outcome", "error", "events", "state", "fetch"},
	stepRefresh:     {"state", "nextRefreshTimestamp", "error", "healed"},
	stepUnsubscribe: {"error", "webhookMayRemain"},
	stepReconcile:   {"webhooks", "error"},
}

func (r *reader) stepInput(s *step, p yamlsrc.Pair) {
	switch s.kind {
	case stepSubscribe:
		for _, q := range r.pairs(p.Value, "subscribe") {
			if q.Key != "parameters" {
				r.unknown(q, "subscribe", []string{"parameters"})
				continue
			}
			s.params = r.object(q)
		}
	case stepRefresh, stepFetch:
		if !yamlsrc.IsNull(p.Value) {
			r.add(p.Value, "%s takes nothing (write %s: with no value)", s.kind, s.kind)
		}
	case stepUnsubscribe:
		for _, q := range r.pairs(p.Value, "unsubscribe") {
			if q.Key != "force" {
				r.unknown(q, "unsubscribe", []string{"force"})
				continue
			}
			if n := yamlsrc.Resolve(q.Value); n == nil || n.ShortTag() != "!!bool" {
				r.add(q.Value, "force must be true or false")
				continue
			}
			s.force = yamlsrc.Resolve(q.Value).Value == "true"
		}
	case stepReconcile:
		s.mode = "dry-run"
		for _, q := range r.pairs(p.Value, "reconcile") {
			switch q.Key {
			case "mode":
				m, _ := r.str(q)
				if m != "dry-run" && m != "delete-orphans" {
					r.add(q.Value, "mode must be dry-run or delete-orphans, got %q", m)
				}
				s.mode = m
			case "parameters":
				s.params = r.object(q)
			case "urlPrefix":
				s.prefix, _ = r.str(q)
			case "repair":
				if n := yamlsrc.Resolve(q.Value); n == nil || n.ShortTag() != "!!bool" {
					r.add(q.Value, "repair must be true or false")
					continue
				}
				s.repair = yamlsrc.Resolve(q.Value).Value == "true"
			default:
				r.unknown(q, "reconcile", []string{"mode", "parameters", "urlPrefix", "repair"})
			}
		}
	case stepDeliver:
		s.request = r.outgoing(p, false)
	}
}

var outgoingKeys = []string{"method", "query", "headers", "body", "bodyFile", "sign"}

// outgoing reads a delivery (or, with call, an app's handshake and what it expects back).
func (r *reader) outgoing(p yamlsrc.Pair, call bool) *outgoing {
	o := &outgoing{node: p.KeyNode, method: "POST", expect: map[string]*exp{}}
	keys := outgoingKeys
	if call {
		keys = append(slices.Clone(keys), "expect")
	}
	for _, q := range r.pairs(p.Value, p.Key) {
		switch q.Key {
		case "method":
			m, _ := r.str(q)
			o.method = strings.ToUpper(m)
		case "query":
			o.query = r.value(q.Value)
		case "headers":
			o.headers = r.value(q.Value)
		case "body":
			o.body = r.value(q.Value)
		case "bodyFile":
			o.bodyFile = r.file(q)
		case "sign":
			o.sign = r.signing(q)
		case "expect":
			if call {
				r.expectations(o.expect, q, []string{"status", "headers", "body"}, "the expectations of a call")
				continue
			}
			r.unknown(q, p.Key, keys)
		default:
			r.unknown(q, p.Key, keys)
		}
	}
	if o.body != nil && o.bodyFile != "" {
		r.add(p.KeyNode, "%s has either body or bodyFile, not both", p.Key)
	}
	return o
}

// file resolves a file named relative to the test file, which must exist.
func (r *reader) file(p yamlsrc.Pair) string {
	name, ok := r.str(p)
	if !ok {
		return ""
	}
	path := filepath.Join(filepath.Dir(r.path), filepath.FromSlash(name))
	if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
		r.add(p.Value, "%s %q: no such file next to the test file", p.Key, name)
		return ""
	}
	return path
}

func (r *reader) signing(p yamlsrc.Pair) *signing {
	s := &signing{node: p.KeyNode}
	for _, q := range r.pairs(p.Value, "sign") {
		switch q.Key {
		case "scheme":
			s.config.Scheme, _ = r.str(q)
		case "header":
			s.config.Header, _ = r.str(q)
		case "algorithm":
			s.config.Algorithm, _ = r.str(q)
		case "encoding":
			s.config.Encoding, _ = r.str(q)
		case "prefix":
			s.config.Prefix, _ = r.str(q)
		case "secret":
			s.secret = r.value(q.Value)
		case "age":
			str, ok := r.str(q)
			d, err := time.ParseDuration(str)
			if ok && err != nil {
				r.add(q.Value, "age must be a duration such as 6m, got %q", str)
			}
			s.age = d
		default:
			r.unknown(q, "sign", []string{"scheme", "secret", "header", "algorithm", "encoding", "prefix", "age"})
		}
	}
	if err := s.config.Validate(); err != nil {
		r.add(p.Value, "sign: %s", err)
	}
	if s.secret == nil {
		r.add(p.KeyNode, "sign needs a secret (a value, or a formula such as {$cel: webhookSecret})")
	}
	return s
}

func (r *reader) app(p yamlsrc.Pair) []*exchange {
	list := yamlsrc.Resolve(p.Value)
	if list == nil || list.Kind != yaml.SequenceNode {
		r.add(p.Value, "app must be a list of {request, response}: the requests the connector sends, in order")
		return nil
	}
	var out []*exchange
	for _, n := range list.Content {
		x := &exchange{node: n, request: map[string]*exp{}, status: 200}
		hasRequest := false
		for _, q := range r.pairs(n, "an app exchange") {
			switch q.Key {
			case "request":
				hasRequest = true
				r.expectations(x.request, q, []string{"method", "url", "path", "query", "headers", "body"}, "request")
			case "response":
				r.response(x, q)
			case "call":
				x.call = r.outgoing(q, true)
			default:
				r.unknown(q, "an app exchange", []string{"request", "call", "response"})
			}
		}
		if !hasRequest {
			r.add(n, "an app exchange needs request: what the connector must send (method and path at least)")
		}
		out = append(out, x)
	}
	return out
}

func (r *reader) response(x *exchange, p yamlsrc.Pair) {
	for _, q := range r.pairs(p.Value, "response") {
		switch q.Key {
		case "status":
			var st int
			if err := q.Value.Decode(&st); err != nil || st < 100 || st > 599 {
				r.add(q.Value, "status must be an HTTP status code")
			}
			x.status = st
		case "headers":
			x.headers = r.value(q.Value)
		case "body":
			x.body = r.value(q.Value)
		case "bodyFile":
			x.file = r.file(q)
		default:
			r.unknown(q, "response", []string{"status", "headers", "body", "bodyFile"})
		}
	}
}

// expectations reads an expect block (or a request expectation) into out.
func (r *reader) expectations(out map[string]*exp, p yamlsrc.Pair, known []string, where string) {
	for _, q := range r.pairs(p.Value, where) {
		if !slices.Contains(known, q.Key) {
			r.unknown(q, where, known)
			continue
		}
		out[q.Key] = &exp{key: q.Key, node: q.Value, m: r.expectation(q.Key, q.Value)}
	}
}

// expectation compiles an expected value; some keys match in their own way.
func (r *reader) expectation(key string, n *yaml.Node) matcher {
	switch key {
	case "headers":
		return r.headerMatcher(n)
	case "error":
		return r.errorMatcher(n)
	case "events":
		return r.eventsMatcher(n)
	case "webhooks":
		return r.listOfPartial(n, "webhooks", []string{"id", "url", "classification", "subscriptionId", "deleted", "repaired", "error"})
	case "query":
		return r.nameMap(n)
	case "method":
		if s := yamlsrc.Resolve(n); s != nil && s.Kind == yaml.ScalarNode {
			return &scalarMatcher{node: n, want: strings.ToUpper(s.Value)}
		}
	}
	return r.matcher(n, false)
}
