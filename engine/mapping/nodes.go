package mapping

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	"github.com/hookmap/hookmap/engine/celfn"
	"github.com/hookmap/hookmap/engine/jmes"
	"github.com/hookmap/hookmap/engine/value"
)

type node interface {
	eval(s *Scope) (any, error)
}

type omittedValue struct{}

// omitted is what a CEL formula yields for optional.none(): a map leaves the entry out.
var omitted any = omittedValue{}

// constNode is a value without formulas. Maps and lists are copied on every evaluation so
// that callers may change results freely.
type constNode struct{ v any }

func (c constNode) eval(*Scope) (any, error) { return deepCopy(c.v), nil }

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(t))
		for i, e := range t {
			l[i] = deepCopy(e)
		}
		return l
	default:
		return v
	}
}

type mapNode struct {
	keys []string
	vals []node
}

func (m *mapNode) eval(s *Scope) (any, error) {
	out := make(map[string]any, len(m.keys))
	for i, k := range m.keys {
		v, err := m.vals[i].eval(s)
		if err != nil {
			return nil, err
		}
		if v == omitted {
			continue
		}
		out[k] = v
	}
	return out, nil
}

type listNode struct{ items []node }

func (l *listNode) eval(s *Scope) (any, error) {
	out := make([]any, len(l.items))
	for i, it := range l.items {
		v, err := it.eval(s)
		if err != nil {
			return nil, err
		}
		if v == omitted {
			v = nil
		}
		out[i] = v
	}
	return out, nil
}

type celNode struct {
	expr    string
	prg     cel.Program
	bounded bool        // cost bounded at compile time: no runtime tracking
	weight  uint64      // the work it may do, for the deadline's looks at the clock
	loops   bool        // has a comprehension that iterates, which can stop at the deadline
	fast    *fastPath   // set for plain selections, walked without CEL (see fastPathOf)
	concat  *fastConcat // set for concatenations of literals and selections (fastConcatOf)
	idents  []string    // the identifiers of the expression (identsOf), for Reads
	info    *ast.SourceInfo
	src     source
}

func (c *celNode) eval(s *Scope) (any, error) {
	if c.fast != nil {
		if v, ok := c.fast.eval(s); ok {
			return v, nil
		}
		// a missing key or an unusual value: let CEL evaluate it and report the error
	}
	if stop := s.stop(c.weight); stop != nil {
		return nil, c.src.stopped(stop)
	}
	if c.concat != nil {
		if v, ok := c.concat.eval(s); ok {
			return v, nil
		}
	}
	var out ref.Val
	var err error
	if c.bounded {
		out, _, err = c.prg.Eval(s) // not interruptible, but its cost is bounded
		if err != nil {
			return nil, c.evalError(s.ctx, err)
		}
	} else {
		ctx := s.ctx
		if c.loops {
			ctx = s.evalContext() // a context that ends at the deadline, for the loop's checks
		}
		var det *cel.EvalDetails
		out, det, err = c.prg.ContextEval(ctx, s)
		if det != nil && det.ActualCost() != nil {
			s.addCost(*det.ActualCost())
		}
		if err != nil {
			return nil, c.evalError(ctx, err)
		}
	}
	if celfn.IsNone(out) {
		return omitted, nil
	}
	v, err := celfn.ToPlain(out)
	if err != nil {
		return nil, c.src.errAt(0, err, "cannot convert the result: %s", err.Error())
	}
	return v, nil
}

func (c *celNode) evalError(ctx context.Context, err error) error {
	var cancelled interpreter.EvalCancelledError
	if errors.As(err, &cancelled) {
		if cancelled.Cause == interpreter.CostLimitExceeded {
			return c.src.errAt(0, fmt.Errorf("%w: %w", ErrCostLimit, err), "CEL cost limit of %d exceeded: the expression does too much work for this input", CostLimit)
		}
		cause := context.Cause(ctx)
		if cause == nil {
			cause = err
		}
		return c.src.stopped(cause)
	}
	if ce := context.Cause(ctx); ce != nil {
		return c.src.stopped(ce)
	}
	off := 0
	var te *types.Err
	if errors.As(err, &te) && te.NodeID() != 0 && c.info != nil {
		if r, ok := c.info.GetOffsetRange(te.NodeID()); ok {
			off = int(r.Start)
		}
	}
	msg := err.Error()
	if key, ok := strings.CutPrefix(msg, "no such key: "); ok {
		off = keyOffset(c.expr, key, off)
	}
	return c.src.errAt(off, err, "%s", msg)
}

// keyOffset finds where key is selected (.key, ?.key, ["key"]) at or before the offset
// of the failing expression, so that the error points at the missing field.
func keyOffset(expr, key string, off int) int {
	rs := []rune(expr)
	end := min(len(rs), off+1+len([]rune(key)))
	prefix := string(rs[:end])
	best := -1
	for _, pat := range []string{"." + key, `"` + key + `"`, "'" + key + "'"} {
		if i := strings.LastIndex(prefix, pat); i > best {
			best = i
		}
	}
	if best < 0 {
		return off
	}
	return len([]rune(prefix[:best]))
}

