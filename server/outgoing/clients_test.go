package outgoing

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/netguard"
)

func TestClientsFromKeepsTheGuard(t *testing.T) {
	t.Parallel()
	srv := newRecorder(t, jsonAnswer(200, `{}`))
	base := netguard.NewClient(netguard.Options{AllowPrivate: false, Timeout: time.Second})
	e := newEnv(t, func(c *Config) { c.Clients = ClientsFrom(base) })
	e.register(Registration{ID: "local", URL: srv.URL})
	res := e.trigger(Trigger{WebhookID: "local"})
	require.True(t, res.Error)
	require.Contains(t, res.ErrorMessage, "refused: the endpoint's address is loopback or private")
	require.Empty(t, srv.requests())
}

func TestClientsFromDropsTheBaseTimeouts(t *testing.T) {
	t.Parallel()
	srv := newRecorder(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		time.Sleep(1500 * time.Millisecond)
		jsonAnswer(200, `{"late":true}`)(w, nil, 0)
	})
	// The base client gives up after 1s; the registration allows 5s.
	base := netguard.NewClient(netguard.Options{AllowPrivate: true, Timeout: time.Second})
	e := newEnv(t, func(c *Config) { c.Clients = ClientsFrom(base) })
	e.register(Registration{ID: "slow", URL: srv.URL, Timeout: 5 * time.Second, FollowRedirects: true})
	res := e.trigger(Trigger{WebhookID: "slow"})
	require.False(t, res.Error, res.ErrorMessage)
	require.Equal(t, map[string]any{"late": true}, res.Data)
}

func TestSendWithEndedContext(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := newRecorder(t, jsonAnswer(200, `{}`))
	w := e.register(Registration{ID: "x", URL: srv.URL})
	p, err := e.s.prepare(w, &Trigger{WebhookID: "x"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	res := &Result{}
	e.s.send(ctx, p, res)
	require.True(t, res.Error)
	require.Zero(t, res.Attempts)
	require.Equal(t, "canceled: the caller went away before the endpoint answered", res.ErrorMessage)
	require.Empty(t, srv.requests())
}
