package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
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

// TestKill9BetweenAnswerAndFetch kills the real binary with SIGKILL after it answered a
// notification 2xx and while the fetch that notification asked for is running (the app
// holds its request), restarts it on the same data dir and checks that the fetch runs and
// its events are stored: the fetch was committed with the delivery, and the dead
// process's lease on it does not hold it up.
func TestKill9BetweenAnswerAndFetch(t *testing.T) {
	var mu sync.Mutex
	hold := true
	held := make(chan struct{}, 4)
	var secret string
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost: // create the hook
			var body struct{ Secret string }
			_ = json.NewDecoder(r.Body).Decode(&body)
			mu.Lock()
			secret = body.Secret
			mu.Unlock()
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"hk1"}`))
		case strings.HasSuffix(r.URL.Path, "/payloads"):
			mu.Lock()
			h := hold
			mu.Unlock()
			if h {
				held <- struct{}{}
				<-r.Context().Done() // never answered: the process dies first
				return
			}
			_, _ = w.Write([]byte(`{"payloads":[{"seq":1,"kind":"created"},{"seq":2,"kind":"updated"}],"cursor":3,"mightHaveMore":false}`))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer app.Close()

	dataDir := t.TempDir()
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	args := []string{"--connectors", "../../app/testdata/connectors/fetchapp", "--allow-private-networks"}
	p := startBinary(t, dataDir, grpcAddr, httpAddr, args...)
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	params, _ := structpb.NewStruct(map[string]any{"baseUri": app.URL})
	creds, _ := structpb.NewStruct(map[string]any{"apiKey": "k"})
	c, err := hookmapv1.NewConnectionServiceClient(conn).CreateConnection(ctx, &hookmapv1.CreateConnectionRequest{
		ConnectorKey: "fetchapp", Parameters: params, Credentials: creds,
	})
	require.NoError(t, err)
	subParams, _ := structpb.NewStruct(map[string]any{"project": "p1"})
	sub, err := hookmapv1.NewSubscriptionServiceClient(conn).CreateSubscription(ctx, &hookmapv1.CreateSubscriptionRequest{
		ConnectionId: c.GetId(), EventKey: "changes", Parameters: subParams,
	})
	require.NoError(t, err)

	body := `{"type":"changed","hook":"hk1"}`
	mu.Lock()
	m := hmac.New(sha256.New, []byte(secret))
	mu.Unlock()
	m.Write([]byte(body))
	req, _ := http.NewRequest(http.MethodPost, sub.GetWebhookUri(), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Signature", hex.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	select {
	case <-held: // the fetch is running, its lease taken
	case <-time.After(20 * time.Second):
		t.Fatal("the fetch did not start")
	}
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	_, _ = p.cmd.Process.Wait()
	mu.Lock()
	hold = false
	mu.Unlock()

	startBinary(t, dataDir, grpcAddr, httpAddr, args...)
	conn2, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn2.Close()
	stream, err := hookmapv1.NewEventServiceClient(conn2).StreamEvents(ctx, &hookmapv1.StreamEventsRequest{Consumer: "after-kill"})
	require.NoError(t, err)
	var types []string
	for len(types) < 2 {
		ev, err := stream.Recv()
		require.NoError(t, err)
		types = append(types, ev.GetType())
	}
	require.Equal(t, []string{"created", "updated"}, types)
	ds, err := hookmapv1.NewEventServiceClient(conn2).ListDeliveries(ctx, &hookmapv1.ListDeliveriesRequest{SubscriptionId: sub.GetId()})
	require.NoError(t, err)
	require.Len(t, ds.GetDeliveries(), 1)
	require.Eventually(t, func() bool {
		ds, err := hookmapv1.NewEventServiceClient(conn2).ListDeliveries(ctx, &hookmapv1.ListDeliveriesRequest{SubscriptionId: sub.GetId()})
		return err == nil && ds.GetDeliveries()[0].GetFetch().GetStatus() == hookmapv1.FetchStatus_FETCH_STATUS_OK
	}, 10*time.Second, 10*time.Millisecond)
}
