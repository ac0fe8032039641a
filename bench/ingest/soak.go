package main

import (
	"context"
	"fmt"
	"time"
)

// soak runs hookmap alone with its consumer streaming and cfg.Rate webhooks per second
// for cfg.Soak, printing its WAL, RSS and receive-to-stream latency every cfg.Every.
func soak(ctx context.Context, cfg config) error {
	ctx, h, cleanup, err := setup(ctx, cfg)
	if err != nil {
		return err
	}
	defer cleanup()
	out := h.cfg.Out
	dir, remove, err := h.dataDir("hookmap")
	if err != nil {
		return err
	}
	defer remove()
	t, err := startHookmap(ctx, h.cfg.Hookmap, dir, h.connectors, nil)
	if err != nil {
		return failed(ctx, err)
	}
	defer t.stop()
	t.proc.watch(h.cancel)
	k := startConsumer(ctx, t.client, false, func(err error) { h.cancel(err) })
	defer k.stop()
	w0, err := t.walWritten(ctx)
	if err != nil {
		return failed(ctx, err)
	}
	fmt.Fprintf(out, "soak: hookmap alone, %d webhooks/s for %s with a consumer streaming, body %d B\n", cfg.Rate, cfg.Soak, len(h.body))

	k.record()
	t.sampler.mark()
	start := time.Now()
	pc := &pacer{rate: cfg.Rate}
	done := make(chan loadResult, 1)
	go func() { done <- pc.run(ctx, t.url, h.body, cfg.Soak) }()
	line := func() (peaks, dist, int64) {
		pk := t.sampler.peaks()
		rss, wal := t.sampler.latest()
		st := k.lat.snapshot()
		acked := pc.acked.Load()
		fmt.Fprintf(out, "t=%.1fs acked=%d rate=%.0f/s non2xx=%d errors=%d wal=%s wal_peak=%s rss=%s rss_hwm=%s stream_n=%d stream_p99=%s stream_max=%s\n",
			time.Since(start).Seconds(), acked, float64(acked)/time.Since(start).Seconds(), pc.non2xx.Load(), pc.errs.Load(),
			mib(wal), mib(pk.WALPeak), mib(rss), mib(pk.RSSHWM), st.N, ms(st.P99), ms(st.Max))
		return pk, st, acked
	}
	tick := time.NewTicker(cfg.Every)
	defer tick.Stop()
	var res loadResult
wait:
	for {
		select {
		case <-ctx.Done():
			return failed(ctx, ctx.Err())
		case <-tick.C:
			if time.Since(start) < cfg.Soak { // the last report comes after the load
				line()
			}
		case res = <-done:
			break wait
		}
	}
	if err := ctx.Err(); err != nil {
		return failed(ctx, err)
	}
	_, _ = waitFor(ctx, &k.timed, res.Acked, 30*time.Second)
	w1, err := t.walWritten(ctx)
	if err != nil {
		return failed(ctx, err)
	}
	pk, st, _ := line()
	if res.Acked == 0 {
		return fmt.Errorf("no webhook was acknowledged (%d non-2xx, %d errors)", res.Non2xx, res.Errors)
	}
	per := float64(w1-w0) / float64(res.Acked)
	fmt.Fprintf(out, "soak done: %d acknowledged in %s (%.0f/s), http p99 %s, %.0f WAL bytes per webhook\n",
		res.Acked, res.Elapsed.Round(time.Millisecond), res.Rate(), ms(res.Lat.P99), per)
	for _, g := range []goal{
		{Name: "WAL peak <= 64 MiB", Measured: mib(pk.WALPeak), Met: pk.WALPeak <= 64<<20},
		{Name: "peak RSS <= 150 MiB", Measured: mib(max(pk.RSSHWM, pk.RSSMax)), Met: max(pk.RSSHWM, pk.RSSMax) <= 150<<20},
		{Name: "WAL <= 4 KiB per webhook", Measured: fmt.Sprintf("%.0f B", per), Met: per <= 4096},
		{Name: "receive-to-stream p99 <= 5ms", Measured: fmt.Sprintf("%s at %d/s, n=%d", ms(st.P99), cfg.Rate, st.N), Met: st.P99 <= 5*time.Millisecond},
	} {
		fmt.Fprintln(out, g)
	}
	return nil
}
