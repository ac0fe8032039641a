package receiver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Server serves the HTTP port with two fronts. A connection goes to one of them by its
// first request: Fast takes it when that request is to a hook URL (a webhook sender's
// connection), HTTP takes every other (the console, the JSON API, health, metrics,
// OAuth callbacks). A connection stays with its front: Fast hands a later request that is
// not to a hook URL to the HTTP front's handler (FastHandler's next), and the HTTP
// front's handler serves hook URLs too (Receiver.Handler), so every request is answered
// whichever front reads it.
type Server struct {
	HTTP *http.Server
	Fast *fasthttp.Server
	// FirstRequestTimeout bounds the wait for a new connection's first request line
	// (default 10 s); a connection that has sent none by then is closed.
	FirstRequestTimeout time.Duration

	mu       sync.Mutex
	lis      net.Listener
	closing  bool
	failed   error // a front's Serve that ended on its own
	toHTTP   *connQueue
	toFast   *connQueue
	fastOpen map[*peekedConn]struct{} // the Fast front's connections, which Close closes
}

// Serve accepts connections on lis and serves them until Shutdown or Close.
func (s *Server) Serve(lis net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.lis = lis
	s.toHTTP, s.toFast = newConnQueue(lis.Addr()), newConnQueue(lis.Addr())
	s.mu.Unlock()
	go s.front("net/http", func() error { return s.HTTP.Serve(s.toHTTP) })
	go s.front("fasthttp", func() error { return s.Fast.Serve(s.toFast) })
	var delay time.Duration
	for {
		c, err := lis.Accept()
		if err != nil {
			s.mu.Lock()
			closing, failed := s.closing, s.failed
			s.mu.Unlock()
			if failed != nil {
				return failed
			}
			if closing {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() { // as net/http: back off and go on
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		go s.route(c)
	}
}

// front runs a front's Serve. Should it end other than by Shutdown or Close, the port is
// half served: the listener is closed, and Serve returns that front's error.
func (s *Server) front(name string, serve func() error) {
	err := serve()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || s.failed != nil {
		return
	}
	if err == nil || errors.Is(err, http.ErrServerClosed) {
		err = errors.New("stopped")
	}
	s.failed = fmt.Errorf("receiver: the %s front: %w", name, err)
	_ = s.lis.Close()
}

// route reads c's first request line far enough to tell whether it is to a hook URL and
// hands c, with what was read, to that front.
func (s *Server) route(c net.Conn) {
	timeout := s.FirstRequestTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	var buf [64]byte
	n := 0
	hook, decided := false, false
	for !decided {
		m, err := c.Read(buf[n:])
		n += m
		hook, decided = isHookRequestLine(buf[:n])
		if !decided && (err != nil || n == len(buf)) {
			if err != nil {
				_ = c.Close() // closed, or silent until the timeout: nothing to answer
				return
			}
			decided = true // a request line this long is not to a hook URL
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, head: append([]byte(nil), buf[:n]...)}
	if !hook {
		s.toHTTP.put(pc)
		return
	}
	if !s.track(pc) {
		_ = c.Close()
		return
	}
	s.toFast.put(pc)
}

// track adds c to the Fast front's open connections until it is closed; false when the
// server is closing.
func (s *Server) track(c *peekedConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	if s.fastOpen == nil {
		s.fastOpen = map[*peekedConn]struct{}{}
	}
	s.fastOpen[c] = struct{}{}
	c.onClose = func() {
		s.mu.Lock()
		delete(s.fastOpen, c)
		s.mu.Unlock()
	}
	return true
}

// isHookRequestLine tells whether a request line that starts with b is to a hook URL
// (a method, a space, then /hooks/), once b has enough of it to tell.
func isHookRequestLine(b []byte) (hook, decided bool) {
	const maxMethod = 16
	sp := bytes.IndexByte(b, ' ')
	if sp < 0 {
		return false, len(b) > maxMethod
	}
	if sp == 0 || sp > maxMethod {
		return false, true
	}
	target := b[sp+1:]
	const prefix = "/hooks/"
	if len(target) < len(prefix) {
		return false, !bytes.HasPrefix([]byte(prefix), target)
	}
	return bytes.HasPrefix(target, []byte(prefix)), true
}

// Shutdown stops accepting, then shuts both fronts down gracefully (see http.Server's
// Shutdown): it returns once every connection is idle and closed, or when ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	lis := s.stop()
	if lis == nil {
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errs[0] = s.HTTP.Shutdown(ctx) }()
	go func() { defer wg.Done(); errs[1] = s.Fast.ShutdownWithContext(ctx) }()
	wg.Wait()
	return errors.Join(errs...)
}

// Close closes the listener and every connection at once, also after a Shutdown whose
// time ran out.
func (s *Server) Close() error {
	s.stop()
	err := s.HTTP.Close()
	s.mu.Lock()
	open := make([]*peekedConn, 0, len(s.fastOpen))
	for c := range s.fastOpen {
		open = append(open, c)
	}
	s.mu.Unlock()
	for _, c := range open { // fasthttp has no Close: its connections are closed here
		_ = c.Close()
	}
	return err
}

// stop marks the server closing and closes its listener and queues; nil when it was not
// serving (or already stopped).
func (s *Server) stop() net.Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil
	}
	s.closing = true
	if s.lis == nil {
		return nil
	}
	_ = s.lis.Close()
	s.toHTTP.close()
	s.toFast.close()
	return s.lis
}

// peekedConn is a connection whose first bytes were read already: Read gives them first.
type peekedConn struct {
	net.Conn
	head    []byte
	onClose func()
	closed  sync.Once
	linger  atomic.Bool
}

// Closing a connection with unread bytes makes the kernel answer with a reset, which can
// reach the client before it has read the error reply written just before: it sees a
// broken connection instead of a 431 or 400. A connection closed after such a reply first
// half-closes, then reads and discards what the client still sends (up to lingerBytes, for
// up to lingerTime) until the client closes its side, as net/http does after an error
// reply (it waits half a second).
const (
	lingerBytes = 1 << 20
	lingerTime  = time.Second
)

// lingerOnClose has Close half-close and drain first (see lingerBytes).
func (c *peekedConn) lingerOnClose() { c.linger.Store(true) }

func (c *peekedConn) Close() error {
	if c.linger.Load() {
		_ = c.CloseWrite()
		_ = c.Conn.SetReadDeadline(time.Now().Add(lingerTime))
		_, _ = io.CopyN(io.Discard, c.Conn, lingerBytes)
	}
	err := c.Conn.Close()
	c.closed.Do(func() {
		if c.onClose != nil {
			c.onClose()
		}
	})
	return err
}

func (c *peekedConn) Read(p []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes a TCP connection: net/http does so before closing after an
// error reply, so that the client reads the reply instead of a reset.
func (c *peekedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// connQueue is a listener whose connections route hands over.
type connQueue struct {
	addr   net.Addr
	conns  chan net.Conn
	done   chan struct{}
	closer sync.Once
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// put hands c to the front serving the queue, or closes it when the queue is closed.
func (q *connQueue) put(c net.Conn) {
	select {
	case q.conns <- c:
	case <-q.done:
		_ = c.Close()
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) close() { q.closer.Do(func() { close(q.done) }) }

func (q *connQueue) Close() error { q.close(); return nil }

func (q *connQueue) Addr() net.Addr { return q.addr }
