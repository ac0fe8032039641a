package jmes

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/engine/value"
)

const doc = `{"id":1234567,"f":1.5,"two":2.0,"items":[{"id":1,"n":3,"name":"a"},{"id":2,"n":5,"name":"b"},{"id":3,"n":4,"name":"c"}],"s":"x"}`

func TestSearchBridgesNumbers(t *testing.T) {
	d, err := value.DecodeString(doc)
	require.NoError(t, err)
	tests := []struct {
		expr string
		want any
	}{
		{"id", int64(1234567)},
		{"f", 1.5},
		{"length(items) > `2`", true},
		{"length(items)", int64(3)},
		{"sum(items[].n)", int64(12)},
		{"avg(items[].n)", int64(4)},
		{"max_by(items, &n).name", "b"},
		{"min_by(items, &n).id", int64(1)},
		{"sort_by(items, &n)[].id", []any{int64(1), int64(3), int64(2)}},
		{"items[?n > `3`].name", []any{"b", "c"}},
		{"items[?id == `2`].name | [0]", "b"},
		{"id == `1234567`", true},
		{"abs(`-3`)", int64(3)},
		{"to_number('42')", int64(42)},
		{"items[0]", map[string]any{"id": int64(1), "n": int64(3), "name": "a"}},
		{"missing.deeper", nil},
		{"`1.5`", 1.5},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			e, err := Compile(tc.expr)
			require.NoError(t, err)
			got, err := e.SearchPlain(d)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	// The document itself is not changed.
	require.Equal(t, int64(1234567), d.(map[string]any)["id"])
}

func TestSearchRawKeepsValues(t *testing.T) {
	d, err := value.DecodeString(doc)
	require.NoError(t, err)
	for _, expr := range []string{"id", "items[].id", "items[1:].n", "{a: id, b: two}", "items[?name].id", "s || id"} {
		require.False(t, NumberSensitive(expr), expr)
		e, err := Compile(expr)
		require.NoError(t, err)
		raw, err := e.SearchRaw(d)
		require.NoError(t, err)
		conv, err := e.SearchPlain(d)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(conv), fmt.Sprint(raw), expr)
	}
	e, _ := Compile("two")
	raw, _ := e.SearchRaw(d)
	require.Equal(t, 2.0, raw, "the raw path keeps a float a float")
	for _, expr := range []string{"a == `1`", "length(a)", "a > b", "`1`"} {
		require.True(t, NumberSensitive(expr), expr)
	}
}

func TestRootNames(t *testing.T) {
	names, whole := RootNames(`data.items[?n > ` + "`1`" + `].id || headers."x-id"`)
	require.False(t, whole)
	require.Subset(t, names, []string{"data", "items", "n", "id", "headers", "x-id"})
	_, whole = RootNames("keys(@)")
	require.True(t, whole)
	_, whole = RootNames("*.id")
	require.True(t, whole)
	_, whole = RootNames("data.items[*].id")
	require.False(t, whole)
	_, whole = RootNames("data.*")
	require.False(t, whole)
}

func TestFromJMES(t *testing.T) {
	require.Equal(t, int64(9007199254740992), FromJMES(9007199254740992.0))
	require.Equal(t, 1e300, FromJMES(1e300), "beyond 2^53 stays a float")
	require.Equal(t, []any{int64(1), 1.5, map[string]any{"a": int64(2)}}, FromJMES([]any{1.0, 1.5, map[string]any{"a": 2.0}}))
}

func TestCompileErrors(t *testing.T) {
	_, err := Compile("a[")
	var se *SyntaxError
	require.ErrorAs(t, err, &se)
	require.Contains(t, se.Message, "JMESPath syntax error")
	require.Equal(t, 2, se.Offset)
	e, err := Compile("abs(s)")
	require.NoError(t, err)
	_, err = e.SearchPlain(map[string]any{"s": "x"})
	require.Error(t, err)
}

func TestCached(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := Cached(fmt.Sprintf("a%d", i%7))
			if err == nil {
				_, _ = e.SearchPlain(map[string]any{"a1": int64(1)})
			}
		}()
	}
	wg.Wait()
	for i := range CacheSize + 10 {
		_, err := Cached(fmt.Sprintf("k%d", i))
		require.NoError(t, err)
	}
	cache.RLock()
	n := len(cache.m)
	cache.RUnlock()
	require.LessOrEqual(t, n, CacheSize)
	_, err := Cached("[")
	require.Error(t, err)
}
