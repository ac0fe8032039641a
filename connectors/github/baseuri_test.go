package github_test

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/engine"
)

// recorder answers every request with 200 [] and keeps it; nothing leaves the process.
type recorder struct{ reqs []*http.Request }

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	r.reqs = append(r.reqs, req)
	return &http.Response{
		StatusCode: 200, Header: http.Header{"Content-Type": {"application/json; charset=utf-8"}},
		Body: io.NopCloser(strings.NewReader(`[]`)), Request: req,
	}, nil
}

// The API base is api.github.com unless the connection's baseUri replaces it (GitHub
// Enterprise Server: https://HOST/api/v3); every request carries GitHub's headers.
func TestAPIBase(t *testing.T) {
	dir, err := filepath.Abs(".") // this connector's folder alone
	require.NoError(t, err)
	set, diags := engine.Load(dir)
	require.Empty(t, diags)
	c, ok := set.Connector("github")
	require.True(t, ok)
	list := c.Events["repo-events"].Methods["list"]
	for _, tc := range []struct {
		params map[string]any
		want   string
	}{
		{map[string]any{}, "https://api.github.com/repos/octo-org/hello-world/hooks?per_page=100"},
		{map[string]any{"baseUri": "https://github.acme.example/api/v3"}, "https://github.acme.example/api/v3/repos/octo-org/hello-world/hooks?per_page=100"},
	} {
		rec := &recorder{}
		out, err := list.Run(context.Background(), map[string]any{
			"connection":  map[string]any{"id": "c1", "parameters": tc.params},
			"credentials": map[string]any{"accessToken": "ghp_abc"},
			"parameters":  map[string]any{"owner": "octo-org", "repo": "hello-world"},
		}, engine.RunOptions{HTTP: rec})
		require.NoError(t, err)
		require.Equal(t, map[string]any{"webhooks": []any{}}, out)
		require.Len(t, rec.reqs, 1)
		req := rec.reqs[0]
		require.Equal(t, http.MethodGet, req.Method)
		require.Equal(t, tc.want, req.URL.String())
		require.Equal(t, "Bearer ghp_abc", req.Header.Get("Authorization"))
		require.Equal(t, "application/vnd.github+json", req.Header.Get("Accept"))
		require.Equal(t, "2022-11-28", req.Header.Get("X-GitHub-Api-Version"))
		require.NotEmpty(t, req.Header.Get("User-Agent"))
	}
}
