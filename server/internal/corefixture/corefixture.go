// Package corefixture builds what the tests and benchmarks of the core and of the
// receiver stand on: a SQLite store in a temporary folder with its workspace, a secret box,
// a registry of connectors, a store whose commits return at once, and the ingest
// comparison's webhook body. It does not import the core, so the core's own tests can use
// it.
package corefixture

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/registry"
	"github.com/hookmap/hookmap/server/secrets"
	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/sqlite"
)

// Workspace is the workspace Deps creates.
const Workspace = "default"

// BenchConnectors is the folder of the ingest comparison's connector (bench/connector),
// from a package two levels below the repository's root (server/core, server/receiver).
var BenchConnectors = filepath.Join("..", "..", "bench", "connector")

// Deps opens a SQLite store in a temporary folder (closed at the end of the test) with the
// workspace Workspace, a secret box with a random key, and a registry of the connectors of
// dir, every one without problems.
func Deps(tb testing.TB, dir string) (*sqlite.Store, *secrets.Box, *registry.Registry) {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "hookmap.db"), sqlite.Options{})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = st.Close() })
	key := make([]byte, secrets.KeySize)
	_, _ = rand.Read(key)
	box, err := secrets.NewBox(key)
	require.NoError(tb, err)
	reg, diags := registry.New(dir)
	require.Empty(tb, diags)
	require.NoError(tb, st.CreateWorkspace(ctx, &store.Workspace{ID: Workspace, Name: Workspace, CreateTime: time.Now().UTC()}))
	return st, box, reg
}

// InstantCommits is a store whose CommitDelivery returns at once, as if the delivery and
// its events were durable: what is left of a delivery is the handler's own work.
type InstantCommits struct {
	store.Store
	seq atomic.Int64
}

func (s *InstantCommits) CommitDelivery(_ context.Context, c *store.DeliveryCommit) (*store.CommitResult, error) {
	n := len(c.Events)
	res := &store.CommitResult{Seqs: make([]int64, n), Inserted: n}
	for i := range n {
		res.Seqs[i] = s.seq.Add(1)
		res.MaxSeq = res.Seqs[i]
	}
	return res, nil
}

// BenchBody is the body of the ingest comparison's webhooks: an issue-like JSON object of
// 1 KiB.
func BenchBody() []byte {
	const head = `{"id":"b2f6c1d0-8c1e-4f5e-9a51-3d2c1b0a9f8e","action":"opened","user":{"id":1234567,"login":"octocat"},"text":"`
	const foot = `"}`
	return []byte(head + strings.Repeat("x", 1024-len(head)-len(foot)) + foot)
}
