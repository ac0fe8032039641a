package mapping

import (
	"context"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	"github.com/hookmap/hookmap/engine/celfn"
	"github.com/hookmap/hookmap/engine/jmes"
)

// objectVars are the variables that default to an empty map when the caller leaves them
// out; every other declared variable defaults to null.
var objectVars = map[string]bool{
	"connection": true, "connectorParameters": true, "credentials": true, "parameters": true,
	"state": true, "query": true, "headers": true, "data": true, "body": true,
	"webhook": true, "response": true, "responses": true, "callback": true,
}

// knownVars are every variable name a method may declare.
var knownVars = map[string]bool{
	"webhookUri": true, "webhookSecret": true, "subscriptionId": true, "method": true,
	"rawBody": true, "code": true, "codeVerifier": true, "redirectUri": true,
}

func init() {
	for k := range objectVars {
		knownVars[k] = true
	}
}

// Scope holds the variables of one run. It is not safe for concurrent use; create one per
// run (NewScope is cheap).
type Scope struct {
	ctx     context.Context
	dl      *deadline // set by SetTimeout (to &own); shared with the scopes made by With
	own     deadline
	cost    *uint64 // the tracked CEL cost of the run (&ownCost), shared with With's scopes
	ownCost uint64
	vars    map[string]any
	extra   map[string]any

	now    time.Time
	hasNow bool

	pdoc      map[string]any
	jdoc      map[string]any
	jdocWhole bool

	// adapted caches variables converted to CEL values for this run.
	adapted []namedVal
}

type namedVal struct {
	name string
	val  ref.Val
}

// NewScope returns a scope over vars. A declared variable missing from vars reads as an
// empty map (objects such as state, parameters, data; connection as {parameters: {}}) or
// null; `body` and `data` are
// aliases, so giving either is enough.
func NewScope(ctx context.Context, vars map[string]any) *Scope {
	if ctx == nil {
		ctx = context.Background()
	}
	s := &Scope{ctx: ctx, vars: vars}
	s.cost = &s.ownCost
	return s
}

// With returns a child scope with extra variables (e.g. response) on top of s's (and of
// s's own extra variables). The child shares s's start time.
func (s *Scope) With(extra map[string]any) *Scope {
	if s.extra != nil {
		merged := make(map[string]any, len(s.extra)+len(extra))
		for k, v := range s.extra {
			merged[k] = v
		}
		for k, v := range extra {
			merged[k] = v
		}
		extra = merged
	}
	c := &Scope{ctx: s.ctx, dl: s.dl, cost: s.cost, vars: s.vars, extra: extra}
	c.now, c.hasNow = s.Now(), true
	return c
}

// Cost returns the CEL cost charged so far in s and the scopes made from it with With, by
// the expressions tracked at run time (those bounded at load are not tracked).
func (s *Scope) Cost() uint64 {
	if s.cost == nil {
		return 0
	}
	return *s.cost
}

func (s *Scope) addCost(c uint64) {
	if s.cost != nil {
		*s.cost += c
	}
}

// Context returns the scope's context (without the deadline of SetTimeout, which bounds
// evaluation only, nor that of a WithTimeout context SetTimeout took over).
func (s *Scope) Context() context.Context { return s.ctx }

// deadline is a time limit on a scope's evaluations. Reading the clock is not free (and a
// timer less so), so a run looks at it only before a formula that may do real work, or once
// the formulas since the last look may have done clockEvery units of work together (by
// their cost estimated at load). A run that stops does so within about clockEvery units
// of work (well under a millisecond) of its limit. The timer is only made when a tracked
// CEL expression with a loop needs a context that ends at the deadline.
type deadline struct {
	limit   time.Duration
	start   time.Time
	pending uint64 // estimated work since the last look at the clock
	cause   TimeoutError
	ctx     context.Context // made by evalContext, or the WithTimeout context taken over
	cancel  context.CancelFunc
}

// clockEvery is the estimated work, in CEL cost units (about 50 ns each), between two looks
// at the clock; a formula that may do this much looks before it starts.
const clockEvery = 10_000

// jmesPlainWeight is the work a JMESPath search of the plain variables is taken to do.
const jmesPlainWeight = 1_000

// SetTimeout bounds the evaluations in s, and in the scopes made from it with With, by
// limit (DefaultTimeout when 0 or less), unless s's context ends first. A tracked CEL
// expression stops at the deadline; no other formula that may take time starts after
// it. Call Release once the evaluations are done.
//
// A deadline of WithTimeout in s's context that comes first is taken over: it is looked at
// as the run's own would be, and only a tracked CEL loop makes its timer; s's context
// (Context) is then its parent.
func (s *Scope) SetTimeout(limit time.Duration) {
	if limit <= 0 {
		limit = DefaultTimeout
	}
	now := time.Now()
	if b, ok := s.ctx.(*bound); ok && !b.canceled.Load() && b.end.Sub(now) <= limit {
		s.ctx = b.Context
		s.own = deadline{limit: b.limit, start: b.start, cause: b.cause, ctx: b}
		s.dl = &s.own
		return
	}
	if d, ok := s.ctx.Deadline(); ok && d.Sub(now) <= limit {
		return
	}
	s.own = deadline{limit: limit, start: now, cause: TimeoutError{Limit: limit}}
	s.dl = &s.own // no allocation: the scope is one already
}

