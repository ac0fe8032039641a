package app

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// Config is the service's configuration; flags and HOOKMAP_* env vars map onto it.
type Config struct {
	GRPCAddr   string
	HTTPAddr   string
	PublicURL  string // "" → http://{HTTP listener address}
	DataDir    string
	Store      string // a SQLite path or a postgres:// URL; "" → {DataDir}/hookmap.db
	Connectors []string
	// WebhooksFile is a YAML or JSON file of declared outgoing webhooks ("": none),
	// applied at start and on every reload (SIGHUP, WebhookService.ReloadWebhooks).
	WebhooksFile         string
	AdminToken           string
	SecretKey            string
	AllowPrivateNetworks bool
	LogFormat            string // text | json
	LogLevel             string // debug | info | warn | error
	MaxBodyBytes         int64
	// EvalTimeout bounds a mapping method's run and the formulas of one delivery (0: 1s).
	EvalTimeout     time.Duration
	ShutdownTimeout time.Duration
	// RefreshInterval is how often the refresh scheduler looks for due subscriptions;
	// 0 disables the scheduler (tests drive it by hand).
	RefreshInterval time.Duration
	// FetchInterval is how often the fetcher looks for due fetches besides being woken by
	// the deliveries that queue them (retries, fetches left by a restart); 0 disables the
	// fetcher (tests run fetches by hand).
	FetchInterval time.Duration
	// DeliveryRetention is how long delivery records (and kept requests) are kept.
	DeliveryRetention time.Duration
	// IdempotencyWindow is how long an event id is remembered to drop re-deliveries.
	IdempotencyWindow time.Duration
	// EventRetention is how long events are kept (0: forever).
	EventRetention time.Duration
	// InvocationRetention is how long outgoing webhook invocation records are kept.
	InvocationRetention time.Duration
	// JSONAPI serves every hookmap.v1 RPC as JSON over HTTP under /api/ on the HTTP port.
	JSONAPI bool
	// Console serves the web console under /console/ on the HTTP port (it needs JSONAPI).
	Console bool
	// SharedPoll is how often, with a store several replicas share (Postgres), every
	// stream reads the store again whatever was notified (0: cluster.DefaultPoll).
	SharedPoll time.Duration
	// DestinationRetryBase and DestinationRetryCap bound the backoff between attempts of
	// an event a destination fails to deliver (0: the defaults, 5s doubling up to 30m).
	DestinationRetryBase, DestinationRetryCap time.Duration
	// Now is the clock of refresh scheduling, signature tolerances and destination retry
	// windows (tests inject one).
	Now func() time.Time
}

// Defaults returns the documented defaults.
func Defaults() Config {
	return Config{
		GRPCAddr:        "127.0.0.1:7070",
		HTTPAddr:        "127.0.0.1:8080",
		PublicURL:       "http://127.0.0.1:8080",
		DataDir:         "./data",
		Connectors:      []string{"./connectors"},
		LogFormat:       "text",
		LogLevel:        "info",
		MaxBodyBytes:    1 << 20,
		EvalTimeout:     time.Second,
		ShutdownTimeout: 20 * time.Second,
		RefreshInterval: 5 * time.Second,
		FetchInterval:   time.Second,

		DeliveryRetention:   7 * 24 * time.Hour,
		InvocationRetention: 30 * 24 * time.Hour,
		IdempotencyWindow:   7 * 24 * time.Hour,
		JSONAPI:             true,
		Console:             true,
	}
}

// DevMode reports whether the service runs without auth: no admin token and gRPC on a
// loopback address.
func (c Config) DevMode() bool {
	return c.AdminToken == "" && isLoopback(c.GRPCAddr)
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// StorePath returns the SQLite file to open.
func (c Config) StorePath() string {
	if c.Store != "" {
		return c.Store
	}
	return filepath.Join(c.DataDir, "hookmap.db")
}

// Postgres reports whether the store is a PostgreSQL database (a postgres:// URL).
func (c Config) Postgres() bool {
	return strings.HasPrefix(c.Store, "postgres://") || strings.HasPrefix(c.Store, "postgresql://")
}

// StoreName is the store for logs and messages: the SQLite path, or the Postgres URL
// without its password.
func (c Config) StoreName() string {
	if !c.Postgres() {
		return c.StorePath()
	}
	u, err := url.Parse(c.Store)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	_, _, grpcErr := net.SplitHostPort(c.GRPCAddr)
	if grpcErr != nil {
		errs = append(errs, fmt.Errorf("--grpc-addr %q: %w", c.GRPCAddr, grpcErr))
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("--http-addr %q: %w", c.HTTPAddr, err))
	}
	if grpcErr == nil && c.AdminToken == "" && !isLoopback(c.GRPCAddr) {
		errs = append(errs, fmt.Errorf("--grpc-addr %s is not a loopback address: set --admin-token (dev mode without auth is only allowed on loopback)", c.GRPCAddr))
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		errs = append(errs, errors.New("--admin-token must be at least 16 characters"))
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--public-url %q must be an absolute http(s) URL", c.PublicURL))
		}
	}
	if c.Postgres() && c.SecretKey == "" {
		// Each replica would otherwise make a key file of its own and could not open the
		// secrets the others sealed.
		errs = append(errs, flagErr("--secret-key", errors.New("required with a Postgres --store: every replica must seal and open secrets with the same key")))
	}
	if len(c.Connectors) == 0 {
		errs = append(errs, errors.New("--connectors: give at least one folder"))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("--log-format %q: use text or json", c.LogFormat))
	}
	if c.DeliveryRetention < time.Hour {
		errs = append(errs, errors.New("--delivery-retention must be at least 1h"))
	}
	if c.IdempotencyWindow < time.Minute {
		errs = append(errs, errors.New("--idempotency-window must be at least 1m"))
	}
	if c.InvocationRetention < time.Hour {
		errs = append(errs, errors.New("--invocation-retention must be at least 1h"))
	}
	if c.EventRetention != 0 && c.EventRetention < time.Hour {
		errs = append(errs, errors.New("--event-retention must be 0 (keep) or at least 1h"))
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, errors.New("max body size must be positive"))
	}
	if c.EvalTimeout != 0 && (c.EvalTimeout < 10*time.Millisecond || c.EvalTimeout > time.Minute) {
		errs = append(errs, fmt.Errorf("--eval-timeout %s: use a duration from 10ms to 1m", c.EvalTimeout))
	}
	return errors.Join(errs...)
}
