package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAuthDocExampleLoads: the complete example of docs/connectors.md's Auth section (each
// ```yaml block whose first line is "# <path>") is a connector that loads as written.
func TestAuthDocExampleLoads(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "connectors.md"))
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(b), "\n## Auth: ")
	require.True(t, ok, "docs/connectors.md has an Auth section")
	section, _, _ = strings.Cut(section, "\n## ")
	dir := filepath.Join(t.TempDir(), "asana")
	files := 0
	for _, block := range strings.Split(section, "```yaml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		first, _, _ := strings.Cut(block, "\n")
		path, ok := strings.CutPrefix(first, "# ")
		if !ok || !strings.HasSuffix(path, ".yml") {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(path))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(block), 0o644))
		files++
	}
	require.Equal(t, 3, files, "spec.yml and two token requests")
	set, diags := Load(dir)
	require.Empty(t, diags)
	c, ok := set.Connector("asana")
	require.True(t, ok)
	require.True(t, c.Auth.OAuth2())
	require.NotNil(t, c.Auth.Authorize)
	require.NotNil(t, c.Auth.Method(AuthAuthorizationCode))
	require.NotNil(t, c.Auth.Method(AuthRefreshToken))
}
