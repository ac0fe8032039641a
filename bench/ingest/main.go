package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hookmap/hookmap/bench/sigprof"
)

// config is the run's settings (the flags).
type config struct {
	Rounds   int
	Duration time.Duration // of the throughput load
	Warmup   time.Duration
	Paced    time.Duration // of the receive-to-stream phase
	Rate     int           // webhooks per second in the paced phase and the soak
	Load     string        // auto, wrk or go
	Conns    int
	Consumer bool // a consumer streams during the throughput phase
	Soak     time.Duration
	Body     int           // webhook body size in bytes
	Every    time.Duration // the soak's report interval

	CPUProfile string // folder of the throughput phases' CPU profiles ("": none)

	// Set by tests: prebuilt binaries (else they are built) and where the output goes.
	Hookmap, Pipeline string
	Out               io.Writer
}

func parseFlags(args []string) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.IntVar(&cfg.Rounds, "rounds", 2, "rounds, each the pipeline then hookmap")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "throughput load per system and round (wrk: whole seconds)")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "load before the throughput phase, not measured")
	fs.DurationVar(&cfg.Paced, "paced", 10*time.Second, "receive-to-stream phase (hookmap)")
	fs.IntVar(&cfg.Rate, "rate", 1000, "webhooks per second in the receive-to-stream phase and the soak")
	fs.StringVar(&cfg.Load, "load", "auto", "throughput load generator: wrk, go (built in), or auto (wrk when on the PATH)")
	fs.IntVar(&cfg.Conns, "connections", 32, "connections of the throughput load")
	fs.BoolVar(&cfg.Consumer, "consumer", true, "a consumer streams hookmap's events during the throughput phase")
	fs.DurationVar(&cfg.Soak, "soak", 0, "instead of the comparison: paced load at -rate on hookmap alone for this long")
	fs.IntVar(&cfg.Body, "body", 1024, "webhook body size in bytes")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of each system's throughput phase into this folder (SYSTEM-roundN.pprof; hookmap is built with -tags benchprofile)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	cfg.Every = 10 * time.Second
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if cfg.Rounds < 1 {
		errs = append(errs, errors.New("-rounds must be at least 1"))
	}
	if cfg.Duration <= 0 || cfg.Paced <= 0 || cfg.Warmup < 0 || cfg.Soak < 0 {
		errs = append(errs, errors.New("-duration and -paced must be positive, -warmup and -soak not negative"))
	}
	if cfg.Rate < 1 || cfg.Rate > 1_000_000 {
		errs = append(errs, errors.New("-rate must be between 1 and 1000000"))
	}
	if cfg.Conns < 1 {
		errs = append(errs, errors.New("-connections must be at least 1"))
	}
	if cfg.Body < 128 || cfg.Body > 1<<20 {
		errs = append(errs, errors.New("-body must be between 128 and 1048576 bytes"))
	}
	switch cfg.Load {
	case "auto":
		cfg.Load = "go"
		if _, err := exec.LookPath("wrk"); err == nil {
			cfg.Load = "wrk"
		}
	case "wrk":
		if _, err := exec.LookPath("wrk"); err != nil {
			errs = append(errs, fmt.Errorf("-load wrk: %w", err))
		}
	case "go":
	default:
		errs = append(errs, fmt.Errorf("-load %q: want auto, wrk or go", cfg.Load))
	}
	return cfg, errors.Join(errs...)
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(2)
	}
	cfg.Out = os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.Soak > 0 {
		err = soak(ctx, cfg)
	} else {
		_, err = run(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}

// harness is what a run shares: its folder, binaries and context.
type harness struct {
	cfg        config
	dir        string
	connectors string
	body       []byte
	cancel     context.CancelCauseFunc
}

// setup makes the run's folder and binaries. The context it returns ends, with the
// error as its cause, when a subprocess dies; cleanup stops it and removes the folder.
func setup(ctx context.Context, cfg config) (context.Context, *harness, func(), error) {
	repo, err := moduleRoot(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	dir, err := os.MkdirTemp("", "hookmap-ingest-")
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	cleanup := func() {
		cancel(nil)
		_ = os.RemoveAll(dir)
	}
	h := &harness{cfg: cfg, dir: dir, connectors: filepath.Join(repo, "bench", "connector"), body: webhookBody(cfg.Body), cancel: cancel}
	if cfg.CPUProfile != "" {
		if err := os.MkdirAll(cfg.CPUProfile, 0o755); err != nil {
			cleanup()
			return nil, nil, nil, err
		}
	}
	if h.cfg.Hookmap == "" || h.cfg.Pipeline == "" {
		h.cfg.Hookmap, h.cfg.Pipeline, err = build(ctx, repo, dir, cfg.CPUProfile != "")
		if err != nil {
			cleanup()
			return nil, nil, nil, err
		}
	}
	if h.cfg.Out == nil {
		h.cfg.Out = io.Discard
	}
	if onTmpfs(dir) {
		fmt.Fprintf(h.cfg.Out, "warning: %s is on tmpfs, where fsync costs nothing: the figures are not those of a disk (set TMPDIR)\n", dir)
	}
	return ctx, h, cleanup, nil
}

// failed is the run's error when its context ended: a subprocess that died, or Ctrl-C.
func failed(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return err
}

// run runs the comparison and prints its lines and summary.
func run(ctx context.Context, cfg config) ([]systemRun, error) {
	ctx, h, cleanup, err := setup(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	out := h.cfg.Out
	fmt.Fprintf(out, "ingest: %d round(s), throughput %s after %s warm-up with %s (%d connections), paced %d/s for %s, consumer during throughput: %t, body %d B\n",
		cfg.Rounds, cfg.Duration, cfg.Warmup, cfg.Load, cfg.Conns, cfg.Rate, cfg.Paced, cfg.Consumer, len(h.body))
	var runs []systemRun
	for round := 1; round <= cfg.Rounds; round++ {
		p, err := h.pipelineRound(ctx, round)
		if err != nil {
			return runs, failed(ctx, fmt.Errorf("round %d, pipeline: %w", round, err))
		}
		fmt.Fprintln(out, p)
		runs = append(runs, p)
		k, err := h.hookmapRound(ctx, round)
		if err != nil {
			return runs, failed(ctx, fmt.Errorf("round %d, hookmap: %w", round, err))
		}
		fmt.Fprintln(out, k)
		runs = append(runs, k)
	}
	summary(out, runs, cfg.Rate)
	return runs, nil
}

// stopProfile stops the CPU profile of t's phase and waits (up to 10 s) until it is
// written: the file appears once it is complete (package sigprof).
func (t *target) stopProfile() {
	_ = t.proc.cmd.Process.Signal(syscall.SIGUSR2)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(t.profile); err == nil {
			return
		}
	}
}

// profile is where a system writes the CPU profile of its throughput phase (package
// sigprof) when -cpuprofile asks for one (an older file of that name is removed), and
// the environment that tells it so.
func (h *harness) profile(system string, round int) (path string, env []string) {
	if h.cfg.CPUProfile == "" {
		return "", nil
	}
	path = filepath.Join(h.cfg.CPUProfile, fmt.Sprintf("%s-round%d.pprof", system, round))
	_ = os.Remove(path)
	return path, []string{sigprof.Env + "=" + path}
}

// dataDir is a fresh folder for one system's data.
func (h *harness) dataDir(name string) (string, func(), error) {
	d, err := os.MkdirTemp(h.dir, name+"-")
	if err != nil {
		return "", nil, err
	}
	return d, func() { _ = os.RemoveAll(d) }, nil
}

func (h *harness) pipelineRound(ctx context.Context, round int) (systemRun, error) {
	r := systemRun{Round: round, System: "pipeline", LoadTool: h.cfg.Load, Conns: h.cfg.Conns}
	dir, remove, err := h.dataDir("pipeline")
	if err != nil {
		return r, err
	}
	defer remove()
	prof, env := h.profile("pipeline", round)
	t, err := startPipeline(ctx, h.cfg.Pipeline, dir, env)
	if err != nil {
		return r, err
	}
	t.profile = prof
	defer t.stop()
	t.proc.watch(h.cancel)
	_, r.Throughput, err = h.throughput(ctx, t, func() {})
	return r, err
}

func (h *harness) hookmapRound(ctx context.Context, round int) (systemRun, error) {
	r := systemRun{Round: round, System: "hookmap", LoadTool: h.cfg.Load, Conns: h.cfg.Conns, Consumer: h.cfg.Consumer, Rate: h.cfg.Rate}
	dir, remove, err := h.dataDir("hookmap")
	if err != nil {
		return r, err
	}
	defer remove()
	prof, env := h.profile("hookmap", round)
	t, err := startHookmap(ctx, h.cfg.Hookmap, dir, h.connectors, env)
	if err != nil {
		return r, err
	}
	t.profile = prof
	defer t.stop()
	t.proc.watch(h.cancel)
	died := func(err error) { h.cancel(err) }

	var k *consumer
	if h.cfg.Consumer {
		k = startConsumer(ctx, t.client, false, died)
		defer func() { k.stop() }()
	}
	var before int64
	acked, tp, err := h.throughput(ctx, t, func() {
		if k != nil {
			before = k.count.Load()
		}
	})
	r.Throughput = tp
	if err != nil {
		return r, err
	}
	if k != nil {
		r.Streamed = k.count.Load() - before
		r.CaughtUp, r.CaughtUpOK = waitFor(ctx, &k.count, acked, time.Minute)
	} else {
		k = startConsumer(ctx, t.client, true, died)
		defer func() { k.stop() }()
		if err := k.waitStreaming(ctx, t.url, h.body); err != nil {
			return r, err
		}
	}

	// Receive-to-stream latency at a fixed rate.
	k.record()
	pc := &pacer{rate: h.cfg.Rate}
	ph, err := h.measure(ctx, t, func() loadResult { return pc.run(ctx, t.url, h.body, h.cfg.Paced) })
	r.Paced = &ph
	if err != nil {
		return r, err
	}
	_, _ = waitFor(ctx, &k.timed, ph.Load.Acked, 30*time.Second)
	r.Stream = k.lat.snapshot()
	return r, ctx.Err()
}

// throughput warms t up, then loads it for the configured duration, calling started
// when the measured load starts; acked counts the warm-up's acknowledged webhooks too.
func (h *harness) throughput(ctx context.Context, t *target, started func()) (acked int64, ph phase, err error) {
	load := func(d time.Duration) (loadResult, error) {
		if h.cfg.Load == "wrk" {
			return wrkLoad(ctx, t.url, h.body, h.cfg.Conns, d, h.dir)
		}
		return closedLoad(ctx, t.url, h.body, h.cfg.Conns, d), nil
	}
	if h.cfg.Warmup > 0 {
		warm, err := load(h.cfg.Warmup)
		if err != nil {
			return 0, ph, err
		}
		if warm.Acked == 0 {
			return 0, ph, fmt.Errorf("no webhook of the warm-up was acknowledged (%d non-2xx, %d errors)", warm.Non2xx, warm.Errors)
		}
		acked = warm.Acked
	}
	var loadErr error
	ph, err = h.measure(ctx, t, func() loadResult {
		started()
		if t.profile != "" {
			_ = t.proc.cmd.Process.Signal(syscall.SIGUSR1) // sigprof: start the profile
			defer t.stopProfile()
		}
		res, err := load(h.cfg.Duration)
		loadErr = err
		return res
	})
	if err == nil {
		err = loadErr
	}
	return acked + ph.Load.Acked, ph, err
}

// measure runs one phase of load on t and takes its figures.
func (h *harness) measure(ctx context.Context, t *target, load func() loadResult) (phase, error) {
	var ph phase
	t.sampler.mark()
	w0, err := t.walWritten(ctx)
	if err != nil {
		return ph, err
	}
	k0, err := t.commits(ctx)
	if err != nil {
		return ph, err
	}
	c0, err := cpuTime(t.proc.pid())
	if err != nil {
		return ph, err
	}
	ph.Load = load()
	c1, err := cpuTime(t.proc.pid())
	if err != nil {
		return ph, err
	}
	ph.CPU = c1 - c0
	if err := ctx.Err(); err != nil {
		return ph, err
	}
	w1, err := t.walWritten(ctx)
	if err != nil {
		return ph, err
	}
	k1, err := t.commits(ctx)
	if err != nil {
		return ph, err
	}
	ph.WALBytes, ph.Commits, ph.Peaks = w1-w0, k1.sub(k0), t.sampler.peaks()
	if ph.Load.Acked == 0 {
		return ph, fmt.Errorf("no webhook was acknowledged (%d non-2xx, %d errors)", ph.Load.Non2xx, ph.Load.Errors)
	}
	return ph, nil
}
