package mapping

import (
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"

	"github.com/hookmap/hookmap/engine/celfn"
)

// fastPath is a CEL expression that only selects fields, the most common formula:
//
//	data.issue.id                     a variable and field selections (or ["key"] indexes)
//	headers[?"x-id"].orValue(null)    optional steps (.?f, [?"k"]) ending in orValue(literal)
//	data.issue.labels.map(l, l.name)  the map macro over such a path, selecting from each item
//
// Such expressions are walked directly over the plain values. Whenever the walk cannot
// give exactly CEL's answer (a missing key on a non-optional step, a value that is not a
// map, a non-plain value) it gives up and the expression is evaluated by CEL, which also
// produces the error message.
type fastPath struct {
	root   string
	steps  []fastStep
	def    any // the orValue literal
	hasDef bool
	// each, for the map macro: the path walked from each item of the list the path yields.
	each *fastPath
}

type fastStep struct {
	key      string
	optional bool
}

func fastPathOf(a *cel.Ast) *fastPath {
	e := a.NativeRep().Expr()
	if e.Kind() == ast.ComprehensionKind {
		return mapMacroOf(e)
	}
	return pathOf(e)
}

// mapMacroOf recognizes LIST.map(x, PATH) where LIST is a plain path and PATH a path from x:
// the comprehension whose accumulator starts as [], whose loop condition is true, whose
// step is accu + [PATH] and whose result is accu.
func mapMacroOf(e ast.Expr) *fastPath {
	c := e.AsComprehension()
	if c.HasIterVar2() {
		return nil
	}
	if c.AccuInit().Kind() != ast.ListKind || c.AccuInit().AsList().Size() != 0 {
		return nil
	}
	cond := c.LoopCondition()
	if cond.Kind() != ast.LiteralKind || cond.AsLiteral() != types.True {
		return nil
	}
	if r := c.Result(); r.Kind() != ast.IdentKind || r.AsIdent() != c.AccuVar() {
		return nil
	}
	step := c.LoopStep()
	if step.Kind() != ast.CallKind || step.AsCall().FunctionName() != operators.Add || len(step.AsCall().Args()) != 2 {
		return nil
	}
	acc, add := step.AsCall().Args()[0], step.AsCall().Args()[1]
	if acc.Kind() != ast.IdentKind || acc.AsIdent() != c.AccuVar() || add.Kind() != ast.ListKind || add.AsList().Size() != 1 {
		return nil
	}
	list := pathOf(c.IterRange())
	each := pathOf(add.AsList().Elements()[0])
	if list == nil || list.hasDef || each == nil || each.root != c.IterVar() {
		return nil
	}
	list.each = each
	return list
}

func pathOf(e ast.Expr) *fastPath {
	fp := &fastPath{}
	if e.Kind() == ast.CallKind && e.AsCall().FunctionName() == "orValue" && e.AsCall().IsMemberFunction() {
		call := e.AsCall()
		if len(call.Args()) != 1 || call.Args()[0].Kind() != ast.LiteralKind {
			return nil
		}
		def, err := celfn.ToPlain(call.Args()[0].AsLiteral())
		if err != nil {
			return nil
		}
		fp.def, fp.hasDef = def, true
		e = call.Target()
	}
	var rev []fastStep
	for {
		switch e.Kind() {
		case ast.SelectKind:
			sel := e.AsSelect()
			if sel.IsTestOnly() {
				return nil
			}
			rev = append(rev, fastStep{key: sel.FieldName()})
			e = sel.Operand()
			continue
		case ast.CallKind:
			call := e.AsCall()
			fn := call.FunctionName()
			if (fn != operators.Index && fn != operators.OptIndex && fn != operators.OptSelect) || len(call.Args()) != 2 {
				return nil
			}
			key := call.Args()[1]
			if key.Kind() != ast.LiteralKind {
				return nil
			}
			k, ok := key.AsLiteral().(types.String)
			if !ok {
				return nil
			}
			rev = append(rev, fastStep{key: string(k), optional: fn != operators.Index})
			e = call.Args()[0]
			continue
		case ast.IdentKind:
			if e.AsIdent() == celfn.NowVar {
				return nil
			}
			fp.root = e.AsIdent()
		default:
			return nil
		}
		break
	}
	anyOptional := false
	for i := len(rev) - 1; i >= 0; i-- {
		fp.steps = append(fp.steps, rev[i])
		anyOptional = anyOptional || rev[i].optional
	}
	// An optional chain without orValue yields an optional; orValue needs one.
	if anyOptional != fp.hasDef {
		return nil
	}
	return fp
}

