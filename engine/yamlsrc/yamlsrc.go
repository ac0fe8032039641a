package yamlsrc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	yaml4 "go.yaml.in/yaml/v4"

	"github.com/hookmap/hookmap/engine/value"
)

// MaxNodes bounds how many nodes a file may expand to (aliases included), so that a
// "billion laughs" document cannot exhaust memory.
const MaxNodes = 200_000

// MaxDepth bounds how deep a file's mappings and sequences may nest. A value a mapping
// produces is held to the tighter limits of engine/value when it is stored.
const MaxDepth = 256

// Problem is a problem at a position of a file.
type Problem struct {
	Line, Col int
	Message   string
}

// At returns a Problem at the position of n.
func At(n *yaml.Node, format string, args ...any) Problem {
	p := Problem{Message: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Col = n.Line, n.Column
	}
	return p
}

// File is a parsed YAML file.
type File struct {
	Lines []string
	// Root is the content of the first document, nil for an empty file.
	Root *yaml.Node
}

var lineRe = regexp.MustCompile(`line (\d+)(?:, column (\d+))?: `)

// Parse parses one YAML document. A syntax error is a *Problem at the offending token.
func Parse(data []byte) (*File, error) {
	f := &File{Lines: strings.Split(string(data), "\n")}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		return f, syntaxError(err, f, data)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return f, &Problem{Line: extra.Line, Col: extra.Column, Message: "more than one YAML document in the file"}
	} else if !errors.Is(err, io.EOF) {
		return f, syntaxError(err, f, data)
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		f.Root = doc.Content[0]
	}
	return f, nil
}

// syntaxError turns a failed parse into a Problem at the offending token.
//
// yaml.v3's messages carry the line of the construct being parsed (a flow mapping, a
// block mapping), counted from 0 for parser errors, so a problem on line 39 of a one-line
// flow mapping reads "line 38" and one deep in a block mapping names the mapping's first
// line. The same bytes are therefore parsed again with go.yaml.in/yaml/v4, whose errors
// carry the offending token's own line and column. Where v4 accepts what v3 refuses (a
// plain scalar holding '?' inside {...} or [...]: v3 takes it for an explicit key), the
// offending scalar is found in v4's tree and the message says to quote it.
func syntaxError(err error, f *File, data []byte) *Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	v3line := 0
	if m := lineRe.FindStringSubmatchIndex(msg); m != nil {
		v3line, _ = strconv.Atoi(msg[m[2]:m[3]])
		msg = msg[:m[0]] + msg[m[1]:]
	}
	msg = "YAML syntax error: " + strings.TrimSpace(msg)
	le, n := parseV4(data)
	switch {
	case le != nil && le.Mark.Line > 0:
		p := &Problem{Line: le.Mark.Line, Col: max(le.Mark.Column, 1), Message: msg}
		if strings.Contains(msg, "',' or") && p.Line <= len(f.Lines) && strings.Contains(f.Lines[p.Line-1], "?") {
			p.Message += " (inside {...} or [...] quote an expression that contains ? : , { } [ ] or \", e.g. {$cel: 'a.?b'})"
		}
		return p
	case n != nil:
		return &Problem{Line: n.Line, Col: n.Column, Message: msg + fmt.Sprintf(
			" (inside {...} or [...] a value containing ? must be quoted: '%s')", n.Value)}
	}
	// Neither located it: v3's line is the construct's, from 0 for parser errors.
	line := v3line
	if strings.HasPrefix(msg, "YAML syntax error: did not find expected ") && !strings.Contains(msg, "line break") &&
		!strings.Contains(msg, "tag URI") && !strings.Contains(msg, "alphabetic") && !strings.Contains(msg, "hexdecimal") {
		line++
	}
	return &Problem{Line: min(max(line, 1), max(len(f.Lines), 1)), Col: 1, Message: msg}
}

// parseV4 parses data with go.yaml.in/yaml/v4: its error when it fails, else the first
// plain scalar containing '?' inside a flow collection (what v3 refuses), if any.
func parseV4(data []byte) (*yaml4.LoadError, *yaml4.Node) {
	dec := yaml4.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml4.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		if err != nil {
			var le *yaml4.LoadError
			if errors.As(err, &le) {
				return le, nil
			}
			return nil, nil
		}
		if n := flowQuestion(&doc, false, 0); n != nil {
			return nil, n
		}
	}
}

func flowQuestion(n *yaml4.Node, inFlow bool, depth int) *yaml4.Node {
	if n == nil || depth > value.MaxDepth {
		return nil
	}
	if n.Kind == yaml4.ScalarNode {
		if inFlow && n.Style == 0 && strings.Contains(n.Value, "?") {
			return n
		}
		return nil
	}
	inFlow = inFlow || n.Style&yaml4.FlowStyle != 0
	for _, c := range n.Content {
		if q := flowQuestion(c, inFlow, depth+1); q != nil {
			return q
		}
	}
	return nil
}

// Error implements error.
func (p *Problem) Error() string { return fmt.Sprintf("%d:%d: %s", p.Line, p.Col, p.Message) }

// Resolve follows aliases and document nodes.
func Resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && i < 100; i++ {
		switch n.Kind {
		case yaml.AliasNode:
			n = n.Alias
		case yaml.DocumentNode:
			if len(n.Content) == 0 {
				return nil
			}
			n = n.Content[0]
		default:
			return n
		}
	}
	return n
}

