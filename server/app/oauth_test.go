package app_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

// oauthWorld is hookmap with the oauthapp connector (its OAuth client set for the
// workspace), a fake OAuth app on loopback, a controllable clock and no background
// scheduler; logs at debug level are kept to check they hold no secret.
type oauthWorld struct {
	t    testing.TB
	h    *apptest.Harness
	app  *oauthApp
	clk  *clock
	logs *apptest.LogBuffer
}

func startOAuth(t testing.TB) *oauthWorld {
	clk := newClock()
	logs := &apptest.LogBuffer{}
	h := apptest.StartWithLogs(t, logs, apptest.WithConnectors("testdata/connectors"), apptest.WithAllowPrivate(),
		apptest.WithClock(clk.Now), apptest.WithoutScheduler())
	w := &oauthWorld{t: t, h: h, app: newOAuthApp(t, clk.Now), clk: clk, logs: logs}
	h.SetConnectorParameters("oauthapp", map[string]any{"clientId": w.app.clientID, "clientSecret": w.app.clientSecret})
	return w
}

// browser follows no redirect: each step of the flow is checked.
var browser = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t testing.TB, u string) (*http.Response, string) {
	t.Helper()
	resp, err := browser.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// authorize asks for an authorization URL for a new connection.
func (w *oauthWorld) authorize(returnURL string) *hookmapv1.AuthorizeConnectionResponse {
	w.t.Helper()
	resp, err := w.h.Connections.AuthorizeConnection(w.h.Ctx(), &hookmapv1.AuthorizeConnectionRequest{
		ConnectorKey: "oauthapp", Name: "acme", ReturnUrl: returnURL,
		Parameters: apptest.Struct(w.t, map[string]any{"baseUri": w.app.URL()}),
	})
	require.NoError(w.t, err)
	return resp
}

// consent plays the user's browser: open the authorization URL, let the app redirect it
// to the callback, and return the callback URL it was sent to.
func (w *oauthWorld) consent(authorizationURL string) string {
	w.t.Helper()
	resp, body := get(w.t, authorizationURL)
	require.Equal(w.t, http.StatusFound, resp.StatusCode, body)
	return resp.Header.Get("Location")
}

// connect runs the whole flow for a new connection and returns it.
func (w *oauthWorld) connect() *hookmapv1.Connection {
	w.t.Helper()
	a := w.authorize("")
	resp, body := get(w.t, w.consent(a.GetAuthorizationUrl()))
	require.Equal(w.t, http.StatusOK, resp.StatusCode, body)
	return w.connection(a.GetConnection().GetId())
}

func (w *oauthWorld) connection(id string) *hookmapv1.Connection {
	w.t.Helper()
	c, err := w.h.Connections.GetConnection(w.h.Ctx(), &hookmapv1.GetConnectionRequest{Id: id})
	require.NoError(w.t, err)
	return c
}

func (w *oauthWorld) subscribe(conn *hookmapv1.Connection) *hookmapv1.Subscription {
	w.t.Helper()
	sub, err := w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{ConnectionId: conn.GetId(), EventKey: "hook"})
	require.NoError(w.t, err)
	require.Equal(w.t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())
	return sub
}

func (w *oauthWorld) refresh(sub *hookmapv1.Subscription) (*hookmapv1.RefreshSubscriptionResponse, error) {
	return w.h.Subscriptions.RefreshSubscription(w.h.Ctx(), &hookmapv1.RefreshSubscriptionRequest{Id: sub.GetId()})
}

// requireNoSecretShown fails if a secret of the app's (client secret, any token or code it
// issued) is in hookmap's logs or in texts (RPC answers, error messages).
func (w *oauthWorld) requireNoSecretShown(texts ...string) {
	w.t.Helper()
	secrets := map[string][]byte{"client secret": []byte(w.app.clientSecret)}
	for _, c := range w.app.issued() {
		secrets[c[:8]] = []byte(c)
	}
	require.Empty(w.t, findSecrets("logs", w.logs.Bytes(), secrets))
	require.Empty(w.t, findSecrets("answers", []byte(strings.Join(texts, "\n")), secrets))
}

func protoText(m proto.Message) string { return protojson.Format(m) }

