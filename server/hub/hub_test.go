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
	a := h.Open("ws", "c")
	b := h.Open("ws", "c")
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
	c := h.Open("ws", "c")
	select {
	case <-b.Replaced():
	default:
		t.Fatal("b should be replaced by c")
	}
	h.Close(c)
	require.Empty(t, h.consumers)
}
