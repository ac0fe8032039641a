package microsoftgraph_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

const tenant = "contoso.onmicrosoft.com"

// oauthWorld is hookmap with the bundled connectors, a controllable clock, the app
// registration's client set for the workspace, and a fake Graph whose identity platform
// issues short-lived tokens (20 minutes).
type oauthWorld struct {
	t     *testing.T
	h     *apptest.Harness
	graph *fakeGraph
	clk   *clock
	logs  *apptest.LogBuffer
}

func startOAuth(t *testing.T) *oauthWorld {
	t.Helper()
	clk := &clock{t: time.Now().UTC()}
	logs := &apptest.LogBuffer{}
	h := apptest.StartWithLogs(t, logs, apptest.WithConnectors(".."), apptest.WithAllowPrivate(),
		apptest.WithClock(clk.Now), apptest.WithoutScheduler())
	g := newFakeGraph(t)
	g.now, g.tokenTTL = clk.Now, 20*time.Minute
	h.SetConnectorParameters("microsoft-graph", map[string]any{
		"clientId": g.clientID, "clientSecret": g.clientSecret, "scopes": []any{"Mail.Read", "Calendars.Read"},
	})
	return &oauthWorld{t: t, h: h, graph: g, clk: clk, logs: logs}
}

func (w *oauthWorld) params() map[string]any {
	return map[string]any{"baseUri": w.graph.baseURI(), "loginUri": w.graph.srv.URL, "tenant": tenant}
}

var browser = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func follow(t *testing.T, u string) *http.Response {
	t.Helper()
	resp, err := browser.Get(u)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// connectUser runs the authorization code flow for a new connection, as a user's browser
// would, and returns the connection.
func (w *oauthWorld) connectUser() *hookmapv1.Connection {
	w.t.Helper()
	a, err := w.h.Connections.AuthorizeConnection(w.h.Ctx(), &hookmapv1.AuthorizeConnectionRequest{
		ConnectorKey: "microsoft-graph", Name: "megan", Parameters: apptest.Struct(w.t, w.params()),
	})
	require.NoError(w.t, err)
	signIn := follow(w.t, a.GetAuthorizationUrl())
	require.Equal(w.t, http.StatusFound, signIn.StatusCode)
	done := follow(w.t, signIn.Header.Get("Location"))
	require.Equal(w.t, http.StatusOK, done.StatusCode)
	c, err := w.h.Connections.GetConnection(w.h.Ctx(), &hookmapv1.GetConnectionRequest{Id: a.GetConnection().GetId()})
	require.NoError(w.t, err)
	return c
}

func (w *oauthWorld) subscribe(conn *hookmapv1.Connection, params map[string]any) *hookmapv1.Subscription {
	w.t.Helper()
	sub, err := w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: eventKey, Parameters: apptest.Struct(w.t, params),
	})
	require.NoError(w.t, err)
	require.Equal(w.t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, sub.GetStatus(), sub.GetLastError())
	return sub
}

func TestAuthorizationURLAndCallback(t *testing.T) {
	w := startOAuth(t)
	a, err := w.h.Connections.AuthorizeConnection(w.h.Ctx(), &hookmapv1.AuthorizeConnectionRequest{
		ConnectorKey: "microsoft-graph", Name: "megan", Parameters: apptest.Struct(t, w.params()),
	})
	require.NoError(t, err)
	u, err := url.Parse(a.GetAuthorizationUrl())
	require.NoError(t, err)
	require.Equal(t, "/"+tenant+"/oauth2/v2.0/authorize", u.Path)
	q := u.Query()
	require.Equal(t, w.graph.clientID, q.Get("client_id"))
	require.Equal(t, "offline_access Mail.Read Calendars.Read", q.Get("scope"))
	require.Equal(t, "query", q.Get("response_mode"))
	require.Equal(t, w.h.BaseURL+"/oauth/callback", q.Get("redirect_uri"))
	require.Equal(t, "S256", q.Get("code_challenge_method"))

	conn := w.connectUser()
	require.Equal(t, hookmapv1.ConnectionStatus_CONNECTION_STATUS_CONNECTED, conn.GetStatus())
	require.WithinDuration(t, w.clk.Now().Add(20*time.Minute), conn.GetCredentialsExpireTime().AsTime(), time.Second)
	form := w.graph.login.lastForm()
	require.Equal(t, "authorization_code", form.Get("grant_type"))
	require.Equal(t, "offline_access Mail.Read Calendars.Read", form.Get("scope"))
	require.Equal(t, w.h.BaseURL+"/oauth/callback", form.Get("redirect_uri"))

	// The user's token creates the Graph subscription.
	w.subscribe(conn, map[string]any{"resource": inbox})
	require.Len(t, w.graph.all(), 1)
}