func TestOAuthAuthorizationCodeFlow(t *testing.T) {
	w := startOAuth(t)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "svc"})

	a := w.authorize("")
	require.Equal(t, w.h.BaseURL+"/oauth/callback", a.GetRedirectUri())
	conn := a.GetConnection()
	require.Equal(t, hookmapv1.ConnectionStatus_CONNECTION_STATUS_PENDING, conn.GetStatus())
	require.False(t, conn.GetHasCredentials())
	require.WithinDuration(t, w.clk.Now().Add(15*time.Minute), a.GetExpireTime().AsTime(), time.Second)

	// The URL: the app's authorization endpoint with the client, our callback, the scopes,
	// an unguessable state and a PKCE challenge.
	u, err := url.Parse(a.GetAuthorizationUrl())
	require.NoError(t, err)
	require.Equal(t, w.app.URL()+"/authorize", u.Scheme+"://"+u.Host+u.Path)
	q := u.Query()
	require.Equal(t, w.app.clientID, q.Get("client_id"))
	require.Equal(t, "code", q.Get("response_type"))
	require.Equal(t, a.GetRedirectUri(), q.Get("redirect_uri"))
	require.Equal(t, "hooks.write offline_access", q.Get("scope"))
	require.Equal(t, "S256", q.Get("code_challenge_method"))
	require.Len(t, q.Get("code_challenge"), 43)
	require.GreaterOrEqual(t, len(q.Get("state")), 43, "256 random bits")
	require.NotContains(t, a.GetAuthorizationUrl(), w.app.clientSecret)

	// Until its user authorizes it, the connection cannot subscribe.
	_, err = w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{ConnectionId: conn.GetId(), EventKey: "hook"})
	apptest.RequireReason(t, err, codes.FailedPrecondition, "CONNECTION_NOT_CONNECTED", "waiting for its user to authorize it")
	subs, err := w.h.Subscriptions.ListSubscriptions(w.h.Ctx(), &hookmapv1.ListSubscriptionsRequest{})
	require.NoError(t, err)
	require.Empty(t, subs.GetSubscriptions())

	// The user consents; the app sends the browser to our callback, which exchanges the code.
	callback := w.consent(a.GetAuthorizationUrl())
	require.True(t, strings.HasPrefix(callback, a.GetRedirectUri()+"?"), callback)
	resp, body := get(t, callback)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	require.Contains(t, body, "is connected")
	require.Equal(t, []string{"GET /authorize", "POST /oauth/token (authorization_code)"}, w.app.callLog(),
		"one token request, with the PKCE verifier, client_secret_basic and our redirect_uri (the fake checks them)")

	got := w.connection(conn.GetId())
	require.Equal(t, hookmapv1.ConnectionStatus_CONNECTION_STATUS_CONNECTED, got.GetStatus())
	require.True(t, got.GetHasCredentials())
	require.Empty(t, got.GetLastError())
	require.WithinDuration(t, w.clk.Now().Add(time.Hour), got.GetCredentialsExpireTime().AsTime(), time.Second)

	// The client service learns of it on the stream: a connection event, no subscription.
	ev := stream.Next(1)[0]
	require.Equal(t, "connection", ev.GetEventKey())
	require.Equal(t, "connection.connected", ev.GetType())
	require.Equal(t, conn.GetId(), ev.GetConnectionId())
	require.Empty(t, ev.GetSubscriptionId())
	require.Equal(t, map[string]any{"connectionId": conn.GetId(), "connectorKey": "oauthapp", "name": "acme", "status": "CONNECTED"},
		ev.GetRecord().GetStructValue().AsMap())

	// The tokens work: a subscription is created with them.
	sub := w.subscribe(got)
	require.Contains(t, w.app.callLog(), "POST /api/hooks")

	// The state is single-use: the same callback again answers 400 and changes nothing.
	before := w.connection(conn.GetId())
	resp, body = get(t, callback)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, body, "unknown or already used state")
	require.Equal(t, 1, w.app.grantCount("authorization_code"))
	require.True(t, proto.Equal(before, w.connection(conn.GetId())))

	list, err := w.h.Connections.ListConnections(w.h.Ctx(), &hookmapv1.ListConnectionsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetConnections(), 1)
	require.Equal(t, hookmapv1.ConnectionStatus_CONNECTION_STATUS_CONNECTED, list.GetConnections()[0].GetStatus())
	w.requireNoSecretShown(protoText(a), protoText(got), protoText(list), protoText(sub), body)
}

