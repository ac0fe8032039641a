package destination

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/server/outgoing"
	"github.com/hookmap/hookmap/server/store"
)

// Batch sizes.
const (
	readBatch  = 256  // events read from the store at a time
	readRound  = 4    // batches read before sending what is due
	headsLimit = 256  // subscription heads looked at per round
	maxCached  = 4096 // events kept in memory between queuing and sending
)

type key struct{ workspace, id string }

// workers are the running workers, by destination.
type workers struct {
	mu sync.Mutex
	m  map[key]*worker
	wg sync.WaitGroup
}

// worker sends one destination's events.
type worker struct {
	s      *Service
	k      key
	log    *slog.Logger
	cancel context.CancelFunc
	kickCh chan struct{} // buffered: re-read the destination, look at the queue

	mu     sync.Mutex
	events map[int64]*store.Event // queued by this worker, not yet done
}

// Run sends the events of every ACTIVE destination until ctx ends, then waits for its
// workers to stop (an attempt in flight is abandoned, not counted).
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Rescan)
	defer t.Stop()
	for {
		s.sync(ctx)
		select {
		case <-ctx.Done():
			s.workers.mu.Lock()
			for _, w := range s.workers.m {
				w.cancel()
			}
			s.workers.mu.Unlock()
			s.workers.wg.Wait()
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// rescan asks Run to look at the destinations again.
func (s *Service) rescan() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// kick wakes a destination's worker, if it runs.
func (s *Service) kick(workspaceID, id string) {
	s.workers.mu.Lock()
	w := s.workers.m[key{workspaceID, id}]
	s.workers.mu.Unlock()
	if w != nil {
		select {
		case w.kickCh <- struct{}{}:
		default:
		}
	}
}

// sync starts a worker for each ACTIVE destination without one and stops the workers of
// the others.
func (s *Service) sync(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	ds, err := s.cfg.Store.ListDestinationsByStatus(ctx, store.DestinationActive)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("cannot list destinations", "err", err)
		}
		return
	}
	want := make(map[key]bool, len(ds))
	s.workers.mu.Lock()
	defer s.workers.mu.Unlock()
	for _, d := range ds {
		k := key{d.WorkspaceID, d.ID}
		want[k] = true
		if s.workers.m[k] == nil {
			wctx, cancel := context.WithCancel(ctx)
			w := &worker{
				s: s, k: k, cancel: cancel, kickCh: make(chan struct{}, 1), events: map[int64]*store.Event{},
				log: s.log.With("workspace", d.WorkspaceID, "destination_id", d.ID),
			}
			s.workers.m[k] = w
			s.workers.wg.Add(1)
			go func() {
				defer s.workers.wg.Done()
				w.run(wctx)
				cancel()
				s.workers.mu.Lock()
				if s.workers.m[k] == w {
					delete(s.workers.m, k)
				}
				s.workers.mu.Unlock()
			}()
		}
	}
	for k, w := range s.workers.m {
		if !want[k] {
			w.cancel()
		}
	}
}

// errStop ends a worker: its destination is no longer ACTIVE (or no longer exists).
var errStop = errors.New("destination stopped")

// run sends until ctx ends or the destination stops being ACTIVE.
func (w *worker) run(ctx context.Context) {
	s := w.s
	var leaseUntil, retryLease time.Time
	defer func() {
		if !leaseUntil.IsZero() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := s.cfg.Store.ReleaseDestinationLease(rctx, w.k.workspace, w.k.id, s.owner); err != nil {
				w.log.Warn("cannot release the destination's lease", "err", err)
			}
		}
	}()
	renewEvery := s.cfg.LeaseTTL / 3
	failures := 0
	for ctx.Err() == nil {
		now := s.now()
		if leaseUntil.IsZero() && now.Before(retryLease) {
			// Another process sends for it: try again later (or when kicked), without
			// waking at each commit.
			w.sleep(ctx, retryLease.Sub(now), nil)
			continue
		}
		// Taken before the round reads the store, so a commit during the round wakes the
		// wait that follows it.
		wake := s.cfg.Hub.Wait(w.k.workspace)
		var wait time.Duration
		if leaseUntil.IsZero() || !now.Before(leaseUntil.Add(-s.cfg.LeaseTTL+renewEvery)) {
			until := now.Add(s.cfg.LeaseTTL)
			held, err := s.cfg.Store.AcquireDestinationLease(ctx, w.k.workspace, w.k.id, s.owner, now, until)
			switch {
			case errors.Is(err, store.ErrNotFound):
				return
			case err != nil:
				leaseUntil, wait = time.Time{}, w.failed(ctx, &failures, "lease", err)
			case !held:
				leaseUntil, retryLease = time.Time{}, now.Add(renewEvery)
				continue
			default:
				leaseUntil = until
			}
		}
		if wait == 0 {
			var err error
			wait, err = w.round(ctx)
			switch {
			case errors.Is(err, errStop):
				return
			case err != nil:
				wait = w.failed(ctx, &failures, "round", err)
			default:
				failures = 0
			}
		}
		if wait <= 0 {
			continue
		}
		if !leaseUntil.IsZero() { // wake up in time to renew the lease
			wait = min(wait, max(leaseUntil.Add(-s.cfg.LeaseTTL+renewEvery).Sub(s.now()), time.Millisecond))
		}
		w.sleep(ctx, wait, wake)
	}
}

