package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/hookmap/hookmap/server/api"
	"github.com/hookmap/hookmap/server/cluster"
	"github.com/hookmap/hookmap/server/console"
	"github.com/hookmap/hookmap/server/core"
	"github.com/hookmap/hookmap/server/destination"
	"github.com/hookmap/hookmap/server/durable"
	"github.com/hookmap/hookmap/server/hub"
	"github.com/hookmap/hookmap/server/jsonapi"
	"github.com/hookmap/hookmap/server/metrics"
	"github.com/hookmap/hookmap/server/netguard"
	"github.com/hookmap/hookmap/server/outgoing"
	"github.com/hookmap/hookmap/server/receiver"
	"github.com/hookmap/hookmap/server/registry"
	"github.com/hookmap/hookmap/server/secrets"
	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/postgres"
	"github.com/hookmap/hookmap/server/store/sqlite"
	"github.com/hookmap/hookmap/server/webhookfile"
)

// App is a running hookmap.
type App struct {
	cfg      Config
	log      *slog.Logger
	store    store.Store
	core     *core.Core
	grpc     *grpc.Server
	health   *health.Server
	http     *receiver.Server
	grpcLis  net.Listener
	httpLis  net.Listener
	hub      *hub.Hub
	cleanups cleanups
	outgoing *outgoing.Sender     // nil when the store keeps no outgoing webhooks
	dests    *destination.Service // nil when the store keeps no destinations
	webhooks *webhookfile.Loader  // nil without --webhooks
	serveErr chan error
	bgCtx    context.Context
	bg       sync.WaitGroup
}

// cleanups is the one list of what Start set up, undone last-in-first-out: by Stop, and
// by a Start that fails halfway (so a failed start leaks no listener, goroutine or file).
type cleanups []func()

func (c *cleanups) add(f func()) { *c = append(*c, f) }

func (c *cleanups) run() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
	*c = nil
}

// StartError is a failed start caused by the configuration: Flag names the setting.
type StartError struct {
	Flag string // e.g. "--grpc-addr"
	Err  error
}

func (e *StartError) Error() string { return e.Flag + ": " + e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

func flagErr(flag string, err error) error { return &StartError{Flag: flag, Err: err} }

// Start opens the store, loads connectors, listens on both ports and serves. It returns
// once both listeners accept connections. Errors caused by a setting are *StartError.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, serveErr: make(chan error, 2)}
	if err := a.start(ctx); err != nil {
		a.cleanups.run()
		return nil, err
	}
	return a, nil
}

