package engine

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the .golden files of the tests")

// TestBrokenGolden loads testdata/broken (a folder of broken connectors and one good one)
// and compares the diagnostics with testdata/broken.golden. Run with -update to rewrite it.
func TestBrokenGolden(t *testing.T) {
	set, diags := Load(filepath.Join("testdata", "broken"))
	var b strings.Builder
	for _, c := range set.Connectors() {
		b.WriteString("ok " + c.Summary() + "\n")
	}
	for _, d := range diags {
		d.File = filepath.ToSlash(d.File)
		b.WriteString(d.String() + "\n")
	}
	golden := filepath.Join("testdata", "broken.golden")
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(b.String()), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), b.String())
	require.Len(t, set.Connectors(), 1, "only the fine connector loads")
}
