package hub

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNotifyWakesWaiters(t *testing.T) {
	h := New()
	w := h.Wait("ws")
	other := h.Wait("other")
	h.Notify("ws", 3)
	select {
	case <-w:
	case <-time.After(time.Second):
		t.Fatal("waiter not woken")
	}
	select {
	case <-other:
		t.Fatal("another workspace's waiter woken")
	default:
	}
	// A fresh wait after the notify blocks until the next one.
	w2 := h.Wait("ws")
	select {
	case <-w2:
		t.Fatal("fresh waiter woken without a notify")
	default:
	}
}

func TestOpenReplacesOlderStream(t *testing.T) {
	h := New()
	a := h.Open("ws", "c", 0)
	b := h.Open("ws", "c", 0)
	select {
	case <-a.Replaced():
	default:
		t.Fatal("older stream not replaced")
	}
	select {
	case <-b.Replaced():
		t.Fatal("newer stream replaced")
	default:
	}
	h.Close(a) // must not unregister b
	c := h.Open("ws", "c", 0)
	select {
	case <-b.Replaced():
	default:
		t.Fatal("b should be replaced by c")
	}
	h.Close(c)
	require.Empty(t, h.consumers)
}

// Generations given by a shared store: an older stream opening late is replaced at once,
// and Replace ends only older streams.
func TestGenerations(t *testing.T) {
	h := New()
	newer := h.Open("ws", "c", 5)
	late := h.Open("ws", "c", 4)
	requireReplaced(t, late, true)
	requireReplaced(t, newer, false)

	h.Replace("ws", "c", 5) // same generation: not newer
	requireReplaced(t, newer, false)
	h.Replace("ws", "other", 9)
	requireReplaced(t, newer, false)
	require.Equal(t, []StreamInfo{{Workspace: "ws", Consumer: "c", Generation: 5}}, h.Streams())
	h.Replace("ws", "c", 6)
	requireReplaced(t, newer, true)
	require.Empty(t, h.Streams())
}

func TestWakeAll(t *testing.T) {
	h := New()
	a, b := h.Wait("a"), h.Wait("b")
	h.WakeAll()
	for _, w := range []<-chan struct{}{a, b} {
		select {
		case <-w:
		default:
			t.Fatal("waiter not woken")
		}
	}
}

func requireReplaced(t *testing.T, s *Stream, want bool) {
	t.Helper()
	select {
	case <-s.Replaced():
		require.True(t, want, "stream %d replaced", s.Generation())
	default:
		require.False(t, want, "stream %d not replaced", s.Generation())
	}
}
