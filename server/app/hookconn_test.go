package app_test

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/app"
	"github.com/hookmap/hookmap/server/apptest"
)

// TestHookConnectionWithAuthOn: the HTTP port as production runs it (an admin token, a
// secret key, a workspace API key, --max-body-bytes raised to 6 MiB). A connection whose
// first request is a webhook is served by the fasthttp front: it takes a body up to the
// raised limit, and a JSON API call that follows on it is authenticated as on any other
// connection. A body handed over to the JSON API is bounded by the API's message bound,
// which the raised limit raises (6 MiB in base64 plus 1 MiB).
func TestHookConnectionWithAuthOn(t *testing.T) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	const maxBody = 6 << 20
	h := apptest.Start(t, apptest.WithConnectors("../../connectors"), apptest.WithAdminToken(adminToken),
		apptest.WithSecretKey(hex.EncodeToString(key)), func(c *app.Config) { c.MaxBodyBytes = maxBody })
	admin := hookmapv1.NewAdminServiceClient(h.Conn)
	_, err := admin.CreateWorkspace(h.As(adminToken), &hookmapv1.CreateWorkspaceRequest{Id: "w", Name: "w"})
	require.NoError(t, err)
	apiKey, err := admin.CreateApiKey(h.As(adminToken), &hookmapv1.CreateApiKeyRequest{WorkspaceId: "w", Name: "k"})
	require.NoError(t, err)
	sub := exampleSubscription(t, h, h.As(apiKey.GetSecret()))
	hook, err := url.Parse(sub.GetWebhookUri())
	require.NoError(t, err)

	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", hook.Host)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		return c, bufio.NewReader(c)
	}
	do := func(c net.Conn, br *bufio.Reader, head, body string) (int, string) {
		_, err := io.WriteString(c, head+"\r\n\r\n"+body)
		require.NoError(t, err)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	post := func(path, contentType, body string, extra ...string) string {
		return strings.Join(append([]string{"POST " + path + " HTTP/1.1", "Host: " + hook.Host, "Content-Type: " + contentType,
			fmt.Sprintf("Content-Length: %d", len(body))}, extra...), "\r\n")
	}

	c, br := dial()
	// over the default 1 MiB, within 6 MiB; the one message is the event's record
	big := `{"messages": [{"text": "hi"}], "pad": ["` + strings.Repeat(strings.Repeat("x", 1000)+`", "`, 5<<10) + `"]}`
	status, body := do(c, br, post(hook.Path, "application/json", big), big)
	require.Equal(t, http.StatusOK, status, "%.300s", body)
	require.JSONEq(t, `{"received": 1}`, body)

	list := "/api/hookmap.v1.EventService/ListEvents"
	status, body = do(c, br, post(list, "application/json", "{}", "Authorization: Bearer "+apiKey.GetSecret()), "{}")
	require.Equal(t, http.StatusOK, status, "%.300s", body)
	require.Contains(t, body, `"subscriptionId":"`+sub.GetId()+`"`)
	status, body = do(c, br, post(list, "application/json", "{}"), "{}")
	require.Equal(t, http.StatusUnauthorized, status, body)
	require.Contains(t, body, `"unauthenticated"`)

	c, br = dial()
	status, _ = do(c, br, post(hook.Path, "application/json", "{}"), "{}")
	require.Equal(t, http.StatusOK, status)
	bound := maxBody*4/3 + 1<<20
	over := strings.Repeat("x", bound+1)
	status, body = do(c, br, "POST "+list+" HTTP/1.1\r\nHost: "+hook.Host+"\r\nContent-Type: application/json\r\n"+
		"Authorization: Bearer "+apiKey.GetSecret()+"\r\nTransfer-Encoding: chunked",
		fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(over), over))
	require.Equal(t, http.StatusRequestEntityTooLarge, status, "%.300s", body)
	require.Contains(t, body, fmt.Sprintf("over the limit of %d bytes", bound))
}
