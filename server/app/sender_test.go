package app_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/app"
	"github.com/hookmap/hookmap/server/apptest"
	"github.com/hookmap/hookmap/server/core"
)

// senderConnector writes a connector whose events fail in the ways a sender may meet:
// "missing" reads a field the body does not have, "loop" hashes the raw body in a loop,
// "signed" verifies a GitHub signature, "ok" stores the body.
func senderConnector(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "sender")
	write := func(rel, content string) {
		p := filepath.Join(root, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	write("spec.yml", "name: Sender\n")
	spec := "name: %s\nimplementationType: webhook\n%smethods:\n  subscribe: {implementationType: mapping}\n  handle: {implementationType: mapping}\n"
	handles := map[string]string{
		"missing": "events:\n  - type: x\n    record: {$cel: data.missing}\n",
		"loop":    "events:\n  - type: x\n    record:\n      $cel: 'lists.range(1000).map(i, hex(sha256(rawBody)))'\n",
		"signed":  "events:\n  - type: x\n    record: {$cel: data}\n",
		"ok":      "events:\n  - type: x\n    record: {$cel: data}\n",
		// each loop is well under the cost limit; fifty of them are not under 10ms
		"slow": "checks:\n" + strings.Repeat("  - {$cel: 'lists.range(50000).all(i, i >= 0)'}\n", 50) + "events: []\n",
	}
	for ev, handle := range handles {
		verify := ""
		if ev == "signed" {
			verify = "verify: {scheme: github, secret: It's a Secret to Everybody}\n"
		}
		write(filepath.Join("events", ev, "spec.yml"), fmt.Sprintf(spec, ev, verify))
		write(filepath.Join("events", ev, "subscribe.map.yml"), "state: {}\n")
		write(filepath.Join("events", ev, "handle.map.yml"), handle)
	}
	return dir
}

type senderWorld struct {
	h    *apptest.Harness
	urls map[string]string
}

func startSender(t *testing.T, opts ...apptest.Option) *senderWorld {
	t.Helper()
	h := apptest.Start(t, append([]apptest.Option{apptest.WithConnectors(senderConnector(t))}, opts...)...)
	conn, err := h.Connections.CreateConnection(h.Ctx(), &hookmapv1.CreateConnectionRequest{ConnectorKey: "sender", Name: "s"})
	require.NoError(t, err)
	w := &senderWorld{h: h, urls: map[string]string{}}
	for _, ev := range []string{"missing", "loop", "signed", "ok", "slow"} {
		sub, err := h.Subscriptions.CreateSubscription(h.Ctx(), &hookmapv1.CreateSubscriptionRequest{ConnectionId: conn.GetId(), EventKey: ev})
		require.NoError(t, err)
		w.urls[ev] = sub.GetWebhookUri()
	}
	return w
}

// senderReply is the JSON a sender reads on an error.
type senderReply struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	DeliveryID string `json:"delivery_id"`
}

func parseReply(t *testing.T, body []byte) senderReply {
	t.Helper()
	var r senderReply
	require.NoError(t, json.Unmarshal(body, &r), string(body))
	return r
}

func (w *senderWorld) delivery(t *testing.T, id string) *hookmapv1.Delivery {
	t.Helper()
	d, err := w.h.Events.GetDelivery(w.h.Ctx(), &hookmapv1.GetDeliveryRequest{Id: id})
	require.NoError(t, err)
	return d
}

// TestSenderReadsNoInternals: a failed mapping and a failed verification answer the
// sender (a stranger) with a generic message and the delivery's id; the detail (the
// mapping file and position, what the check found) is in the delivery record.
func TestSenderReadsNoInternals(t *testing.T) {
	w := startSender(t)

	r := w.h.PostJSON(w.urls["missing"], `{"present": 1}`)
	require.Equal(t, http.StatusInternalServerError, r.Status)
	rep := parseReply(t, r.Body)
	require.Equal(t, 500, rep.Error.Code)
	require.Equal(t, core.MsgKeptForReplay, rep.Error.Message)
	for _, leak := range []string{"handle.map.yml", "no such key", "missing", "sender", string(os.PathSeparator) + "tmp"} {
		require.NotContains(t, string(r.Body), leak)
	}
	d := w.delivery(t, rep.DeliveryID)
	require.Equal(t, hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED, d.GetOutcome())
	require.Regexp(t, `handle\.map\.yml:3:\d+: no such key: missing$`, d.GetError())
	require.True(t, d.GetReplayable())

	body := `{"hello": "world"}`
	for _, sig := range []string{"", "sha256=00", "sha256=" + hmacHex("wrong", body), "sha1=abc"} {
		r = w.h.PostJSON(w.urls["signed"], body, "X-Hub-Signature-256", sig)
		require.Equal(t, http.StatusUnauthorized, r.Status, sig)
		rep = parseReply(t, r.Body)
		require.Equal(t, core.MsgNotVerified, rep.Error.Message, sig)
		require.NotContains(t, string(r.Body), hmacHex("It's a Secret to Everybody", body))
		d = w.delivery(t, rep.DeliveryID)
		require.Equal(t, hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_REJECTED, d.GetOutcome())
		require.Contains(t, d.GetError(), "verification failed: ", "the record says which check failed")
		require.False(t, d.GetReplayable())
	}

	// The sender's own malformed body is named to it.
	r = w.h.PostJSON(w.urls["ok"], `{"a": `)
	require.Equal(t, http.StatusBadRequest, r.Status)
	rep = parseReply(t, r.Body)
	require.Contains(t, rep.Error.Message, "cannot parse body: malformed JSON")
	require.True(t, w.delivery(t, rep.DeliveryID).GetReplayable())
}

