package app_test

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/hookmap/hookmap/engine/value"
	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/apptest"
)

// The Standard Webhooks specification's published example.
const (
	stdSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	stdID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	stdTS     = 1614265330
	stdBody   = `{"test": 2432232314}`
	stdSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func hmacHex(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

func hmacB64(secret []byte, msg string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

type hostile struct {
	name    string
	event   string // the signedhooks event (and so the verify scheme)
	url     string // instead of the event's hook URL
	method  string
	body    []byte
	headers []string
	status  int
	outcome hookmapv1.DeliveryOutcome // UNSPECIFIED: nothing is recorded
	events  int
	// fresh: sent on a new connection, so that the request is its first and the HTTP
	// port's front is the one for its URL (a pooled connection keeps the front of its
	// first request).
	fresh bool
}

// TestHostileAndOddRequests sends each request of the table to a subscription of the
// signedhooks test connector and checks the status, the recorded delivery's outcome and
// how many events were stored.
func TestHostileAndOddRequests(t *testing.T) {
	now := time.Unix(stdTS+30, 0).UTC() // the clock sits 30s after the published example
	h := apptest.Start(t, apptest.WithConnectors("testdata/connectors"), apptest.WithClock(func() time.Time { return now }))
	conn, err := h.Connections.CreateConnection(h.Ctx(), &hookmapv1.CreateConnectionRequest{ConnectorKey: "signedhooks", Name: "s"})
	require.NoError(t, err)
	const secret = "It's a Secret to Everybody"
	urls := map[string]string{}
	for _, ev := range []string{"plain", "github", "stripe", "slack", "shopify", "standard", "hmac", "cel"} {
		s := secret
		if ev == "standard" {
			s = stdSecret
		}
		sub, err := h.Subscriptions.CreateSubscription(h.Ctx(), &hookmapv1.CreateSubscriptionRequest{
			ConnectionId: conn.GetId(), EventKey: ev, Parameters: apptest.Struct(t, map[string]any{"secret": s}),
		})
		require.NoError(t, err)
		urls[ev] = sub.GetWebhookUri()
	}

	ok, rejected, dup := hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_OK, hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_REJECTED,
		hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_DUPLICATE
	failed := hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED
	none := hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_UNSPECIFIED
	body := `{"hello": "world", "id": 1234567890123}`
	ts := strconv.FormatInt(now.Unix(), 10)
	stale := strconv.FormatInt(now.Add(-10*time.Minute).Unix(), 10)
	stdKey, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(stdSecret, "whsec_"))
	sha1Sig := func(msg string) string {
		m := hmac.New(sha1.New, []byte(secret))
		m.Write([]byte(msg))
		return "sha1=" + base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	deep := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	json := func(extra ...string) []string { return append([]string{"Content-Type", "application/json"}, extra...) }
	nested := func(n int) []byte { return []byte(strings.Repeat("[", n) + strings.Repeat("]", n)) }
	form := []string{"Content-Type", "application/x-www-form-urlencoded"}
	multi := func(boundary string) []string {
		return []string{"Content-Type", "multipart/form-data; boundary=" + boundary}
	}
	part := "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n"
	// Under the 64 KiB header limit of other connections; over the 16 KiB of a connection
	// whose first request is to a hook URL (receiver.HookHeaderLimit).
	longID := strings.Repeat("x", 32<<10)

	table := []hostile{
		{name: "plain JSON", event: "plain", body: []byte(body), headers: json("X-Event-Id", "e-1"), status: 200, outcome: ok, events: 1},
		{name: "re-delivery of the same id", event: "plain", body: []byte(body), headers: json("X-Event-Id", "e-1"), status: 200, outcome: dup},
		{name: "malformed JSON", event: "plain", body: []byte(`{"hello": `), headers: json(), status: 400, outcome: rejected},
		{name: "deeply nested JSON", event: "plain", body: []byte(deep), headers: json(), status: 400, outcome: rejected},
		// The plain event's record is {"data": body, …}: one level more than the body.
		{name: "JSON whose record is nested to the limit", event: "plain", body: nested(value.MaxDepth - 1), headers: json(), status: 200, outcome: ok, events: 1},
		{name: "JSON at the limit, which the mapping nests past it", event: "plain", body: nested(value.MaxDepth), headers: json(), status: 500, outcome: failed},
		{name: "JSON one level past the limit", event: "plain", body: nested(value.MaxDepth + 1), headers: json(), status: 400, outcome: rejected},
		{name: "objects nested past the limit", event: "plain", body: []byte(strings.Repeat(`{"a":`, value.MaxDepth+1) + "1" + strings.Repeat("}", value.MaxDepth+1)), headers: json(), status: 400, outcome: rejected},
		{name: "truncated JSON string", event: "plain", body: []byte(`{"s": "abc`), headers: json(), status: 400, outcome: rejected},
		{name: "JSON with a 900 KiB string", event: "plain", body: []byte(`{"s": "` + strings.Repeat("x", 900<<10) + `"}`), headers: json(), status: 200, outcome: ok, events: 1},
		{name: "malformed form", event: "plain", body: []byte("a=%zz"), headers: form, status: 400, outcome: rejected},
		{name: "multipart", event: "plain", body: []byte(part + "--b--\r\n"), headers: multi("b"), status: 200, outcome: ok, events: 1},
		{name: "truncated multipart", event: "plain", body: []byte(part), headers: multi("b"), status: 400, outcome: rejected},
		{name: "multipart without its boundary", event: "plain", body: []byte(part), headers: []string{"Content-Type", "multipart/form-data"}, status: 400, outcome: rejected},
		{name: "multipart with another boundary", event: "plain", body: []byte(part), headers: multi("zz"), status: 400, outcome: rejected},
		{name: "unknown hook id of 8 KiB", url: h.Hook("/hooks/" + longID[:8<<10]), body: []byte(body), headers: json(), status: 404, outcome: none},
		{name: "unknown hook id of 32 KiB", url: h.Hook("/hooks/" + longID), body: []byte(body), headers: json(), status: 431, outcome: none, fresh: true},
		{name: "unknown global hook id", url: h.Hook("/hooks/g/nope"), body: []byte(body), headers: json(), status: 404, outcome: none},
		{name: "unknown path", url: h.Hook("/nope/" + longID), status: 404, outcome: none, fresh: true},
		{name: "POST to /healthz", url: h.Hook("/healthz"), body: []byte(body), status: 405, outcome: none},
		{name: "DELETE /metrics", url: h.Hook("/metrics"), method: http.MethodDelete, status: 405, outcome: none},
		{name: "odd method on a hook reaches handle", event: "plain", method: "BREW", status: 200, outcome: ok, events: 1},
		{name: "JSON sent as text/plain", event: "plain", body: []byte(body), headers: []string{"Content-Type", "text/plain"}, status: 200, outcome: ok, events: 1},
		{name: "form with a JSON field", event: "plain", body: []byte("payload=" + strings.ReplaceAll(body, " ", "%20")), headers: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 200, outcome: ok, events: 1},
		{name: "unknown content type", event: "plain", body: []byte{0, 1, 2, 0xff}, headers: []string{"Content-Type", "application/octet-stream"}, status: 200, outcome: ok, events: 1},
		{name: "invalid UTF-8 text", event: "plain", body: []byte("caf\xe9 \xff\xfe"), headers: []string{"Content-Type", "text/plain; charset=utf-8"}, status: 200, outcome: ok, events: 1},
		{name: "invalid UTF-8 inside JSON", event: "plain", body: []byte("{\"s\": \"caf\xe9\"}"), headers: json(), status: 200, outcome: ok, events: 1},
		{name: "10 MiB body", event: "plain", body: bytes.Repeat([]byte("x"), 10<<20), headers: json(), status: 413, outcome: rejected},
		{name: "HEAD probe reaches handle", event: "plain", method: http.MethodHead, status: 200, outcome: ok, events: 1},
		{name: "GET probe reaches handle", event: "plain", method: http.MethodGet, status: 200, outcome: ok, events: 1},
		{name: "1,000 headers", event: "plain", body: []byte(body), headers: thousandHeaders(), status: 431, outcome: none},

		{name: "github: good", event: "github", body: []byte(body), headers: json("X-Hub-Signature-256", "sha256="+hmacHex(secret, body)), status: 200, outcome: ok, events: 1},
		{name: "github: bad signature", event: "github", body: []byte(body), headers: json("X-Hub-Signature-256", "sha256="+hmacHex("wrong", body)), status: 401, outcome: rejected},
		{name: "github: missing header", event: "github", body: []byte(body), headers: json(), status: 401, outcome: rejected},
		{name: "github: not hex", event: "github", body: []byte(body), headers: json("X-Hub-Signature-256", "sha256=zz"), status: 401, outcome: rejected},

		{name: "stripe: good, with v0 and a second v1", event: "stripe", body: []byte(body), headers: json("Stripe-Signature", "t="+ts+",v1="+hmacHex("old", ts+"."+body)+",v1="+hmacHex(secret, ts+"."+body)+",v0=abc"), status: 200, outcome: ok, events: 1},
		{name: "stripe: stale timestamp", event: "stripe", body: []byte(body), headers: json("Stripe-Signature", "t="+stale+",v1="+hmacHex(secret, stale+"."+body)), status: 401, outcome: rejected},
		{name: "stripe: wrong signature", event: "stripe", body: []byte(body), headers: json("Stripe-Signature", "t="+ts+",v1="+hmacHex(secret, ts+"."+body+" ")), status: 401, outcome: rejected},

		{name: "slack: good", event: "slack", body: []byte(body), headers: json("X-Slack-Request-Timestamp", ts, "X-Slack-Signature", "v0="+hmacHex(secret, "v0:"+ts+":"+body)), status: 200, outcome: ok, events: 1},
		{name: "slack: stale timestamp", event: "slack", body: []byte(body), headers: json("X-Slack-Request-Timestamp", stale, "X-Slack-Signature", "v0="+hmacHex(secret, "v0:"+stale+":"+body)), status: 401, outcome: rejected},
		{name: "slack: bad signature", event: "slack", body: []byte(body), headers: json("X-Slack-Request-Timestamp", ts, "X-Slack-Signature", "v0="+hmacHex(secret, "v0:"+ts+":x")), status: 401, outcome: rejected},

		{name: "shopify: good", event: "shopify", body: []byte(body), headers: json("X-Shopify-Hmac-Sha256", hmacB64([]byte(secret), body)), status: 200, outcome: ok, events: 1},
		{name: "shopify: bad", event: "shopify", body: []byte(body), headers: json("X-Shopify-Hmac-Sha256", hmacB64([]byte("x"), body)), status: 401, outcome: rejected},

		{name: "standard webhooks: the published example", event: "standard", body: []byte(stdBody), headers: json("webhook-id", stdID, "webhook-timestamp", strconv.Itoa(stdTS), "webhook-signature", stdSig), status: 200, outcome: ok, events: 1},
		{name: "standard webhooks: tampered body", event: "standard", body: []byte(`{"test": 2432232315}`), headers: json("webhook-id", stdID, "webhook-timestamp", strconv.Itoa(stdTS), "webhook-signature", stdSig), status: 401, outcome: rejected},
		{name: "standard webhooks: several signatures, one good", event: "standard", body: []byte(body), headers: json("webhook-id", "msg_2", "webhook-timestamp", ts, "webhook-signature", "v1,"+hmacB64([]byte("rotated"), "msg_2."+ts+"."+body)+" v1,"+hmacB64(stdKey, "msg_2."+ts+"."+body)), status: 200, outcome: ok, events: 1},
		{name: "standard webhooks: stale", event: "standard", body: []byte(body), headers: json("webhook-id", "msg_3", "webhook-timestamp", stale, "webhook-signature", "v1,"+hmacB64(stdKey, "msg_3."+stale+"."+body)), status: 401, outcome: rejected},

		{name: "hmac sha1 base64 with prefix: good", event: "hmac", body: []byte(body), headers: json("X-Sig", sha1Sig(body)), status: 200, outcome: ok, events: 1},
		{name: "hmac: prefix missing", event: "hmac", body: []byte(body), headers: json("X-Sig", strings.TrimPrefix(sha1Sig(body), "sha1=")), status: 401, outcome: rejected},

		{name: "cel: good token", event: "cel", body: []byte(body), headers: json("X-Token", secret), status: 200, outcome: ok, events: 1},
		{name: "cel: wrong token", event: "cel", body: []byte(body), headers: json("X-Token", "guess"), status: 401, outcome: rejected},
	}

	seen := map[string]bool{}
	events := 0
	for _, row := range table {
		method := row.method
		if method == "" {
			method = http.MethodPost
		}
		url := row.url
		if url == "" {
			url = urls[row.event]
		}
		client := http.DefaultClient
		if row.fresh {
			client = &http.Client{Transport: &http.Transport{}}
		}
		r := doRawWith(t, client, method, url, row.body, row.headers)
		require.Equal(t, row.status, r.Status, "%s: %.300s", row.name, r.Body)
		if r.Status >= 400 && method != http.MethodHead && r.Status != 431 {
			require.Contains(t, r.Header.Get("Content-Type"), "application/json", row.name)
			require.Contains(t, string(r.Body), `"error"`, row.name)
			require.Less(t, len(r.Body), 1024, "%s: nothing long is echoed", row.name)
		}
		if r.Status == 401 {
			// says which check failed, never the expected signature
			require.NotContains(t, string(r.Body), hmacHex(secret, body), row.name)
			require.NotContains(t, string(r.Body), hmacB64([]byte(secret), body), row.name)
		}

		ds, err := h.Events.ListDeliveries(h.Ctx(), &hookmapv1.ListDeliveriesRequest{PageSize: 100})
		require.NoError(t, err)
		var fresh []*hookmapv1.Delivery
		for _, d := range ds.GetDeliveries() {
			if !seen[d.GetId()] {
				seen[d.GetId()] = true
				fresh = append(fresh, d)
			}
		}
		if row.outcome == none {
			require.Empty(t, fresh, row.name)
		} else {
			require.Len(t, fresh, 1, row.name)
			require.Equal(t, row.outcome, fresh[0].GetOutcome(), "%s: %s", row.name, fresh[0].GetError())
			require.Equal(t, int32(row.status), fresh[0].GetStatusCode(), row.name)
			require.Equal(t, int32(row.events), fresh[0].GetEventCount(), row.name)
			if row.status == 400 || row.status == 500 {
				require.True(t, fresh[0].GetReplayable(), "%s: a body that cannot be parsed or mapped is kept", row.name)
			}
			if row.status == 401 {
				require.NotEmpty(t, fresh[0].GetError(), row.name)
				require.False(t, fresh[0].GetReplayable(), "%s: a forged request is not kept for replay", row.name)
			}
		}
		// Whatever was accepted reads back: the list never fails (nothing poisons it).
		evs := listAllEvents(t, h)
		require.Len(t, evs, events+row.events, row.name)
		events += row.events
	}

	// Refused outright, with the JSON error of every other refusal: a CONNECT, in either
	// request-target form (a 2xx would tell a proxy client its tunnel is open).
	host := strings.TrimPrefix(h.BaseURL, "http://")
	hookPath := strings.TrimPrefix(urls["plain"], h.BaseURL)
	for _, target := range []string{host, hookPath, "/healthz"} {
		status, ct, b := rawHTTP(t, host, "CONNECT "+target+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
		require.Equal(t, http.StatusMethodNotAllowed, status, target)
		require.Contains(t, ct, "application/json", target)
		require.Contains(t, b, `"error"`, target)
	}

	// Every stored event streams, invalid UTF-8 included (replaced, never a broken stream).
	stream := h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "all"})
	all := stream.Next(events)
	for _, e := range all {
		require.Empty(t, e.GetRecordError())
	}
	var texts []string
	for _, e := range all {
		if s, ok := e.GetRecord().GetStructValue().AsMap()["data"].(string); ok {
			texts = append(texts, s)
		}
	}
	require.Contains(t, texts, "caf\uFFFD \uFFFD", "invalid bytes become U+FFFD (a run of them, one)")
	require.Contains(t, texts, "AAEC/w==", "a binary body is base64")
	require.Contains(t, texts, body, "a JSON body sent as text stays text")

	// Verification failures are counted by scheme and reason.
	r := h.Do(http.MethodGet, h.Hook("/metrics"), nil)
	require.Contains(t, string(r.Body), `hookmap_receiver_verify_failures_total{reason="stale_timestamp",scheme="stripe"} 1`)
	require.Contains(t, string(r.Body), `hookmap_receiver_verify_failures_total{reason="missing_header",scheme="github"} 1`)
}

// listAllEvents pages through every event with the smallest pages.
func listAllEvents(t *testing.T, h *apptest.Harness) []*hookmapv1.Event {
	t.Helper()
	var all []*hookmapv1.Event
	token := ""
	for {
		page, err := h.Events.ListEvents(h.Ctx(), &hookmapv1.ListEventsRequest{PageSize: 1000, PageToken: token})
		require.NoError(t, err)
		all = append(all, page.GetEvents()...)
		if token = page.GetNextPageToken(); token == "" {
			return all
		}
	}
}

// rawHTTP sends one request written by hand (what net/http would not send) to addr and
// returns the answer's status, Content-Type and body.
func rawHTTP(t *testing.T, addr, request string) (int, string, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte(request))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func thousandHeaders() []string {
	h := []string{"Content-Type", "application/json"}
	for i := range 1000 {
		h = append(h, fmt.Sprintf("X-Filler-%d", i), strings.Repeat("v", 64))
	}
	return h
}

// doRaw sends a request and reads the answer, tolerating a server that answers before it
// read the whole body (413).
func doRaw(t *testing.T, method, url string, body []byte, headers []string) *apptest.Response {
	t.Helper()
	return doRawWith(t, http.DefaultClient, method, url, body, headers)
}

func doRawWith(t *testing.T, client *http.Client, method, url string, body []byte, headers []string) *apptest.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if tr, ok := client.Transport.(*http.Transport); ok {
		tr.CloseIdleConnections()
	}
	return &apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// TestReplayAfterConnectorFix: a mapping bug fails deliveries (kept); the author fixes
// the file and reloads; ReplayDelivery runs the kept request through the fixed connector,
// records the new outcome and emits the events.
func TestReplayAfterConnectorFix(t *testing.T) {
	dir := t.TempDir()
	ev := filepath.Join(dir, "fixme", "events", "order")
	require.NoError(t, os.MkdirAll(ev, 0o755))
	write := func(name, content string) {
		require.NoError(t, os.WriteFile(filepath.Join(ev, name), []byte(content), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fixme", "spec.yml"), []byte("name: Fix me\n"), 0o644))
	write("spec.yml", "name: Orders\nimplementationType: webhook\nmethods:\n  subscribe: {implementationType: mapping}\n  handle: {implementationType: mapping}\n")
	write("subscribe.map.yml", "state: {}\n")
	// The bug: the app sends order.total_price, the mapping reads order.total.
	write("handle.map.yml", "events:\n  - type: order.created\n    record: {total: {$cel: data.order.total}}\n    id: {$cel: string(data.order.id)}\n")

	h := apptest.Start(t, apptest.WithConnectors(dir))
	conn, err := h.Connections.CreateConnection(h.Ctx(), &hookmapv1.CreateConnectionRequest{ConnectorKey: "fixme", Name: "f"})
	require.NoError(t, err)
	sub, err := h.Subscriptions.CreateSubscription(h.Ctx(), &hookmapv1.CreateSubscriptionRequest{ConnectionId: conn.GetId(), EventKey: "order"})
	require.NoError(t, err)
	stream := h.OpenStream(&hookmapv1.StreamEventsRequest{Consumer: "c"})

	var failedIDs []string
	for _, id := range []int{9007199254740993, 2} {
		r := h.PostJSON(fmt.Sprintf("%s?attempt=%d", sub.GetWebhookUri(), id), fmt.Sprintf(`{"order": {"id": %d, "total_price": "10.00"}}`, id))
		require.Equal(t, http.StatusInternalServerError, r.Status)
		require.Contains(t, string(r.Body), "kept for replay")
		require.NotContains(t, string(r.Body), "handle.map.yml", "the detail is for ListDeliveries, not the sender")
	}
	ds, err := h.Events.ListDeliveries(h.Ctx(), &hookmapv1.ListDeliveriesRequest{Outcome: hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED})
	require.NoError(t, err)
	require.Len(t, ds.GetDeliveries(), 2)
	for _, d := range ds.GetDeliveries() {
		require.True(t, d.GetReplayable())
		failedIDs = append(failedIDs, d.GetId())
	}
	stream.None(200 * time.Millisecond)

	// Replaying before the fix fails the same way and loses nothing.
	d, err := h.Events.ReplayDelivery(h.Ctx(), &hookmapv1.ReplayDeliveryRequest{Id: failedIDs[0]})
	require.NoError(t, err)
	require.Equal(t, hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED, d.GetOutcome())
	require.True(t, d.GetReplayable())

	// The fixed mapping also records url: the replay sees the URL the app called.
	write("handle.map.yml", "events:\n  - type: order.created\n    record: {total: {$cel: data.order.total_price}, id: {$cel: data.order.id}, url: {$cel: url}}\n    id: {$cel: string(data.order.id)}\n")
	_, err = h.Connectors.ReloadConnectors(h.Ctx(), &hookmapv1.ReloadConnectorsRequest{})
	require.NoError(t, err)

	for _, id := range failedIDs {
		d, err := h.Events.ReplayDelivery(h.Ctx(), &hookmapv1.ReplayDeliveryRequest{Id: id})
		require.NoError(t, err)
		require.Equal(t, hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_OK, d.GetOutcome(), d.GetError())
		require.Equal(t, int32(1), d.GetEventCount())
		require.Equal(t, id, d.GetId(), "the delivery records its new outcome")
	}
	evs := stream.Next(2)
	ids := map[any]bool{}
	for _, e := range evs {
		rec := e.GetRecord().GetStructValue().AsMap()
		require.Equal(t, "10.00", rec["total"])
		require.Regexp(t, `^`+regexp.QuoteMeta(sub.GetWebhookUri())+`\?attempt=(9007199254740993|2)$`, rec["url"])
		ids[rec["url"]] = true
	}
	require.Len(t, ids, 2)

	// A delivery that succeeded drops its kept request: there is nothing left to replay.
	_, err = h.Events.ReplayDelivery(h.Ctx(), &hookmapv1.ReplayDeliveryRequest{Id: failedIDs[0]})
	apptest.RequireReason(t, err, codes.FailedPrecondition, "NOTHING_TO_REPLAY", "no kept request")
	stream.None(200 * time.Millisecond)
	ds, err = h.Events.ListDeliveries(h.Ctx(), &hookmapv1.ListDeliveriesRequest{Outcome: hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED})
	require.NoError(t, err)
	require.Empty(t, ds.GetDeliveries())
}
