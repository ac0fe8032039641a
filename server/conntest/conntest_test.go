package conntest

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the .golden files")

// golden runs the tests of dirs and compares the report with testdata/<name>.golden.
func golden(t *testing.T, name string, dirs ...string) Summary {
	t.Helper()
	var out bytes.Buffer
	sum, err := Run(context.Background(), dirs, Options{Out: &out})
	require.NoError(t, err)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.WriteFile(path, out.Bytes(), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), out.String())
	return sum
}

// Every kind of failure is reported at the line that expected something else.
func TestFailuresAreReportedAtTheirLine(t *testing.T) {
	sum := golden(t, "failing", filepath.Join("testdata", "failing"))
	require.Equal(t, Summary{Files: 2, Tests: 9, Failed: 8}, sum)
	require.False(t, sum.OK())
}

// Problems of a test file are all reported, sorted, before anything runs.
func TestFileProblems(t *testing.T) {
	sum := golden(t, "problems", filepath.Join("testdata", "problems"))
	require.Equal(t, Summary{Files: 1, Problems: 14}, sum)
}

// The bundled connectors pass their tests, and so do the handshake app of
// docs/connectors.md's worked example and the fetch app of the server's tests.
func TestBundledConnectorsPass(t *testing.T) {
	var out bytes.Buffer
	sum, err := Run(context.Background(), []string{filepath.Join("..", "..", "connectors"),
		filepath.Join("..", "app", "testdata", "connectors", "handshake"), filepath.Join("..", "app", "testdata", "connectors", "fetchapp")}, Options{Out: &out})
	require.NoError(t, err)
	require.True(t, sum.OK(), out.String())
	bundled, err := filepath.Glob(filepath.Join("..", "..", "connectors", "*", "tests", "*.test.yml"))
	require.NoError(t, err)
	require.Equal(t, len(bundled)+3, sum.Files, out.String()) // handshake has 1 test file, fetchapp 2
	require.GreaterOrEqual(t, sum.Tests, 50)
}

// -run selects tests by name.
func TestRunSelectsTests(t *testing.T) {
	var out bytes.Buffer
	sum, err := Run(context.Background(), []string{filepath.Join("testdata", "failing")}, Options{Out: &out, Run: regexp.MustCompile(`^passes$`), Verbose: true})
	require.NoError(t, err)
	require.Equal(t, Summary{Files: 2, Tests: 1}, sum, out.String())
	require.Contains(t, out.String(), "--- ok: passes")
}

// FuzzParse: no test file makes the parser panic, and a file it accepts has tests with
// steps.
func FuzzParse(f *testing.F) {
	for _, p := range []string{
		"testdata/failing/pingapp/tests/item.test.yml",
		"testdata/problems/brokenapp/tests/broken.test.yml",
		"../../connectors/github/tests/repo-events.test.yml",
		"../../connectors/microsoft-graph/tests/changes.test.yml",
	} {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		file, fails := parse("testdata/failing/pingapp/tests/fuzz.test.yml", b)
		if len(fails) > 0 {
			require.Nil(t, file)
			return
		}
		for _, tc := range file.Tests {
			require.NotEmpty(t, tc.steps)
		}
	})
}
