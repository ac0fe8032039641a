package app_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/structpb"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

// keeperApp is a fake of the keeper test connector's app: a hooks API that takes our
// webhookSecret and answers with its own signing secret, rotated on renewal.
type keeperApp struct {
	t   *testing.T
	srv *httptest.Server

	mu             sync.Mutex
	apiKey         string
	webhookSecrets []string          // the webhookSecret of each created hook, as hookmap sent it
	signing        map[string]string // hook id → its current signing secret
	nextSigning    []string          // the signing secrets to hand out, in order
	deleted        []string
}

func newKeeperApp(t *testing.T, apiKey string, signing ...string) *keeperApp {
	a := &keeperApp{t: t, apiKey: apiKey, signing: map[string]string{}, nextSigning: signing}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *keeperApp) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer "+a.apiKey {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"bad credentials"}`))
		return
	}
	next := func() string {
		s := a.nextSigning[0]
		a.nextSigning = a.nextSigning[1:]
		return s
	}
	expires := time.Now().Add(time.Hour).UnixMilli()
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodPost && len(parts) == 1 && parts[0] == "hooks":
		var body struct{ URL, Secret string }
		b, _ := io.ReadAll(r.Body)
		if json.Unmarshal(b, &body) != nil || body.URL == "" || body.Secret == "" {
			w.WriteHeader(http.StatusUnprocessableEntity)
			return
		}
		id := fmt.Sprintf("hook-%d", len(a.webhookSecrets)+1)
		a.webhookSecrets = append(a.webhookSecrets, body.Secret)
		a.signing[id] = next()
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "signingSecret": a.signing[id], "expiresAt": expires})
	case r.Method == http.MethodPost && len(parts) == 3 && parts[2] == "renew" && a.signing[parts[1]] != "":
		a.signing[parts[1]] = next()
		_ = json.NewEncoder(w).Encode(map[string]any{"signingSecret": a.signing[parts[1]], "expiresAt": expires})
	case r.Method == http.MethodDelete && len(parts) == 2 && a.signing[parts[1]] != "":
		delete(a.signing, parts[1])
		a.deleted = append(a.deleted, parts[1])
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (a *keeperApp) webhookSecret(t *testing.T) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	require.Len(t, a.webhookSecrets, 1)
	return a.webhookSecrets[0]
}

func keeperSign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// secretNeedles returns what a secret could be found as on disk: the secret itself, its
// hex (either case) and its base64 (standard and URL alphabets, at every alignment within
// a longer encoded string: the part of the encoding that does not depend on the bytes
// around it).
func secretNeedles(secret []byte) [][]byte {
	out := [][]byte{secret, []byte(hex.EncodeToString(secret)), []byte(strings.ToUpper(hex.EncodeToString(secret)))}
	for pad := range 3 {
		in := append(make([]byte, pad), secret...)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			s := enc.EncodeToString(in)
			skip := 0
			if pad > 0 {
				skip = 4 // the first group mixes the bytes before the secret
			}
			core := strings.TrimRight(s, "=")
			core = core[skip : len(core)-4] // the last group depends on the bytes after it
			out = append(out, []byte(core))
		}
	}
	return out
}

// findSecrets returns "where: name (form)" for each secret found in data.
func findSecrets(where string, data []byte, secrets map[string][]byte) []string {
	var found []string
	for name, s := range secrets {
		for i, n := range secretNeedles(s) {
			if bytes.Contains(data, n) {
				found = append(found, fmt.Sprintf("%s: %s (form %d)", where, name, i))
				break
			}
		}
	}
	return found
}

// dataDirFiles returns the content of every file in dir, by name.
func dataDirFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		out[e.Name()] = b
	}
	return out
}

