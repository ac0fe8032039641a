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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
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
	logs     *syncBuffer
}

func startBinary(t *testing.T, dataDir, grpcAddr, httpAddr string, extra ...string) *proc {
	t.Helper()
	var logs syncBuffer
	cmd := exec.Command(binary, append([]string{"serve", "--grpc-addr", grpcAddr, "--http-addr", httpAddr,
		"--public-url", "http://" + httpAddr, "--data-dir", dataDir, "--connectors", "../../../connectors"}, extra...)...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	p := &proc{cmd: cmd, grpcAddr: grpcAddr, httpAddr: httpAddr, logs: &logs}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	waitReady(t, httpAddr, &logs)
	return p
}

// SIGHUP reloads the webhooks file of a running server.
func TestSIGHUPReloadsWebhooksFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "webhooks.yaml")
	require.NoError(t, os.WriteFile(file, []byte("[]\n"), 0o600))
	p := startBinary(t, t.TempDir(), freeAddr(t), freeAddr(t), "--webhooks", file)
	conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	webhooks := hookmapv1.NewWebhookServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = webhooks.GetWebhook(ctx, &hookmapv1.GetWebhookRequest{Id: "crm"})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)

	require.NoError(t, os.WriteFile(file, []byte("- id: crm\n  url: https://example.com/crm\n"), 0o600))
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	for {
		w, err := webhooks.GetWebhook(ctx, &hookmapv1.GetWebhookRequest{Id: "crm"})
		if err == nil {
			require.Equal(t, hookmapv1.WebhookSource_WEBHOOK_SOURCE_FILE, w.GetSource())
			break
		}
		require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
		select {
		case <-ctx.Done():
			t.Fatalf("the webhook never appeared:\n%s", p.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	require.Contains(t, p.logs.String(), "SIGHUP: reloading")
	require.NoError(t, p.cmd.Process.Signal(syscall.Signal(0)), "the server still runs")
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

// hookmap test exits 0 when every test passes, 1 with each failure at its line otherwise,
// 2 on a usage error.
func TestTestSubcommand(t *testing.T) {
	out, err := exec.Command(binary, "test", "../../../connectors/example-webhook").CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "ok   ../../../connectors/example-webhook/tests/message.test.yml")

	cmd := exec.Command(binary, "test", "-run", "request differs", "../../conntest/testdata/failing")
	out, err = cmd.CombinedOutput()
	require.Error(t, err)
	require.Equal(t, 1, cmd.ProcessState.ExitCode(), string(out))
	require.Contains(t, string(out), `../../conntest/testdata/failing/pingapp/tests/item.test.yml:33:34: expected state.hookId 8, got 7`)
	require.Contains(t, string(out), "FAIL: 1 of 1 tests failed")

	cmd = exec.Command(binary, "test")
	out, _ = cmd.CombinedOutput()
	require.Equal(t, 2, cmd.ProcessState.ExitCode(), string(out))
	require.Contains(t, string(out), "usage: hookmap test")
}

// validate checks a webhooks file without a server: each problem at its line, exit 1.
func TestValidateWebhooksFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	require.NoError(t, os.WriteFile(good, []byte(`[{"id": "send-jpeg", "url": "https://example.com/post",
  "headers": {"Content-Type": "image/jpeg"}, "payload_encoding": "base64"}]`), 0o600))
	out, err := exec.Command(binary, "validate", "--webhooks", good).CombinedOutput()
	require.NoError(t, err, string(out))
	require.Equal(t, "ok "+good+": 1 webhook\n", string(out))

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("- id: ok\n  url: https://example.com/\n- id: bad\n  url: ftp://example.com/\n"), 0o600))
	cmd := exec.Command(binary, "validate", "--webhooks="+bad, "../../../connectors")
	out, err = cmd.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, string(out))
	require.Equal(t, 1, ee.ExitCode())
	require.Contains(t, string(out), "ok example-webhook")
	require.Contains(t, string(out), bad+`:4:8: webhook "bad": url: must be an absolute http or https URL`)
	require.Contains(t, string(out), "1 problem\n")
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

