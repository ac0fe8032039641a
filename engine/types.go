package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hookmap/hookmap/engine/diag"
	"github.com/hookmap/hookmap/engine/mapping"
	"github.com/hookmap/hookmap/engine/rest"
	"github.com/hookmap/hookmap/engine/schema"
	"github.com/hookmap/hookmap/engine/verify"
)

// Diagnostic is a problem found while loading: "file:line:col: message".
type Diagnostic = diag.Diagnostic

// EvalError is a formula that failed at run time, with the file and position of the
// formula and what was missing or wrong.
type EvalError = mapping.EvalError

// HTTPError is a rest-api-mapping request answered with a status outside
// allowedStatusCodes (or outside 2xx by default).
type HTTPError = rest.HTTPError

// Schema is a compiled JSON Schema.
type Schema = schema.Schema

// FieldViolation is one problem of a value validated against a Schema.
type FieldViolation = schema.FieldViolation

// ImplementationType is an event's type (webhook, global-webhook) or a method's
// (mapping, rest-api-mapping).
type ImplementationType string

// Implementation types.
const (
	TypeWebhook        ImplementationType = "webhook"
	TypeGlobalWebhook  ImplementationType = "global-webhook"
	TypeMapping        ImplementationType = "mapping"
	TypeRESTAPIMapping ImplementationType = "rest-api-mapping"
)

// Method names.
const (
	MethodSubscribe         = "subscribe"
	MethodHandle            = "handle"
	MethodUnsubscribe       = "unsubscribe"
	MethodRefresh           = "refresh"
	MethodList              = "list"
	MethodDelete            = "delete"
	MethodGetEventsSelector = "getEventsSelector"
	// MethodFetch runs after a delivery is committed, to fetch the events an app's
	// notification only announces (Airtable, Dropbox, Box, Graph's basic notifications).
	MethodFetch = "fetch"
	// AliasGetEventSelector is accepted for getEventsSelector.
	AliasGetEventSelector = "getEventSelector"
)

// HTTPDoer sends HTTP requests; *http.Client satisfies it.
type HTTPDoer = rest.Doer

// RunOptions configure Method.Run.
type RunOptions struct {
	// HTTP is required for rest-api-mapping methods; the server passes an SSRF-guarded client.
	HTTP HTTPDoer
	// MaxResponseBytes caps a response body read (default 10 MiB).
	MaxResponseBytes int64
	// Now, when set, is the clock of the run's `now` (the server passes its own, so an
	// injected clock reaches the methods too); default time.Now.
	Now func() time.Time
	// State, when set, reads the subscription's stored state again. A rest-api-mapping
	// calls it after each request, so that its later requests and its responseMapping see
	// as `state` what a handle stored meanwhile (an app that sends a handshake to the new
	// hook during the create call).
	State func(ctx context.Context) (map[string]any, error)
	// Reauth, when set, renews the credentials after a rest-api-mapping request answered
	// 401: it returns the new credentials, and that request is sent again with them (the
	// api block evaluated anew). At most once per run.
	Reauth func(ctx context.Context) (map[string]any, error)
	// Timeout bounds the run of a method of type mapping (default DefaultTimeout): its
	// formulas stop with an EvalError once it has passed. A rest-api-mapping method's
	// requests are bounded by the connector's api.timeout instead, and its formulas by the
	// CEL cost limit.
	Timeout time.Duration
	// Stats, when set, has the run's figures added to it (also when the run fails).
	Stats *RunStats
}

// RunStats are figures of method runs.
type RunStats struct {
	// CELCost is the cost charged by the CEL expressions tracked at run time (those whose
	// cost is bounded at load are not tracked); a run that reached the cost limit charged
	// more than mapping.CostLimit in one expression.
	CELCost uint64
}

// DefaultTimeout is RunOptions.Timeout when left 0.
const DefaultTimeout = mapping.DefaultTimeout

// ErrCostLimit is wrapped by the EvalError of a CEL expression stopped by the cost limit.
var ErrCostLimit = mapping.ErrCostLimit

// TimeoutError is the cause of an evaluation stopped by its deadline (RunOptions.Timeout,
// WithTimeout); it matches context.DeadlineExceeded with errors.Is.
type TimeoutError = mapping.TimeoutError

