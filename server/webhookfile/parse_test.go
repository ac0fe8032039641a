package webhookfile

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/engine/diag"
	"github.com/hookmap/hookmap/server/store"
)

func env(vars map[string]string) Getenv {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func strs(ds []diag.Diagnostic) []string {
	diag.Sort(ds)
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}

// The plugin format's own examples, as JSON, parse as they are written.
func TestParseSeedJSON(t *testing.T) {
	t.Parallel()
	src := `[
  {
    "id": "get-randomapi",
    "url": "https://coviu.com/api/v1/randomApi",
    "method": "GET",
    "headers": {},
    "queryParams": ["pageNum"]
  },
  {
    "id": "send-jpeg",
    "url": "https://postman-echo.com/post",
    "headers": {
      "Content-Type": "image/jpeg"
    },
    "payload_encoding": "base64"
  }
]`
	f, diags := Parse("webhooks.json", []byte(src), env(nil), "default")
	require.Empty(t, diags)
	require.False(t, f.Incomplete)
	require.Len(t, f.Entries, 2)
	get, jpeg := f.Entries[0], f.Entries[1]
	require.Equal(t, "default/get-randomapi", get.Key())
	require.Equal(t, "GET", get.Registration.Method)
	require.Equal(t, []string{"pageNum"}, get.Registration.QueryParams)
	require.Equal(t, store.SourceFile, get.Registration.Source)
	require.Equal(t, 2, get.Line)
	require.Equal(t, "base64", jpeg.Registration.PayloadEncoding)
	require.Equal(t, map[string]string{"Content-Type": "image/jpeg"}, jpeg.Registration.Headers)
	require.Equal(t, 9, jpeg.Line)
}

func TestParseYAML(t *testing.T) {
	t.Parallel()
	src := `# Declared webhooks.
- id: crm
  workspace: acme
  url: https://${env:CRM_HOST}/v2/contacts
  method: put
  headers:
    Authorization: Bearer ${env:CRM_TOKEN}
    X-Literal: costs $${env:NOT_A_VAR}
  query_params: [dry_run]
  payloadEncoding: PAYLOAD_ENCODING_FORM
  contentType: application/x-www-form-urlencoded
  timeout: 10s
  maxAttempts: 3
  signingSecret: ${env:CRM_SECRET}
  followRedirects: true
- id: slow
  timeout: 90
  url: https://example.com/
`
	f, diags := Parse("webhooks.yaml", []byte(src), env(map[string]string{
		"CRM_HOST": "api.example-crm.com", "CRM_TOKEN": "sk_live_1", "CRM_SECRET": "whsec_abc",
	}), "default")
	require.Empty(t, diags)
	require.Len(t, f.Entries, 2)
	r := f.Entries[0].Registration
	require.Equal(t, "acme/crm", f.Entries[0].Key())
	require.Equal(t, "https://api.example-crm.com/v2/contacts", r.URL)
	require.Equal(t, map[string]string{"Authorization": "Bearer sk_live_1", "X-Literal": "costs ${env:NOT_A_VAR}"}, r.Headers)
	require.Equal(t, "form", r.PayloadEncoding)
	require.Equal(t, 10*time.Second, r.Timeout)
	require.Equal(t, 3, r.MaxAttempts)
	require.Equal(t, "whsec_abc", r.SigningSecret)
	require.True(t, r.FollowRedirects)
	require.Equal(t, 90*time.Second, f.Entries[1].Registration.Timeout)
	line, col := f.Entries[0].pos("headers[Authorization]")
	require.Equal(t, []int{7, 20}, []int{line, col})
	line, _ = f.Entries[0].pos("headers[Missing]")
	require.Equal(t, 6, line, "an unknown header falls back to headers")
	line, _ = f.Entries[0].pos("nothing")
	require.Equal(t, 2, line, "an unknown field falls back to the entry")
}

func TestParseProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src  string
		want       []string
		broken     []string
		incomplete bool
		entries    int
	}{
		{"syntax", "- id: a\n  url: [\n", []string{"w.yaml:3:1: YAML syntax error"}, nil, true, 0},
		{"not a list", "just text\n", []string{"w.yaml:1:1: the file must hold a list of webhooks"}, nil, true, 0},
		{"no id", "- url: https://example.com/\n- id: b\n  url: https://example.com/\n",
			[]string{"w.yaml:1:3: webhook 1: id is required"}, nil, true, 1},
		{"unknown key", "- id: a\n  url: https://example.com/\n  retries: 3\n",
			[]string{`w.yaml:3:3: webhook "a": unknown key "retries"`}, []string{"default/a"}, false, 0},
		{"two spellings", "- id: a\n  queryParams: [x]\n  query_params: [y]\n",
			[]string{`w.yaml:3:3: webhook "a": "queryParams" and "query_params" are the same field`}, []string{"default/a"}, false, 0},
		{"unset env", "- id: a\n  url: https://example.com/\n  headers:\n    Authorization: Bearer ${env:NOPE}\n",
			[]string{`w.yaml:4:27: webhook "a": headers[Authorization]: environment variable NOPE is not set`}, []string{"default/a"}, false, 0},
		{"not env", "- id: a\n  url: https://example.com/${HOME}\n",
			[]string{`w.yaml:2:28: webhook "a": url: "${HOME}" is not ${env:NAME}`}, []string{"default/a"}, false, 0},
		{"types", "- id: a\n  headers: [x]\n  timeout: soon\n  max_attempts: many\n  follow_redirects: 1\n  queryParams: {a: b}\n",
			[]string{
				`w.yaml:2:12: webhook "a": headers must be a mapping`,
				`w.yaml:3:12: webhook "a": timeout must be a duration`,
				`w.yaml:4:17: webhook "a": max_attempts must be an integer`,
				`w.yaml:5:21: webhook "a": follow_redirects must be true or false`,
				`w.yaml:6:16: webhook "a": queryParams must be a list of names`,
			}, []string{"default/a"}, false, 0},
		{"duplicate", "- id: a\n  url: https://example.com/\n- id: a\n  url: https://example.com/\n",
			[]string{`w.yaml:3:7: webhook "a" is declared twice in workspace "default" (first at line 1)`}, nil, false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, diags := Parse("w.yaml", []byte(tc.src), env(nil), "default")
			got := strs(diags)
			require.Len(t, got, len(tc.want), "%v", got)
			for i := range tc.want {
				require.True(t, strings.HasPrefix(got[i], tc.want[i]), "got %q, want %q…", got[i], tc.want[i])
			}
			var broken []string
			for k := range f.Broken {
				broken = append(broken, k)
			}
			require.ElementsMatch(t, tc.broken, broken)
			require.Equal(t, tc.incomplete, f.Incomplete)
			require.Len(t, f.Entries, tc.entries)
		})
	}
}