func TestOAuthCallbackWithBadStateChangesNothing(t *testing.T) {
	w := startOAuth(t)
	a := w.authorize("https://app.example.com/integrations/done")
	callback := w.consent(a.GetAuthorizationUrl())
	cb, err := url.Parse(callback)
	require.NoError(t, err)
	withState := func(state string) string {
		q := cb.Query()
		if state == "" {
			q.Del("state")
		} else {
			q.Set("state", state)
		}
		c := *cb
		c.RawQuery = q.Encode()
		return c.String()
	}
	good := cb.Query().Get("state")
	for name, u := range map[string]string{
		"no state":      withState(""),
		"unknown state": withState(strings.Repeat("A", len(good))),
		"altered state": withState(good[:len(good)-1] + map[bool]string{true: "B", false: "A"}[good[len(good)-1] == 'A']),
	} {
		resp, body := get(t, u)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, name)
		require.Contains(t, resp.Header.Get("Content-Type"), "application/json", name)
		require.Contains(t, body, `"code":400`, name)
		require.Empty(t, resp.Header.Get("Location"), "%s: a bad state is never redirected", name)
	}
	require.Zero(t, w.app.grantCount("authorization_code"), "no code was exchanged")
	pending := w.connection(a.GetConnection().GetId())
	require.Equal(t, hookmapv1.ConnectionStatus_CONNECTION_STATUS_PENDING, pending.GetStatus())
	require.Empty(t, pending.GetLastError())

	// The real state still works after those (they did not consume it), and redirects to
	// the return URL with the outcome.
	resp, body := get(t, callback)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	require.Equal(t, "https://app.example.com/integrations/done?connection_id="+a.GetConnection().GetId()+"&status=CONNECTED", resp.Header.Get("Location"))

	// A state expires: 15 minutes later the callback answers 400 and nothing changes.
	b := w.authorize("")
	late := w.consent(b.GetAuthorizationUrl())
	w.clk.Advance(15*time.Minute + time.Second)
	resp, body = get(t, late)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, body, "expired")
	require.Equal(t, 1, w.app.grantCount("authorization_code"))
	require.Equal(t, hookmapv1.ConnectionStatus_CONNECTION_STATUS_PENDING, w.connection(b.GetConnection().GetId()).GetStatus())
}

func TestOAuthUserDeclines(t *testing.T) {
	w := startOAuth(t)
	w.app.set(func() { w.app.deny = true })
	a := w.authorize("https://app.example.com/done")
	resp, _ := get(t, w.consent(a.GetAuthorizationUrl()))
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, "app.example.com", loc.Host)
	require.Equal(t, url.Values{"connection_id": {a.GetConnection().GetId()}, "error": {"access_denied"}, "error_description": {"The user declined."}}, loc.Query())
	conn := w.connection(a.GetConnection().GetId())
	require.Equal(t, hookmapv1.ConnectionStatus_CONNECTION_STATUS_PENDING, conn.GetStatus())
	require.Contains(t, conn.GetLastError(), "access_denied")
	require.Zero(t, w.app.grantCount("authorization_code"))
}