// eval walks the path; ok is false when CEL must evaluate the expression instead.
func (fp *fastPath) eval(s *Scope) (any, bool) {
	if s.ctx.Err() != nil {
		return nil, false
	}
	root, ok := s.Lookup(fp.root)
	if !ok {
		return nil, false
	}
	v, ok := fp.walk(root)
	if !ok || fp.each == nil {
		return v, ok
	}
	list, isList := v.([]any)
	if !isList {
		return nil, false
	}
	out := make([]any, len(list))
	for i, item := range list {
		if i%256 == 255 && s.ctx.Err() != nil {
			return nil, false
		}
		if out[i], ok = fp.each.walk(item); !ok {
			return nil, false
		}
	}
	return out, true
}

// walk follows the steps from cur.
func (fp *fastPath) walk(cur any) (any, bool) {
	for _, st := range fp.steps {
		m, isMap := cur.(map[string]any)
		if !isMap {
			return nil, false
		}
		v, present := m[st.key]
		if !present {
			if st.optional {
				return deepCopy(fp.def), true
			}
			return nil, false
		}
		cur = v
	}
	switch cur.(type) {
	case nil, bool, int64, float64, string, map[string]any, []any:
		return cur, true
	}
	return nil, false
}

// fastConcat is a CEL expression that only concatenates string literals and plain
// selections (fastPath, without the map macro), the usual way to build a type or an id:
//
//	"issue." + data.action      data.repo.owner + "/" + data.repo.name
//
// Such expressions are walked directly when every selection yields a string; otherwise
// (a number, a list, a missing key) CEL evaluates them, for its answer or its error. Only
// expressions whose cost is bounded at load use it: CEL's cost limit never stops them.
type fastConcat struct {
	parts []concatPart
}

// concatPart is a literal (path nil) or a selection.
type concatPart struct {
	lit  string
	path *fastPath
}

func fastConcatOf(a *cel.Ast) *fastConcat {
	fc := &fastConcat{}
	var walk func(e ast.Expr) bool
	walk = func(e ast.Expr) bool {
		if e.Kind() == ast.CallKind {
			if call := e.AsCall(); call.FunctionName() == operators.Add && !call.IsMemberFunction() && len(call.Args()) == 2 {
				return walk(call.Args()[0]) && walk(call.Args()[1])
			}
		}
		if e.Kind() == ast.LiteralKind {
			lit, ok := e.AsLiteral().(types.String)
			fc.parts = append(fc.parts, concatPart{lit: string(lit)})
			return ok
		}
		p := pathOf(e)
		fc.parts = append(fc.parts, concatPart{path: p})
		return p != nil
	}
	if !walk(a.NativeRep().Expr()) || len(fc.parts) < 2 {
		return nil
	}
	return fc
}

// eval concatenates the parts; ok is false when CEL must evaluate the expression instead.
func (fc *fastConcat) eval(s *Scope) (string, bool) {
	if s.ctx.Err() != nil {
		return "", false
	}
	var b strings.Builder
	for _, p := range fc.parts {
		if p.path == nil {
			b.WriteString(p.lit)
			continue
		}
		root, ok := s.Lookup(p.path.root)
		if !ok {
			return "", false
		}
		v, ok := p.path.walk(root)
		str, isStr := v.(string)
		if !ok || !isStr {
			return "", false
		}
		b.WriteString(str)
	}
	return b.String(), true
}
