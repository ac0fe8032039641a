package netguard

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIsForbidden(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1":        true,
		"127.9.9.9":        true,
		"::1":              true,
		"::ffff:127.0.0.1": true,
		"10.1.2.3":         true,
		"172.16.0.1":       true,
		"172.31.255.255":   true,
		"192.168.1.1":      true,
		"169.254.169.254":  true,
		"100.64.0.1":       true,
		"0.0.0.0":          true,
		"::":               true,
		"fe80::1":          true,
		"fd00::1":          true,
		"224.0.0.1":        true,
		"255.255.255.255":  true,
		"8.8.8.8":          false,
		"172.32.0.1":       false,
		"2606:4700::1111":  false,
		"::ffff:8.8.8.8":   false,
	} {
		require.Equal(t, want, IsForbidden(netip.MustParseAddr(addr)), addr)
	}
}

func TestClientRefusesLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()

	_, err := NewClient(Options{}).Get(srv.URL)
	require.Error(t, err)
	require.True(t, errors.Is(err, ErrForbiddenAddress), "%v", err)
	require.Contains(t, err.Error(), "--allow-private-networks")

	resp, err := NewClient(Options{AllowPrivate: true}).Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 204, resp.StatusCode)
}

func TestRedirects(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	defer target.Close()
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusFound)
	}))
	defer redir.Close()

	resp, err := NewClient(Options{AllowPrivate: true}).Get(redir.URL)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode, "redirects are not followed unless asked")

	resp, err = NewClient(Options{AllowPrivate: true, FollowRedirects: true}).Get(redir.URL)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)

	loop := httptest.NewServer(nil)
	loop.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, loop.URL, http.StatusFound) })
	defer loop.Close()
	_, err = NewClient(Options{AllowPrivate: true, FollowRedirects: true, MaxRedirects: 3}).Get(loop.URL)
	require.ErrorContains(t, err, "stopped after 3 redirects")
}

func TestControlChecksDialedAddress(t *testing.T) {
	c := control(false)
	require.ErrorIs(t, c("tcp", "127.0.0.1:80", nil), ErrForbiddenAddress)
	require.ErrorIs(t, c("tcp", "[::ffff:10.0.0.1]:443", nil), ErrForbiddenAddress)
	require.ErrorIs(t, c("tcp", "garbage", nil), ErrForbiddenAddress)
	require.NoError(t, c("tcp", "93.184.216.34:443", nil))
	require.NoError(t, control(true)("tcp", "127.0.0.1:80", nil))
}
