package hubspot_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	appID        = 54321
	clientSecret = "hubspot-app-client-secret"
	// The 401 HubSpot answers for a missing, expired or unknown token.
	invalidAuthBody = `{"status":"error","message":"Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview","correlationId":"4f3c1f5e-1d2b-4c6a-9a8e-0b1c2d3e4f50","category":"INVALID_AUTHENTICATION"}`
)

// fakeHubSpot is a small HubSpot: the account-info API (OAuth tokens map to portals), a
// record of the calls made to it, and the app's webhook sender, which posts batches of
// events to the app's target URL signed with the app's client secret (signature v3, and
// the legacy v1 header HubSpot still sends beside it).
type fakeHubSpot struct {
	t      *testing.T
	srv    *httptest.Server
	tokens map[string]int64 // access tokens handed out by hand (private apps) → portal id
	oauth  *fakeOAuth

	mu    sync.Mutex
	calls []string // "METHOD path Authorization"
}

func newFakeHubSpot(t *testing.T, tokens map[string]int64) *fakeHubSpot {
	f := &fakeHubSpot{t: t, tokens: tokens, oauth: newFakeOAuth(time.Now)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeHubSpot) URL() string { return f.srv.URL }

// Calls returns the calls the API got so far.
func (f *fakeHubSpot) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func (f *fakeHubSpot) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
	f.mu.Unlock()

	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/oauth/authorize":
		f.oauth.authorize(w, r)
		return
	case r.Method == http.MethodPost && r.URL.Path == "/oauth/v1/token":
		f.oauth.token(w, r)
		return
	}
	// HubSpot authenticates every API call with a Bearer OAuth token.
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	portal, known := f.tokens[token]
	if !known {
		portal, known = f.oauth.portalOf(token)
	}
	if !ok || !known {
		f.mu.Lock()
		f.calls[len(f.calls)-1] += " 401"
		f.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, invalidAuthBody)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/account-info/v3/details":
		if r.ContentLength > 0 {
			writeJSON(w, http.StatusBadRequest, `{"status":"error","message":"GET takes no body","category":"VALIDATION_ERROR"}`)
			return
		}
		b, _ := json.Marshal(map[string]any{
			"portalId":              portal,
			"accountType":           "STANDARD",
			"timeZone":              "US/Eastern",
			"companyCurrency":       "USD",
			"additionalCurrencies":  []string{"EUR"},
			"utcOffset":             "-05:00",
			"utcOffsetMilliseconds": -18000000,
			"uiDomain":              "app.hubspot.com",
			"dataHostingLocation":   "na1",
		})
		writeJSON(w, http.StatusOK, string(b))
	default:
		writeJSON(w, http.StatusNotFound, `{"status":"error","message":"Resource not found","category":"OBJECT_NOT_FOUND"}`)
	}
}

// event is one HubSpot webhook event of portal, as HubSpot sends it.
func event(eventID int64, portal int64, subscriptionType string, objectID int64) map[string]any {
	e := map[string]any{
		"eventId":          eventID,
		"subscriptionId":   int64(2000000) + int64(len(subscriptionType)),
		"portalId":         portal,
		"appId":            appID,
		"occurredAt":       int64(1564113600000) + eventID,
		"subscriptionType": subscriptionType,
		"attemptNumber":    0,
		"objectId":         objectID,
		"changeSource":     "CRM",
	}
	if strings.HasSuffix(subscriptionType, ".propertyChange") {
		e["propertyName"] = "email"
		e["propertyValue"] = "someone@example.com"
	}
	if strings.HasSuffix(subscriptionType, ".creation") {
		e["changeFlag"] = "CREATED"
	}
	return e
}

// delivery is one POST of the app's webhook sender.
type delivery struct {
	Body      []byte
	Timestamp time.Time
	Secret    string // the key it is signed with
	SignedURL string // the URI it is signed over; "" means the URL it is posted to
	// SignedBody, when set, is what the signature covers instead of Body (a body changed
	// on the way).
	SignedBody []byte
	NoSig      bool
}

// signV3 computes X-HubSpot-Signature-v3: base64(HMAC-SHA256(secret, method + uri + body + ts)).
func signV3(secret, method, uri string, body []byte, ts string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(method + uri))
	m.Write(body)
	m.Write([]byte(ts))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// signV1 computes the legacy X-HubSpot-Signature: hex(SHA-256(secret + body)).
func signV1(secret string, body []byte) string {
	s := sha256.Sum256(append([]byte(secret), body...))
	return hex.EncodeToString(s[:])
}

// batch encodes events as HubSpot's request body: a JSON array.
func batch(t *testing.T, events ...map[string]any) []byte {
	b, err := json.Marshal(events)
	require.NoError(t, err)
	return b
}

// post sends d to url the way HubSpot's webhook sender does and returns the status and body.
func (f *fakeHubSpot) post(url string, d delivery) (int, string) {
	f.t.Helper()
	if d.Timestamp.IsZero() {
		d.Timestamp = time.Now()
	}
	if d.Secret == "" {
		d.Secret = clientSecret
	}
	if d.SignedURL == "" {
		d.SignedURL = url
	}
	if d.SignedBody == nil {
		d.SignedBody = d.Body
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(d.Body))
	require.NoError(f.t, err)
	ts := strconv.FormatInt(d.Timestamp.UnixMilli(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "HubSpot Webhooks")
	if !d.NoSig {
		req.Header.Set("X-HubSpot-Request-Timestamp", ts)
		req.Header.Set("X-HubSpot-Signature-v3", signV3(d.Secret, http.MethodPost, d.SignedURL, d.SignedBody, ts))
		req.Header.Set("X-HubSpot-Signature-Version", "v1")
		req.Header.Set("X-HubSpot-Signature", signV1(d.Secret, d.SignedBody))
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(f.t, err)
	return resp.StatusCode, string(b)
}

// send posts a signed batch of events to url.
func (f *fakeHubSpot) send(url string, events ...map[string]any) (int, string) {
	f.t.Helper()
	return f.post(url, delivery{Body: batch(f.t, events...)})
}
