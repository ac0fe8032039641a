package verify

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is the accepted clock skew of timestamped schemes when
// Config.Tolerance is zero.
const DefaultTolerance = 5 * time.Minute

// Schemes are the built-in verification schemes.
var Schemes = []string{"github", "stripe", "slack", "shopify", "standard-webhooks", "hubspot", "hmac", "token", "zoom", "trello", "twilio"}

// Header names of the built-in schemes.
const (
	HeaderGitHub        = "X-Hub-Signature-256"
	HeaderStripe        = "Stripe-Signature"
	HeaderSlack         = "X-Slack-Signature"
	HeaderSlackTime     = "X-Slack-Request-Timestamp"
	HeaderShopify       = "X-Shopify-Hmac-Sha256"
	HeaderWebhookID     = "Webhook-Id"
	HeaderWebhookTime   = "Webhook-Timestamp"
	HeaderWebhookSig    = "Webhook-Signature"
	HeaderHubSpot       = "X-Hubspot-Signature-V3"
	HeaderHubSpotTime   = "X-Hubspot-Request-Timestamp"
	HeaderZoom          = "X-Zm-Signature"
	HeaderZoomTime      = "X-Zm-Request-Timestamp"
	HeaderTrello        = "X-Trello-Webhook"
	HeaderTwilio        = "X-Twilio-Signature"
	standardSecretStart = "whsec_"
)

// maxCandidates bounds how many signatures one request may offer.
const maxCandidates = 16

// Config selects and parameterises a scheme.
type Config struct {
	Scheme    string
	Header    string        // hmac, token: the header holding the signature (the token)
	Algorithm string        // hmac: sha1, sha256 (default) or sha512
	Encoding  string        // hmac: hex (default) or base64
	Prefix    string        // hmac, token: optional prefix before the signature, e.g. "sha256=", "Bearer "
	Tolerance time.Duration // timestamped schemes: accepted skew; 0 means DefaultTolerance
}

// Problem is one reason a Config cannot verify anything; Field is the offending key
// (scheme, tolerance, header, algorithm, encoding or prefix).
type Problem struct{ Field, Message string }

// Problems lists every reason the configuration cannot verify anything.
func (c Config) Problems() []Problem {
	var ps []Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{field, fmt.Sprintf(format, args...)})
	}
	switch {
	case c.Scheme == "":
		add("scheme", "verify scheme is required (one of %s)", strings.Join(Schemes, ", "))
		return ps
	case !slices.Contains(Schemes, c.Scheme):
		add("scheme", "unknown verify scheme %q (supported: %s)", c.Scheme, strings.Join(Schemes, ", "))
		return ps
	}
	if c.Tolerance < 0 {
		add("tolerance", "verify tolerance must not be negative, got %s", c.Tolerance)
	}
	// header and prefix belong to hmac and token, algorithm and encoding to hmac.
	for _, f := range []struct{ name, val string }{{"header", c.Header}, {"algorithm", c.Algorithm}, {"encoding", c.Encoding}, {"prefix", c.Prefix}} {
		if f.val == "" || c.Scheme == "hmac" || (c.Scheme == "token" && (f.name == "header" || f.name == "prefix")) {
			continue
		}
		if f.name == "header" || f.name == "prefix" {
			add(f.name, "verify %s applies to schemes hmac and token only, not %s", f.name, c.Scheme)
		} else {
			add(f.name, "verify %s applies to scheme hmac only, not %s", f.name, c.Scheme)
		}
	}
	switch c.Scheme {
	case "token":
		if strings.TrimSpace(c.Header) == "" {
			add("header", "verify scheme token needs header (the request header holding the token)")
		}
	case "hmac":
		if strings.TrimSpace(c.Header) == "" {
			add("header", "verify scheme hmac needs header (the request header holding the signature)")
		}
		if _, err := c.hashFunc(); err != nil {
			add("algorithm", "%s", err.Error())
		}
		if _, err := c.encoding(); err != nil {
			add("encoding", "%s", err.Error())
		}
	}
	return ps
}

