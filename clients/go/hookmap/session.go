package hookmap

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
)

// consumerRun is one call of Consume: its streams one after the other (sessions), their
// handler goroutines, and the ack bookkeeping they share.
type consumerRun struct {
	c    *Client
	name string
	h    Handler
	cfg  consumeConfig
	log  *slog.Logger

	ctx    context.Context // Consume's context; its cause is a fatal error
	cancel context.CancelCauseFunc

	mu        sync.Mutex
	pending   []int64        // seqs dispatched in this session and not yet handled, in order
	handled   map[int64]bool // handled seqs behind an unhandled one in pending
	watermark int64          // every dispatched event up to it was handled
	since     int            // events handled since the last ack
	ahead     chan struct{}  // a slot per event in pending: at most maxAhead
	firstSeen int64          // the first seq this Consume received

	sendMu    sync.Mutex   // one AckEvents at a time
	committed atomic.Int64 // what the last successful AckEvents committed
	kick      chan struct{}
}

// startPosition is where the next stream starts: the committed cursor unless a start
// position was given; then after what this Consume acked, or where it first received.
func (r *consumerRun) startPosition() *hookmapv1.StreamPosition {
	if r.cfg.start == nil {
		return nil
	}
	seq := r.committed.Load() + 1
	if seq == 1 {
		r.mu.Lock()
		seq = r.firstSeen
		r.mu.Unlock()
	}
	if seq == 0 {
		return r.cfg.start
	}
	return &hookmapv1.StreamPosition{Position: &hookmapv1.StreamPosition_Seq{Seq: seq}}
}

// session runs one stream until it fails or Consume's context ends, then stops its
// handlers: events received and not yet handled are dropped (the next stream sends them
// again). It returns how many events it received and the stream's error.
func (r *consumerRun) session() (received int, err error) {
	sctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	// Commit what the last stream handled first, so this one does not send it again.
	if err := r.flush(sctx); err != nil && !transient(err) {
		r.setFatal(fmt.Errorf("hookmap: consume %q: ack: %w", r.name, err))
		return 0, err
	}
	stream, err := r.c.Events.StreamEvents(sctx, &hookmapv1.StreamEventsRequest{
		Consumer: r.name, Filter: r.cfg.filter, Start: r.startPosition(),
		RecordFormat: hookmapv1.RecordFormat_RECORD_FORMAT_JSON,
	})
	if err != nil {
		return 0, err
	}

	r.mu.Lock()
	r.pending = r.pending[:0]
	clear(r.handled)
	ahead := make(chan struct{}, maxAhead)
	r.ahead = ahead
	r.mu.Unlock()
	rt := newRouter(r.cfg.concurrency)
	queues := make([]chan *Event, r.cfg.concurrency)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan *Event, workerQueue)
		wg.Go(func() { r.work(sctx, queues[i], rt) })
	}
	defer func() {
		cancel()
		for _, q := range queues {
			close(q)
		}
		wg.Wait()
	}()

	for {
		pe, err := stream.Recv()
		if err != nil {
			return received, err
		}
		ev, err := NewEvent(pe)
		if err != nil {
			r.setFatal(err)
			return received, err
		}
		received++
		select {
		case ahead <- struct{}{}:
		case <-sctx.Done():
			return received, sctx.Err()
		}
		r.mu.Lock()
		r.pending = append(r.pending, ev.Seq)
		if r.firstSeen == 0 {
			r.firstSeen = ev.Seq
		}
		r.mu.Unlock()
		select {
		case queues[rt.pick(ev.orderKey())] <- ev:
		case <-sctx.Done():
			return received, sctx.Err()
		}
	}
}

// work handles the events of one queue in order until the session ends.
func (r *consumerRun) work(sctx context.Context, q <-chan *Event, rt *router) {
	for ev := range q {
		if sctx.Err() == nil && r.handle(sctx, ev) {
			r.markHandled(ev.Seq)
		}
		rt.done(ev.orderKey())
	}
}

