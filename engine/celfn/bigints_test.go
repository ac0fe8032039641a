package celfn

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBigIntsAsStrings(t *testing.T) {
	data := map[string]any{
		"id": int64(9007199254740993), "small": int64(9007199254740991), "neg": int64(-9007199254740992),
		"f": 1.5, "s": "x", "n": nil,
		"money":  map[string]any{"amount": int64(1 << 60), "currency": "USD"},
		"list":   []any{int64(1), int64(1 << 62), map[string]any{"v": int64(-1 << 55)}},
		"intact": map[string]any{"a": int64(1)},
	}
	out, err := eval(t, `bigIntsAsStrings(data)`, map[string]any{"data": data})
	require.NoError(t, err)
	require.Equal(t, map[string]any{
		"id": "9007199254740993", "small": int64(9007199254740991), "neg": "-9007199254740992",
		"f": 1.5, "s": "x", "n": nil,
		"money":  map[string]any{"amount": "1152921504606846976", "currency": "USD"},
		"list":   []any{int64(1), "4611686018427387904", map[string]any{"v": "-36028797018963968"}},
		"intact": map[string]any{"a": int64(1)},
	}, out)
	require.Equal(t, int64(9007199254740993), data["id"], "the input is not changed")

	for _, src := range []string{`bigIntsAsStrings(5)`, `bigIntsAsStrings("a")`, `bigIntsAsStrings(null)`} {
		_, err := eval(t, src, nil)
		require.NoError(t, err, src)
	}
	got, err := eval(t, `bigIntsAsStrings(9007199254740993)`, nil)
	require.NoError(t, err)
	require.Equal(t, "9007199254740993", got)
}
