package mapping

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"go.yaml.in/yaml/v3"

	"github.com/hookmap/hookmap/engine/celfn"
	"github.com/hookmap/hookmap/engine/jmes"
	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/engine/yamlsrc"
)

// Formula keys.
const (
	KeyCEL      = "$cel"
	KeyJMESPath = "$jmespath"
	KeyVar      = "$var"
	KeyTpl      = "$tpl"
	KeyLiteral  = "$literal"
)

// SupportedKeys lists the formula keys, for messages.
const SupportedKeys = "$cel, $jmespath, $var, $tpl, $literal"

// Compiler compiles the mapping values of one file in one environment. Problems are
// collected in Problems; Compile always returns a usable Value.
type Compiler struct {
	Env  *Env
	File *yamlsrc.File
	Path string // the file's path, for evaluation errors

	Problems []yamlsrc.Problem
}

func (c *Compiler) problemAt(n *yaml.Node, off int, format string, args ...any) {
	p := yamlsrc.Problem{Message: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Col = n.Line, n.Column
		if c.File != nil {
			p.Line, p.Col = c.File.ValuePos(n, off)
		}
	}
	c.Problems = append(c.Problems, p)
}

func (c *Compiler) problem(n *yaml.Node, format string, args ...any) {
	c.Problems = append(c.Problems, yamlsrc.At(n, format, args...))
}

func (c *Compiler) src(n *yaml.Node) source { return source{path: c.Path, file: c.File, node: n} }

// Value is a compiled mapping value.
type Value struct {
	root node
}

// Eval evaluates v in scope s and returns a plain value.
func (v *Value) Eval(s *Scope) (any, error) {
	if v == nil || v.root == nil {
		return nil, nil
	}
	out, err := v.root.eval(s)
	if err != nil {
		return nil, err
	}
	if out == omitted {
		return nil, nil
	}
	return out, nil
}

// Const reports whether v has no formula, and if so its value.
func (v *Value) Const() (any, bool) {
	if v == nil || v.root == nil {
		return nil, true
	}
	if c, ok := v.root.(constNode); ok {
		return c.v, true
	}
	return nil, false
}

// Keys returns the keys of a mapping value written as a YAML mapping (nil otherwise).
func (v *Value) Keys() []string {
	if v == nil {
		return nil
	}
	switch t := v.root.(type) {
	case *mapNode:
		return append([]string(nil), t.keys...)
	case constNode:
		if m, ok := t.v.(map[string]any); ok {
			return value.SortedKeys(m)
		}
	}
	return nil
}

// IsMapping reports whether v is written as a YAML mapping (not a formula).
func (v *Value) IsMapping() bool {
	if v == nil {
		return false
	}
	switch t := v.root.(type) {
	case *mapNode:
		return true
	case constNode:
		_, ok := t.v.(map[string]any)
		return ok
	}
	return false
}

// Compile compiles a mapping value. A nil node is the null value.
func (c *Compiler) Compile(n *yaml.Node) *Value {
	budget := yamlsrc.MaxNodes
	return &Value{root: c.compile(n, &budget, 0)}
}