// TestNoSecretInClearOnDisk writes known secrets through every path that takes one
// (credentials, connector parameters, subscription state from subscribe, refresh and
// handle, the webhookSecret hookmap makes, outgoing webhook headers and signing secrets,
// EvaluateMethod input) and drives every path that reads them (deliveries verified with
// them, a failed delivery kept and replayed, refresh, unsubscribe, triggers), then
// scans the database files (hookmap.db, -wal, -shm) and the logs, at debug level, for
// each secret and its hex and base64 forms: while hookmap runs and after it stopped.
//
// What the store keeps in clear by design: a failed delivery's raw request (for replay)
// as the sender sent it, so its signature header (an HMAC of the body, not the secret);
// connection parameters (a base URL, a team id), subscription parameters, header names.
func TestNoSecretInClearOnDisk(t *testing.T) {
	id := apptest.RandomID(t)
	secret := func(kind string) string { return "s3cr3t-" + kind + "-" + id }
	secrets := map[string][]byte{}
	keep := func(name, s string) string { secrets[name] = []byte(s); return s }
	var (
		credsOld   = keep("credentials (replaced)", secret("credentials-old"))
		creds      = keep("credentials", secret("credentials"))
		appSigning = keep("connector parameters", secret("connector-parameters"))
		subscribed = keep("state from subscribe", secret("state-subscribe"))
		renewed    = keep("state from refresh", secret("state-refresh"))
		rotated    = keep("state from handle", secret("state-handle"))
		evaluated  = keep("EvaluateMethod input", secret("evaluate"))
		header     = keep("outgoing header (replaced)", secret("header-old"))
		header2    = keep("outgoing header", secret("header"))
	)
	signingKey := make([]byte, 32)
	_, err := rand.Read(signingKey)
	require.NoError(t, err)
	outgoingSecret := keep("outgoing signing secret", "whsec_"+base64.StdEncoding.EncodeToString(signingKey))
	secrets["outgoing signing key"] = signingKey
	// A value stored in clear on purpose, in an event record: the scan must find it, in
	// base64 as well, or it proves nothing.
	control := secret("not-a-secret")

	logs := &apptest.LogBuffer{}
	h := apptest.StartWithLogs(t, logs, apptest.WithConnectors("testdata/connectors"), apptest.WithAllowPrivate(), apptest.WithoutScheduler())
	ctx := h.Ctx()
	app := newKeeperApp(t, creds, subscribed, renewed)
	h.SetConnectorParameters("keeper", map[string]any{"signingSecret": appSigning})

	// Credentials, written twice (create, then update).
	conn, err := h.Connections.CreateConnection(ctx, &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "keeper", Name: "keeper-" + id,
		Parameters:  apptest.Struct(t, map[string]any{"baseUri": app.srv.URL, "team": "T1"}),
		Credentials: apptest.Struct(t, map[string]any{"apiKey": credsOld}),
	})
	require.NoError(t, err)
	_, err = h.Connections.UpdateConnection(ctx, &hookmapv1.UpdateConnectionRequest{
		Id: conn.GetId(), Credentials: apptest.Struct(t, map[string]any{"apiKey": creds}),
	})
	require.NoError(t, err)

	// State from subscribe: our webhookSecret and the app's signing secret.
	sub, err := h.Subscriptions.CreateSubscription(ctx, &hookmapv1.CreateSubscriptionRequest{ConnectionId: conn.GetId(), EventKey: "hook"})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())
	webhookSecret := app.webhookSecret(t)
	require.NotEmpty(t, webhookSecret)
	secrets["webhookSecret"] = []byte(webhookSecret)
	require.Equal(t, map[string]any{"hookId": "hook-1", "secret": webhookSecret, "signingSecret": subscribed},
		h.SubscriptionState(sub.GetId()), "the state opens to what subscribe returned")

	stream := h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})
	deliver := func(signing string, body string) *apptest.Response {
		t.Helper()
		return h.PostJSON(sub.GetWebhookUri(), body, "X-Keeper-Signature", keeperSign(signing, []byte(body)))
	}
	item := func(n int) string {
		return fmt.Sprintf(`{"id":"e%d","action":"created","item":{"n":%d,"control":%q,"blob":%q}}`,
			n, n, control, base64.StdEncoding.EncodeToString([]byte(control)))
	}
	r := deliver(subscribed, `{"events":[`+item(1)+`]}`)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	stream.Next(1)

	// State from refresh: a new signing secret; deliveries signed with it pass.
	_, err = h.Subscriptions.RefreshSubscription(ctx, &hookmapv1.RefreshSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Equal(t, renewed, h.SubscriptionState(sub.GetId())["signingSecret"])
	r = deliver(renewed, `{"events":[`+item(2)+`]}`)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	stream.Next(1)
	require.Equal(t, http.StatusUnauthorized, deliver(subscribed, `{"events":[`+item(3)+`]}`).Status, "the old secret no longer verifies")

	// State from handle (committed with the delivery): the app announces the next secret.
	r = deliver(renewed, `{"rotate":`+fmt.Sprintf("%q", rotated)+`,"events":[]}`)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.Equal(t, rotated, h.SubscriptionState(sub.GetId())["signingSecret"])
	r = deliver(rotated, `{"events":[`+item(4)+`]}`)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	stream.Next(1)

	// A delivery whose mapping fails is kept (with its signature header) and replayed.
	r = deliver(rotated, `{"events":[{"id":"e5","item":{}}]}`)
	require.Equal(t, http.StatusInternalServerError, r.Status, string(r.Body))
	ds, err := h.Events.ListDeliveries(ctx, &hookmapv1.ListDeliveriesRequest{SubscriptionId: sub.GetId(), Outcome: hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED})
	require.NoError(t, err)
	require.Len(t, ds.GetDeliveries(), 1)
	_, err = h.Events.ReplayDelivery(ctx, &hookmapv1.ReplayDeliveryRequest{Id: ds.GetDeliveries()[0].GetId()})
	require.NoError(t, err)

	// Connector parameters: the global webhook's signing secret.
	team, err := h.Subscriptions.CreateSubscription(ctx, &hookmapv1.CreateSubscriptionRequest{ConnectionId: conn.GetId(), EventKey: "team"})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, team.GetStatus(), team.GetLastError())
	body := `{"events":[{"id":"g1","team":"T1","control":"` + control + `"}]}`
	r = h.PostJSON(h.GlobalWebhookURL("keeper", "events"), body, "X-Keeper-Signature", keeperSign(appSigning, []byte(body)))
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.Equal(t, team.GetId(), stream.Next(1)[0].GetSubscriptionId())

	// EvaluateMethod input (nothing is stored; nothing may be logged either).
	input, err := structpb.NewStruct(map[string]any{
		"data":  map[string]any{"rotate": evaluated, "events": []any{}},
		"state": map[string]any{"hookId": "h", "secret": evaluated, "signingSecret": evaluated},
	})
	require.NoError(t, err)
	out, err := h.Connectors.EvaluateMethod(ctx, &hookmapv1.EvaluateMethodRequest{ConnectorKey: "keeper", EventKey: "hook", Method: "handle", Input: input})
	require.NoError(t, err)
	require.Contains(t, out.GetOutput().String(), evaluated)

	// Outgoing webhooks: a header value (replaced by an update) and a signing secret.
	var (
		targetMu sync.Mutex
		received []http.Header
	)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		targetMu.Lock()
		received = append(received, r.Header.Clone())
		targetMu.Unlock()
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(target.Close)
	webhooks := hookmapv1.NewWebhookServiceClient(h.Conn)
	_, err = webhooks.RegisterWebhook(ctx, &hookmapv1.RegisterWebhookRequest{Webhook: &hookmapv1.Webhook{
		Id: "crm", Url: target.URL + "/in", Headers: map[string]string{"X-Api-Key": header}, SigningSecret: outgoingSecret,
	}})
	require.NoError(t, err)
	_, err = webhooks.UpdateWebhook(ctx, &hookmapv1.UpdateWebhookRequest{Webhook: &hookmapv1.Webhook{
		Id: "crm", Headers: map[string]string{"X-Api-Key": header2},
	}})
	require.NoError(t, err)
	tr, err := webhooks.TriggerWebhook(ctx, &hookmapv1.TriggerWebhookRequest{WebhookId: "crm", Data: structpb.NewStringValue("hello")})
	require.NoError(t, err)
	require.False(t, tr.GetError(), tr.GetErrorMessage())
	targetMu.Lock()
	require.Len(t, received, 1)
	require.Equal(t, header2, received[0].Get("X-Api-Key"), "the registered header reached the endpoint")
	require.NotEmpty(t, received[0].Get("Webhook-Signature"), "the request was signed")
	targetMu.Unlock()

	scan := func(when string) {
		t.Helper()
		files := dataDirFiles(t, h.Config.DataDir)
		require.Contains(t, files, "hookmap.db")
		var found []string
		var all []byte
		for name, b := range files {
			if name == "secret.key" {
				continue
			}
			found = append(found, findSecrets(when+": "+name, b, secrets)...)
			all = append(all, b...)
		}
		found = append(found, findSecrets(when+": log", logs.Bytes(), secrets)...)
		require.Empty(t, found, "secrets in clear")
		require.NotEmpty(t, findSecrets("", all, map[string][]byte{"control": []byte(control)}), "%s: the scan finds what is stored in clear", when)
		require.Len(t, findSecrets("", []byte(base64.StdEncoding.EncodeToString([]byte("12"+control+"3"))), map[string][]byte{"control": []byte(control)}), 1,
			"the scan finds a base64 form")
	}
	scan("running")

	// Unsubscribe reads the state (the app's hook id) and the credentials.
	_, err = h.Subscriptions.DeleteSubscription(ctx, &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	app.mu.Lock()
	require.Equal(t, []string{"hook-1"}, app.deleted)
	app.mu.Unlock()

	h.Stop()
	scan("stopped")
	log := logs.Bytes()
	require.Contains(t, string(log), "level=DEBUG", "the logs were captured at debug level")
	require.Contains(t, string(log), "hookmap stopped")
}