// sleep waits for d, a kick, ctx's end or wake (when not nil).
func (w *worker) sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	case <-w.kickCh:
	case <-wake:
	}
}

// failed logs a store error (unless stopping) and returns how long to wait: a second
// more at each failure in a row, at most 30s.
func (w *worker) failed(ctx context.Context, failures *int, step string, err error) time.Duration {
	*failures++
	if ctx.Err() == nil {
		w.log.Warn("destination worker: store error", "step", step, "err", err)
	}
	return min(time.Duration(*failures)*time.Second, 30*time.Second)
}

// round queues new events, sends what is due and returns how long to wait for the next
// due event (0: go on at once).
func (w *worker) round(ctx context.Context) (time.Duration, error) {
	s := w.s
	d, err := s.cfg.Store.GetDestination(ctx, w.k.workspace, w.k.id)
	if errors.Is(err, store.ErrNotFound) {
		return 0, errStop
	}
	if err != nil {
		return 0, err
	}
	if d.Status != store.DestinationActive {
		return 0, errStop
	}
	more, err := w.enqueue(ctx, d)
	if err != nil {
		return 0, err
	}
	heads, err := s.cfg.Store.DestinationHeads(ctx, w.k.workspace, w.k.id, headsLimit)
	if err != nil {
		return 0, err
	}
	now := s.now()
	var due []*store.DestinationEvent
	wait := time.Hour // nothing queued: a commit or a kick wakes the worker
	for _, h := range heads {
		if h.NextAttemptTime.After(now) {
			wait = h.NextAttemptTime.Sub(now)
			break // heads come soonest due first
		}
		due = append(due, h)
	}
	if len(due) > 0 {
		return 0, w.sendAll(ctx, d, due)
	}
	if more {
		return 0, nil
	}
	return wait, nil
}

// enqueue queues the matching events after the cursor; more reports that there are
// more to read.
func (w *worker) enqueue(ctx context.Context, d *store.Destination) (more bool, err error) {
	s := w.s
	cursor := d.Cursor
	for range readRound {
		last, err := s.cfg.Store.LastSeq(ctx, d.WorkspaceID)
		if err != nil || last <= cursor {
			return false, err
		}
		events, err := s.cfg.Store.ListEvents(ctx, d.WorkspaceID, d.Filter, cursor, readBatch)
		if err != nil {
			return false, err
		}
		next := last // every event up to last was committed when it was read
		switch {
		case len(events) == readBatch:
			next = events[len(events)-1].Seq
		case len(events) > 0 && events[len(events)-1].Seq > last:
			// committed between the two reads, and queued now: the cursor passes it, or the
			// next round would queue it again (after it may have been delivered)
			next = events[len(events)-1].Seq
		}
		queued := make([]*store.DestinationEvent, len(events))
		now := s.now()
		for i, e := range events {
			queued[i] = &store.DestinationEvent{
				Seq: e.Seq, EventID: e.ID, SubscriptionID: e.SubscriptionID, ConnectionID: e.ConnectionID,
				State: store.DestinationEventPending, NextAttemptTime: now,
			}
			w.remember(e)
		}
		if err := s.cfg.Store.EnqueueDestinationEvents(ctx, d.WorkspaceID, d.ID, queued, next); err != nil {
			return false, err
		}
		cursor = next
		if len(events) < readBatch {
			return false, nil
		}
	}
	return true, nil
}

// sendAll sends due heads, Concurrency at a time, and disables the destination when its
// endpoint answered 410 or its webhook can no longer be used.
func (w *worker) sendAll(ctx context.Context, d *store.Destination, due []*store.DestinationEvent) error {
	s := w.s
	wh, err := s.cfg.Store.GetOutgoingWebhook(ctx, d.WorkspaceID, d.WebhookID)
	if errors.Is(err, store.ErrNotFound) {
		return w.disable(ctx, fmt.Sprintf("its webhook %q no longer exists", d.WebhookID))
	}
	if err != nil {
		return err
	}
	if p := outgoing.DeliverableProblem(wh); p != "" {
		return w.disable(ctx, p)
	}
	var (
		mu       sync.Mutex
		firstErr error
		gone     *store.DestinationEvent
		wg       sync.WaitGroup
		sem      = make(chan struct{}, s.cfg.Concurrency)
	)
	for _, e := range due {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			isGone, err := w.send(ctx, d, wh, e)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if isGone && gone == nil {
				gone = e
			}
		}()
	}
	wg.Wait()
	if gone != nil {
		return w.disable(ctx, fmt.Sprintf("the endpoint answered 410 Gone to event %d at %s; it stays queued",
			gone.Seq, s.now().Format(time.RFC3339)))
	}
	return firstErr
}

