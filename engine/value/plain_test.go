package value

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCloneIsDeep(t *testing.T) {
	orig := map[string]any{
		"n": int64(1), "s": "x", "null": nil,
		"obj":  map[string]any{"list": []any{int64(1), map[string]any{"k": "v"}}},
		"list": []any{[]any{"a"}},
	}
	want := map[string]any{
		"n": int64(1), "s": "x", "null": nil,
		"obj":  map[string]any{"list": []any{int64(1), map[string]any{"k": "v"}}},
		"list": []any{[]any{"a"}},
	}
	c := CloneMap(orig)
	require.Equal(t, want, c)

	// Every level of the copy is its own.
	c["n"] = int64(2)
	c["obj"].(map[string]any)["list"].([]any)[1].(map[string]any)["k"] = "changed"
	c["obj"].(map[string]any)["new"] = true
	c["list"].([]any)[0].([]any)[0] = "b"
	require.Equal(t, want, orig)

	require.Nil(t, CloneMap(nil))
	require.Nil(t, Clone([]any(nil)))
	require.Equal(t, "s", Clone("s"))
}
