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
	localGen  int64 // the last generation Open numbered itself
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
	gen      int64
	replaced chan struct{}
	once     sync.Once
}

// Replaced is closed when a newer stream of the same consumer opened.
func (s *Stream) Replaced() <-chan struct{} { return s.replaced }

// Generation is the stream's generation: a newer stream of its consumer has a higher one.
func (s *Stream) Generation() int64 { return s.gen }

func (s *Stream) replace() { s.once.Do(func() { close(s.replaced) }) }

// Open registers a stream of the consumer with generation gen, replacing (and
// signalling) the consumer's stream open on this hub when it is older. gen 0 lets the hub
// number the stream itself (one process); processes sharing a store pass the generation
// the store gave (store.Shared.OpenStream). A stream opened with a lower generation than
// the one already open is replaced at once.
func (h *Hub) Open(workspace, consumer string, gen int64) *Stream {
	k := consumerKey{workspace, consumer}
	h.mu.Lock()
	if gen == 0 {
		h.localGen++
		gen = h.localGen
	}
	s := &Stream{key: k, gen: gen, replaced: make(chan struct{})}
	old := h.consumers[k]
	if old != nil && old.gen > gen {
		h.mu.Unlock()
		s.replace()
		return s
	}
	h.consumers[k] = s
	h.mu.Unlock()
	if old != nil {
		old.replace()
	}
	return s
}

// Replace ends the consumer's stream on this hub if its generation is lower than gen: a
// stream with gen opened in another process sharing the store.
func (h *Hub) Replace(workspace, consumer string, gen int64) {
	k := consumerKey{workspace, consumer}
	h.mu.Lock()
	old := h.consumers[k]
	if old == nil || old.gen >= gen {
		h.mu.Unlock()
		return
	}
	delete(h.consumers, k)
	h.mu.Unlock()
	old.replace()
}

// StreamInfo describes an open stream.
type StreamInfo struct {
	Workspace, Consumer string
	Generation          int64
}

// Streams lists the streams open on this hub.
func (h *Hub) Streams() []StreamInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]StreamInfo, 0, len(h.consumers))
	for k, s := range h.consumers {
		out = append(out, StreamInfo{k.workspace, k.name, s.gen})
	}
	return out
}

// WakeAll wakes the waiters of every workspace, so every stream reads the store again
// (after notifications may have been missed).
func (h *Hub) WakeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.workspace {
		close(s.wake)
		s.wake = make(chan struct{})
	}
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
