package verify

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The signatures below are computed independently of the package, with
// crypto/hmac directly, as each provider documents them.

func hm(h func() hash.Hash, key, msg string) []byte {
	m := hmac.New(h, []byte(key))
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func hexSHA256(key, msg string) string { return hex.EncodeToString(hm(sha256.New, key, msg)) }
func b64SHA256(key, msg string) string {
	return base64.StdEncoding.EncodeToString(hm(sha256.New, key, msg))
}

const (
	testSecret   = "s3cr3t-signing-key"
	testBody     = `{"event":"push","id":42}`
	testURL      = "https://hooks.example.com/hooks/abc?portal=7"
	whsecSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	standardID   = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	standardBody = `{"test": 2432232314}`
)

var testNow = time.Unix(1714000000, 0)

func standardKeyOf(secret string) string {
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		panic(err)
	}
	return string(k)
}

// scheme describes one built-in scheme for the shared tests.
type scheme struct {
	cfg    Config
	secret string
	// sign returns the headers the provider would send for body at ts.
	sign func(secret, method, url, body string, ts time.Time) http.Header
	// required are the headers whose absence is missing_header.
	required []string
	// malformed are header values that are bad_format.
	malformed []http.Header
	// multi combines the headers of a good and a bad signature into one
	// request carrying several signatures.
	multi       func(good, bad http.Header) http.Header
	timestamped bool
	// unit of the timestamp (hubspot: milliseconds).
	unit time.Duration
	// base are the request's headers besides the signature (twilio: a form Content-Type).
	base http.Header
	// bodyFree: the scheme does not cover the body (token).
	bodyFree bool
}

