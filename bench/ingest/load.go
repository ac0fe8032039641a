package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// webhookBody is the JSON body both systems get: size bytes, an issue-like object.
func webhookBody(size int) []byte {
	const head = `{"id":"b2f6c1d0-8c1e-4f5e-9a51-3d2c1b0a9f8e","action":"opened","user":{"id":1234567,"login":"octocat"},"text":"`
	const foot = `"}`
	return []byte(head + strings.Repeat("x", max(0, size-len(head)-len(foot))) + foot)
}

// loadResult is what one load phase got.
type loadResult struct {
	Acked   int64 // 2xx answers
	Non2xx  int64 // other answers
	Errors  int64 // no answer (connection errors, timeouts)
	Elapsed time.Duration
	Lat     dist // of the answered requests (wrk: of all requests; N unset)
}

// Rate is acknowledged requests per second.
func (r loadResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Acked) / r.Elapsed.Seconds()
}

// httpClient keeps up to conns connections to one host alive.
func httpClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy: nil, MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
			DisableCompression: true, IdleConnTimeout: time.Minute,
		},
		Timeout: 30 * time.Second,
	}
}

// post sends one webhook and reads the whole answer.
func post(ctx context.Context, c *http.Client, url string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, err
}

// closedLoad sends from conns senders, each its next request as soon as the last is
// answered, for d.
func closedLoad(ctx context.Context, url string, body []byte, conns int, d time.Duration) loadResult {
	c := httpClient(conns)
	defer c.CloseIdleConnections()
	var acked, non2xx, errs atomic.Int64
	var lat recorder
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				status, err := post(ctx, c, url, body)
				switch {
				case err != nil:
					errs.Add(1)
				case status/100 == 2:
					acked.Add(1)
					lat.add(time.Since(t0))
				default:
					non2xx.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return loadResult{Acked: acked.Load(), Non2xx: non2xx.Load(), Errors: errs.Load(), Elapsed: time.Since(start), Lat: lat.snapshot()}
}

// wrkScript makes wrk POST body and print its summary on one line wrkResult parses.
const wrkScript = `wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%s]==]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("hookmap-bench-wrk %%d %%d %%d %%d %%d %%d %%d %%d %%d %%d\n",
    summary.duration, summary.requests, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
`

// wrkLoad runs wrk with one thread and conns connections for d (rounded up to whole
// seconds, wrk's unit), with its script written into dir.
func wrkLoad(ctx context.Context, url string, body []byte, conns int, d time.Duration, dir string) (loadResult, error) {
	script := filepath.Join(dir, "post.lua")
	if err := os.WriteFile(script, fmt.Appendf(nil, wrkScript, body), 0o600); err != nil {
		return loadResult{}, err
	}
	secs := max(1, int(math.Ceil(d.Seconds())))
	cmd := exec.CommandContext(ctx, "wrk", "-t1", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(secs)+"s", "--latency", "-s", script, url)
	cmd.SysProcAttr = sysProcAttr()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return loadResult{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	return parseWrk(out)
}

// parseWrk reads the line wrkScript's done function prints.
func parseWrk(out []byte) (loadResult, error) {
	for line := range strings.Lines(string(out)) {
		fields, ok := strings.CutPrefix(strings.TrimSpace(line), "hookmap-bench-wrk ")
		if !ok {
			continue
		}
		var v [10]int64
		for i, f := range strings.Fields(fields) {
			if i >= len(v) {
				break
			}
			n, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				return loadResult{}, fmt.Errorf("wrk summary %q: %w", line, err)
			}
			v[i] = n
		}
		us := func(n int64) time.Duration { return time.Duration(n) * time.Microsecond }
		return loadResult{
			Elapsed: us(v[0]), Acked: v[1] - v[2], Non2xx: v[2], Errors: v[3] + v[4] + v[5] + v[6],
			Lat: dist{P50: us(v[7]), P99: us(v[8]), Max: us(v[9])},
		}, nil
	}
	return loadResult{}, fmt.Errorf("wrk printed no summary:\n%s", out)
}

// pacer sends webhooks at a fixed rate, each in its own goroutine (open loop: a slow
// answer does not delay the next request), up to maxInFlight at once.
type pacer struct {
	rate   int
	acked  atomic.Int64
	non2xx atomic.Int64
	errs   atomic.Int64
	lat    recorder
}

const maxInFlight = 256

// run sends rate*d webhooks, one every 1/rate s from now, and returns when all are
// answered.
func (p *pacer) run(ctx context.Context, url string, body []byte, d time.Duration) loadResult {
	c := httpClient(maxInFlight)
	defer c.CloseIdleConnections()
	total := int(float64(p.rate) * d.Seconds())
	interval := time.Second / time.Duration(p.rate)
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
send:
	for i := range total {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				break send
			case <-timer.C:
			}
		}
		select {
		case <-ctx.Done():
			break send
		case sem <- struct{}{}:
		}
		wg.Go(func() {
			defer func() { <-sem }()
			t0 := time.Now()
			status, err := post(ctx, c, url, body)
			switch {
			case err != nil:
				p.errs.Add(1)
			case status/100 == 2:
				p.acked.Add(1)
				p.lat.add(time.Since(t0))
			default:
				p.non2xx.Add(1)
			}
		})
	}
	wg.Wait()
	// The last request goes out 1/rate before d is over: the phase lasts d at least.
	elapsed := max(time.Since(start), d)
	return loadResult{Acked: p.acked.Load(), Non2xx: p.non2xx.Load(), Errors: p.errs.Load(), Elapsed: elapsed, Lat: p.lat.snapshot()}
}