func TestAuthorizeConnectionRequests(t *testing.T) {
	w := startOAuth(t)
	conn := w.connect()
	ctx := w.h.Ctx()
	for _, tc := range []struct {
		req  *hookmapv1.AuthorizeConnectionRequest
		code codes.Code
		msg  string
	}{
		{&hookmapv1.AuthorizeConnectionRequest{}, codes.InvalidArgument, "connector_key: required"},
		{&hookmapv1.AuthorizeConnectionRequest{ConnectionId: conn.GetId(), ConnectorKey: "oauthapp"}, codes.InvalidArgument, "connection_id: give connection_id"},
		{&hookmapv1.AuthorizeConnectionRequest{ConnectionId: "conn_nope"}, codes.NotFound, "conn_nope"},
		{&hookmapv1.AuthorizeConnectionRequest{ConnectorKey: "fakehooks", Parameters: apptest.Struct(t, map[string]any{"baseUri": "http://x"})}, codes.FailedPrecondition, "no authorization code flow"},
		{&hookmapv1.AuthorizeConnectionRequest{ConnectorKey: "oauthapp"}, codes.InvalidArgument, "baseUri"},
		{&hookmapv1.AuthorizeConnectionRequest{ConnectionId: conn.GetId(), ReturnUrl: "javascript:alert(1)"}, codes.InvalidArgument, "return_url: must be an absolute http(s) URL"},
		{&hookmapv1.AuthorizeConnectionRequest{ConnectionId: conn.GetId(), ReturnUrl: "https://a.example/#x"}, codes.InvalidArgument, "return_url: must not have a fragment"},
	} {
		_, err := w.h.Connections.AuthorizeConnection(ctx, tc.req)
		apptest.RequireCode(t, err, tc.code, tc.msg)
	}
	// Without the app's client id in the connector parameters, the URL cannot be made and
	// no connection is left behind.
	w.h.SetConnectorParameters("oauthapp", map[string]any{})
	_, err := w.h.Connections.AuthorizeConnection(ctx, &hookmapv1.AuthorizeConnectionRequest{
		ConnectorKey: "oauthapp", Parameters: apptest.Struct(t, map[string]any{"baseUri": w.app.URL()}),
	})
	apptest.RequireCode(t, err, codes.FailedPrecondition, "clientId is empty")
	list, err := w.h.Connections.ListConnections(ctx, &hookmapv1.ListConnectionsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetConnections(), 1)
}

func TestOAuthTokensRenewBeforeExpiry(t *testing.T) {
	w := startOAuth(t)
	conn := w.connect()
	sub := w.subscribe(conn)
	exp := conn.GetCredentialsExpireTime().AsTime()

	// Several token lifetimes pass; each renewal of the subscription renews the token
	// first (within refreshBefore of its expiry), with the refresh token of the previous
	// renewal (the app rotates them and refuses a used one): no UpdateConnection.
	for i := 1; i <= 3; i++ {
		w.clk.Advance(time.Hour - 30*time.Second)
		resp, err := w.refresh(sub)
		require.NoError(t, err)
		require.False(t, resp.GetHealed(), resp.GetSubscription().GetLastError())
		require.Equal(t, i, w.app.grantCount("refresh_token"))
		got := w.connection(conn.GetId())
		require.Equal(t, hookmapv1.ConnectionStatus_CONNECTION_STATUS_CONNECTED, got.GetStatus())
		require.True(t, got.GetCredentialsExpireTime().AsTime().After(exp), "renewal %d moved the expiry", i)
		exp = got.GetCredentialsExpireTime().AsTime()
	}
	for _, c := range w.app.callLog() {
		require.NotContains(t, c, "401", "a token was never used past its expiry")
	}
	// Not due: no token request.
	_, err := w.refresh(sub)
	require.NoError(t, err)
	require.Equal(t, 3, w.app.grantCount("refresh_token"))

	// Renewed credentials survive a restart (they are stored, encrypted).
	w.h.Restart()
	w.clk.Advance(time.Hour)
	resp, err := w.refresh(sub)
	require.NoError(t, err)
	require.False(t, resp.GetHealed())
	require.Equal(t, 4, w.app.grantCount("refresh_token"))
	w.requireNoSecretShown()

	// On disk: no token in clear, hex or base64.
	w.h.Stop()
	secrets := map[string][]byte{"client secret": []byte(w.app.clientSecret)}
	for _, c := range w.app.issued() {
		secrets[c[:8]] = []byte(c)
	}
	for name, b := range dataDirFiles(t, w.h.Config.DataDir) {
		require.Empty(t, findSecrets(name, b, secrets))
	}
}