// withBase adds the base headers a scheme's requests carry to h.
func withBase(base, h http.Header) http.Header {
	out := h.Clone()
	if out == nil {
		out = http.Header{}
	}
	for k, v := range base {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	return out
}

func b64SHA1(key, msg string) string {
	return base64.StdEncoding.EncodeToString(hm(sha1.New, key, msg))
}

// twilioMessage is what Twilio signs: the URL, then each form parameter's name and
// value sorted by name (computed here with net/url and sort, not the package's code).
func twilioMessage(u, form string) string {
	vals, err := url.ParseQuery(form)
	if err != nil {
		panic(err)
	}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vs := append([]string(nil), vals[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			u += k + v
		}
	}
	return u
}

func twoValues(name string) func(good, bad http.Header) http.Header {
	return func(good, bad http.Header) http.Header {
		h := good.Clone()
		h[http.CanonicalHeaderKey(name)] = []string{bad.Get(name), good.Get(name)}
		return h
	}
}

func schemes() map[string]scheme {
	return map[string]scheme{
		"github": {
			cfg:    Config{Scheme: "github"},
			secret: testSecret,
			sign: func(secret, _, _, body string, _ time.Time) http.Header {
				return http.Header{"X-Hub-Signature-256": {"sha256=" + hexSHA256(secret, body)}}
			},
			required: []string{"X-Hub-Signature-256"},
			malformed: []http.Header{
				{"X-Hub-Signature-256": {"sha1=" + strings.Repeat("ab", 20)}},
				{"X-Hub-Signature-256": {"sha256=not-hex"}},
				{"X-Hub-Signature-256": {"sha256="}},
				{"X-Hub-Signature-256": {strings.Repeat("ab", 32)}},
			},
			multi: twoValues("X-Hub-Signature-256"),
		},
		"stripe": {
			cfg:    Config{Scheme: "stripe"},
			secret: "whsec_stripe_test_secret",
			sign: func(secret, _, _, body string, ts time.Time) http.Header {
				t := strconv.FormatInt(ts.Unix(), 10)
				return http.Header{"Stripe-Signature": {"t=" + t + ",v1=" + hexSHA256(secret, t+"."+body)}}
			},
			required: []string{"Stripe-Signature"},
			malformed: []http.Header{
				{"Stripe-Signature": {"v1=" + strings.Repeat("ab", 32)}},
				{"Stripe-Signature": {"t=1714000000"}},
				{"Stripe-Signature": {"t=1714000000,v0=" + strings.Repeat("ab", 32)}},
				{"Stripe-Signature": {"t=abc,v1=" + strings.Repeat("ab", 32)}},
				{"Stripe-Signature": {"t=1714000000,v1=zz"}},
				{"Stripe-Signature": {"t=1,t=2,v1=" + strings.Repeat("ab", 32)}},
				{"Stripe-Signature": {"garbage"}},
			},
			multi: func(good, bad http.Header) http.Header {
				g, b := good.Get("Stripe-Signature"), bad.Get("Stripe-Signature")
				t, gv, _ := strings.Cut(g, ",")
				_, bv, _ := strings.Cut(b, ",")
				return http.Header{"Stripe-Signature": {t + "," + bv + "," + gv + ",v0=" + strings.Repeat("cd", 32)}}
			},
			timestamped: true,
			unit:        time.Second,
		},
		"slack": {
			cfg:    Config{Scheme: "slack"},
			secret: "8f742231b10e8888abcd99yyyzzz85a5",
			sign: func(secret, _, _, body string, ts time.Time) http.Header {
				t := strconv.FormatInt(ts.Unix(), 10)
				return http.Header{
					"X-Slack-Request-Timestamp": {t},
					"X-Slack-Signature":         {"v0=" + hexSHA256(secret, "v0:"+t+":"+body)},
				}
			},
			required: []string{"X-Slack-Signature", "X-Slack-Request-Timestamp"},
			malformed: []http.Header{
				{"X-Slack-Signature": {"v1=" + strings.Repeat("ab", 32)}},
				{"X-Slack-Signature": {"v0=xyz"}},
				{"X-Slack-Request-Timestamp": {"yesterday"}},
				{"X-Slack-Request-Timestamp": {"-1714000000"}},
				{"X-Slack-Request-Timestamp": {"99999999999999999999999"}},
			},
			multi:       twoValues("X-Slack-Signature"),
			timestamped: true,
			unit:        time.Second,
		},
		"shopify": {
			cfg:    Config{Scheme: "shopify"},
			secret: testSecret,
			sign: func(secret, _, _, body string, _ time.Time) http.Header {
				return http.Header{"X-Shopify-Hmac-Sha256": {b64SHA256(secret, body)}}
			},
			required: []string{"X-Shopify-Hmac-Sha256"},
			malformed: []http.Header{
				{"X-Shopify-Hmac-Sha256": {"!!!not base64!!!"}},
				{"X-Shopify-Hmac-Sha256": {"abc"}},
			},
			multi: twoValues("X-Shopify-Hmac-Sha256"),
		},
		"standard-webhooks": {
			cfg:    Config{Scheme: "standard-webhooks"},
			secret: whsecSecret,
			sign: func(secret, _, _, body string, ts time.Time) http.Header {
				t := strconv.FormatInt(ts.Unix(), 10)
				return http.Header{
					"Webhook-Id":        {standardID},
					"Webhook-Timestamp": {t},
					"Webhook-Signature": {"v1," + b64SHA256(standardKeyOf(secret), standardID+"."+t+"."+body)},
				}
			},
			required: []string{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"},
			malformed: []http.Header{
				{"Webhook-Signature": {"v2," + base64.StdEncoding.EncodeToString(make([]byte, 32))}},
				{"Webhook-Signature": {"v1,###"}},
				{"Webhook-Signature": {"v1"}},
				{"Webhook-Timestamp": {"1714000000.5"}},
			},
			multi: func(good, bad http.Header) http.Header {
				h := good.Clone()
				h.Set("Webhook-Signature", bad.Get("Webhook-Signature")+" v1a,"+
					base64.StdEncoding.EncodeToString(make([]byte, 64))+" "+good.Get("Webhook-Signature"))
				return h
			},
			timestamped: true,
			unit:        time.Second,
		},
		"hubspot": {
			cfg:    Config{Scheme: "hubspot"},
			secret: "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy",
			sign: func(secret, method, url, body string, ts time.Time) http.Header {
				t := strconv.FormatInt(ts.UnixMilli(), 10)
				return http.Header{
					"X-Hubspot-Request-Timestamp": {t},
					"X-Hubspot-Signature-V3":      {b64SHA256(secret, method+url+body+t)},
				}
			},
			required: []string{"X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"},
			malformed: []http.Header{
				{"X-Hubspot-Signature-V3": {"%%%"}},
				{"X-Hubspot-Request-Timestamp": {"now"}},
			},
			multi:       twoValues("X-HubSpot-Signature-v3"),
			timestamped: true,
			unit:        time.Millisecond,
		},
		"hmac": {
			cfg:    Config{Scheme: "hmac", Header: "X-Signature", Algorithm: "sha512", Encoding: "base64", Prefix: "sha512="},
			secret: testSecret,
			sign: func(secret, _, _, body string, _ time.Time) http.Header {
				return http.Header{"X-Signature": {"sha512=" + base64.StdEncoding.EncodeToString(hm(sha512.New, secret, body))}}
			},
			required: []string{"x-signature"},
			malformed: []http.Header{
				{"X-Signature": {base64.StdEncoding.EncodeToString(make([]byte, 64))}},
				{"X-Signature": {"sha512=@@@"}},
			},
			multi: twoValues("X-Signature"),
		},
		"token": {
			cfg:    Config{Scheme: "token", Header: "X-Gitlab-Token"},
			secret: testSecret,
			sign: func(secret, _, _, _ string, _ time.Time) http.Header {
				return http.Header{"X-Gitlab-Token": {secret}}
			},
			required: []string{"X-Gitlab-Token"},
			multi:    twoValues("X-Gitlab-Token"),
			bodyFree: true,
		},
		"zoom": {
			cfg:    Config{Scheme: "zoom"},
			secret: "zoom-secret-token-Xb8Q",
			sign: func(secret, _, _, body string, ts time.Time) http.Header {
				t := strconv.FormatInt(ts.Unix(), 10)
				return http.Header{
					"X-Zm-Request-Timestamp": {t},
					"X-Zm-Signature":         {"v0=" + hexSHA256(secret, "v0:"+t+":"+body)},
				}
			},
			required: []string{"x-zm-signature", "x-zm-request-timestamp"},
			malformed: []http.Header{
				{"X-Zm-Signature": {"v1=" + strings.Repeat("ab", 32)}},
				{"X-Zm-Signature": {"v0=not-hex"}},
				{"X-Zm-Request-Timestamp": {"now"}},
			},
			multi:       twoValues("X-Zm-Signature"),
			timestamped: true,
			unit:        time.Second,
		},
		"trello": {
			cfg:    Config{Scheme: "trello"},
			secret: "trello-app-secret-7f3c",
			sign: func(secret, _, url, body string, _ time.Time) http.Header {
				return http.Header{"X-Trello-Webhook": {b64SHA1(secret, body+url)}}
			},
			required:  []string{"X-Trello-Webhook"},
			malformed: []http.Header{{"X-Trello-Webhook": {"%%%"}}},
			multi:     twoValues("X-Trello-Webhook"),
		},
		"twilio": {
			cfg:    Config{Scheme: "twilio"},
			secret: "12345",
			sign: func(secret, _, url, body string, _ time.Time) http.Header {
				return http.Header{"X-Twilio-Signature": {b64SHA1(secret, twilioMessage(url, body))}}
			},
			required:  []string{"X-Twilio-Signature"},
			malformed: []http.Header{{"X-Twilio-Signature": {"%%%"}}},
			multi:     twoValues("X-Twilio-Signature"),
			base:      http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		},
	}
}

// otherSecret is a valid secret for sc other than sc.secret.
func otherSecret(sc scheme, salt string) string {
	if sc.cfg.Scheme == "standard-webhooks" {
		return "whsec_" + base64.StdEncoding.EncodeToString([]byte("other key "+salt))
	}
	return sc.secret + salt
}

func request(method, url, body string, h http.Header) Request {
	return Request{Method: method, URL: url, Header: h, Body: []byte(body)}
}

func reasonOf(t *testing.T, err error) Reason {
	t.Helper()
	require.Error(t, err)
	var f *Failure
	require.True(t, errors.As(err, &f), "error %T is not a *Failure", err)
	assert.Equal(t, f.Message, err.Error())
	return f.Reason
}

func TestSchemesCoverEverySchemeOnce(t *testing.T) {
	s := schemes()
	require.Len(t, s, len(Schemes))
	for _, name := range Schemes {
		require.Contains(t, s, name)
	}
}

func TestCheckSchemes(t *testing.T) {
	for name, sc := range schemes() {
		t.Run(name, func(t *testing.T) {
			sign := func(secret, body string, ts time.Time) http.Header {
				return sc.sign(secret, http.MethodPost, testURL, body, ts)
			}
			check := func(h http.Header, body string) error {
				return Check(sc.cfg, sc.secret, request(http.MethodPost, testURL, body, withBase(sc.base, h)), testNow)
			}
			good := sign(sc.secret, testBody, testNow)

			t.Run("valid", func(t *testing.T) {
				require.NoError(t, check(good, testBody))
			})
			t.Run("valid with non-canonical header names", func(t *testing.T) {
				lower, upper := http.Header{}, http.Header{}
				for k, v := range good {
					lower[strings.ToLower(k)] = v // e.g. replayed from storage
					upper[strings.ToUpper(k)] = v
				}
				require.NoError(t, check(lower, testBody))
				require.NoError(t, check(upper, testBody))
			})
			t.Run("wrong secret", func(t *testing.T) {
				bad := sign(otherSecret(sc, "x"), testBody, testNow)
				assert.Equal(t, ReasonMismatch, reasonOf(t, check(bad, testBody)))
				assert.Equal(t, ReasonMismatch, reasonOf(t, Check(sc.cfg, otherSecret(sc, "x"), request(http.MethodPost, testURL, testBody, withBase(sc.base, good)), testNow)))
			})
			t.Run("tampered body", func(t *testing.T) {
				if sc.bodyFree {
					require.NoError(t, check(good, "tampered"), "the scheme does not cover the body")
					return
				}
				err := check(good, strings.Replace(testBody, "42", "43", 1))
				assert.Equal(t, ReasonMismatch, reasonOf(t, err))
				assert.Equal(t, "signature mismatch", err.Error())
				assert.Equal(t, ReasonMismatch, reasonOf(t, check(good, "")))
			})
			t.Run("missing header", func(t *testing.T) {
				for _, hdr := range sc.required {
					h := good.Clone()
					h.Del(hdr)
					err := check(h, testBody)
					assert.Equal(t, ReasonMissingHeader, reasonOf(t, err), hdr)
					assert.Contains(t, strings.ToLower(err.Error()), "missing header "+strings.ToLower(hdr))
					h.Set(hdr, "   ")
					assert.Equal(t, ReasonMissingHeader, reasonOf(t, check(h, testBody)), hdr)
				}
				assert.Equal(t, ReasonMissingHeader, reasonOf(t, check(nil, testBody)))
			})
			t.Run("malformed header", func(t *testing.T) {
				for _, m := range sc.malformed {
					h := good.Clone()
					for k, v := range m {
						h[k] = v
					}
					err := check(h, testBody)
					assert.Equal(t, ReasonBadFormat, reasonOf(t, err), "%v", m)
					assert.Contains(t, err.Error(), "malformed")
				}
			})
			t.Run("several signatures, one matches", func(t *testing.T) {
				bad := sign(otherSecret(sc, "-old"), testBody, testNow)
				require.NoError(t, check(sc.multi(good, bad), testBody))
				require.NoError(t, check(sc.multi(bad, good), testBody))
				assert.Equal(t, ReasonMismatch, reasonOf(t, check(sc.multi(bad, bad), testBody)))
			})
			t.Run("timestamps", func(t *testing.T) {
				if !sc.timestamped {
					// The signature covers no time: an old delivery still verifies.
					require.NoError(t, Check(sc.cfg, sc.secret, request(http.MethodPost, testURL, testBody, withBase(sc.base, good)), testNow.Add(24*time.Hour)))
					return
				}
				for _, d := range []time.Duration{-DefaultTolerance, DefaultTolerance, -time.Minute, time.Minute} {
					require.NoError(t, check(sign(sc.secret, testBody, testNow.Add(d)), testBody), d)
				}
				stale := check(sign(sc.secret, testBody, testNow.Add(-400*time.Second)), testBody)
				assert.Equal(t, ReasonStaleTimestamp, reasonOf(t, stale))
				assert.Equal(t, "stale timestamp: 400s old, tolerance 5m0s", stale.Error())
				future := check(sign(sc.secret, testBody, testNow.Add(400*time.Second)), testBody)
				assert.Equal(t, ReasonStaleTimestamp, reasonOf(t, future))
				assert.Equal(t, "stale timestamp: 400s in the future, tolerance 5m0s", future.Error())
				just := check(sign(sc.secret, testBody, testNow.Add(-DefaultTolerance-sc.unit)), testBody)
				assert.Equal(t, ReasonStaleTimestamp, reasonOf(t, just))

				// A custom tolerance.
				cfg := sc.cfg
				cfg.Tolerance = time.Hour
				old := sign(sc.secret, testBody, testNow.Add(-50*time.Minute))
				require.NoError(t, Check(cfg, sc.secret, request(http.MethodPost, testURL, testBody, old), testNow))
				cfg.Tolerance = 10 * time.Second
				err := Check(cfg, sc.secret, request(http.MethodPost, testURL, testBody, sign(sc.secret, testBody, testNow.Add(-11*time.Second))), testNow)
				assert.Equal(t, "stale timestamp: 11s old, tolerance 10s", err.Error())

				// A forged request with an old timestamp is a mismatch, not stale.
				forged := sign(otherSecret(sc, "x"), testBody, testNow.Add(-time.Hour))
				assert.Equal(t, ReasonMismatch, reasonOf(t, check(forged, testBody)))

				// Extreme timestamps are stale, never accepted.
				for _, ts := range []time.Time{time.Unix(0, 0), time.Unix(1<<40, 0)} {
					assert.Equal(t, ReasonStaleTimestamp, reasonOf(t, check(sign(sc.secret, testBody, ts), testBody)), ts)
				}
			})
			t.Run("no secret", func(t *testing.T) {
				err := Check(sc.cfg, "", request(http.MethodPost, testURL, testBody, withBase(sc.base, good)), testNow)
				assert.Equal(t, ReasonNoSecret, reasonOf(t, err))
			})
			t.Run("sign round-trips", func(t *testing.T) {
				for _, body := range []string{testBody, "", "a=b&c=d", "\x00\xff binary"} {
					r := request(http.MethodPost, testURL, body, sc.base.Clone())
					h, err := Sign(sc.cfg, sc.secret, r, testNow)
					require.NoError(t, err)
					r.Header = withBase(sc.base, h)
					require.NoError(t, Check(sc.cfg, sc.secret, r, testNow))
					// Sign agrees with the provider's documented algorithm.
					want := sign(sc.secret, body, testNow)
					if name == "standard-webhooks" {
						want = sc.sign(sc.secret, "", "", body, testNow)
						want.Set("Webhook-Signature", "v1,"+b64SHA256(standardKeyOf(sc.secret), h.Get("Webhook-Id")+"."+strconv.FormatInt(testNow.Unix(), 10)+"."+body))
						want.Set("Webhook-Id", h.Get("Webhook-Id"))
					}
					if name == "hubspot" {
						want = sc.sign(sc.secret, http.MethodPost, testURL, body, testNow)
					}
					assert.Equal(t, want, h)
					if sc.bodyFree {
						continue
					}
					r.Body = append(r.Body, '!')
					assert.Equal(t, ReasonMismatch, reasonOf(t, Check(sc.cfg, sc.secret, r, testNow)))
				}
			})
		})
	}
}

// sigPattern finds base64/hex runs long enough to be a signature.
var sigPattern = regexp.MustCompile(`[A-Za-z0-9+/]{16,}={0,2}`)

func TestFailureMessagesNeverLeakTheExpectedSignature(t *testing.T) {
	for name, sc := range schemes() {
		t.Run(name, func(t *testing.T) {
			good := sc.sign(sc.secret, http.MethodPost, testURL, testBody, testNow)
			var secrets []string
			for _, v := range good {
				secrets = append(secrets, sigPattern.FindAllString(strings.Join(v, " "), -1)...)
			}
			// The expected signatures of the tampered requests below too.
			tampered := sc.sign(sc.secret, http.MethodPost, testURL, "tampered", testNow)
			for _, v := range tampered {
				secrets = append(secrets, sigPattern.FindAllString(strings.Join(v, " "), -1)...)
			}
			secrets = append(secrets, sc.secret)
			require.NotEmpty(t, secrets)

			var reqs []Request
			reqs = append(reqs, request(http.MethodPost, testURL, "tampered", withBase(sc.base, good)))
			reqs = append(reqs, request(http.MethodPost, testURL, testBody, withBase(sc.base, sc.sign(otherSecret(sc, "wrong"), http.MethodPost, testURL, testBody, testNow))))
			reqs = append(reqs, request(http.MethodPost, testURL, testBody, withBase(sc.base, sc.sign(sc.secret, http.MethodPost, testURL, testBody, testNow.Add(-time.Hour)))))
			for _, m := range sc.malformed {
				h := good.Clone()
				for k, v := range m {
					h[k] = v
				}
				reqs = append(reqs, request(http.MethodPost, testURL, testBody, withBase(sc.base, h)))
			}
			for _, hdr := range sc.required {
				h := good.Clone()
				h.Del(hdr)
				reqs = append(reqs, request(http.MethodPost, testURL, "tampered", withBase(sc.base, h)))
			}
			failures := 0
			for _, r := range reqs {
				err := Check(sc.cfg, sc.secret, r, testNow)
				if err == nil {
					continue
				}
				failures++
				for _, s := range secrets {
					assert.NotContains(t, err.Error(), s)
					assert.NotContains(t, strings.ToLower(err.Error()), strings.ToLower(s))
				}
			}
			want := len(reqs) - 1
			if sc.bodyFree {
				want-- // the tampered body with the right token passes
			}
			assert.GreaterOrEqual(t, failures, want)
		})
	}
}

func TestStandardWebhooksPublishedVector(t *testing.T) {
	const want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	ts := time.Unix(1614265330, 0)
	got, err := SignStandardWebhooks(whsecSecret, standardID, ts, []byte(standardBody))
	require.NoError(t, err)
	assert.Equal(t, want, got)

	// Independently, with crypto/hmac.
	assert.Equal(t, want, "v1,"+b64SHA256(standardKeyOf(whsecSecret), standardID+".1614265330."+standardBody))

	h := http.Header{}
	h.Set("webhook-id", standardID)
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", want)
	cfg := Config{Scheme: "standard-webhooks"}
	r := request(http.MethodPost, testURL, standardBody, h)
	require.NoError(t, Check(cfg, whsecSecret, r, ts.Add(time.Minute)))
	// The secret without its whsec_ prefix is the same key.
	require.NoError(t, Check(cfg, strings.TrimPrefix(whsecSecret, "whsec_"), r, ts))
	assert.Equal(t, ReasonStaleTimestamp, reasonOf(t, Check(cfg, whsecSecret, r, ts.Add(time.Hour))))
	assert.Equal(t, ReasonMismatch, reasonOf(t, Check(cfg, whsecSecret, request(http.MethodPost, testURL, `{"test": 2432232315}`, h), ts)))
}

func TestStandardWebhooksSecrets(t *testing.T) {
	cfg := Config{Scheme: "standard-webhooks"}
	ts := testNow
	t.Run("raw secret that is not base64", func(t *testing.T) {
		const secret = "not base64 at all!"
		msg := "id1." + strconv.FormatInt(ts.Unix(), 10) + "." + testBody
		h := http.Header{"Webhook-Id": {"id1"}, "Webhook-Timestamp": {strconv.FormatInt(ts.Unix(), 10)}, "Webhook-Signature": {"v1," + b64SHA256(secret, msg)}}
		require.NoError(t, Check(cfg, secret, request("POST", testURL, testBody, h), ts))
		sig, err := SignStandardWebhooks(secret, "id1", ts, []byte(testBody))
		require.NoError(t, err)
		assert.Equal(t, h.Get("Webhook-Signature"), sig)
	})
	t.Run("whsec_ with a non-base64 rest", func(t *testing.T) {
		h := http.Header{"Webhook-Id": {"id1"}, "Webhook-Timestamp": {"1"}, "Webhook-Signature": {"v1,AAAA"}}
		err := Check(cfg, "whsec_***", request("POST", testURL, testBody, h), ts)
		assert.Equal(t, ReasonNoSecret, reasonOf(t, err))
		assert.NotContains(t, err.Error(), "***")
		_, err = SignStandardWebhooks("whsec_***", "id", ts, nil)
		require.Error(t, err)
		_, err = SignStandardWebhooks("", "id", ts, nil)
		require.Error(t, err)
	})
	t.Run("svix header names", func(t *testing.T) {
		tsS := strconv.FormatInt(ts.Unix(), 10)
		h := http.Header{"Svix-Id": {"msg_1"}, "Svix-Timestamp": {tsS}, "Svix-Signature": {"v1," + b64SHA256(standardKeyOf(whsecSecret), "msg_1."+tsS+"."+testBody)}}
		require.NoError(t, Check(cfg, whsecSecret, request("POST", testURL, testBody, h), ts))
	})
	t.Run("sign keeps a given webhook-id", func(t *testing.T) {
		h, err := Sign(cfg, whsecSecret, request("POST", testURL, testBody, http.Header{"Webhook-Id": {"msg_given"}}), ts)
		require.NoError(t, err)
		assert.Equal(t, "msg_given", h.Get("Webhook-Id"))
		h2, err := Sign(cfg, whsecSecret, request("POST", testURL, testBody, nil), ts)
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(h2.Get("Webhook-Id"), "msg_"))
		assert.NotEqual(t, h2.Get("Webhook-Id"), "msg_")
	})
}

func TestStripeDocumentedHeader(t *testing.T) {
	// Whitespace around items, unknown keys and a v0 are tolerated.
	const secret = "whsec_test"
	ts := strconv.FormatInt(testNow.Unix(), 10)
	v1 := hexSHA256(secret, ts+"."+testBody)
	h := http.Header{"Stripe-Signature": {"t=" + ts + ", v1=" + v1 + ", v0=" + strings.Repeat("00", 32) + ", x=y"}}
	require.NoError(t, Check(Config{Scheme: "stripe"}, secret, request("POST", testURL, testBody, h), testNow))
	// Upper-case hex is the same signature.
	h = http.Header{"Stripe-Signature": {"t=" + ts + ",v1=" + strings.ToUpper(v1)}}
	require.NoError(t, Check(Config{Scheme: "stripe"}, secret, request("POST", testURL, testBody, h), testNow))
	// Only a v0 (test-mode legacy) signature that matches is not accepted.
	h = http.Header{"Stripe-Signature": {"t=" + ts + ",v0=" + v1}}
	assert.Equal(t, ReasonBadFormat, reasonOf(t, Check(Config{Scheme: "stripe"}, secret, request("POST", testURL, testBody, h), testNow)))
	// Too many signatures.
	many := "t=" + ts + strings.Repeat(",v1="+strings.Repeat("00", 32), maxCandidates+1)
	h = http.Header{"Stripe-Signature": {many}}
	assert.Equal(t, ReasonBadFormat, reasonOf(t, Check(Config{Scheme: "stripe"}, secret, request("POST", testURL, testBody, h), testNow)))
}

func TestSlackDocumentedExample(t *testing.T) {
	// Slack's documented example request (api.slack.com/authentication/verifying-requests-from-slack).
	const (
		secret = "8f742231b10e8888abcd99yyyzzz85a5"
		body   = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
		ts     = "1531420618"
		want   = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
	)
	assert.Equal(t, want, "v0="+hexSHA256(secret, "v0:"+ts+":"+body))
	h := http.Header{"X-Slack-Request-Timestamp": {ts}, "X-Slack-Signature": {want}}
	require.NoError(t, Check(Config{Scheme: "slack"}, secret, request("POST", testURL, body, h), time.Unix(1531420618, 0)))
}

func TestHubSpotURI(t *testing.T) {
	const secret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
	cfg := Config{Scheme: "hubspot"}
	ms := strconv.FormatInt(testNow.UnixMilli(), 10)
	t.Run("method and full URL are signed", func(t *testing.T) {
		h := http.Header{"X-HubSpot-Request-Timestamp": {ms}, "X-HubSpot-Signature-v3": {b64SHA256(secret, "POST"+testURL+testBody+ms)}}
		require.NoError(t, Check(cfg, secret, request("POST", testURL, testBody, h), testNow))
		assert.Equal(t, ReasonMismatch, reasonOf(t, Check(cfg, secret, request("PUT", testURL, testBody, h), testNow)))
		assert.Equal(t, ReasonMismatch, reasonOf(t, Check(cfg, secret, request("POST", testURL+"&x=1", testBody, h), testNow)))
		assert.Equal(t, ReasonMismatch, reasonOf(t, Check(cfg, secret, request("POST", "http://hooks.example.com/hooks/abc?portal=7", testBody, h), testNow)))
	})
	t.Run("HubSpot decodes the listed URL-encoded characters", func(t *testing.T) {
		called := "https://hooks.example.com/hooks/abc?redirect=https%3A%2F%2Fx.io%2Fa%3Fb%40c%2Cd"
		decoded := "https://hooks.example.com/hooks/abc?redirect=https://x.io/a?b@c,d"
		h := http.Header{"X-HubSpot-Request-Timestamp": {ms}, "X-HubSpot-Signature-v3": {b64SHA256(secret, "POST"+decoded+testBody+ms)}}
		require.NoError(t, Check(cfg, secret, request("POST", called, testBody, h), testNow))
		h.Set("X-HubSpot-Signature-v3", b64SHA256(secret, "POST"+called+testBody+ms))
		require.NoError(t, Check(cfg, secret, request("POST", called, testBody, h), testNow))
	})
	t.Run("timestamp is milliseconds", func(t *testing.T) {
		secs := strconv.FormatInt(testNow.Unix(), 10)
		h := http.Header{"X-HubSpot-Request-Timestamp": {secs}, "X-HubSpot-Signature-v3": {b64SHA256(secret, "POST"+testURL+testBody+secs)}}
		assert.Equal(t, ReasonStaleTimestamp, reasonOf(t, Check(cfg, secret, request("POST", testURL, testBody, h), testNow)))
	})
}

func TestHMACScheme(t *testing.T) {
	body := testBody
	cases := []struct {
		name string
		cfg  Config
		sig  string
	}{
		{"defaults: sha256 hex", Config{Scheme: "hmac", Header: "X-Sig"}, hexSHA256(testSecret, body)},
		{"sha1 hex with prefix", Config{Scheme: "hmac", Header: "X-Sig", Algorithm: "sha1", Prefix: "sha1="}, "sha1=" + hex.EncodeToString(hm(sha1.New, testSecret, body))},
		{"sha256 base64", Config{Scheme: "hmac", Header: "x-sig", Algorithm: "sha256", Encoding: "base64"}, b64SHA256(testSecret, body)},
		{"sha512 hex", Config{Scheme: "hmac", Header: "X-Sig", Algorithm: "sha512", Encoding: "hex"}, hex.EncodeToString(hm(sha512.New, testSecret, body))},
		{"upper-case config values", Config{Scheme: "hmac", Header: "X-Sig", Algorithm: "SHA256", Encoding: "HEX"}, hexSHA256(testSecret, body)},
		{"prefix matched case-insensitively", Config{Scheme: "hmac", Header: "X-Sig", Prefix: "sha256="}, "SHA256=" + hexSHA256(testSecret, body)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			h.Set("X-Sig", c.sig)
			require.NoError(t, Check(c.cfg, testSecret, request("POST", testURL, body, h), testNow))
			assert.Equal(t, ReasonMismatch, reasonOf(t, Check(c.cfg, testSecret+"!", request("POST", testURL, body, h), testNow)))
			err := Check(c.cfg, testSecret, request("POST", testURL, body, nil), testNow)
			assert.Equal(t, "missing header X-Sig", err.Error())
			out, err := Sign(c.cfg, testSecret, request("POST", testURL, body, nil), testNow)
			require.NoError(t, err)
			require.NoError(t, Check(c.cfg, testSecret, request("POST", testURL, body, out), testNow))
		})
	}
	t.Run("a sha256 signature does not pass sha512", func(t *testing.T) {
		h := http.Header{"X-Sig": {hexSHA256(testSecret, body)}}
		err := Check(Config{Scheme: "hmac", Header: "X-Sig", Algorithm: "sha512"}, testSecret, request("POST", testURL, body, h), testNow)
		assert.Equal(t, ReasonMismatch, reasonOf(t, err))
	})
	t.Run("too many values", func(t *testing.T) {
		h := http.Header{"X-Sig": make([]string, maxCandidates+1)}
		for i := range h["X-Sig"] {
			h["X-Sig"][i] = hexSHA256(testSecret, body)
		}
		err := Check(Config{Scheme: "hmac", Header: "X-Sig"}, testSecret, request("POST", testURL, body, h), testNow)
		assert.Equal(t, ReasonBadFormat, reasonOf(t, err))
	})
}

