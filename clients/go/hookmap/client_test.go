package hookmap

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDialChecksItsOptions(t *testing.T) {
	ctx := t.Context()
	_, err := Dial(ctx, "")
	require.ErrorContains(t, err, "empty target")
	_, err = Dial(ctx, "127.0.0.1:1", WithReconnectBackoff(Backoff{Max: time.Second}))
	require.ErrorContains(t, err, "positive Initial delay")
	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err = Dial(done, "127.0.0.1:1")
	require.ErrorIs(t, err, context.Canceled)

	// Zero backoffs mean the defaults; Dial does not wait for a server.
	c, err := Dial(ctx, "127.0.0.1:1", WithInsecure(), WithReconnectBackoff(Backoff{}), WithRetry(RetryPolicy{MaxAttempts: 3}))
	require.NoError(t, err)
	require.Equal(t, DefaultReconnectBackoff, c.reconnect)
	require.NoError(t, c.Close())
	require.True(t, c.closed())

	err = c.Consume(ctx, "x", func(context.Context, *Event) error { return nil }, WithHandlerBackoff(Backoff{Max: time.Second}))
	require.ErrorContains(t, err, "WithHandlerBackoff")
	err = c.Consume(ctx, "x", nil)
	require.ErrorContains(t, err, "nil handler")
}

func TestCallCredentials(t *testing.T) {
	md, err := callCredentials{token: "k", workspace: "acme", secure: true}.GetRequestMetadata(t.Context())
	require.NoError(t, err)
	require.Equal(t, map[string]string{"authorization": "Bearer k", WorkspaceHeader: "acme"}, md)
	md, err = callCredentials{workspace: "acme"}.GetRequestMetadata(t.Context())
	require.NoError(t, err)
	require.Equal(t, map[string]string{WorkspaceHeader: "acme"}, md, "no token, no authorization header")
	require.True(t, callCredentials{secure: true}.RequireTransportSecurity())
	require.False(t, callCredentials{}.RequireTransportSecurity())
}
