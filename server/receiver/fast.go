package receiver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/hookmap/hookmap/server/core"
)

// The fasthttp front serves the connections whose first request is to a hook URL
// (serve.go). Under load, net/http's own work was about a fifth of the CPU a webhook cost
// (a goroutine and a read per request to watch the connection, a context, header maps
// and their copies), the same as the whole durable pipeline it is measured against spent
// on it; fasthttp reuses a connection's request and response. docs/performance.md has
// the figures.
//
// What a hook request gets is what the net/http front gives it: the same lookups, body
// limit (a 413 answered at once, then the rest drained), core, replies, X-Request-Id,
// latency metric and recovery. One difference: the core's context does not end when the
// sender hangs up, so a webhook read whole is committed even if its sender has given up
// waiting for the answer.

// FastHandler serves the hook URLs and hands every other request to next.
func (rc *Receiver) FastHandler(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		global, id, ok := hookPath(ctx)
		if !ok || ctx.IsConnect() {
			next(ctx)
			return
		}
		rc.serveFast(ctx, global, id)
	}
}

// hookPath parses a hook URL's path as the net/http front's patterns /hooks/{id} and
// /hooks/g/{id} match it; ok is false for any other path. A path the server normalized
// (dot segments, doubled slashes, escapes) is not parsed: net/http answers it, as it
// answers every other request, with its own rules (a redirect to the clean path).
func hookPath(ctx *fasthttp.RequestCtx) (global bool, id string, ok bool) {
	path := ctx.Path()
	if !bytes.Equal(path, ctx.Request.URI().PathOriginal()) {
		return false, "", false
	}
	rest, ok := bytes.CutPrefix(path, []byte("/hooks/"))
	if !ok {
		return false, "", false
	}
	if r, g := bytes.CutPrefix(rest, []byte("g/")); g {
		global, rest = true, r
	}
	if len(rest) == 0 || bytes.IndexByte(rest, '/') >= 0 {
		return false, "", false
	}
	return global, string(rest), true
}

// serveFast serves one hook request, with what the net/http front's middleware adds.
func (rc *Receiver) serveFast(ctx *fasthttp.RequestCtx, global bool, id string) {
	reqID := newRequestID()
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			reply := rc.recovered(reqID, string(ctx.Path()), p)
			ctx.Response.Reset()
			writeFastReply(ctx, reply)
			ctx.Response.Header.Set("X-Request-Id", reqID)
		}
		if rc.Metrics != nil {
			rc.observe(ctx.Response.StatusCode(), time.Since(start))
		}
	}()
	ctx.Response.Header.Set("X-Request-Id", reqID)
	size := int64(ctx.Request.Header.ContentLength())
	if size < 0 {
		size = -1 // chunked (-1), or no length and no body (-2): unknown, as net/http says
	}
	q := &hookRequest{
		// Not ctx: its Done is the server's, which would fail a commit under way when the
		// server stops; net/http's requests finish theirs.
		ctx: context.Background(), reqID: reqID, global: global, id: id, size: size,
		readBody: func() ([]byte, *refusal) { return rc.readFastBody(ctx) },
		incoming: func(body []byte) *core.Incoming { return rc.fastIncoming(ctx, body) },
	}
	ans := rc.serveHook(q)
	writeFastReply(ctx, ans.reply)
	if ans.tooLarge != nil {
		answerTooLargeFast(ctx)
	}
}

// readFastBody reads the body within the limit, from the stream the server gives every
// request (StreamRequestBody: up to 8 KiB of it read already, the rest from the
// connection), into a buffer of its own: the request's buffers are the connection's next
// request's, and the body outlives it (the mapped records share its strings).
func (rc *Receiver) readFastBody(ctx *fasthttp.RequestCtx) ([]byte, *refusal) {
	limit := rc.maxBody()
	length := int64(ctx.Request.Header.ContentLength())
	if length > limit {
		return nil, refuseAnnounced(length, limit)
	}
	var body []byte
	var err error
	if stream := ctx.RequestBodyStream(); stream != nil {
		body, err = readAll(io.LimitReader(stream, limit+1), length)
	} else { // a request read whole, not by the server (tests)
		body = append([]byte{}, ctx.Request.Body()...)
	}
	if err != nil {
		return nil, refuseUnreadable(err)
	}
	if int64(len(body)) > limit {
		return nil, refuseOverLimit(limit)
	}
	return body, nil
}

// answerTooLargeFast answers a body over the limit as the net/http front does
// (answerTooLarge): the 413 with "Connection: close" at once, then up to MaxDrain bytes of
// the rest of the body are read and discarded, for at most DrainTimeout, and the
// connection closes (see MaxDrain). "At once" is as soon as the handler runs: the server
// reads the first 8 KiB of a body (the limit, when lower) before it, and has sent
// "100 Continue" to a sender that asked for it. The server writes nothing itself: the
// connection is taken over once the handler returns, the reply written on it, then the
// body drained through its stream, which ends where the body ends.
func answerTooLargeFast(ctx *fasthttp.RequestCtx) {
	ctx.SetConnectionClose()
	var reply fasthttp.Response // ctx's is the next request's once the handler returns
	ctx.Response.CopyTo(&reply)
	body := ctx.RequestBodyStream() // left to the hijacker by the server
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		_ = c.SetWriteDeadline(time.Now().Add(DrainTimeout))
		bw := bufio.NewWriter(c)
		if reply.Write(bw) != nil || bw.Flush() != nil || body == nil {
			return
		}
		_ = c.SetReadDeadline(time.Now().Add(DrainTimeout))
		_, _ = io.CopyN(io.Discard, body, MaxDrain)
	})
}

