package outgoing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hookmap/hookmap/engine/httpbody"
	"github.com/hookmap/hookmap/engine/mapping"
	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/engine/yamlsrc"
	"github.com/hookmap/hookmap/server/store"
)

// MaxChain is the most webhooks one trigger calls: the triggered one and those it
// continues into.
const MaxChain = 8

// Chain variables: what a chain's mapping values see.
const (
	VarResponse = "response" // {status, statusCode, headers, data, error} of the call just made
	VarTrigger  = "trigger"  // {data, headers, query}: the caller's TriggerWebhook input
)

// Next field paths, as violations name them.
const (
	FieldNext            = "next"
	fieldNextWebhookID   = "next.webhook_id"
	fieldNextWhen        = "next.when"
	fieldNextData        = "next.data"
	fieldNextHeaders     = "next.headers"
	fieldNextQueryParams = "next.query_params"
)

// chainEnv is the mapping environment of a chain's values.
func chainEnv() (*mapping.Env, error) { return mapping.NewEnv(VarResponse, VarTrigger) }

// compiledNext is a registration's next step, compiled once.
type compiledNext struct {
	webhookID string
	when      *mapping.Value // a condition written as a mapping value; nil: see whenCEL
	whenCEL   *mapping.CEL   // a condition written as a bare CEL string
	data      *mapping.Value // nil: no body
	headers   *mapping.Value
	query     *mapping.Value
}

// NextProblem is a problem of a chain's mapping value at a position of its YAML (Line 0
// when the value did not come from a file).
type NextProblem struct {
	Field     string // FieldNext…, e.g. "next.data"
	Line, Col int
	Message   string
}

// CompileNextNode compiles the mapping values of a next step read from a YAML file (the
// webhooks file's loader uses it to report problems at their line and column). nodes
// maps "when", "data", "headers" and "query_params" to their YAML values.
func CompileNextNode(file *yamlsrc.File, path string, nodes map[string]*yaml.Node) []NextProblem {
	_, probs := compileNext("", file, path, nodes)
	return probs
}

// compileNext compiles the values of a next step; nodes as for CompileNextNode.
func compileNext(webhookID string, file *yamlsrc.File, path string, nodes map[string]*yaml.Node) (*compiledNext, []NextProblem) {
	env, err := chainEnv()
	if err != nil {
		return nil, []NextProblem{{Field: FieldNext, Message: err.Error()}}
	}
	c := &compiledNext{webhookID: webhookID}
	var probs []NextProblem
	compile := func(field string, n *yaml.Node, asCEL bool) (*mapping.Value, *mapping.CEL) {
		if n == nil || yamlsrc.IsNull(n) {
			return nil, nil
		}
		mc := &mapping.Compiler{Env: env, File: file, Path: path}
		var v *mapping.Value
		var cel *mapping.CEL
		if r := yamlsrc.Resolve(n); asCEL && r.Kind == yaml.ScalarNode && r.ShortTag() == "!!str" {
			cel = mc.CompileCEL(r, true)
		} else {
			v = mc.Compile(n)
		}
		for _, p := range mc.Problems {
			probs = append(probs, NextProblem{Field: field, Line: p.Line, Col: p.Col, Message: p.Message})
		}
		return v, cel
	}
	c.when, c.whenCEL = compile(fieldNextWhen, nodes["when"], true)
	c.data, _ = compile(fieldNextData, nodes["data"], false)
	c.headers, _ = compile(fieldNextHeaders, nodes["headers"], false)
	c.query, _ = compile(fieldNextQueryParams, nodes["query_params"], false)
	for field, v := range map[string]*mapping.Value{fieldNextHeaders: c.headers, fieldNextQueryParams: c.query} {
		if cv, isConst := v.Const(); v != nil && isConst {
			if _, ok := cv.(map[string]any); !ok && cv != nil {
				probs = append(probs, NextProblem{Field: field, Message: "must be an object of name: value, not " + value.KindName(cv)})
			}
		}
	}
	if cv, isConst := c.when.Const(); c.when != nil && isConst {
		if _, ok := cv.(bool); !ok {
			probs = append(probs, NextProblem{Field: fieldNextWhen, Message: "must be a boolean, a CEL condition or a mapping value that gives a boolean, not " + value.KindName(cv)})
		}
	}
	return c, probs
}

