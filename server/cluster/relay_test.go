package cluster

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hookmap/hookmap/server/hub"
	"github.com/hookmap/hookmap/server/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeShared is a store.Shared whose changes the test sends.
type fakeShared struct {
	changes chan store.Change
	mu      sync.Mutex
	gens    map[string]int64
}

func (f *fakeShared) Watch(ctx context.Context, fn func(store.Change)) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case c := <-f.changes:
			fn(c)
		}
	}
}

func (f *fakeShared) OpenStream(context.Context, string, string) (int64, error) { return 0, nil }

func (f *fakeShared) StreamGeneration(_ context.Context, _, consumer string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gens[consumer], nil
}

func woken(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-time.After(5 * time.Second):
		return false
	}
}

func TestRelay(t *testing.T) {
	f := &fakeShared{changes: make(chan store.Change), gens: map[string]int64{}}
	h := hub.New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r := &Relay{Store: f, Hub: h, Poll: time.Hour}
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// Another replica's commit wakes this one's streams of the workspace.
	wait := h.Wait("ws")
	f.changes <- store.Change{Kind: store.ChangeEvents, WorkspaceID: "ws", Seq: 7}
	require.True(t, woken(wait))

	// Another replica's newer stream ends this one's older stream.
	s := h.Open("ws", "billing", 3)
	f.changes <- store.Change{Kind: store.ChangeStream, WorkspaceID: "ws", Consumer: "billing", Generation: 4}
	require.True(t, woken(s.Replaced()))

	// After a resync, the fallback check finds what was missed: a newer generation in
	// the store, and events to read.
	s2 := h.Open("ws", "audit", 5)
	f.mu.Lock()
	f.gens["audit"] = 6
	f.mu.Unlock()
	wait = h.Wait("other")
	f.changes <- store.Change{Kind: store.ChangeResync}
	require.True(t, woken(s2.Replaced()))
	require.True(t, woken(wait))
}
