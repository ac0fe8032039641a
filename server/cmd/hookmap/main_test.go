package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hookmap-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "hookmap")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build hookmap: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

type proc struct {
	cmd      *exec.Cmd
	grpcAddr string
	httpAddr string
	logs     *bytes.Buffer
}

func startBinary(t *testing.T, dataDir, grpcAddr, httpAddr string) *proc {
	t.Helper()
	var logs bytes.Buffer
	cmd := exec.Command(binary, "serve", "--grpc-addr", grpcAddr, "--http-addr", httpAddr,
		"--public-url", "http://"+httpAddr, "--data-dir", dataDir, "--connectors", "../../../connectors")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	p := &proc{cmd: cmd, grpcAddr: grpcAddr, httpAddr: httpAddr, logs: &logs}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("hookmap did not become ready:\n%s", logs.String())
	return nil
}

func TestVersionAndUsage(t *testing.T) {
	out, err := exec.Command(binary, "version").CombinedOutput()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(out), "hookmap "))
	err = exec.Command(binary, "bogus").Run()
	require.Error(t, err)
}

func TestRefusesNonLoopbackWithoutToken(t *testing.T) {
	cmd := exec.Command(binary, "serve", "--grpc-addr", "0.0.0.0:0", "--data-dir", t.TempDir())
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "--admin-token")
}

func TestValidateBundledConnectors(t *testing.T) {
	out, err := exec.Command(binary, "validate", "../../../connectors").CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "example-webhook")
}

// TestKill9LosesNoAcknowledgedWebhook posts webhooks from several goroutines, kills the
// real binary with SIGKILL while they are in flight, restarts it on the same data dir and
// checks every webhook that was answered 2xx is stored.
func TestKill9LosesNoAcknowledgedWebhook(t *testing.T) {
	dataDir := t.TempDir()
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	p := startBinary(t, dataDir, grpcAddr, httpAddr)

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := hookmapv1.NewConnectionServiceClient(conn).CreateConnection(ctx, &hookmapv1.CreateConnectionRequest{ConnectorKey: "example-webhook"})
	require.NoError(t, err)
	params, _ := structpb.NewStruct(map[string]any{"channel": "c"})
	sub, err := hookmapv1.NewSubscriptionServiceClient(conn).CreateSubscription(ctx, &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: c.GetId(), EventKey: "message", Parameters: params,
	})
	require.NoError(t, err)

	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	client := &http.Client{Timeout: 5 * time.Second}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				resp, err := client.Post(sub.GetWebhookUri(), "application/json", strings.NewReader(`{"id":"`+id+`","text":"x"}`))
				if err != nil {
					return // the server died
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				}
			}
		}(w)
	}
	// Let some deliveries through, then kill -9 mid-flight.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 200 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	_, _ = p.cmd.Process.Wait()
	close(stop)
	wg.Wait()
	mu.Lock()
	total := len(acked)
	mu.Unlock()
	require.Greater(t, total, 0)

	p = startBinary(t, dataDir, grpcAddr, httpAddr)
	conn2, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn2.Close()
	events := hookmapv1.NewEventServiceClient(conn2)
	stored := map[string]bool{}
	tok := ""
	for {
		page, err := events.ListEvents(ctx, &hookmapv1.ListEventsRequest{PageSize: 1000, PageToken: tok})
		require.NoError(t, err)
		for _, e := range page.GetEvents() {
			stored[e.GetExternalId()] = true
		}
		if tok = page.GetNextPageToken(); tok == "" {
			break
		}
	}
	for id := range acked {
		require.True(t, stored[id], "acknowledged webhook %s lost after kill -9 (%d acked, %d stored)", id, total, len(stored))
	}
	t.Logf("%d acknowledged webhooks, %d stored after kill -9", total, len(stored))
}

// Variables configure serve; the command line wins, and a --connectors there replaces the
// variable's list instead of adding to it.
func TestServeConfigFromEnvAndFlags(t *testing.T) {
	t.Setenv("HOOKMAP_CONNECTORS", "env-a, env-b")
	t.Setenv("HOOKMAP_HTTP_ADDR", "127.0.0.1:9999")
	var stderr bytes.Buffer
	cfg, err := serveConfig(nil, &stderr)
	require.NoError(t, err, stderr.String())
	require.Equal(t, []string{"env-a", "env-b"}, cfg.Connectors)
	require.Equal(t, "127.0.0.1:9999", cfg.HTTPAddr)

	cfg, err = serveConfig([]string{"--connectors", "cli-a", "--connectors", "cli-b,cli-c", "--http-addr", "127.0.0.1:9998"}, &stderr)
	require.NoError(t, err, stderr.String())
	require.Equal(t, []string{"cli-a", "cli-b", "cli-c"}, cfg.Connectors)
	require.Equal(t, "127.0.0.1:9998", cfg.HTTPAddr)

	t.Setenv("HOOKMAP_MAX_BODY_BYTES", "lots")
	_, err = serveConfig(nil, &stderr)
	require.Error(t, err)
	require.Contains(t, stderr.String(), `HOOKMAP_MAX_BODY_BYTES="lots"`)
}
