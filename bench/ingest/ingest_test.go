package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var (
	binDir                      string
	buildOnce                   sync.Once
	hookmapBin, pipelineBin     string
	connectorsDir, buildFailure string
)

func TestMain(m *testing.M) {
	var err error
	binDir, err = os.MkdirTemp("", "hookmap-ingest-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(binDir)
	os.Exit(code)
}

// binaries builds hookmap and the pipeline once for the package's tests, as run does.
func binaries(t *testing.T) (string, string) {
	t.Helper()
	buildOnce.Do(func() {
		ctx := context.Background()
		repo, err := moduleRoot(ctx)
		if err != nil {
			buildFailure = err.Error()
			return
		}
		connectorsDir = filepath.Join(repo, "bench", "connector")
		hookmapBin, pipelineBin, err = build(ctx, repo, binDir, false)
		if err != nil {
			buildFailure = err.Error()
		}
	})
	if buildFailure != "" {
		t.Fatal(buildFailure)
	}
	return hookmapBin, pipelineBin
}

// The comparison runs end to end, with the consumer streaming during the throughput
// phase and without, and reports figures for both systems. Only that figures exist is
// asserted, never how good they are.
func TestComparison(t *testing.T) {
	hm, pl := binaries(t)
	for _, consumerOn := range []bool{true, false} {
		t.Run(map[bool]string{true: "consumer on", false: "consumer off"}[consumerOn], func(t *testing.T) {
			var out bytes.Buffer
			cfg := config{
				Rounds: 1, Duration: time.Second, Warmup: 300 * time.Millisecond, Paced: time.Second, Rate: 200,
				Load: "go", Conns: 8, Consumer: consumerOn, Body: 1024, Hookmap: hm, Pipeline: pl, Out: &out,
			}
			runs, err := run(context.Background(), cfg)
			require.NoError(t, err, out.String())
			t.Log("\n" + out.String())
			require.Len(t, runs, 2)

			for i, system := range []string{"pipeline", "hookmap"} {
				r := runs[i]
				require.Equal(t, system, r.System)
				require.Equal(t, 1, r.Round)
				phases := []*phase{&r.Throughput}
				if system == "hookmap" {
					require.NotNil(t, r.Paced, "hookmap has a paced phase")
					phases = append(phases, r.Paced)
				} else {
					require.Nil(t, r.Paced, "the pipeline has no paced phase")
				}
				for _, ph := range phases {
					require.Positive(t, ph.Load.Acked, "%s acknowledged webhooks", system)
					require.Zero(t, ph.Load.Non2xx, "%s non-2xx answers", system)
					require.Zero(t, ph.Load.Errors, "%s failed requests", system)
					require.Positive(t, ph.Load.Lat.P99, "%s p99", system)
					require.Positive(t, ph.WALPerWebhook(), "%s WAL bytes per webhook", system)
					require.Positive(t, ph.Peaks.WALPeak, "%s WAL peak", system)
					require.Positive(t, ph.Peaks.RSSHWM, "%s peak RSS", system)
					require.Positive(t, ph.Peaks.RSSMax, "%s sampled RSS", system)
					require.Positive(t, ph.CPU, "%s CPU time", system)
				}
				require.Contains(t, out.String(), r.String()+"\n", "the run's line is printed")
			}

			hook := runs[1]
			require.Equal(t, consumerOn, hook.Consumer)
			if consumerOn {
				require.Positive(t, hook.Streamed, "events streamed during the throughput load")
				require.True(t, hook.CaughtUpOK, "the consumer caught up after the load")
				require.Contains(t, out.String(), "consumer=on")
			} else {
				require.Zero(t, hook.Streamed)
				require.Contains(t, out.String(), "consumer=off")
			}
			// The paced phase sends exactly rate x duration webhooks, and each is streamed
			// with its latency.
			require.EqualValues(t, 200, hook.Paced.Load.Acked)
			require.Equal(t, 200, hook.Stream.N)
			require.Positive(t, hook.Stream.P50)
			require.GreaterOrEqual(t, hook.Stream.Max, hook.Stream.P99)

			require.Contains(t, out.String(), "summary:\n  round 1: throughput hookmap/pipeline ")
			for _, g := range []string{"throughput >= 0.9x", "p99 <= 1.25x", "peak RSS <= 150 MiB", "WAL <= 4 KiB per webhook", "WAL peak <= 64 MiB"} {
				require.Regexp(t, `\n  `+regexp.QuoteMeta(g)+`.* (met|short) +\(`, out.String())
			}
			require.Contains(t, out.String(), "receive-to-stream p99 <= 5ms at 1,000/s      not measured: the paced phase ran at 200/s")
		})
	}
}

// The soak reports as it goes and ends with the goals.
func TestSoak(t *testing.T) {
	hm, pl := binaries(t)
	var out bytes.Buffer
	cfg := config{Soak: 1500 * time.Millisecond, Every: 500 * time.Millisecond, Rate: 100, Body: 1024, Hookmap: hm, Pipeline: pl, Out: &out}
	require.NoError(t, soak(context.Background(), cfg), out.String())
	t.Log("\n" + out.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var progress int
	for _, l := range lines {
		if strings.HasPrefix(l, "t=") {
			progress++
			require.Regexp(t, `^t=\d+\.\ds acked=\d+ rate=\d+/s non2xx=0 errors=0 wal=[\d.]+MiB wal_peak=[\d.]+MiB rss=[\d.]+MiB rss_hwm=[\d.]+MiB stream_n=\d+ stream_p99=[\d.]+ms stream_max=[\d.]+ms$`, l)
		}
	}
	require.GreaterOrEqual(t, progress, 3, "two reports on the way and the last")
	require.Contains(t, out.String(), "\nsoak done: 150 acknowledged in ")
	require.Regexp(t, `\nt=\d+\.\ds acked=150 .*\nsoak done`, out.String(), "the last report counts every webhook")
	require.Regexp(t, `\n  WAL peak <= 64 MiB +(met|short) +\(`, out.String())
}

// The bench connector passes its own tests (hookmap test), as CI runs them.
func TestBenchConnector(t *testing.T) {
	hm, _ := binaries(t)
	out, err := exec.Command(hm, "test", filepath.Join(connectorsDir, "bench")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "ok: 6 tests in 1 files")
}