// nodeOf turns a plain value into a YAML node for the mapping compiler.
func nodeOf(v any) (*yaml.Node, error) {
	if v == nil {
		return nil, nil
	}
	n := &yaml.Node{}
	if err := n.Encode(v); err != nil {
		return nil, err
	}
	return n, nil
}

// compileStoredNext compiles a next step held as plain values (a registration's or the
// store's).
func compileStoredNext(n *store.WebhookNext) (*compiledNext, []NextProblem) {
	nodes := map[string]*yaml.Node{}
	var probs []NextProblem
	for key, v := range map[string]any{"when": n.When, "data": n.Data, "headers": n.Headers, "query_params": n.QueryParams} {
		node, err := nodeOf(v)
		if err != nil {
			probs = append(probs, NextProblem{Field: "next." + key, Message: err.Error()})
			continue
		}
		nodes[key] = node
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return compileNext(n.WebhookID, nil, "", nodes)
}

// validateNext checks a registration's next step without the store: the id and the
// mapping values.
func (r *Registration) validateNext(v *violations) {
	n := r.Next
	if n == nil {
		return
	}
	switch {
	case n.WebhookID == "":
		v.add(fieldNextWebhookID, "required")
	case !idPattern.MatchString(n.WebhookID):
		v.add(fieldNextWebhookID, "not a webhook id")
	case n.WebhookID == r.ID:
		v.add(fieldNextWebhookID, "a webhook cannot continue into itself")
	}
	_, probs := compileStoredNext(n)
	for _, p := range probs {
		v.add(p.Field, "%s", p.Message)
	}
}

// checkChain checks, against the workspace's stored webhooks, that the chain r would be
// part of has no cycle and at most MaxChain webhooks, and that r's next webhook exists.
// Callers hold s.chainMu until they have stored r.
func (s *Sender) checkChain(ctx context.Context, workspaceID string, r *Registration, v *violations) error {
	if r.Next == nil || len(*v) > 0 {
		return nil
	}
	ws, err := s.allWebhooks(ctx, workspaceID)
	if err != nil {
		return err
	}
	next := map[string]string{} // webhook id → its next webhook's id
	exists := map[string]bool{}
	for _, w := range ws {
		exists[w.ID] = true
		if w.Next != nil {
			next[w.ID] = w.Next.WebhookID
		}
	}
	if !exists[r.Next.WebhookID] {
		v.add(fieldNextWebhookID, "no webhook %q in the workspace (register it first)", r.Next.WebhookID)
		return nil
	}
	next[r.ID] = r.Next.WebhookID
	// A cycle through r: following next from r comes back to a webhook already seen.
	path := []string{r.ID}
	seen := map[string]bool{r.ID: true}
	for id := next[r.ID]; id != ""; id = next[id] {
		path = append(path, id)
		if seen[id] {
			v.add(fieldNextWebhookID, "the chain would loop: %s", strings.Join(path, " → "))
			return nil
		}
		seen[id] = true
		if len(path) > MaxChain+1 {
			break
		}
	}
	// The longest chain through r: the longest run of webhooks leading to r, then r's own.
	longest := []string(nil)
	for start := range next {
		chain := []string{start}
		through := start == r.ID
		for id := next[start]; id != "" && len(chain) <= MaxChain; id = next[id] {
			chain = append(chain, id)
			through = through || id == r.ID
		}
		if through && len(chain) > len(longest) {
			longest = chain
		}
	}
	if len(longest) > MaxChain {
		v.add(fieldNextWebhookID, "the chain %s… would call more than %d webhooks", strings.Join(longest[:MaxChain], " → "), MaxChain)
	}
	return nil
}

// referrers returns the webhooks of the workspace that continue into id.
func (s *Sender) referrers(ctx context.Context, workspaceID, id string) ([]string, error) {
	ws, err := s.allWebhooks(ctx, workspaceID)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, w := range ws {
		if w.Next != nil && w.Next.WebhookID == id {
			out = append(out, w.ID)
		}
	}
	return out, nil
}

// allWebhooks returns every stored webhook of the workspace, page after page.
func (s *Sender) allWebhooks(ctx context.Context, workspaceID string) ([]*store.OutgoingWebhook, error) {
	var out []*store.OutgoingWebhook
	for p := (store.Page{Size: 1000}); ; {
		ws, tok, err := s.cfg.Store.ListOutgoingWebhooks(ctx, workspaceID, p)
		if err != nil {
			return nil, err
		}
		out = append(out, ws...)
		if tok == "" {
			return out, nil
		}
		p.Token = tok
	}
}

// nextCache keeps the compiled next steps of stored registrations, keyed by workspace,
// id and update time (an update compiles afresh).
type nextCache struct {
	mu sync.Mutex
	m  map[nextKey]*compiledNext
}

type nextKey struct {
	workspace, id string
	updated       time.Time
}

const maxCachedNext = 4096

func (c *nextCache) get(w *store.OutgoingWebhook) (*compiledNext, error) {
	k := nextKey{w.WorkspaceID, w.ID, w.UpdateTime}
	c.mu.Lock()
	cn, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return cn, nil
	}
	cn, probs := compileStoredNext(w.Next)
	if len(probs) > 0 {
		return nil, fmt.Errorf("%s: %s", probs[0].Field, probs[0].Message)
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedNext {
		c.m = map[nextKey]*compiledNext{}
	}
	c.m[k] = cn
	c.mu.Unlock()
	return cn, nil
}

// chainVars returns the variables of a chain's mapping values after a call.
func chainVars(res *Result, trigger map[string]any) map[string]any {
	status := int64(res.Status)
	return map[string]any{
		VarResponse: map[string]any{
			"status": status, "statusCode": status, "headers": httpbody.LowerHeaders(res.Header),
			"data": res.Data, "error": res.Error,
		},
		VarTrigger: trigger,
	}
}

// triggerVar is the trigger variable: the caller's input, header names lower case.
func triggerVar(t *Trigger) map[string]any {
	headers := make(map[string]any, len(t.Headers))
	for k, v := range t.Headers {
		headers[strings.ToLower(k)] = v
	}
	query := make(map[string]any, len(t.QueryParams))
	for k, v := range t.QueryParams {
		query[k] = v
	}
	return map[string]any{"data": t.Data, "headers": headers, "query": query}
}

// chainStop says why a chain did not go on, for the result's error message.
type chainStop struct{ msg string }

// nextTrigger decides whether the chain goes on after w answered res and builds the next
// call. It returns nil (and no error) when the condition says stop.
func (c *compiledNext) nextTrigger(ctx context.Context, w *store.OutgoingWebhook, res *Result, trigger map[string]any, timeout time.Duration) (*Trigger, *chainStop) {
	scope := mapping.NewScope(ctx, chainVars(res, trigger))
	scope.SetTimeout(timeout) // like a connector's mapping run (--eval-timeout)
	defer scope.Release()
	fail := func(field string, err error) *chainStop {
		msg := err.Error()
		var ee *mapping.EvalError
		if errors.As(err, &ee) {
			msg = ee.Message
		}
		return &chainStop{fmt.Sprintf("chain stopped after webhook %q: %s: %s", w.ID, field, msg)}
	}
	switch {
	case c.whenCEL != nil:
		ok, err := c.whenCEL.EvalBool(scope)
		if err != nil {
			return nil, fail(fieldNextWhen, err)
		}
		if !ok {
			return nil, nil
		}
	case c.when != nil:
		v, err := c.when.Eval(scope)
		if err != nil {
			return nil, fail(fieldNextWhen, err)
		}
		ok, isBool := v.(bool)
		if !isBool {
			return nil, fail(fieldNextWhen, fmt.Errorf("gave %s, want a boolean", value.KindName(v)))
		}
		if !ok {
			return nil, nil
		}
	case res.Error:
		return nil, nil
	}
	t := &Trigger{WebhookID: c.webhookID}
	if c.data != nil {
		v, err := c.data.Eval(scope)
		if err != nil {
			return nil, fail(fieldNextData, err)
		}
		t.Data = v
	}
	var err error
	if t.Headers, err = stringMap(c.headers, scope); err != nil {
		return nil, fail(fieldNextHeaders, err)
	}
	if t.QueryParams, err = stringMap(c.query, scope); err != nil {
		return nil, fail(fieldNextQueryParams, err)
	}
	return t, nil
}

// stringMap evaluates an object mapping value into strings; null entries are left out.
func stringMap(v *mapping.Value, scope *mapping.Scope) (map[string]string, error) {
	if v == nil {
		return nil, nil
	}
	out, err := v.Eval(scope)
	if err != nil || out == nil {
		return nil, err
	}
	m, ok := out.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("gave %s, want an object of name: value", value.KindName(out))
	}
	strs := make(map[string]string, len(m))
	for k, e := range m {
		if e == nil {
			continue
		}
		if _, isMap := e.(map[string]any); isMap {
			return nil, fmt.Errorf("%s is an object, want a string", k)
		}
		s, err := mapping.Text(e)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		strs[k] = s
	}
	return strs, nil
}

