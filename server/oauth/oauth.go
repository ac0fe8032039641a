package oauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hookmap/hookmap/engine/value"
)

// NewState returns a new state parameter (256 random bits, base64url) and its hash, the
// only form in which it is stored.
func NewState() (state string, hash []byte) {
	state = randomString(32)
	return state, HashState(state)
}

// HashState returns the SHA-256 of a state parameter.
func HashState(state string) []byte {
	h := sha256.Sum256([]byte(state))
	return h[:]
}

// NewVerifier returns a PKCE code verifier (43 characters of the unreserved set, 256
// random bits: RFC 7636 §4.1) and its S256 code challenge.
func NewVerifier() (verifier, challenge string) {
	verifier = randomString(32)
	return verifier, Challenge(verifier)
}

// Challenge is the S256 code challenge of a verifier: base64url(SHA-256(verifier)).
func Challenge(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Keys of the credentials hookmap reads.
const (
	KeyAccessToken  = "accessToken"
	KeyRefreshToken = "refreshToken"
	KeyExpiresAt    = "expiresAt" // milliseconds since the epoch
	KeyExpiresIn    = "expiresIn" // seconds, as a token response says; stored as expiresAt
)

// ErrNoAccessToken is returned by ParseTokens for a result without an access token.
var ErrNoAccessToken = errors.New("no accessToken")

// Tokens is what a token request returned.
type Tokens struct {
	AccessToken  string
	RefreshToken string // "" when the answer has none
	// ExpiresAt is when the access token expires; zero when the answer does not say.
	ExpiresAt time.Time
	// Fields are the credentials the answer sets: every non-null field of the result
	// (extra ones too, such as an instance URL or an account id), expiresIn turned into
	// expiresAt (milliseconds since the epoch).
	Fields map[string]any
}

// ParseTokens reads a token request's result (its responseMapping's, or credentials a
// client gave): accessToken (a non-empty string), refreshToken (a string, optional),
// expiresAt (milliseconds since the epoch) or expiresIn (seconds from now), and any
// other field. Null fields are left out.
func ParseTokens(out any, now time.Time) (*Tokens, error) {
	m, ok := out.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the result is %s, want an object with accessToken", kind(out))
	}
	if err := value.Check(m); err != nil {
		return nil, fmt.Errorf("the result is %w", err)
	}
	t := &Tokens{Fields: make(map[string]any, len(m))}
	for k, v := range m {
		if v != nil && k != KeyExpiresIn {
			t.Fields[k] = v
		}
	}
	switch v := m[KeyAccessToken].(type) {
	case string:
		t.AccessToken = v
	case nil:
	default:
		return nil, fmt.Errorf("accessToken is %s, want a string", kind(v))
	}
	if t.AccessToken == "" {
		return nil, ErrNoAccessToken
	}
	switch v := m[KeyRefreshToken].(type) {
	case string:
		t.RefreshToken = v
	case nil:
	default:
		return nil, fmt.Errorf("refreshToken is %s, want a string", kind(v))
	}
	if v, present := m[KeyExpiresAt]; present && v != nil {
		ms, ok := number(v)
		if !ok || ms <= 0 {
			return nil, fmt.Errorf("expiresAt is %v, want milliseconds since the epoch", v)
		}
		t.ExpiresAt = time.UnixMilli(int64(ms)).UTC()
	} else if v, present := m[KeyExpiresIn]; present && v != nil {
		secs, ok := number(v)
		if !ok {
			return nil, fmt.Errorf("expiresIn is %v, want seconds", v)
		}
		if secs > 0 { // 0 or less: the app does not say
			t.ExpiresAt = now.Add(time.Duration(secs * float64(time.Second))).UTC().Truncate(time.Millisecond)
		}
	}
	delete(t.Fields, KeyExpiresAt)
	if !t.ExpiresAt.IsZero() {
		t.Fields[KeyExpiresAt] = t.ExpiresAt.UnixMilli()
	}
	return t, nil
}

func number(v any) (float64, bool) {
	var f float64
	switch t := v.(type) {
	case int64:
		f = float64(t)
	case float64:
		f = t
	case string:
		p, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
		if err != nil {
			return 0, false
		}
		f = p
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e15 {
		return 0, false
	}
	return f, true
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// Merge returns the credentials after a renewal: old with t's fields on top. A field the
// answer leaves out keeps its old value (an app that does not rotate refresh tokens sends
// none), except expiresAt, which belongs to the new access token.
func Merge(old map[string]any, t *Tokens) map[string]any {
	out := make(map[string]any, len(old)+len(t.Fields))
	for k, v := range old {
		out[k] = v
	}
	delete(out, KeyExpiresAt)
	for k, v := range t.Fields {
		out[k] = v
	}
	return out
}

// ExpiresAt reads the expiry of credentials (zero when they do not say).
func ExpiresAt(creds map[string]any) time.Time {
	ms, ok := number(creds[KeyExpiresAt])
	if !ok || ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms)).UTC()
}

// String returns a string field of credentials ("" when absent or not a string).
func String(creds map[string]any, key string) string {
	s, _ := creds[key].(string)
	return s
}

// MinSecretLen is the length from which a value is taken out of messages: shorter ones
// (a region, a flag) are not secrets and would mangle the text.
const MinSecretLen = 8

// Redactor replaces secret values in text with [redacted].
type Redactor struct {
	secrets []string
}

// NewRedactor collects every string of length MinSecretLen or more found in values
// (strings, and the leaves of maps and lists).
func NewRedactor(values ...any) *Redactor {
	r := &Redactor{}
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case string:
			if len(t) >= MinSecretLen {
				r.secrets = append(r.secrets, t)
			}
		case map[string]any:
			for _, e := range t {
				walk(e)
			}
		case []any:
			for _, e := range t {
				walk(e)
			}
		}
	}
	for _, v := range values {
		walk(v)
	}
	// Longest first, so a secret that contains another is replaced whole.
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
	return r
}

// String returns s without the secrets.
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	for _, sec := range r.secrets {
		if strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}

// Error returns err with its message redacted; errors.Is and errors.As still see err.
func (r *Redactor) Error(err error) error {
	if err == nil || r == nil {
		return err
	}
	msg := err.Error()
	red := r.String(msg)
	if red == msg {
		return err
	}
	return &redacted{msg: red, err: err}
}

type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }
