package hookmap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
)

// WorkspaceHeader is the metadata key that names the workspace an admin token acts on.
const WorkspaceHeader = "x-hookmap-workspace"

// DefaultReconnectBackoff is how fast a client reconnects after a failure, unless
// WithReconnectBackoff says otherwise.
var DefaultReconnectBackoff = Backoff{Initial: 250 * time.Millisecond, Max: 5 * time.Second, Multiplier: 1.6, Jitter: 0.2}

// Client is a connection to hookmap with typed access to every hookmap.v1 service. It is
// safe for concurrent use; Close it when done.
//
// Each service field is the generated client of the service plus an iterator per List
// RPC: ListX pages, AllX yields every item of every page (see ConnectionService).
type Client struct {
	Connectors    ConnectorService
	Connections   ConnectionService
	Subscriptions SubscriptionService
	Events        EventService
	Webhooks      WebhookService
	Admin         AdminService
	Destinations  DestinationService

	conn      *grpc.ClientConn
	log       *slog.Logger
	reconnect Backoff
}

type dialConfig struct {
	insecure  bool
	tls       *tls.Config
	token     string
	workspace string
	retry     RetryPolicy
	reconnect Backoff
	log       *slog.Logger
	extra     []grpc.DialOption
}

// Option configures Dial.
type Option func(*dialConfig)

// WithInsecure connects without TLS, as `hookmap serve` listens. A token given with
// WithToken then travels in clear: use it on loopback, or on a network you trust (a
// service mesh that encrypts between pods).
func WithInsecure() Option { return func(c *dialConfig) { c.insecure = true } }

// WithTLS connects with TLS configured by cfg (nil: the system's roots, the server's
// host name). TLS with the system's roots is the default; this option customizes it
// (a private CA, client certificates).
func WithTLS(cfg *tls.Config) Option {
	return func(c *dialConfig) { c.insecure, c.tls = false, cfg }
}

// WithToken sends `authorization: Bearer <token>` with every call: the admin token or a
// workspace API key. An empty token sends nothing (dev mode needs none).
func WithToken(token string) Option { return func(c *dialConfig) { c.token = token } }

// WithWorkspace sends the x-hookmap-workspace header with every call: the workspace the
// admin token acts on (a workspace API key always acts on its own).
func WithWorkspace(id string) Option { return func(c *dialConfig) { c.workspace = id } }

// WithRetry sets the retry policy of unary calls that are safe to retry (see
// RetryPolicy). RetryPolicy{} turns retries off.
func WithRetry(p RetryPolicy) Option { return func(c *dialConfig) { c.retry = p } }

// WithReconnectBackoff sets how fast the connection and Consume's streams are
// re-established after a failure (default DefaultReconnectBackoff; a zero Backoff means
// the default).
func WithReconnectBackoff(b Backoff) Option { return func(c *dialConfig) { c.reconnect = b } }

// WithLogger sets the logger of Consume's reconnects, handler failures and failed acks
// (default slog.Default()). nil logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(c *dialConfig) {
		if l == nil {
			l = slog.New(slog.NewTextHandler(io.Discard, nil))
		}
		c.log = l
	}
}

// WithDialOptions adds gRPC dial options (interceptors, a custom dialer, message size
// limits), applied after the client's own.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *dialConfig) { c.extra = append(c.extra, opts...) }
}

// Dial checks the options and prepares a connection to target ("host:port", or any
// gRPC target). It does not wait for the server: the first call connects, and a service
// may start before hookmap does (calls retry as their policy allows, Consume until its
// context ends). It fails only on bad options or when ctx has already ended.
func Dial(ctx context.Context, target string, opts ...Option) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if target == "" {
		return nil, errors.New("hookmap: Dial: empty target")
	}
	cfg := dialConfig{retry: DefaultRetryPolicy, reconnect: DefaultReconnectBackoff, log: slog.Default()}
	for _, o := range opts {
		o(&cfg)
	}
	cfg.reconnect = cfg.reconnect.or(DefaultReconnectBackoff)
	cfg.retry.Backoff = cfg.retry.Backoff.or(DefaultRetryPolicy.Backoff)
	if cfg.reconnect.Initial <= 0 || cfg.retry.Backoff.Initial <= 0 {
		return nil, errors.New("hookmap: Dial: a backoff needs a positive Initial delay")
	}
	transport := insecure.NewCredentials()
	if !cfg.insecure {
		tc := cfg.tls
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		transport = credentials.NewTLS(tc)
	}
	maxDelay := cfg.reconnect.Max
	if maxDelay < cfg.reconnect.Initial {
		maxDelay = cfg.reconnect.Initial
	}
	dopts := []grpc.DialOption{
		grpc.WithTransportCredentials(transport),
		grpc.WithUserAgent("hookmap-go"),
		grpc.WithChainUnaryInterceptor(cfg.retry.unaryInterceptor),
		// gRPC's own default waits up to 2 minutes between connection attempts; a consumer
		// wants to be back soon after a restart.
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{
			BaseDelay: cfg.reconnect.Initial, Multiplier: max(cfg.reconnect.Multiplier, 1),
			Jitter: cfg.reconnect.Jitter, MaxDelay: maxDelay,
		}, MinConnectTimeout: 20 * time.Second}),
		// Finds a dead connection under an idle stream (the server permits pings every 10 s).
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	}
	if cfg.token != "" || cfg.workspace != "" {
		dopts = append(dopts, grpc.WithPerRPCCredentials(callCredentials{
			token: cfg.token, workspace: cfg.workspace, secure: !cfg.insecure,
		}))
	}
	conn, err := grpc.NewClient(target, append(dopts, cfg.extra...)...)
	if err != nil {
		return nil, fmt.Errorf("hookmap: Dial %s: %w", target, err)
	}
	return newClient(conn, cfg.log, cfg.reconnect), nil
}

func newClient(conn *grpc.ClientConn, log *slog.Logger, reconnect Backoff) *Client {
	return &Client{
		Connectors:    ConnectorService{hookmapv1.NewConnectorServiceClient(conn)},
		Connections:   ConnectionService{hookmapv1.NewConnectionServiceClient(conn)},
		Subscriptions: SubscriptionService{hookmapv1.NewSubscriptionServiceClient(conn)},
		Events:        EventService{hookmapv1.NewEventServiceClient(conn)},
		Webhooks:      WebhookService{hookmapv1.NewWebhookServiceClient(conn)},
		Admin:         AdminService{hookmapv1.NewAdminServiceClient(conn)},
		Destinations:  DestinationService{hookmapv1.NewDestinationServiceClient(conn)},
		conn:          conn,
		log:           log,
		reconnect:     reconnect,
	}
}

// Conn returns the underlying gRPC connection (for health checks or other services).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection. Calls still running fail, and so does Consume.
func (c *Client) Close() error { return c.conn.Close() }

// closed reports whether Close was called.
func (c *Client) closed() bool { return c.conn.GetState() == connectivity.Shutdown }

// callCredentials sends the token and the workspace with every call.
type callCredentials struct {
	token, workspace string
	secure           bool
}

func (c callCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	md := make(map[string]string, 2)
	if c.token != "" {
		md["authorization"] = "Bearer " + c.token
	}
	if c.workspace != "" {
		md[WorkspaceHeader] = c.workspace
	}
	return md, nil
}

// RequireTransportSecurity keeps the token off a plaintext connection unless the caller
// chose one with WithInsecure.
func (c callCredentials) RequireTransportSecurity() bool { return c.secure }