func (w *worker) disable(ctx context.Context, reason string) error {
	w.log.Warn("destination disabled", "reason", reason)
	if err := w.s.cfg.Store.SetDestinationStatus(ctx, w.k.workspace, w.k.id, store.DestinationDisabled, reason); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return errStop
}

// send makes one attempt of e and stores its outcome; gone reports a 410 answer.
func (w *worker) send(ctx context.Context, d *store.Destination, wh *store.OutgoingWebhook, e *store.DestinationEvent) (gone bool, err error) {
	s := w.s
	ev, err := w.event(ctx, e.Seq)
	if err != nil {
		return false, err
	}
	var a outgoing.Attempt
	if ev == nil {
		a = outgoing.Attempt{Error: fmt.Sprintf("event %d is no longer retained (--event-retention)", e.Seq)}
	} else {
		body, err := Envelope(ev)
		if err != nil {
			return false, fmt.Errorf("destination %q: event %d: %w", d.ID, e.Seq, err)
		}
		if a, err = s.cfg.Sender.Deliver(ctx, wh, ev.ID, body); err != nil {
			return false, err
		}
	}
	if ctx.Err() != nil {
		return false, nil // stopping: the attempt does not count, the event stays due
	}
	now := s.now()
	if a.OK() {
		w.forget(e.Seq)
		w.log.Debug("destination event delivered", "seq", e.Seq, "status", a.Status, "attempts", e.Attempts+1)
		if err := s.cfg.Store.CompleteDestinationEvent(ctx, d.WorkspaceID, d.ID, e.Seq, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			return false, err
		}
		return false, nil
	}
	e.Attempts++
	if e.FirstAttemptTime.IsZero() {
		e.FirstAttemptTime = now
	}
	e.LastStatus, e.LastError = a.Status, a.Error
	deadline := e.FirstAttemptTime.Add(d.RetryWindow)
	switch {
	case a.Gone():
		e.NextAttemptTime = now // sent again as soon as the destination is resumed
	case ev == nil || !now.Before(deadline):
		e.State, e.NextAttemptTime = store.DestinationEventFailed, time.Time{}
		w.forget(e.Seq)
		w.log.Warn("destination event parked", "seq", e.Seq, "attempts", e.Attempts, "status", a.Status, "error", a.Error)
	default:
		e.NextAttemptTime = now.Add(s.backoff(e.Attempts)).Truncate(time.Microsecond)
		if e.NextAttemptTime.After(deadline) {
			e.NextAttemptTime = deadline // one last attempt when the window ends
		}
		w.log.Debug("destination event failed", "seq", e.Seq, "attempts", e.Attempts, "status", a.Status, "error", a.Error,
			"next_attempt", e.NextAttemptTime)
	}
	if err := s.cfg.Store.UpdateDestinationEvent(ctx, e); err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	return a.Gone(), nil
}

// event returns a queued event's event: from memory when this worker queued it, else
// from the store; nil when it is no longer retained.
func (w *worker) event(ctx context.Context, seq int64) (*store.Event, error) {
	w.mu.Lock()
	e, ok := w.events[seq]
	w.mu.Unlock()
	if ok {
		return e, nil
	}
	evs, err := w.s.cfg.Store.ListEvents(ctx, w.k.workspace, store.EventFilter{}, seq-1, 1)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 || evs[0].Seq != seq {
		return nil, nil
	}
	return evs[0], nil
}

func (w *worker) remember(e *store.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.events) < maxCached {
		w.events[e.Seq] = e
	}
}

func (w *worker) forget(seq int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.events, seq)
}

// backoff is the wait after the attempts-th failed attempt: RetryBase doubled each time,
// capped at RetryCap, with ±50% jitter.
func (s *Service) backoff(attempts int) time.Duration {
	d := s.cfg.RetryCap
	if attempts-1 < 40 {
		if b := s.cfg.RetryBase << (attempts - 1); b > 0 && b < d {
			d = b
		}
	}
	return time.Duration(float64(d) * (0.5 + rand.Float64())) //nolint:gosec // jitter, not a secret
}

// Envelope is the body POSTed for an event, in the Standard Webhooks payload shape:
// {type, timestamp, data}, data being the event as the gRPC API streams it.
func Envelope(e *store.Event) ([]byte, error) {
	return value.Encode(map[string]any{
		"type":      e.Type,
		"timestamp": e.ReceiveTime.UTC().Format(time.RFC3339Nano),
		"data": map[string]any{
			"seq": e.Seq, "id": e.ID, "connection_id": e.ConnectionID, "subscription_id": e.SubscriptionID,
			"event_key": e.EventKey, "type": e.Type, "record": e.Record, "external_id": e.ExternalID,
			"delivery_id": e.DeliveryID, "receive_time": e.ReceiveTime.UTC().Format(time.RFC3339Nano),
		},
	})
}