// Release stops the timer SetTimeout may have made (that of a WithTimeout deadline taken
// over is its cancel's to stop).
func (s *Scope) Release() {
	if s.dl != nil && s.dl.cancel != nil {
		s.dl.cancel()
	}
}

// stop is why a formula that may do weight units of work must not start (the context's
// cause, or the deadline's), or nil.
func (s *Scope) stop(weight uint64) error {
	if s.ctx.Err() != nil {
		return context.Cause(s.ctx)
	}
	dl := s.dl
	if dl == nil {
		return nil
	}
	if dl.pending += weight; dl.pending < clockEvery {
		return nil
	}
	dl.pending = 0
	if time.Since(dl.start) >= dl.limit {
		return &dl.cause
	}
	return nil
}

// evalContext is the context a tracked CEL evaluation runs with: s's, ending at the
// deadline when one is set.
func (s *Scope) evalContext() context.Context {
	if s.dl == nil {
		return s.ctx
	}
	if s.dl.ctx == nil {
		s.dl.ctx, s.dl.cancel = context.WithDeadlineCause(s.ctx, s.dl.start.Add(s.dl.limit), &s.dl.cause)
	}
	return s.dl.ctx
}

// Now returns the run's start time (the CEL variable now).
func (s *Scope) Now() time.Time {
	if !s.hasNow {
		s.now, s.hasNow = time.Now().UTC(), true
	}
	return s.now
}

// SetNow sets the run's start time (the CEL variable now); call it before evaluating.
func (s *Scope) SetNow(t time.Time) { s.now, s.hasNow = t.UTC(), true }

// Lookup returns the value of variable name with the defaults and aliases applied.
func (s *Scope) Lookup(name string) (any, bool) {
	if s.extra != nil {
		if v, ok := s.extra[name]; ok {
			return v, true
		}
	}
	if v, ok := s.vars[name]; ok {
		return v, true
	}
	switch name {
	case "body":
		if v, ok := s.vars["data"]; ok {
			return v, true
		}
	case "data":
		if v, ok := s.vars["body"]; ok {
			return v, true
		}
	}
	if name == "connection" {
		return map[string]any{"parameters": map[string]any{}}, true
	}
	if objectVars[name] {
		return map[string]any{}, true
	}
	if knownVars[name] {
		return nil, true
	}
	return nil, false
}

// ResolveName implements interpreter.Activation.
func (s *Scope) ResolveName(name string) (any, bool) {
	if name == celfn.NowVar {
		return types.Timestamp{Time: s.Now()}, true
	}
	for i := range s.adapted {
		if s.adapted[i].name == name {
			return s.adapted[i].val, true
		}
	}
	v, ok := s.Lookup(name)
	if !ok {
		return nil, false
	}
	rv := types.DefaultTypeAdapter.NativeToValue(v)
	if s.adapted == nil {
		s.adapted = make([]namedVal, 0, 4)
	}
	s.adapted = append(s.adapted, namedVal{name: name, val: rv})
	return rv, true
}

// Parent implements interpreter.Activation.
func (s *Scope) Parent() interpreter.Activation { return nil }

// plainDocument is every variable as one document, values as they are.
func (s *Scope) plainDocument() map[string]any {
	if s.pdoc != nil {
		return s.pdoc
	}
	_, hasData := s.vars["data"]
	_, hasBody := s.vars["body"]
	if s.extra == nil && hasData == hasBody {
		s.pdoc = s.vars // nothing to add; searches never modify the document
		return s.pdoc
	}
	m := make(map[string]any, len(s.vars)+len(s.extra)+2)
	for k, v := range s.vars {
		m[k] = v
	}
	for k, v := range s.extra {
		m[k] = v
	}
	if _, ok := m["body"]; !ok {
		if d, ok := m["data"]; ok {
			m["body"] = d
		}
	}
	if _, ok := m["data"]; !ok {
		if d, ok := m["body"]; ok {
			m["data"] = d
		}
	}
	s.pdoc = m
	return m
}

// jmesDocument is the variables as one JMESPath document with integers as float64. Only
// the variables in names are converted (each once per scope), or all of them with whole.
func (s *Scope) jmesDocument(names []string, whole bool) map[string]any {
	if s.jdoc == nil {
		s.jdoc = make(map[string]any, 4)
	}
	if whole {
		if !s.jdocWhole {
			for k, v := range s.plainDocument() {
				if _, done := s.jdoc[k]; !done {
					s.jdoc[k] = jmes.ToJMES(v)
				}
			}
			s.jdocWhole = true
		}
		return s.jdoc
	}
	for _, n := range names {
		if _, done := s.jdoc[n]; done {
			continue
		}
		if v, ok := s.plainDocument()[n]; ok {
			s.jdoc[n] = jmes.ToJMES(v)
		}
	}
	return s.jdoc
}
