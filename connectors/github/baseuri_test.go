package github_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/engine"
	"github.com/hookmap/hookmap/server/apptest"
)

// The API base is api.github.com unless the connection's baseUri replaces it (GitHub
// Enterprise Server: https://HOST/api/v3); every request carries GitHub's headers.
func TestAPIBase(t *testing.T) {
	c := apptest.LoadConnector(t, ".") // this connector's folder alone
	list := c.Events["repo-events"].Methods["list"]
	for _, tc := range []struct {
		params map[string]any
		want   string
	}{
		{map[string]any{}, "https://api.github.com/repos/octo-org/hello-world/hooks?per_page=100"},
		{map[string]any{"baseUri": "https://github.acme.example/api/v3"}, "https://github.acme.example/api/v3/repos/octo-org/hello-world/hooks?per_page=100"},
	} {
		rec := &apptest.Recorder{Body: `[]`}
		out, err := list.Run(context.Background(), map[string]any{
			"connection":  map[string]any{"id": "c1", "parameters": tc.params},
			"credentials": map[string]any{"accessToken": "ghp_abc"},
			"parameters":  map[string]any{"owner": "octo-org", "repo": "hello-world"},
		}, engine.RunOptions{HTTP: rec})
		require.NoError(t, err)
		require.Equal(t, map[string]any{"webhooks": []any{}}, out)
		require.Len(t, rec.Requests, 1)
		req := rec.Requests[0]
		require.Equal(t, http.MethodGet, req.Method)
		require.Equal(t, tc.want, req.URL.String())
		require.Equal(t, "Bearer ghp_abc", req.Header.Get("Authorization"))
		require.Equal(t, "application/vnd.github+json", req.Header.Get("Accept"))
		require.Equal(t, "2022-11-28", req.Header.Get("X-GitHub-Api-Version"))
		require.NotEmpty(t, req.Header.Get("User-Agent"))
	}
}
