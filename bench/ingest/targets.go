package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/hookmap/hookmap/bench/internal/promtext"
	"github.com/hookmap/hookmap/clients/go/hookmap"
	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
)

// startTimeout bounds a subprocess's start, until it is ready for webhooks.
const startTimeout = 60 * time.Second

// target is a running system under test.
type target struct {
	name    string
	proc    *proc
	url     string // where webhooks go
	sampler *sampler
	// walWritten reads the bytes the system's writer has appended to its WAL so far.
	walWritten func(ctx context.Context) (int64, error)
	// commits reads the writer's commits so far.
	commits func(ctx context.Context) (commitStats, error)
	client  *hookmap.Client // hookmap's gRPC client; nil for the pipeline
	profile string          // where the CPU profile of its throughput phase goes ("": none)
}

// stop stops the subprocess and what watches it.
func (t *target) stop() {
	if t.client != nil {
		_ = t.client.Close()
	}
	if t.sampler != nil {
		t.sampler.close()
	}
	t.proc.stop()
}

// startPipeline starts the pipeline with its database in dir and waits until it listens.
func startPipeline(ctx context.Context, bin, dir string, env []string) (*target, error) {
	db := filepath.Join(dir, "pipeline.db")
	lines := make(chan string, 16)
	p, err := startProc("pipeline", bin, []string{"-addr", "127.0.0.1:0", "-db", db}, env, lines)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		select {
		case line := <-lines:
			addr, ok := strings.CutPrefix(line, "listening on ")
			if !ok {
				continue
			}
			if !strings.HasPrefix(addr, "127.0.0.1:") {
				p.stop()
				return nil, fmt.Errorf("pipeline listens on %s, not on 127.0.0.1", addr)
			}
			base := "http://" + addr
			return &target{
				name: "pipeline", proc: p, url: base + "/hooks/bench", sampler: newSampler(p.pid(), db+"-wal"),
				walWritten: func(ctx context.Context) (int64, error) { return pipelineWAL(ctx, base) },
				commits:    func(ctx context.Context) (commitStats, error) { return pipelineCommits(ctx, base) },
			}, nil
		case <-p.exited:
			return nil, p.diedErr()
		case <-ctx.Done():
			p.stop()
			return nil, fmt.Errorf("pipeline did not print its address: %w", context.Cause(ctx))
		}
	}
}

// pipelineStats is the pipeline's GET /stats.
type pipelineStats struct {
	WALWrittenBytes *int64 `json:"wal_written_bytes"`
	Commits         int64  `json:"commits"`
	Committed       int64  `json:"committed"`
	CommitNanos     int64  `json:"commit_nanos"`
}

func getPipelineStats(ctx context.Context, base string) (*pipelineStats, error) {
	b, err := promtext.Body(ctx, base+"/stats")
	if err != nil {
		return nil, err
	}
	var stats pipelineStats
	if err := json.Unmarshal(b, &stats); err != nil || stats.WALWrittenBytes == nil {
		return nil, fmt.Errorf("pipeline /stats: unexpected answer %q", b)
	}
	return &stats, nil
}

// pipelineWAL reads the pipeline's WAL bytes written.
func pipelineWAL(ctx context.Context, base string) (int64, error) {
	st, err := getPipelineStats(ctx, base)
	if err != nil {
		return 0, err
	}
	return *st.WALWrittenBytes, nil
}

// pipelineCommits reads the pipeline's commits.
func pipelineCommits(ctx context.Context, base string) (commitStats, error) {
	st, err := getPipelineStats(ctx, base)
	if err != nil {
		return commitStats{}, err
	}
	return commitStats{Commits: st.Commits, Ops: st.Committed, Time: time.Duration(st.CommitNanos)}, nil
}

// commitStats counts a writer's commits: how many, the writes they held, the time they
// took (from the transaction's start to its COMMIT's return, fsync included).
type commitStats struct {
	Commits, Ops int64
	Time         time.Duration
}

func (c commitStats) sub(d commitStats) commitStats {
	return commitStats{c.Commits - d.Commits, c.Ops - d.Ops, c.Time - d.Time}
}

// hookmap's histograms of its store's commits.
const (
	commitBatchMetric    = "hookmap_store_commit_batch_size"
	commitDurationMetric = "hookmap_store_commit_duration_seconds"
)

// hookmapCommits reads hookmap's commit histograms from its /metrics.
func hookmapCommits(ctx context.Context, base string) (commitStats, error) {
	fams, err := promtext.Get(ctx, base+"/metrics")
	if err != nil {
		return commitStats{}, err
	}
	n, ops := fams.Histogram(commitBatchMetric)
	_, secs := fams.Histogram(commitDurationMetric)
	return commitStats{Commits: int64(n), Ops: int64(ops), Time: time.Duration(secs * float64(time.Second))}, nil
}

// walMetric is hookmap's counter of the bytes its writer appended to the SQLite WAL.
const walMetric = "hookmap_store_wal_written_bytes_total"

