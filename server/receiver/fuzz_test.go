package receiver

import (
	"bufio"
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// FuzzFastRequest: whatever request fasthttp can read reaches the Fast front's handler
// (hook URLs) or its hand-over to net/http (any other) and gets an answer: never a
// panic, which the handler would answer 500 "internal error".
func FuzzFastRequest(f *testing.F) {
	rc, sub := testReceiver(f, slog.New(slog.DiscardHandler), true)
	handler := rc.FastHandler(NetHTTP(rc.Handler(), testHandOverLimit))
	hook := "/hooks/" + sub.ID
	for _, seed := range []string{
		"POST " + hook + " HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 57\r\n\r\n" + okBody,
		"POST " + hook + "?a=1&a=2 HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\naction=",
		"POST " + hook + " HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n4\r\n{\"a\"\r\n2\r\n:1\r\n0\r\n\r\n",
		"PUT /hooks/g/" + sub.ID + " HTTP/1.0\r\nContent-Length: 2\r\n\r\n[]",
		"GET /hooks/%2e%2e/healthz HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST " + hook + " HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain; charset=\"\r\nContent-Length: 3\r\n\r\n\xff\xfe\x00",
		"POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}",
		"HEAD " + hook + " HTTP/1.1\r\nHost: h\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var req fasthttp.Request
		if err := req.Read(bufio.NewReader(bytes.NewReader(raw))); err != nil {
			return // fasthttp answers what it cannot read itself (fastError)
		}
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, nil, nil)
		handler(&ctx)
		status := ctx.Response.StatusCode()
		if status < 100 || status > 599 {
			t.Fatalf("status %d", status)
		}
		if status == http.StatusInternalServerError && strings.Contains(string(ctx.Response.Body()), "internal error (request") {
			t.Fatalf("the handler panicked: %s", ctx.Response.Body())
		}
	})
}