// runChain continues a trigger whose first call answered res into the webhooks it chains
// to, each call recorded with its hop and the first call's reference id. It returns the
// last call's result under the first reference id.
func (s *Sender) runChain(ctx context.Context, workspaceID string, first *store.OutgoingWebhook, t *Trigger, res *Result) *Result {
	trigger := triggerVar(t)
	chainRef := res.ReferenceID
	visited := map[string]bool{first.ID: true}
	w := first
	for hop := 2; w.Next != nil; hop++ {
		stop := func(msg string) *Result {
			s.cfg.Logger.WarnContext(ctx, "outgoing webhook chain stopped", "workspace", workspaceID, "webhook_id", w.ID,
				"reference_id", chainRef, "hop", hop-1, "reason", msg)
			res.Error, res.ErrorMessage = true, msg
			return res
		}
		if ctx.Err() != nil {
			return stop(fmt.Sprintf("chain stopped after webhook %q: the caller went away", w.ID))
		}
		cn, err := s.nexts.get(w)
		if err != nil {
			return stop(fmt.Sprintf("chain stopped after webhook %q: %v", w.ID, err))
		}
		nt, why := cn.nextTrigger(ctx, w, res, trigger, s.cfg.EvalTimeout)
		if why != nil {
			return stop(why.msg)
		}
		if nt == nil {
			return res // the condition said stop: the last answer is the chain's
		}
		switch {
		case visited[nt.WebhookID]:
			return stop(fmt.Sprintf("chain stopped after webhook %q: webhook %q was already called (a cycle)", w.ID, nt.WebhookID))
		case hop > MaxChain:
			return stop(fmt.Sprintf("chain stopped after webhook %q: a chain calls at most %d webhooks", w.ID, MaxChain))
		}
		visited[nt.WebhookID] = true
		nw, err := s.cfg.Store.GetOutgoingWebhook(ctx, workspaceID, nt.WebhookID)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return stop(fmt.Sprintf("chain stopped after webhook %q: its next webhook %q no longer exists", w.ID, nt.WebhookID))
			}
			return stop(fmt.Sprintf("chain stopped after webhook %q: %v", w.ID, err))
		}
		p, err := s.prepare(nw, nt)
		if err != nil {
			return stop(fmt.Sprintf("chain stopped after webhook %q: the call of webhook %q does not fit it: %v", w.ID, nw.ID, err))
		}
		next := s.call(ctx, workspaceID, p, chainRef, hop)
		next.ReferenceID = chainRef
		res, w = next, nw
	}
	return res
}