// start sets everything up in order; each step adds what undoes it to a.cleanups, so
// Stop (and a failed start) tear down in the reverse order: health NOT_SERVING, streams
// ended, gRPC drained, HTTP drained, background work stopped, store closed.
func (a *App) start(ctx context.Context) error {
	cfg, log := a.cfg, a.log
	if !cfg.Postgres() || cfg.SecretKey == "" { // the SQLite file or the key file lives there
		if err := ensureDir(cfg.DataDir); err != nil {
			return flagErr("--data-dir", err)
		}
	}
	key, err := a.secretKey()
	if err != nil {
		return err
	}
	box, err := secrets.NewBox(key)
	if err != nil {
		return flagErr("--secret-key", err)
	}
	m := metrics.New()
	st, err := openStore(ctx, cfg, box, log.With("component", "store"), m)
	if err != nil {
		return flagErr("--store", fmt.Errorf("open %s: %w", cfg.StoreName(), err))
	}
	a.store = st
	a.cleanups.add(func() {
		if err := st.Close(); err != nil {
			log.Error("close store", "err", err)
		}
	})
	if err := ensureWorkspace(ctx, st, api.DefaultWorkspace); err != nil {
		return err
	}
	reg, diags := registry.New(cfg.Connectors...)
	for _, d := range diags {
		log.Warn("connector problem (connector not loaded)", "problem", d.String())
	}
	for _, c := range reg.Connectors() {
		log.Info("connector loaded", "connector", c.Key, "summary", c.Summary())
	}

	if a.grpcLis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return flagErr("--grpc-addr", err)
	}
	a.cleanups.add(func() { _ = a.grpcLis.Close() })
	if a.httpLis, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return flagErr("--http-addr", err)
	}
	a.cleanups.add(func() { _ = a.httpLis.Close() })
	publicURL := cfg.PublicURL
	if publicURL == "" {
		publicURL = "http://" + a.httpLis.Addr().String()
	}

	a.hub = hub.New()
	a.core = &core.Core{
		Store:        st,
		Box:          box,
		Registry:     reg,
		Hub:          a.hub,
		HTTP:         netguard.NewClient(netguard.Options{AllowPrivate: cfg.AllowPrivateNetworks, Timeout: 30 * time.Second, FollowRedirects: true, MaxRedirects: 5}),
		PublicURL:    publicURL,
		Logger:       log.With("component", "core"),
		Now:          cfg.Now,
		AuthMetrics:  m,
		FetchMetrics: m,

		EvalTimeout: cfg.EvalTimeout,
	}

	if err := a.startOutgoing(ctx, st, box); err != nil {
		return err
	}

	bgCtx, stopBg := context.WithCancel(context.Background())
	a.bgCtx = bgCtx
	a.cleanups.add(func() { stopBg(); a.bg.Wait() })
	a.goBackground(func(ctx context.Context) { a.prune(ctx, time.Hour) })
	if sh, ok := st.(store.Shared); ok {
		relay := &cluster.Relay{Store: sh, Hub: a.hub, Poll: cfg.SharedPoll, Logger: log.With("component", "cluster")}
		a.goBackground(relay.Run)
	}
	if cfg.RefreshInterval > 0 {
		a.goBackground(func(ctx context.Context) { a.core.RunScheduler(ctx, cfg.RefreshInterval) })
	}
	a.goBackground(a.dests.Run)
	if cfg.FetchInterval > 0 {
		a.goBackground(func(ctx context.Context) { a.core.RunFetcher(ctx, cfg.FetchInterval) })
	}

	a.newGRPC(m, st)
	if err := a.serveHTTP(m, st); err != nil {
		return err
	}
	a.serveGRPC()

	mode := "auth required"
	if cfg.DevMode() {
		mode = "dev mode: no auth, workspace default"
	}
	log.Info("hookmap started", "grpc", a.grpcLis.Addr().String(), "http", a.httpLis.Addr().String(),
		"public_url", publicURL, "store", cfg.StoreName(), "connectors", cfg.Connectors, "auth", mode)
	return nil
}

// openStore opens the store cfg names: PostgreSQL for a postgres:// URL, else SQLite.
func openStore(ctx context.Context, cfg Config, box *secrets.Box, log *slog.Logger, m *metrics.Metrics) (store.Store, error) {
	if cfg.Postgres() {
		return postgres.Open(ctx, cfg.Store, postgres.Options{Logger: log, Registerer: m.Registry})
	}
	return sqlite.Open(ctx, cfg.StorePath(), sqlite.Options{Logger: log, Registerer: m.Registry, SealState: core.StateSealer(box)})
}