// IsNull reports whether n is absent or a YAML null.
func IsNull(n *yaml.Node) bool {
	n = Resolve(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// Pair is one entry of a YAML mapping.
type Pair struct {
	Key     string
	KeyNode *yaml.Node
	Value   *yaml.Node
}

// Pairs returns the entries of a mapping node, reporting non-string and duplicate keys.
func Pairs(n *yaml.Node) ([]Pair, []Problem) {
	n = Resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	var probs []Problem
	seen := make(map[string]bool, len(n.Content)/2)
	out := make([]Pair, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := Resolve(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			probs = append(probs, At(n.Content[i], "a mapping key must be a string"))
			continue
		}
		if seen[k.Value] {
			probs = append(probs, At(k, "duplicate key %q", k.Value))
			continue
		}
		seen[k.Value] = true
		out = append(out, Pair{Key: k.Value, KeyNode: n.Content[i], Value: v})
	}
	return out, probs
}

// KindName names the kind of a node for messages.
func KindName(n *yaml.Node) string {
	n = Resolve(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!bool":
			return "a boolean"
		case "!!int", "!!float":
			return "a number"
		default:
			return "a string"
		}
	}
	return "a node"
}

// Plain converts a node to a plain value: mappings to map[string]any, sequences to []any,
// integers to int64, other numbers to float64, timestamps to RFC 3339 strings.
func Plain(n *yaml.Node) (any, error) {
	budget := MaxNodes
	return plain(n, &budget, 0)
}

func plain(n *yaml.Node, budget *int, depth int) (any, error) {
	*budget--
	if *budget < 0 {
		return nil, fmt.Errorf("document expands to more than %d nodes", MaxNodes)
	}
	if depth > MaxDepth {
		return nil, fmt.Errorf("document nested deeper than %d levels", MaxDepth)
	}
	n = Resolve(n)
	if n == nil {
		return nil, nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		pairs, probs := Pairs(n)
		if len(probs) > 0 {
			return nil, fmt.Errorf("line %d: %s", probs[0].Line, probs[0].Message)
		}
		m := make(map[string]any, len(pairs))
		for _, p := range pairs {
			v, err := plain(p.Value, budget, depth+1)
			if err != nil {
				return nil, err
			}
			m[p.Key] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := plain(c, budget, depth+1)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case yaml.ScalarNode:
		return Scalar(n)
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

// Scalar converts a scalar node to a plain value.
func Scalar(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!str":
		return n.Value, nil
	case "!!null":
		return nil, nil
	case "!!merge":
		return n.Value, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, fmt.Errorf("line %d: %w", n.Line, err)
	}
	p, err := value.Plain(v)
	if err != nil {
		return nil, fmt.Errorf("line %d: %w", n.Line, err)
	}
	return p, nil
}

// ValuePos maps a rune offset inside the value of scalar n to a position in the file.
// Quoted, plain multi-line and block (| and >) scalars are mapped line by line; escapes in
// double-quoted strings may shift the column slightly.
func (f *File) ValuePos(n *yaml.Node, off int) (line, col int) {
	if n == nil {
		return 0, 0
	}
	if off <= 0 && n.Style != yaml.LiteralStyle && n.Style != yaml.FoldedStyle {
		if n.Style == yaml.DoubleQuotedStyle || n.Style == yaml.SingleQuotedStyle {
			return n.Line, n.Column + 1
		}
		return n.Line, n.Column
	}
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		return f.walk(n, n.Line+1, 0, off, true)
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		return f.walk(n, n.Line, n.Column+1, off, false)
	default:
		return f.walk(n, n.Line, n.Column, off, false)
	}
}

func (f *File) walk(n *yaml.Node, line, startCol, off int, block bool) (int, int) {
	indent := -1 // a block scalar's indentation: that of its first non-blank line
	for l := line; l >= 1 && l <= len(f.Lines); l++ {
		text := []rune(strings.TrimRight(f.Lines[l-1], "\r"))
		lead := 0
		for lead < len(text) && (text[lead] == ' ' || text[lead] == '\t') {
			lead++
		}
		start := lead
		switch {
		case l == line && startCol > 0:
			start = startCol - 1
		case block:
			if lead == len(text) { // blank line inside a block scalar
				off--
				continue
			}
			if indent < 0 {
				indent = lead
			}
			start = min(indent, lead)
		}
		if start > len(text) {
			start = len(text)
		}
		seg := len(text) - start
		if off <= seg {
			return l, start + off + 1
		}
		off -= seg + 1
	}
	return n.Line, n.Column
}

// NodeAt returns the deepest node found along path (mapping keys and sequence indexes)
// below n, and whether the whole path was found.
func NodeAt(n *yaml.Node, path []string) (*yaml.Node, bool) {
	cur := n
	for _, tok := range path {
		r := Resolve(cur)
		if r == nil {
			return cur, false
		}
		var next *yaml.Node
		switch r.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(r.Content); i += 2 {
				if k := Resolve(r.Content[i]); k != nil && k.Value == tok {
					next = r.Content[i+1]
					break
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(r.Content) {
				next = r.Content[i]
			}
		}
		if next == nil {
			return cur, false
		}
		cur = next
	}
	return cur, true
}
