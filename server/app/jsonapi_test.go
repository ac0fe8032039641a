package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/app"
	"github.com/hookmap/hookmap/server/apptest"
)

// The JSON API is the gRPC server's own handlers: the same answers, the same errors with
// their field violations, the same auth.
func TestJSONAPI(t *testing.T) {
	h := start(t)

	var list struct {
		Connectors []struct {
			Key    string `json:"key"`
			Events []struct {
				Key string `json:"secret"`
			} `json:"events"`
		} `json:"connectors"`
	}
	h.APIOK("hookmap.v1.ConnectorService/ListConnectors", `{}`, "", &list)
	var keys []string
	for _, c := range list.Connectors {
		keys = append(keys, c.Key)
	}
	require.Contains(t, keys, "example-webhook")

	// Create through JSON, read back through gRPC.
	var conn struct{ ID string }
	h.APIOK("hookmap.v1.ConnectionService/CreateConnection", `{"connectorKey":"example-webhook","name":"json"}`, "", &conn)
	got, err := h.Connections.GetConnection(h.Ctx(), &hookmapv1.GetConnectionRequest{Id: conn.ID})
	require.NoError(t, err)
	require.Equal(t, "json", got.GetName())
	var sub struct {
		ID         string `json:"id"`
		WebhookURI string `json:"webhookUri"`
		Status     string `json:"status"`
	}
	// proto field names are accepted too.
	h.APIOK("hookmap.v1.SubscriptionService/CreateSubscription",
		`{"connection_id":"`+conn.ID+`","event_key":"message","parameters":{"channel":"general"}}`, "", &sub)
	require.Equal(t, "SUBSCRIPTION_STATUS_ACTIVE", sub.Status)
	require.Equal(t, h.Hook("/hooks/"+sub.ID), sub.WebhookURI)

	t.Run("invalid argument carries the code and field violations", func(t *testing.T) {
		r := h.API("hookmap.v1.SubscriptionService/CreateSubscription",
			`{"connectionId":"`+conn.ID+`","eventKey":"message","parameters":{"channel":""}}`, "")
		require.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
		require.Equal(t, "application/json", r.Header.Get("Content-Type"))
		e := apptest.DecodeAPIError(t, r)
		require.Equal(t, "invalid_argument", e.Code)
		require.Contains(t, e.Fields(), "parameters.channel", "%s", r.Body)
	})
	t.Run("not found", func(t *testing.T) {
		r := h.API("hookmap.v1.ConnectionService/GetConnection", `{"id":"nope"}`, "")
		require.Equal(t, http.StatusNotFound, r.Status)
		e := apptest.DecodeAPIError(t, r)
		require.Equal(t, "not_found", e.Code)
		require.Contains(t, e.Message, "nope")
	})
	t.Run("malformed JSON", func(t *testing.T) {
		r := h.API("hookmap.v1.ConnectionService/GetConnection", `{"id":`, "")
		require.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
		require.Equal(t, "invalid_argument", apptest.DecodeAPIError(t, r).Code)
	})
	t.Run("unknown RPC", func(t *testing.T) {
		r := h.API("hookmap.v1.ConnectionService/Nope", `{}`, "")
		require.Equal(t, http.StatusNotFound, r.Status)
		require.Contains(t, apptest.DecodeAPIError(t, r).Message, "no such RPC")
	})
	t.Run("cross-origin requests are refused", func(t *testing.T) {
		r := h.API("hookmap.v1.ConnectorService/ListConnectors", `{}`, "", "Origin", "http://evil.example")
		require.Equal(t, http.StatusForbidden, r.Status)
		r = h.API("hookmap.v1.ConnectorService/ListConnectors", `{}`, "", "Origin", h.BaseURL)
		require.Equal(t, http.StatusOK, r.Status, "same origin")
	})
	t.Run("server stream", func(t *testing.T) {
		ctx, cancel := context.WithCancel(h.Ctx())
		defer cancel()
		s := h.OpenAPIStream(ctx, "hookmap.v1.EventService/StreamEvents", `{"consumer":"json-tail","start":{"latest":true}}`, "")
		require.Equal(t, http.StatusOK, s.Status)
		r := h.PostJSON(sub.WebhookURI, `{"id":"m1","text":"hello"}`)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		msg, end, err := s.Next()
		require.NoError(t, err)
		require.Nil(t, end)
		var ev struct {
			Seq            string         `json:"seq"`
			Type           string         `json:"type"`
			SubscriptionID string         `json:"subscriptionId"`
			Record         map[string]any `json:"record"`
		}
		require.NoError(t, json.Unmarshal(msg, &ev), "%s", msg)
		require.Equal(t, "message.created", ev.Type)
		require.Equal(t, sub.ID, ev.SubscriptionID)
		require.Equal(t, "hello", ev.Record["text"])

		// A bad request ends the stream with the error in its end message.
		bad := h.OpenAPIStream(ctx, "hookmap.v1.EventService/StreamEvents", `{}`, "")
		_, end, err = bad.Next()
		require.NoError(t, err)
		require.Contains(t, string(end), `"invalid_argument"`)
		require.Contains(t, string(end), `consumer`)
	})
}

