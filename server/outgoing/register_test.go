package outgoing

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // 24 bytes

func fields(t *testing.T, err error) map[string]string {
	t.Helper()
	var ie *InvalidError
	require.ErrorAs(t, err, &ie)
	out := map[string]string{}
	for _, v := range ie.Violations {
		out[v.Field] = v.Description
	}
	return out
}

func TestRegisterDefaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.register(Registration{ID: "crm", URL: "https://example.com/hook"})
	require.Equal(t, "POST", w.Method)
	require.Equal(t, store.EncodingJSON, w.PayloadEncoding)
	require.Equal(t, 30*time.Second, w.Timeout)
	require.Equal(t, 1, w.MaxAttempts)
	require.False(t, w.FollowRedirects)
	require.Nil(t, w.Headers)
	require.Nil(t, w.SigningSecret)

	w = e.register(Registration{
		ID: "img", URL: "http://example.com/upload?k=v", Method: "put", PayloadEncoding: "BASE64", ContentType: "image/jpeg",
		Headers: map[string]string{"x-api-key": "k1", "authorization": "Bearer t"}, QueryParams: []string{"name"},
		Timeout: 5 * time.Minute, MaxAttempts: 10, SigningSecret: testSecret, FollowRedirects: true,
	})
	require.Equal(t, "PUT", w.Method)
	require.Equal(t, store.EncodingBase64, w.PayloadEncoding)
	require.Equal(t, []string{"Authorization", "X-Api-Key"}, w.HeaderNames)
	require.NotEmpty(t, w.Headers)
	require.NotContains(t, string(w.Headers), "Bearer t")
	require.NotEmpty(t, w.SigningSecret)
	require.NotContains(t, string(w.SigningSecret), testSecret)

	got, err := e.s.Get(t.Context(), testWorkspace, "img")
	require.NoError(t, err)
	require.Equal(t, w.HeaderNames, got.HeaderNames)

	_, err = e.s.Register(t.Context(), testWorkspace, Registration{ID: "crm", URL: "https://example.com/other"})
	require.ErrorIs(t, err, store.ErrAlreadyExists)
	_, err = e.s.Get(t.Context(), "other-ws", "crm")
	require.ErrorIs(t, err, store.ErrNotFound)

	// Neither the header values, nor the secret, nor a URL are logged.
	logs := e.logs.String()
	require.Contains(t, logs, "outgoing webhook registered")
	for _, secret := range []string{"Bearer t", "k1", testSecret, "example.com"} {
		require.NotContains(t, logs, secret)
	}
}

func TestRegisterValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ok := Registration{ID: "ok", URL: "https://example.com/"}
	tests := []struct {
		name  string
		mod   func(r *Registration)
		field string
		desc  string
	}{
		{"no id", func(r *Registration) { r.ID = "" }, "id", "required"},
		{"bad id", func(r *Registration) { r.ID = "a/b" }, "id", "letters, digits"},
		{"long id", func(r *Registration) { r.ID = strings.Repeat("a", 129) }, "id", "1-128"},
		{"no url", func(r *Registration) { r.URL = "" }, "url", "required"},
		{"relative url", func(r *Registration) { r.URL = "/hook" }, "url", "absolute http or https"},
		{"ftp url", func(r *Registration) { r.URL = "ftp://example.com/x" }, "url", "absolute http or https"},
		{"no host", func(r *Registration) { r.URL = "https:///x" }, "url", "no host"},
		{"bad url", func(r *Registration) { r.URL = "http://exa mple.com/%zz" }, "url", "not a valid URL"},
		{"userinfo", func(r *Registration) { r.URL = "https://u:p@example.com/" }, "url", "credentials"},
		{"fragment", func(r *Registration) { r.URL = "https://example.com/#x" }, "url", "fragment"},
		{"method", func(r *Registration) { r.Method = "HEAD" }, "method", "not one of GET, POST, PUT, PATCH, DELETE"},
		{"encoding", func(r *Registration) { r.PayloadEncoding = "xml" }, "payload_encoding", "not one of"},
		{"content type", func(r *Registration) { r.ContentType = "not a type" }, "content_type", "not a valid media type"},
		{"form content type", func(r *Registration) { r.PayloadEncoding = "form"; r.ContentType = "application/json" }, "content_type", "x-www-form-urlencoded"},
		{"short timeout", func(r *Registration) { r.Timeout = 500 * time.Millisecond }, "timeout", "between 1s and 5m0s"},
		{"long timeout", func(r *Registration) { r.Timeout = 6 * time.Minute }, "timeout", "between 1s and 5m0s"},
		{"negative attempts", func(r *Registration) { r.MaxAttempts = -1 }, "max_attempts", "between 1 and 10"},
		{"too many attempts", func(r *Registration) { r.MaxAttempts = 11 }, "max_attempts", "between 1 and 10"},
		{"header name", func(r *Registration) { r.Headers = map[string]string{"X Bad": "v"} }, "headers[X Bad]", "not a valid header name"},
		{"host header", func(r *Registration) { r.Headers = map[string]string{"host": "evil"} }, "headers[host]", "Host is set from the URL"},
		{"content-length", func(r *Registration) { r.Headers = map[string]string{"Content-Length": "1"} }, "headers[Content-Length]", "cannot be set"},
		{"content-type conflict", func(r *Registration) {
			r.Headers = map[string]string{"Content-Type": "x/y"}
			r.ContentType = "image/png"
		}, "headers[Content-Type]", `conflicts with content_type "image/png"`},
		{"content-type twice", func(r *Registration) { r.Headers = map[string]string{"Content-Type": "x/y", "content-type": "x/y"} }, "headers[content-type]", "case-insensitive"},
		{"content-type header not a type", func(r *Registration) { r.Headers = map[string]string{"Content-Type": "not a type"} }, "content_type", "not a valid media type"},
		{"hop-by-hop", func(r *Registration) { r.Headers = map[string]string{"Connection": "close"} }, "headers[Connection]", "hop-by-hop"},
		{"transfer-encoding", func(r *Registration) { r.Headers = map[string]string{"transfer-encoding": "chunked"} }, "headers[transfer-encoding]", "hop-by-hop"},
		{"signature header", func(r *Registration) { r.Headers = map[string]string{"webhook-signature": "x"} }, "headers[webhook-signature]", "signed"},
		{"header value", func(r *Registration) { r.Headers = map[string]string{"X-A": "a\r\nX-B: b"} }, "headers[X-A]", "control characters"},
		{"duplicate header", func(r *Registration) { r.Headers = map[string]string{"X-A": "1", "x-a": "2"} }, "headers[x-a]", "case-insensitive"},
		{"empty query param", func(r *Registration) { r.QueryParams = []string{""} }, "query_params[0]", "1-256"},
		{"duplicate query param", func(r *Registration) { r.QueryParams = []string{"a", "a"} }, "query_params[1]", "twice"},
		{"secret not base64", func(r *Registration) { r.SigningSecret = "whsec_***" }, "signing_secret", "base64"},
		{"secret unpadded", func(r *Registration) { r.SigningSecret = "whsec_" + strings.Repeat("QUJD", 8) + "QQ" }, "signing_secret", "padded"},
		{"secret too short", func(r *Registration) { r.SigningSecret = "whsec_c2hvcnQ=" }, "signing_secret", "24-64 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			tc.mod(&r)
			_, err := e.s.Register(t.Context(), testWorkspace, r)
			f := fields(t, err)
			require.Contains(t, f, tc.field, "violations: %v", f)
			require.Contains(t, f[tc.field], tc.desc)
		})
	}
	// Every problem is reported at once.
	_, err := e.s.Register(t.Context(), testWorkspace, Registration{Method: "TRACE", Timeout: time.Hour})
	require.Len(t, fields(t, err), 4)
	// Nothing was stored.
	ws, _, err := e.s.List(t.Context(), testWorkspace, store.Page{})
	require.NoError(t, err)
	require.Empty(t, ws)
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register(Registration{
		ID: "crm", URL: "https://example.com/a", Headers: map[string]string{"X-Key": "old"}, SigningSecret: testSecret,
		QueryParams: []string{"q"},
	})
	// Only masked fields change; headers and secret stay when not masked.
	w, err := e.s.Update(t.Context(), testWorkspace, Registration{ID: "crm", URL: "https://example.com/b", Method: "GET"}, []string{FieldURL})
	require.NoError(t, err)
	require.Equal(t, "https://example.com/b", w.URL)
	require.Equal(t, "POST", w.Method)
	require.Equal(t, []string{"X-Key"}, w.HeaderNames)
	require.NotEmpty(t, w.SigningSecret)
	require.Equal(t, []string{"q"}, w.QueryParams)

	// The stored headers still open (the seal is bound to workspace and id, not to the URL).
	h, err := e.s.openHeaders(w.OutgoingWebhook)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"X-Key": "old"}, h)

	// Replace the headers, remove the secret.
	w, err = e.s.Update(t.Context(), testWorkspace, Registration{ID: "crm", Headers: map[string]string{"Authorization": "new"}},
		[]string{FieldHeaders, FieldSigningSecret})
	require.NoError(t, err)
	require.Equal(t, []string{"Authorization"}, w.HeaderNames)
	require.Nil(t, w.SigningSecret)
	got, err := e.s.Get(t.Context(), testWorkspace, "crm")
	require.NoError(t, err)
	require.Equal(t, w.HeaderNames, got.HeaderNames)
	require.Nil(t, got.SigningSecret)

	// The merged registration is validated.
	_, err = e.s.Update(t.Context(), testWorkspace, Registration{ID: "crm", Timeout: time.Hour, MaxAttempts: 0}, []string{FieldTimeout, FieldMaxAttempts})
	f := fields(t, err)
	require.Contains(t, f, "timeout")
	require.NotContains(t, f, "max_attempts", "0 means the default")
	_, err = e.s.Update(t.Context(), testWorkspace, Registration{ID: "crm"}, []string{"nope"})
	require.Contains(t, fields(t, err), "update_mask")
	_, err = e.s.Update(t.Context(), testWorkspace, Registration{ID: "crm"}, nil)
	require.Contains(t, fields(t, err), "update_mask")
	_, err = e.s.Update(t.Context(), testWorkspace, Registration{ID: "missing", URL: "https://example.com/"}, []string{FieldURL})
	require.ErrorIs(t, err, store.ErrNotFound)

	require.NoError(t, e.s.Delete(t.Context(), testWorkspace, "crm"))
	require.ErrorIs(t, e.s.Delete(t.Context(), testWorkspace, "crm"), store.ErrNotFound)
}

