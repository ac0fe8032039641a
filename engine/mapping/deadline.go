package mapping

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTimeout is how long an evaluation may run when the caller sets no limit.
const DefaultTimeout = time.Second

// ErrCostLimit is wrapped by the EvalError of an expression stopped by the CEL cost limit.
var ErrCostLimit = errors.New("CEL cost limit exceeded")

// TimeoutError is the cause of an evaluation stopped by the deadline WithTimeout set. It
// matches context.DeadlineExceeded with errors.Is.
type TimeoutError struct{ Limit time.Duration }

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("the evaluation took longer than its limit of %s", e.Limit)
}

// Is reports whether target is context.DeadlineExceeded.
func (e *TimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// WithTimeout bounds an evaluation: it returns ctx with a deadline limit from now whose
// cause, once passed, is a *TimeoutError. A ctx whose own deadline comes first is returned
// as it is (with a no-op cancel), so that nested bounds cost nothing. A limit of 0 or less
// means DefaultTimeout.
//
// CEL expressions tracked at run time stop at the deadline (checked every
// InterruptCheckFrequency comprehension iterations); every formula checks it before it
// starts, except in a scope whose SetTimeout took the deadline over (a method's run), where
// it is looked at as a run's own limit is. A single call of a function (a JMESPath search,
// a hash) is not interrupted: the size of its input bounds it.
//
// The context makes no timer until something needs its Done channel (a tracked CEL loop, a
// context derived from it, a request sent with it): Err and Deadline read the clock
// instead. Evaluations bounded by it do not need one otherwise, and a timer per webhook is
// not free.
func WithTimeout(ctx context.Context, limit time.Duration) (context.Context, context.CancelFunc) {
	if limit <= 0 {
		limit = DefaultTimeout
	}
	now := time.Now()
	if d, ok := ctx.Deadline(); ok && d.Sub(now) <= limit {
		return ctx, func() {}
	}
	b := &bound{Context: ctx, start: now, end: now.Add(limit), limit: limit, cause: TimeoutError{Limit: limit}}
	return b, b.cancel
}

// bound is the context WithTimeout returns: its parent with a deadline, whose timer (a
// context.WithDeadlineCause of the parent) is made on first need.
type bound struct {
	context.Context // the parent
	start, end      time.Time
	limit           time.Duration
	cause           TimeoutError

	made     atomic.Bool // timed is set
	canceled atomic.Bool // cancel was called
	mu       sync.Mutex
	timed    context.Context
	stop     context.CancelFunc
}

// timedCtx returns the context with the timer, made on the first call.
func (b *bound) timedCtx() context.Context {
	if b.made.Load() {
		return b.timed
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.timed == nil {
		b.timed, b.stop = context.WithDeadlineCause(b.Context, b.end, &b.cause)
		if b.canceled.Load() {
			b.stop()
		}
		b.made.Store(true)
	}
	return b.timed
}

// over reports whether b has ended by itself, by its deadline or its cancel, without
// having made its timer yet: whoever looks at it then gets the timer's context, which has
// ended the same way.
func (b *bound) over() bool {
	return b.canceled.Load() || !time.Now().Before(b.end)
}

func (b *bound) cancel() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.canceled.Store(true)
	if b.stop != nil {
		b.stop()
	}
}

func (b *bound) Deadline() (time.Time, bool) { return b.end, true }

func (b *bound) Done() <-chan struct{} { return b.timedCtx().Done() }

func (b *bound) Err() error {
	if b.made.Load() || b.over() {
		return b.timedCtx().Err()
	}
	return b.Context.Err()
}

func (b *bound) Value(key any) any {
	if b.made.Load() || b.over() {
		return b.timedCtx().Value(key) // context.Cause finds the timer's cause
	}
	return b.Context.Value(key)
}

func (b *bound) String() string {
	return fmt.Sprintf("mapping.WithTimeout(%v, %s)", b.Context, b.limit)
}
