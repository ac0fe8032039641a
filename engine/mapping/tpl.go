package mapping

import (
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/engine/yamlsrc"
)

func (c *Compiler) compileTpl(p yamlsrc.Pair, budget *int, depth int) node {
	n := yamlsrc.Resolve(p.Value)
	if n == nil || n.Kind != yaml.MappingNode {
		c.problem(p.KeyNode, "$tpl needs {template: STRING, values: {NAME: MAPPING...}}, got %s", yamlsrc.KindName(p.Value))
		return constNode{}
	}
	pairs, probs := yamlsrc.Pairs(n)
	c.Problems = append(c.Problems, probs...)
	var tmplNode, valuesNode *yaml.Node
	for _, q := range pairs {
		switch q.Key {
		case "template":
			tmplNode = q.Value
		case "values":
			valuesNode = q.Value
		default:
			c.problem(q.KeyNode, "unknown key %q in $tpl (expected template, values)", q.Key)
		}
	}
	tn := yamlsrc.Resolve(tmplNode)
	if tn == nil || tn.Kind != yaml.ScalarNode {
		c.problem(p.KeyNode, "$tpl needs a template string")
		return constNode{}
	}
	t := &tplNode{values: map[string]node{}, src: c.src(tn)}
	var valueKeys map[string]*yaml.Node
	if vn := yamlsrc.Resolve(valuesNode); vn != nil && !yamlsrc.IsNull(vn) {
		if vn.Kind != yaml.MappingNode {
			c.problem(valuesNode, "$tpl values must be a mapping of name to mapping value")
			return constNode{}
		}
		vps, probs := yamlsrc.Pairs(vn)
		c.Problems = append(c.Problems, probs...)
		valueKeys = map[string]*yaml.Node{}
		for _, q := range vps {
			t.values[q.Key] = c.compile(q.Value, budget, depth+1)
			valueKeys[q.Key] = q.KeyNode
		}
	}
	s := tn.Value
	off := 0
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			t.parts = append(t.parts, tplPart{text: s})
			break
		}
		j := strings.Index(s[i:], "}}")
		if j < 0 {
			c.problemAt(tn, off+len([]rune(s[:i])), "$tpl: unclosed {{")
			return constNode{}
		}
		if i > 0 {
			t.parts = append(t.parts, tplPart{text: s[:i]})
		}
		name := strings.TrimSpace(s[i+2 : i+j])
		if _, ok := t.values[name]; !ok {
			c.problemAt(tn, off+len([]rune(s[:i])), "$tpl: no value for placeholder {{%s}} (values has %s)", name, keyList(valueKeys))
		}
		t.parts = append(t.parts, tplPart{name: name})
		off += len([]rune(s[:i+j+2]))
		s = s[i+j+2:]
	}
	return t
}

func keyList(m map[string]*yaml.Node) string {
	if len(m) == 0 {
		return "no entries"
	}
	return strings.Join(value.SortedKeys(m), ", ")
}