func (c *Compiler) compile(n *yaml.Node, budget *int, depth int) node {
	*budget--
	if *budget < 0 || depth > 200 {
		if *budget == -1 || depth == 201 {
			c.problem(n, "mapping value too large or too deeply nested")
		}
		return constNode{}
	}
	r := yamlsrc.Resolve(n)
	if r == nil {
		return constNode{}
	}
	switch r.Kind {
	case yaml.ScalarNode:
		v, err := yamlsrc.Scalar(r)
		if err != nil {
			c.problem(r, "%s", err.Error())
		}
		return constNode{v: v}
	case yaml.SequenceNode:
		items := make([]node, len(r.Content))
		allConst := true
		for i, e := range r.Content {
			items[i] = c.compile(e, budget, depth+1)
			if _, ok := items[i].(constNode); !ok {
				allConst = false
			}
		}
		if allConst {
			l := make([]any, len(items))
			for i, it := range items {
				l[i] = it.(constNode).v
			}
			return constNode{v: l}
		}
		return &listNode{items: items}
	case yaml.MappingNode:
		pairs, probs := yamlsrc.Pairs(r)
		c.Problems = append(c.Problems, probs...)
		var dollar []yamlsrc.Pair
		for _, p := range pairs {
			if strings.HasPrefix(p.Key, "$") {
				dollar = append(dollar, p)
			}
		}
		if len(dollar) > 0 {
			return c.formula(r, pairs, dollar, budget, depth)
		}
		m := &mapNode{keys: make([]string, len(pairs)), vals: make([]node, len(pairs))}
		sort.Slice(pairs, func(i, j int) bool { return pairs[i].Key < pairs[j].Key })
		allConst := true
		for i, p := range pairs {
			m.keys[i] = p.Key
			m.vals[i] = c.compile(p.Value, budget, depth+1)
			if _, ok := m.vals[i].(constNode); !ok {
				allConst = false
			}
		}
		if allConst {
			cm := make(map[string]any, len(pairs))
			for i, k := range m.keys {
				cm[k] = m.vals[i].(constNode).v
			}
			return constNode{v: cm}
		}
		return m
	}
	c.problem(r, "unsupported YAML node")
	return constNode{}
}

