package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags(nil)
	require.NoError(t, err)
	require.Equal(t, 2, cfg.Rounds)
	require.Equal(t, 10*time.Second, cfg.Duration)
	require.Equal(t, 2*time.Second, cfg.Warmup)
	require.Equal(t, 10*time.Second, cfg.Paced)
	require.Equal(t, 1000, cfg.Rate)
	require.Equal(t, 32, cfg.Conns)
	require.True(t, cfg.Consumer)
	require.Zero(t, cfg.Soak)
	require.Contains(t, []string{"wrk", "go"}, cfg.Load, "auto picks one")

	cfg, err = parseFlags([]string{"-soak", "1h", "-rate", "450", "-load", "go", "-consumer=false"})
	require.NoError(t, err)
	require.Equal(t, time.Hour, cfg.Soak)
	require.Equal(t, 450, cfg.Rate)
	require.Equal(t, "go", cfg.Load)
	require.False(t, cfg.Consumer)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-rounds", "0"}, "-rounds must be at least 1"},
		{[]string{"-duration", "0s"}, "-duration and -paced must be positive"},
		{[]string{"-rate", "0"}, "-rate must be between 1 and 1000000"},
		{[]string{"-connections", "0"}, "-connections must be at least 1"},
		{[]string{"-body", "10"}, "-body must be between 128 and 1048576 bytes"},
		{[]string{"-load", "ab"}, `-load "ab": want auto, wrk or go`},
		{[]string{"extra"}, `unexpected arguments ["extra"]`},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := parseFlags(tc.args)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestWebhookBody(t *testing.T) {
	for _, size := range []int{128, 1024, 4096} {
		b := webhookBody(size)
		require.Len(t, b, size)
		require.Contains(t, string(b), `"action":"opened","user":{"id":1234567,"login":"octocat"}`)
	}
}

func TestParseWrk(t *testing.T) {
	out := []byte("Running 10s test @ http://127.0.0.1:1/hooks/x\n  1 threads and 32 connections\n" +
		"hookmap-bench-wrk 10000123 30000 12 1 2 3 4 8100 25400 105000\n")
	got, err := parseWrk(out)
	require.NoError(t, err)
	require.Equal(t, loadResult{
		Acked: 29988, Non2xx: 12, Errors: 10, Elapsed: 10000123 * time.Microsecond,
		Lat: dist{P50: 8100 * time.Microsecond, P99: 25400 * time.Microsecond, Max: 105 * time.Millisecond},
	}, got)
	require.InDelta(t, 2998.8, got.Rate(), 0.1)

	_, err = parseWrk([]byte("unable to connect to 127.0.0.1:1 Connection refused\n"))
	require.ErrorContains(t, err, "wrk printed no summary")
	_, err = parseWrk([]byte("hookmap-bench-wrk 1 x\n"))
	require.ErrorContains(t, err, "wrk summary")
}

func TestRecorder(t *testing.T) {
	var r recorder
	require.Equal(t, dist{}, r.snapshot())
	// 1..1000 ms in random order, summarised in three snapshots: nearest-rank percentiles
	// of everything added so far.
	ms := rand.Perm(1000)
	for i, v := range ms {
		r.add(time.Duration(v+1) * time.Millisecond)
		if i == 99 || i == 599 {
			s := r.snapshot()
			require.Equal(t, i+1, s.N)
		}
	}
	require.Equal(t, dist{N: 1000, P50: 500 * time.Millisecond, P99: 990 * time.Millisecond, Max: time.Second}, r.snapshot())
	r.add(0)
	require.Equal(t, dist{N: 1001, P50: 500 * time.Millisecond, P99: 990 * time.Millisecond, Max: time.Second}, r.snapshot())
}