// startOutgoing makes the outgoing webhooks' Sender, with HTTP clients derived from the
// core's SSRF-guarded client (loopback and private targets allowed exactly when the server
// allows them), and the destinations' Service, and applies the webhooks file. A webhooks
// file that cannot be read fails the start.
func (a *App) startOutgoing(ctx context.Context, st store.Store, box *secrets.Box) error {
	log := a.log.With("component", "outgoing")
	base, _ := a.core.HTTP.(*http.Client)
	sender, err := outgoing.New(outgoing.Config{
		Store: st, Box: box, Clients: outgoing.ClientsFrom(base), Logger: log, Now: a.cfg.Now, EvalTimeout: a.cfg.EvalTimeout,
		// A webhook a destination sends to cannot be deleted.
		Users: func(ctx context.Context, workspaceID, webhookID string) ([]string, error) {
			if a.dests == nil {
				return nil, nil
			}
			return a.dests.Users(ctx, workspaceID, webhookID)
		},
	})
	if err != nil {
		return err
	}
	a.outgoing = sender
	a.cleanups.add(sender.Close)
	a.dests, err = destination.New(destination.Config{
		Store: st, Sender: sender, Hub: a.hub, Logger: a.log.With("component", "destinations"), Now: a.cfg.Now,
		RetryBase: a.cfg.DestinationRetryBase, RetryCap: a.cfg.DestinationRetryCap,
	})
	if err != nil {
		return err
	}
	if a.cfg.WebhooksFile == "" {
		return nil
	}
	a.webhooks = &webhookfile.Loader{
		Path: a.cfg.WebhooksFile, Sender: sender, DefaultWorkspace: api.DefaultWorkspace,
		Logger: a.log.With("component", "webhooks-file"),
	}
	if _, err := a.webhooks.Reload(ctx); err != nil {
		return flagErr("--webhooks", err)
	}
	return nil
}

// Reload reloads the connectors and the webhooks file (SIGHUP). Problems are logged.
func (a *App) Reload(ctx context.Context) {
	res := a.core.Registry.Reload()
	for _, d := range res.Diagnostics {
		a.log.Warn("connector problem", "problem", d.String())
	}
	a.log.Info("connectors reloaded", "loaded", len(res.Loaded), "kept_previous", res.KeptPrevious, "problems", len(res.Diagnostics))
	if a.webhooks != nil {
		if _, err := a.webhooks.Reload(ctx); err != nil {
			a.log.Error("webhooks file not reloaded", "err", err)
		}
	}
}

// goBackground runs f until Stop.
func (a *App) goBackground(f func(ctx context.Context)) {
	a.bg.Add(1)
	go func() { defer a.bg.Done(); f(a.bgCtx) }()
}

// httpHandler is the HTTP port: the receiver (hooks, health, metrics) and, unless turned
// off, the JSON API under /api/ and the console (which needs the API) under /console/.
func (a *App) httpHandler(m *metrics.Metrics, st store.Store) (http.Handler, *receiver.Receiver, error) {
	rc := &receiver.Receiver{
		Core: a.core, Metrics: m, Logger: a.log.With("component", "receiver"), MaxBody: a.cfg.MaxBodyBytes,
		Ready: st.Ping,
	}
	if !a.cfg.JSONAPI {
		if a.cfg.Console {
			a.log.Info("console off: it needs the JSON API (--json-api)")
		}
		return rc.Handler(), rc, nil
	}
	mux := http.NewServeMux()
	mux.Handle("/", rc.Handler())
	apiHandler, err := jsonapi.New(a.grpc, append([]string{healthpb.Health_ServiceDesc.ServiceName}, api.ServiceNames...), a.cfg.DevMode(), a.apiMessageBytes())
	if err != nil {
		return nil, nil, err
	}
	mux.Handle(jsonapi.Prefix+"/", apiHandler)
	if a.cfg.Console {
		ch := console.New(console.Options{AuthRequired: !a.cfg.DevMode()})
		mux.Handle(console.Prefix, ch)
		mux.Handle(strings.TrimSuffix(console.Prefix, "/"), ch)
		mux.Handle("GET /{$}", http.RedirectHandler(console.Prefix, http.StatusFound))
	}
	return receiver.RefuseConnect(mux), rc, nil
}

// apiMessageBytes bounds a JSON API message (jsonapi.New), and so the body of any request
// to the HTTP port's other routes: at least the gRPC server's bound, and enough for a
// response that carries a kept webhook body (in base64, with its headers around it).
func (a *App) apiMessageBytes() int64 {
	return max(jsonapi.MaxMessageBytes, a.cfg.MaxBodyBytes*4/3+1<<20)
}

