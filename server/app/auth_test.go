package app_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/structpb"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/api"
	"github.com/hookmap/hookmap/server/app"
	"github.com/hookmap/hookmap/server/apptest"
)

const adminToken = "admin-token-0123456789"

// workspaceA is what one workspace owns; other callers must never see or touch it.
type workspaceA struct {
	key, revokedKey, keyID                     string
	conn, sub, delivery, event, webhook, refID string
	consumer, destination                      string
	eventSeq                                   int64
}

// ids are the strings that must never appear in an answer to another workspace.
func (w *workspaceA) ids() []string {
	return []string{w.conn, w.sub, w.delivery, w.event, w.webhook, w.refID, w.keyID, w.destination}
}

// setUpWorkspaceA creates workspaces a and b (b's key is returned) and fills a with one of
// everything: connection, subscription, event, delivery, consumer, outgoing webhook,
// invocation and destination, API keys (one revoked).
func setUpWorkspaceA(t *testing.T, h *apptest.Harness) (*workspaceA, string) {
	admin := hookmapv1.NewAdminServiceClient(h.Conn)
	for _, ws := range []string{"a", "b"} {
		_, err := admin.CreateWorkspace(h.As(adminToken), &hookmapv1.CreateWorkspaceRequest{Id: ws, Name: ws})
		require.NoError(t, err)
	}
	newKey := func(ws string) *hookmapv1.CreateApiKeyResponse {
		k, err := admin.CreateApiKey(h.As(adminToken), &hookmapv1.CreateApiKeyRequest{WorkspaceId: ws, Name: "k"})
		require.NoError(t, err)
		return k
	}
	ka, kb, revoked := newKey("a"), newKey("b"), newKey("a")
	_, err := admin.RevokeApiKey(h.As(adminToken), &hookmapv1.RevokeApiKeyRequest{Id: revoked.GetApiKey().GetId()})
	require.NoError(t, err)

	a := &workspaceA{key: ka.GetSecret(), revokedKey: revoked.GetSecret(), keyID: ka.GetApiKey().GetId(), consumer: "consumer-of-a"}
	ctx := h.As(a.key)
	conn, err := h.Connections.CreateConnection(ctx, &hookmapv1.CreateConnectionRequest{ConnectorKey: "example-webhook", Name: "a-conn"})
	require.NoError(t, err)
	a.conn = conn.GetId()
	sub, err := h.Subscriptions.CreateSubscription(ctx, &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: a.conn, EventKey: "message", Parameters: apptest.Struct(t, map[string]any{"channel": "secret-channel-of-a"}),
	})
	require.NoError(t, err)
	a.sub = sub.GetId()
	r := h.PostJSON(sub.GetWebhookUri(), `{"messages":[{"id":"m-of-a","text":"private text of a"}]}`)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	evs, err := h.Events.ListEvents(ctx, &hookmapv1.ListEventsRequest{})
	require.NoError(t, err)
	require.Len(t, evs.GetEvents(), 1)
	a.event, a.eventSeq = evs.GetEvents()[0].GetId(), evs.GetEvents()[0].GetSeq()
	dels, err := h.Events.ListDeliveries(ctx, &hookmapv1.ListDeliveriesRequest{})
	require.NoError(t, err)
	require.Len(t, dels.GetDeliveries(), 1)
	a.delivery = dels.GetDeliveries()[0].GetId()
	_, err = h.Events.AckEvents(ctx, &hookmapv1.AckEventsRequest{Consumer: a.consumer, Seq: evs.GetEvents()[0].GetSeq()})
	require.NoError(t, err)

	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(endpoint.Close)
	hooks := hookmapv1.NewWebhookServiceClient(h.Conn)
	_, err = hooks.RegisterWebhook(ctx, &hookmapv1.RegisterWebhookRequest{Webhook: &hookmapv1.Webhook{
		Id: "hook-of-a", Url: endpoint.URL + "/in", Headers: map[string]string{"X-Api-Key": "header-secret-of-a"},
		SigningSecret: destSecret,
	}})
	require.NoError(t, err)
	a.webhook = "hook-of-a"
	tr, err := hooks.TriggerWebhook(ctx, &hookmapv1.TriggerWebhookRequest{WebhookId: a.webhook, Data: structpb.NewStringValue("x")})
	require.NoError(t, err)
	require.False(t, tr.GetError(), tr.GetErrorMessage())
	a.refID = tr.GetReferenceId()
	dest, err := h.Destinations.CreateDestination(ctx, &hookmapv1.CreateDestinationRequest{Destination: &hookmapv1.Destination{
		Id: "dest-of-a", WebhookId: a.webhook,
	}})
	require.NoError(t, err)
	a.destination = dest.GetId()
	return a, kb.GetSecret()
}

