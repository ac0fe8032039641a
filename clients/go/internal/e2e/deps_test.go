package e2e_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestImportsNoServer: a service that imports the client (or builds one of its examples)
// compiles neither the engine, the server nor SQLite.
func TestImportsNoServer(t *testing.T) {
	goBin, err := exec.LookPath("go")
	require.NoError(t, err, "the go command is needed to list the client's dependencies")
	out, err := exec.Command(goBin, "list", "-deps",
		"github.com/hookmap/hookmap/clients/go/hookmap",
		"github.com/hookmap/hookmap/clients/go/examples/...").CombinedOutput()
	require.NoError(t, err, "%s", out)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "google.golang.org/grpc", "the list holds the client's dependencies")
	require.Contains(t, deps, "github.com/hookmap/hookmap/proto/gen/hookmap/v1")
	for _, d := range deps {
		for _, banned := range []string{
			"github.com/hookmap/hookmap/engine", "github.com/hookmap/hookmap/server",
			"modernc.org/sqlite", "cel.dev/", "github.com/pressly/goose",
		} {
			require.False(t, strings.HasPrefix(d, banned), "the client depends on %s", d)
		}
	}
}