// Validate reports the first reason the configuration cannot verify anything.
func (c Config) Validate() error {
	if ps := c.Problems(); len(ps) > 0 {
		return errors.New(ps[0].Message)
	}
	return nil
}

func (c Config) tolerance() time.Duration {
	if c.Tolerance == 0 {
		return DefaultTolerance
	}
	return c.Tolerance
}

func (c Config) hashFunc() (func() hash.Hash, error) {
	switch strings.ToLower(c.Algorithm) {
	case "", "sha256":
		return sha256.New, nil
	case "sha1":
		return sha1.New, nil
	case "sha512":
		return sha512.New, nil
	}
	return nil, fmt.Errorf("verify algorithm must be sha1, sha256 or sha512, got %q", c.Algorithm)
}

func (c Config) encoding() (string, error) {
	switch e := strings.ToLower(c.Encoding); e {
	case "", "hex":
		return "hex", nil
	case "base64":
		return e, nil
	}
	return "", fmt.Errorf("verify encoding must be hex or base64, got %q", c.Encoding)
}

// Request is what Check needs of a received request.
type Request struct {
	Method string
	URL    string // the full public URL the app called (hubspot, trello and twilio sign it)
	Header http.Header
	Body   []byte
}

// Reason classifies a Failure.
type Reason string

// Failure reasons.
const (
	ReasonMissingHeader  Reason = "missing_header"
	ReasonBadFormat      Reason = "bad_format"
	ReasonStaleTimestamp Reason = "stale_timestamp"
	ReasonMismatch       Reason = "mismatch"
	ReasonNoSecret       Reason = "no_secret"
	// ReasonBadConfig is returned by Check for a Config that fails Validate
	// (a loaded connector never has one: the loader reports Problems).
	ReasonBadConfig Reason = "bad_config"
)

// Failure is why a request failed verification. Its message says which check
// failed and never contains the secret or the expected signature.
type Failure struct {
	Reason  Reason
	Message string
}

func (f *Failure) Error() string { return f.Message }

func fail(r Reason, format string, args ...any) *Failure {
	return &Failure{Reason: r, Message: fmt.Sprintf(format, args...)}
}

func missing(name string) *Failure {
	return fail(ReasonMissingHeader, "missing header %s", name)
}

func mismatch() error { return fail(ReasonMismatch, "signature mismatch") }

// Check verifies r with secret at time now: nil on success, else a *Failure.
func Check(c Config, secret string, r Request, now time.Time) error {
	if err := c.Validate(); err != nil {
		return fail(ReasonBadConfig, "%s", err.Error())
	}
	if secret == "" {
		return fail(ReasonNoSecret, "no secret to verify the signature with")
	}
	h := r.Header
	if h == nil {
		h = http.Header{}
	}
	switch c.Scheme {
	case "github":
		return checkGitHub(secret, h, r.Body)
	case "stripe":
		return checkStripe(c, secret, h, r.Body, now)
	case "slack":
		return checkSlack(c, secret, h, r.Body, now)
	case "shopify":
		return checkShopify(secret, h, r.Body)
	case "standard-webhooks":
		return checkStandard(c, secret, h, r.Body, now)
	case "hubspot":
		return checkHubSpot(c, secret, h, r, now)
	case "token":
		return checkToken(c, secret, h)
	case "zoom":
		return checkZoom(c, secret, h, r.Body, now)
	case "trello":
		return checkTrello(secret, h, r)
	case "twilio":
		return checkTwilio(secret, h, r)
	default: // hmac
		return checkHMAC(c, secret, h, r.Body)
	}
}