func TestOAuth401RenewsAndRetries(t *testing.T) {
	w := startOAuth(t)
	conn := w.connect()
	sub := w.subscribe(conn)

	// The app stops taking the access token before its expiry: the request answered 401
	// is sent again after one renewal.
	w.app.revokeAccess()
	resp, err := w.refresh(sub)
	require.NoError(t, err)
	require.False(t, resp.GetHealed(), resp.GetSubscription().GetLastError())
	log := w.app.callLog()
	require.Equal(t, []string{
		"PATCH /api/hooks/hook-1 401",
		"POST /oauth/token (refresh_token)",
		"PATCH /api/hooks/hook-1",
	}, log[len(log)-3:])
	require.Equal(t, hookmapv1.ConnectionStatus_CONNECTION_STATUS_CONNECTED, w.connection(conn.GetId()).GetStatus())

	// Once only: an app that refuses the new token too fails the method.
	w.app.set(func() { w.app.ttl = 0 }) // every token it issues is expired at once
	w.app.revokeAccess()
	_, err = w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	st := apptest.RequireCode(t, err, codes.FailedPrecondition, "401")
	require.Equal(t, 2, w.app.grantCount("refresh_token"), "one renewal per method run")
	w.requireNoSecretShown(st.Message())
}

func TestOAuthConcurrentRenewalsShareOneTokenRequest(t *testing.T) {
	w := startOAuth(t)
	conn := w.connect()
	const n = 8
	subs := make([]*hookmapv1.Subscription, n)
	for i := range subs {
		subs[i] = w.subscribe(conn)
	}
	w.app.revokeAccess()
	arrived, release := w.app.hold()

	// n methods of the connection get 401 at once and all need a new token.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, sub := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = w.refresh(sub)
		}()
	}
	<-arrived // the first token request is at the app, held
	// Every method run is waiting for the renewal before the app answers.
	require.Eventually(t, func() bool { return w.metric("hookmap_credential_renewals_waiting") == n }, 10*time.Second, 5*time.Millisecond)
	release()
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, 1, w.app.grantCount("refresh_token"), "one token request for %d methods", n)
	require.Equal(t, float64(0), w.metric("hookmap_credential_renewals_waiting"))
	require.Equal(t, float64(1), w.metric(`hookmap_credential_renewals_total{grant="refreshToken",result="renewed"}`))
	patches := 0
	for _, c := range w.app.callLog() {
		if strings.HasPrefix(c, "PATCH") && !strings.HasSuffix(c, "401") {
			patches++
		}
	}
	require.Equal(t, n, patches, "every method was retried with the new token")
}

// metric reads a sample of hookmap's /metrics (name with its labels as printed).
func (w *oauthWorld) metric(sample string) float64 {
	w.t.Helper()
	return metricOf(w.t, w.h, sample)
}

