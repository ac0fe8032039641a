package diag

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStringAndSort(t *testing.T) {
	require.Equal(t, "a/spec.yml:3:7: bad", Diagnostic{File: "a/spec.yml", Line: 3, Col: 7, Message: "bad"}.String())
	require.Equal(t, "a/events/x: no spec.yml", Diagnostic{File: "a/events/x", Message: "no spec.yml"}.String())
	var l List
	l.Add("b.yml", 1, 1, "z")
	l.Add("a.yml", 2, 1, "y")
	l.Add("a.yml", 1, 5, "x")
	l.Add("a.yml", 1, 5, "x")
	l.Add("a.yml", 1, 2, "w %d", 1)
	items := Dedup(l.Items())
	require.Equal(t, []string{"a.yml:1:2: w 1", "a.yml:1:5: x", "a.yml:2:1: y", "b.yml:1:1: z"}, strs(items))
	require.Equal(t, 5, l.Len())
}

func strs(ds []Diagnostic) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}
