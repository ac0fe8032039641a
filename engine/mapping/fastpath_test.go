package mapping

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFastPathMatchesCEL evaluates expressions with and without the fast path: results
// and errors must be the same.
func TestFastPathMatchesCEL(t *testing.T) {
	vars := map[string]any{
		"data":    doc(t, `{"a":{"b":{"c":1234567},"n":null,"s":"str","l":[1,2]},"f":1.5,"items":[{"id":1,"name":"x"},{"id":2}]}`),
		"headers": map[string]any{"x-id": "d1"},
	}
	exprs := []struct {
		src  string
		fast bool
	}{
		{`data.a.b.c`, true},
		{`data.a.b`, true},
		{`data.a["b"].c`, true},
		{`data.a.missing`, true},
		{`data.a.n.x`, true},
		{`data.a.s.x`, true},
		{`data.a.l`, true},
		{`data`, true},
		{`state.x`, true},
		{`headers[?"x-id"].orValue(null)`, true},
		{`headers[?"x-nope"].orValue("dflt")`, true},
		{`data.?a.?b.?c.orValue(0)`, true},
		{`data.?a.?zz.?c.orValue(0)`, true},
		{`data.?a.b.orValue(0)`, true},
		{`data.?a.zz.orValue(0)`, true},
		{`data.?a.?n.?x.orValue(1)`, true},
		{`data.a.?b.orValue(2.5)`, true},
		{`data.items.map(i, i.id)`, true},
		{`data.items.map(i, i.?name.orValue("-"))`, true},
		{`data.items.map(i, i.name)`, true},
		{`data.items.map(i, i)`, true},
		{`data.a.l.map(i, i.x)`, true},
		{`data.a.b.map(k, k)`, true}, // a map: the walk gives up, CEL iterates the keys
		{`data.items.map(i, i.id + 1)`, false},
		{`data.items.map(i, data.f)`, false},
		{`data.items.filter(i, has(i.name))`, false},
		{`data.items.map(i, has(i.name), i.name)`, false},
		{`[1, 2].map(i, i)`, false},
		{`data.?a.orValue(data.f)`, false},
		{`data.?a`, false},
		{`has(data.a)`, false},
		{`data.a.b.c + 1`, false},
	}
	env, err := NewEnv(testVars...)
	require.NoError(t, err)
	c := &Compiler{Env: env, Path: "x"}
	require.Nil(t, c.compileCEL("now", nil, false).fast, "now is not a variable of the scope")
	for _, tc := range exprs {
		t.Run(tc.src, func(t *testing.T) {
			c := &Compiler{Env: env, Path: "x"}
			cn := c.compileCEL(tc.src, nil, false)
			require.Empty(t, c.Problems)
			require.Equal(t, tc.fast, cn.fast != nil)
			requireSameAsCEL(t, cn, vars, func() { cn.fast = nil })
		})
	}
}

// TestFastConcatMatchesCEL evaluates concatenations with and without their fast path:
// results and errors must be the same.
func TestFastConcatMatchesCEL(t *testing.T) {
	vars := map[string]any{
		"data":    doc(t, `{"action":"opened","repo":{"owner":"o","name":"r"},"n":7,"l":["x"],"e":"","u":"caf\u00e9","z":null}`),
		"headers": map[string]any{"x-id": "d1"},
	}
	exprs := []struct {
		src  string
		fast bool
	}{
		{`"issue." + data.action`, true},
		{`data.repo.owner + "/" + data.repo.name`, true},
		{`data.action + data.e + data.u`, true},
		{`"a" + "b"`, true},
		{`headers[?"x-id"].orValue("") + ":" + headers[?"x-nope"].orValue("none")`, true},
		{`"issue." + data.missing`, true}, // no such key: CEL's error
		{`"n=" + data.n`, true},           // an int: CEL's error
		{`data.l + data.l`, true},         // lists: CEL concatenates them
		{`data.n + data.n`, true},         // ints: CEL adds them
		{`"z" + data.z`, true},            // null: CEL's error
		{`"a" + string(data.n)`, false},   // a call
		{`data.action + "-" + data.n.toString()`, false},
		{`data.action`, false}, // a selection: fastPath's
		{`"x" + data.l.map(i, i)[0]`, false},
	}
	env, err := NewEnv(testVars...)
	require.NoError(t, err)
	for _, tc := range exprs {
		t.Run(tc.src, func(t *testing.T) {
			c := &Compiler{Env: env, Path: "x"}
			cn := c.compileCEL(tc.src, nil, false)
			if cn == nil {
				require.False(t, tc.fast, "%v", c.Problems)
				return
			}
			require.Empty(t, c.Problems)
			require.Equal(t, tc.fast, cn.concat != nil)
			requireSameAsCEL(t, cn, vars, func() { cn.concat = nil })
		})
	}
}

// requireSameAsCEL evaluates cn over vars, then again after noFast has taken its fast
// path away: CEL's result and error must be the fast path's.
func requireSameAsCEL(t *testing.T, cn *celNode, vars map[string]any, noFast func()) {
	t.Helper()
	fastV, fastErr := cn.eval(NewScope(context.Background(), vars))
	noFast()
	celV, celErr := cn.eval(NewScope(context.Background(), vars))
	require.Equal(t, celV, fastV)
	if celErr != nil {
		require.EqualError(t, fastErr, celErr.Error())
	} else {
		require.NoError(t, fastErr)
	}
}