func metricOf(t testing.TB, h *apptest.Harness, sample string) float64 {
	t.Helper()
	resp, err := http.Get(h.BaseURL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	return -1
}

func TestOAuthRevokedGrantDisconnects(t *testing.T) {
	w := startOAuth(t)
	conn := w.connect()
	sub := w.subscribe(conn)
	all := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "all", Start: &hookmapv1.StreamPosition{Position: &hookmapv1.StreamPosition_Latest{Latest: true}}})
	byConn := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "conn", Start: &hookmapv1.StreamPosition{Position: &hookmapv1.StreamPosition_Latest{Latest: true}},
		Filter: &hookmapv1.EventFilter{ConnectionIds: []string{conn.GetId()}, EventKeys: []string{"connection"}, Types: []string{"connection.disconnected"}}})
	bySub := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "sub", Start: &hookmapv1.StreamPosition{Position: &hookmapv1.StreamPosition_Latest{Latest: true}},
		Filter: &hookmapv1.EventFilter{SubscriptionIds: []string{sub.GetId()}}})

	// The user removed the app: the refresh token is refused with invalid_grant.
	w.app.revokeGrant()
	_, err := w.refresh(sub)
	st := apptest.RequireCode(t, err, codes.FailedPrecondition, "disconnected")
	require.Contains(t, st.Message(), "invalid_grant: The refresh token was revoked.")

	got := w.connection(conn.GetId())
	require.Equal(t, hookmapv1.ConnectionStatus_CONNECTION_STATUS_DISCONNECTED, got.GetStatus())
	require.Equal(t, "the app refused the refreshToken grant: invalid_grant: The refresh token was revoked.", got.GetLastError())
	list, err := w.h.Connections.ListConnections(w.h.Ctx(), &hookmapv1.ListConnectionsRequest{})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.ConnectionStatus_CONNECTION_STATUS_DISCONNECTED, list.GetConnections()[0].GetStatus())
	require.Equal(t, got.GetLastError(), list.GetConnections()[0].GetLastError())

	// One event, on the workspace's stream and on a stream filtered by connection, event
	// key and type; a stream of the subscription does not get it.
	for _, s := range []*apptest.Stream{all, byConn} {
		ev := s.Next(1)[0]
		require.Equal(t, "connection.disconnected", ev.GetType())
		require.Equal(t, "connection", ev.GetEventKey())
		require.Empty(t, ev.GetSubscriptionId())
		require.Equal(t, map[string]any{
			"connectionId": conn.GetId(), "connectorKey": "oauthapp", "name": "acme", "status": "DISCONNECTED", "error": got.GetLastError(),
		}, ev.GetRecord().GetStructValue().AsMap())
	}
	bySub.None(50 * time.Millisecond)

	// Disconnected: methods fail at once, without calling the app.
	calls := len(w.app.callLog())
	_, err = w.refresh(sub)
	apptest.RequireCode(t, err, codes.FailedPrecondition, "disconnected")
	_, err = w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{ConnectionId: conn.GetId(), EventKey: "hook"})
	apptest.RequireReason(t, err, codes.FailedPrecondition, "CONNECTION_NOT_CONNECTED", "connect it again")
	require.Len(t, w.app.callLog(), calls)
	all.None(50 * time.Millisecond) // one event, not one per failure

	// The user connects it again: CONNECTED, and the subscription renews.
	a, err := w.h.Connections.AuthorizeConnection(w.h.Ctx(), &hookmapv1.AuthorizeConnectionRequest{ConnectionId: conn.GetId()})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.ConnectionStatus_CONNECTION_STATUS_DISCONNECTED, a.GetConnection().GetStatus())
	resp, body := get(t, w.consent(a.GetAuthorizationUrl()))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	again := w.connection(conn.GetId())
	require.Equal(t, hookmapv1.ConnectionStatus_CONNECTION_STATUS_CONNECTED, again.GetStatus())
	require.Empty(t, again.GetLastError())
	require.Equal(t, "connection.connected", all.Next(1)[0].GetType())
	r, err := w.refresh(sub)
	require.NoError(t, err)
	require.False(t, r.GetHealed())
	w.requireNoSecretShown(st.Message(), protoText(got))
}

func TestOAuthClientCredentials(t *testing.T) {
	w := startOAuth(t)
	// No credentials: hookmap runs the connector's client credentials grant.
	conn, err := w.h.Connections.CreateConnection(w.h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "oauthapp", Name: "service", Parameters: apptest.Struct(t, map[string]any{"baseUri": w.app.URL()}),
	})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.ConnectionStatus_CONNECTION_STATUS_CONNECTED, conn.GetStatus())
	require.True(t, conn.GetHasCredentials())
	require.WithinDuration(t, w.clk.Now().Add(time.Hour), conn.GetCredentialsExpireTime().AsTime(), time.Second)
	require.Equal(t, 1, w.app.grantCount("client_credentials"))
	sub := w.subscribe(conn)

	// No refresh token: at expiry the grant runs again.
	w.clk.Advance(time.Hour)
	resp, err := w.refresh(sub)
	require.NoError(t, err)
	require.False(t, resp.GetHealed(), resp.GetSubscription().GetLastError())
	require.Equal(t, 2, w.app.grantCount("client_credentials"))
	require.Zero(t, w.app.grantCount("refresh_token"))

	// A refused client: the connection is not created and the error says why, without
	// the secret.
	w.h.SetConnectorParameters("oauthapp", map[string]any{"clientId": w.app.clientID, "clientSecret": "wrong-secret-0123456789"})
	_, err = w.h.Connections.CreateConnection(w.h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "oauthapp", Name: "refused", Parameters: apptest.Struct(t, map[string]any{"baseUri": w.app.URL()}),
	})
	st := apptest.RequireCode(t, err, codes.FailedPrecondition, "the client credentials grant failed")
	require.Contains(t, st.Message(), "invalid_client")
	require.NotContains(t, st.Message(), "wrong-secret-0123456789")
	list, err := w.h.Connections.ListConnections(w.h.Ctx(), &hookmapv1.ListConnectionsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetConnections(), 1)
	w.requireNoSecretShown(st.Message(), protoText(conn))
}

