package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

func jsonEndpoint(t *testing.T, status int, body func(n int) string) *apptest.Endpoint {
	return apptest.NewEndpoint(t, func(w http.ResponseWriter, _ *http.Request, n int, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Number", strings.Repeat("i", n))
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body(n)))
	})
}

// register registers a webhook from grpcurl-style JSON.
func register(t testing.TB, h *apptest.Harness, webhookJSON string) *hookmapv1.Webhook {
	t.Helper()
	req := &hookmapv1.RegisterWebhookRequest{}
	require.NoError(t, protojson.Unmarshal([]byte(`{"webhook": `+webhookJSON+`}`), req))
	w, err := h.Webhooks.RegisterWebhook(h.Ctx(), req)
	require.NoError(t, err)
	return w
}

// A three-hop chain with conditions, through the real server: the caller triggers the
// first webhook and gets the last answer under the first reference id; each hop is its
// own invocation, linked to the first.
func TestThreeHopChain(t *testing.T) {
	lookup := jsonEndpoint(t, 200, func(n int) string {
		if n == 1 {
			return `{"contact": {"id": 42, "plan": "pro"}}`
		}
		return `{"contact": {"id": 7, "plan": "free"}}`
	})
	upsert := jsonEndpoint(t, 201, func(int) string { return `{"deal": "d-1"}` })
	notify := jsonEndpoint(t, 200, func(int) string { return `{"ok": true}` })
	h := apptest.Start(t, apptest.WithAllowPrivate())
	ctx := h.Ctx()

	register(t, h, `{"id": "notify", "url": "`+notify.URL+`/notify", "query_params": ["deal"],
		"signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`)
	register(t, h, `{"id": "upsert", "url": "`+upsert.URL+`/deals", "next": {
		"webhook_id": "notify",
		"when": "response.status == 201",
		"data": {"text": {"$cel": "'deal ' + response.data.deal + ' for ' + trigger.data.email"}},
		"query_params": {"deal": {"$jmespath": "response.data.deal"}}}}`)
	w := register(t, h, `{"id": "lookup", "url": "`+lookup.URL+`/contacts", "next": {
		"webhook_id": "upsert",
		"when": {"$jmespath": "response.data.contact.plan == 'pro'"},
		"data": {"contact_id": {"$cel": "response.data.contact.id"}, "email": {"$cel": "trigger.data.email"}},
		"headers": {"X-Trace": {"$cel": "trigger.headers['x-trace']"}}}}`)
	require.Equal(t, "upsert", w.GetNext().GetWebhookId())

	data, err := structpb.NewValue(map[string]any{"email": "ada@example.com"})
	require.NoError(t, err)
	res, err := h.Webhooks.TriggerWebhook(ctx, &hookmapv1.TriggerWebhookRequest{
		WebhookId: "lookup", Data: data, Headers: map[string]string{"X-Trace": "t-1"},
	})
	require.NoError(t, err)
	require.False(t, res.GetError(), res.GetErrorMessage())
	require.Equal(t, int32(200), res.GetStatus())
	require.Equal(t, map[string]any{"ok": true}, res.GetData().AsInterface(), "the last answer")

	up := upsert.WaitFor(t, 1)[0]
	require.JSONEq(t, `{"contact_id": 42, "email": "ada@example.com"}`, string(up.Body))
	require.Equal(t, "t-1", up.Header.Get("X-Trace"))
	nt := notify.WaitFor(t, 1)[0]
	require.JSONEq(t, `{"text": "deal d-1 for ada@example.com"}`, string(nt.Body))
	require.Equal(t, "deal=d-1", nt.RawQuery)
	require.NotEmpty(t, nt.Header.Get("Webhook-Signature"))

	// Three records, linked to the id the caller got, which is the first call's.
	invs, err := h.Webhooks.ListInvocations(ctx, &hookmapv1.ListInvocationsRequest{ChainReferenceId: res.GetReferenceId()})
	require.NoError(t, err)
	require.Len(t, invs.GetInvocations(), 3)
	byHop := map[int32]*hookmapv1.Invocation{}
	for _, inv := range invs.GetInvocations() {
		require.Equal(t, res.GetReferenceId(), inv.GetChainReferenceId())
		byHop[inv.GetHop()] = inv
	}
	require.Equal(t, "lookup", byHop[1].GetWebhookId())
	require.Equal(t, res.GetReferenceId(), byHop[1].GetReferenceId())
	require.Equal(t, "upsert", byHop[2].GetWebhookId())
	require.Equal(t, int32(201), byHop[2].GetStatus())
	require.Equal(t, "notify", byHop[3].GetWebhookId())
	require.Equal(t, nt.Header.Get("Webhook-Id"), byHop[3].GetReferenceId())

	// The first condition is false for a free plan: the chain ends at lookup.
	res, err = h.Webhooks.TriggerWebhook(ctx, &hookmapv1.TriggerWebhookRequest{WebhookId: "lookup", Data: data})
	require.NoError(t, err)
	require.False(t, res.GetError())
	require.Equal(t, "free", res.GetData().GetStructValue().AsMap()["contact"].(map[string]any)["plan"])
	require.Len(t, upsert.Requests(), 1)

	// Cycles are refused at registration, with the field.
	_, err = h.Webhooks.UpdateWebhook(ctx, &hookmapv1.UpdateWebhookRequest{
		Webhook: &hookmapv1.Webhook{Id: "notify", Next: &hookmapv1.WebhookNext{WebhookId: "lookup"}},
	})
	st := apptest.RequireCode(t, err, codes.InvalidArgument, "the chain would loop: notify → lookup → upsert → notify")
	require.Contains(t, apptest.FieldViolations(st), "webhook.next.webhook_id")
	// A webhook in a chain cannot be deleted while another continues into it.
	_, err = h.Webhooks.DeleteWebhook(ctx, &hookmapv1.DeleteWebhookRequest{Id: "upsert"})
	apptest.RequireCode(t, err, codes.FailedPrecondition, `next webhook of "lookup"`)
}