// The plugin format writes the content type as a header: it is taken as content_type,
// said in the notes, and refused only when content_type says otherwise.
func TestContentTypeHeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// The seed's send-jpeg registration.
	w, err := e.s.Register(t.Context(), testWorkspace, Registration{
		ID: "send-jpeg", URL: "https://example.com/post", Headers: map[string]string{"Content-Type": "image/jpeg"}, PayloadEncoding: "base64",
	})
	require.NoError(t, err)
	require.Equal(t, "image/jpeg", w.ContentType)
	require.Empty(t, w.HeaderNames, "Content-Type is not a registered header")
	require.Equal(t, []string{`headers[Content-Type] "image/jpeg" is used as content_type`}, w.Notes)

	// The same type given twice (parameters compare by value, names case-insensitively).
	w, err = e.s.Register(t.Context(), testWorkspace, Registration{
		ID: "same", URL: "https://example.com/post", ContentType: "text/csv; charset=UTF-8",
		Headers: map[string]string{"content-type": "Text/CSV; Charset=UTF-8", "X-Key": "k"}, PayloadEncoding: "text",
	})
	require.NoError(t, err)
	require.Equal(t, "text/csv; charset=UTF-8", w.ContentType)
	require.Equal(t, []string{"X-Key"}, w.HeaderNames)
	require.Len(t, w.Notes, 1)
	require.Contains(t, w.Notes[0], "same type as content_type")

	// Updating the headers: the header is the type unless content_type is given too.
	w, err = e.s.Update(t.Context(), testWorkspace, Registration{ID: "send-jpeg", Headers: map[string]string{"Content-Type": "image/png"}}, []string{FieldHeaders})
	require.NoError(t, err)
	require.Equal(t, "image/png", w.ContentType)
	_, err = e.s.Update(t.Context(), testWorkspace, Registration{ID: "send-jpeg", ContentType: "image/gif",
		Headers: map[string]string{"Content-Type": "image/png"}}, []string{FieldHeaders, FieldContentType})
	require.Contains(t, fields(t, err)["headers[Content-Type]"], "conflicts with content_type")

	// Triggers still may not set it.
	_, err = e.s.Trigger(t.Context(), testWorkspace, Trigger{WebhookID: "send-jpeg", Headers: map[string]string{"Content-Type": "image/gif"}})
	require.Contains(t, fields(t, err)["headers[Content-Type]"], "cannot be set")
}

