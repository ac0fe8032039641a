package hookmap

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
)

// Handler handles one event. nil marks it handled: it is acked with the next batch. An
// error leaves it unhandled: Consume calls the handler again with the same event after a
// backoff (or hands it to the WithDeadLetter function), and the events after it wait.
//
// ctx is Consume's context: it ends when Consume's does. A handler may be called again
// for an event it already handled (at-least-once delivery), so it should be idempotent,
// for instance by the event's ID.
type Handler func(ctx context.Context, ev *Event) error

// Filter narrows the events Consume receives. Empty fields match everything; several
// values in one field match any of them; fields are combined with AND. Connection events
// match ConnectionIDs, EventKeys (ConnectionEventKey) and Types; a filter on
// SubscriptionIDs leaves them out.
type Filter struct {
	ConnectionIDs   []string
	SubscriptionIDs []string
	EventKeys       []string
	Types           []string
}

// ConsumeOption configures Consume.
type ConsumeOption func(*consumeConfig)

type consumeConfig struct {
	filter         *hookmapv1.EventFilter
	start          *hookmapv1.StreamPosition
	concurrency    int
	ackSize        int
	ackInterval    time.Duration
	handlerBackoff Backoff
	deadLetter     func(ctx context.Context, ev *Event, err error) error
	retryReplaced  bool
	flushTimeout   time.Duration
}

// Default settings of Consume.
const (
	DefaultAckBatchSize     = 100
	DefaultAckBatchInterval = time.Second
	DefaultFlushTimeout     = 5 * time.Second
)

// DefaultHandlerBackoff is the delay between attempts of a failing handler.
var DefaultHandlerBackoff = Backoff{Initial: 250 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.2}

// ackTimeout bounds one AckEvents call.
const ackTimeout = 10 * time.Second

// workerQueue is how many events a worker may have waiting.
const workerQueue = 64

// maxAhead is how many events Consume takes past the oldest unhandled one: with
// WithConcurrency, other subscriptions' events go on while one is retried, up to this.
const maxAhead = 1024

// WithFilter receives only the events f matches.
func WithFilter(f Filter) ConsumeOption {
	return func(c *consumeConfig) {
		c.filter = &hookmapv1.EventFilter{
			ConnectionIds: f.ConnectionIDs, SubscriptionIds: f.SubscriptionIDs, EventKeys: f.EventKeys, Types: f.Types,
		}
	}
}

// WithStartSeq starts with the event of seq (inclusive) instead of after the consumer's
// committed cursor. After a reconnect Consume goes on after what it has acked itself.
func WithStartSeq(seq int64) ConsumeOption {
	return func(c *consumeConfig) {
		c.start = &hookmapv1.StreamPosition{Position: &hookmapv1.StreamPosition_Seq{Seq: seq}}
	}
}

// WithStartEarliest starts with the earliest retained event instead of after the
// consumer's committed cursor. After a reconnect Consume goes on after what it has acked
// itself.
func WithStartEarliest() ConsumeOption {
	return func(c *consumeConfig) {
		c.start = &hookmapv1.StreamPosition{Position: &hookmapv1.StreamPosition_Earliest{Earliest: true}}
	}
}

// WithStartLatest starts with the next event committed after the stream opens instead
// of after the consumer's committed cursor. After a reconnect Consume goes on from the
// first event it received (or, when it has received none yet, from the latest again).
func WithStartLatest() ConsumeOption {
	return func(c *consumeConfig) {
		c.start = &hookmapv1.StreamPosition{Position: &hookmapv1.StreamPosition_Latest{Latest: true}}
	}
}

// WithConcurrency runs up to n handlers at once (default 1). Events of one subscription
// (and the connection events of one connection) are still handled one at a time in seq
// order; events of different subscriptions may be handled in parallel, in any order. Acks cover only the contiguous prefix of handled
// events (the watermark), so an event that keeps failing holds back the acks of the
// events after it, which are handled again after a reconnect; and once 1,024 events
// past it are taken, Consume waits for it.
func WithConcurrency(n int) ConsumeOption { return func(c *consumeConfig) { c.concurrency = n } }

// WithAckBatch sets when handled events are acked (default 100 events or 1 s). Acks go
// out in the background, one call at a time, each committing every event handled so
// far: the next call is sent once size more events were handled, or at the next tick of
// interval when any is left. Fewer acks cost less; more acks mean fewer events handled
// again after a crash of the consumer.
//
// Size 1 is the other extreme: each event is acked (committed on the server) before its
// handler's goroutine takes the next one.
func WithAckBatch(size int, interval time.Duration) ConsumeOption {
	return func(c *consumeConfig) { c.ackSize, c.ackInterval = size, interval }
}

// WithHandlerBackoff sets the delays between attempts of a failing handler (default
// DefaultHandlerBackoff; a zero Backoff means the default).
func WithHandlerBackoff(b Backoff) ConsumeOption {
	return func(c *consumeConfig) { c.handlerBackoff = b }
}

// WithDeadLetter hands an event whose handler failed to fn instead of retrying it: nil
// from fn marks the event handled and Consume moves on; an error from fn ends Consume
// with that error (the event is not acked).
func WithDeadLetter(fn func(ctx context.Context, ev *Event, err error) error) ConsumeOption {
	return func(c *consumeConfig) { c.deadLetter = fn }
}

// WithRetryReplaced makes Consume reconnect (with backoff) when a newer stream of the
// same consumer took over, instead of returning ErrReplaced. The streams then take the
// consumer from each other in turn: use it for a stand-by that must keep trying.
func WithRetryReplaced() ConsumeOption { return func(c *consumeConfig) { c.retryReplaced = true } }

