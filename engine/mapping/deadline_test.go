package mapping

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWithTimeout(t *testing.T) {
	ctx, cancel := WithTimeout(context.Background(), time.Hour)
	defer cancel()
	d, ok := ctx.Deadline()
	require.True(t, ok)
	require.WithinDuration(t, time.Now().Add(time.Hour), d, time.Minute)

	// an earlier deadline is kept as it is
	inner, cancelInner := WithTimeout(ctx, 2*time.Hour)
	defer cancelInner()
	require.Equal(t, ctx, inner)

	// 0 is the default
	def, cancelDef := WithTimeout(context.Background(), 0)
	defer cancelDef()
	d, ok = def.Deadline()
	require.True(t, ok)
	require.WithinDuration(t, time.Now().Add(DefaultTimeout), d, DefaultTimeout)
}

// TestWithTimeoutTimer: the context WithTimeout returns makes its timer only when its Done
// channel is needed; until then it ends by the clock, with the same errors and causes as a
// context.WithDeadlineCause would.
func TestWithTimeoutTimer(t *testing.T) {
	type key struct{}
	parent := context.WithValue(context.Background(), key{}, "v")
	timed := func(ctx context.Context) bool { return ctx.(*bound).made.Load() }

	ctx, cancel := WithTimeout(parent, time.Hour)
	require.NoError(t, ctx.Err())
	require.Equal(t, "v", ctx.Value(key{}))
	require.NoError(t, context.Cause(ctx))
	require.False(t, timed(ctx), "Err, Value and Deadline make no timer")
	select {
	case <-ctx.Done():
		t.Fatal("done an hour early")
	default:
	}
	require.True(t, timed(ctx))
	cancel()
	<-ctx.Done()
	require.ErrorIs(t, ctx.Err(), context.Canceled)
	require.ErrorIs(t, context.Cause(ctx), context.Canceled)
	require.Equal(t, "v", ctx.Value(key{}))

	// past its deadline, without a timer
	ctx, cancel = WithTimeout(parent, time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	require.ErrorIs(t, ctx.Err(), context.DeadlineExceeded)
	var te *TimeoutError
	require.ErrorAs(t, context.Cause(ctx), &te)
	require.Equal(t, time.Nanosecond, te.Limit)
	<-ctx.Done()

	// cancelled before anything looked
	ctx, cancel = WithTimeout(parent, time.Hour)
	cancel()
	require.ErrorIs(t, context.Cause(ctx), context.Canceled)
	<-ctx.Done()
	require.ErrorIs(t, ctx.Err(), context.Canceled)

	// the parent's end and cause, with a timer or without
	for _, look := range []bool{false, true} {
		p, stop := context.WithCancelCause(parent)
		ctx, cancel = WithTimeout(p, time.Hour)
		if look {
			_ = ctx.Done()
		}
		boom := errors.New("boom")
		stop(boom)
		require.ErrorIs(t, ctx.Err(), context.Canceled)
		require.ErrorIs(t, context.Cause(ctx), boom)
		<-ctx.Done()
		cancel()
	}

	// a context derived from it ends at its deadline
	ctx, cancel = WithTimeout(parent, 10*time.Millisecond)
	defer cancel()
	child, cancelChild := context.WithCancel(ctx)
	defer cancelChild()
	<-child.Done()
	require.ErrorIs(t, child.Err(), context.DeadlineExceeded)
	require.ErrorAs(t, context.Cause(child), &te)
}

// TestWithTimeoutConcurrent: its timer is made once, whoever asks first.
func TestWithTimeoutConcurrent(t *testing.T) {
	ctx, cancel := WithTimeout(context.Background(), time.Hour)
	var wg sync.WaitGroup
	chans := make([]<-chan struct{}, 8)
	for i := range chans {
		wg.Go(func() {
			_ = ctx.Err()
			chans[i] = ctx.Done()
			_ = ctx.Value(i)
		})
	}
	wg.Go(cancel)
	wg.Wait()
	for _, c := range chans {
		require.Equal(t, chans[0], c)
		<-c
	}
	require.ErrorIs(t, ctx.Err(), context.Canceled)
}

// TestScopeTakesOverWithTimeout: a run (SetTimeout) in a WithTimeout context looks at the
// context's deadline as at its own, sharing it with the other runs in that context, and
// makes its timer only for a tracked loop.
func TestScopeTakesOverWithTimeout(t *testing.T) {
	cheap := mustCompile(t, "a: {$cel: 'data.x + \"y\"'}\nb: {$jmespath: 'data.x'}\nc: {$cel: 'rawBody + \"x\"'}\n")
	loop := mustCompile(t, "a: 1\nb: {$cel: 'lists.range(100000).all(i, i >= 0)'}\n")
	vars := map[string]any{"data": map[string]any{"x": "abc"}, "rawBody": "b"}

	ctx, cancel := WithTimeout(context.Background(), time.Hour)
	s := NewScope(ctx, vars)
	s.SetTimeout(2 * time.Hour)
	require.NotNil(t, s.dl, "the deadline taken over")
	require.Equal(t, time.Hour, s.dl.limit)
	_, err := cheap.Eval(s)
	require.NoError(t, err)
	require.False(t, ctx.(*bound).made.Load(), "no timer for formulas that do not loop")
	_, err = loop.Eval(s)
	require.NoError(t, err)
	require.True(t, ctx.(*bound).made.Load(), "a tracked loop needs the timer")
	s.Release()
	cancel()

	// a run's own shorter limit comes first
	ctx, cancel = WithTimeout(context.Background(), time.Hour)
	defer cancel()
	s = NewScope(ctx, vars)
	s.SetTimeout(time.Nanosecond)
	require.Equal(t, time.Nanosecond, s.dl.limit)
	s.Release()

	// the deadline is the context's, shared by every run in it
	ctx, cancel = WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	for _, v := range []*Value{loop, mustCompile(t, "a: 1\nb: {$cel: 'rawBody + \"x\"'}\n")} {
		s := NewScope(ctx, vars)
		s.SetTimeout(time.Hour)
		_, err := v.Eval(s)
		var ee *EvalError
		require.ErrorAs(t, err, &ee)
		require.Equal(t, 2, ee.Line)
		require.Equal(t, "evaluation stopped: the evaluation took longer than its limit of 1ns", ee.Message)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		s.Release()
	}
}

// TestTimeoutStopsFormulas: once the deadline has passed, a CEL loop stops at its next
// interrupt check and no formula (CEL or JMESPath) starts; the error names the formula's
// position and the limit, and matches context.DeadlineExceeded.
func TestTimeoutStopsFormulas(t *testing.T) {
	ctx, cancel := WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	for _, src := range []string{
		"a: 1\nb: {$cel: 'lists.range(100000).all(i, i >= 0)'}\n",
		"a: 1\nb: {$cel: 'data.x'}\n",
		"a: 1\nb: {$jmespath: 'data.x'}\n",
	} {
		v := mustCompile(t, src)
		_, err := v.Eval(NewScope(ctx, map[string]any{"data": map[string]any{"x": int64(1)}}))
		var ee *EvalError
		require.ErrorAs(t, err, &ee, src)
		require.Equal(t, 2, ee.Line, src)
		require.Equal(t, "evaluation stopped: the evaluation took longer than its limit of 1ns", ee.Message, src)
		require.ErrorIs(t, err, context.DeadlineExceeded, src)
		var te *TimeoutError
		require.ErrorAs(t, err, &te, src)
	}
}

// TestScopeTimeout: SetTimeout bounds a scope's evaluations without a context timer until
// a tracked expression needs one; the scopes made with With share the deadline.
func TestScopeTimeout(t *testing.T) {
	// Formulas that may do real work look at the clock before they start.
	for _, src := range []string{
		"a: 1\nb: {$cel: 'lists.range(100000).all(i, i >= 0)'}\n", // tracked
		"a: 1\nb: {$cel: 'rawBody + \"x\"'}\n",                    // bounded at load, up to 1 MiB of work
		"a: 1\nb: {$jmespath: 'length(data.x)'}\n",                // converts data first
	} {
		v := mustCompile(t, src)
		s := NewScope(context.Background(), map[string]any{"data": map[string]any{"x": "abc"}, "rawBody": "b"})
		s.SetTimeout(time.Nanosecond)
		time.Sleep(time.Millisecond) // the deadline has passed
		for _, sc := range []*Scope{s, s.With(map[string]any{"response": nil})} {
			_, err := v.Eval(sc)
			var ee *EvalError
			require.ErrorAs(t, err, &ee, src)
			require.Equal(t, 2, ee.Line, src)
			require.Equal(t, "evaluation stopped: the evaluation took longer than its limit of 1ns", ee.Message, src)
			require.ErrorIs(t, err, context.DeadlineExceeded, src)
		}
		s.Release()
	}

	// Cheap formulas look at the clock only once together they may have done clockEvery
	// units of work.
	cheap := mustCompile(t, "a: {$cel: 'data.x + \"y\"'}\nb: {$jmespath: 'data.x'}\n")
	s := NewScope(context.Background(), map[string]any{"data": map[string]any{"x": "abc"}})
	s.SetTimeout(time.Nanosecond)
	time.Sleep(time.Millisecond)
	looked := false
	for range clockEvery {
		if _, err := cheap.Eval(s); err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			looked = true
			break
		}
	}
	require.True(t, looked)
	s.Release()

	// a later limit than the context's own deadline changes nothing
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s = NewScope(ctx, nil)
	s.SetTimeout(time.Hour)
	require.Nil(t, s.dl)
	s.SetTimeout(time.Second)
	require.NotNil(t, s.dl)
	s.Release()
}