// jmesRootRe matches an expression that starts with a field of the root document (a
// variable), e.g. data.issue.id, headers."x-id", items[0].
var jmesRootRe = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:$|[.\[|])`)

func isFormulaKey(k string) bool {
	switch k {
	case KeyCEL, KeyJMESPath, KeyVar, KeyTpl, KeyLiteral:
		return true
	}
	return false
}

func (c *Compiler) formula(m *yaml.Node, pairs, dollar []yamlsrc.Pair, budget *int, depth int) node {
	for _, p := range dollar {
		if !isFormulaKey(p.Key) {
			c.problem(p.KeyNode, "unsupported formula key %q: the supported ones are %s (wrap data whose keys start with $ in {$literal: ...})", p.Key, SupportedKeys)
			return constNode{}
		}
	}
	if len(pairs) > 1 {
		var others []string
		for _, p := range pairs {
			if p.Key != dollar[0].Key {
				others = append(others, p.Key)
			}
		}
		c.problem(dollar[0].KeyNode, "a formula must be the only key of its mapping: %s is next to %s", dollar[0].Key, strings.Join(others, ", "))
		return constNode{}
	}
	p := dollar[0]
	switch p.Key {
	case KeyLiteral:
		v, err := yamlsrc.Plain(p.Value)
		if err != nil {
			c.problem(p.Value, "$literal: %s", err.Error())
		}
		return constNode{v: v}
	case KeyCEL:
		expr, n, ok := c.exprText(p)
		if !ok {
			return constNode{}
		}
		if cn := c.compileCEL(expr, n, false); cn != nil {
			return cn
		}
		return constNode{}
	case KeyJMESPath:
		expr, n, ok := c.exprText(p)
		if !ok {
			return constNode{}
		}
		e, err := jmes.Compile(expr)
		if err != nil {
			off := 0
			var se *jmes.SyntaxError
			if errors.As(err, &se) {
				off = byteToRune(expr, se.Offset)
			}
			c.problemAt(n, off, "%s", err.Error())
			return constNode{}
		}
		if m := jmesRootRe.FindStringSubmatch(expr); m != nil && c.Env != nil && !c.Env.Has(m[1]) {
			c.problem(n, "$jmespath %q: unknown variable %q (variables here: %s)", expr, m[1], strings.Join(c.Env.Names(), ", "))
			return constNode{}
		}
		names, whole := jmes.RootNames(expr)
		plain := !jmes.NumberSensitive(expr)
		weight := uint64(clockEvery) // converts the variables it names: look at the clock first
		if plain {
			weight = jmesPlainWeight
		}
		return &jmesNode{expr: e, src: c.src(n), plain: plain, weight: weight, names: names, whole: whole}
	case KeyVar:
		expr, n, ok := c.exprText(p)
		if !ok {
			return constNode{}
		}
		vn, err := parseLocator(expr)
		if err != nil {
			c.problem(n, "$var %q: %s", expr, err.Error())
			return constNode{}
		}
		if len(vn.path) > 0 && c.Env != nil && !c.Env.Has(vn.path[0].name) {
			c.problem(n, "$var %q: unknown variable %q (variables here: %s)", expr, vn.path[0].name, strings.Join(c.Env.Names(), ", "))
			return constNode{}
		}
		return vn
	case KeyTpl:
		return c.compileTpl(p, budget, depth)
	}
	return constNode{}
}

func (c *Compiler) exprText(p yamlsrc.Pair) (string, *yaml.Node, bool) {
	n := yamlsrc.Resolve(p.Value)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		c.problem(p.KeyNode, "%s needs an expression string, got %s", p.Key, yamlsrc.KindName(p.Value))
		return "", nil, false
	}
	if strings.TrimSpace(n.Value) == "" {
		c.problem(n, "%s: empty expression", p.Key)
		return "", nil, false
	}
	return n.Value, n, true
}

func byteToRune(s string, off int) int {
	if off > len(s) {
		off = len(s)
	}
	if off < 0 {
		return 0
	}
	return len([]rune(s[:off]))
}

// CompileCEL compiles a bare CEL expression held in scalar n (e.g. a `when` condition).
// With wantBool the expression must be of type bool (or dyn). It returns nil on problems.
func (c *Compiler) CompileCEL(n *yaml.Node, wantBool bool) *CEL {
	r := yamlsrc.Resolve(n)
	if r == nil || r.Kind != yaml.ScalarNode || r.ShortTag() == "!!null" || strings.TrimSpace(r.Value) == "" {
		c.problem(n, "expected a CEL expression string, got %s", yamlsrc.KindName(n))
		return nil
	}
	cn := c.compileCEL(r.Value, r, wantBool)
	if cn == nil {
		return nil
	}
	return &CEL{n: cn}
}

func (c *Compiler) compileCEL(expr string, n *yaml.Node, wantBool bool) *celNode {
	if c.Env == nil {
		c.problem(n, "CEL is not available here")
		return nil
	}
	env := c.Env.cel
	compiles.Add(1)
	parsed, iss := env.Parse(expr)
	if iss.Err() != nil {
		c.celIssues(expr, n, "CEL syntax error: ", iss.Errors())
		return nil
	}
	checked, iss := env.Check(parsed)
	if iss.Err() != nil {
		c.celIssues(expr, n, "CEL: ", iss.Errors())
		return nil
	}
	if wantBool {
		t := checked.OutputType()
		if !t.IsExactType(types.BoolType) && !t.IsExactType(types.DynType) {
			c.problemAt(n, 0, "CEL: the condition must be a bool, this expression is a %s", t.String())
			return nil
		}
	}
	c.checkJMESPathCalls(checked, n)
	// An expression whose worst-case cost is bounded below the limit at compile time (no
	// comprehension, every input assumed as large as MaxInputSize) runs without runtime
	// cost tracking; every other one is tracked, limited and interruptible.
	bounded, est := staticallyBounded(env, checked)
	var opts []cel.ProgramOption
	if bounded {
		opts = []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	} else {
		opts = []cel.ProgramOption{
			cel.CostLimit(CostLimit),
			celfn.CostTracking(),
			cel.InterruptCheckFrequency(InterruptCheckFrequency),
			cel.EvalOptions(cel.OptOptimize),
		}
	}
	prg, err := env.Program(checked, opts...)
	if err != nil {
		c.problemAt(n, 0, "CEL: %s", err.Error())
		return nil
	}
	weight := uint64(clockEvery) // tracked: look at the clock before it starts
	if bounded {
		weight = min(est, clockEvery)
	}
	cn := &celNode{expr: expr, prg: prg, bounded: bounded, weight: weight, loops: loops(checked), fast: fastPathOf(checked),
		idents: identsOf(checked), info: checked.NativeRep().SourceInfo(), src: c.src(n)}
	if bounded {
		cn.concat = fastConcatOf(checked)
	}
	return cn
}

// loops reports whether an expression has a comprehension that iterates (cel.bind is a
// comprehension over an empty list, which never does): only those check for cancellation
// while they run.
func loops(a *cel.Ast) bool {
	found := false
	ast.PreOrderVisit(a.NativeRep().Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() != ast.ComprehensionKind {
			return
		}
		r := e.AsComprehension().IterRange()
		if r.Kind() == ast.ListKind && len(r.AsList().Elements()) == 0 {
			return
		}
		found = true
	}))
	return found
}

// MaxInputSize is the size (bytes of a string, elements of a list or map) assumed for every
// input when estimating an expression's worst-case cost at compile time.
const MaxInputSize = 1 << 20

type sizeBound struct{}

func (sizeBound) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

func (sizeBound) EstimateSize(cost.AstNode) *cost.SizeEstimate {
	s := cost.RangedSizeEstimate(0, MaxInputSize)
	return &s
}

// staticallyBounded reports whether an expression's cost is bounded below CostLimit at
// load, and the bound.
func staticallyBounded(env *cel.Env, a *cel.Ast) (bool, uint64) {
	hasComprehension := false
	ast.PreOrderVisit(a.NativeRep().Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() == ast.ComprehensionKind {
			hasComprehension = true
		}
	}))
	if hasComprehension {
		return false, 0
	}
	est, err := env.EstimateCost(a, sizeBound{})
	if err != nil || est.Max > CostLimit {
		return false, 0
	}
	return true, est.Max
}

func (c *Compiler) celIssues(expr string, n *yaml.Node, prefix string, errs []*common.Error) {
	for _, e := range errs {
		off := lineColToOffset(expr, e.Location.Line(), e.Location.Column())
		msg := e.Message
		msg = strings.TrimSuffix(msg, " (in container '')")
		if strings.HasPrefix(msg, "undeclared reference to") && c.Env != nil {
			msg += " (variables here: " + strings.Join(append(c.Env.Names(), "now"), ", ") + ")"
		}
		if strings.HasPrefix(prefix, "CEL syntax") {
			msg = strings.TrimPrefix(msg, "Syntax error: ")
		}
		c.problemAt(n, off, "%s%s", prefix, msg)
	}
}

// lineColToOffset converts a CEL location (1-based line, 0-based column in code points)
// to a rune offset inside expr.
func lineColToOffset(expr string, line, col int) int {
	if line < 1 {
		return 0
	}
	rs := []rune(expr)
	off := 0
	for l := 1; l < line && off < len(rs); off++ {
		if rs[off] == '\n' {
			l++
		}
	}
	off += col
	if off > len(rs) {
		off = len(rs)
	}
	if off < 0 {
		off = 0
	}
	return off
}

// checkJMESPathCalls reports syntax errors of constant expressions given to jmespath().
func (c *Compiler) checkJMESPathCalls(a *cel.Ast, n *yaml.Node) {
	native := a.NativeRep()
	info := native.SourceInfo()
	ast.PreOrderVisit(native.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() != ast.CallKind {
			return
		}
		call := e.AsCall()
		if call.FunctionName() != "jmespath" || len(call.Args()) != 2 {
			return
		}
		arg := call.Args()[1]
		if arg.Kind() != ast.LiteralKind {
			return
		}
		s, ok := arg.AsLiteral().(types.String)
		if !ok {
			return
		}
		if _, err := jmes.Compile(string(s)); err != nil {
			off := 0
			if r, ok := info.GetOffsetRange(arg.ID()); ok {
				off = int(r.Start)
			}
			c.problemAt(n, off, "jmespath(): %s", err.Error())
		}
	}))
}

// CEL is a compiled bare CEL expression.
type CEL struct{ n *celNode }

// Eval evaluates the expression and returns a plain value.
func (e *CEL) Eval(s *Scope) (any, error) {
	v, err := e.n.eval(s)
	if v == omitted {
		v = nil
	}
	return v, err
}

// EvalBool evaluates a condition; a non-bool result is an error.
func (e *CEL) EvalBool(s *Scope) (bool, error) {
	v, err := e.Eval(s)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, e.n.src.errAt(0, nil, "the condition evaluated to %T, want a bool", v)
	}
	return b, nil
}