// request builds method's request with every id-like field pointing at workspace a's
// objects, so a caller from elsewhere asks for exactly what it must not get.
func (w *workspaceA) request(t *testing.T, m protoreflect.MethodDescriptor) proto.Message {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(m.Input().FullName())
	require.NoError(t, err)
	msg := mt.New()
	service := string(m.Parent().Name())
	idFor := map[string]string{
		"ConnectionService": w.conn, "SubscriptionService": w.sub, "EventService": w.delivery,
		"WebhookService": w.webhook, "AdminService": w.keyID, "DestinationService": w.destination,
	}
	var fill func(msg protoreflect.Message)
	fill = func(msg protoreflect.Message) {
		fields := msg.Descriptor().Fields()
		for i := 0; i < fields.Len(); i++ {
			f := fields.Get(i)
			var v string
			switch f.Name() {
			case "id":
				v = idFor[service]
			case "connection_id", "connection_ids":
				v = w.conn
			case "subscription_id", "subscription_ids":
				v = w.sub
			case "webhook_id":
				v = w.webhook
			case "destination_id":
				v = w.destination
			case "reference_id":
				v = w.refID
			case "consumer":
				v = w.consumer
			case "workspace_id":
				v = "a"
			case "connector_key":
				v = "example-webhook"
			case "event_key", "event_keys":
				v = "message"
			case "method":
				if service == "ConnectorService" {
					v = "handle"
				}
			}
			switch {
			case v != "" && f.Kind() == protoreflect.StringKind && f.IsList():
				msg.Mutable(f).List().Append(protoreflect.ValueOfString(v))
			case v != "" && f.Kind() == protoreflect.StringKind && !f.IsMap():
				msg.Set(f, protoreflect.ValueOfString(v))
			case f.Kind() == protoreflect.MessageKind && !f.IsList() && !f.IsMap() &&
				strings.HasPrefix(string(f.Message().FullName()), "hookmap.v1."):
				fill(msg.Mutable(f).Message())
			}
		}
	}
	fill(msg)
	// What filling by field name gets wrong, so that each of these requests is valid and
	// only the workspace can refuse it.
	fields := msg.Descriptor().Fields()
	switch m.FullName() {
	case "hookmap.v1.WebhookService.TriggerWebhook":
		msg.Set(fields.ByName("data"), protoreflect.ValueOfMessage(structpb.NewStringValue("x").ProtoReflect()))
	case "hookmap.v1.ConnectionService.AuthorizeConnection":
		msg.Clear(fields.ByName("connector_key")) // an existing connection: a's
	case "hookmap.v1.SubscriptionService.ReconcileWebhooks":
		msg.Set(fields.ByName("mode"), protoreflect.ValueOfEnum(protoreflect.EnumNumber(hookmapv1.ReconcileMode_RECONCILE_MODE_DRY_RUN)))
	case "hookmap.v1.DestinationService.RetryDestinationEvent":
		msg.Set(fields.ByName("seq"), protoreflect.ValueOfInt64(w.eventSeq))
	}
	return msg.Interface()
}

// call invokes any hookmap.v1 method; a server stream is read until it ends or 300 ms
// pass (a stream that stays open with nothing to send is what an empty workspace gets).
func call(ctx context.Context, conn *grpc.ClientConn, m protoreflect.MethodDescriptor, req proto.Message) ([]proto.Message, error) {
	name := "/" + string(m.Parent().FullName()) + "/" + string(m.Name())
	outType, err := protoregistry.GlobalTypes.FindMessageByName(m.Output().FullName())
	if err != nil {
		return nil, err
	}
	if !m.IsStreamingServer() {
		out := outType.New().Interface()
		err := conn.Invoke(ctx, name, req, out)
		return []proto.Message{out}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, name)
	if err != nil {
		return nil, err
	}
	if err := s.SendMsg(req); err != nil {
		return nil, err
	}
	if err := s.CloseSend(); err != nil {
		return nil, err
	}
	var got []proto.Message
	for {
		out := outType.New().Interface()
		if err := s.RecvMsg(out); err != nil {
			if status.Code(err) == codes.DeadlineExceeded {
				return got, nil
			}
			return got, err
		}
		got = append(got, out)
	}
}

