package core

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hookmap/hookmap/engine"
	"github.com/hookmap/hookmap/server/store"
)

// An event's fetch method runs after a delivery is committed, for apps whose notification
// only says that something changed (Airtable, Dropbox, Box, Graph's basic notifications):
// it asks the app's API for the events. The receiver never waits for it: the delivery
// commits a fetch (store.FetchStore) in its own transaction, answers 2xx, and the fetcher
// runs it afterwards, retried with backoff until it succeeds or is given up.

// Fetch scheduling.
const (
	// FetchLease is how long a run holds its fetch; the run is cancelled before it ends.
	FetchLease = 5 * time.Minute
	// FetchMaxAttempts is how many failed runs in a row give a fetch up (FAILED, its
	// delivery FAILED, ReplayDelivery queues it again): about two hours of retries.
	FetchMaxAttempts = 20
	// FetchMaxRuns bounds how many times in a row one fetch may ask for more.
	FetchMaxRuns = 10000
	// FetchConcurrency is how many fetches run at once (of different subscriptions).
	FetchConcurrency = 8

	fetchLeaseMargin = 30 * time.Second
	fetchBackoffBase = 2 * time.Second
	fetchBackoffMax  = 10 * time.Minute
)

// FetchMetrics counts fetch runs by outcome (ok, retry, failed, lease_lost); nil-safe.
type FetchMetrics interface {
	FetchRun(outcome string)
}

// fetcher wakes the fetch loop when a delivery queued a fetch.
type fetcher struct {
	once sync.Once
	wake chan struct{}
}

func (c *Core) wakeChan() chan struct{} {
	c.fetcher.once.Do(func() { c.fetcher.wake = make(chan struct{}, 1) })
	return c.fetcher.wake
}

// wakeFetcher tells the fetch loop that a fetch may be due.
func (c *Core) wakeFetcher() {
	select {
	case c.wakeChan() <- struct{}{}:
	default:
	}
}

// fetchFor makes the fetch a handle's result asks for: none when the event has no fetch
// method or handle said fetch: false; else one for sub, due now, whose delivery.data is
// what handle gave (or data, the request's).
func (c *Core) fetchFor(sub *store.Subscription, ev *engine.Event, req fetchRequest, data any, d *store.Delivery, in *Incoming) (*store.Fetch, error) {
	if ev.Methods[engine.MethodFetch] == nil {
		if req.explicit {
			return nil, fmt.Errorf("handle asked for a fetch, but event %q has no fetch method", ev.Key)
		}
		return nil, nil
	}
	switch req.mode {
	case fetchNone:
		return nil, nil
	case fetchWith:
		data = req.data
	}
	return &store.Fetch{
		ID: "fch_" + newTimeID(), WorkspaceID: sub.WorkspaceID, SubscriptionID: sub.ID,
		DeliveryID: d.ID, DeliveryTime: in.Received, Data: data, NextAttemptTime: c.now(),
	}, nil
}