// WithFlushTimeout bounds how long Consume tries to ack the handled events when it ends
// (default 5 s).
func WithFlushTimeout(d time.Duration) ConsumeOption {
	return func(c *consumeConfig) { c.flushTimeout = d }
}

// Consume streams the events of the durable consumer named consumer and calls h for
// each, in seq order, until ctx ends. It starts after the consumer's committed cursor
// (see the WithStart options) and acks handled events in batches (WithAckBatch).
//
// It reconnects with backoff after any transient failure (the server restarting or
// unreachable, a network error) and resumes after the last committed ack, so an event
// is handled at least once and in order: only events handled after the last committed
// ack may be handled again. A handler error is retried with backoff on the same event
// (see WithDeadLetter).
//
// Consume returns:
//   - ctx's error when ctx ends, after acking the events handled so far (within the
//     WithFlushTimeout; a failed final ack is joined to the error);
//   - an error wrapping ErrReplaced, and the ABORTED status, when a newer stream of the
//     same consumer took over (unless WithRetryReplaced);
//   - an error wrapping the gRPC status of a failure retrying cannot cure
//     (UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT …);
//   - the error of a WithDeadLetter function;
//   - an error when the client was closed under it.
func (c *Client) Consume(ctx context.Context, consumer string, h Handler, opts ...ConsumeOption) error {
	if h == nil {
		return errors.New("hookmap: Consume: nil handler")
	}
	cfg := consumeConfig{
		concurrency: 1, ackSize: DefaultAckBatchSize, ackInterval: DefaultAckBatchInterval,
		handlerBackoff: DefaultHandlerBackoff, flushTimeout: DefaultFlushTimeout,
	}
	for _, o := range opts {
		o(&cfg)
	}
	cfg.handlerBackoff = cfg.handlerBackoff.or(DefaultHandlerBackoff)
	var errs []error
	if cfg.concurrency < 1 {
		errs = append(errs, fmt.Errorf("WithConcurrency(%d): must be at least 1", cfg.concurrency))
	}
	if cfg.ackSize < 1 || cfg.ackInterval <= 0 {
		errs = append(errs, fmt.Errorf("WithAckBatch(%d, %s): size must be at least 1 and interval positive", cfg.ackSize, cfg.ackInterval))
	}
	if cfg.handlerBackoff.Initial <= 0 {
		errs = append(errs, errors.New("WithHandlerBackoff: the Initial delay must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("hookmap: Consume: %w", err)
	}
	r := &consumerRun{
		c: c, name: consumer, h: h, cfg: cfg, log: c.log.With("consumer", consumer),
		handled: map[int64]bool{}, kick: make(chan struct{}, 1),
	}
	return r.run(ctx)
}

// transient reports whether a stream that ended with err is worth opening again.
func transient(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.Unknown, codes.Internal, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Canceled:
		return true
	}
	return false
}

// run is Consume after its options were checked.
func (r *consumerRun) run(parent context.Context) error {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	r.ctx, r.cancel = ctx, cancel

	stopAcker, ackerDone := make(chan struct{}), make(chan struct{})
	go r.acker(stopAcker, ackerDone)
	err := r.loop(parent)
	close(stopAcker)
	<-ackerDone

	if ferr := r.finalFlush(parent); ferr != nil {
		err = errors.Join(err, fmt.Errorf("hookmap: consume %q: final ack: %w", r.name, ferr))
	}
	return err
}

// loop opens streams until Consume must return.
func (r *consumerRun) loop(parent context.Context) error {
	failures := 0
	for {
		if r.ctx.Err() != nil {
			return r.stopErr(parent)
		}
		began := time.Now()
		received, err := r.session()
		if r.ctx.Err() != nil {
			return r.stopErr(parent)
		}
		switch {
		case r.c.closed():
			return fmt.Errorf("hookmap: consume %q: the client was closed: %w", r.name, err)
		case status.Code(err) == codes.Aborted:
			if !r.cfg.retryReplaced {
				return fmt.Errorf("%w: consumer %q: %w", ErrReplaced, r.name, err)
			}
		case err != nil && !transient(err):
			return fmt.Errorf("hookmap: consume %q: %w", r.name, err)
		}
		// A stream that delivered, or stayed up longer than the longest delay, was a
		// recovery: the next failure starts the backoff over.
		if received > 0 || time.Since(began) > r.c.reconnect.Max {
			failures = 0
		}
		r.log.Warn("hookmap: event stream ended; reconnecting", "err", err, "attempt", failures+1)
		if !r.c.reconnect.sleep(r.ctx.Done(), failures) {
			return r.stopErr(parent)
		}
		failures++
	}
}

// stopErr is what Consume returns once its context ended: a fatal error, or parent's.
func (r *consumerRun) stopErr(parent context.Context) error {
	if err := parent.Err(); err != nil {
		return err
	}
	return context.Cause(r.ctx)
}

// setFatal ends Consume with err.
func (r *consumerRun) setFatal(err error) { r.cancel(err) }

// finalFlush acks what was handled, retrying transient failures until the flush
// timeout. It runs after ctx ended, so it has its own deadline.
func (r *consumerRun) finalFlush(parent context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), r.cfg.flushTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		err := r.flush(ctx)
		if err == nil || !transient(err) || ctx.Err() != nil || r.c.closed() {
			return err
		}
		if !r.c.reconnect.sleep(ctx.Done(), attempt) {
			return err
		}
	}
}
