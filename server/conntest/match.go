package conntest

import (
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/hookmap/hookmap/engine/mapping"
	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/engine/yamlsrc"
)

// Matcher keys: a map with exactly one of these keys (or a formula key) is a matcher.
const (
	keyMatch    = "$match"    // a string matching a regular expression (the whole string)
	keyType     = "$type"     // any value of a kind: string, number, integer, boolean, map, list, null
	keyAbsent   = "$absent"   // the key is not there
	keyIncludes = "$includes" // a map with at least these keys (maps inside it too)
)

var matcherKeys = []string{keyMatch, keyType, keyAbsent, keyIncludes}

var formulaKeys = []string{mapping.KeyCEL, mapping.KeyJMESPath, mapping.KeyVar, mapping.KeyTpl, mapping.KeyLiteral}

var typeNames = []string{"string", "number", "integer", "boolean", "map", "list", "null"}

// matcher checks one value of a result against what a test file expects.
type matcher interface {
	// match checks got (present is false when the key is absent), reporting each
	// difference through c at the expectation's line.
	match(c *checker, path string, got any, present bool)
}

// checker collects the failures of one step and evaluates formulas in its scope.
type checker struct {
	file  string
	scope func() *mapping.Scope
	fails []Failure
}

func (c *checker) fail(n *yaml.Node, format string, args ...any) {
	f := Failure{File: c.file, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		f.Line, f.Col = n.Line, n.Column
	}
	c.fails = append(c.fails, f)
}

