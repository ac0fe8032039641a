package console

import (
	"embed"
	"encoding/json"
	"net/http"
	"strings"
)

// Prefix is where the console is mounted on the HTTP port.
const Prefix = "/console/"

//go:embed assets
var assets embed.FS

// CSP is the console's Content-Security-Policy: its own scripts, styles and API only.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Options configure the console.
type Options struct {
	// AuthRequired says the API needs a token (false in dev mode): the page asks for one.
	AuthRequired bool
}

// Config is what /console/config.json tells the page.
type Config struct {
	AuthRequired bool   `json:"authRequired"`
	APIPrefix    string `json:"apiPrefix"`
}

// New returns the handler of Prefix (mount it at Prefix, and Prefix without its slash).
func New(o Options) http.Handler {
	files := http.FileServerFS(assets)
	cfg, _ := json.Marshal(Config{AuthRequired: o.AuthRequired, APIPrefix: "/api/"})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-cache")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch {
		case r.URL.Path == strings.TrimSuffix(Prefix, "/"):
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		case r.URL.Path == Prefix+"config.json":
			h.Set("Content-Type", "application/json")
			_, _ = w.Write(cfg)
		case strings.HasSuffix(r.URL.Path, "/") && r.URL.Path != Prefix:
			http.NotFound(w, r) // no folder listings
		default:
			// /console/x is assets/x in the embedded tree.
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/assets/" + strings.TrimPrefix(r.URL.Path, Prefix)
			r2.URL.RawPath = ""
			files.ServeHTTP(w, r2)
		}
	})
}