func (a *App) serveHTTP(m *metrics.Metrics, st store.Store) error {
	h, rc, err := a.httpHandler(m, st)
	if err != nil {
		return err
	}
	httpLog := a.log.With("component", "http")
	a.http = &receiver.Server{
		HTTP: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(httpLog.Handler(), slog.LevelWarn),
		},
		Fast:                rc.FastServer(receiver.NetHTTP(h, a.apiMessageBytes()), httpLog),
		FirstRequestTimeout: 10 * time.Second,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.http.Serve(a.httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.serveErr <- err
		}
	}()
	a.cleanups.add(func() {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
		defer cancel()
		if err := a.http.Shutdown(ctx); err != nil {
			a.log.Warn("HTTP shutdown", "err", err)
			_ = a.http.Close()
		}
		<-done
	})
	return nil
}

// newGRPC builds the gRPC server with every service registered; serveGRPC serves it. The
// JSON API transcodes to this same server.
func (a *App) newGRPC(m *metrics.Metrics, st store.Store) {
	chain := &api.Chain{Logger: a.log.With("component", "grpc"), Metrics: m, Auth: &api.Auth{
		DevMode: a.cfg.DevMode(), AdminToken: a.cfg.AdminToken, Store: st,
		Skip: map[string]bool{"/grpc.health.v1.Health/Check": true, "/grpc.health.v1.Health/Watch": true, "/grpc.health.v1.Health/List": true},
	}}
	a.grpc = grpc.NewServer(
		grpc.ChainUnaryInterceptor(chain.Unary),
		grpc.ChainStreamInterceptor(chain.Stream),
		grpc.MaxRecvMsgSize(jsonapi.MaxMessageBytes), // the JSON API transcodes with the same bound
		grpc.ForceServerCodecV2(api.Codec{}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Minute, Timeout: 20 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	(&api.Services{
		Core: a.core, Logger: a.log.With("component", "grpc"), Metrics: m, Outgoing: a.outgoing, WebhooksFile: a.webhooks,
		Destinations: a.dests,
	}).Register(a.grpc)
	a.health = health.NewServer()
	healthpb.RegisterHealthServer(a.grpc, a.health)
	reflection.Register(a.grpc)
}

func (a *App) serveGRPC() {
	a.CheckHealth(context.Background())
	a.goBackground(a.watchHealth)

	done := make(chan struct{})
	go func() { defer close(done); a.serveErr <- a.grpc.Serve(a.grpcLis) }()
	a.cleanups.add(func() {
		stopped := make(chan struct{})
		go func() { a.grpc.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(a.cfg.ShutdownTimeout):
			a.grpc.Stop()
		}
		<-done
	})
	// Run first at Stop: streams end with UNAVAILABLE so GracefulStop is not held by them,
	// and health says NOT_SERVING before anything stops.
	a.cleanups.add(a.hub.Shutdown)
	a.cleanups.add(a.health.Shutdown)
}

// healthInterval is how often gRPC health asks the store.
const healthInterval = 5 * time.Second

func (a *App) watchHealth(ctx context.Context) {
	t := time.NewTicker(healthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.CheckHealth(ctx)
		}
	}
}

// CheckHealth asks the store and sets gRPC health (the server and every hookmap service)
// to SERVING or NOT_SERVING. It runs at start and then every few seconds; it returns the
// store's error, if any.
func (a *App) CheckHealth(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := a.store.Ping(ctx)
	st := healthpb.HealthCheckResponse_SERVING
	if err != nil {
		st = healthpb.HealthCheckResponse_NOT_SERVING
		if ctx.Err() == nil || errors.Is(err, store.ErrClosed) {
			a.log.Warn("store not ready: gRPC health NOT_SERVING", "err", err)
		}
	}
	a.health.SetServingStatus("", st)
	for _, name := range api.ServiceNames {
		a.health.SetServingStatus(name, st)
	}
	return err
}

func (a *App) secretKey() ([]byte, error) {
	if a.cfg.SecretKey != "" {
		k, err := secrets.ParseKey(a.cfg.SecretKey)
		if err != nil {
			return nil, flagErr("--secret-key", err)
		}
		return k, nil
	}
	path := a.cfg.DataDir + string(os.PathSeparator) + "secret.key"
	if !a.cfg.DevMode() {
		a.log.Warn("no --secret-key given: using the key file in the data dir; set --secret-key in production", "key_file", path)
	}
	k, err := secrets.LoadOrCreateKeyFile(path)
	if err != nil {
		return nil, flagErr("--data-dir", fmt.Errorf("key file: %w", err))
	}
	return k, nil
}

// ensureDir creates the data dir (private to this user) unless it exists, and fails
// clearly when the path is something else than a folder.
func ensureDir(dir string) error {
	if err := durable.MkdirAll(dir, 0o700); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) && errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("%s is not a folder", dir)
		}
		return err
	}
	return nil
}