// RunFetcher runs due fetches until ctx ends: up to FetchConcurrency at once, at most one
// per subscription, in the order of their deliveries. It wakes when a delivery queues a
// fetch, when a run ends, and every interval (retries, and fetches a restart left).
func (c *Core) RunFetcher(ctx context.Context, interval time.Duration) {
	fs := c.Store
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(interval)
	defer t.Stop()
	running := 0
	ended := make(chan struct{}, FetchConcurrency)
	for {
		if free := FetchConcurrency - running; free > 0 {
			claimed, err := fs.ClaimFetches(ctx, store.FetchClaim{Now: c.now(), LeaseFor: FetchLease, Limit: free})
			if err != nil && ctx.Err() == nil {
				c.Logger.Warn("claim fetches", "err", err)
			}
			for _, f := range claimed {
				running++
				wg.Go(func() {
					c.runFetch(ctx, fs, f)
					ended <- struct{}{}
				})
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ended:
			running--
		case <-c.wakeChan():
		case <-t.C:
		}
	}
}

// FetchRun narrows RunFetches.
type FetchRun struct {
	// SubscriptionID, when set, runs only that subscription's fetches.
	SubscriptionID string
	// Due runs the fetches due by then (zero: now); a time ahead runs retries early.
	Due time.Time
}

// RunFetches runs due fetches one after another, in this goroutine, until none is due or
// a run fails (so a failing fetch runs once), and returns how many runs it made. Tests
// and hookmap test use it; the server runs RunFetcher.
func (c *Core) RunFetches(ctx context.Context, r FetchRun) (int, error) {
	fs := c.Store
	n := 0
	for n < FetchMaxRuns {
		claimed, err := fs.ClaimFetches(ctx, store.FetchClaim{Now: c.now(), Due: r.Due, LeaseFor: FetchLease, Limit: 1, SubscriptionID: r.SubscriptionID})
		if err != nil || len(claimed) == 0 {
			return n, err
		}
		n++
		if !c.runFetch(ctx, fs, claimed[0]) {
			return n, nil
		}
	}
	return n, nil
}

// errPermanent marks a fetch failure that retrying cannot mend.
type errPermanent struct{ error }

func (e errPermanent) Unwrap() error { return e.error }

// runFetch runs one claimed fetch and records how it went; it reports success.
func (c *Core) runFetch(ctx context.Context, fs store.FetchStore, f *store.Fetch) bool {
	rctx, cancel := context.WithTimeout(ctx, FetchLease-fetchLeaseMargin)
	defer cancel()
	err := c.fetchOnce(rctx, fs, f)
	// What the run did is recorded even while the server stops (the store closes after
	// the fetcher has returned).
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer wcancel()
	switch {
	case err == nil:
		c.countFetch("ok")
		return true
	case ctx.Err() != nil: // stopping: the next start runs it again, no attempt counted
		if rerr := fs.ReleaseFetch(wctx, f); rerr != nil {
			c.Logger.Warn("release fetch", "fetch", f.ID, "err", rerr)
		}
		return false
	case errors.Is(err, store.ErrLeaseLost):
		c.countFetch("lease_lost")
		c.Logger.Warn("fetch ran past its lease; its results were dropped and it runs again", "fetch", f.ID, "subscription", f.SubscriptionID)
		return false
	}
	c.failFetch(wctx, fs, f, err)
	return false
}

func (c *Core) countFetch(outcome string) {
	if c.FetchMetrics != nil {
		c.FetchMetrics.FetchRun(outcome)
	}
}

// failFetch records a failed run: retried with backoff, given up after FetchMaxAttempts
// (or at once when retrying cannot help).
func (c *Core) failFetch(ctx context.Context, fs store.FetchStore, f *store.Fetch, err error) {
	attempts := f.Attempts + 1
	var perm errPermanent
	giveUp := attempts >= FetchMaxAttempts || errors.As(err, &perm)
	msg := truncate(err.Error(), 2048)
	next := c.now().Add(fetchBackoff(attempts, !c.ExactBackoff))
	var derr string
	switch {
	case errors.As(err, &perm):
		derr = "fetch failed: " + msg
	case giveUp:
		derr = fmt.Sprintf("fetch failed %d times, given up (ReplayDelivery runs it again): %s", attempts, msg)
	default:
		derr = fmt.Sprintf("fetch failed (attempt %d of %d, next at %s): %s", attempts, FetchMaxAttempts, next.UTC().Format(time.RFC3339), msg)
	}
	ferr := fs.FailFetch(ctx, f, store.FetchFailure{Error: msg, DeliveryError: derr, NextAttemptTime: next, GiveUp: giveUp})
	if ferr != nil {
		c.Logger.Warn("record a failed fetch", "fetch", f.ID, "err", ferr)
		return
	}
	if giveUp {
		c.countFetch("failed")
		c.Logger.Warn("fetch given up", "fetch", f.ID, "delivery", f.DeliveryID, "subscription", f.SubscriptionID, "attempts", attempts, "err", msg)
		return
	}
	c.countFetch("retry")
	c.Logger.Info("fetch failed, retried later", "fetch", f.ID, "delivery", f.DeliveryID, "subscription", f.SubscriptionID, "attempt", attempts, "next", next, "err", msg)
}

// fetchBackoff is the wait after the nth failed run in a row: 2s doubling up to 10m,
// with ±20% jitter so that fetches failing together do not retry in lockstep.
func fetchBackoff(failures int, jitter bool) time.Duration {
	d := fetchBackoffBase
	for i := 1; i < failures && d < fetchBackoffMax; i++ {
		d *= 2
	}
	d = min(d, fetchBackoffMax)
	if !jitter {
		return d
	}
	return d - d/5 + time.Duration(rand.Int64N(int64(2*d/5)+1))
}

// fetchOnce runs the event's fetch method for f and commits what it returned.
func (c *Core) fetchOnce(ctx context.Context, fs store.FetchStore, f *store.Fetch) error {
	sub, err := c.Store.GetSubscription(ctx, f.WorkspaceID, f.SubscriptionID)
	if errors.Is(err, store.ErrNotFound) {
		return errPermanent{fmt.Errorf("subscription %s was deleted before its fetch ran", f.SubscriptionID)}
	}
	if err != nil {
		return err
	}
	_, ev, err := c.Event(sub.ConnectorKey, sub.EventKey)
	if err != nil {
		return err
	}
	m := ev.Methods[engine.MethodFetch]
	if m == nil {
		return fmt.Errorf("event %q of connector %q has no fetch method", ev.Key, sub.ConnectorKey)
	}
	if f.Runs >= FetchMaxRuns {
		return errPermanent{fmt.Errorf("%s asked for more %d times in a row", m.File, f.Runs)}
	}
	vars, conn, err := c.subscriptionVars(ctx, sub, allReads)
	if err != nil {
		return err
	}
	vars["delivery"] = map[string]any{
		"id": f.DeliveryID, "receiveTime": f.DeliveryTime.UTC().Format(time.RFC3339Nano),
		"data": f.Data, "run": int64(f.Runs),
	}
	// The app's API with the connection's credentials, renewed first when they expire.
	out, err := c.runConnMethod(ctx, conn, m, vars, c.RunOptions())
	if err != nil {
		return err
	}
	hr, err := parseFetchResult(out, m.File)
	if err != nil {
		return err
	}
	events, err := buildEvents(sub, ev, hr.events, "", &store.Delivery{ID: f.DeliveryID}, &Incoming{Received: f.DeliveryTime})
	if err != nil {
		return fmt.Errorf("%s: %w", m.File, err)
	}
	done := &store.FetchDone{Events: events, More: hr.more}
	if hr.hasState {
		done.StateUpdate = store.StateUpdate{SubscriptionID: sub.ID, Change: c.stateMerge(sub.ID, hr.state)}
	}
	res, err := fs.FinishFetch(context.WithoutCancel(ctx), f, done)
	if err != nil {
		return err
	}
	if res.MaxSeq > 0 {
		c.Hub.Notify(f.WorkspaceID, res.MaxSeq)
	}
	if hr.more {
		c.wakeFetcher()
	}
	return nil
}

// retryFailedFetches is ReplayDelivery of a delivery whose fetch was given up: it is
// queued again and runs at once.
func (c *Core) retryFailedFetches(ctx context.Context, d *store.Delivery) (*store.Delivery, error) {
	if _, err := c.Store.RetryFailedFetches(ctx, d.WorkspaceID, d.ID, c.now()); err != nil {
		return nil, err
	}
	c.wakeFetcher()
	return c.Store.GetDelivery(ctx, d.WorkspaceID, d.ID)
}
