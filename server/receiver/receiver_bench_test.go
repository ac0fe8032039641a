package receiver

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/core"
	"github.com/hookmap/hookmap/server/hub"
	"github.com/hookmap/hookmap/server/metrics"
	"github.com/hookmap/hookmap/server/registry"
	"github.com/hookmap/hookmap/server/secrets"
	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/sqlite"
)

// instantCommits is a store whose CommitDelivery returns at once, as if the delivery and
// its events were durable.
type instantCommits struct {
	store.Store
	seq atomic.Int64
}

func (s *instantCommits) CommitDelivery(_ context.Context, c *store.DeliveryCommit) (*store.CommitResult, error) {
	n := len(c.Events)
	res := &store.CommitResult{Seqs: make([]int64, n), Inserted: n}
	for i := range n {
		res.Seqs[i] = s.seq.Add(1)
		res.MaxSeq = res.Seqs[i]
	}
	return res, nil
}

// testReceiver is a receiver with its metrics over a SQLite store in a temporary folder
// with the ingest comparison's connector (bench/connector/bench) loaded, an ACTIVE
// subscription to its `webhook` event, and log as its logger. With instant, the store's
// CommitDelivery returns at once.
func testReceiver(tb testing.TB, log *slog.Logger, instant bool) (*Receiver, *store.Subscription) {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "hookmap.db"), sqlite.Options{})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = st.Close() })
	key := make([]byte, secrets.KeySize)
	_, _ = rand.Read(key)
	box, err := secrets.NewBox(key)
	require.NoError(tb, err)
	reg, diags := registry.New(filepath.Join("..", "..", "bench", "connector"))
	require.Empty(tb, diags)
	require.NoError(tb, st.CreateWorkspace(ctx, &store.Workspace{ID: "default", Name: "default", CreateTime: time.Now().UTC()}))
	c := &core.Core{Store: st, Box: box, Registry: reg, Hub: hub.New(), PublicURL: "http://127.0.0.1:8080", Logger: log}
	conn, err := c.CreateConnection(ctx, "default", core.ConnectionInput{ConnectorKey: "bench"})
	require.NoError(tb, err)
	sub, err := c.CreateSubscription(ctx, "default", core.SubscriptionInput{ConnectionID: conn.ID, EventKey: "webhook"})
	require.NoError(tb, err)
	if instant {
		c.Store = &instantCommits{Store: st}
	}
	return &Receiver{Core: c, Metrics: metrics.New(), Logger: log}, sub
}

// benchBody is the body of the ingest comparison's webhooks: an issue-like JSON object of
// about 1 KiB.
func benchBody() []byte {
	const head = `{"id":"b2f6c1d0-8c1e-4f5e-9a51-3d2c1b0a9f8e","action":"opened","user":{"id":1234567,"login":"octocat"},"text":"`
	return []byte(head + strings.Repeat("x", 1024-len(head)-2) + `"}`)
}

// BenchmarkServeSubscription serves webhooks of the ingest comparison (its ~1 KiB JSON
// body, the bench connector's `webhook` event) through the receiver's handler, with its
// metrics, as the HTTP server calls it: the middleware, the subscription's lookup, the
// body's read, core's handling and the reply. The store is SQLite but its CommitDelivery
// returns at once, so that the figures are the handler's own CPU and allocations, with
// no disk sync in them (the HTTP server's own work is not in them either).
func BenchmarkServeSubscription(b *testing.B) {
	rc, sub := testReceiver(b, slog.New(slog.DiscardHandler), true)
	h := rc.Handler()
	body := benchBody()
	rd := bytes.NewReader(body)
	req := httptest.NewRequest(http.MethodPost, "/hooks/"+sub.ID, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "wrk")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		r := *req // the server makes a request per webhook; its fields are the same here
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, &r)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

// discardWriter is an http.ResponseWriter that keeps only the status.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.h }

func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *discardWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(b), nil
}
