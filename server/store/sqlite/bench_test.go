package sqlite

import (
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

// benchCommit returns a realistic delivery commit: one event with a ~1 KiB record.
func benchCommit(sub *store.Subscription, n int64) *store.DeliveryCommit {
	id := "dlv-" + strconv.FormatInt(n, 10)
	now := time.Now()
	return &store.DeliveryCommit{
		Delivery: &store.Delivery{
			ID: id, WorkspaceID: sub.WorkspaceID, SubscriptionID: sub.ID, ReceiveTime: now,
			StatusCode: 200, Outcome: store.OutcomeOK, EventCount: 1, RequestSize: 1400,
		},
		Events: []*store.Event{{
			ID: "ev-" + id, WorkspaceID: sub.WorkspaceID, ConnectionID: sub.ConnectionID, SubscriptionID: sub.ID,
			EventKey: sub.EventKey, Type: "issue.opened", ExternalID: "gh-" + id, DeliveryID: id, ReceiveTime: now,
			Record: map[string]any{
				"id": n, "number": int64(1347), "title": "Found a bug in the webhook receiver",
				"body":   strings.Repeat("I'm having a problem with this. ", 22),
				"labels": []any{"bug", "triage", int64(3)},
				"user":   map[string]any{"login": "octocat", "id": int64(583231), "site_admin": false, "url": "https://api.github.com/users/octocat"},
				"repository": map[string]any{
					"id": int64(1296269), "full_name": "octocat/Hello-World", "private": false,
					"html_url": "https://github.com/octocat/Hello-World",
				},
				"state": "open", "locked": false, "comments": int64(0), "created_at": "2011-04-22T13:33:48Z",
			},
		}},
	}
}

func benchStore(b testing.TB) (*Store, *store.Subscription) {
	s := openTest(b, Options{})
	ctx := b.Context()
	require.NoError(b, s.CreateWorkspace(ctx, &store.Workspace{ID: "w", Name: "w"}))
	c := &store.Connection{WorkspaceID: "w", ID: "c", ConnectorKey: "github", Name: "c"}
	require.NoError(b, s.CreateConnection(ctx, c))
	sub := &store.Subscription{WorkspaceID: "w", ID: "s", ConnectionID: "c", ConnectorKey: "github", EventKey: "issues", Status: store.StatusActive}
	require.NoError(b, s.CreateSubscription(ctx, sub))
	return s, sub
}

func reportBatches(b *testing.B, s *Store, before int64) {
	if n := s.batches.Load() - before; n > 0 {
		b.ReportMetric(float64(b.N)/float64(n), "commits/txn")
	}
}

// BenchmarkCommitDelivery: one caller, so every commit is its own transaction and fsync.
func BenchmarkCommitDelivery(b *testing.B) {
	s, sub := benchStore(b)
	ctx := b.Context()
	var n int64
	before := s.batches.Load()
	b.ResetTimer()
	for b.Loop() {
		n++
		if _, err := s.CommitDelivery(ctx, benchCommit(sub, n)); err != nil {
			b.Fatal(err)
		}
	}
	reportBatches(b, s, before)
}

// BenchmarkCommitDeliveryParallel: many concurrent callers, group-committed.
func BenchmarkCommitDeliveryParallel(b *testing.B) {
	s, sub := benchStore(b)
	ctx := b.Context()
	var n atomic.Int64
	before := s.batches.Load()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.CommitDelivery(ctx, benchCommit(sub, n.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportBatches(b, s, before)
}

// BenchmarkDestinationDrain drains a destination's queue the way its worker does: find
// the subscriptions' heads, acknowledge one. The lanes table keeps both independent of
// how many events are queued (1,000 or 100,000, in one subscription).
//
//	go test ./server/store/sqlite -run '^$' -bench BenchmarkDestinationDrain -benchtime 2000x
func BenchmarkDestinationDrain(b *testing.B) {
	for _, queued := range []int{1_000, 100_000} {
		b.Run("queued="+strconv.Itoa(queued), func(b *testing.B) {
			s := openTest(b, Options{})
			ctx := b.Context()
			require.NoError(b, s.CreateWorkspace(ctx, &store.Workspace{ID: "ws", Name: "ws"}))
			require.NoError(b, s.CreateDestination(ctx, &store.Destination{WorkspaceID: "ws", ID: "d", WebhookID: "w",
				RetryWindow: time.Hour, Status: store.DestinationActive}))
			now := time.Now()
			for from := 1; from <= queued+b.N; from += 1000 {
				batch := make([]*store.DestinationEvent, 0, 1000)
				for seq := from; seq < from+1000; seq++ {
					batch = append(batch, &store.DestinationEvent{Seq: int64(seq), EventID: "ev-" + strconv.Itoa(seq),
						SubscriptionID: "sub", NextAttemptTime: now})
				}
				require.NoError(b, s.EnqueueDestinationEvents(ctx, "ws", "d", batch, int64(from+999)))
			}
			b.ResetTimer()
			for b.Loop() {
				heads, err := s.DestinationHeads(ctx, "ws", "d", 256)
				if err != nil || len(heads) != 1 {
					b.Fatalf("heads: %v %d", err, len(heads))
				}
				if err := s.CompleteDestinationEvent(ctx, "ws", "d", heads[0].Seq, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReceiverReads: the three reads the receiver makes per webhook (the subscription
// by id, its connection, its connector's parameters), served from the caches (cached) and
// from the database (the caches off), by 8 concurrent readers.
//
//	go test ./server/store/sqlite -run '^$' -bench BenchmarkReceiverReads -benchmem
func BenchmarkReceiverReads(b *testing.B) {
	for _, bc := range []struct {
		name  string
		cache int64
	}{{"cached", 0}, {"database", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			s := openTest(b, Options{CacheBytes: bc.cache})
			ctx := b.Context()
			require.NoError(b, s.CreateWorkspace(ctx, &store.Workspace{ID: "w", Name: "w"}))
			c := &store.Connection{WorkspaceID: "w", ID: "c", ConnectorKey: "github", Name: "c",
				Parameters: map[string]any{"baseUri": "https://api.github.com", "org": "acme"}, Credentials: make([]byte, 120)}
			require.NoError(b, s.CreateConnection(ctx, c))
			sub := &store.Subscription{WorkspaceID: "w", ID: "s", ConnectionID: "c", ConnectorKey: "github", EventKey: "issues",
				Status: store.StatusActive, Parameters: map[string]any{"owner": "acme", "repo": "hooks"},
				State: make([]byte, 200), WebhookSecret: make([]byte, 60)}
			require.NoError(b, s.CreateSubscription(ctx, sub))
			require.NoError(b, s.SetConnectorParameters(ctx, "w", "github", make([]byte, 100)))
			b.Run("LookupSubscription", func(b *testing.B) {
				b.SetParallelism(4)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := s.LookupSubscription(ctx, "s"); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
			b.Run("all three", func(b *testing.B) {
				b.SetParallelism(4)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						_, err1 := s.LookupSubscription(ctx, "s")
						_, err2 := s.GetConnection(ctx, "w", "c")
						_, err3 := s.GetConnectorParameters(ctx, "w", "github")
						if err1 != nil || err2 != nil || err3 != nil {
							b.Error(err1, err2, err3)
							return
						}
					}
				})
			})
		})
	}
}

// BenchmarkListEventsTail: a caught-up consumer's read of the 10 newest events (of 1,000),
// as the stream makes it (limit 256), served by the tail (memory) and by the database
// alone (database), by one reader; with ~1 KiB records (decoding them is most of a read
// from memory) and with small ones.
//
//	go test ./server/store/sqlite -run '^$' -bench BenchmarkListEventsTail -benchmem
func BenchmarkListEventsTail(b *testing.B) {
	for _, records := range []string{"1KiB", "small"} {
		b.Run(records, func(b *testing.B) {
			s, sub := benchStore(b)
			ctx := b.Context()
			var n int64
			for range 10 {
				c := &store.DeliveryCommit{}
				for range 100 {
					n++
					c.Events = append(c.Events, benchCommit(sub, n).Events...)
					if records == "small" {
						c.Events[len(c.Events)-1].Record = map[string]any{"id": n}
					}
				}
				if _, err := s.CommitDelivery(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
			for _, bc := range []struct {
				name string
				tail *tail
			}{{"memory", s.tail}, {"database", nil}} {
				b.Run(bc.name, func(b *testing.B) {
					for b.Loop() {
						evs, err := s.listEvents(ctx, sub.WorkspaceID, store.EventFilter{}, n-10, 256, bc.tail)
						if err != nil || len(evs) != 10 {
							b.Fatalf("%d events, %v", len(evs), err)
						}
					}
				})
			}
		})
	}
}

// BenchmarkStagedInserts: transactions of 13 new deliveries (webhookCommit), their rows
// staged and inserted by multi-row INSERTs (staged=true) or by one INSERT each. Only the
// statements are timed: the COMMIT and its fsync are left out, as are the commits'
// encoding. The benchmark uses the writer's connection itself (webhookStore's store has no
// checkpointer ticks to wake the writer goroutine).
func BenchmarkStagedInserts(b *testing.B) {
	const per = 13
	for _, staged := range []bool{true, false} {
		b.Run("staged="+strconv.FormatBool(staged), func(b *testing.B) {
			s, sub := webhookStore(b)
			ps := make([]*preparedCommit, per)
			for b.Loop() {
				b.StopTimer()
				for i := range ps {
					ps[i] = webhookCommit(b, sub)
				}
				w, err := s.beginTx()
				require.NoError(b, err)
				w.staging = staged
				b.StartTimer()
				for _, p := range ps {
					if _, err := s.runCommit(w, p); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.flush(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				s.seq = w.seq
				require.NoError(b, s.commitTx())
				s.endTx(w)
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*per)/1e3, "µs/delivery")
		})
	}
}