func TestValidate(t *testing.T) {
	for _, s := range Schemes {
		cfg := Config{Scheme: s}
		if s == "hmac" || s == "token" {
			cfg.Header = "X-Sig"
		}
		require.NoError(t, cfg.Validate(), s)
	}
	bad := map[string]Config{
		"scheme is required":          {},
		"unknown verify scheme":       {Scheme: "gitlab"},
		"needs header":                {Scheme: "hmac"},
		"algorithm must be":           {Scheme: "hmac", Header: "X", Algorithm: "md5"},
		"encoding must be":            {Scheme: "hmac", Header: "X", Encoding: "base32"},
		"must not be negative":        {Scheme: "stripe", Tolerance: -time.Second},
		"header applies to scheme":    {Scheme: "github", Header: "X"},
		"algorithm applies to scheme": {Scheme: "slack", Algorithm: "sha1"},
		"prefix applies to scheme":    {Scheme: "shopify", Prefix: "x"},
		"token needs header":          {Scheme: "token"},
		"encoding applies to scheme":  {Scheme: "token", Header: "X", Encoding: "hex"},
		"header applies to schemes":   {Scheme: "twilio", Header: "X-Twilio-Signature"},
	}
	for want, cfg := range bad {
		err := cfg.Validate()
		require.Error(t, err, want)
		assert.Contains(t, err.Error(), want)
		// Check and Sign refuse it too.
		assert.Equal(t, ReasonBadConfig, reasonOf(t, Check(cfg, testSecret, request("POST", testURL, testBody, nil), testNow)))
		_, err = Sign(cfg, testSecret, request("POST", testURL, testBody, nil), testNow)
		require.Error(t, err)
	}
}