// With auth on, every hookmap.v1 RPC of the JSON API asks for a token, as gRPC does (an
// unrouted method would answer 404 instead), and the admin token and workspace keys work.
func TestJSONAPIAuth(t *testing.T) {
	h := apptest.Start(t, apptest.WithConnectors("../../connectors"), apptest.WithAdminToken(adminToken))
	for _, m := range everyMethod(t) {
		path := string(m.Parent().FullName()) + "/" + string(m.Name())
		if m.IsStreamingServer() {
			s := h.OpenAPIStream(h.Ctx(), path, `{}`, "")
			_, end, err := s.Next()
			require.NoError(t, err, path)
			require.Contains(t, string(end), `"unauthenticated"`, path)
			continue
		}
		r := h.API(path, `{}`, "")
		require.Equal(t, http.StatusUnauthorized, r.Status, "%s: %s", path, r.Body)
		require.Equal(t, "unauthenticated", apptest.DecodeAPIError(t, r).Code, path)
		r = h.API(path, `{}`, "wrong-token-wrong-token")
		require.Equal(t, http.StatusUnauthorized, r.Status, "%s: %s", path, r.Body)
	}
	h.APIOK("hookmap.v1.ConnectorService/ListConnectors", `{}`, adminToken, nil)

	var key struct {
		Key string `json:"secret"`
	}
	h.APIOK("hookmap.v1.AdminService/CreateWorkspace", `{"id":"w2","name":"w2"}`, adminToken, nil)
	h.APIOK("hookmap.v1.AdminService/CreateApiKey", `{"workspaceId":"w2","name":"console"}`, adminToken, &key)
	require.NotEmpty(t, key.Key)
	h.APIOK("hookmap.v1.ConnectionService/CreateConnection", `{"connectorKey":"example-webhook","name":"w2-conn"}`, key.Key, nil)
	var conns struct {
		Connections []struct{ Name string } `json:"connections"`
	}
	h.APIOK("hookmap.v1.ConnectionService/ListConnections", `{}`, key.Key, &conns)
	require.Len(t, conns.Connections, 1)
	require.Equal(t, "w2-conn", conns.Connections[0].Name)
	// The workspace key is not the admin.
	r := h.API("hookmap.v1.AdminService/ListWorkspaces", `{}`, key.Key)
	require.Equal(t, http.StatusForbidden, r.Status)
	require.Equal(t, "permission_denied", apptest.DecodeAPIError(t, r).Code)
	// The admin sees the default workspace, or another through the workspace header.
	h.APIOK("hookmap.v1.ConnectionService/ListConnections", `{}`, adminToken, &conns)
	require.Empty(t, conns.Connections)
	r = h.API("hookmap.v1.ConnectionService/ListConnections", `{}`, adminToken, "X-Hookmap-Workspace", "w2")
	require.Equal(t, http.StatusOK, r.Status)
	require.Contains(t, string(r.Body), "w2-conn")

	// A workspace key's stream carries its workspace's events alone: the default
	// workspace's event, committed first, is not in w2's stream from the earliest.
	subscribe := func(token, name string) (id, hook string) {
		var c struct{ ID string }
		h.APIOK("hookmap.v1.ConnectionService/CreateConnection", `{"connectorKey":"example-webhook","name":"`+name+`"}`, token, &c)
		var sub struct {
			ID         string `json:"id"`
			WebhookURI string `json:"webhookUri"`
		}
		h.APIOK("hookmap.v1.SubscriptionService/CreateSubscription",
			`{"connectionId":"`+c.ID+`","eventKey":"message","parameters":{"channel":"general"}}`, token, &sub)
		return sub.ID, sub.WebhookURI
	}
	_, defaultHook := subscribe(adminToken, "default-stream")
	w2Sub, w2Hook := subscribe(key.Key, "w2-stream")
	for _, p := range [][2]string{{defaultHook, "of default"}, {w2Hook, "of w2"}} {
		r := h.PostJSON(p[0], `{"id":"m","text":"`+p[1]+`"}`)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	}
	ctx, cancel := context.WithCancel(h.Ctx())
	defer cancel()
	s := h.OpenAPIStream(ctx, "hookmap.v1.EventService/StreamEvents", `{"consumer":"w2-tail","start":{"earliest":true}}`, key.Key)
	require.Equal(t, http.StatusOK, s.Status)
	msg, end, err := s.Next()
	require.NoError(t, err)
	require.Nil(t, end, "%s", end)
	var ev struct {
		SubscriptionID string         `json:"subscriptionId"`
		Record         map[string]any `json:"record"`
	}
	require.NoError(t, json.Unmarshal(msg, &ev), "%s", msg)
	require.Equal(t, w2Sub, ev.SubscriptionID)
	require.Equal(t, "of w2", ev.Record["text"])
}

