package app_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

func hexHMAC(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

func evaluate(h *apptest.Harness, req *hookmapv1.EvaluateMethodRequest) (map[string]any, error) {
	resp, err := h.Connectors.EvaluateMethod(h.Ctx(), req)
	if err != nil {
		return nil, err
	}
	return resp.GetOutput().GetStructValue().AsMap(), nil
}

// EvaluateMethod runs a verify block with the handle's variables and answers why a
// request fails, as the receiver would decide it.
func TestEvaluateVerify(t *testing.T) {
	h := apptest.Start(t, apptest.WithConnectors("../../connectors", "testdata/connectors"))
	const secret, body = "s3cret-of-the-hook", `{"action":"opened","issue":{"id":1}}`
	github := func(input map[string]any) (map[string]any, error) {
		return evaluate(h, &hookmapv1.EvaluateMethodRequest{
			ConnectorKey: "github", EventKey: "repo-events", Method: "verify", Input: apptest.Struct(t, input),
		})
	}

	out, err := github(map[string]any{
		"webhookSecret": secret, "rawBody": body,
		"headers": map[string]any{"X-Hub-Signature-256": "sha256=" + hexHMAC(secret, body), "content-type": "application/json"},
	})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"verified": true, "scheme": "github"}, out)

	for name, tc := range map[string]struct {
		input          map[string]any
		reason, detail string
	}{
		"another secret": {map[string]any{"webhookSecret": "other", "rawBody": body,
			"headers": map[string]any{"x-hub-signature-256": "sha256=" + hexHMAC(secret, body)}}, "mismatch", "github: signature mismatch"},
		"body changed": {map[string]any{"webhookSecret": secret, "rawBody": body + " ",
			"headers": map[string]any{"x-hub-signature-256": "sha256=" + hexHMAC(secret, body)}}, "mismatch", "signature mismatch"},
		"no header": {map[string]any{"webhookSecret": secret, "rawBody": body}, "missing_header", "missing header X-Hub-Signature-256"},
		"no secret": {map[string]any{"rawBody": body,
			"headers": map[string]any{"x-hub-signature-256": "sha256=" + hexHMAC(secret, body)}}, "no_secret", "the verify secret is empty"},
	} {
		out, err := github(tc.input)
		require.NoError(t, err, name)
		require.Equal(t, false, out["verified"], name)
		require.Equal(t, tc.reason, out["reason"], name)
		require.Contains(t, out["message"], tc.detail, name)
		require.NotContains(t, out["message"], hexHMAC(secret, body), name)
	}

	// A timestamped scheme on a global webhook: the verify block sees the workspace's
	// connector parameters as parameters.
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	slackBody := `{"type":"event_callback","team_id":"T1","event_id":"Ev1","event":{"type":"message"}}`
	slack := func(stamp string) (map[string]any, error) {
		return evaluate(h, &hookmapv1.EvaluateMethodRequest{
			ConnectorKey: "slack", GlobalWebhookKey: "events", Method: "verify", Input: apptest.Struct(t, map[string]any{
				"parameters": map[string]any{"signingSecret": "slack-secret"}, "rawBody": slackBody,
				"headers": map[string]any{"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + hexHMAC("slack-secret", "v0:"+stamp+":"+slackBody)},
			}),
		})
	}
	out, err = slack(ts)
	require.NoError(t, err)
	require.Equal(t, true, out["verified"], out)
	out, err = slack(strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10))
	require.NoError(t, err)
	require.Equal(t, "stale_timestamp", out["reason"], out)

	// verify.skipWhen: the handshake passes unsigned while there is no secret, and only then.
	handshake := func(state map[string]any) (map[string]any, error) {
		return evaluate(h, &hookmapv1.EvaluateMethodRequest{
			ConnectorKey: "handshake", EventKey: "tasks", Method: "verify", Input: apptest.Struct(t, map[string]any{
				"state": state, "headers": map[string]any{"X-Hook-Secret": "abc"},
			}),
		})
	}
	out, err = handshake(map[string]any{})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"verified": true, "skipped": true, "scheme": "hmac"}, out)
	out, err = handshake(map[string]any{"hookSecret": "abc"})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"verified": false, "scheme": "hmac", "reason": "missing_header", "message": "hmac: missing header X-Hook-Signature"}, out)

	// A {$cel: BOOL} block that is false, with data parsed from rawBody.
	out, err = evaluate(h, &hookmapv1.EvaluateMethodRequest{
		ConnectorKey: "microsoft-graph", EventKey: "changes", Method: "verify", Input: apptest.Struct(t, map[string]any{
			"webhookSecret": "client-state", "rawBody": `{"value":[{"clientState":"forged"}]}`,
			"headers": map[string]any{"Content-Type": "application/json"},
		}),
	})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"verified": false, "scheme": "cel", "reason": "false", "message": "the verify expression is false"}, out)
}