func TestSignNoSecret(t *testing.T) {
	_, err := Sign(Config{Scheme: "github"}, "", Request{}, testNow)
	require.Error(t, err)
}

// FuzzCheck feeds arbitrary header values to every scheme: Check never panics,
// fails only with a *Failure of a known reason that never contains the
// secret, and a header that is a valid signature of another body never passes.
func FuzzCheck(f *testing.F) {
	ts := strconv.FormatInt(testNow.Unix(), 10)
	f.Add(uint8(0), "sha256="+hexSHA256(testSecret, testBody), ts, "id")
	f.Add(uint8(1), "t="+ts+",v1="+hexSHA256(testSecret, ts+"."+testBody)+",v0=00", ts, "")
	f.Add(uint8(1), "t=,v1=,,==,t", "", "")
	f.Add(uint8(2), "v0=", "9223372036854775807", "")
	f.Add(uint8(3), "====", "", "")
	f.Add(uint8(4), "v1,AAAA v1, ,v1 v1a,xx", "-1", "msg")
	f.Add(uint8(5), "AAAA", "18446744073709551616", "")
	f.Add(uint8(6), "sha256=zz", "", "")
	valid := map[Reason]bool{ReasonMissingHeader: true, ReasonBadFormat: true, ReasonStaleTimestamp: true, ReasonMismatch: true, ReasonNoSecret: true}
	f.Fuzz(func(t *testing.T, which uint8, sig, timestamp, id string) {
		cfg := Config{Scheme: Schemes[int(which)%len(Schemes)]}
		switch cfg.Scheme {
		case "hmac":
			cfg.Header, cfg.Prefix = "X-Sig", "sha256="
		case "token":
			cfg.Header = "X-Sig"
		}
		h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		for _, k := range []string{"X-Hub-Signature-256", "Stripe-Signature", "X-Slack-Signature", "X-Shopify-Hmac-Sha256", "Webhook-Signature", "X-Hubspot-Signature-V3", "X-Sig", "X-Zm-Signature", "X-Trello-Webhook", "X-Twilio-Signature"} {
			h[k] = []string{sig}
		}
		for _, k := range []string{"X-Slack-Request-Timestamp", "Webhook-Timestamp", "X-Hubspot-Request-Timestamp", "X-Zm-Request-Timestamp"} {
			h[k] = []string{timestamp}
		}
		h["Webhook-Id"] = []string{id}
		secret := testSecret
		if cfg.Scheme == "standard-webhooks" {
			secret = whsecSecret
		}
		err := Check(cfg, secret, request("POST", testURL, "fuzzed body that no seed signed", h), testNow)
		if err == nil && cfg.Scheme == "token" && strings.TrimSpace(sig) == secret {
			return // the token itself: token covers no body
		}
		if err == nil {
			t.Fatalf("scheme %s accepted a signature of another body: %q", cfg.Scheme, sig)
		}
		var fl *Failure
		if !errors.As(err, &fl) || !valid[fl.Reason] {
			t.Fatalf("unexpected error %T %v", err, err)
		}
		if strings.Contains(fl.Message, secret) {
			t.Fatalf("message leaks the secret: %q", fl.Message)
		}
	})
}

