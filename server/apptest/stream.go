package apptest

import (
	"context"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
)

// Stream is an open StreamEvents call whose events arrive on a channel.
type Stream struct {
	h      *Harness
	cancel context.CancelFunc
	events chan *hookmapv1.Event
	errc   chan error
}

// OpenStream opens a stream for consumer; it is closed when the test ends.
func (h *Harness) OpenStream(req *hookmapv1.StreamEventsRequest) *Stream {
	h.T.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.T.Cleanup(cancel)
	cl, err := h.Events.StreamEvents(ctx, req)
	require.NoError(h.T, err)
	// The server sends the headers once it has fixed where the stream starts (a Latest
	// position is read then): waiting for them means an event committed after OpenStream
	// returns is on the stream, however the goroutines are scheduled.
	_, err = cl.Header()
	require.NoError(h.T, err)
	s := &Stream{h: h, cancel: cancel, events: make(chan *hookmapv1.Event, 1024), errc: make(chan error, 1)}
	go func(cl grpc.ServerStreamingClient[hookmapv1.Event]) {
		for {
			e, err := cl.Recv()
			if err != nil {
				s.errc <- err
				close(s.events)
				return
			}
			s.events <- e
		}
	}(cl)
	return s
}

// Next waits up to 10 s for n events.
func (s *Stream) Next(n int) []*hookmapv1.Event {
	s.h.T.Helper()
	var out []*hookmapv1.Event
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case e, ok := <-s.events:
			if !ok {
				s.h.T.Fatalf("stream ended after %d of %d events: %v", len(out), n, <-s.errc)
			}
			out = append(out, e)
		case <-timeout:
			s.h.T.Fatalf("got %d of %d events in 10s", len(out), n)
		}
	}
	return out
}

// None asserts no event arrives within d.
func (s *Stream) None(d time.Duration) {
	s.h.T.Helper()
	select {
	case e, ok := <-s.events:
		if ok {
			s.h.T.Fatalf("unexpected event seq %d type %s", e.GetSeq(), e.GetType())
		}
	case <-time.After(d):
	}
}

// Err waits up to 10 s for the stream to end and returns its error.
func (s *Stream) Err() error {
	s.h.T.Helper()
	for {
		select {
		case _, ok := <-s.events:
			if !ok {
				return <-s.errc
			}
		case <-time.After(10 * time.Second):
			s.h.T.Fatal("stream did not end in 10s")
			return nil
		}
	}
}

// Close cancels the stream.
func (s *Stream) Close() { s.cancel() }
