package receiver

import (
	"html/template"
	"net/http"
	"net/url"

	"github.com/hookmap/hookmap/server/core"
)

// maxCallbackBody bounds a callback sent as a form POST (response_mode=form_post).
const maxCallbackBody = 64 << 10

// connectedPage is what the browser shows after a successful authorization without a
// return URL.
var connectedPage = template.Must(template.New("connected").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Connected</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; margin: 3rem auto; max-width: 32rem">
<h1>Connected</h1>
<p>{{.Name}} ({{.ConnectorKey}}) is connected. You can close this window.</p>
</body></html>
`))

// serveOAuthCallback is the redirect URI of every OAuth 2.0 app: the app sends the user's
// browser here with code and state (or error). The code, the state and the tokens are
// never logged.
func (rc *Receiver) serveOAuthCallback(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeError(w, http.StatusMethodNotAllowed, "method "+core.Q(r.Method)+" is not allowed on "+r.URL.Path)
		return
	}
	query := r.URL.Query()
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxCallbackBody)
		if err := r.ParseForm(); err != nil {
			writeError(w, http.StatusBadRequest, "cannot read the form")
			return
		}
		query = r.PostForm
		if len(query) == 0 {
			query = url.Values{}
		}
	}
	// Neither the callback URL nor its answer may be cached or leak through Referer.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	res := rc.Core.CompleteAuthorization(r.Context(), query)
	switch {
	case res.Redirect != "":
		http.Redirect(w, r, res.Redirect, http.StatusSeeOther)
	case res.Status == http.StatusOK:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		w.WriteHeader(http.StatusOK)
		_ = connectedPage.Execute(w, res.Connection)
	default:
		rc.Logger.Info("OAuth callback refused", "request_id", requestID(w), "status", res.Status, "reason", res.Message)
		writeError(w, res.Status, res.Message)
	}
}