func TestCheckAgeSaturates(t *testing.T) {
	err := checkAge(math.MaxInt64, time.Second, time.Unix(-10, 0), time.Minute)
	assert.Equal(t, ReasonStaleTimestamp, reasonOf(t, err))
	assert.Contains(t, err.Error(), "in the future")
	err = checkAge(math.MinInt64, time.Second, time.Unix(10, 0), time.Minute)
	assert.Equal(t, ReasonStaleTimestamp, reasonOf(t, err))
	assert.Contains(t, err.Error(), "old")
}

func TestStandardWebhooksLimits(t *testing.T) {
	cfg := Config{Scheme: "standard-webhooks"}
	ts := strconv.FormatInt(testNow.Unix(), 10)
	sig := "v1," + b64SHA256(standardKeyOf(whsecSecret), "id."+ts+"."+testBody)
	h := http.Header{"Webhook-Id": {"id"}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {strings.TrimSpace(strings.Repeat(sig+" ", maxCandidates+1))}}
	assert.Equal(t, ReasonBadFormat, reasonOf(t, Check(cfg, whsecSecret, request("POST", testURL, testBody, h), testNow)))
	_, err := Sign(cfg, "whsec_***", request("POST", testURL, testBody, nil), testNow)
	require.Error(t, err)
}

