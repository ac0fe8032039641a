package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/app"
	"github.com/hookmap/hookmap/server/apptest"
)

// jpeg is the start of a JPEG file: bytes that are not UTF-8.
var jpeg = []byte{0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00, 0x01, 0x01, 0x00, 0xff, 0xd9}

// seedSendJPEG is the plugin webhook format's own binary example, verbatim but for the
// URL (a loopback endpoint instead of postman-echo.com).
func seedSendJPEG(url string) string {
	return `{
  "id": "send-jpeg",
  "url": "` + url + `",
  "headers": {
    "Content-Type": "image/jpeg"
  },
  "payload_encoding": "base64"
}`
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// triggerJPEG sends the JPEG through webhook id and checks what the endpoint received.
func triggerJPEG(t *testing.T, h *apptest.Harness, ep *apptest.Endpoint, id string, n int) {
	t.Helper()
	res, err := h.Webhooks.TriggerWebhook(h.Ctx(), &hookmapv1.TriggerWebhookRequest{
		WebhookId: id, Data: structpb.NewStringValue(base64.StdEncoding.EncodeToString(jpeg)),
	})
	require.NoError(t, err)
	require.False(t, res.GetError(), res.GetErrorMessage())
	got := ep.WaitFor(t, n)[n-1]
	require.Equal(t, http.MethodPost, got.Method)
	require.Equal(t, "image/jpeg", got.Header.Get("Content-Type"))
	require.True(t, bytes.Equal(jpeg, got.Body), "the decoded bytes, exactly")
}

// The seed's send-jpeg registration works as written: from the webhooks file, verbatim,
// and through RegisterWebhook (whose JSON names the encoding by its enum name), where the
// answer says the Content-Type header became the content type.
func TestSeedSendJPEG(t *testing.T) {
	ep := apptest.NewEndpoint(t, nil)
	file := writeFile(t, "webhooks.json", "["+seedSendJPEG(ep.URL+"/post")+"]")
	h := apptest.Start(t, apptest.WithAllowPrivate(), apptest.WithWebhooksFile(file))

	w, err := h.Webhooks.GetWebhook(h.Ctx(), &hookmapv1.GetWebhookRequest{Id: "send-jpeg"})
	require.NoError(t, err)
	require.Equal(t, "image/jpeg", w.GetContentType())
	require.Equal(t, hookmapv1.PayloadEncoding_PAYLOAD_ENCODING_BASE64, w.GetPayloadEncoding())
	require.Equal(t, "POST", w.GetMethod())
	require.Empty(t, w.GetHeaderNames())
	require.Equal(t, hookmapv1.WebhookSource_WEBHOOK_SOURCE_FILE, w.GetSource())
	triggerJPEG(t, h, ep, "send-jpeg", 1)

	// Through the API: the same object, the encoding by its enum name, another id.
	req := &hookmapv1.RegisterWebhookRequest{}
	body := strings.Replace(seedSendJPEG(ep.URL+"/post"), `"base64"`, `"PAYLOAD_ENCODING_BASE64"`, 1)
	body = strings.Replace(body, `"send-jpeg"`, `"send-jpeg-api"`, 1)
	require.NoError(t, protojson.Unmarshal([]byte(`{"webhook": `+body+`}`), req))
	w, err = h.Webhooks.RegisterWebhook(h.Ctx(), req)
	require.NoError(t, err)
	require.Equal(t, "image/jpeg", w.GetContentType())
	require.Empty(t, w.GetHeaderNames())
	require.Equal(t, []string{`webhook.headers[Content-Type] "image/jpeg" is used as content_type`}, w.GetNotes())
	require.Equal(t, hookmapv1.WebhookSource_WEBHOOK_SOURCE_API, w.GetSource())
	triggerJPEG(t, h, ep, "send-jpeg-api", 2)

	// Only a conflict with an explicit content_type is refused.
	req.Webhook.Id, req.Webhook.ContentType = "send-png", "image/png"
	_, err = h.Webhooks.RegisterWebhook(h.Ctx(), req)
	st := apptest.RequireCode(t, err, codes.InvalidArgument, `conflicts with content_type "image/png"`)
	require.Contains(t, apptest.FieldViolations(st), "webhook.headers[Content-Type]")
}

// A file of registrations with a bad entry: the others are applied at start, the bad one
// is reported at its line, and fixing the file and reloading applies it.
func TestWebhooksFileBadEntryAndReload(t *testing.T) {
	ep := apptest.NewEndpoint(t, func(w http.ResponseWriter, _ *http.Request, _ int, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok": true}`))
	})
	t.Setenv("HOOKMAP_TEST_CRM_TOKEN", "sk_test_file")
	good := `# Declared webhooks: secrets come from the environment.
- id: crm
  url: ` + ep.URL + `/crm
  headers:
    Authorization: Bearer ${env:HOOKMAP_TEST_CRM_TOKEN}
  queryParams: [dry_run]
`
	bad := `- id: broken
  url: ` + ep.URL + `/broken
  method: FETCH
`
	file := writeFile(t, "webhooks.yaml", good+bad)
	h := apptest.Start(t, apptest.WithAllowPrivate(), apptest.WithWebhooksFile(file))
	ctx := h.Ctx()

	res, err := h.Webhooks.TriggerWebhook(ctx, &hookmapv1.TriggerWebhookRequest{
		WebhookId: "crm", Data: structpb.NewStringValue("hi"), QueryParams: map[string]string{"dry_run": "1"},
	})
	require.NoError(t, err)
	require.Equal(t, int32(200), res.GetStatus())
	got := ep.WaitFor(t, 1)[0]
	require.Equal(t, "Bearer sk_test_file", got.Header.Get("Authorization"))
	require.Equal(t, "dry_run=1", got.RawQuery)
	_, err = h.Webhooks.GetWebhook(ctx, &hookmapv1.GetWebhookRequest{Id: "broken"})
	apptest.RequireCode(t, err, codes.NotFound, "broken")

	// The reload RPC reports the problem at its line (line 8: the bad entry's method).
	rr, err := h.Webhooks.ReloadWebhooks(ctx, &hookmapv1.ReloadWebhooksRequest{})
	require.NoError(t, err)
	require.Len(t, rr.GetDiagnostics(), 1)
	d := rr.GetDiagnostics()[0]
	require.Equal(t, file, d.GetFile())
	require.Equal(t, int32(9), d.GetLine())
	require.Equal(t, int32(11), d.GetColumn())
	require.Contains(t, d.GetMessage(), `webhook "broken": method: "FETCH" is not one of GET, POST, PUT, PATCH, DELETE`)
	require.Equal(t, []string{"default/crm"}, rr.GetUnchanged())

	// A declared webhook changes only through the file.
	_, err = h.Webhooks.UpdateWebhook(ctx, &hookmapv1.UpdateWebhookRequest{Webhook: &hookmapv1.Webhook{Id: "crm", Url: ep.URL + "/elsewhere"}})
	apptest.RequireCode(t, err, codes.FailedPrecondition, "webhooks file")
	_, err = h.Webhooks.DeleteWebhook(ctx, &hookmapv1.DeleteWebhookRequest{Id: "crm"})
	apptest.RequireCode(t, err, codes.FailedPrecondition, "webhooks file")

	// Fixed: the entry is created; crm left the file and is deleted.
	require.NoError(t, os.WriteFile(file, []byte(strings.Replace(bad, "FETCH", "PUT", 1)), 0o600))
	rr, err = h.Webhooks.ReloadWebhooks(ctx, &hookmapv1.ReloadWebhooksRequest{})
	require.NoError(t, err)
	require.Empty(t, rr.GetDiagnostics())
	require.Equal(t, []string{"default/broken"}, rr.GetCreated())
	require.Equal(t, []string{"default/crm"}, rr.GetDeleted())
	w, err := h.Webhooks.GetWebhook(ctx, &hookmapv1.GetWebhookRequest{Id: "broken"})
	require.NoError(t, err)
	require.Equal(t, "PUT", w.GetMethod())

	// The declared webhooks survive a restart, which applies the file again.
	h.Restart()
	w, err = h.Webhooks.GetWebhook(h.Ctx(), &hookmapv1.GetWebhookRequest{Id: "broken"})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.WebhookSource_WEBHOOK_SOURCE_FILE, w.GetSource())
}

