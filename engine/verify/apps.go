package verify

// The schemes of apps whose signature covers more than the body (zoom: a timestamp;
// trello: the callback URL; twilio: the URL and the sorted form parameters), and token, a
// shared secret sent as is in a header (GitLab's X-Gitlab-Token).

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// checkToken compares the header's value (after the optional prefix) with the secret.
// Both sides are hashed first, so the comparison takes the same time whatever the
// lengths and wherever they differ.
func checkToken(c Config, secret string, h http.Header) error {
	name := http.CanonicalHeaderKey(strings.TrimSpace(c.Header))
	vals := headerValues(h, name)
	if len(vals) == 0 {
		return missing(name)
	}
	if len(vals) > maxCandidates {
		return fail(ReasonBadFormat, "malformed header %s: more than %d values", name, maxCandidates)
	}
	want := sha256.Sum256([]byte(secret))
	matched, offered := false, false
	for _, v := range vals {
		if c.Prefix != "" {
			if len(v) < len(c.Prefix) || !strings.EqualFold(v[:len(c.Prefix)], c.Prefix) {
				continue
			}
			v = strings.TrimSpace(v[len(c.Prefix):])
		}
		offered = true
		got := sha256.Sum256([]byte(v))
		if hmac.Equal(got[:], want[:]) {
			matched = true
		}
	}
	if !offered {
		return fail(ReasonBadFormat, "malformed header %s: expected %q followed by the token", name, c.Prefix)
	}
	if !matched {
		return fail(ReasonMismatch, "token mismatch")
	}
	return nil
}

// checkZoom verifies Zoom's x-zm-signature: "v0=" + hex HMAC-SHA256 of
// "v0:{x-zm-request-timestamp}:{body}", the timestamp in seconds.
func checkZoom(c Config, secret string, h http.Header, body []byte, now time.Time) error {
	vals := headerValues(h, HeaderZoom)
	if len(vals) == 0 {
		return missing("x-zm-signature")
	}
	t := get(h, HeaderZoomTime)
	if t == "" {
		return missing("x-zm-request-timestamp")
	}
	ts, f := parseTimestamp("header x-zm-request-timestamp", t)
	if f != nil {
		return f
	}
	sigs, f := decodeSigs("x-zm-signature", vals, "v0=", "hex")
	if f != nil {
		return f
	}
	if !anyEqual([][]byte{mac(sha256.New, []byte(secret), []byte("v0:"+t+":"), body)}, sigs) {
		return mismatch()
	}
	return checkAge(ts, time.Second, now, c.tolerance())
}

// checkTrello verifies X-Trello-Webhook: base64 HMAC-SHA1 of the body followed by the
// callback URL the webhook was created with (the URL the request was sent to).
func checkTrello(secret string, h http.Header, r Request) error {
	vals := headerValues(h, HeaderTrello)
	if len(vals) == 0 {
		return missing(HeaderTrello)
	}
	sigs, f := decodeSigs(HeaderTrello, vals, "", "base64")
	if f != nil {
		return f
	}
	if !anyEqual([][]byte{mac(sha1.New, []byte(secret), r.Body, []byte(r.URL))}, sigs) {
		return mismatch()
	}
	return nil
}

// checkTwilio verifies X-Twilio-Signature: base64 HMAC-SHA1, keyed with the account's
// auth token, of the full URL followed by each form parameter's name and value, sorted by
// name. A body that is not form-encoded must be covered by a bodySHA256 query parameter
// (the hex SHA-256 of the body, as Twilio sends JSON bodies); otherwise the signature
// would not cover it. The URL is tried as called, and with its default port added or
// removed, as Twilio's helper libraries do (Twilio is not consistent about the port).
func checkTwilio(secret string, h http.Header, r Request) error {
	vals := headerValues(h, HeaderTwilio)
	if len(vals) == 0 {
		return missing(HeaderTwilio)
	}
	sigs, f := decodeSigs(HeaderTwilio, vals, "", "base64")
	if f != nil {
		return f
	}
	params, bodyHash, f := twilioSigned(h, r)
	if f != nil {
		return f
	}
	var expected [][]byte
	for _, u := range twilioURLs(r.URL) {
		expected = append(expected, mac(sha1.New, []byte(secret), []byte(u), params))
	}
	if !anyEqual(expected, sigs) {
		return mismatch()
	}
	if bodyHash != "" {
		sum := sha256.Sum256(r.Body)
		if !strings.EqualFold(bodyHash, hex.EncodeToString(sum[:])) {
			return fail(ReasonMismatch, "bodySHA256 in the URL does not match the body")
		}
	}
	return nil
}

// twilioSigned returns what Twilio signs after the URL: the sorted form parameters of a
// form-encoded body; nothing for an empty body or one covered by bodySHA256 (returned,
// to be compared with the body's hash).
func twilioSigned(h http.Header, r Request) ([]byte, string, *Failure) {
	if isForm(get(h, "Content-Type")) {
		form, err := url.ParseQuery(string(r.Body))
		if err != nil {
			return nil, "", fail(ReasonBadFormat, "malformed form body: %s", err.Error())
		}
		return twilioParams(form), "", nil
	}
	if u, err := url.Parse(r.URL); err == nil {
		if v := u.Query().Get("bodySHA256"); v != "" {
			return nil, v, nil
		}
	}
	if len(r.Body) > 0 {
		return nil, "", fail(ReasonBadFormat, "a body that is not form-encoded must be covered by bodySHA256 in the URL")
	}
	return nil, "", nil
}

func isForm(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/x-www-form-urlencoded")
}

// twilioParams concatenates each parameter's name and value, names sorted in byte order
// (Twilio's "Unix-style case-sensitive sorting"); a name given several times contributes
// each distinct value, sorted, as Twilio's Python helper library computes it.
func twilioParams(form url.Values) []byte {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(form)) {
		vs := slices.Clone(form[k])
		slices.Sort(vs)
		for _, v := range slices.Compact(vs) {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	return []byte(b.String())
}

// twilioURLs is the URL as called, then without its port or with the scheme's default
// port when it has none.
func twilioURLs(raw string) []string {
	out := []string{raw}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return out
	}
	v := *u
	if u.Port() != "" {
		v.Host = u.Hostname()
		if strings.Contains(v.Host, ":") { // IPv6
			v.Host = "[" + v.Host + "]"
		}
	} else {
		port := "80"
		if strings.EqualFold(u.Scheme, "https") {
			port = "443"
		}
		v.Host = u.Host + ":" + port
	}
	if s := v.String(); s != raw {
		out = append(out, s)
	}
	return out
}

// signTwilio is what Twilio sends for r: the signature of r.URL and its form parameters.
func signTwilio(key []byte, r Request) ([]byte, error) {
	h := r.Header
	if h == nil {
		h = http.Header{}
	}
	params, _, f := twilioSigned(h, r)
	if f != nil {
		return nil, fmt.Errorf("twilio: %s", f.Message)
	}
	return mac(sha1.New, key, []byte(r.URL), params), nil
}