func TestTwilioPublishedExample(t *testing.T) {
	// Twilio's documented example ("Validating signatures from Twilio"): auth token 12345,
	// the URL and the POST parameters below give 0/KCTR6DLpKmkAf8muzZqo1nDgQ=.
	const (
		token = "12345"
		u     = "https://mycompany.com/myapp.php?foo=1&bar=2"
		want  = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
	)
	form := url.Values{
		"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+12349013030"}, "Digits": {"1234"},
		"From": {"+12349013030"}, "To": {"+18005551212"},
	}.Encode()
	// Independently: the concatenation Twilio's page spells out.
	assert.Equal(t, want, b64SHA1(token, "https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+12349013030Digits1234From+12349013030To+18005551212"))
	form2 := "To=%2B18005551212&From=%2B12349013030&Digits=1234&Caller=%2B12349013030&CallSid=CA1234567890ABCDE"
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=utf-8"}, "X-Twilio-Signature": {want}}
	cfg := Config{Scheme: "twilio"}
	for _, body := range []string{form, form2} {
		require.NoError(t, Check(cfg, token, request("POST", u, body, h), testNow), body)
	}
	out, err := Sign(cfg, token, request("POST", u, form, h), testNow)
	require.NoError(t, err)
	assert.Equal(t, want, out.Get("X-Twilio-Signature"))

	// A changed parameter, an added one, another URL or another token do not pass.
	for _, r := range []Request{
		request("POST", u, strings.Replace(form, "Digits=1234", "Digits=1235", 1), h),
		request("POST", u, form+"&Extra=1", h),
		request("POST", "https://mycompany.com/myapp.php?foo=1&bar=3", form, h),
	} {
		assert.Equal(t, ReasonMismatch, reasonOf(t, Check(cfg, token, r, testNow)))
	}
	assert.Equal(t, ReasonMismatch, reasonOf(t, Check(cfg, "54321", request("POST", u, form, h), testNow)))
}

func TestTwilioURLsBodiesAndPorts(t *testing.T) {
	const token = "auth-token-0123456789abcdef"
	cfg := Config{Scheme: "twilio"}
	formCT := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	sig := func(u, form string) http.Header {
		h := formCT.Clone()
		h.Set("X-Twilio-Signature", b64SHA1(token, twilioMessage(u, form)))
		return h
	}
	t.Run("signed with or without the default port", func(t *testing.T) {
		const form = "MessageSid=SM1&Body=hi"
		require.NoError(t, Check(cfg, token, request("POST", "https://h.example.com/hooks/a", form, sig("https://h.example.com:443/hooks/a", form)), testNow))
		require.NoError(t, Check(cfg, token, request("POST", "https://h.example.com:443/hooks/a", form, sig("https://h.example.com/hooks/a", form)), testNow))
		require.NoError(t, Check(cfg, token, request("POST", "http://h.example.com/hooks/a", form, sig("http://h.example.com:80/hooks/a", form)), testNow))
		// Another port is another URL.
		assert.Equal(t, ReasonMismatch, reasonOf(t, Check(cfg, token, request("POST", "https://h.example.com/hooks/a", form, sig("https://h.example.com:8443/hooks/a", form)), testNow)))
	})
	t.Run("a name given twice signs each value, sorted", func(t *testing.T) {
		const form = "b=2&a=y&a=x"
		h := formCT.Clone()
		h.Set("X-Twilio-Signature", b64SHA1(token, "https://h.example.com/hooksaxayb2"))
		require.NoError(t, Check(cfg, token, request("POST", "https://h.example.com/hooks", form, h), testNow))
	})
	t.Run("names sort case-sensitively", func(t *testing.T) {
		h := formCT.Clone()
		h.Set("X-Twilio-Signature", b64SHA1(token, "https://h.example.com/hooksB1a2"))
		require.NoError(t, Check(cfg, token, request("POST", "https://h.example.com/hooks", "a=2&B=1", h), testNow))
	})
	t.Run("a GET signs the URL alone", func(t *testing.T) {
		u := "https://h.example.com/hooks/a?MessageSid=SM1&From=%2B1555"
		h := http.Header{"X-Twilio-Signature": {b64SHA1(token, u)}}
		require.NoError(t, Check(cfg, token, request("GET", u, "", h), testNow))
	})
	t.Run("a JSON body needs bodySHA256 in the URL", func(t *testing.T) {
		body := `{"CallSid":"CA1"}`
		sum := sha256.Sum256([]byte(body))
		u := "https://h.example.com/hooks/a?bodySHA256=" + hex.EncodeToString(sum[:])
		h := http.Header{"Content-Type": {"application/json"}, "X-Twilio-Signature": {b64SHA1(token, u)}}
		require.NoError(t, Check(cfg, token, request("POST", u, body, h), testNow))
		out, err := Sign(cfg, token, request("POST", u, body, h), testNow)
		require.NoError(t, err)
		assert.Equal(t, h.Get("X-Twilio-Signature"), out.Get("X-Twilio-Signature"))

		err = Check(cfg, token, request("POST", u, `{"CallSid":"CA2"}`, h), testNow)
		assert.Equal(t, ReasonMismatch, reasonOf(t, err))
		assert.Equal(t, "bodySHA256 in the URL does not match the body", err.Error())

		plain := "https://h.example.com/hooks/a"
		h.Set("X-Twilio-Signature", b64SHA1(token, plain))
		err = Check(cfg, token, request("POST", plain, body, h), testNow)
		assert.Equal(t, ReasonBadFormat, reasonOf(t, err))
		_, err = Sign(cfg, token, request("POST", plain, body, h), testNow)
		require.ErrorContains(t, err, "bodySHA256")
	})
	t.Run("a form body that does not parse", func(t *testing.T) {
		h := sig("https://h.example.com/hooks", "")
		err := Check(cfg, token, request("POST", "https://h.example.com/hooks", "a=%zz", h), testNow)
		assert.Equal(t, ReasonBadFormat, reasonOf(t, err))
	})
}