// --json-api=false leaves /api/ to the receiver's 404.
func TestJSONAPIOff(t *testing.T) {
	h := apptest.Start(t, apptest.WithConnectors("../../connectors"), func(c *app.Config) { c.JSONAPI = false })
	r := h.API("hookmap.v1.ConnectorService/ListConnectors", `{}`, "")
	require.Equal(t, http.StatusNotFound, r.Status)
	require.Contains(t, string(r.Body), "no such path")
}

// The console is served from the binary, says whether a token is needed, and can be
// turned off (it is off, too, without the JSON API it calls).
func TestConsoleServed(t *testing.T) {
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		name   string
		opts   []apptest.Option
		served bool
		auth   bool
	}{
		{"dev mode", nil, true, false},
		{"auth on", []apptest.Option{apptest.WithAdminToken(adminToken)}, true, true},
		{"console off", []apptest.Option{func(c *app.Config) { c.Console = false }}, false, false},
		{"json api off", []apptest.Option{func(c *app.Config) { c.JSONAPI = false }}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := apptest.Start(t, append([]apptest.Option{apptest.WithConnectors("../../connectors")}, tc.opts...)...)
			r := h.Do(http.MethodGet, h.Hook("/console/"), nil)
			cfg := h.Do(http.MethodGet, h.Hook("/console/config.json"), nil)
			resp, err := noRedirect.Get(h.Hook("/"))
			require.NoError(t, err)
			_ = resp.Body.Close()
			if !tc.served {
				require.Equal(t, http.StatusNotFound, r.Status)
				require.Equal(t, http.StatusNotFound, resp.StatusCode)
				return
			}
			require.Equal(t, http.StatusOK, r.Status)
			require.Contains(t, r.Header.Get("Content-Security-Policy"), "script-src 'self'")
			require.Contains(t, string(r.Body), "hookmap console")
			require.Equal(t, http.StatusFound, resp.StatusCode)
			require.Equal(t, "/console/", resp.Header.Get("Location"))
			var c struct {
				AuthRequired bool `json:"authRequired"`
			}
			require.NoError(t, json.Unmarshal(cfg.Body, &c))
			require.Equal(t, tc.auth, c.AuthRequired)
		})
	}
}