// A webhooks file that cannot be read stops the start with the flag's name.
func TestWebhooksFileMissing(t *testing.T) {
	cfg := app.Defaults()
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.PublicURL, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", "", t.TempDir()
	cfg.WebhooksFile = filepath.Join(t.TempDir(), "nope.yaml")
	_, err := app.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	var se *app.StartError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "--webhooks", se.Flag)
	require.ErrorContains(t, err, "cannot read the webhooks file")
}

// With auth on, a webhook the file declares in workspace b is b's alone: b's key triggers
// it but cannot change it, another workspace's key does not see it, and only the admin
// token reloads the file through the API (SIGHUP reloads it too).
func TestWebhooksFileWithAuthOn(t *testing.T) {
	ep := apptest.NewEndpoint(t, func(w http.ResponseWriter, _ *http.Request, _ int, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok": true}`))
	})
	file := writeFile(t, "webhooks.yaml", "- id: crm\n  workspace: b\n  url: "+ep.URL+"/crm\n")
	h := apptest.Start(t, apptest.WithAllowPrivate(), apptest.WithWebhooksFile(file), apptest.WithAdminToken(adminToken))
	admin := hookmapv1.NewAdminServiceClient(h.Conn)
	keys := map[string]string{}
	for _, ws := range []string{"a", "b"} {
		_, err := admin.CreateWorkspace(h.As(adminToken), &hookmapv1.CreateWorkspaceRequest{Id: ws, Name: ws})
		require.NoError(t, err)
		k, err := admin.CreateApiKey(h.As(adminToken), &hookmapv1.CreateApiKeyRequest{WorkspaceId: ws, Name: "k"})
		require.NoError(t, err)
		keys[ws] = k.GetSecret()
	}
	asA, asB := h.As(keys["a"]), h.As(keys["b"])

	_, err := h.Webhooks.ReloadWebhooks(asB, &hookmapv1.ReloadWebhooksRequest{})
	apptest.RequireCode(t, err, codes.PermissionDenied, "")
	_, err = h.Webhooks.ReloadWebhooks(h.Ctx(), &hookmapv1.ReloadWebhooksRequest{})
	apptest.RequireCode(t, err, codes.Unauthenticated, "")
	rr, err := h.Webhooks.ReloadWebhooks(h.As(adminToken), &hookmapv1.ReloadWebhooksRequest{})
	require.NoError(t, err)
	require.Empty(t, rr.GetDiagnostics())
	require.Contains(t, append(rr.GetCreated(), rr.GetUnchanged()...), "b/crm")

	res, err := h.Webhooks.TriggerWebhook(asB, &hookmapv1.TriggerWebhookRequest{WebhookId: "crm", Data: structpb.NewStringValue("hi")})
	require.NoError(t, err)
	require.Equal(t, int32(200), res.GetStatus())
	require.Equal(t, "/crm", ep.WaitFor(t, 1)[0].Path)
	_, err = h.Webhooks.DeleteWebhook(asB, &hookmapv1.DeleteWebhookRequest{Id: "crm"})
	apptest.RequireCode(t, err, codes.FailedPrecondition, "webhooks file")

	_, err = h.Webhooks.GetWebhook(asA, &hookmapv1.GetWebhookRequest{Id: "crm"})
	apptest.RequireCode(t, err, codes.NotFound, "crm")
	_, err = h.Webhooks.TriggerWebhook(asA, &hookmapv1.TriggerWebhookRequest{WebhookId: "crm", Data: structpb.NewStringValue("hi")})
	require.Error(t, err)
	require.Len(t, ep.Requests(), 1, "a's trigger reached nothing")

	// SIGHUP (App.Reload) applies the file again: crm leaves it, erp joins it.
	require.NoError(t, os.WriteFile(file, []byte("- id: erp\n  workspace: b\n  url: "+ep.URL+"/erp\n"), 0o600))
	h.App.Reload(h.Ctx())
	_, err = h.Webhooks.GetWebhook(asB, &hookmapv1.GetWebhookRequest{Id: "erp"})
	require.NoError(t, err)
	_, err = h.Webhooks.GetWebhook(asB, &hookmapv1.GetWebhookRequest{Id: "crm"})
	apptest.RequireCode(t, err, codes.NotFound, "crm")
}