func TestTrelloSignsTheCallbackURL(t *testing.T) {
	const secret = "trello-app-secret"
	body := `{"action":{"id":"51f9424bcd6e040f3c002412","type":"updateCard"}}`
	u := "https://hooks.example.com/hooks/3q2-7Zx"
	h := http.Header{"X-Trello-Webhook": {b64SHA1(secret, body+u)}}
	cfg := Config{Scheme: "trello"}
	require.NoError(t, Check(cfg, secret, request("POST", u, body, h), testNow))
	// The same body sent to another callback URL does not pass.
	assert.Equal(t, ReasonMismatch, reasonOf(t, Check(cfg, secret, request("POST", u+"x", body, h), testNow)))
	// Nor a signature over the body alone.
	h.Set("X-Trello-Webhook", b64SHA1(secret, body))
	assert.Equal(t, ReasonMismatch, reasonOf(t, Check(cfg, secret, request("POST", u, body, h), testNow)))
}

func TestTokenScheme(t *testing.T) {
	cfg := Config{Scheme: "token", Header: "Authorization", Prefix: "Bearer "}
	const tok = "glpat-0123456789"
	ok := func(v string) error {
		return Check(cfg, tok, request("POST", testURL, testBody, http.Header{"Authorization": {v}}), testNow)
	}
	require.NoError(t, ok("Bearer "+tok))
	require.NoError(t, ok("bearer "+tok))
	assert.Equal(t, ReasonBadFormat, reasonOf(t, ok(tok)))
	err := ok("Bearer " + tok + "x")
	assert.Equal(t, ReasonMismatch, reasonOf(t, err))
	assert.Equal(t, "token mismatch", err.Error())
	assert.Equal(t, ReasonMismatch, reasonOf(t, ok("Bearer "+tok[:5])))
	out, err := Sign(cfg, tok, request("POST", testURL, "", nil), testNow)
	require.NoError(t, err)
	assert.Equal(t, "Bearer "+tok, out.Get("Authorization"))
}

func TestZoomTimestampIsSeconds(t *testing.T) {
	const secret = "zoom-secret"
	cfg := Config{Scheme: "zoom"}
	ms := strconv.FormatInt(testNow.UnixMilli(), 10)
	h := http.Header{"X-Zm-Request-Timestamp": {ms}, "X-Zm-Signature": {"v0=" + hexSHA256(secret, "v0:"+ms+":"+testBody)}}
	assert.Equal(t, ReasonStaleTimestamp, reasonOf(t, Check(cfg, secret, request("POST", testURL, testBody, h), testNow)))
}