// WithTimeout bounds the evaluations run with the returned context (verify blocks,
// several handles of one delivery) by limit (DefaultTimeout when 0); see
// mapping.WithTimeout.
func WithTimeout(ctx context.Context, limit time.Duration) (context.Context, context.CancelFunc) {
	return mapping.WithTimeout(ctx, limit)
}

// DefaultMaxResponseBytes is RunOptions.MaxResponseBytes when left 0.
const DefaultMaxResponseBytes = rest.DefaultMaxResponseBytes

// ErrNoHTTPClient is returned by Run of a rest-api-mapping without RunOptions.HTTP.
var ErrNoHTTPClient = rest.ErrNoHTTPClient

// Set is a set of loaded connectors.
type Set struct {
	byKey map[string]*Connector
	keys  []string
}

// Connector returns the connector with key.
func (s *Set) Connector(key string) (*Connector, bool) {
	if s == nil {
		return nil, false
	}
	c, ok := s.byKey[key]
	return c, ok
}

// Connectors returns the connectors sorted by key.
func (s *Set) Connectors() []*Connector {
	if s == nil {
		return nil
	}
	out := make([]*Connector, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, s.byKey[k])
	}
	return out
}

// Add puts c into the set, replacing a connector with its key (the server keeps the
// previous version of a connector whose reload failed). Not safe for concurrent use: add
// before sharing the set.
func (s *Set) Add(c *Connector) {
	if _, ok := s.byKey[c.Key]; !ok {
		s.keys = append(s.keys, c.Key)
		sort.Strings(s.keys)
	}
	s.byKey[c.Key] = c
}

// Connector is one loaded connector.
type Connector struct {
	Key, Name, Dir string

	// ParametersSchema validates the workspace-level connectorParameters,
	// ConnectionParametersSchema a connection's parameters, CredentialsSchema its
	// credentials. Each is nil when absent.
	ParametersSchema, ConnectionParametersSchema, CredentialsSchema *Schema

	Events         map[string]*Event
	GlobalWebhooks map[string]*GlobalWebhook

	// Auth is the auth block: nil for static credentials (the default).
	Auth *Auth
}