// handle calls the handler until it succeeds, the dead-letter function takes the event,
// or the session ends; it reports whether the event counts as handled.
func (r *consumerRun) handle(sctx context.Context, ev *Event) bool {
	for attempt := 0; ; attempt++ {
		err := r.h(r.ctx, ev)
		if err == nil {
			return true
		}
		if r.ctx.Err() != nil {
			return false
		}
		if r.cfg.deadLetter != nil {
			if derr := r.cfg.deadLetter(r.ctx, ev, err); derr != nil {
				r.setFatal(fmt.Errorf("hookmap: consume %q: event %d: dead letter: %w", r.name, ev.Seq, derr))
				return false
			}
			return true
		}
		r.log.Warn("hookmap: handler failed; retrying the event", "seq", ev.Seq, "type", ev.Type, "attempt", attempt+1, "err", err)
		if !r.cfg.handlerBackoff.sleep(sctx.Done(), attempt) {
			return false
		}
	}
}

// markHandled records a handled event, moves the watermark over the contiguous handled
// prefix, and sends an ack when the batch is full.
func (r *consumerRun) markHandled(seq int64) {
	r.mu.Lock()
	r.handled[seq] = true
	for len(r.pending) > 0 && r.handled[r.pending[0]] {
		delete(r.handled, r.pending[0])
		r.watermark = max(r.watermark, r.pending[0])
		r.pending = r.pending[1:]
		<-r.ahead
	}
	r.since++
	full := r.since >= r.cfg.ackSize
	r.mu.Unlock()
	switch {
	case r.cfg.ackSize == 1:
		r.ackFailed(r.flush(r.ctx))
	case full:
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

// acker sends the batched acks: when a batch is full and every ack interval.
func (r *consumerRun) acker(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(r.cfg.ackInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-r.kick:
		case <-t.C:
		}
		r.ackFailed(r.flush(r.ctx))
	}
}

// ackFailed logs a failed ack (the next one covers it), or ends Consume when acking
// cannot succeed.
func (r *consumerRun) ackFailed(err error) {
	switch {
	case err == nil || r.ctx.Err() != nil:
	case transient(err):
		r.log.Debug("hookmap: ack failed; the next one covers it", "err", err)
	default:
		r.setFatal(fmt.Errorf("hookmap: consume %q: ack: %w", r.name, err))
	}
}

// flush acks the watermark if it moved since the last ack.
func (r *consumerRun) flush(ctx context.Context) error {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	r.mu.Lock()
	w, n := r.watermark, r.since
	r.mu.Unlock()
	if w <= r.committed.Load() {
		return nil
	}
	actx, cancel := context.WithTimeout(ctx, ackTimeout)
	defer cancel()
	if _, err := r.c.Events.AckEvents(actx, &hookmapv1.AckEventsRequest{Consumer: r.name, Seq: w}, noRetry{}); err != nil {
		return err
	}
	r.committed.Store(w)
	r.mu.Lock()
	r.since = max(r.since-n, 0)
	r.mu.Unlock()
	return nil
}

// router assigns events to handler goroutines: all the queued or running events of a
// subscription (or the connection events of a connection) go to one goroutine, keeping
// their order; a subscription with none goes to the least loaded one.
type router struct {
	mu    sync.Mutex
	load  []int
	bySub map[string]*route
}

type route struct{ worker, n int }

func newRouter(n int) *router { return &router{load: make([]int, n), bySub: map[string]*route{}} }

func (rt *router) pick(sub string) int {
	if len(rt.load) == 1 {
		return 0
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	ro := rt.bySub[sub]
	if ro == nil {
		ro = &route{}
		for i, l := range rt.load {
			if l < rt.load[ro.worker] {
				ro.worker = i
			}
		}
		rt.bySub[sub] = ro
	}
	ro.n++
	rt.load[ro.worker]++
	return ro.worker
}

func (rt *router) done(sub string) {
	if len(rt.load) == 1 {
		return
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	ro := rt.bySub[sub]
	ro.n--
	rt.load[ro.worker]--
	if ro.n == 0 {
		delete(rt.bySub, sub)
	}
}