// TestHostileLoopStoppedByCostLimit: a handle that hashes a 1 MiB body in a loop reaches
// the CEL cost limit (hookmap's functions are charged by the bytes they hash); the sender
// gets 500 and the request is kept for replay, its record naming the limit at the
// mapping's file:line.
func TestHostileLoopStoppedByCostLimit(t *testing.T) {
	w := startSender(t)
	body := bytes.Repeat([]byte("a"), 1<<20) // exactly the default limit
	r := w.h.Do(http.MethodPost, w.urls["loop"], body, "Content-Type", "text/plain")
	require.Equal(t, http.StatusInternalServerError, r.Status, string(r.Body))
	rep := parseReply(t, r.Body)
	require.Equal(t, core.MsgKeptForReplay, rep.Error.Message)
	d := w.delivery(t, rep.DeliveryID)
	require.Equal(t, hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED, d.GetOutcome())
	require.Regexp(t, `loop/handle\.map\.yml:4:\d+: CEL cost limit of 1000000 exceeded`, d.GetError())
	require.True(t, d.GetReplayable())
	require.Equal(t, int64(1<<20), d.GetRequestSize())

	// The server still serves.
	r = w.h.PostJSON(w.urls["ok"], `{"a": 1}`)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))

	m := w.h.Do(http.MethodGet, w.h.Hook("/metrics"), nil)
	require.Contains(t, string(m.Body), `hookmap_eval_limit_exceeded_total{kind="subscription",limit="cost"} 1`)
	require.Contains(t, string(m.Body), `hookmap_eval_limit_exceeded_total{kind="subscription",limit="time"} 0`)
	require.Regexp(t, `hookmap_eval_cel_cost_count\{kind="subscription"\} [1-9]`, string(m.Body))
}

// TestEvalTimeoutStopsHandle: with --eval-timeout 10ms, a handle whose formulas each stay
// under the cost limit but together run long is stopped; the sender gets 500 and the
// request is kept for replay, its record naming the limit.
func TestEvalTimeoutStopsHandle(t *testing.T) {
	w := startSender(t, func(c *app.Config) { c.EvalTimeout = 10 * time.Millisecond })
	r := w.h.PostJSON(w.urls["slow"], `{}`)
	require.Equal(t, http.StatusInternalServerError, r.Status, string(r.Body))
	rep := parseReply(t, r.Body)
	require.Equal(t, core.MsgKeptForReplay, rep.Error.Message)
	d := w.delivery(t, rep.DeliveryID)
	require.Equal(t, hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED, d.GetOutcome())
	require.Regexp(t, `slow/handle\.map\.yml:\d+:\d+: evaluation stopped: the evaluation took longer than its limit of 10ms`, d.GetError())
	require.True(t, d.GetReplayable())
	m := w.h.Do(http.MethodGet, w.h.Hook("/metrics"), nil)
	require.Contains(t, string(m.Body), `hookmap_eval_limit_exceeded_total{kind="subscription",limit="time"} 1`)
}

// TestTooLargeBodyReadNotReset: a sender that writes a body far over the limit before it
// reads gets the 413, never a connection reset, with a Content-Length body and a chunked
// one, every time.
func TestTooLargeBodyReadNotReset(t *testing.T) {
	w := startSender(t)
	path := strings.TrimPrefix(w.urls["ok"], w.h.BaseURL)
	const size = 8 << 20
	body := bytes.Repeat([]byte("x"), size)
	var chunked bytes.Buffer
	for off := 0; off < size; off += 64 << 10 {
		fmt.Fprintf(&chunked, "%x\r\n", 64<<10)
		chunked.Write(body[off : off+64<<10])
		chunked.WriteString("\r\n")
	}
	chunked.WriteString("0\r\n\r\n")
	requests := map[string][]byte{
		"content-length": append([]byte(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: hookmap\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, size)), body...),
		"chunked":        append([]byte(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: hookmap\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", path)), chunked.Bytes()...),
	}
	for name, req := range requests {
		for i := range 20 {
			conn, err := net.Dial("tcp", w.h.Config.HTTPAddr)
			require.NoError(t, err)
			require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
			_, err = conn.Write(req) // the whole request before reading anything
			require.NoError(t, err, "%s #%d: writing the body", name, i)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			require.NoError(t, err, "%s #%d: reading the answer", name, i)
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err, "%s #%d", name, i)
			require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "%s #%d", name, i)
			require.True(t, resp.Close, "%s #%d: the connection is closed after the 413", name, i)
			rep := parseReply(t, b)
			require.Contains(t, rep.Error.Message, "over the limit of 1048576 bytes")
			require.NotEmpty(t, rep.DeliveryID)
			require.NoError(t, conn.Close())
		}
	}
}
