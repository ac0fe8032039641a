package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hookmap/hookmap/clients/go/hookmap"
)

// consumer streams hookmap's events as a client service would: the Go client's Consume,
// one handler at a time, acks batched (the client's defaults).
type consumer struct {
	cancel context.CancelFunc
	done   chan error
	count  atomic.Int64 // events received
	since  atomic.Int64 // record the latency of events received at or after this (unix ns); 0: none
	timed  atomic.Int64 // events whose latency was recorded
	lat    recorder     // receive-to-stream latency
}

// startConsumer starts consuming as "bench". latest starts with the next event
// committed after the stream opens instead of the earliest. died is called when
// Consume ends on its own.
func startConsumer(ctx context.Context, c *hookmap.Client, latest bool, died func(error)) *consumer {
	ctx, cancel := context.WithCancel(ctx)
	k := &consumer{cancel: cancel, done: make(chan error, 1)}
	var opts []hookmap.ConsumeOption
	if latest {
		opts = append(opts, hookmap.WithStartLatest())
	}
	go func() {
		err := c.Consume(ctx, "bench", k.handle, opts...)
		if ctx.Err() == nil {
			died(fmt.Errorf("the consumer stopped: %w", err))
		}
		k.done <- err
	}()
	return k
}

func (k *consumer) handle(_ context.Context, ev *hookmap.Event) error {
	now := time.Now()
	k.count.Add(1)
	if since := k.since.Load(); since != 0 && ev.ReceiveTime.UnixNano() >= since {
		k.lat.add(now.Sub(ev.ReceiveTime))
		k.timed.Add(1)
	}
	return nil
}

// record starts recording the latency of the events hookmap receives from now on.
func (k *consumer) record() { k.since.Store(time.Now().UnixNano()) }

// stop ends Consume (which acks what it has handled) and waits for it.
func (k *consumer) stop() {
	k.cancel()
	<-k.done
}

// waitFor waits until counter (count or timed) reaches n, and says how long that took;
// false when it had not within limit.
func waitFor(ctx context.Context, counter *atomic.Int64, n int64, limit time.Duration) (time.Duration, bool) {
	start := time.Now()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for counter.Load() < n {
		if time.Since(start) > limit {
			return time.Since(start), false
		}
		select {
		case <-ctx.Done():
			return time.Since(start), false
		case <-t.C:
		}
	}
	return time.Since(start), true
}

// waitStreaming posts webhooks to url until the consumer receives one: a stream that
// starts with the latest event misses those committed before it opened.
func (k *consumer) waitStreaming(ctx context.Context, url string, body []byte) error {
	c := httpClient(1)
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		n := k.count.Load()
		if _, err := post(ctx, c, url, body); err != nil {
			return err
		}
		if _, ok := waitFor(ctx, &k.count, n+1, 100*time.Millisecond); ok {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return errors.New("the consumer received no event within a minute")
}
