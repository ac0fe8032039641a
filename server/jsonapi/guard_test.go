package jsonapi

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// In dev mode (no auth) the API answers only local requests naming a loopback host; with
// auth on it answers anyone who holds a token. Cross-origin browser calls are refused in
// both.
func TestGuard(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	cases := []struct {
		name         string
		loopbackOnly bool
		remote, host string
		origin       string
		want         int
	}{
		{"dev mode, local", true, "127.0.0.1:5000", "127.0.0.1:8080", "", http.StatusTeapot},
		{"dev mode, localhost", true, "[::1]:5000", "localhost:8080", "", http.StatusTeapot},
		{"dev mode, IPv6 host", true, "[::1]:5000", "[::1]:8080", "", http.StatusTeapot},
		{"dev mode, remote sender", true, "203.0.113.9:5000", "127.0.0.1:8080", "", http.StatusForbidden},
		{"dev mode, DNS rebinding", true, "127.0.0.1:5000", "evil.example:8080", "http://evil.example:8080", http.StatusForbidden},
		{"dev mode, public host name", true, "127.0.0.1:5000", "hooks.example.com", "", http.StatusForbidden},
		{"auth on, remote caller", false, "203.0.113.9:5000", "hooks.example.com", "", http.StatusTeapot},
		{"auth on, cross-origin page", false, "203.0.113.9:5000", "hooks.example.com", "https://evil.example", http.StatusForbidden},
		{"auth on, same-origin page", false, "203.0.113.9:5000", "hooks.example.com", "https://hooks.example.com", http.StatusTeapot},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/hookmap.v1.EventService/ListEvents", nil)
			r.RemoteAddr, r.Host = tc.remote, tc.host
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			w := httptest.NewRecorder()
			guard(ok, tc.loopbackOnly).ServeHTTP(w, r)
			require.Equal(t, tc.want, w.Code, w.Body.String())
			if tc.want == http.StatusForbidden {
				require.Contains(t, w.Body.String(), "permission_denied")
			}
		})
	}
}
