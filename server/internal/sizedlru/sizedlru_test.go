package sizedlru

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The budget bounds the entries' sizes, the least recently used leaving first; a
// replaced entry counts its new size only.
func TestBudget(t *testing.T) {
	c := New[string, int](100, 10)
	c.Put("a", 1, 40)
	c.Put("b", 2, 40)
	_, ok := c.Get("a") // b is now the least recently used
	require.True(t, ok)
	c.Put("c", 3, 40)
	require.False(t, c.Contains("b"))
	require.True(t, c.Contains("a"))
	n, bytes := c.Len()
	require.Equal(t, 2, n)
	require.Equal(t, int64(80), bytes)

	c.Put("a", 4, 10) // replaced
	v, ok := c.Peek("a")
	require.True(t, ok)
	require.Equal(t, 4, v)
	_, bytes = c.Len()
	require.Equal(t, int64(50), bytes)

	c.Remove("c")
	_, bytes = c.Len()
	require.Equal(t, int64(10), bytes)
	c.Purge()
	n, bytes = c.Len()
	require.Zero(t, n)
	require.Zero(t, bytes)
}