// show renders a value for a message: compact JSON, cut at 200 bytes.
func show(v any, present bool) string {
	if !present {
		return "nothing"
	}
	b, err := value.Encode(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(b)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// equal compares plain values; numbers compare by value (1 == 1.0).
func equal(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equal(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	if fa, ok := number(a); ok {
		fb, ok := number(b)
		return ok && fa == fb
	}
	return a == b
}

func number(v any) (float64, bool) {
	switch t := v.(type) {
	case int64:
		return float64(t), true
	case int:
		return float64(t), true
	case float64:
		return t, true
	}
	return 0, false
}

func kindOf(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case int64, int:
		return "integer"
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1<<53 {
			return "integer"
		}
		return "number"
	case map[string]any:
		return "map"
	case []any:
		return "list"
	}
	return fmt.Sprintf("%T", v)
}

// scalarMatcher expects a constant.
type scalarMatcher struct {
	node *yaml.Node
	want any
}

func (m *scalarMatcher) match(c *checker, path string, got any, present bool) {
	if !present || !equal(m.want, got) {
		c.fail(m.node, "expected %s %s, got %s", path, show(m.want, true), show(got, present))
	}
}

// formulaMatcher expects the value of a formula over the test's variables.
type formulaMatcher struct {
	node *yaml.Node
	v    *mapping.Value
}

func (m *formulaMatcher) match(c *checker, path string, got any, present bool) {
	want, err := m.v.Eval(c.scope())
	if err != nil {
		c.fail(m.node, "cannot evaluate the expected %s: %s", path, err)
		return
	}
	if !present || !equal(want, got) {
		c.fail(m.node, "expected %s %s, got %s", path, show(want, true), show(got, present))
	}
}

type regexMatcher struct {
	node *yaml.Node
	re   *regexp.Regexp
	src  string
}

func (m *regexMatcher) match(c *checker, path string, got any, present bool) {
	s, ok := got.(string)
	if !present || !ok || !m.re.MatchString(s) {
		c.fail(m.node, "expected %s matching %s, got %s", path, m.src, show(got, present))
	}
}

type typeMatcher struct {
	node *yaml.Node
	typ  string
}

func (m *typeMatcher) match(c *checker, path string, got any, present bool) {
	k := kindOf(got)
	ok := present && (k == m.typ || (m.typ == "number" && k == "integer"))
	if !ok {
		c.fail(m.node, "expected %s of type %s, got %s", path, m.typ, show(got, present))
	}
}

type absentMatcher struct{ node *yaml.Node }

func (m *absentMatcher) match(c *checker, path string, got any, present bool) {
	if present {
		c.fail(m.node, "expected no %s, got %s", path, show(got, true))
	}
}

// mapMatcher expects a map: exactly these keys, or at least these (partial).
type mapMatcher struct {
	node    *yaml.Node
	keys    []string
	entries map[string]matcher
	partial bool
}

func (m *mapMatcher) match(c *checker, path string, got any, present bool) {
	gm, ok := got.(map[string]any)
	if !present || !ok {
		c.fail(m.node, "expected %s a map, got %s", path, show(got, present))
		return
	}
	for _, k := range m.keys {
		v, has := gm[k]
		m.entries[k].match(c, path+"."+k, v, has)
	}
	if m.partial {
		return
	}
	var extra []string
	for _, k := range value.SortedKeys(gm) {
		if _, listed := m.entries[k]; !listed {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		c.fail(m.node, "expected %s to have only %s, got also %s: %s (write {$includes: {...}} to check some keys only)",
			path, orNone(m.keys), strings.Join(extra, ", "), show(got, true))
	}
}

func orNone(keys []string) string {
	if len(keys) == 0 {
		return "no key"
	}
	return strings.Join(keys, ", ")
}

type listMatcher struct {
	node  *yaml.Node
	items []matcher
}

func (m *listMatcher) match(c *checker, path string, got any, present bool) {
	gl, ok := got.([]any)
	if !present || !ok {
		c.fail(m.node, "expected %s a list of %d, got %s", path, len(m.items), show(got, present))
		return
	}
	if len(gl) != len(m.items) {
		c.fail(m.node, "expected %s a list of %d, got %d: %s", path, len(m.items), len(gl), show(got, true))
		return
	}
	for i, it := range m.items {
		it.match(c, fmt.Sprintf("%s[%d]", path, i), gl[i], true)
	}
}

// containsMatcher expects a string containing a text (error messages).
type containsMatcher struct {
	node *yaml.Node
	text string
}

func (m *containsMatcher) match(c *checker, path string, got any, present bool) {
	s, _ := got.(string)
	if !present || !strings.Contains(s, m.text) {
		c.fail(m.node, "expected %s containing %q, got %s", path, m.text, show(got, present))
	}
}

// headerMatcher expects headers, by case-insensitive name; others are not checked.
type headerMatcher struct {
	node    *yaml.Node
	names   []string
	entries map[string]matcher
}

func (m *headerMatcher) match(c *checker, path string, got any, present bool) {
	h, _ := got.(http.Header)
	for _, name := range m.names {
		vals := h.Values(name)
		m.entries[name].match(c, path+"."+name, strings.Join(vals, ", "), len(vals) > 0)
	}
}

// matcher compiles an expected value: constants, maps (exact unless partial), lists,
// formulas and the $match, $type, $absent and $includes matchers.
func (r *reader) matcher(n *yaml.Node, partial bool) matcher {
	rn := yamlsrc.Resolve(n)
	if rn == nil {
		return &scalarMatcher{node: n}
	}
	switch rn.Kind {
	case yaml.MappingNode:
		ps := r.pairs(n, "an expected value")
		if len(ps) == 1 && strings.HasPrefix(ps[0].Key, "$") {
			return r.special(n, ps[0], partial)
		}
		mm := &mapMatcher{node: n, entries: map[string]matcher{}, partial: partial}
		for _, p := range ps {
			if strings.HasPrefix(p.Key, "$") {
				r.add(p.KeyNode, "%s must be alone in its map (data with keys starting with $ is written {$literal: ...})", p.Key)
				continue
			}
			mm.keys = append(mm.keys, p.Key)
			mm.entries[p.Key] = r.matcher(p.Value, partial)
		}
		return mm
	case yaml.SequenceNode:
		lm := &listMatcher{node: n}
		for _, it := range rn.Content {
			lm.items = append(lm.items, r.matcher(it, partial))
		}
		return lm
	}
	v, err := yamlsrc.Scalar(rn)
	if err != nil {
		r.add(n, "%s", err)
	}
	return &scalarMatcher{node: n, want: v}
}

func (r *reader) special(n *yaml.Node, p yamlsrc.Pair, partial bool) matcher {
	switch {
	case slices.Contains(formulaKeys, p.Key):
		return &formulaMatcher{node: n, v: r.value(n)}
	case p.Key == keyMatch:
		s, ok := r.str(p)
		re, err := regexp.Compile(`^(?:` + s + `)$`)
		if ok && err != nil {
			r.add(p.Value, "$match: %s", err)
		}
		return &regexMatcher{node: n, re: re, src: s}
	case p.Key == keyType:
		s, _ := r.str(p)
		if !slices.Contains(typeNames, s) {
			r.add(p.Value, "$type must be one of %s, got %q", strings.Join(typeNames, ", "), s)
		}
		return &typeMatcher{node: n, typ: s}
	case p.Key == keyAbsent:
		if v := yamlsrc.Resolve(p.Value); v == nil || v.Value != "true" {
			r.add(p.Value, "write {$absent: true}")
		}
		return &absentMatcher{node: n}
	case p.Key == keyIncludes:
		if v := yamlsrc.Resolve(p.Value); v == nil || v.Kind != yaml.MappingNode {
			r.add(p.Value, "$includes takes a map: the keys that must be there, others are not checked")
			return &scalarMatcher{node: n}
		}
		return r.matcher(p.Value, true)
	}
	r.add(p.KeyNode, "unknown matcher %s (matchers: %s; formulas: %s)", p.Key, strings.Join(matcherKeys, ", "), strings.Join(formulaKeys, ", "))
	return &scalarMatcher{node: n}
}

func (r *reader) headerMatcher(n *yaml.Node) matcher {
	hm := &headerMatcher{node: n, entries: map[string]matcher{}}
	for _, p := range r.pairs(n, "headers") {
		hm.names = append(hm.names, p.Key)
		hm.entries[p.Key] = r.matcher(p.Value, false)
	}
	return hm
}

// nameMap is a map whose keys are names, never matchers (a query's $skiptoken): exactly
// these keys, each value a matcher.
func (r *reader) nameMap(n *yaml.Node) matcher {
	rn := yamlsrc.Resolve(n)
	if rn == nil || rn.Kind != yaml.MappingNode {
		return r.matcher(n, false)
	}
	mm := &mapMatcher{node: n, entries: map[string]matcher{}}
	for _, p := range r.pairs(n, "query") {
		mm.keys = append(mm.keys, p.Key)
		mm.entries[p.Key] = r.matcher(p.Value, false)
	}
	return mm
}

func (r *reader) errorMatcher(n *yaml.Node) matcher {
	rn := yamlsrc.Resolve(n)
	if rn != nil && rn.Kind == yaml.ScalarNode && rn.ShortTag() != "!!null" {
		return &containsMatcher{node: n, text: rn.Value}
	}
	return r.matcher(n, false)
}

// eventsMatcher: a list of {type, id, record}, each checking only the keys it names.
func (r *reader) eventsMatcher(n *yaml.Node) matcher {
	return r.listOfPartial(n, "events", []string{"type", "id", "record"})
}

// listOfPartial is a list of maps, each checking only the keys it names among known.
func (r *reader) listOfPartial(n *yaml.Node, what string, known []string) matcher {
	rn := yamlsrc.Resolve(n)
	if rn == nil || rn.Kind != yaml.SequenceNode {
		r.add(n, "%s must be a list of {%s}", what, strings.Join(known, ", "))
		return &scalarMatcher{node: n}
	}
	lm := &listMatcher{node: n}
	for _, it := range rn.Content {
		mm := &mapMatcher{node: it, entries: map[string]matcher{}, partial: true}
		for _, p := range r.pairs(it, "each of "+what) {
			if !slices.Contains(known, p.Key) {
				r.unknown(p, "each of "+what, known)
				continue
			}
			mm.keys = append(mm.keys, p.Key)
			mm.entries[p.Key] = r.matcher(p.Value, false)
		}
		lm.items = append(lm.items, mm)
	}
	return lm
}
