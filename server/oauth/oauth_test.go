package oauth

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/engine/value"
)

func TestStateAndVerifier(t *testing.T) {
	s1, h1 := NewState()
	s2, _ := NewState()
	require.NotEqual(t, s1, s2)
	require.Regexp(t, `^[A-Za-z0-9_-]{43}$`, s1, "256 bits, URL-safe")
	sum := sha256.Sum256([]byte(s1))
	require.Equal(t, sum[:], h1)
	require.Equal(t, h1, HashState(s1))

	v, c := NewVerifier()
	require.Regexp(t, regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`), v, "RFC 7636 §4.1")
	require.Equal(t, Challenge(v), c)
	// RFC 7636 appendix B.
	require.Equal(t, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", Challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"))
}

func TestParseTokens(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name string
		in   any
		want *Tokens
		err  string
	}{
		{"standard", map[string]any{"accessToken": "a", "refreshToken": "r", "expiresIn": int64(3600), "scope": "x"},
			&Tokens{AccessToken: "a", RefreshToken: "r", ExpiresAt: now.Add(time.Hour),
				Fields: map[string]any{"accessToken": "a", "refreshToken": "r", "scope": "x", "expiresAt": now.Add(time.Hour).UnixMilli()}}, ""},
		{"expiresIn as a string, no refresh token", map[string]any{"accessToken": "a", "expiresIn": "1800", "refreshToken": nil},
			&Tokens{AccessToken: "a", ExpiresAt: now.Add(30 * time.Minute),
				Fields: map[string]any{"accessToken": "a", "expiresAt": now.Add(30 * time.Minute).UnixMilli()}}, ""},
		{"expiresAt wins", map[string]any{"accessToken": "a", "expiresAt": now.Add(time.Minute).UnixMilli(), "expiresIn": int64(99)},
			&Tokens{AccessToken: "a", ExpiresAt: now.Add(time.Minute), Fields: map[string]any{"accessToken": "a", "expiresAt": now.Add(time.Minute).UnixMilli()}}, ""},
		{"no expiry", map[string]any{"accessToken": "a", "expiresIn": int64(0)},
			&Tokens{AccessToken: "a", Fields: map[string]any{"accessToken": "a"}}, ""},
		{"not an object", "a", nil, "the result is a string, want an object with accessToken"},
		{"no access token", map[string]any{"refreshToken": "r"}, nil, "no accessToken"},
		{"empty access token", map[string]any{"accessToken": ""}, nil, "no accessToken"},
		{"access token not a string", map[string]any{"accessToken": int64(5)}, nil, "accessToken is a number, want a string"},
		{"refresh token not a string", map[string]any{"accessToken": "a", "refreshToken": true}, nil, "refreshToken is a boolean"},
		{"bad expiresIn", map[string]any{"accessToken": "a", "expiresIn": "soon"}, nil, "expiresIn is soon, want seconds"},
		{"bad expiresAt", map[string]any{"accessToken": "a", "expiresAt": int64(-1)}, nil, "expiresAt is -1"},
		{"over the value limits", map[string]any{"accessToken": "a", "profile": strings.Repeat("x", value.MaxSize)}, nil, "the result is larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTokens(tc.in, now)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	_, err := ParseTokens(map[string]any{}, now)
	require.ErrorIs(t, err, ErrNoAccessToken)
}

func TestMerge(t *testing.T) {
	old := map[string]any{"accessToken": "a1", "refreshToken": "r1", "expiresAt": int64(1000), "instanceUrl": "https://eu.example"}
	// An app that does not rotate refresh tokens sends none: the old one stays.
	got := Merge(old, &Tokens{Fields: map[string]any{"accessToken": "a2", "expiresAt": int64(2000)}})
	require.Equal(t, map[string]any{"accessToken": "a2", "refreshToken": "r1", "expiresAt": int64(2000), "instanceUrl": "https://eu.example"}, got)
	// A new token without an expiry does not inherit the old one's.
	got = Merge(old, &Tokens{Fields: map[string]any{"accessToken": "a3", "refreshToken": "r3"}})
	require.Equal(t, map[string]any{"accessToken": "a3", "refreshToken": "r3", "instanceUrl": "https://eu.example"}, got)
	require.Equal(t, int64(1000), old["expiresAt"], "old is not modified")
	require.Equal(t, time.UnixMilli(1000).UTC(), ExpiresAt(old))
	require.True(t, ExpiresAt(map[string]any{}).IsZero())
}

func TestRedactor(t *testing.T) {
	r := NewRedactor(
		map[string]any{"accessToken": "at-0123456789", "region": "eu", "nested": []any{"rt-abcdefghij", int64(5)}},
		"client-secret-xyz", nil, "short",
	)
	msg := "POST /token answered 400: {\"got\":\"rt-abcdefghij\",\"secret\":\"client-secret-xyz\",\"region\":\"eu\",\"t\":\"at-0123456789\"} short"
	require.Equal(t, "POST /token answered 400: {\"got\":\"[redacted]\",\"secret\":\"[redacted]\",\"region\":\"eu\",\"t\":\"[redacted]\"} short", r.String(msg))

	base := fmt.Errorf("wrapped: %w (%s)", io.ErrUnexpectedEOF, "at-0123456789")
	err := r.Error(base)
	require.Equal(t, "wrapped: unexpected EOF ([redacted])", err.Error())
	require.ErrorIs(t, err, io.ErrUnexpectedEOF, "the chain is kept")
	clean := errors.New("nothing secret")
	require.Same(t, clean, r.Error(clean))
	require.NoError(t, r.Error(nil))
	var none *Redactor
	require.Equal(t, "x", none.String("x"))
}