func ensureWorkspace(ctx context.Context, st store.Store, id string) error {
	_, err := st.GetWorkspace(ctx, id)
	if err == nil {
		return nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	err = st.CreateWorkspace(ctx, &store.Workspace{ID: id, Name: id, CreateTime: time.Now().UTC()})
	if errors.Is(err, store.ErrAlreadyExists) {
		return nil
	}
	return err
}

// GRPCAddr is the address the gRPC server listens on.
func (a *App) GRPCAddr() string { return a.grpcLis.Addr().String() }

// HTTPAddr is the address the receiver listens on.
func (a *App) HTTPAddr() string { return a.httpLis.Addr().String() }

// Core exposes the service's core (tests).
func (a *App) Core() *core.Core { return a.core }

// Wait blocks until a server fails or ctx ends.
func (a *App) Wait(ctx context.Context) error {
	select {
	case err := <-a.serveErr:
		return err
	case <-ctx.Done():
		return nil
	}
}

// Stop shuts down in the reverse order of Start (see start): health NOT_SERVING, streams
// ended, gRPC calls finished, in-flight deliveries finished, background work stopped, and
// the store closed.
func (a *App) Stop() {
	a.cleanups.run()
	a.log.Info("hookmap stopped")
}

// Store is the service's store (tests).
func (a *App) Store() store.Store { return a.store }

// prune removes deliveries, idempotency keys, expired authorizations and (when
// configured) events past their retention, at start and then every interval.
func (a *App) prune(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		now := time.Now()
		if a.cfg.Now != nil {
			now = a.cfg.Now()
		}
		r := store.Retention{
			DeliveriesBefore:      now.Add(-a.cfg.DeliveryRetention),
			IdempotencyKeysBefore: now.Add(-a.cfg.IdempotencyWindow),
		}
		if a.cfg.EventRetention > 0 {
			r.EventsBefore = now.Add(-a.cfg.EventRetention)
		}
		res, err := a.store.Prune(ctx, r)
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Warn("prune", "err", err)
		case err == nil && res.Deliveries+res.IdempotencyKeys+res.Events > 0:
			a.log.Info("pruned", "deliveries", res.Deliveries, "idempotency_keys", res.IdempotencyKeys, "events", res.Events)
		}
		n, err := a.store.PruneAuthStates(ctx, now)
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Warn("prune expired authorizations", "err", err)
		case err == nil && n > 0:
			a.log.Info("pruned", "expired_authorizations", n)
		}
		n, err = a.store.PruneFetches(ctx, now.Add(-a.cfg.DeliveryRetention))
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Warn("prune fetches", "err", err)
		case err == nil && n > 0:
			a.log.Info("pruned", "failed_fetches", n)
		}
		n, err = a.store.PruneInvocations(ctx, now.Add(-a.cfg.InvocationRetention))
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Warn("prune invocations", "err", err)
		case err == nil && n > 0:
			a.log.Info("pruned", "invocations", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