// A declared webhook changes only through Replace (the file's loader), which writes only
// what changed; the API's Update and Delete refuse it.
func TestDeclared(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	decl := Registration{
		ID: "crm", URL: "https://example.com/a", Headers: map[string]string{"authorization": "Bearer a"},
		SigningSecret: testSecret, QueryParams: []string{"q"}, Source: store.SourceFile,
	}
	w := e.register(decl)
	require.Equal(t, store.SourceFile, w.Source)

	_, err := e.s.Update(t.Context(), testWorkspace, Registration{ID: "crm", URL: "https://example.com/b"}, []string{FieldURL})
	require.ErrorIs(t, err, ErrDeclared)
	require.ErrorIs(t, e.s.Delete(t.Context(), testWorkspace, "crm"), ErrDeclared)

	_, changed, err := e.s.Replace(t.Context(), testWorkspace, decl)
	require.NoError(t, err)
	require.False(t, changed, "the same declaration writes nothing")

	for name, mod := range map[string]func(r *Registration){
		"header value": func(r *Registration) { r.Headers = map[string]string{"Authorization": "Bearer b"} },
		"secret":       func(r *Registration) { r.SigningSecret = "" },
		"url":          func(r *Registration) { r.URL = "https://example.com/c" },
		"query":        func(r *Registration) { r.QueryParams = nil },
	} {
		r := decl
		mod(&r)
		got, changed, err := e.s.Replace(t.Context(), testWorkspace, r)
		require.NoError(t, err, name)
		require.True(t, changed, name)
		require.Equal(t, store.SourceFile, got.Source)
		decl = r
	}
	stored, err := e.s.Get(t.Context(), testWorkspace, "crm")
	require.NoError(t, err)
	require.Equal(t, "https://example.com/c", stored.URL)
	require.Nil(t, stored.SigningSecret)

	// The API's webhooks are not the loader's.
	e.register(Registration{ID: "api", URL: "https://example.com/"})
	_, _, err = e.s.Replace(t.Context(), testWorkspace, Registration{ID: "api", URL: "https://example.com/", Source: store.SourceFile})
	require.ErrorIs(t, err, store.ErrAlreadyExists)
	require.ErrorIs(t, e.s.DeleteDeclared(t.Context(), testWorkspace, "api"), store.ErrNotFound)

	list, err := e.s.ListDeclared(t.Context())
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, "crm", list[0].ID)
	require.NoError(t, e.s.DeleteDeclared(t.Context(), testWorkspace, "crm"))
}