// TestSubscriptionRenewedAcrossTokenExpiries: a Graph subscription of an hour is renewed
// every 54 minutes while the access token lives 20: each renewal renews the token first,
// with the refresh token Entra ID answered last, and no call ever goes out with an expired
// token. Nobody calls UpdateConnection.
func TestSubscriptionRenewedAcrossTokenExpiries(t *testing.T) {
	w := startOAuth(t)
	conn := w.connectUser()
	sub := w.subscribe(conn, map[string]any{"resource": inbox, "expirationMinutes": 60})
	gs := w.graphSubFor(sub)
	core := w.h.App.Core()
	for i := 1; i <= 4; i++ {
		got, err := w.h.Subscriptions.GetSubscription(w.h.Ctx(), &hookmapv1.GetSubscriptionRequest{Id: sub.GetId()})
		require.NoError(t, err)
		// Time passes to the renewal: the token expired long ago.
		w.clk.Advance(got.GetNextRefreshTime().AsTime().Sub(w.clk.Now()) + time.Second)
		before := parseTime(t, w.graph.get(gs.ID).ExpirationDateTime)
		n, err := core.RunDueRefreshes(context.Background())
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Equal(t, i, w.graph.login.grantCount("refresh_token"), "renewal %d renewed the token once", i)
		require.True(t, parseTime(t, w.graph.get(gs.ID).ExpirationDateTime).After(before), "renewal %d moved the Graph subscription's expiry", i)
		got, err = w.h.Subscriptions.GetSubscription(w.h.Ctx(), &hookmapv1.GetSubscriptionRequest{Id: sub.GetId()})
		require.NoError(t, err)
		require.Equal(t, hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE, got.GetStatus(), got.GetLastError())
		require.Empty(t, got.GetLastError())
	}
	require.Equal(t, 4, w.graph.count("PATCH /v1.0/subscriptions/"+gs.ID))
	for _, c := range w.graph.callLog() {
		require.NotContains(t, c, " 401", "no request went out with an expired token")
	}
	require.Equal(t, 1, w.graph.count("POST /v1.0/subscriptions"), "renewed, never re-created")
	c, err := w.h.Connections.GetConnection(w.h.Ctx(), &hookmapv1.GetConnectionRequest{Id: conn.GetId()})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.ConnectionStatus_CONNECTION_STATUS_CONNECTED, c.GetStatus())
	require.True(t, c.GetCredentialsExpireTime().AsTime().After(w.clk.Now()))

	// Unsubscribing after yet another expiry renews the token too.
	w.clk.Advance(time.Hour)
	_, err = w.h.Subscriptions.DeleteSubscription(w.h.Ctx(), &hookmapv1.DeleteSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Nil(t, w.graph.get(gs.ID))
	require.Equal(t, 5, w.graph.login.grantCount("refresh_token"))

	secrets := []string{w.graph.clientSecret}
	secrets = append(secrets, w.graph.login.issued()...)
	logs := string(w.logs.Bytes())
	for _, s := range secrets {
		require.NotContains(t, logs, s)
	}
}

func (w *oauthWorld) graphSubFor(sub *hookmapv1.Subscription) *graphSub {
	w.t.Helper()
	for _, s := range w.graph.all() {
		if s.NotificationURL == sub.GetWebhookUri() {
			return s
		}
	}
	w.t.Fatalf("no Graph subscription for %s", sub.GetWebhookUri())
	return nil
}

// TestPolicyChangeDisconnects: Entra ID asks the user to sign in again (a new MFA policy:
// interaction_required), which the connector's grantRevoked treats as final.
func TestPolicyChangeDisconnects(t *testing.T) {
	w := startOAuth(t)
	conn := w.connectUser()
	sub := w.subscribe(conn, map[string]any{"resource": inbox, "expirationMinutes": 60})
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "ops", Filter: &hookmapv1.EventFilter{EventKeys: []string{"connection"}},
		Start: &hookmapv1.StreamPosition{Position: &hookmapv1.StreamPosition_Latest{Latest: true}}})
	w.graph.login.set(func() { w.graph.login.failWith = "interaction_required" })
	w.clk.Advance(time.Hour)
	_, err := w.h.Subscriptions.RefreshSubscription(w.h.Ctx(), &hookmapv1.RefreshSubscriptionRequest{Id: sub.GetId()})
	apptest.RequireCode(t, err, codes.FailedPrecondition, "AADSTS50076")
	c, err := w.h.Connections.GetConnection(w.h.Ctx(), &hookmapv1.GetConnectionRequest{Id: conn.GetId()})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.ConnectionStatus_CONNECTION_STATUS_DISCONNECTED, c.GetStatus())
	require.True(t, strings.HasPrefix(c.GetLastError(), "the app refused the refreshToken grant: interaction_required: AADSTS50076"), c.GetLastError())
	ev := stream.Next(1)[0]
	require.Equal(t, "connection.disconnected", ev.GetType())
	require.Equal(t, conn.GetId(), ev.GetConnectionId())
}

// TestClientCredentials: a daemon connection of the tenant, with the app's own token.
func TestClientCredentials(t *testing.T) {
	w := startOAuth(t)
	conn, err := w.h.Connections.CreateConnection(w.h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "microsoft-graph", Name: "contoso directory", Parameters: apptest.Struct(t, w.params()),
	})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.ConnectionStatus_CONNECTION_STATUS_CONNECTED, conn.GetStatus())
	form := w.graph.login.lastForm()
	require.Equal(t, "client_credentials", form.Get("grant_type"))
	require.Equal(t, "https://graph.microsoft.com/.default", form.Get("scope"))
	sub := w.subscribe(conn, map[string]any{"resource": "/users", "changeType": "updated,deleted", "expirationMinutes": 60})
	w.clk.Advance(55 * time.Minute)
	n, err := w.h.App.Core().RunDueRefreshes(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, 2, w.graph.login.grantCount("client_credentials"), "no refresh token: the grant runs again")
	require.Zero(t, w.graph.login.grantCount("refresh_token"))
	got, err := w.h.Subscriptions.GetSubscription(w.h.Ctx(), &hookmapv1.GetSubscriptionRequest{Id: sub.GetId()})
	require.NoError(t, err)
	require.Empty(t, got.GetLastError())

	// The common endpoint cannot issue an application token: Entra ID's answer, no connection.
	params := w.params()
	delete(params, "tenant")
	_, err = w.h.Connections.CreateConnection(w.h.Ctx(), &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "microsoft-graph", Name: "no tenant", Parameters: apptest.Struct(t, params),
	})
	st := apptest.RequireCode(t, err, codes.FailedPrecondition, "AADSTS90007")
	require.NotContains(t, st.Message(), w.graph.clientSecret)
}
