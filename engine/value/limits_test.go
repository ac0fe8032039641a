package value

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// nested returns n objects each holding the next under key k, around leaf.
func nested(n int, leaf any) any {
	v := leaf
	for range n {
		v = map[string]any{"k": v}
	}
	return v
}

func nestedList(n int) string {
	return strings.Repeat("[", n) + strings.Repeat("]", n)
}

func TestCheckDepth(t *testing.T) {
	require.NoError(t, Check(nested(MaxDepth, "x")))
	err := Check(nested(MaxDepth+1, "x"))
	require.ErrorIs(t, err, ErrTooDeep)
	var le *LimitError
	require.ErrorAs(t, err, &le)
	require.True(t, strings.HasPrefix(le.Path, "k.k.k"), le.Path)

	// Decode and Check agree at the boundary, for lists and objects.
	v, err := DecodeString(nestedList(MaxDepth))
	require.NoError(t, err)
	require.NoError(t, Check(v))
	_, err = DecodeString(nestedList(MaxDepth + 1))
	require.ErrorIs(t, err, ErrTooDeep)
	require.ErrorIs(t, Check([]any{nested(MaxDepth, 1)}), ErrTooDeep)
}

func TestCheckSize(t *testing.T) {
	require.NoError(t, Check(strings.Repeat("x", MaxSize-sizeFrame)))
	require.ErrorIs(t, Check(strings.Repeat("x", MaxSize)), ErrTooLarge)
	// Numbers weigh what protobuf spends on them, not their one JSON byte.
	zeros := make([]any, MaxSize/sizeScalar)
	for i := range zeros {
		zeros[i] = int64(0)
	}
	err := Check(map[string]any{"a": zeros})
	require.ErrorIs(t, err, ErrTooLarge)
	require.ErrorContains(t, err, "(at a[")
	// A huge key is shortened in the path.
	err = Check(map[string]any{strings.Repeat("k", 4<<20): 1})
	var le *LimitError
	require.ErrorAs(t, err, &le)
	require.LessOrEqual(t, len(le.Path), maxPath)
	require.Equal(t, "ab…", Shorten("abcdef", 5))
	require.Equal(t, "é…", Shorten("éééé", 6), "cut at a rune boundary")
}
