package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/store/postgres/pgtest"
)

// replica is a hookmap binary serving one Postgres database with others.
type replica struct {
	t                  *testing.T
	url, key           string
	grpcAddr, httpAddr string
	cmd                *exec.Cmd
	logs               *syncBuffer
	exited             chan struct{} // closed when the running binary has exited
	conn               *grpc.ClientConn
}

// start starts the replica on its addresses (again, after kill9) and waits until it is
// ready.
func (r *replica) start() {
	r.t.Helper()
	if !r.launch() {
		r.t.Fatalf("hookmap exited before it was ready:\n%s", r.logs.String())
	}
}

// startNew starts the replica on free loopback ports. A port found free can be taken by
// another process before hookmap binds it: then it tries other ones (three times).
func (r *replica) startNew() {
	r.t.Helper()
	for attempt := 1; ; attempt++ {
		r.grpcAddr, r.httpAddr = freeAddr(r.t), freeAddr(r.t)
		if r.launch() {
			return
		}
		if attempt == 3 || !strings.Contains(r.logs.String(), "address already in use") {
			r.t.Fatalf("hookmap exited before it was ready:\n%s", r.logs.String())
		}
	}
}

// launch runs the binary and waits until it is ready (true) or has exited (false).
func (r *replica) launch() bool {
	r.t.Helper()
	var logs syncBuffer
	r.cmd = exec.Command(binary, "serve", "--grpc-addr", r.grpcAddr, "--http-addr", r.httpAddr,
		"--public-url", "http://"+r.httpAddr, "--store", r.url, "--secret-key", r.key,
		"--data-dir", r.t.TempDir(), "--connectors", "../../../connectors")
	r.cmd.Stdout, r.cmd.Stderr = &logs, &logs
	r.logs = &logs
	require.NoError(r.t, r.cmd.Start())
	cmd := r.cmd
	exited := make(chan struct{})
	r.exited = exited
	go func() { _ = cmd.Wait(); close(exited) }()
	r.t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			return false
		default:
		}
		if resp, err := http.Get("http://" + r.httpAddr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("hookmap did not become ready:\n%s", logs.String())
		}
	}
	conn, err := grpc.NewClient(r.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(r.t, err)
	r.t.Cleanup(func() { _ = conn.Close() })
	r.conn = conn
	return true
}

func (r *replica) kill9() {
	r.t.Helper()
	require.NoError(r.t, r.cmd.Process.Signal(syscall.SIGKILL))
	<-r.exited
}

func (r *replica) events() hookmapv1.EventServiceClient {
	return hookmapv1.NewEventServiceClient(r.conn)
}

// received is what a consumer got, over its successive streams.
type received struct {
	mu   sync.Mutex
	seqs map[int64]int // seq → times received
	ids  map[string]bool
}

// stream is one StreamEvents call of the consumer.
type stream struct {
	cancel context.CancelFunc
	done   chan error
}

// stream opens a stream of consumer "billing" on r, records what it receives and acks
// every 25 events.
func (rc *received) stream(ctx context.Context, t *testing.T, r *replica) *stream {
	ctx, cancel := context.WithCancel(ctx)
	s := &stream{cancel: cancel, done: make(chan error, 1)}
	st, err := r.events().StreamEvents(ctx, &hookmapv1.StreamEventsRequest{Consumer: "billing"})
	require.NoError(t, err)
	go func() {
		last := int64(0)
		for n := 1; ; n++ {
			e, err := st.Recv()
			if err != nil {
				s.done <- err
				return
			}
			if e.GetSeq() <= last {
				s.done <- fmt.Errorf("seq %d after %d: reordered", e.GetSeq(), last)
				return
			}
			last = e.GetSeq()
			rc.mu.Lock()
			rc.seqs[e.GetSeq()]++
			rc.ids[e.GetExternalId()] = true
			rc.mu.Unlock()
			if n%25 == 0 {
				_, _ = r.events().AckEvents(ctx, &hookmapv1.AckEventsRequest{Consumer: "billing", Seq: e.GetSeq()})
			}
		}
	}()
	return s
}

// upTo reports whether every seq 1..last was received.
func (rc *received) upTo(last int64) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for s := int64(1); s <= last; s++ {
		if rc.seqs[s] == 0 {
			return false
		}
	}
	return true
}

