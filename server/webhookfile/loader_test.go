package webhookfile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hookmap/hookmap/server/outgoing"
	"github.com/hookmap/hookmap/server/secrets"
	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/sqlite"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newLoader(t *testing.T, vars map[string]string) (*Loader, *outgoing.Sender) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "hookmap.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	for _, ws := range []string{"default", "acme"} {
		require.NoError(t, st.CreateWorkspace(t.Context(), &store.Workspace{ID: ws, Name: ws}))
	}
	box, err := secrets.NewBox(bytes.Repeat([]byte{7}, secrets.KeySize))
	require.NoError(t, err)
	sender, err := outgoing.New(outgoing.Config{Store: st, Box: box, Clients: outgoing.GuardedClients(false)})
	require.NoError(t, err)
	t.Cleanup(sender.Close)
	return &Loader{Path: filepath.Join(t.TempDir(), "webhooks.yaml"), Sender: sender, Getenv: env(vars), DefaultWorkspace: "default"}, sender
}

func (l *Loader) write(t *testing.T, src string) {
	t.Helper()
	require.NoError(t, os.WriteFile(l.Path, []byte(src), 0o600))
}

func TestLoaderApplies(t *testing.T) {
	t.Parallel()
	l, sender := newLoader(t, map[string]string{"TOKEN": "sk_1"})
	ctx := t.Context()

	_, err := l.Reload(ctx)
	require.ErrorIs(t, err, ErrUnreadable)

	l.write(t, `
- id: crm
  url: https://example.com/crm
  headers: {Authorization: "Bearer ${env:TOKEN}"}
- id: jpeg
  workspace: acme
  url: https://example.com/upload
  headers: {Content-Type: image/jpeg}
  payload_encoding: base64
`)
	res, err := l.Reload(ctx)
	require.NoError(t, err)
	require.Empty(t, res.Diagnostics)
	require.Equal(t, []string{"acme/jpeg", "default/crm"}, res.Created)
	jpeg, err := sender.Get(ctx, "acme", "jpeg")
	require.NoError(t, err)
	require.Equal(t, "image/jpeg", jpeg.ContentType)
	require.Equal(t, store.SourceFile, jpeg.Source)

	// Applying the same file again changes nothing.
	res, err = l.Reload(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"acme/jpeg", "default/crm"}, res.Unchanged)
	require.Empty(t, res.Created)
	require.Empty(t, res.Updated)

	// A webhook registered through the API keeps its id; the file's entry is refused.
	_, err = sender.Register(ctx, "default", outgoing.Registration{ID: "api-owned", URL: "https://example.com/api"})
	require.NoError(t, err)

	// An entry with a problem keeps its previous version, a new entry is created, a
	// removed one deleted, and every problem is at its line.
	l.write(t, `
- id: crm
  url: ftp://example.com/crm
- id: api-owned
  url: https://example.com/mine
- id: new
  workspace: nowhere
  url: https://example.com/new
- id: fresh
  url: https://example.com/fresh
`)
	res, err = l.Reload(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"default/fresh"}, res.Created)
	require.Equal(t, []string{"acme/jpeg"}, res.Deleted)
	require.Equal(t, []string{"default/crm"}, res.KeptPrevious)
	got := strs(res.Diagnostics)
	require.Len(t, got, 3, "%v", got)
	require.Contains(t, got[0], ":3:8: webhook \"crm\": url: must be an absolute http or https URL")
	require.Contains(t, got[1], ":4:7: webhook \"api-owned\" of workspace \"default\" was registered through the API")
	require.Contains(t, got[2], ":7:14: webhook \"new\": workspace \"nowhere\" does not exist")
	crm, err := sender.Get(ctx, "default", "crm")
	require.NoError(t, err)
	require.Equal(t, "https://example.com/crm", crm.URL, "kept its previous version")
	owned, err := sender.Get(ctx, "default", "api-owned")
	require.NoError(t, err)
	require.Equal(t, store.SourceAPI, owned.Source)

	// A syntax error changes nothing.
	l.write(t, "- id: crm\n  url: [\n")
	res, err = l.Reload(ctx)
	require.NoError(t, err)
	require.Len(t, res.Diagnostics, 1)
	require.Equal(t, []string{"default/crm", "default/fresh"}, res.KeptPrevious)
	require.Empty(t, res.Deleted)

	// An empty file removes every declared webhook, and only those.
	l.write(t, "[]\n")
	res, err = l.Reload(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"default/crm", "default/fresh"}, res.Deleted)
	list, err := sender.ListDeclared(ctx)
	require.NoError(t, err)
	require.Empty(t, list)
	_, err = sender.Get(ctx, "default", "api-owned")
	require.NoError(t, err)
}

// Chains in the file: entries are applied after the webhook they continue into, loops and
// mapping problems are reported at their line.
func TestLoaderChains(t *testing.T) {
	t.Parallel()
	l, sender := newLoader(t, nil)
	ctx := t.Context()
	l.write(t, `
- id: first
  url: https://example.com/1
  next:
    webhook: second
    when: response.status == 200
    data: {id: {$cel: response.data.id}, email: {$jmespath: trigger.data.email}}
- id: second
  url: https://example.com/2
  next: {webhookId: third, queryParams: {page: "1"}}
- id: third
  url: https://example.com/3
  queryParams: [page]
- id: loop-a
  url: https://example.com/a
  next: {webhook_id: loop-b}
- id: loop-b
  url: https://example.com/b
  next: {webhook_id: loop-a}
- id: typo
  url: https://example.com/t
  next:
    webhook_id: third
    data: {$cel: respons.data}
`)
	res, err := l.Reload(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"default/first", "default/second", "default/third"}, res.Created)
	got := strs(res.Diagnostics)
	require.Len(t, got, 3, "%v", got)
	require.Contains(t, got[0], `:16:22: webhook "loop-a": next.webhook_id: the chain would loop: loop-a → loop-b → loop-a`)
	require.Contains(t, got[1], `:19:22: webhook "loop-b": next.webhook_id: the chain would loop`)
	require.Contains(t, got[2], `:24:18: webhook "typo": next.data: CEL: undeclared reference to 'respons' (did you mean 'response'?)`)

	first, err := sender.Get(ctx, "default", "first")
	require.NoError(t, err)
	require.Equal(t, "second", first.Next.WebhookID)
	require.Equal(t, "response.status == 200", first.Next.When)
	require.Equal(t, map[string]any{"$jmespath": "trigger.data.email"}, first.Next.Data.(map[string]any)["email"])

	// Unchanged chains are not rewritten.
	l.write(t, `
- {id: third, url: "https://example.com/3", queryParams: [page]}
- {id: second, url: "https://example.com/2", next: {webhookId: third, queryParams: {page: "1"}}}
`)
	res, err = l.Reload(ctx)
	require.NoError(t, err)
	require.Empty(t, res.Diagnostics)
	require.Equal(t, []string{"default/second", "default/third"}, res.Unchanged)
	require.Equal(t, []string{"default/first"}, res.Deleted)
}
