package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

// fakeAsana is an app in Asana's style: creating a webhook sends X-Hook-Secret to the new
// URL during the create call, and the webhook is created only if the URL echoes it back;
// every later delivery is signed with it (X-Hook-Signature: hex HMAC-SHA256 of the body).
type fakeAsana struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	next    int
	hooks   map[string]string // gid → target
	secrets map[string]string // target → secret
	calls   []string
	skip    bool // create without the handshake
}

func newFakeAsana(t *testing.T) *fakeAsana {
	f := &fakeAsana{t: t, next: 1200, hooks: map[string]string{}, secrets: map[string]string{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAsana) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	skip := f.skip
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer asana-token" {
		http.Error(w, `{"errors":[{"message":"Not Authorized"}]}`, http.StatusUnauthorized)
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/webhooks":
		var req struct {
			Data struct{ Resource, Target string }
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Data.Target == "" {
			http.Error(w, `{"errors":[{"message":"target: Missing input"}]}`, http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.next++
		gid := fmt.Sprint(f.next)
		secret := fmt.Sprintf("hook-secret-%s", gid)
		f.mu.Unlock()
		if !skip {
			// The handshake, before the create call answers.
			hs, err := http.NewRequest(http.MethodPost, req.Data.Target, nil)
			require.NoError(f.t, err)
			hs.Header.Set("X-Hook-Secret", secret)
			resp, err := http.DefaultClient.Do(hs)
			if err != nil || resp.StatusCode/100 != 2 || resp.Header.Get("X-Hook-Secret") != secret {
				if resp != nil {
					resp.Body.Close()
				}
				http.Error(w, `{"errors":[{"message":"The remote server did not respond with the handshake secret."}]}`, http.StatusBadRequest)
				return
			}
			resp.Body.Close()
		}
		f.mu.Lock()
		f.hooks[gid], f.secrets[req.Data.Target] = req.Data.Target, secret
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = fmt.Fprintf(w, `{"data":{"gid":%q,"resource_type":"webhook","target":%q,"active":true}}`, gid, req.Data.Target)
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/webhooks/"):
		gid := strings.TrimPrefix(r.URL.Path, "/webhooks/")
		f.mu.Lock()
		_, ok := f.hooks[gid]
		delete(f.hooks, gid)
		f.mu.Unlock()
		if !ok {
			http.Error(w, `{"errors":[{"message":"Unknown object"}]}`, http.StatusNotFound)
			return
		}
		_, _ = io.WriteString(w, `{"data":{}}`)
	default:
		http.Error(w, `{"errors":[{"message":"no route"}]}`, http.StatusNotFound)
	}
}

// send delivers events to target the way the app does: signed with the hook's secret
// (or with the given one).
func (f *fakeAsana) send(target, body string, secret ...string) *apptest.Response {
	f.mu.Lock()
	key := f.secrets[target]
	f.mu.Unlock()
	if len(secret) > 0 {
		key = secret[0]
	}
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader([]byte(body)))
	require.NoError(f.t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("X-Hook-Signature", hexHMAC(key, body))
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(f.t, err)
	return &apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

type handshakeWorld struct {
	h    *apptest.Harness
	app  *fakeAsana
	conn *hookmapv1.Connection
}

func startHandshake(t *testing.T) *handshakeWorld {
	h := apptest.Start(t, apptest.WithConnectors("testdata/connectors"), apptest.WithAllowPrivate())
	app := newFakeAsana(t)
	conn, err := h.Connections.CreateConnection(h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "handshake", Name: "acme",
		Parameters:  apptest.Struct(t, map[string]any{"baseUri": app.srv.URL}),
		Credentials: apptest.Struct(t, map[string]any{"token": "asana-token"}),
	})
	require.NoError(t, err)
	return &handshakeWorld{h: h, app: app, conn: conn}
}

func (w *handshakeWorld) subscribe(t *testing.T) (*hookmapv1.Subscription, error) {
	return w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: w.conn.GetId(), EventKey: "tasks", Parameters: apptest.Struct(t, map[string]any{"project": "1100"}),
	})
}

func (w *handshakeWorld) state(t *testing.T, id string) map[string]any {
	s, err := w.h.App.Core().Store.GetSubscription(t.Context(), "default", id)
	require.NoError(t, err)
	state, err := w.h.App.Core().SubscriptionState(s)
	require.NoError(t, err)
	return state
}

// The state a handle stores while subscribe runs (the handshake's secret, let through
// unverified by verify.skipWhen) is kept when subscribe's result is stored,
// subscribe's responseMapping reads it, and later state from handle is merged key by key:
// nothing erases the hook id unsubscribe needs.
func TestHandshakeStateIsMergedWithSubscribe(t *testing.T) {
	w := startHandshake(t)
	sub, err := w.subscribe(t)
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())
	require.Equal(t, map[string]any{"hookId": "1201", "hookSecret": "hook-secret-1201", "confirmed": true}, w.state(t, sub.GetId()),
		"handle's hookSecret, written during the create call, is merged with subscribe's result")

	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "tasks"})
	r := w.app.send(sub.GetWebhookUri(), `{"events":[{"action":"changed","created_at":"2026-01-05T10:00:00.000Z","resource":{"gid":"77","resource_type":"task"}}]}`)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.Equal(t, "task.changed", stream.Next(1)[0].GetType())
	require.Equal(t, map[string]any{"hookId": "1201", "hookSecret": "hook-secret-1201", "confirmed": true, "lastEventAt": "2026-01-05T10:00:00.000Z"},
		w.state(t, sub.GetId()), "a handle's state adds its keys, it does not replace the state")

	// verify.skipWhen lets the handshake through unsigned only while there is no secret:
	// a forged second handshake must be signed like any delivery, and is refused.
	r = w.h.PostJSON(sub.GetWebhookUri(), ``, "X-Hook-Secret", "attacker-secret")
	require.Equal(t, http.StatusUnauthorized, r.Status, string(r.Body))
	d, err := w.h.Events.GetDelivery(w.h.Ctx(), &hookmapv1.GetDeliveryRequest{Id: parseReply(t, r.Body).DeliveryID})
	require.NoError(t, err)
	require.Contains(t, d.GetError(), "missing header X-Hook-Signature", "the record says why; the sender is only told it was not verified")
	// The app's heartbeat (no events) is signed and accepted.
	r = w.app.send(sub.GetWebhookUri(), `{"events":[]}`)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	// A signed second handshake (by the app itself): the handle refuses it, the secret stays.
	req, err := http.NewRequest(http.MethodPost, sub.GetWebhookUri(), nil)
	require.NoError(t, err)
	req.Header.Set("X-Hook-Secret", "new-secret")
	req.Header.Set("X-Hook-Signature", hexHMAC("hook-secret-1201", ""))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	require.Equal(t, "hook-secret-1201", w.state(t, sub.GetId())["hookSecret"])

	// Deliveries are verified: unsigned or signed with another secret, they are refused.
	r = w.app.send(sub.GetWebhookUri(), `{"events":[]}`, "attacker-secret")
	require.Equal(t, http.StatusUnauthorized, r.Status, string(r.Body))
	d, err = w.h.Events.GetDelivery(w.h.Ctx(), &hookmapv1.GetDeliveryRequest{Id: parseReply(t, r.Body).DeliveryID})
	require.NoError(t, err)
	require.Contains(t, d.GetError(), "signature mismatch")
	r = w.h.PostJSON(sub.GetWebhookUri(), `{"events":[{"action":"added","created_at":"x","resource":{"gid":"1","resource_type":"task"}}]}`)
	require.Equal(t, http.StatusUnauthorized, r.Status, string(r.Body))
	stream.None(100 * time.Millisecond)

	_, err = w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	w.app.mu.Lock()
	require.Contains(t, w.app.calls, "DELETE /webhooks/1201")
	require.Empty(t, w.app.hooks)
	w.app.mu.Unlock()

	// An app that skips the handshake: subscribe's responseMapping sees no secret and fails.
	w.app.mu.Lock()
	w.app.skip = true
	w.app.mu.Unlock()
	_, err = w.subscribe(t)
	apptest.RequireCode(t, err, codes.FailedPrecondition, "the app created webhook 1202 without the X-Hook-Secret handshake")
}