func TestOAuthTokensGivenByTheClient(t *testing.T) {
	w := startOAuth(t)
	tokens := w.app.tokens(t)
	conn, err := w.h.Connections.CreateConnection(w.h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "oauthapp", Name: "imported", Parameters: apptest.Struct(t, map[string]any{"baseUri": w.app.URL()}),
		Credentials: apptest.Struct(t, map[string]any{
			"accessToken": tokens["access_token"], "refreshToken": tokens["refresh_token"],
			"expiresAt": w.clk.Now().Add(10 * time.Minute).UnixMilli(),
		}),
	})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.ConnectionStatus_CONNECTION_STATUS_CONNECTED, conn.GetStatus())
	require.Equal(t, w.clk.Now().Add(10*time.Minute).UnixMilli(), conn.GetCredentialsExpireTime().AsTime().UnixMilli())
	sub := w.subscribe(conn)
	w.clk.Advance(10 * time.Minute)
	resp, err := w.refresh(sub)
	require.NoError(t, err)
	require.False(t, resp.GetHealed())
	require.Equal(t, 1, w.app.grantCount("refresh_token"), "renewed with the refresh token the client gave")

	// Tokens that do not fit are refused with the field.
	for _, tc := range []struct {
		creds map[string]any
		msg   string
	}{
		{map[string]any{"refreshToken": "r"}, "accessToken is required"},
		{map[string]any{"accessToken": ""}, "no accessToken"},
		{map[string]any{"accessToken": "a", "expiresAt": "soon"}, "credentials.expiresAt"}, // the connector's schema
		{map[string]any{"accessToken": "a", "expiresAt": -5}, "expiresAt is -5, want milliseconds since the epoch"},
	} {
		_, err := w.h.Connections.CreateConnection(w.h.Ctx(), &hookmapv1.CreateConnectionRequest{
			ConnectorKey: "oauthapp", Name: "bad", Parameters: apptest.Struct(t, map[string]any{"baseUri": w.app.URL()}),
			Credentials: apptest.Struct(t, tc.creds),
		})
		if tc.msg == "accessToken is required" {
			// This connector has the client credentials grant: without accessToken it runs it.
			require.NoError(t, err)
			continue
		}
		apptest.RequireCode(t, err, codes.InvalidArgument, tc.msg)
	}
}

// TestOAuthCallerGivesUpDuringRenewal: a caller that gives up while its connection's
// credentials are being renewed leaves the renewal to finish and be stored.
func TestOAuthCallerGivesUpDuringRenewal(t *testing.T) {
	w := startOAuth(t)
	conn := w.connect()
	sub, other := w.subscribe(conn), w.subscribe(conn)
	w.app.revokeAccess()
	arrived, release := w.app.hold()
	ctx, cancel := context.WithCancel(w.h.Ctx())
	done := make(chan error, 1)
	go func() {
		_, err := w.h.Subscriptions.RefreshSubscription(ctx, &hookmapv1.RefreshSubscriptionRequest{Id: sub.GetId()})
		done <- err
	}()
	<-arrived
	cancel()
	apptest.RequireCode(t, <-done, codes.Canceled, "")
	release()
	// The renewal finished and was stored: the next run uses its token without a new one.
	require.Eventually(t, func() bool {
		return w.metric(`hookmap_credential_renewals_total{grant="refreshToken",result="renewed"}`) == 1
	}, 10*time.Second, 5*time.Millisecond)
	resp, err := w.refresh(other)
	require.NoError(t, err)
	require.False(t, resp.GetHealed())
	require.Equal(t, 1, w.app.grantCount("refresh_token"))
}

