package postgres

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/postgres/pgtest"
)

// benchCommit is a realistic delivery commit: one event with a ~1 KiB record.
func benchCommit(f fixture, n int64) *store.DeliveryCommit {
	id := fmt.Sprintf("dlv-%d-%d", time.Now().UnixNano(), n)
	now := time.Now()
	return &store.DeliveryCommit{
		Delivery: &store.Delivery{ID: id, WorkspaceID: f.ws, SubscriptionID: f.sub.ID, ReceiveTime: now,
			StatusCode: 200, Outcome: store.OutcomeOK, EventCount: 1, RequestSize: 1400},
		Events: []*store.Event{{
			ID: "ev-" + id, WorkspaceID: f.ws, ConnectionID: f.sub.ConnectionID, SubscriptionID: f.sub.ID,
			EventKey: "issues", Type: "issue.opened", ExternalID: "gh-" + id, DeliveryID: id, ReceiveTime: now,
			Record: map[string]any{"id": n, "title": "Found a bug", "body": strings.Repeat("I'm having a problem with this. ", 28)},
		}},
	}
}

// BenchmarkCommitDeliveryParallel: 32 concurrent callers, with the group commit (the
// default batch) and without it (MaxBatch 1: one transaction, one WAL flush per
// delivery). commits/txn is the batching achieved.
func BenchmarkCommitDeliveryParallel(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"grouped", Options{}},
		{"one-per-transaction", Options{MaxBatch: 1, Committers: 8}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := openTest(b, pgtest.Schema(b), tc.opts)
			f := newFixture(b, s)
			ctx := b.Context()
			var n atomic.Int64
			before := s.batches.Load()
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.CommitDelivery(ctx, benchCommit(f, n.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			if txns := s.batches.Load() - before; txns > 0 {
				b.ReportMetric(float64(b.N)/float64(txns), "commits/txn")
			}
		})
	}
}
