package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRunTimeout: a mapping method's run is bounded by RunOptions.Timeout; the error is an
// EvalError at the formula that was running, naming the limit.
func TestRunTimeout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "slow")
	ev := filepath.Join(dir, "events", "e")
	require.NoError(t, os.MkdirAll(ev, 0o755))
	// Each formula stays under the cost limit and runs far longer than 1ns.
	loop := "  - {$cel: 'lists.range(50000).all(i, i >= 0)'}\n"
	for p, s := range map[string]string{
		filepath.Join(dir, "spec.yml"):         "name: Slow\n",
		filepath.Join(ev, "spec.yml"):          "name: E\nimplementationType: webhook\nmethods:\n  subscribe: {implementationType: mapping}\n  handle: {implementationType: mapping}\n",
		filepath.Join(ev, "subscribe.map.yml"): "state: {}\n",
		filepath.Join(ev, "handle.map.yml"):    "checks:\n" + strings.Repeat(loop, 3) + "events: []\n",
	} {
		require.NoError(t, os.WriteFile(p, []byte(s), 0o644))
	}
	set, diags := Load(dir)
	require.Empty(t, diags)
	c, _ := set.Connector("slow")
	h := c.Events["e"].Methods[MethodHandle]

	_, err := h.Run(context.Background(), nil, RunOptions{Timeout: time.Nanosecond})
	var ee *EvalError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, h.File, ee.File)
	require.Contains(t, ee.Message, "evaluation stopped: the evaluation took longer than its limit of 1ns")
	require.ErrorIs(t, err, context.DeadlineExceeded)

	out, err := h.Run(context.Background(), nil, RunOptions{Timeout: time.Minute})
	require.NoError(t, err, "the same work within a generous limit")
	require.Equal(t, []any{}, out.(map[string]any)["events"])
}
