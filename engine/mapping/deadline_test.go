package mapping

import (
	"context"
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
