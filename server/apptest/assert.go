package apptest

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/hookmap/hookmap/engine"
	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
)

// Struct is structpb.NewStruct that fails the test on error.
func Struct(t testing.TB, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	require.NoError(t, err)
	return s
}

// RequireCode asserts err is a gRPC status with code whose message, or one of its
// google.rpc.BadRequest field violations ("field: description"), contains contains.
func RequireCode(t testing.TB, err error, code codes.Code, contains string) *status.Status {
	t.Helper()
	require.Error(t, err)
	st, ok := status.FromError(err)
	require.True(t, ok, "not a gRPC status: %v", err)
	require.Equal(t, code, st.Code(), st.Message())
	text := st.Message()
	for field, desc := range FieldViolations(st) {
		text += "\n" + field + ": " + desc
	}
	require.Contains(t, text, contains)
	return st
}

// RequireReason is RequireCode that also asserts the status carries a google.rpc.ErrorInfo
// of domain hookmap.dev with reason.
func RequireReason(t testing.TB, err error, code codes.Code, reason, contains string) *status.Status {
	t.Helper()
	st := RequireCode(t, err, code, contains)
	require.Equal(t, reason, Reason(st), st.Message())
	return st
}

// Reason returns the reason of st's google.rpc.ErrorInfo of domain hookmap.dev ("" when
// it has none).
func Reason(st *status.Status) string {
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && ei.GetDomain() == "hookmap.dev" {
			return ei.GetReason()
		}
	}
	return ""
}

// FieldViolations returns the google.rpc.BadRequest field violations of st by field.
func FieldViolations(st *status.Status) map[string]string {
	out := map[string]string{}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out[v.GetField()] = v.GetDescription()
			}
		}
	}
	return out
}

// SetConnectorParameters sets the workspace's parameters of a connector (a global webhook
// app's signing secret, …) and fails the test on error.
func (h *Harness) SetConnectorParameters(connectorKey string, params map[string]any) {
	h.T.Helper()
	_, err := h.Connectors.SetConnectorParameters(h.Ctx(), &hookmapv1.SetConnectorParametersRequest{
		ConnectorKey: connectorKey, Parameters: Struct(h.T, params),
	})
	require.NoError(h.T, err)
}

// GlobalWebhookURL returns the URL of a connector's global webhook (what an operator pastes
// into the app's settings).
func (h *Harness) GlobalWebhookURL(connectorKey, key string) string {
	h.T.Helper()
	gws, err := h.Connectors.ListGlobalWebhooks(h.Ctx(), &hookmapv1.ListGlobalWebhooksRequest{ConnectorKey: connectorKey})
	require.NoError(h.T, err)
	for _, g := range gws.GetGlobalWebhooks() {
		if g.GetKey() == key {
			require.Contains(h.T, g.GetUrl(), "/hooks/g/")
			return g.GetUrl()
		}
	}
	require.Failf(h.T, "no global webhook", "connector %q has no global webhook %q: %v", connectorKey, key, gws.GetGlobalWebhooks())
	return ""
}

// Recorder is an HTTP client for engine.RunOptions that answers every request with 200
// and Body (JSON) and keeps the requests: method runs that never leave the process.
type Recorder struct {
	Body     string
	Requests []*http.Request
}

// Do records req and answers it.
func (r *Recorder) Do(req *http.Request) (*http.Response, error) {
	r.Requests = append(r.Requests, req)
	return &http.Response{
		StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json; charset=utf-8"}},
		Body: io.NopCloser(strings.NewReader(r.Body)), Request: req,
	}, nil
}

// LoadConnector loads the connector in dir alone and fails the test on any problem.
func LoadConnector(t testing.TB, dir string) *engine.Connector {
	t.Helper()
	set, diags := engine.Load(dir)
	require.Empty(t, diags)
	cs := set.Connectors()
	require.Len(t, cs, 1, "%s holds one connector", dir)
	return cs[0]
}

// RandomID returns 32 random hex characters.
func RandomID(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// SubscriptionState returns the opened state of a subscription of workspace default, as
// the connector's methods see it, and fails the test on error.
func (h *Harness) SubscriptionState(id string) map[string]any {
	h.T.Helper()
	sub, err := h.App.Core().Store.GetSubscription(h.Ctx(), "default", id)
	require.NoError(h.T, err)
	st, err := h.App.Core().SubscriptionState(sub)
	require.NoError(h.T, err)
	return st
}
