// Command receiver is hookmap's receiver load harness: it starts hookmap in-process on
// 127.0.0.1 with a fresh SQLite store, creates an example-webhook subscription, and POSTs
// JSON webhooks to it from N concurrent senders for a fixed time or count. It prints
// throughput and latency percentiles of acknowledged (2xx) deliveries.
//
//	go run ./bench/receiver -concurrency 32 -duration 10s
//
// With -store postgres://… it runs on that database instead (in a schema of its own,
// dropped at the end), and -replicas N starts N hookmap instances on it, sharing one
// secret key, with the senders spread over them as a load balancer would:
//
//	go run ./bench/receiver -store "$HOOKMAP_TEST_POSTGRES" -replicas 2 -concurrency 32
//
// -connectors, -connector and -event choose what to subscribe to (the ingest comparison's
// connector: -connectors bench/connector -connector bench -event webhook); -cpuprofile,
// -memprofile and -trace profile the load phase. After the figures it prints the store's
// commit batch size, commit time, the writer's busy share and WAL bytes per webhook.
//
// Traffic goes only to the loopback address the harness itself listens on.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/hookmap/hookmap/bench/internal/promtext"
	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/app"
	"github.com/hookmap/hookmap/server/store/postgres/pgtest"
)

func main() {
	concurrency := flag.Int("concurrency", 32, "concurrent senders")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	maxRequests := flag.Int("requests", 1_000_000, "stop after this many requests")
	bodySize := flag.Int("body", 1024, "approximate JSON body size in bytes")
	connectors := flag.String("connectors", "connectors", "connector folder")
	connector := flag.String("connector", "example-webhook", "connector of the subscription")
	event := flag.String("event", "message", "event of the subscription (its parameters: channel=bench)")
	storeURL := flag.String("store", "", "a postgres:// URL to run on (default: a fresh SQLite file)")
	replicas := flag.Int("replicas", 1, "hookmap instances sharing the Postgres store")
	traceFile := flag.String("trace", "", "write an execution trace of one second of the load phase to this file")
	memProfile := flag.String("memprofile", "", "write an allocation profile (after the load) to this file")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the load phase (hookmap and the senders) to this file")
	flag.Parse()
	if *replicas > 1 && *storeURL == "" {
		fmt.Fprintln(os.Stderr, "receiver bench: -replicas needs a Postgres -store")
		os.Exit(2)
	}
	profile, traceOut = create(*cpuProfile), create(*traceFile)
	memOut := create(*memProfile)
	err := run(*concurrency, *duration, *maxRequests, *bodySize, *connectors, *connector, *event, *storeURL, *replicas)
	if memOut != nil {
		_ = pprof.Lookup("allocs").WriteTo(memOut, 0)
	}
	for _, f := range []*os.File{profile, traceOut, memOut} {
		if f != nil {
			_ = f.Close()
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "receiver bench:", err)
		os.Exit(1)
	}
}

// create creates the file at path for a profile or trace; nil when path is empty.
func create(path string) *os.File {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "receiver bench:", err)
		os.Exit(1)
	}
	return f
}

// profile, when set, receives a CPU profile of the load phase; traceOut an execution
// trace of its second second.
var profile, traceOut *os.File

func run(concurrency int, duration time.Duration, maxRequests, bodySize int, connectors, connector, event, storeURL string, replicas int) error {
	dir, err := os.MkdirTemp("", "hookmap-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	cfg := app.Defaults()
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.PublicURL, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", "", dir
	cfg.Connectors = []string{connectors}
	if storeURL != "" {
		schema := fmt.Sprintf("bench_%d", time.Now().UnixNano())
		drop, err := createSchema(ctx, storeURL, schema)
		if err != nil {
			return err
		}
		defer drop()
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		cfg.Store, cfg.SecretKey = pgtest.WithSearchPath(storeURL, schema), hex.EncodeToString(key)
	}
	var apps []*app.App
	for range replicas {
		a, err := app.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			return err
		}
		defer a.Stop()
		apps = append(apps, a)
	}
	a := apps[0]
	conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	c, err := hookmapv1.NewConnectionServiceClient(conn).CreateConnection(ctx, &hookmapv1.CreateConnectionRequest{ConnectorKey: connector})
	if err != nil {
		return err
	}
	params, _ := structpb.NewStruct(map[string]any{"channel": "bench"})
	sub, err := hookmapv1.NewSubscriptionServiceClient(conn).CreateSubscription(ctx, &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: c.GetId(), EventKey: event, Parameters: params,
	})
	if err != nil {
		return err
	}
	path := strings.TrimPrefix(sub.GetWebhookUri(), "http://"+a.HTTPAddr())
	pad := strings.Repeat("x", max(0, bodySize-120))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency * 2}}
	var sent, failed atomic.Int64
	lat := make([][]time.Duration, concurrency)
	if profile != nil {
		if err := pprof.StartCPUProfile(profile); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if traceOut != nil {
		time.AfterFunc(time.Second, func() {
			if err := trace.Start(traceOut); err == nil {
				time.AfterFunc(time.Second, trace.Stop)
			}
		})
	}
	deadline := time.Now().Add(duration)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline) && sent.Add(1) <= int64(maxRequests); i++ {
				body := fmt.Sprintf(`{"id":"w%d-%d","user":{"id":1234567,"login":"octocat"},"action":"opened","text":%q}`, w, i, pad)
				t0 := time.Now()
				target := "http://" + apps[(w+i)%len(apps)].HTTPAddr() + path
				resp, err := client.Post(target, "application/json", bytes.NewReader([]byte(body)))
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if len(all) == 0 {
		return fmt.Errorf("no request succeeded (%d failed)", failed.Load())
	}
	pct := func(p float64) time.Duration { return all[min(len(all)-1, int(float64(len(all))*p))] }
	store := "sqlite"
	if storeURL != "" {
		store = "postgres"
	}
	fmt.Printf("store=%s replicas=%d concurrency=%d body=%dB acked=%d failed=%d elapsed=%s throughput=%.0f req/s p50=%s p90=%s p99=%s max=%s\n",
		store, replicas, concurrency, bodySize, len(all), failed.Load(), elapsed.Round(time.Millisecond),
		float64(len(all))/elapsed.Seconds(), pct(0.50), pct(0.90), pct(0.99), all[len(all)-1])
	if storeURL == "" {
		m, err := promtext.Get(ctx, "http://"+a.HTTPAddr()+"/metrics")
		if err != nil {
			return err
		}
		batches, ops := m.Histogram("hookmap_store_commit_batch_size")
		_, commitSecs := m.Histogram("hookmap_store_commit_duration_seconds")
		wal, _ := m.Value("hookmap_store_wal_written_bytes_total")
		fmt.Printf("commits=%.0f ops/commit=%.1f commit_time=%.2fms busy=%.0f%% wal_bytes/webhook=%.0f\n",
			batches, ops/max(batches, 1), 1000*commitSecs/max(batches, 1), 100*commitSecs/elapsed.Seconds(),
			wal/float64(len(all)))
	}
	return nil
}

// createSchema creates schema on the server at url and returns what drops it.
func createSchema(ctx context.Context, url, schema string) (func(), error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		return nil, err
	}
	return func() {
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		_, _ = conn.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
	}, nil
}