// Summary is one line describing the connector: "github: 3 events, 0 global webhooks, 12 methods".
func (c *Connector) Summary() string {
	methods := 0
	for _, e := range c.Events {
		methods += len(e.Methods)
	}
	for _, g := range c.GlobalWebhooks {
		if g.Handle != nil {
			methods++
		}
	}
	return fmt.Sprintf("%s: %s, %s, %s", c.Key, plural(len(c.Events), "event"), plural(len(c.GlobalWebhooks), "global webhook"), plural(methods, "method"))
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// Event is one event of a connector.
type Event struct {
	Key, Name string
	// Type is webhook or global-webhook.
	Type ImplementationType
	// ParametersSchema validates a subscription's parameters; Schema each event's record.
	ParametersSchema, Schema *Schema
	// ListParametersSchema validates the parameters ReconcileWebhooks gives the list and
	// delete methods; nil when the event does not declare one (ParametersSchema then
	// applies). An event whose list needs less than a subscription (every webhook of an
	// account) declares it so that a reconcile can run without a subscription's parameters.
	ListParametersSchema *Schema
	// Verify is the event's verify block, nil when absent.
	Verify *Verify
	// Methods by name: subscribe, handle, unsubscribe, refresh, list, delete, fetch,
	// getEventsSelector (declared as getEventSelector too).
	Methods map[string]*Method

	handleReads Reads // HandleReads, computed at load
	readsKnown  bool
}

// Reads are the variables a method or a verify block may read: see mapping.Reads.
type Reads = mapping.Reads

// AllReads are the reads of what may read every variable.
func AllReads() Reads { return mapping.AllReads() }

// HandleReads returns the variables the event's verify block and handle may read
// together: a delivery's handling needs to make only those.
func (e *Event) HandleReads() Reads {
	if e.readsKnown {
		return e.handleReads
	}
	return e.Methods[MethodHandle].Reads().Union(e.Verify.Reads())
}

// GlobalWebhook is an app-level webhook URL shared by the subscriptions of a workspace.
type GlobalWebhook struct {
	Key, Name string
	Verify    *Verify
	Handle    *Method
}

// Verify is a verify block: a signature scheme and its secret, or a CEL condition.
type Verify struct {
	// Config is the scheme and its settings, ready for verify.Check; its Scheme is "cel"
	// when the block is written {$cel: BOOL}.
	verify.Config

	// Vars are the variables the block sees (its handle's), sorted.
	Vars []string

	secret *mapping.Value
	cond   *mapping.CEL
	skip   *mapping.CEL
}

// Reads returns the variables the block's formulas may read (its scheme reads the
// request itself, not variables).
func (v *Verify) Reads() Reads {
	if v == nil {
		return Reads{}
	}
	r := v.secret.Reads()
	if v.cond != nil {
		r = r.Union(v.cond.Reads())
	}
	if v.skip != nil {
		r = r.Union(v.skip.Reads())
	}
	return r
}

// Skips reports whether the block has a skipWhen condition.
func (v *Verify) Skips() bool { return v != nil && v.skip != nil }

// verifyScope is the scope of a verify block's formulas: the handle's variables, and now
// (the request's time, as in its handle; the current time when zero).
func verifyScope(ctx context.Context, vars map[string]any, now time.Time) *mapping.Scope {
	s := mapping.NewScope(ctx, vars)
	if !now.IsZero() {
		s.SetNow(now)
	}
	return s
}

// SkipWhen evaluates the block's skipWhen condition with vars (the handle's variables)
// at now: true means the request is let through unverified. False without a condition.
func (v *Verify) SkipWhen(ctx context.Context, vars map[string]any, now time.Time) (bool, error) {
	if v == nil || v.skip == nil {
		return false, nil
	}
	return v.skip.EvalBool(verifyScope(ctx, vars, now))
}

// ErrNotCEL is returned by CheckCEL for a verify block that is not {$cel: ...}.
var ErrNotCEL = errors.New("the verify block is not a {$cel: ...} condition")

// ErrNoSecret is returned by Secret when the block has no secret or it is empty.
var ErrNoSecret = errors.New("the verify secret is empty")

// Secret evaluates the block's secret with vars (the handle's variables) at now.
func (v *Verify) Secret(ctx context.Context, vars map[string]any, now time.Time) (string, error) {
	if v == nil || v.secret == nil {
		return "", ErrNoSecret
	}
	out, err := v.secret.Eval(verifyScope(ctx, vars, now))
	if err != nil {
		return "", err
	}
	s, err := mapping.Text(out)
	if err != nil {
		return "", fmt.Errorf("verify secret: %w", err)
	}
	if s == "" {
		return "", ErrNoSecret
	}
	return s, nil
}

// CheckCEL evaluates a {$cel: BOOL} verify block with vars (the handle's variables) at
// now.
func (v *Verify) CheckCEL(ctx context.Context, vars map[string]any, now time.Time) (bool, error) {
	if v == nil || v.cond == nil {
		return false, ErrNotCEL
	}
	return v.cond.EvalBool(verifyScope(ctx, vars, now))
}

// Method is a compiled method.
type Method struct {
	Key string
	// Type is mapping or rest-api-mapping.
	Type ImplementationType
	// File is the method's file, joined from the folder given to Load.
	File string
	// Vars are the variables the method declares (DESIGN.md §4), sorted; `now` is every
	// method's and not listed.
	Vars []string

	mapping *mapping.Value
	rest    *rest.Method
	api     *rest.API
}

// Reads returns the variables the method may read: every one for a rest-api-mapping
// method. Run with only those gives the same result as with all of them.
func (m *Method) Reads() Reads {
	switch {
	case m == nil:
		return Reads{}
	case m.mapping == nil:
		return mapping.AllReads()
	}
	return m.mapping.Reads()
}

// Run evaluates the method with vars and returns its result as a plain value. A declared
// variable missing from vars reads as an empty map (objects) or null.
func (m *Method) Run(ctx context.Context, vars map[string]any, opts RunOptions) (any, error) {
	if m == nil {
		return nil, errors.New("no method")
	}
	if vars == nil {
		vars = map[string]any{}
	}
	s := mapping.NewScope(ctx, vars)
	if m.mapping != nil {
		s.SetTimeout(opts.Timeout)
		defer s.Release()
	}
	if opts.Stats != nil {
		defer func() { opts.Stats.CELCost += s.Cost() }()
	}
	if opts.Now != nil {
		s.SetNow(opts.Now())
	}
	switch {
	case m.rest != nil:
		return m.rest.Run(s, m.api, rest.Options{HTTP: opts.HTTP, MaxResponseBytes: opts.MaxResponseBytes, State: opts.State, Reauth: opts.Reauth})
	case m.mapping != nil:
		return m.mapping.Eval(s)
	}
	return nil, nil
}