// Input keys must be variables of the method: a misspelled one is refused with the list.
func TestEvaluateRejectsUnknownVariables(t *testing.T) {
	h := apptest.Start(t, apptest.WithConnectors("../../connectors", "testdata/connectors"))
	_, err := evaluate(h, &hookmapv1.EvaluateMethodRequest{
		ConnectorKey: "github", EventKey: "repo-events", Method: "verify",
		Input: apptest.Struct(t, map[string]any{"rawbody": "{}", "webhookSecret": "x"}),
	})
	st := apptest.RequireCode(t, err, codes.InvalidArgument, `unknown variable "rawbody" (did you mean "rawBody"?)`)
	require.Contains(t, apptest.FieldViolations(st)["input.rawbody"], "the variables of verify are body, connection, connectorParameters, credentials, data, headers, method, parameters, query, rawBody, state, url, webhookSecret")

	_, err = evaluate(h, &hookmapv1.EvaluateMethodRequest{
		ConnectorKey: "example-webhook", EventKey: "message", Method: "handle",
		Input: apptest.Struct(t, map[string]any{"dta": map[string]any{}, "state": map[string]any{}, "secret": "x"}),
	})
	st = apptest.RequireCode(t, err, codes.InvalidArgument, `input.dta: unknown variable "dta" (did you mean "data"?)`)
	require.Len(t, apptest.FieldViolations(st), 2)
	require.NotContains(t, apptest.FieldViolations(st)["input.secret"], "did you mean")

	// Known variables run the method as before.
	out, err := evaluate(h, &hookmapv1.EvaluateMethodRequest{
		ConnectorKey: "example-webhook", EventKey: "message", Method: "handle",
		Input: apptest.Struct(t, map[string]any{"data": map[string]any{"id": "m1", "text": "hi"}}),
	})
	require.NoError(t, err)
	require.Len(t, out["events"], 1)

	// A method that is not there names the ones that are, verify included.
	_, err = evaluate(h, &hookmapv1.EvaluateMethodRequest{ConnectorKey: "github", EventKey: "repo-events", Method: "verfy"})
	apptest.RequireCode(t, err, codes.FailedPrecondition, `has no method "verfy" (it has: delete, handle, list, subscribe, unsubscribe, verify)`)
	_, err = evaluate(h, &hookmapv1.EvaluateMethodRequest{ConnectorKey: "example-webhook", EventKey: "message", Method: "verify"})
	apptest.RequireCode(t, err, codes.FailedPrecondition, `event "message" of connector "example-webhook" has no verify block`)
	_, err = evaluate(h, &hookmapv1.EvaluateMethodRequest{ConnectorKey: "github", Method: "handle"})
	st = apptest.RequireCode(t, err, codes.InvalidArgument, "exactly one of event_key and global_webhook_key")
	_, ok := status.FromError(err)
	require.True(t, ok)
	require.Contains(t, apptest.FieldViolations(st), "event_key")
}