func TestSummaryGoals(t *testing.T) {
	load := func(acked int64, p99 time.Duration) loadResult {
		return loadResult{Acked: acked, Elapsed: 10 * time.Second, Lat: dist{P99: p99}}
	}
	pipeline := func(round int, acked int64, p99 time.Duration) systemRun {
		return systemRun{Round: round, System: "pipeline", Throughput: phase{Load: load(acked, p99)}}
	}
	hookmap := func(round int, acked int64, p99, stream time.Duration, rss, wal, walPeak int64) systemRun {
		ph := phase{Load: load(acked, p99), WALBytes: wal * acked, Peaks: peaks{RSSHWM: rss, RSSMax: rss - 1, WALPeak: walPeak}}
		paced := phase{Load: load(1000, time.Millisecond), WALBytes: 1000 * 1000, Peaks: peaks{RSSHWM: 1, RSSMax: 1, WALPeak: 1}}
		return systemRun{Round: round, System: "hookmap", Throughput: ph, Paced: &paced, Stream: dist{N: 1000, P99: stream}}
	}
	verdicts := func(goals []goal) string {
		var b bytes.Buffer
		for _, g := range goals {
			fmt.Fprintf(&b, "%t/%s ", g.Met, g.Skipped)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name string
		runs []systemRun
		rate int
		want string
		out  string
	}{
		{
			name: "all met, at the limits",
			runs: []systemRun{
				pipeline(1, 10000, 10*time.Millisecond), hookmap(1, 9000, 12500*time.Microsecond, 5*time.Millisecond, 150<<20, 4096, 64<<20),
			},
			rate: 1000,
			want: "true/ true/ true/ true/ true/ true/ ",
			out:  "throughput hookmap/pipeline 0.90 (900/s / 1000/s), p99 hookmap/pipeline 1.25",
		},
		{
			name: "all short, just past the limits",
			runs: []systemRun{
				pipeline(1, 10000, 10*time.Millisecond), hookmap(1, 8999, 12501*time.Microsecond, 5*time.Millisecond+1, 150<<20+1, 4097, 64<<20+1),
			},
			rate: 1000,
			want: "false/ false/ false/ false/ false/ false/ ",
		},
		{
			name: "over rounds: totals for throughput, the mean p99, the worst round for the rest",
			runs: []systemRun{
				pipeline(1, 10000, 10*time.Millisecond), hookmap(1, 10000, 5*time.Millisecond, 6*time.Millisecond, 1, 1, 1),
				pipeline(2, 10000, 10*time.Millisecond), hookmap(2, 7000, 20*time.Millisecond, time.Millisecond, 1, 1, 1),
			},
			rate: 1000,
			want: "false/ true/ false/ true/ true/ true/ ",
			out:  "all 2 rounds: throughput hookmap/pipeline 0.85 (850/s / 1000/s), p99 hookmap/pipeline 1.25",
		},
		{
			name: "stream latency at another rate is not judged",
			runs: []systemRun{pipeline(1, 1, time.Millisecond), hookmap(1, 1, time.Millisecond, time.Millisecond, 1, 1, 1)},
			rate: 200,
			want: "true/ true/ true/the paced phase ran at 200/s (p99 1.00ms) true/ true/ true/ ",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			goals := summary(&out, tc.runs, tc.rate)
			require.Equal(t, tc.want, verdicts(goals), out.String())
			require.Contains(t, out.String(), tc.out)
		})
	}
}

func TestRunLine(t *testing.T) {
	r := systemRun{
		Round: 2, System: "hookmap", LoadTool: "wrk", Conns: 32, Consumer: true, Streamed: 30000, CaughtUpOK: true,
		CaughtUp: 1500 * time.Microsecond, Rate: 1000,
		Throughput: phase{
			Load:     loadResult{Acked: 30000, Elapsed: 10 * time.Second, Lat: dist{P50: 9 * time.Millisecond, P99: 25 * time.Millisecond}},
			Peaks:    peaks{RSSHWM: 60 << 20, RSSMax: 59 << 20, WALPeak: 12 << 20, PeakReset: true},
			WALBytes: 30000 * 3000,
			CPU:      12 * time.Second, // 400 µs per webhook, 1.2 cores
			Commits:  commitStats{Commits: 2000, Ops: 30000, Time: 6 * time.Second},
		},
		Paced: &phase{
			Load:     loadResult{Acked: 10000, Elapsed: 10 * time.Second, Lat: dist{P99: 3 * time.Millisecond}},
			Peaks:    peaks{RSSHWM: 50 << 20, RSSMax: 50 << 20, WALPeak: 1 << 20},
			WALBytes: 10000 * 4000,
			CPU:      5 * time.Second,
		},
		Stream: dist{N: 10000, P50: time.Millisecond, P99: 2 * time.Millisecond, Max: 9 * time.Millisecond},
	}
	require.Equal(t, "round=2 system=hookmap load=wrk conns=32 acked=30000 secs=10.00 rate=3000/s p50=9.00ms p99=25.00ms "+
		"non2xx=0 errors=0 rss_hwm=60.0MiB rss_max=59.0MiB wal_peak=12.0MiB wal_per_webhook=3000B cpu_per_webhook=400.0us cpu_cores=1.20 "+
		"batch=15.0 commit=3.00ms writer_busy=0.60 consumer=on streamed=30000 caught_up_after=1.50ms | paced target=1000/s acked=10000 secs=10.00 rate=1000/s "+
		"p50=0.00ms p99=3.00ms non2xx=0 errors=0 rss_hwm_since_start=50.0MiB rss_max=50.0MiB wal_peak=1.0MiB "+
		"wal_per_webhook=4000B cpu_per_webhook=500.0us cpu_cores=0.50 batch=- commit=- writer_busy=- stream_n=10000 stream_p50=1.00ms stream_p99=2.00ms stream_max=9.00ms", r.String())
}
