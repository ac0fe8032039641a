package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/hookmap/hookmap/server/api"
	"github.com/hookmap/hookmap/server/core"
	"github.com/hookmap/hookmap/server/hub"
	"github.com/hookmap/hookmap/server/metrics"
	"github.com/hookmap/hookmap/server/netguard"
	"github.com/hookmap/hookmap/server/receiver"
	"github.com/hookmap/hookmap/server/registry"
	"github.com/hookmap/hookmap/server/secrets"
	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/sqlite"
)

// App is a running hookmap.
type App struct {
	cfg      Config
	log      *slog.Logger
	store    store.Store
	core     *core.Core
	grpc     *grpc.Server
	health   *health.Server
	http     *http.Server
	grpcLis  net.Listener
	httpLis  net.Listener
	hub      *hub.Hub
	cleanups []func()
	done     chan struct{}
	serveErr chan error
	stopBg   context.CancelFunc
	bg       sync.WaitGroup
}

// Start opens the store, loads connectors, listens on both ports and serves. It returns
// once both listeners accept connections.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (a *App, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a = &App{cfg: cfg, log: log, done: make(chan struct{}), serveErr: make(chan error, 2)}
	defer func() {
		if err != nil {
			a.runCleanups()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	key, err := a.secretKey()
	if err != nil {
		return nil, err
	}
	box, err := secrets.NewBox(key)
	if err != nil {
		return nil, err
	}
	m := metrics.New()
	st, err := sqlite.Open(ctx, cfg.StorePath(), sqlite.Options{Logger: log.With("component", "store"), Registerer: m.Registry})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", cfg.StorePath(), err)
	}
	a.store = st
	a.cleanups = append(a.cleanups, func() {
		if err := st.Close(); err != nil {
			log.Error("close store", "err", err)
		}
	})
	if err := ensureWorkspace(ctx, st, api.DefaultWorkspace); err != nil {
		return nil, err
	}
	reg, diags := registry.New(cfg.Connectors...)
	for _, d := range diags {
		log.Warn("connector problem (connector not loaded)", "problem", d.String())
	}
	for _, c := range reg.Connectors() {
		log.Info("connector loaded", "connector", c.Key, "summary", c.Summary())
	}

	a.grpcLis, err = net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return nil, fmt.Errorf("listen gRPC: %w", err)
	}
	a.cleanups = append(a.cleanups, func() { _ = a.grpcLis.Close() })
	a.httpLis, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen HTTP: %w", err)
	}
	a.cleanups = append(a.cleanups, func() { _ = a.httpLis.Close() })
	publicURL := cfg.PublicURL
	if publicURL == "" {
		publicURL = "http://" + a.httpLis.Addr().String()
	}

	a.hub = hub.New()
	a.core = &core.Core{
		Store:     st,
		Box:       box,
		Registry:  reg,
		Hub:       a.hub,
		HTTP:      netguard.NewClient(netguard.Options{AllowPrivate: cfg.AllowPrivateNetworks, Timeout: 30 * time.Second, FollowRedirects: true, MaxRedirects: 5}),
		PublicURL: publicURL,
		Logger:    log.With("component", "core"),
		Now:       cfg.Now,
	}

	chain := &api.Chain{Logger: log.With("component", "grpc"), Metrics: m, Auth: &api.Auth{
		DevMode: cfg.DevMode(), AdminToken: cfg.AdminToken, Store: st,
		Skip: map[string]bool{"/grpc.health.v1.Health/Check": true, "/grpc.health.v1.Health/Watch": true, "/grpc.health.v1.Health/List": true},
	}}
	a.grpc = grpc.NewServer(
		grpc.ChainUnaryInterceptor(chain.Unary),
		grpc.ChainStreamInterceptor(chain.Stream),
		grpc.MaxRecvMsgSize(8<<20),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Minute, Timeout: 20 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	(&api.Services{Core: a.core, Logger: log.With("component", "grpc"), Metrics: m}).Register(a.grpc)
	a.health = health.NewServer()
	healthpb.RegisterHealthServer(a.grpc, a.health)
	reflection.Register(a.grpc)
	a.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	for _, name := range api.ServiceNames {
		a.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}

	rc := &receiver.Receiver{
		Core: a.core, Metrics: m, Logger: log.With("component", "receiver"), MaxBody: cfg.MaxBodyBytes,
		Ready: func(ctx context.Context) error { return st.Ping(ctx) },
	}
	a.http = &http.Server{
		Handler:           rc.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.With("component", "http").Handler(), slog.LevelWarn),
	}
	bgCtx, stopBg := context.WithCancel(context.Background())
	a.stopBg = stopBg
	if cfg.RefreshInterval > 0 {
		a.bg.Add(1)
		go func() { defer a.bg.Done(); a.core.RunScheduler(bgCtx, cfg.RefreshInterval) }()
	}
	a.bg.Add(1)
	go func() { defer a.bg.Done(); a.prune(bgCtx, time.Hour) }()
	go func() { a.serveErr <- a.grpc.Serve(a.grpcLis) }()
	go func() {
		if err := a.http.Serve(a.httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.serveErr <- err
		}
	}()
	mode := "auth required"
	if cfg.DevMode() {
		mode = "dev mode: no auth, workspace default"
	}
	log.Info("hookmap started", "grpc", a.grpcLis.Addr().String(), "http", a.httpLis.Addr().String(),
		"public_url", publicURL, "store", cfg.StorePath(), "connectors", cfg.Connectors, "auth", mode)
	return a, nil
}

func (a *App) secretKey() ([]byte, error) {
	if a.cfg.SecretKey != "" {
		k, err := secrets.ParseKey(a.cfg.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("--secret-key: %w", err)
		}
		return k, nil
	}
	path := a.cfg.DataDir + string(os.PathSeparator) + "secret.key"
	if !a.cfg.DevMode() {
		a.log.Warn("no --secret-key given: using the key file in the data dir; set --secret-key in production", "key_file", path)
	}
	return secrets.LoadOrCreateKeyFile(path)
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

// Stop shuts down in a fixed order: health NOT_SERVING, end streams, stop accepting gRPC
// calls and finish running ones, finish in-flight deliveries, then close the store.
func (a *App) Stop() {
	a.health.Shutdown()
	a.hub.Shutdown()
	stopped := make(chan struct{})
	go func() { a.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(a.cfg.ShutdownTimeout):
		a.grpc.Stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if err := a.http.Shutdown(ctx); err != nil {
		a.log.Warn("HTTP shutdown", "err", err)
	}
	if a.stopBg != nil {
		a.stopBg()
		a.bg.Wait()
	}
	a.runCleanups()
	a.log.Info("hookmap stopped")
}

func (a *App) runCleanups() {
	for i := len(a.cleanups) - 1; i >= 0; i-- {
		a.cleanups[i]()
	}
	a.cleanups = nil
}

// prune removes deliveries, idempotency keys and (when configured) events past their
// retention, at start and then every interval.
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
		if os, ok := a.store.(store.OutgoingStore); ok {
			n, err := os.PruneInvocations(ctx, now.Add(-a.cfg.InvocationRetention))
			switch {
			case err != nil && ctx.Err() == nil:
				a.log.Warn("prune invocations", "err", err)
			case err == nil && n > 0:
				a.log.Info("pruned", "invocations", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