// Each misconfiguration of serve prints one line naming the flag and the problem, and
// exits 2: never a stack trace.
func TestServeMisconfigurationsExit2WithOneLine(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	file := filepath.Join(t.TempDir(), "a-file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o600))

	cases := []struct {
		name string
		args []string
		flag string
	}{
		{"bad secret key", []string{"--secret-key", "nope"}, "--secret-key"},
		{"short secret key", []string{"--secret-key", "c2hvcnQ="}, "--secret-key"},
		{"gRPC port in use", []string{"--grpc-addr", busy.Addr().String()}, "--grpc-addr"},
		{"HTTP port in use", []string{"--http-addr", busy.Addr().String()}, "--http-addr"},
		{"data dir is a file", []string{"--data-dir", file}, "--data-dir"},
		{"store under a file", []string{"--store", filepath.Join(file, "hookmap.db")}, "--store"},
		{"log level", []string{"--log-level", "loud"}, "--log-level"},
		{"log format", []string{"--log-format", "xml"}, "--log-format"},
		{"short admin token", []string{"--admin-token", "short"}, "--admin-token"},
		{"public URL", []string{"--public-url", "ftp://x"}, "--public-url"},
		{"grpc address", []string{"--grpc-addr", "nonsense"}, "--grpc-addr"},
		{"retention", []string{"--delivery-retention", "1m"}, "--delivery-retention"},
		{"bad duration", []string{"--delivery-retention", "soon"}, "delivery-retention"},
		{"Postgres without a secret key", []string{"--store", "postgres://hookmap@127.0.0.1:1/hookmap"}, "--secret-key"},
		{"eval timeout too short", []string{"--eval-timeout", "1ms"}, "--eval-timeout"},
		{"eval timeout too long", []string{"--eval-timeout", "1h"}, "--eval-timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
				"--data-dir", t.TempDir(), "--connectors", "../../../connectors"}, tc.args...)
			cmd := exec.Command(binary, args...)
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stderr, &stderr
			done := make(chan error, 1)
			require.NoError(t, cmd.Start())
			go func() { done <- cmd.Wait() }()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("serve %v started instead of refusing:\n%s", tc.args, stderr.String())
			}
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, stderr.String())
			require.Equal(t, 2, ee.ExitCode(), stderr.String())
			out := stderr.String()
			require.NotContains(t, out, "panic")
			require.NotContains(t, out, "goroutine")
			var problems []string
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if !strings.Contains(l, "level=") { // startup log lines
					problems = append(problems, l)
				}
			}
			require.NotEmpty(t, problems, out)
			require.Contains(t, problems[0], tc.flag, out)
			require.Len(t, problems, 1, out)
		})
	}
}

// The binary with auth on, as production runs it: calls without a valid token get
// UNAUTHENTICATED and the server keeps serving.
func TestAuthOnBinarySurvivesUnauthenticatedCalls(t *testing.T) {
	dataDir := t.TempDir()
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	var logs syncBuffer
	cmd := exec.Command(binary, "serve", "--grpc-addr", grpcAddr, "--http-addr", httpAddr,
		"--data-dir", dataDir, "--connectors", "../../../connectors",
		"--admin-token", "0123456789abcdef0123", "--secret-key", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"--log-format", "json", "--max-body-bytes", "4096")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	waitReady(t, httpAddr, &logs)

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conns := hookmapv1.NewConnectionServiceClient(conn)
	for _, tok := range []string{"", "Bearer wrong-token-wrong-token", "Basic abc", "Bearer "} {
		callCtx := ctx
		if tok != "" {
			callCtx = metadata.AppendToOutgoingContext(ctx, "authorization", tok)
		}
		_, err := conns.ListConnections(callCtx, &hookmapv1.ListConnectionsRequest{})
		require.Equal(t, codes.Unauthenticated, status.Code(err), "token %q: %v", tok, err)
		stream, err := hookmapv1.NewEventServiceClient(conn).StreamEvents(callCtx, &hookmapv1.StreamEventsRequest{Consumer: "c"})
		if err == nil {
			_, err = stream.Recv()
		}
		require.Equal(t, codes.Unauthenticated, status.Code(err), "token %q: %v", tok, err)
	}
	// Reflection (what `grpcurl list` calls) needs the token too, and does not crash.
	rc, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	require.NoError(t, err)
	// Send may already see the refusal (io.EOF); Recv carries the status either way.
	_ = rc.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
	_, err = rc.Recv()
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)

	admin := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer 0123456789abcdef0123")
	_, err = conns.ListConnections(admin, &hookmapv1.ListConnectionsRequest{})
	require.NoError(t, err, logs.String())
	require.NoError(t, cmd.Process.Signal(syscall.Signal(0)), "the server exited:\n%s", logs.String())
	require.NotContains(t, logs.String(), "panic")
}

// syncBuffer is a bytes.Buffer that a child process writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitReady(t *testing.T, httpAddr string, logs fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("hookmap did not become ready:\n%s", logs.String())
}
