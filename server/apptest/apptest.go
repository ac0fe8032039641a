package apptest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/app"
)

// Harness is a running hookmap and clients for it.
type Harness struct {
	T       testing.TB
	Config  app.Config
	App     *app.App
	Conn    *grpc.ClientConn
	BaseURL string // http://127.0.0.1:PORT of the receiver

	logTo io.Writer // StartWithLogs: every log line, debug included

	Connectors    hookmapv1.ConnectorServiceClient
	Connections   hookmapv1.ConnectionServiceClient
	Subscriptions hookmapv1.SubscriptionServiceClient
	Events        hookmapv1.EventServiceClient
	Webhooks      hookmapv1.WebhookServiceClient
	Destinations  hookmapv1.DestinationServiceClient
}

// Option changes the configuration before start.
type Option func(*app.Config)

// WithConnectors sets the connector folders.
func WithConnectors(dirs ...string) Option { return func(c *app.Config) { c.Connectors = dirs } }

// WithAllowPrivate allows outbound calls to loopback (fake apps in tests).
func WithAllowPrivate() Option { return func(c *app.Config) { c.AllowPrivateNetworks = true } }

// WithClock injects the clock of refresh scheduling and signature tolerances.
func WithClock(now func() time.Time) Option { return func(c *app.Config) { c.Now = now } }

// WithoutScheduler disables the background refresh scheduler (tests call
// Core().RunDueRefreshes themselves).
func WithoutScheduler() Option { return func(c *app.Config) { c.RefreshInterval = 0 } }

// WithWebhooksFile sets the webhooks file (--webhooks).
func WithWebhooksFile(path string) Option { return func(c *app.Config) { c.WebhooksFile = path } }

// WithDestinationBackoff sets the backoff between attempts of a destination's failing
// event (tests use a few milliseconds).
func WithDestinationBackoff(base, limit time.Duration) Option {
	return func(c *app.Config) { c.DestinationRetryBase, c.DestinationRetryCap = base, limit }
}

// WithoutFetcher disables the background fetcher (tests call Core().RunFetches
// themselves).
func WithoutFetcher() Option { return func(c *app.Config) { c.FetchInterval = 0 } }

// WithFetchInterval sets how often the background fetcher looks for due fetches (retries
// with an injected clock are then picked up that soon after the clock moves).
func WithFetchInterval(d time.Duration) Option { return func(c *app.Config) { c.FetchInterval = d } }

// WithAdminToken turns auth on, as in production: every call needs a token.
func WithAdminToken(token string) Option { return func(c *app.Config) { c.AdminToken = token } }

// WithStore sets the store: a SQLite path or a postgres:// URL (see pgtest.Schema).
func WithStore(store string) Option { return func(c *app.Config) { c.Store = store } }

// WithSecretKey sets the secret key (replicas sharing a Postgres store share it).
func WithSecretKey(key string) Option { return func(c *app.Config) { c.SecretKey = key } }

// Start starts hookmap with a fresh data dir. It stops when the test ends.
func Start(t testing.TB, opts ...Option) *Harness {
	t.Helper()
	return StartWithLogs(t, nil, opts...)
}

// StartWithLogs is Start with hookmap's logs, every level from debug up, written to w as
// text (also across Restart), for tests that check what is logged; w nil is Start.
func StartWithLogs(t testing.TB, w io.Writer, opts ...Option) *Harness {
	t.Helper()
	cfg := app.Defaults()
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.PublicURL = ""
	cfg.DataDir = t.TempDir()
	cfg.ShutdownTimeout = 5 * time.Second
	for _, o := range opts {
		o(&cfg)
	}
	h := &Harness{T: t, Config: cfg, logTo: w}
	h.start()
	t.Cleanup(h.stop)
	return h
}

func (h *Harness) logger() *slog.Logger {
	var out []io.Writer
	if h.logTo != nil {
		out = append(out, h.logTo)
	}
	if os.Getenv("HOOKMAP_TEST_LOG") != "" {
		out = append(out, os.Stderr)
	}
	if len(out) == 0 {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(io.MultiWriter(out...), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// LogBuffer collects log output; it is safe for concurrent use.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Bytes returns a copy of everything written so far.
func (b *LogBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func (h *Harness) start() {
	t := h.T
	a, err := app.Start(context.Background(), h.Config, h.logger())
	require.NoError(t, err)
	h.App = a
	// Keep the same ports and public URL across restarts.
	h.Config.GRPCAddr = a.GRPCAddr()
	h.Config.HTTPAddr = a.HTTPAddr()
	h.Config.PublicURL = "http://" + a.HTTPAddr()
	h.BaseURL = h.Config.PublicURL
	conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	h.Conn = conn
	h.Connectors = hookmapv1.NewConnectorServiceClient(conn)
	h.Connections = hookmapv1.NewConnectionServiceClient(conn)
	h.Subscriptions = hookmapv1.NewSubscriptionServiceClient(conn)
	h.Events = hookmapv1.NewEventServiceClient(conn)
	h.Webhooks = hookmapv1.NewWebhookServiceClient(conn)
	h.Destinations = hookmapv1.NewDestinationServiceClient(conn)
}

func (h *Harness) stop() {
	if h.Conn != nil {
		_ = h.Conn.Close()
		h.Conn = nil
	}
	if h.App != nil {
		h.App.Stop()
		h.App = nil
	}
}

// Stop stops hookmap before the test ends (a test that inspects what it left on disk).
func (h *Harness) Stop() { h.stop() }

// Restart stops hookmap and starts it again on the same ports and data dir.
func (h *Harness) Restart() {
	h.stop()
	h.start()
}

// Ctx returns a context that ends with the test (or after 30 s).
func (h *Harness) Ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	h.T.Cleanup(cancel)
	return ctx
}

// As returns h.Ctx() carrying `authorization: Bearer token` and, when given, the
// workspace header (for the admin token).
func (h *Harness) As(token string, workspace ...string) context.Context {
	kv := []string{"authorization", "Bearer " + token}
	if len(workspace) > 0 {
		kv = append(kv, "x-hookmap-workspace", workspace[0])
	}
	return metadata.AppendToOutgoingContext(h.Ctx(), kv...)
}

// Response is a received HTTP response with its body read.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends a request to url with body and headers (alternating name, value).
func (h *Harness) Do(method, url string, body []byte, headers ...string) *Response {
	h.T.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(h.T, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(h.T, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(h.T, err)
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// PostJSON posts a JSON body.
func (h *Harness) PostJSON(url, body string, headers ...string) *Response {
	h.T.Helper()
	return h.Do(http.MethodPost, url, []byte(body), append([]string{"Content-Type", "application/json"}, headers...)...)
}

// Hook returns the URL of a subscription's hook, with the path relative to BaseURL.
func (h *Harness) Hook(path string) string {
	return strings.TrimRight(h.BaseURL, "/") + path
}