// hookmapWAL reads walMetric from hookmap's /metrics.
func hookmapWAL(ctx context.Context, base string) (int64, error) {
	fams, err := promtext.Get(ctx, base+"/metrics")
	if err != nil {
		return 0, err
	}
	v, ok := fams.Value(walMetric)
	if !ok {
		return 0, fmt.Errorf("hookmap /metrics has no %s", walMetric)
	}
	return int64(v), nil
}

// startHookmap starts hookmap serve with its data in dir and the connectors of
// connectors, waits until it is ready, and subscribes to the bench connector's webhook
// event: the target's url is the subscription's webhook URI. A start that loses its
// ports to another process is tried again on other ports.
func startHookmap(ctx context.Context, bin, dir, connectors string, env []string) (*target, error) {
	for attempt := 1; ; attempt++ {
		t, err := startHookmapOnce(ctx, bin, dir, connectors, env)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			return t, err
		}
	}
}

func startHookmapOnce(ctx context.Context, bin, dir, connectors string, env []string) (*target, error) {
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	// As production runs it: auth on (an admin token), the secret key given rather than a
	// key file, and the service (the consumer) on a workspace API key of its own.
	adminToken, secretKey := hex.EncodeToString(randomBytes(32)), hex.EncodeToString(randomBytes(32))
	p, err := startProc("hookmap", bin, []string{
		"serve", "--data-dir", dir, "--grpc-addr", grpcAddr, "--http-addr", httpAddr,
		"--public-url", "http://" + httpAddr, "--connectors", connectors, "--log-level", "warn",
		"--admin-token", adminToken, "--secret-key", secretKey,
	}, env, nil)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			p.stop()
		}
	}()
	quiet := hookmap.WithLogger(slog.New(slog.DiscardHandler))
	admin, err := hookmap.Dial(ctx, grpcAddr, hookmap.WithInsecure(), hookmap.WithToken(adminToken), quiet)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	if err := waitServing(ctx, admin, p); err != nil {
		return nil, err
	}
	base := "http://" + httpAddr
	if _, err := promtext.Body(ctx, base+"/readyz"); err != nil {
		return nil, fmt.Errorf("hookmap /readyz: %w", err)
	}
	adminSvc := hookmapv1.NewAdminServiceClient(admin.Conn())
	ws, err := adminSvc.CreateWorkspace(ctx, &hookmapv1.CreateWorkspaceRequest{Id: "bench", Name: "bench"})
	if err != nil {
		return nil, fmt.Errorf("hookmap CreateWorkspace: %w", err)
	}
	key, err := adminSvc.CreateApiKey(ctx, &hookmapv1.CreateApiKeyRequest{WorkspaceId: ws.GetId(), Name: "bench"})
	if err != nil {
		return nil, fmt.Errorf("hookmap CreateApiKey: %w", err)
	}
	c, err := hookmap.Dial(ctx, grpcAddr, hookmap.WithInsecure(), hookmap.WithToken(key.GetSecret()), quiet)
	if err != nil {
		return nil, err
	}
	t := &target{name: "hookmap", proc: p, client: c}
	defer func() {
		if !ok {
			_ = c.Close()
		}
	}()
	conn, err := hookmapv1.NewConnectionServiceClient(c.Conn()).CreateConnection(ctx, &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "bench", Name: "bench",
	})
	if err != nil {
		return nil, fmt.Errorf("hookmap CreateConnection: %w", err)
	}
	sub, err := hookmapv1.NewSubscriptionServiceClient(c.Conn()).CreateSubscription(ctx, &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: conn.GetId(), EventKey: "webhook", Parameters: &structpb.Struct{},
	})
	if err != nil {
		return nil, fmt.Errorf("hookmap CreateSubscription: %w", err)
	}
	if !strings.HasPrefix(sub.GetWebhookUri(), base+"/") {
		return nil, fmt.Errorf("hookmap's webhook URI %q is not under %s", sub.GetWebhookUri(), base)
	}
	t.url = sub.GetWebhookUri()
	t.sampler = newSampler(p.pid(), filepath.Join(dir, "hookmap.db-wal"))
	t.walWritten = func(ctx context.Context) (int64, error) { return hookmapWAL(ctx, base) }
	t.commits = func(ctx context.Context) (commitStats, error) { return hookmapCommits(ctx, base) }
	ok = true
	return t, nil
}

// waitServing polls gRPC health until hookmap says SERVING.
func waitServing(ctx context.Context, c *hookmap.Client, p *proc) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	health := grpc_health_v1.NewHealthClient(c.Conn())
	for {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		resp, err := health.Check(cctx, &grpc_health_v1.HealthCheckRequest{})
		ccancel()
		if err == nil && resp.GetStatus() == grpc_health_v1.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case <-p.exited:
			return p.diedErr()
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("hookmap was not SERVING within %s", startTimeout), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
