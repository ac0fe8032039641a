package core

import (
	"log/slog"
	"testing"

	"github.com/hookmap/hookmap/server/hub"
	"github.com/hookmap/hookmap/server/internal/corefixture"
)

// testWorkspace is the workspace storeCore creates.
const testWorkspace = corefixture.Workspace

// storeCore is a core over a SQLite store in a temporary folder with the connectors of dir
// loaded (every one without problems) and the workspace testWorkspace.
func storeCore(tb testing.TB, dir string) *Core {
	tb.Helper()
	st, box, reg := corefixture.Deps(tb, dir)
	return &Core{
		Store: st, Box: box, Registry: reg, Hub: hub.New(), PublicURL: "http://127.0.0.1:8080",
		Logger: slog.New(slog.DiscardHandler),
	}
}
