package cluster

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/hookmap/hookmap/server/hub"
	"github.com/hookmap/hookmap/server/store"
)

// DefaultPoll is how often, by default, every stream reads the store again and checks it
// is still its consumer's newest, whatever was notified.
const DefaultPoll = 5 * time.Second

// Relay feeds the hub what other processes commit to the shared store.
type Relay struct {
	Store  store.Shared
	Hub    *hub.Hub
	Poll   time.Duration // fallback poll (default DefaultPoll)
	Logger *slog.Logger
}

// Run relays until ctx ends.
func (r *Relay) Run(ctx context.Context) {
	log := r.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	poll := r.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	resync := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := r.Store.Watch(ctx, func(c store.Change) {
			switch c.Kind {
			case store.ChangeEvents:
				r.Hub.Notify(c.WorkspaceID, c.Seq)
			case store.ChangeStream:
				r.Hub.Replace(c.WorkspaceID, c.Consumer, c.Generation)
			case store.ChangeResync:
				select {
				case resync <- struct{}{}:
				default:
				}
			}
		})
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, store.ErrClosed) {
			log.Warn("watching the shared store stopped; streams rely on the fallback poll", "err", err)
		}
	}()
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			<-done
			return
		case <-t.C:
		case <-resync:
		}
		r.Check(ctx)
	}
}

// Check wakes every stream (each reads the store again) and ends those whose consumer
// opened a newer stream elsewhere: what a missed notification would have done.
func (r *Relay) Check(ctx context.Context) {
	r.Hub.WakeAll()
	for _, s := range r.Hub.Streams() {
		gen, err := r.Store.StreamGeneration(ctx, s.Workspace, s.Consumer)
		if err != nil {
			if ctx.Err() == nil && r.Logger != nil {
				r.Logger.Warn("check a stream's generation", "consumer", s.Consumer, "err", err)
			}
			return
		}
		r.Hub.Replace(s.Workspace, s.Consumer, gen)
	}
}
