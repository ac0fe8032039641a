package hubspot_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// startOAuth runs hookmap with a controllable clock and a fake HubSpot whose OAuth server
// issues 30-minute tokens on that clock; the app's client id, secret and scopes are set.
func startOAuth(t *testing.T) (*world, *clock, *apptest.LogBuffer) {
	clk := &clock{t: time.Now().UTC()}
	logs := &apptest.LogBuffer{}
	h := apptest.StartWithLogs(t, logs, apptest.WithConnectors(".."), apptest.WithAllowPrivate(), apptest.WithClock(clk.Now), apptest.WithoutScheduler())
	w := &world{t: t, h: h, fake: newFakeHubSpot(t, map[string]int64{})}
	w.fake.oauth.now = clk.Now
	h.SetConnectorParameters("hubspot", map[string]any{
		"clientId": w.fake.oauth.clientID, "clientSecret": clientSecret, "scopes": []any{"oauth", "crm.objects.contacts.read"},
	})
	w.url = h.GlobalWebhookURL("hubspot", "webhooks")
	return w, clk, logs
}

var browser = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func visit(t *testing.T, u string) *http.Response {
	t.Helper()
	resp, err := browser.Get(u)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// install plays a user who installs the app into portal through AuthorizeConnection.
func (w *world) install(portal int64) *hookmapv1.Connection {
	w.t.Helper()
	w.fake.oauth.set(func() { w.fake.oauth.portal = portal })
	a, err := w.h.Connections.AuthorizeConnection(w.h.Ctx(), &hookmapv1.AuthorizeConnectionRequest{
		ConnectorKey: "hubspot", Name: "portal", Parameters: apptest.Struct(w.t, map[string]any{"baseUri": w.fake.URL(), "appUri": w.fake.URL()}),
	})
	require.NoError(w.t, err)
	u, err := url.Parse(a.GetAuthorizationUrl())
	require.NoError(w.t, err)
	require.Equal(w.t, "/oauth/authorize", u.Path)
	require.Equal(w.t, "oauth crm.objects.contacts.read", u.Query().Get("scope"))
	require.Contains(w.t, u.RawQuery, "scope=oauth%20crm.objects.contacts.read", "spaces as %20")
	require.Empty(w.t, u.Query().Get("code_challenge"), "HubSpot takes no PKCE")
	consent := visit(w.t, a.GetAuthorizationUrl())
	require.Equal(w.t, http.StatusFound, consent.StatusCode)
	done := visit(w.t, consent.Header.Get("Location"))
	require.Equal(w.t, http.StatusOK, done.StatusCode)
	c, err := w.h.Connections.GetConnection(w.h.Ctx(), &hookmapv1.GetConnectionRequest{Id: a.GetConnection().GetId()})
	require.NoError(w.t, err)
	require.Equal(w.t, hookmapv1.ConnectionStatus_CONNECTION_STATUS_CONNECTED, c.GetStatus(), c.GetLastError())
	return c
}

func TestInstallThroughOAuthAndRenewExpiredTokens(t *testing.T) {
	w, clk, logs := startOAuth(t)
	conn := w.install(portalA)
	require.WithinDuration(t, clk.Now().Add(30*time.Minute), conn.GetCredentialsExpireTime().AsTime(), time.Second)
	require.Equal(t, 1, w.fake.oauth.grantCount("authorization_code"))

	// The portal comes from the installed account's token; events of that portal route.
	sub := w.subscribe(conn, nil)
	code, body := w.fake.send(w.url, event(1, portalA, "contact.creation", 101))
	require.Equal(t, http.StatusOK, code, body)
	evs := w.storedEvents()
	require.Len(t, evs, 2)
	require.Equal(t, "connection.connected", evs[0].GetType(), "the installation is news on the stream")
	require.Equal(t, "contact.creation", evs[1].GetType())
	require.Equal(t, sub.GetId(), evs[1].GetSubscriptionId())

	// 30-minute tokens: every later call renews the token first, with the same refresh
	// token HubSpot answers again, and never sends an expired token.
	for i := 1; i <= 3; i++ {
		clk.Advance(31 * time.Minute)
		w.subscribe(conn, map[string]any{"subscriptionTypes": []any{"deal.creation"}})
		require.Equal(t, i, w.fake.oauth.grantCount("refresh_token"))
	}
	for _, c := range w.fake.Calls() {
		require.False(t, strings.HasSuffix(c, " 401"), c)
	}

	// HubSpot stops taking a token before its expiry: one renewal, the call sent again.
	w.fake.oauth.set(func() { clear(w.fake.oauth.access) })
	w.subscribe(conn, nil)
	require.Equal(t, 4, w.fake.oauth.grantCount("refresh_token"))
	calls := w.fake.Calls()
	tail := calls[len(calls)-3:]
	require.True(t, strings.HasPrefix(tail[0], "GET /account-info/v3/details Bearer ") && strings.HasSuffix(tail[0], " 401"), tail[0])
	require.Equal(t, "POST /oauth/v1/token ", tail[1])
	require.True(t, strings.HasPrefix(tail[2], "GET /account-info/v3/details Bearer ") && !strings.HasSuffix(tail[2], " 401"), tail[2])
	require.NotEqual(t, tail[0], tail[2]+" 401", "sent again with the new token")

	logText := string(logs.Bytes())
	for _, s := range append(w.fake.oauth.secrets(), clientSecret) {
		require.NotContains(t, logText, s)
	}
}

func TestUninstalledAppDisconnects(t *testing.T) {
	w, clk, _ := startOAuth(t)
	conn := w.install(portalB)
	w.subscribe(conn, nil)
	stream := w.h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "ops", Filter: &hookmapv1.EventFilter{Types: []string{"connection.disconnected"}}})

	// The account uninstalls the app: HubSpot answers BAD_REFRESH_TOKEN.
	w.fake.oauth.uninstall(portalB)
	clk.Advance(time.Hour)
	_, err := w.h.Subscriptions.CreateSubscription(w.h.Ctx(), &hookmapv1.CreateSubscriptionRequest{ConnectionId: conn.GetId(), EventKey: "crm"})
	apptest.RequireCode(t, err, codes.FailedPrecondition, "BAD_REFRESH_TOKEN")
	c, err := w.h.Connections.GetConnection(w.h.Ctx(), &hookmapv1.GetConnectionRequest{Id: conn.GetId()})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.ConnectionStatus_CONNECTION_STATUS_DISCONNECTED, c.GetStatus())
	require.Contains(t, c.GetLastError(), "missing or invalid refresh token")
	ev := stream.Next(1)[0]
	require.Equal(t, conn.GetId(), ev.GetConnectionId())
	require.Equal(t, "DISCONNECTED", ev.GetRecord().GetStructValue().AsMap()["status"])

	// Installing again connects the same connection again.
	a, err := w.h.Connections.AuthorizeConnection(w.h.Ctx(), &hookmapv1.AuthorizeConnectionRequest{ConnectionId: conn.GetId()})
	require.NoError(t, err)
	done := visit(t, visit(t, a.GetAuthorizationUrl()).Header.Get("Location"))
	require.Equal(t, http.StatusOK, done.StatusCode)
	w.subscribe(conn, nil)
}
