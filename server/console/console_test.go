package console_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/console"
)

func get(t *testing.T, h http.Handler, method, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

func TestConsoleAssets(t *testing.T) {
	h := console.New(console.Options{AuthRequired: true})
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/console/", "text/html", `<script type="module" src="js/main.js"></script>`},
		{"/console/app.css", "text/css", ":focus-visible"},
		{"/console/js/main.js", "text/javascript", "hashchange"},
		{"/console/js/pages/deliveries.js", "text/javascript", "ReplayDelivery"},
		{"/console/config.json", "application/json", `"authRequired":true`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp := get(t, h, http.MethodGet, tc.path)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Contains(t, resp.Header.Get("Content-Type"), tc.contentType)
			require.Equal(t, console.CSP, resp.Header.Get("Content-Security-Policy"))
			require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
			require.Equal(t, "no-referrer", resp.Header.Get("Referrer-Policy"))
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Contains(t, string(b), tc.contains)
		})
	}
	require.Contains(t, get(t, console.New(console.Options{}), http.MethodGet, "/console/config.json").Header.Get("Content-Type"), "json")

	resp := get(t, h, http.MethodGet, "/console")
	require.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	require.Equal(t, "/console/", resp.Header.Get("Location"))
	require.Equal(t, http.StatusNotFound, get(t, h, http.MethodGet, "/console/js/").StatusCode, "no folder listing")
	require.Equal(t, http.StatusNotFound, get(t, h, http.MethodGet, "/console/nope.js").StatusCode)
	require.Equal(t, http.StatusMethodNotAllowed, get(t, h, http.MethodPost, "/console/").StatusCode)
}

// The policy allows no inline script and nothing from elsewhere, and the page has no
// inline script or handler for it to allow.
func TestConsoleCSPIsStrict(t *testing.T) {
	require.Contains(t, console.CSP, "script-src 'self';")
	require.Contains(t, console.CSP, "default-src 'none'")
	require.Contains(t, console.CSP, "frame-ancestors 'none'")
	require.NotContains(t, console.CSP, "unsafe")
	b, err := io.ReadAll(get(t, console.New(console.Options{}), http.MethodGet, "/console/").Body)
	require.NoError(t, err)
	page := string(b)
	require.Equal(t, 1, strings.Count(page, "<script"), "one script, by src")
	require.NotRegexp(t, `\son[a-z]+\s*=`, page, "no inline handler attribute")
	require.NotContains(t, page, "http://")
	require.NotContains(t, page, "https://")
}

// The scripts build the page with DOM nodes and text only: no HTML parsing of strings, no
// eval, nothing loaded from elsewhere.
func TestConsoleScriptsNeverParseHTML(t *testing.T) {
	banned := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setAttribute\(['"]on|https?://`)
	n := 0
	err := filepath.WalkDir("assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".js" {
			return err
		}
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		n++
		require.Empty(t, banned.FindAllString(string(b), -1), path)
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, n, 5)
}
