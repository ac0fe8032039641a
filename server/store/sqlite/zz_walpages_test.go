package sqlite

import (
	"encoding/binary"
	"fmt"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

func TestZZWALPages(t *testing.T) {
	s := openTest(t, Options{CheckpointInterval: time.Hour})
	ctx := t.Context()
	require.NoError(t, s.CreateWorkspace(ctx, &store.Workspace{ID: "default", Name: "w"}))
	c := &store.Connection{WorkspaceID: "default", ID: "conn_abcdefghijklmnop", ConnectorKey: "bench", Name: "c"}
	require.NoError(t, s.CreateConnection(ctx, c))
	sub := &store.Subscription{WorkspaceID: "default", ID: "abcdefghijklmnopqrstuvwx", ConnectionID: c.ID, ConnectorKey: "bench", EventKey: "webhook", Status: store.StatusActive}
	require.NoError(t, s.CreateSubscription(ctx, sub))
	// warm up: 2000 deliveries so the b-trees have depth
	commit := func(batches, per int) {
		for range batches {
			require.NoError(t, s.write(ctx, func(w *wtx) error {
				for range per {
					id := "dlv_" + uuid.Must(uuid.NewV7()).String()
					now := time.Now()
					p, err := prepareCommit(&store.DeliveryCommit{
						Delivery: &store.Delivery{ID: id, WorkspaceID: "default", SubscriptionID: sub.ID, ReceiveTime: now, StatusCode: 200, Outcome: store.OutcomeOK, EventCount: 1, RequestSize: 1024},
						Events: []*store.Event{{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: "default", ConnectionID: c.ID, SubscriptionID: sub.ID, EventKey: "webhook", Type: "issue.opened",
							DeliveryID: id, ReceiveTime: now, Record: map[string]any{"id": "w1-123", "action": "opened", "login": "octocat"}}},
					}, "")
					if err != nil {
						return err
					}
					if _, err := s.runCommit(w, p); err != nil {
						return err
					}
				}
				return nil
			}))
		}
	}
	commit(200, 10)
	var a, b2, c2 int
	require.NoError(t, s.w.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&a, &b2, &c2))
	const batches, per = 40, 25
	commit(batches, per)
	raw, err := os.ReadFile(s.path + "-wal")
	require.NoError(t, err)
	names := map[uint32]string{}
	rows, err := s.w.Query("SELECT name, pageno FROM dbstat")
	require.NoError(t, err)
	for rows.Next() {
		var n string
		var p uint32
		require.NoError(t, rows.Scan(&n, &p))
		names[p] = n
	}
	count := map[string]int{}
	frames := 0
	for off := 32; off+24+4096 <= len(raw); off += 24 + 4096 {
		pg := binary.BigEndian.Uint32(raw[off:])
		n := names[pg]
		if n == "" {
			n = fmt.Sprint("page", pg)
		}
		count[n]++
		frames++
	}
	type kv struct {
		k string
		v int
	}
	var l []kv
	for k, v := range count {
		l = append(l, kv{k, v})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v })
	for _, e := range l {
		fmt.Printf("%-45s %6d frames  %.2f per batch\n", e.k, e.v, float64(e.v)/batches)
	}
	fmt.Printf("total %d frames, %.0f bytes per delivery\n", frames, float64(frames*(4096+24))/(batches*per))
}