// mac is the HMAC of the concatenated parts with key.
func mac(newHash func() hash.Hash, key []byte, parts ...[]byte) []byte {
	m := hmac.New(newHash, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// anyEqual reports, in constant time per candidate, whether one of the
// candidates equals one of the expected MACs.
func anyEqual(expected [][]byte, candidates [][]byte) bool {
	ok := false
	for _, e := range expected {
		for _, c := range candidates {
			if hmac.Equal(e, c) {
				ok = true
			}
		}
	}
	return ok
}

// lookup returns the values of header name, case-insensitively: the canonical
// key first (http.Header.Values), else any key equal to name ignoring case (a
// header map built by hand or replayed from storage may not be canonical).
func lookup(h http.Header, name string) []string {
	if v := h.Values(name); len(v) > 0 {
		return v
	}
	var out []string
	for k, v := range h {
		if strings.EqualFold(k, name) {
			out = append(out, v...)
		}
	}
	return out
}

// get is the first value of header name, trimmed.
func get(h http.Header, name string) string {
	if v := lookup(h, name); len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

// headerValues returns the non-empty values of header name (case-insensitive).
func headerValues(h http.Header, name string) []string {
	var out []string
	for _, v := range lookup(h, name) {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// decodeSigs decodes each value (after an optional, case-insensitive prefix)
// with enc. Undecodable values are skipped; it fails bad_format when none
// decodes or too many are offered.
func decodeSigs(header string, values []string, prefix, enc string) ([][]byte, *Failure) {
	if len(values) > maxCandidates {
		return nil, fail(ReasonBadFormat, "malformed header %s: more than %d signatures", header, maxCandidates)
	}
	var out [][]byte
	for _, v := range values {
		if prefix != "" {
			if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
				continue
			}
			v = v[len(prefix):]
		}
		if b, ok := decode(enc, strings.TrimSpace(v)); ok {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		want := enc
		if prefix != "" {
			want = fmt.Sprintf("%q followed by %s", prefix, enc)
		}
		return nil, fail(ReasonBadFormat, "malformed header %s: expected %s", header, want)
	}
	return out, nil
}

func decode(enc, s string) ([]byte, bool) {
	if s == "" {
		return nil, false
	}
	var b []byte
	var err error
	if enc == "hex" {
		b, err = hex.DecodeString(s)
	} else {
		b, err = base64.StdEncoding.DecodeString(s)
	}
	return b, err == nil && len(b) > 0
}

func checkGitHub(secret string, h http.Header, body []byte) error {
	vals := headerValues(h, HeaderGitHub)
	if len(vals) == 0 {
		return missing(HeaderGitHub)
	}
	sigs, f := decodeSigs(HeaderGitHub, vals, "sha256=", "hex")
	if f != nil {
		return f
	}
	if !anyEqual([][]byte{mac(sha256.New, []byte(secret), body)}, sigs) {
		return mismatch()
	}
	return nil
}

func checkShopify(secret string, h http.Header, body []byte) error {
	vals := headerValues(h, HeaderShopify)
	if len(vals) == 0 {
		return missing(HeaderShopify)
	}
	sigs, f := decodeSigs(HeaderShopify, vals, "", "base64")
	if f != nil {
		return f
	}
	if !anyEqual([][]byte{mac(sha256.New, []byte(secret), body)}, sigs) {
		return mismatch()
	}
	return nil
}

func checkHMAC(c Config, secret string, h http.Header, body []byte) error {
	name := http.CanonicalHeaderKey(strings.TrimSpace(c.Header))
	vals := headerValues(h, name)
	if len(vals) == 0 {
		return missing(name)
	}
	newHash, _ := c.hashFunc()
	enc, _ := c.encoding()
	sigs, f := decodeSigs(name, vals, c.Prefix, enc)
	if f != nil {
		return f
	}
	if !anyEqual([][]byte{mac(newHash, []byte(secret), body)}, sigs) {
		return mismatch()
	}
	return nil
}

// parseTimestamp parses a decimal epoch timestamp; what names it in the failure.
func parseTimestamp(what, v string) (int64, *Failure) {
	ts, err := strconv.ParseInt(v, 10, 64)
	if err != nil || v[0] == '+' || v[0] == '-' {
		return 0, fail(ReasonBadFormat, "malformed %s: expected a decimal timestamp", what)
	}
	return ts, nil
}

// checkAge fails stale_timestamp when ts (in units of unit since the epoch) is
// further than tol from now, in either direction.
func checkAge(ts int64, unit time.Duration, now time.Time, tol time.Duration) error {
	var cur int64
	if unit == time.Millisecond {
		cur = now.UnixMilli()
	} else {
		cur = now.Unix()
	}
	future := ts > cur
	var d int64 // |cur-ts|, saturating
	if future {
		d = ts - cur
	} else {
		d = cur - ts
	}
	if d < 0 {
		d = math.MaxInt64
	}
	if d <= int64(tol/unit) {
		return nil
	}
	secs := d / int64(time.Second/unit)
	if future {
		return fail(ReasonStaleTimestamp, "stale timestamp: %ds in the future, tolerance %s", secs, tol)
	}
	return fail(ReasonStaleTimestamp, "stale timestamp: %ds old, tolerance %s", secs, tol)
}

func checkStripe(c Config, secret string, h http.Header, body []byte, now time.Time) error {
	v := get(h, HeaderStripe)
	if v == "" {
		return missing(HeaderStripe)
	}
	t, sigs, f := parseStripe(v)
	if f != nil {
		return f
	}
	ts, f := parseTimestamp("t in header "+HeaderStripe, t)
	if f != nil {
		return f
	}
	if !anyEqual([][]byte{mac(sha256.New, []byte(secret), []byte(t), []byte("."), body)}, sigs) {
		return mismatch()
	}
	return checkAge(ts, time.Second, now, c.tolerance())
}

// parseStripe splits "t=…,v1=…[,v1=…][,v0=…]" into the timestamp and the
// decoded v1 signatures. Other keys (v0, future schemes) are ignored.
func parseStripe(v string) (string, [][]byte, *Failure) {
	bad := func(why string) (string, [][]byte, *Failure) {
		return "", nil, fail(ReasonBadFormat, "malformed header %s: %s", HeaderStripe, why)
	}
	var t string
	var hasT bool
	var raw []string
	for _, item := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			if hasT {
				return bad("more than one t")
			}
			t, hasT = val, true
		case "v1":
			raw = append(raw, val)
		}
	}
	if !hasT {
		return bad("no t (timestamp)")
	}
	if len(raw) == 0 {
		return bad("no v1 signature")
	}
	if len(raw) > maxCandidates {
		return bad(fmt.Sprintf("more than %d signatures", maxCandidates))
	}
	var sigs [][]byte
	for _, s := range raw {
		if b, ok := decode("hex", s); ok {
			sigs = append(sigs, b)
		}
	}
	if len(sigs) == 0 {
		return bad("v1 is not hex")
	}
	return t, sigs, nil
}

func checkSlack(c Config, secret string, h http.Header, body []byte, now time.Time) error {
	t := get(h, HeaderSlackTime)
	if t == "" {
		return missing(HeaderSlackTime)
	}
	vals := headerValues(h, HeaderSlack)
	if len(vals) == 0 {
		return missing(HeaderSlack)
	}
	ts, f := parseTimestamp("header "+HeaderSlackTime, t)
	if f != nil {
		return f
	}
	sigs, f := decodeSigs(HeaderSlack, vals, "v0=", "hex")
	if f != nil {
		return f
	}
	if !anyEqual([][]byte{mac(sha256.New, []byte(secret), []byte("v0:"+t+":"), body)}, sigs) {
		return mismatch()
	}
	return checkAge(ts, time.Second, now, c.tolerance())
}

// standardKey is the HMAC key of a Standard Webhooks secret: the base64
// decoded part after "whsec_"; without the prefix, the base64 decoded secret,
// or its raw bytes when it is not base64.
func standardKey(secret string) ([]byte, error) {
	if rest, ok := strings.CutPrefix(secret, standardSecretStart); ok {
		k, err := base64.StdEncoding.DecodeString(rest)
		if err != nil || len(k) == 0 {
			return nil, errors.New("the secret after whsec_ is not base64")
		}
		return k, nil
	}
	if k, err := base64.StdEncoding.DecodeString(secret); err == nil && len(k) > 0 {
		return k, nil
	}
	return []byte(secret), nil
}

// standardHeader reads a Standard Webhooks header, falling back to the Svix
// name (svix-id, …) that Svix-based senders use.
func standardHeader(h http.Header, name string) string {
	if v := get(h, name); v != "" {
		return v
	}
	return get(h, "Svix-"+strings.TrimPrefix(name, "Webhook-"))
}

func checkStandard(c Config, secret string, h http.Header, body []byte, now time.Time) error {
	key, err := standardKey(secret)
	if err != nil {
		return fail(ReasonNoSecret, "invalid secret: %s", err.Error())
	}
	id := standardHeader(h, HeaderWebhookID)
	if id == "" {
		return missing("webhook-id")
	}
	t := standardHeader(h, HeaderWebhookTime)
	if t == "" {
		return missing("webhook-timestamp")
	}
	v := standardHeader(h, HeaderWebhookSig)
	if v == "" {
		return missing("webhook-signature")
	}
	ts, f := parseTimestamp("header webhook-timestamp", t)
	if f != nil {
		return f
	}
	fields := strings.Fields(v)
	if len(fields) > maxCandidates {
		return fail(ReasonBadFormat, "malformed header webhook-signature: more than %d signatures", maxCandidates)
	}
	var sigs [][]byte
	for _, fld := range fields {
		ver, s, ok := strings.Cut(fld, ",")
		if !ok || ver != "v1" {
			continue // other versions (e.g. v1a) are not HMAC
		}
		if b, ok := decode("base64", s); ok {
			sigs = append(sigs, b)
		}
	}
	if len(sigs) == 0 {
		return fail(ReasonBadFormat, "malformed header webhook-signature: expected space-separated v1,<base64>")
	}
	if !anyEqual([][]byte{mac(sha256.New, key, []byte(id+"."+t+"."), body)}, sigs) {
		return mismatch()
	}
	return checkAge(ts, time.Second, now, c.tolerance())
}

// hubspotDecoder decodes the characters HubSpot lists for the v3 request URI.
var hubspotDecoder = strings.NewReplacer(
	"%3A", ":", "%2F", "/", "%3F", "?", "%40", "@", "%21", "!", "%24", "$", "%27", "'",
	"%28", "(", "%29", ")", "%2A", "*", "%2C", ",", "%3B", ";",
	"%3a", ":", "%2f", "/", "%3f", "?", "%2a", "*", "%2c", ",", "%3b", ";",
)

func checkHubSpot(c Config, secret string, h http.Header, r Request, now time.Time) error {
	vals := headerValues(h, HeaderHubSpot)
	if len(vals) == 0 {
		return missing("X-HubSpot-Signature-v3")
	}
	t := get(h, HeaderHubSpotTime)
	if t == "" {
		return missing("X-HubSpot-Request-Timestamp")
	}
	ts, f := parseTimestamp("header X-HubSpot-Request-Timestamp", t)
	if f != nil {
		return f
	}
	sigs, f := decodeSigs("X-HubSpot-Signature-v3", vals, "", "base64")
	if f != nil {
		return f
	}
	key := []byte(secret)
	expected := [][]byte{mac(sha256.New, key, []byte(r.Method+r.URL), r.Body, []byte(t))}
	if d := hubspotDecoder.Replace(r.URL); d != r.URL {
		expected = append(expected, mac(sha256.New, key, []byte(r.Method+d), r.Body, []byte(t)))
	}
	if !anyEqual(expected, sigs) {
		return mismatch()
	}
	return checkAge(ts, time.Millisecond, now, c.tolerance())
}

// SignStandardWebhooks returns the Standard Webhooks signature ("v1,<base64>")
// of a message with the given id, timestamp and body.
func SignStandardWebhooks(secret, id string, ts time.Time, body []byte) (string, error) {
	if secret == "" {
		return "", errors.New("no secret")
	}
	key, err := standardKey(secret)
	if err != nil {
		return "", err
	}
	t := strconv.FormatInt(ts.Unix(), 10)
	return "v1," + base64.StdEncoding.EncodeToString(mac(sha256.New, key, []byte(id+"."+t+"."), body)), nil
}