type jmesNode struct {
	expr *jmes.Expr
	src  source
	// plain: the expression searches plain values as they are (see jmes.NumberSensitive).
	plain  bool
	weight uint64 // the work it may do, for the deadline's looks at the clock
	// names the expression may read from the root (all of them when whole).
	names []string
	whole bool
}

func (j *jmesNode) eval(s *Scope) (any, error) {
	if stop := s.stop(j.weight); stop != nil {
		return nil, j.src.stopped(stop) // a search cannot be interrupted: do not start one
	}
	var out any
	var err error
	if j.plain {
		out, err = j.expr.SearchRaw(s.plainDocument())
	} else {
		out, err = j.expr.Search(s.jmesDocument(j.names, j.whole))
	}
	if err != nil {
		return nil, j.src.errAt(0, err, "JMESPath: %s", err.Error())
	}
	return out, nil
}

// varNode is a $var locator: $.name.name[0]['name'].
type varNode struct {
	path []step
	src  string
}

type step struct {
	name  string
	index int
	isIdx bool
}

func parseLocator(s string) (*varNode, error) {
	if !strings.HasPrefix(s, "$") {
		return nil, errors.New(`a locator starts with "$", e.g. $.data.issue.id`)
	}
	v := &varNode{src: s}
	rest := s[1:]
	for rest != "" {
		switch rest[0] {
		case '.':
			rest = rest[1:]
			end := strings.IndexAny(rest, ".[")
			if end < 0 {
				end = len(rest)
			}
			name := rest[:end]
			if name == "" {
				return nil, errors.New("empty name after '.'")
			}
			v.path = append(v.path, step{name: name})
			rest = rest[end:]
		case '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, errors.New("missing ']'")
			}
			inner := strings.TrimSpace(rest[1:end])
			rest = rest[end+1:]
			if len(inner) >= 2 && (inner[0] == '\'' || inner[0] == '"') && inner[len(inner)-1] == inner[0] {
				v.path = append(v.path, step{name: inner[1 : len(inner)-1]})
				continue
			}
			i, err := strconv.Atoi(inner)
			if err != nil {
				return nil, fmt.Errorf("bad index [%s]: want a number or a quoted name", inner)
			}
			v.path = append(v.path, step{index: i, isIdx: true})
		default:
			return nil, fmt.Errorf("unexpected %q: use .name, [N] or ['name']", rest[:1])
		}
	}
	if len(v.path) > 0 && v.path[0].isIdx {
		return nil, errors.New("the first step must be a variable name, e.g. $.data")
	}
	return v, nil
}

// eval walks the path; a missing key or index yields null, as in integration.app. Results
// share the input's values (results are never mutated); only constants are copied.
func (v *varNode) eval(s *Scope) (any, error) {
	if len(v.path) == 0 {
		return s.plainDocument(), nil
	}
	cur, ok := s.Lookup(v.path[0].name)
	if !ok {
		return nil, nil
	}
	for _, st := range v.path[1:] {
		switch c := cur.(type) {
		case map[string]any:
			if st.isIdx {
				cur = c[strconv.Itoa(st.index)]
			} else {
				cur = c[st.name]
			}
		case []any:
			i := st.index
			if !st.isIdx {
				n, err := strconv.Atoi(st.name)
				if err != nil {
					return nil, nil
				}
				i = n
			}
			if i < 0 {
				i += len(c)
			}
			if i < 0 || i >= len(c) {
				return nil, nil
			}
			cur = c[i]
		default:
			return nil, nil
		}
	}
	return cur, nil // shared with the input, as CEL and JMESPath results are
}

// tplNode is a $tpl: a template with {{name}} placeholders filled from values.
type tplNode struct {
	parts  []tplPart
	values map[string]node
	src    source
}

type tplPart struct {
	text string
	name string // placeholder when non-empty
}

func (t *tplNode) eval(s *Scope) (any, error) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.name == "" {
			b.WriteString(p.text)
			continue
		}
		v, err := t.values[p.name].eval(s)
		if err != nil {
			return nil, err
		}
		str, err := Text(v)
		if err != nil {
			return nil, t.src.errAt(0, err, "$tpl value %s: %s", p.name, err.Error())
		}
		b.WriteString(str)
	}
	return b.String(), nil
}

// Text renders a plain value as text: strings as they are, null as "", numbers and
// booleans in JSON form, maps and lists as JSON.
func Text(v any) (string, error) {
	switch t := v.(type) {
	case nil, omittedValue:
		return "", nil
	case string:
		return t, nil
	case bool:
		return strconv.FormatBool(t), nil
	case int64:
		return strconv.FormatInt(t, 10), nil
	}
	b, err := value.Encode(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}
