package outgoing

import (
	"bytes"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// Registered header values and the signing secret are sealed before they reach the
// store: neither is in the database files, while the header names are.
func TestSecretsAreSealedAtRest(t *testing.T) {
	e := newEnv(t)
	const headerValue = "Bearer sk_live_TOPSECRET_0123456789"
	const signingSecret = "whsec_c2lnbmluZy1zZWNyZXQtdGhhdC1tdXN0LXN0YXktc2VhbGVk"
	e.register(Registration{
		ID: "crm", URL: "http://127.0.0.1:1/hooks",
		Headers: map[string]string{"Authorization": headerValue}, SigningSecret: signingSecret,
	})
	clear := [][]byte{[]byte(headerValue), []byte("TOPSECRET"), []byte(signingSecret), []byte("c2lnbmluZy1zZWNyZXQ")}
	check := func(when string) {
		t.Helper()
		var all []byte
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if b, err := os.ReadFile(e.dbPath + suffix); err == nil {
				all = append(all, b...)
			}
		}
		require.NotEmpty(t, all)
		for _, c := range clear {
			require.False(t, bytes.Contains(all, c), "%s: %q found in the database files", when, c)
		}
		require.True(t, bytes.Contains(all, []byte("Authorization")), "%s: header names are kept in clear", when)
	}
	check("open")
	require.NoError(t, e.store.Close())
	check("closed")
}
