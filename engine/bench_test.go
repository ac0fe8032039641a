package engine

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/engine/mapping"
	"github.com/hookmap/hookmap/engine/value"
)

// benchHandle runs a GitHub-like issues handle on a ~1 KiB body, the way the receiver
// does: fresh variables per request, one Method.Run, no compiling.
func benchHandle(b *testing.B, event string) {
	set, diags := Load(filepath.Join("testdata", "bench"))
	require.Empty(b, diags)
	c, _ := set.Connector("github")
	m := c.Events[event].Methods["handle"]
	raw, err := os.ReadFile(filepath.Join("testdata", "bench", "github", "issues.json"))
	require.NoError(b, err)
	data, err := value.Decode(raw)
	require.NoError(b, err)
	vars := map[string]any{
		"data": data, "body": data, "rawBody": string(raw), "method": "POST",
		"headers":    map[string]any{"x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958", "content-type": "application/json"},
		"query":      map[string]any{},
		"state":      map[string]any{"hookId": int64(1), "secret": "s"},
		"parameters": map[string]any{"owner": "octo", "repo": "hello"},
		"connection": map[string]any{"id": "c1", "parameters": map[string]any{}}, "credentials": map[string]any{}, "connectorParameters": map[string]any{},
	}
	ctx := context.Background()
	out, err := m.Run(ctx, vars, RunOptions{})
	require.NoError(b, err)
	rec := out.(map[string]any)["events"].([]any)[0].(map[string]any)["record"].(map[string]any)
	require.Equal(b, int64(1234567), rec["id"])
	require.Equal(b, []any{"bug", "p1"}, rec["labels"])
	compiles := mapping.Compiles()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Run(ctx, vars, RunOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(mapping.Compiles()-compiles), "compiles")
	if n := mapping.Compiles() - compiles; n != 0 {
		b.Fatalf("evaluation compiled %d formulas", n)
	}
}

func BenchmarkHandleCEL(b *testing.B)      { benchHandle(b, "issues") }
func BenchmarkHandleJMESPath(b *testing.B) { benchHandle(b, "issuesjmes") }
