package sqlite

import (
	"encoding/binary"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

// webhookStore opens a store without checkpointer ticks (so nothing but the test wakes
// the writer) with a workspace, a connection and a subscription as a receiver's.
func webhookStore(tb testing.TB) (*Store, *store.Subscription) {
	s := openTest(tb, Options{CheckpointInterval: time.Hour})
	ctx := tb.Context()
	require.NoError(tb, s.CreateWorkspace(ctx, &store.Workspace{ID: "default", Name: "w"}))
	c := &store.Connection{WorkspaceID: "default", ID: "conn_abcdefghijklmnop", ConnectorKey: "bench", Name: "c"}
	require.NoError(tb, s.CreateConnection(ctx, c))
	sub := &store.Subscription{WorkspaceID: "default", ID: "abcdefghijklmnopqrstuvwx", ConnectionID: c.ID,
		ConnectorKey: "bench", EventKey: "webhook", Status: store.StatusActive}
	require.NoError(tb, s.CreateSubscription(ctx, sub))
	return s, sub
}

// webhookCommit is a typical webhook's commit for sub, encoded: a new delivery with one
// small event, ids ordered by time as the core makes them.
func webhookCommit(tb testing.TB, sub *store.Subscription) *preparedCommit {
	id := "dlv_" + uuid.Must(uuid.NewV7()).String()
	now := time.Now()
	p, err := prepareCommit(&store.DeliveryCommit{
		Delivery: &store.Delivery{ID: id, WorkspaceID: sub.WorkspaceID, SubscriptionID: sub.ID, ReceiveTime: now,
			StatusCode: 200, Outcome: store.OutcomeOK, EventCount: 1, RequestSize: 1024},
		Events: []*store.Event{{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: sub.WorkspaceID, ConnectionID: sub.ConnectionID,
			SubscriptionID: sub.ID, EventKey: "webhook", Type: "issue.opened", DeliveryID: id, ReceiveTime: now,
			Record: map[string]any{"id": "w12-3456", "action": "opened", "login": "octocat"}}},
	}, "")
	require.NoError(tb, err)
	return p
}

// walFrames commits batches transactions of per deliveries each (webhookCommit) after a
// warm-up, and returns the frames the WAL received, by the b-tree (table or index) of
// their page.
func walFrames(t *testing.T, batches, per int) (byTree map[string]int, total int) {
	s, sub := webhookStore(t)
	ctx := t.Context()
	commit := func(batches int) {
		for range batches {
			require.NoError(t, s.write(ctx, func(w *wtx) error {
				for range per {
					if _, err := s.runCommit(w, webhookCommit(t, sub)); err != nil {
						return err
					}
				}
				return nil
			}))
		}
	}
	commit(80) // the b-trees have some depth, as in a store in use
	var busy, logFrames, done int
	require.NoError(t, s.wc.QueryRowContext(t.Context(), "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done))
	require.Zero(t, busy)
	commit(batches)

	raw, err := os.ReadFile(s.path + "-wal")
	require.NoError(t, err)
	tree := map[uint32]string{}
	rows, err := s.wc.QueryContext(t.Context(), "SELECT name, pageno FROM dbstat")
	require.NoError(t, err)
	for rows.Next() {
		var name string
		var page uint32
		require.NoError(t, rows.Scan(&name, &page))
		tree[page] = name
	}
	require.NoError(t, rows.Err())
	byTree = map[string]int{}
	frame := walFrameHeader + s.pageSize
	for off := 32; off+frame <= len(raw); off += frame { // after the WAL header
		page := binary.BigEndian.Uint32(raw[off:])
		name := tree[page]
		if name == "" {
			name = fmt.Sprintf("page %d", page)
		}
		byTree[name]++
		total++
	}
	return byTree, total
}

// What a delivery costs in WAL bytes is mostly which b-trees it enters: each costs a commit
// at least its last page, and a b-tree keyed by something random (a v4 UUID) one more page
// per delivery. Group-committed 25 at a time, a typical delivery writes under 4 KiB of WAL
// (about 2.4 KB with the default 2 KiB pages), and no b-tree writes more than a few pages
// per transaction (one keyed by something random would write about 25).
func TestDeliveryWALBytes(t *testing.T) {
	const batches, per = 40, 25
	byTree, total := walFrames(t, batches, per)
	perDelivery := float64(total*(walFrameHeader+DefaultPageSize)) / (batches * per)
	t.Logf("WAL bytes per delivery: %.0f; frames per transaction by b-tree: %v", perDelivery, byTree)
	require.LessOrEqual(t, perDelivery, 4096.0)
	for name, n := range byTree {
		require.LessOrEqual(t, float64(n)/batches, 6.0, "b-tree %s: frames per transaction", name)
	}
	for _, gone := range []string{"deliveries_receive_time", "deliveries_workspace_outcome_time", "deliveries_subscription_outcome_time"} {
		require.Zero(t, byTree[gone], "%s holds no OK delivery", gone)
	}
	require.Zero(t, byTree["subscriptions"], "a commit leaves its subscription's row alone (the last event time is written about once a second)")
	require.Zero(t, byTree["sqlite_sequence"], "no AUTOINCREMENT counter is written (the writer gives the seqs)")
}
