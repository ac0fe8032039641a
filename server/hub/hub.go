package hub

import (
	"errors"
	"sync"
)

// ErrReplaced is the cause a stream is cancelled with when a newer stream of the same
// consumer opens.
var ErrReplaced = errors.New("a newer stream of this consumer replaced this one")

// Hub tracks, per workspace, the highest committed seq and who waits for more.
type Hub struct {
	mu        sync.Mutex
	workspace map[string]*wsState
	consumers map[consumerKey]*Stream
	closing   chan struct{}
	closeOnce sync.Once
}

type wsState struct {
	seq  int64
	wake chan struct{}
}

type consumerKey struct{ workspace, name string }

// New returns an empty hub.
func New() *Hub {
	return &Hub{workspace: map[string]*wsState{}, consumers: map[consumerKey]*Stream{}, closing: make(chan struct{})}
}

func (h *Hub) state(ws string) *wsState {
	s := h.workspace[ws]
	if s == nil {
		s = &wsState{wake: make(chan struct{})}
		h.workspace[ws] = s
	}
	return s
}

// Wait returns a channel closed at the next Notify for workspace. Take it before reading
// the store so no commit between the read and the wait is missed.
func (h *Hub) Wait(workspace string) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state(workspace).wake
}

// Notify tells the workspace's waiters that events up to seq are committed.
func (h *Hub) Notify(workspace string, seq int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.state(workspace)
	if seq > s.seq {
		s.seq = seq
	}
	close(s.wake)
	s.wake = make(chan struct{})
}

// Stream is one open stream of a consumer.
type Stream struct {
	key      consumerKey
	replaced chan struct{}
	once     sync.Once
}

// Replaced is closed when a newer stream of the same consumer opened.
func (s *Stream) Replaced() <-chan struct{} { return s.replaced }

// Open registers a stream for the consumer, replacing (and signalling) the older one.
func (h *Hub) Open(workspace, consumer string) *Stream {
	k := consumerKey{workspace, consumer}
	s := &Stream{key: k, replaced: make(chan struct{})}
	h.mu.Lock()
	old := h.consumers[k]
	h.consumers[k] = s
	h.mu.Unlock()
	if old != nil {
		old.once.Do(func() { close(old.replaced) })
	}
	return s
}

// Close unregisters the stream if it is still the consumer's active one.
func (h *Hub) Close(s *Stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.consumers[s.key] == s {
		delete(h.consumers, s.key)
	}
}

// Closing is closed when the server shuts down: streams end.
func (h *Hub) Closing() <-chan struct{} { return h.closing }

// Shutdown tells every open stream to end (server shutdown).
func (h *Hub) Shutdown() {
	h.closeOnce.Do(func() { close(h.closing) })
}