// everyMethod lists every RPC of every hookmap.v1 service the server registers.
func everyMethod(t *testing.T) []protoreflect.MethodDescriptor {
	var ms []protoreflect.MethodDescriptor
	for _, name := range api.ServiceNames {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		require.NoError(t, err)
		sd := d.(protoreflect.ServiceDescriptor)
		for i := 0; i < sd.Methods().Len(); i++ {
			ms = append(ms, sd.Methods().Get(i))
		}
	}
	require.Greater(t, len(ms), 30)
	return ms
}

// namesObjectOfA lists the RPCs whose request (as request builds it) names an object of
// workspace a by id.
var namesObjectOfA = map[string]bool{
	"GetConnection": true, "UpdateConnection": true, "DeleteConnection": true, "AuthorizeConnection": true,
	"CreateSubscription": true, "GetSubscription": true, "ListSubscriptions": true, "DeleteSubscription": true,
	"RefreshSubscription": true, "ReconcileWebhooks": true,
	"GetDelivery": true, "ReplayDelivery": true,
	"GetWebhook": true, "UpdateWebhook": true, "DeleteWebhook": true, "TriggerWebhook": true, "GetInvocation": true,
	"GetDestination": true, "UpdateDestination": true, "DeleteDestination": true, "PauseDestination": true,
	"ResumeDestination": true, "ListDestinationEvents": true, "RetryDestinationEvent": true, "RetryDestinationEvents": true,
}

// TestEveryRPCWithAuthOn runs the server as production does (auth on) and calls every RPC
// with no token, a wrong token, a revoked key, another workspace's key and the admin token
// acting on another workspace: each answers UNAUTHENTICATED, PERMISSION_DENIED or
// NOT_FOUND (or an empty answer of the caller's own workspace), never a crash and never
// anything of workspace a; a's objects are all still there afterwards.
func TestEveryRPCWithAuthOn(t *testing.T) {
	h := apptest.Start(t, apptest.WithConnectors("../../connectors"), apptest.WithAdminToken(adminToken), apptest.WithAllowPrivate())
	a, keyB := setUpWorkspaceA(t, h)

	type caller struct {
		name  string
		ctx   func() context.Context
		codes []codes.Code // what an answer may be besides OK
	}
	denied := []codes.Code{codes.Unauthenticated}
	elsewhere := []codes.Code{codes.NotFound, codes.PermissionDenied, codes.InvalidArgument, codes.FailedPrecondition}
	callers := []caller{
		{"no token", h.Ctx, denied},
		{"wrong token", func() context.Context { return h.As("hmk_not-a-key-not-a-key-not-a-key") }, denied},
		{"admin token with a typo", func() context.Context { return h.As(adminToken + "x") }, denied},
		{"revoked key", func() context.Context { return h.As(a.revokedKey) }, denied},
		{"another workspace's key", func() context.Context { return h.As(keyB) }, elsewhere},
		{"admin token on another workspace", func() context.Context { return h.As(adminToken, "b") }, elsewhere},
	}
	for _, c := range callers {
		for _, m := range everyMethod(t) {
			if c.name == "admin token on another workspace" && m.Parent().Name() == "AdminService" {
				continue // the admin token manages every workspace and key by design
			}
			t.Run(c.name+"/"+string(m.Name()), func(t *testing.T) {
				answers, err := call(c.ctx(), h.Conn, m, a.request(t, m))
				code := status.Code(err)
				if code != codes.OK || len(c.codes) == 1 {
					require.Contains(t, c.codes, code, "%s: %v", m.FullName(), err)
				}
				// A call that names one of a's objects is answered as if it did not exist:
				// refused as invalid, it would prove nothing about isolation.
				if c.name != "no token" && len(c.codes) > 1 && namesObjectOfA[string(m.Name())] {
					require.Equal(t, codes.NotFound, code, "%s: %v", m.FullName(), err)
				}
				// Admin calls from a workspace key are refused outright.
				if m.Parent().Name() == "AdminService" && c.name == "another workspace's key" {
					require.Equal(t, codes.PermissionDenied, code, "%v", err)
				}
				for _, ans := range answers {
					js, jerr := protojson.Marshal(ans)
					require.NoError(t, jerr)
					for _, id := range a.ids() {
						require.NotContains(t, string(js), id, "%s answered workspace a's data to %s", m.FullName(), c.name)
					}
					require.NotContains(t, string(js), "private text of a")
					require.NotContains(t, string(js), "secret-channel-of-a")
				}
				if err != nil {
					require.NotContains(t, err.Error(), "private text of a")
				}
			})
		}
	}

	// Workspace a is intact and its owner still sees everything.
	ctx := h.As(a.key)
	_, err := h.Connections.GetConnection(ctx, &hookmapv1.GetConnectionRequest{Id: a.conn})
	require.NoError(t, err)
	sub, err := h.Subscriptions.GetSubscription(ctx, &hookmapv1.GetSubscriptionRequest{Id: a.sub})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus())
	_, err = hookmapv1.NewWebhookServiceClient(h.Conn).GetWebhook(ctx, &hookmapv1.GetWebhookRequest{Id: a.webhook})
	require.NoError(t, err)
	dest, err := h.Destinations.GetDestination(ctx, &hookmapv1.GetDestinationRequest{Id: a.destination})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.DestinationStatus_DESTINATION_STATUS_ACTIVE, dest.GetStatus())
	evs, err := h.Events.ListEvents(ctx, &hookmapv1.ListEventsRequest{})
	require.NoError(t, err)
	require.Len(t, evs.GetEvents(), 1)
	// The admin token reaches a through the workspace header.
	got, err := h.Connections.GetConnection(h.As(adminToken, "a"), &hookmapv1.GetConnectionRequest{Id: a.conn})
	require.NoError(t, err)
	require.Equal(t, "a-conn", got.GetName())
}