// fastIncoming is the request for the core, as the net/http front makes it: the header's
// names canonical, without Host and Transfer-Encoding (net/http keeps both apart).
func (rc *Receiver) fastIncoming(ctx *fasthttp.RequestCtx, body []byte) *core.Incoming {
	h := &ctx.Request.Header
	header := make(http.Header, h.Len())
	for k, v := range h.All() {
		if string(k) == fasthttp.HeaderHost || string(k) == fasthttp.HeaderTransferEncoding {
			continue
		}
		name := http.CanonicalHeaderKey(string(k))
		header[name] = append(header[name], string(v))
	}
	return &core.Incoming{
		Method:   string(ctx.Method()),
		Path:     string(ctx.Path()),
		RawQuery: string(ctx.URI().QueryString()),
		Header:   header,
		Body:     body,
		URL:      strings.TrimRight(rc.Core.PublicURL, "/") + string(ctx.RequestURI()),
		Received: time.Now().UTC(),
	}
}

// writeFastReply writes rep as writeReply does on the net/http front.
func writeFastReply(ctx *fasthttp.RequestCtx, rep core.Reply) {
	for k, vs := range rep.Header {
		for _, v := range vs {
			ctx.Response.Header.Add(k, v)
		}
	}
	ctx.SetStatusCode(rep.Status)
	ctx.SetBody(rep.Body)
}

// HookHeaderLimit bounds the header of a request on a hook connection. fasthttp reads a
// request into a buffer of this size, allocated whole for every connection it serves,
// where net/http grows its buffer as bytes arrive: at net/http's 64 KiB a stranger could
// hold 64 KiB of memory per connection for a few bytes sent. 16 KiB is twice a header line
// nginx accepts by default, and well above what webhook senders send.
const HookHeaderLimit = 16 << 10

// FastServer is the fasthttp server of the hook connections (Server.Fast), with the HTTP
// port's limits (30 s to read a request and to write a reply, 120 s idle, the receiver's
// body limit) but a header of at most 16 KiB (64 KiB on net/http; see HookHeaderLimit).
// next serves what is not to a hook URL.
func (rc *Receiver) FastServer(next fasthttp.RequestHandler, log *slog.Logger) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:     rc.FastHandler(next),
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second,
		ReadBufferSize:     HookHeaderLimit,
		MaxRequestBodySize: int(rc.maxBody()),
		// A body over the limit reaches the handler as a stream (readFastBody), which
		// records the refusal and answers it in JSON instead of fasthttp's plain 413.
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true, // a body is the sender's bytes, parsed by the core
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		// A worker serves a connection as long as it is open; this is how long one without
		// a connection waits for the next, and how often the pool looks. The pool's watcher
		// outlives the server by up to this long, which a leak check would see.
		MaxIdleWorkerDuration: 200 * time.Millisecond,
		ErrorHandler:          fastError,
		Logger:                fastLogger{log},
	}
}

// fastError answers a request fasthttp could not read, in JSON as every other error.
func fastError(ctx *fasthttp.RequestCtx, err error) {
	status := http.StatusBadRequest
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.As(err, &small):
		status = http.StatusRequestHeaderFieldsTooLarge
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status = http.StatusRequestEntityTooLarge
	case errors.As(err, &ne) && ne.Timeout():
		status = http.StatusRequestTimeout
	}
	refuseFast(ctx, status, "cannot read the request: "+http.StatusText(status))
}

// refuseFast answers a request that is not read to its end with a JSON error and closes
// the connection after it, lingering: the rest of the request may still be on its way.
func refuseFast(ctx *fasthttp.RequestCtx, status int, msg string) {
	writeFastReply(ctx, core.ErrorReply(status, msg))
	ctx.SetConnectionClose()
	if pc, ok := ctx.Conn().(*peekedConn); ok {
		pc.lingerOnClose()
	}
}

// fastLogger writes fasthttp's messages (connection errors) to the log as warnings.
type fastLogger struct{ log *slog.Logger }

func (l fastLogger) Printf(format string, args ...any) { l.log.Warn(fmt.Sprintf(format, args...)) }

// NetHTTP serves a request the Fast front reads but does not serve itself (one that is not
// to a hook URL, on a connection that began with one) with the HTTP port's net/http
// handler h, through fasthttp's adaptor.
//   - The adaptor reads the whole body into memory before h runs (a handler cannot stream
//     it), so a body is read here first, up to maxBody (the JSON API's message bound, the
//     largest body a route of the port takes): over it, the request is answered 413 and
//     the connection closed.
//   - The request's context is a context of its own, ended when h returns: the adaptor's
//     is the connection's RequestCtx, which fasthttp resets for the next request while a
//     context derived from it (a JSON API call derives one) may still be read by the
//     goroutine that watches it.
func NetHTTP(h http.Handler, maxBody int64) fasthttp.RequestHandler {
	adapted := fasthttpadaptor.NewFastHTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	}))
	return func(ctx *fasthttp.RequestCtx) {
		if stream := ctx.RequestBodyStream(); stream != nil {
			body, err := io.ReadAll(io.LimitReader(stream, maxBody+1))
			var ref *refusal
			switch {
			case err != nil:
				ref = refuseUnreadable(err)
			case int64(len(body)) > maxBody:
				ref = refuseOverLimit(maxBody)
			}
			if ref != nil {
				refuseFast(ctx, ref.status, ref.public)
				return
			}
			ctx.Request.SetBody(body)
		}
		adapted(ctx)
	}
}
