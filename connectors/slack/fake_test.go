package slack_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
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
	appID         = "A0HOOKMAP1"
	signingSecret = "8f742231b10e8888abcd99yyyzzz85a5"
	slackAgent    = "Slackbot 1.0 (+https://api.slack.com/robots)"
)

// team is a Slack workspace that installed the app, with its bot.
type team struct {
	ID     string // T…
	Name   string
	Domain string
	BotID  string // B…
	UserID string // the bot user, U…
}

// fakeSlack is a small Slack: the Web API's auth.test (bot tokens map to workspaces; errors
// are HTTP 200 with {"ok": false, "error": …} as Slack answers them), a record of the calls
// made to it, and the Events API sender, which posts envelopes to the app's Request URL
// signed with the app's signing secret (v0 scheme).
type fakeSlack struct {
	t      *testing.T
	srv    *httptest.Server
	tokens map[string]team // bot token → workspace

	mu      sync.Mutex
	revoked map[string]bool // tokens revoked since (auth.test answers token_revoked)
	calls   []string        // "METHOD path Authorization"
}

func newFakeSlack(t *testing.T, tokens map[string]team) *fakeSlack {
	f := &fakeSlack{t: t, tokens: tokens, revoked: map[string]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// Revoke makes token answer token_revoked, as after the app is uninstalled.
func (f *fakeSlack) Revoke(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked[token] = true
}

// URL is the fake's Web API base, like https://slack.com/api.
func (f *fakeSlack) URL() string { return f.srv.URL + "/api" }

// Calls returns the Web API calls so far.
func (f *fakeSlack) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// slackError is how the Web API reports an error: HTTP 200 and ok false.
func slackError(w http.ResponseWriter, code string) {
	writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": code})
}

func (f *fakeSlack) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
	f.mu.Unlock()

	method, ok := strings.CutPrefix(r.URL.Path, "/api/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if method != "auth.test" {
		slackError(w, "unknown_method")
		return
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"ok": false, "error": "method_not_supported"})
		return
	}
	// Tokens go in the Authorization header (or a token= form field, not used here).
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		slackError(w, "not_authed")
		return
	}
	f.mu.Lock()
	revoked := f.revoked[token]
	f.mu.Unlock()
	if revoked {
		slackError(w, "token_revoked")
		return
	}
	tm, known := f.tokens[token]
	if !known {
		slackError(w, "invalid_auth")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"ok":                    true,
		"url":                   "https://" + tm.Domain + ".slack.com/",
		"team":                  tm.Name,
		"user":                  "hookbot",
		"team_id":               tm.ID,
		"user_id":               tm.UserID,
		"bot_id":                tm.BotID,
		"is_enterprise_install": false,
	})
}

// envelope is an event_callback of workspace tm carrying the inner event ev, as Slack sends it.
func envelope(tm team, eventID string, ev map[string]any) map[string]any {
	return map[string]any{
		"token":           "Jhj5dZrVaK7ZwHHjRyZWjbDl",
		"team_id":         tm.ID,
		"context_team_id": tm.ID,
		"api_app_id":      appID,
		"event":           ev,
		"type":            "event_callback",
		"event_id":        eventID,
		"event_time":      int64(1700000000),
		"authorizations": []any{map[string]any{
			"enterprise_id":         nil,
			"team_id":               tm.ID,
			"user_id":               tm.UserID,
			"is_bot":                true,
			"is_enterprise_install": false,
		}},
		"is_ext_shared_channel": false,
		"event_context":         "4-eyJldCI6Im1lc3NhZ2UiLCJ0aWQiOiJUMDAwMDAwMDAiLCJhaWQiOiJBMDAwMDAwMDAiLCJjaWQiOiJDMDAwMDAwMDAifQ",
	}
}

// message is a message event posted by user in channel.
func message(channel, user, text, ts string) map[string]any {
	return map[string]any{
		"type": "message", "channel": channel, "user": user, "text": text,
		"ts": ts, "event_ts": ts, "channel_type": "channel",
	}
}

// delivery is one POST of Slack's Events API sender.
type delivery struct {
	Body      []byte
	Timestamp time.Time // default now
	Secret    string    // default signingSecret
	RetryNum  int       // > 0 adds X-Slack-Retry-Num and X-Slack-Retry-Reason
	NoSig     bool
	// SignedBody, when set, is what the signature covers instead of Body.
	SignedBody []byte
}

// sign computes X-Slack-Signature: "v0=" + hex(HMAC-SHA256(secret, "v0:" + ts + ":" + body)).
func sign(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("v0:" + ts + ":"))
	m.Write(body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// reply is the receiver's answer.
type reply struct {
	Status      int
	ContentType string
	Body        string
}

// post sends d to url the way Slack does.
func (f *fakeSlack) post(url string, d delivery) reply {
	f.t.Helper()
	if d.Timestamp.IsZero() {
		d.Timestamp = time.Now()
	}
	if d.Secret == "" {
		d.Secret = signingSecret
	}
	if d.SignedBody == nil {
		d.SignedBody = d.Body
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(d.Body))
	require.NoError(f.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", slackAgent)
	if !d.NoSig {
		ts := strconv.FormatInt(d.Timestamp.Unix(), 10)
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		req.Header.Set("X-Slack-Signature", sign(d.Secret, ts, d.SignedBody))
	}
	if d.RetryNum > 0 {
		req.Header.Set("X-Slack-Retry-Num", strconv.Itoa(d.RetryNum))
		req.Header.Set("X-Slack-Retry-Reason", "http_timeout")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(f.t, err)
	return reply{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: string(b)}
}

// send posts v (an envelope or another Events API request) signed, now.
func (f *fakeSlack) send(url string, v map[string]any) reply {
	f.t.Helper()
	return f.post(url, delivery{Body: mustJSON(f.t, v)})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