// TestOAuthFlowWithAuthOn runs the authorization-code flow as production does: auth on,
// a workspace API key, a workspace other than the default. The callback is unauthenticated
// by nature; the state alone binds it to the workspace and connection that asked for it,
// and the connection event goes to that workspace only.
func TestOAuthFlowWithAuthOn(t *testing.T) {
	clk := newClock()
	h := apptest.Start(t, apptest.WithConnectors("testdata/connectors"), apptest.WithAllowPrivate(),
		apptest.WithClock(clk.Now), apptest.WithoutScheduler(), apptest.WithAdminToken(adminToken))
	app := newOAuthApp(t, clk.Now)
	admin := hookmapv1.NewAdminServiceClient(h.Conn)
	keys := map[string]string{}
	for _, ws := range []string{"a", "b"} {
		_, err := admin.CreateWorkspace(h.As(adminToken), &hookmapv1.CreateWorkspaceRequest{Id: ws, Name: ws})
		require.NoError(t, err)
		k, err := admin.CreateApiKey(h.As(adminToken), &hookmapv1.CreateApiKeyRequest{WorkspaceId: ws, Name: "k"})
		require.NoError(t, err)
		keys[ws] = k.GetSecret()
	}
	asB := h.As(keys["b"])
	_, err := h.Connectors.SetConnectorParameters(asB, &hookmapv1.SetConnectorParametersRequest{
		ConnectorKey: "oauthapp", Parameters: apptest.Struct(t, map[string]any{"clientId": app.clientID, "clientSecret": app.clientSecret}),
	})
	require.NoError(t, err)

	req := &hookmapv1.AuthorizeConnectionRequest{
		ConnectorKey: "oauthapp", Name: "acme",
		Parameters: apptest.Struct(t, map[string]any{"baseUri": app.URL()}),
	}
	_, err = h.Connections.AuthorizeConnection(h.Ctx(), req)
	apptest.RequireCode(t, err, codes.Unauthenticated, "")

	a, err := h.Connections.AuthorizeConnection(asB, req)
	require.NoError(t, err)
	id := a.GetConnection().GetId()
	resp, body := get(t, (&oauthWorld{t: t, h: h, app: app}).consent(a.GetAuthorizationUrl()))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Contains(t, body, "is connected")

	got, err := h.Connections.GetConnection(asB, &hookmapv1.GetConnectionRequest{Id: id})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.ConnectionStatus_CONNECTION_STATUS_CONNECTED, got.GetStatus())
	require.True(t, got.GetHasCredentials())
	evs, err := h.Events.ListEvents(asB, &hookmapv1.ListEventsRequest{})
	require.NoError(t, err)
	require.Len(t, evs.GetEvents(), 1)
	require.Equal(t, "connection.connected", evs.GetEvents()[0].GetType())
	require.Equal(t, id, evs.GetEvents()[0].GetConnectionId())
	sub, err := h.Subscriptions.CreateSubscription(asB, &hookmapv1.CreateSubscriptionRequest{ConnectionId: id, EventKey: "hook"})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())

	// The connection is b's alone: a's key and the admin token on the default workspace
	// see nothing of it and cannot start its authorization again.
	for name, ctx := range map[string]context.Context{"a's key": h.As(keys["a"]), "admin on default": h.As(adminToken)} {
		_, err = h.Connections.GetConnection(ctx, &hookmapv1.GetConnectionRequest{Id: id})
		apptest.RequireCode(t, err, codes.NotFound, "")
		list, err := h.Connections.ListConnections(ctx, &hookmapv1.ListConnectionsRequest{})
		require.NoError(t, err, name)
		require.Empty(t, list.GetConnections(), name)
		evs, err := h.Events.ListEvents(ctx, &hookmapv1.ListEventsRequest{})
		require.NoError(t, err, name)
		require.Empty(t, evs.GetEvents(), "%s sees b's connection event", name)
		_, err = h.Connections.AuthorizeConnection(ctx, &hookmapv1.AuthorizeConnectionRequest{ConnectionId: id})
		apptest.RequireCode(t, err, codes.NotFound, "")
	}
}

// The callback's query is whatever the browser was sent to: an error description that is
// not UTF-8 is kept readable in the connection's last error, and the connection can still
// be read and listed (a proto string must be valid UTF-8).
func TestOAuthCallbackErrorNotUTF8(t *testing.T) {
	w := startOAuth(t)
	a := w.authorize("")
	u, err := url.Parse(a.GetAuthorizationUrl())
	require.NoError(t, err)
	resp, body := get(t, a.GetRedirectUri()+"?state="+url.QueryEscape(u.Query().Get("state"))+"&error=access_denied&error_description=%FF%FEno")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
	conn := w.connection(a.GetConnection().GetId())
	require.Equal(t, "the authorization was refused: access_denied: \uFFFDno", conn.GetLastError())
	list, err := w.h.Connections.ListConnections(w.h.Ctx(), &hookmapv1.ListConnectionsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetConnections(), 1)
}