// With auth on, a chain stays in its workspace: a next webhook of another workspace is
// not found, and a chain of the caller's own webhooks calls only them.
func TestChainWithAuthOn(t *testing.T) {
	mine := jsonEndpoint(t, 200, func(int) string { return `{"from": "a"}` })
	theirs := jsonEndpoint(t, 200, func(int) string { return `{"from": "b"}` })
	h := apptest.Start(t, apptest.WithAllowPrivate(), apptest.WithAdminToken(adminToken))
	admin := hookmapv1.NewAdminServiceClient(h.Conn)
	keys := map[string]context.Context{}
	for _, ws := range []string{"a", "b"} {
		_, err := admin.CreateWorkspace(h.As(adminToken), &hookmapv1.CreateWorkspaceRequest{Id: ws, Name: ws})
		require.NoError(t, err)
		k, err := admin.CreateApiKey(h.As(adminToken), &hookmapv1.CreateApiKeyRequest{WorkspaceId: ws, Name: "k"})
		require.NoError(t, err)
		keys[ws] = h.As(k.GetSecret())
	}
	_, err := h.Webhooks.RegisterWebhook(keys["b"], &hookmapv1.RegisterWebhookRequest{Webhook: &hookmapv1.Webhook{Id: "target", Url: theirs.URL + "/b"}})
	require.NoError(t, err)
	first := &hookmapv1.Webhook{Id: "first", Url: mine.URL + "/first", Next: &hookmapv1.WebhookNext{WebhookId: "target"}}
	_, err = h.Webhooks.RegisterWebhook(keys["a"], &hookmapv1.RegisterWebhookRequest{Webhook: first})
	st := apptest.RequireCode(t, err, codes.InvalidArgument, `no webhook "target" in the workspace`)
	require.Contains(t, apptest.FieldViolations(st), "webhook.next.webhook_id")

	_, err = h.Webhooks.RegisterWebhook(keys["a"], &hookmapv1.RegisterWebhookRequest{Webhook: &hookmapv1.Webhook{Id: "target", Url: mine.URL + "/target"}})
	require.NoError(t, err)
	_, err = h.Webhooks.RegisterWebhook(keys["a"], &hookmapv1.RegisterWebhookRequest{Webhook: first})
	require.NoError(t, err)
	res, err := h.Webhooks.TriggerWebhook(keys["a"], &hookmapv1.TriggerWebhookRequest{WebhookId: "first", Data: structpb.NewStringValue("x")})
	require.NoError(t, err)
	require.False(t, res.GetError(), res.GetErrorMessage())
	require.Equal(t, map[string]any{"from": "a"}, res.GetData().AsInterface())
	reqs := mine.WaitFor(t, 2)
	require.Equal(t, []string{"/first", "/target"}, []string{reqs[0].Path, reqs[1].Path})
	require.Empty(t, theirs.Requests())

	// The chain's records are a's alone.
	invs, err := h.Webhooks.ListInvocations(keys["b"], &hookmapv1.ListInvocationsRequest{ChainReferenceId: res.GetReferenceId()})
	require.NoError(t, err)
	require.Empty(t, invs.GetInvocations())
	invs, err = h.Webhooks.ListInvocations(keys["a"], &hookmapv1.ListInvocationsRequest{ChainReferenceId: res.GetReferenceId()})
	require.NoError(t, err)
	require.Len(t, invs.GetInvocations(), 2)
}