// gRPC health follows the store: SERVING while it answers, NOT_SERVING once it does not.
func TestHealthAsksTheStore(t *testing.T) {
	h := apptest.Start(t)
	hc := healthpb.NewHealthClient(h.Conn)
	for _, svc := range append([]string{""}, api.ServiceNames...) {
		r, err := hc.Check(h.Ctx(), &healthpb.HealthCheckRequest{Service: svc})
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, r.GetStatus(), svc)
	}
	require.NoError(t, h.App.CheckHealth(h.Ctx()))
	require.NoError(t, h.App.Store().Close()) // the store goes away under the running server
	require.Error(t, h.App.CheckHealth(h.Ctx()))
	for _, svc := range append([]string{""}, api.ServiceNames...) {
		r, err := hc.Check(h.Ctx(), &healthpb.HealthCheckRequest{Service: svc})
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, r.GetStatus(), svc)
	}
	resp := h.Do(http.MethodGet, h.BaseURL+"/readyz", nil)
	require.Equal(t, http.StatusServiceUnavailable, resp.Status)
}

// A start that fails halfway (the HTTP port is taken) undoes what it did: it returns a
// *StartError naming the flag, and the same data dir starts cleanly right after (the
// store was closed; goleak in TestMain checks no goroutine was left behind).
func TestFailedStartCleansUp(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	cfg := app.Defaults()
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.PublicURL = "127.0.0.1:0", busy.Addr().String(), ""
	cfg.DataDir = t.TempDir()
	cfg.Connectors = []string{"../../connectors"}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err = app.Start(context.Background(), cfg, log)
	var se *app.StartError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "--http-addr", se.Flag)

	cfg.HTTPAddr = "127.0.0.1:0"
	a, err := app.Start(context.Background(), cfg, log)
	require.NoError(t, err)
	a.Stop()
}

// A key in use (its lookups cached by the SQLite store) is refused by the very next call
// once the admin revokes it.
func TestRevokedKeyInUseIsRefusedAtOnce(t *testing.T) {
	h := apptest.Start(t, apptest.WithAdminToken(adminToken))
	admin := hookmapv1.NewAdminServiceClient(h.Conn)
	_, err := admin.CreateWorkspace(h.As(adminToken), &hookmapv1.CreateWorkspaceRequest{Id: "a", Name: "a"})
	require.NoError(t, err)
	k, err := admin.CreateApiKey(h.As(adminToken), &hookmapv1.CreateApiKeyRequest{WorkspaceId: "a", Name: "k"})
	require.NoError(t, err)
	for range 3 {
		_, err := h.Connections.ListConnections(h.As(k.GetSecret()), &hookmapv1.ListConnectionsRequest{})
		require.NoError(t, err)
	}
	_, err = admin.RevokeApiKey(h.As(adminToken), &hookmapv1.RevokeApiKeyRequest{Id: k.GetApiKey().GetId()})
	require.NoError(t, err)
	_, err = h.Connections.ListConnections(h.As(k.GetSecret()), &hookmapv1.ListConnectionsRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	require.ErrorContains(t, err, "revoked")
}
