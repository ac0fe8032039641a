package mapping

import (
	"context"
	"errors"
	"fmt"
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
// starts. A single call of a function (a JMESPath search, a hash) is not interrupted: the
// size of its input bounds it.
func WithTimeout(ctx context.Context, limit time.Duration) (context.Context, context.CancelFunc) {
	if limit <= 0 {
		limit = DefaultTimeout
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= limit {
		return ctx, func() {}
	}
	return context.WithTimeoutCause(ctx, limit, &TimeoutError{Limit: limit})
}