// TestReplicasKill9OnePostgres runs two real hookmap binaries on one Postgres database.
// Webhooks are posted to both at once; a consumer streams from one replica, then from the
// other (which ends the first stream with ABORTED); one replica is killed with SIGKILL
// mid-load and restarted. Every acknowledged webhook is streamed, no seq is skipped or
// reordered, and no webhook is stored twice.
func TestReplicasKill9OnePostgres(t *testing.T) {
	url := pgtest.Schema(t)
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	key := hex.EncodeToString(k)
	a := &replica{t: t, url: url, key: key}
	b := &replica{t: t, url: url, key: key}
	a.startNew()
	b.startNew()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c, err := hookmapv1.NewConnectionServiceClient(a.conn).CreateConnection(ctx, &hookmapv1.CreateConnectionRequest{ConnectorKey: "example-webhook"})
	require.NoError(t, err)
	params, _ := structpb.NewStruct(map[string]any{"channel": "c"})
	sub, err := hookmapv1.NewSubscriptionServiceClient(b.conn).CreateSubscription(ctx, &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: c.GetId(), EventKey: "message", Parameters: params,
	})
	require.NoError(t, err)
	path := strings.TrimPrefix(sub.GetWebhookUri(), "http://"+b.httpAddr)

	var mu sync.Mutex
	acked := map[string]bool{}
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	var wg sync.WaitGroup
	stop := make(chan struct{})
	client := &http.Client{Timeout: 5 * time.Second}
	for w := range 8 {
		wg.Go(func() {
			for i := 0; i < 5000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r := []*replica{a, b}[(w+i)%2]
				// Every 10th webhook is sent again: a re-delivery must not be stored twice.
				id := fmt.Sprintf("w%d-%d", w, i-i%10/9)
				resp, err := client.Post("http://"+r.httpAddr+path, "application/json", strings.NewReader(`{"id":"`+id+`","text":"x"}`))
				if err != nil {
					time.Sleep(20 * time.Millisecond) // a killed replica: the load balancer would retry elsewhere
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				}
			}
		})
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	got := &received{seqs: map[int64]int{}, ids: map[string]bool{}}
	first := got.stream(ctx, t, a)
	waitFor("100 acknowledged webhooks", func() bool { return ackedCount() >= 100 })

	b.kill9() // mid-load: its in-flight webhooks fail, nothing it acknowledged may be lost
	before := ackedCount()
	waitFor("more webhooks through the surviving replica", func() bool { return ackedCount() >= before+100 })
	b.start()
	waitFor("webhooks through the restarted replica", func() bool { return ackedCount() >= before+300 })

	// The consumer moves to b: its stream on a ends with ABORTED.
	second := got.stream(ctx, t, b)
	select {
	case err := <-first.done:
		require.Equal(t, codes.Aborted, status.Code(err), "%v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the older stream did not end")
	}
	waitFor("more webhooks", func() bool { return ackedCount() >= before+400 })
	close(stop)
	wg.Wait()

	// Everything stored, listed: each external id once, seqs 1..n.
	stored := map[string]int{}
	var last int64
	for tok := ""; ; {
		page, err := a.events().ListEvents(ctx, &hookmapv1.ListEventsRequest{PageSize: 1000, PageToken: tok})
		require.NoError(t, err)
		for _, e := range page.GetEvents() {
			stored[e.GetExternalId()]++
			require.Equal(t, last+1, e.GetSeq(), "seqs have no gaps")
			last = e.GetSeq()
		}
		if tok = page.GetNextPageToken(); tok == "" {
			break
		}
	}
	for id, n := range stored {
		require.Equal(t, 1, n, "webhook %s stored %d times", id, n)
	}
	mu.Lock()
	for id := range acked {
		require.Contains(t, stored, id, "acknowledged webhook %s lost", id)
	}
	total := len(acked)
	mu.Unlock()

	// The consumer on b receives every stored event (pushed; its own commits and a's).
	waitFor("the consumer to receive every stored event", func() bool {
		select {
		case err := <-second.done:
			t.Fatalf("stream on the restarted replica ended: %v", err)
		default:
		}
		return got.upTo(last)
	})
	second.cancel()
	first.cancel()
	got.mu.Lock()
	for id := range stored {
		require.True(t, got.ids[id], "stored webhook %s never streamed", id)
	}
	got.mu.Unlock()
	require.False(t, errors.Is(ctx.Err(), context.DeadlineExceeded))
	t.Logf("%d acknowledged webhooks, %d stored, all streamed; replica b killed with SIGKILL and restarted", total, len(stored))
}
