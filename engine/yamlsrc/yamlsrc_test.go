package yamlsrc

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestValuePos(t *testing.T) {
	src := "a: x + yy\n" + // plain
		"b: 'x + yy'\n" + // quoted
		"c: >-\n  x +\n    yy\n" + // folded, more-indented second line
		"d: |\n  x\n\n  yy\n" + // literal with a blank line
		"e: x +\n  yy\n" // plain, two lines
	f, err := Parse([]byte(src))
	require.NoError(t, err)
	pairs, probs := Pairs(f.Root)
	require.Empty(t, probs)
	at := func(key string, off int) [2]int {
		for _, p := range pairs {
			if p.Key == key {
				l, c := f.ValuePos(p.Value, off)
				return [2]int{l, c}
			}
		}
		t.Fatalf("no key %s", key)
		return [2]int{}
	}
	require.Equal(t, [2]int{1, 4}, at("a", 0))
	require.Equal(t, [2]int{1, 8}, at("a", 4)) // yy
	require.Equal(t, [2]int{2, 5}, at("b", 0))
	require.Equal(t, [2]int{2, 9}, at("b", 4))
	require.Equal(t, [2]int{4, 3}, at("c", 0))
	require.Equal(t, "x +\n  yy", yamlValue(t, pairs, "c"))
	require.Equal(t, [2]int{5, 5}, at("c", 6)) // yy on the more-indented line
	require.Equal(t, "x\n\nyy\n", yamlValue(t, pairs, "d"))
	require.Equal(t, [2]int{9, 3}, at("d", 3))
	require.Equal(t, [2]int{11, 3}, at("e", 4))
}

func yamlValue(t *testing.T, pairs []Pair, key string) string {
	for _, p := range pairs {
		if p.Key == key {
			return p.Value.Value
		}
	}
	t.Fatalf("no key %s", key)
	return ""
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		line, col int
		msg       string
	}{
		{"unclosed flow sequence at the end", "a: [1, 2\n", 2, 1, "did not find expected ',' or ']'"},
		{"missing comma in a flow map", "a: 1\nb: {x: 1 y: 2}\n", 2, 11, "did not find expected ',' or '}'"},
		{"multi-line flow map: the token, not the map's first line", "a: 1\nc: {x: 1,\n  y: 2\n  z: 3}\n", 4, 4, "did not find expected ',' or '}'"},
		{"bad indentation deep in a block mapping", "a: 1\nb:\n  c: 1\n d: 2\n", 4, 2, "did not find expected key"},
		{"unterminated quote", "a: 1\nb: 'open\n", 3, 1, "found unexpected end of stream"},
		{"? in a flow map is quoted", "a: 1\nb:\n  c: {$cel: parameters.?filters}\n", 3, 13, "must be quoted: 'parameters.?filters'"},
		{"? and : in a flow map", "c: [{$cel: x ? y : z}]\n", 1, 18, "quote an expression that contains ?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src))
			var p *Problem
			require.ErrorAs(t, err, &p)
			require.Equal(t, [2]int{tc.line, tc.col}, [2]int{p.Line, p.Col}, p.Message)
			require.Contains(t, p.Message, "YAML syntax error: ")
			require.Contains(t, p.Message, tc.msg)
		})
	}
	// Quoted, or outside a flow collection, ? is fine.
	for _, ok := range []string{"c: {$cel: 'parameters.?filters'}\n", "c:\n  $cel: parameters.?filters\n"} {
		_, err := Parse([]byte(ok))
		require.NoError(t, err, ok)
	}
	_, err := Parse([]byte("a: 1\n---\nb: 2\n"))
	require.ErrorContains(t, err, "more than one YAML document")
	f, err := Parse(nil)
	require.NoError(t, err)
	require.Nil(t, f.Root)
}

func TestPlainAndPairs(t *testing.T) {
	f, err := Parse([]byte("a: 1\nb: 1.5\nc: [x, null, true]\nd: &x {k: 1234567}\ne: *x\nf: 2024-01-02\na: 2\n"))
	require.NoError(t, err)
	_, probs := Pairs(f.Root)
	require.Len(t, probs, 1)
	require.Equal(t, 7, probs[0].Line)
	_, err = Plain(f.Root)
	require.ErrorContains(t, err, "duplicate key")
	f, err = Parse([]byte("b: 1.5\nc: [x, null, true]\nd: &x {k: 1234567}\ne: *x\nf: 2024-01-02\n"))
	require.NoError(t, err)
	v, err := Plain(f.Root)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"b": 1.5, "c": []any{"x", nil, true}, "d": map[string]any{"k": int64(1234567)}, "e": map[string]any{"k": int64(1234567)}, "f": "2024-01-02T00:00:00Z"}, v)
	n, ok := NodeAt(f.Root, []string{"c", "1"})
	require.True(t, ok)
	require.Equal(t, yaml.ScalarNode, n.Kind)
	require.Equal(t, 2, n.Line)
}

func TestBillionLaughs(t *testing.T) {
	src := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for i := 0; i < 8; i++ {
		name := string(rune('b' + i))
		src += name + ": &" + name + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
		prev = name
	}
	f, err := Parse([]byte(src))
	require.NoError(t, err)
	_, err = Plain(f.Root)
	require.ErrorContains(t, err, "more than")
}
