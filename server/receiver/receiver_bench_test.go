package receiver

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/core"
	"github.com/hookmap/hookmap/server/hub"
	"github.com/hookmap/hookmap/server/internal/corefixture"
	"github.com/hookmap/hookmap/server/metrics"
	"github.com/hookmap/hookmap/server/store"
)

// testReceiver is a receiver with its metrics over a SQLite store in a temporary folder
// with the ingest comparison's connector (bench/connector/bench) loaded, an ACTIVE
// subscription to its `webhook` event, and log as its logger. With instant, the store's
// CommitDelivery returns at once.
func testReceiver(tb testing.TB, log *slog.Logger, instant bool) (*Receiver, *store.Subscription) {
	tb.Helper()
	ctx := context.Background()
	st, box, reg := corefixture.Deps(tb, corefixture.BenchConnectors)
	c := &core.Core{Store: st, Box: box, Registry: reg, Hub: hub.New(), PublicURL: "http://127.0.0.1:8080", Logger: log}
	conn, err := c.CreateConnection(ctx, corefixture.Workspace, core.ConnectionInput{ConnectorKey: "bench"})
	require.NoError(tb, err)
	sub, err := c.CreateSubscription(ctx, corefixture.Workspace, core.SubscriptionInput{ConnectionID: conn.ID, EventKey: "webhook"})
	require.NoError(tb, err)
	if instant {
		c.Store = &corefixture.InstantCommits{Store: st}
	}
	return &Receiver{Core: c, Metrics: metrics.New(), Logger: log}, sub
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
	body := corefixture.BenchBody()
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
