package core

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/hookmap/hookmap/engine"
	"github.com/hookmap/hookmap/server/store"
)

// Refresh scheduling defaults.
const (
	// RefreshMargin is how long before its nextRefreshTimestamp a subscription is refreshed.
	RefreshMargin = 2 * time.Minute
	// HealAfterFailures is how many refresh failures in a row make hookmap re-subscribe.
	HealAfterFailures  = 3
	refreshBackoffBase = 30 * time.Second
	refreshBackoffMax  = time.Hour
)

// inflight makes sure one subscription is never refreshed (or healed) twice at once.
type inflight struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (f *inflight) acquire(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ids == nil {
		f.ids = map[string]bool{}
	}
	if f.ids[id] {
		return false
	}
	f.ids[id] = true
	return true
}

func (f *inflight) release(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.ids, id)
}

// RefreshOutcome says what a refresh did.
type RefreshOutcome struct {
	Refreshed bool
	Healed    bool
	Deleted   bool // a DELETING subscription whose unsubscribe now succeeded
	Err       error
}

// RefreshSubscription runs refresh for one subscription now (RefreshSubscription RPC and
// the scheduler). A DELETING subscription retries its unsubscribe instead.
func (c *Core) RefreshSubscription(ctx context.Context, workspaceID, id string) (*store.Subscription, RefreshOutcome, error) {
	if !c.running.acquire(id) {
		return nil, RefreshOutcome{}, Errorf(codes.Aborted, "subscription %s is being refreshed already", Q(id)).WithReason(ReasonAlreadyRunning)
	}
	defer c.running.release(id)
	sub, err := c.Store.GetSubscription(ctx, workspaceID, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, RefreshOutcome{}, Errorf(codes.NotFound, "subscription %s not found", Q(id)).WithReason(ReasonResourceNotFound)
		}
		return nil, RefreshOutcome{}, err
	}
	out := c.refreshLocked(ctx, sub)
	return sub, out, nil
}

func (c *Core) refreshLocked(ctx context.Context, sub *store.Subscription) RefreshOutcome {
	wctx := context.WithoutCancel(ctx)
	if sub.Status == store.StatusDeleting {
		if err := c.unsubscribe(ctx, sub); err != nil {
			sub.RefreshFailures++
			sub.LastError = truncate("unsubscribe failed: "+err.Error(), 2048)
			sub.NextRefreshTime = c.now().Add(backoff(sub.RefreshFailures))
			if uerr := c.saveSubscription(wctx, sub); uerr != nil {
				return RefreshOutcome{Err: uerr}
			}
			return RefreshOutcome{Err: err}
		}
		if err := c.Store.DeleteSubscription(wctx, sub.WorkspaceID, sub.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return RefreshOutcome{Err: err}
		}
		return RefreshOutcome{Deleted: true}
	}
	if sub.GlobalWebhookKey != "" {
		return RefreshOutcome{} // routed by selector; nothing registered per subscription
	}
	err := c.runRefresh(ctx, sub)
	now := c.now()
	if err == nil {
		sub.Status = store.StatusActive
		sub.RefreshTime = now
		sub.RefreshFailures = 0
		sub.LastError = ""
		if uerr := c.saveSubscription(wctx, sub); uerr != nil {
			return RefreshOutcome{Err: uerr}
		}
		return RefreshOutcome{Refreshed: true}
	}
	sub.RefreshFailures++
	var he *engine.HTTPError
	gone := errors.As(err, &he) && (he.StatusCode == 404 || he.StatusCode == 410)
	if gone || sub.RefreshFailures >= HealAfterFailures {
		herr := c.heal(ctx, sub)
		if herr == nil {
			sub.LastError = truncate(fmt.Sprintf("healed at %s by re-subscribing after refresh failed: %s", now.UTC().Format(time.RFC3339), err), 2048)
			sub.RefreshFailures = 0
			sub.RefreshTime = now
			sub.Status = store.StatusActive
			if uerr := c.saveSubscription(wctx, sub); uerr != nil {
				return RefreshOutcome{Err: uerr}
			}
			c.Logger.Info("subscription healed", "subscription", sub.ID, "cause", err)
			return RefreshOutcome{Healed: true}
		}
		err = fmt.Errorf("refresh failed (%v) and re-subscribing failed: %w", err, herr)
	}
	sub.LastError = truncate("refresh failed: "+err.Error(), 2048)
	sub.NextRefreshTime = now.Add(backoff(sub.RefreshFailures))
	if uerr := c.saveSubscription(wctx, sub); uerr != nil {
		return RefreshOutcome{Err: uerr}
	}
	c.Logger.Warn("refresh failed", "subscription", sub.ID, "failures", sub.RefreshFailures, "err", err)
	return RefreshOutcome{Err: err}
}

// runRefresh runs the event's refresh method, or subscribe again when it has none.
func (c *Core) runRefresh(ctx context.Context, sub *store.Subscription) error {
	_, ev, err := c.Event(sub.ConnectorKey, sub.EventKey)
	if err != nil {
		return err
	}
	m := ev.Methods[engine.MethodRefresh]
	if m == nil {
		return c.resubscribe(ctx, ev, sub)
	}
	vars, conn, err := c.subscriptionVars(ctx, sub, allReads) // has webhookSecret
	if err != nil {
		return err
	}
	vars["webhookUri"] = c.WebhookURI(sub.ID)
	opts := c.RunOptions()
	opts.State = c.latestState(sub)
	out, err := c.runConnMethod(ctx, conn, m, vars, opts)
	if err != nil {
		return err
	}
	return c.applyStateResult("refresh", out, sub, true)
}

func (c *Core) resubscribe(ctx context.Context, ev *engine.Event, sub *store.Subscription) error {
	vars, conn, err := c.subscriptionVars(ctx, sub, allReads)
	if err != nil {
		return err
	}
	return c.subscribe(ctx, ev, sub, conn, vars, vars["webhookSecret"].(string))
}

// heal re-subscribes: unsubscribe best-effort, then subscribe with the same id, URI and secret.
func (c *Core) heal(ctx context.Context, sub *store.Subscription) error {
	if err := c.unsubscribe(ctx, sub); err != nil {
		c.Logger.Info("unsubscribe before re-subscribe failed (ignored)", "subscription", sub.ID, "err", err)
	}
	_, ev, err := c.Event(sub.ConnectorKey, sub.EventKey)
	if err != nil {
		return err
	}
	return c.resubscribe(ctx, ev, sub)
}

func backoff(failures int) time.Duration {
	d := refreshBackoffBase
	for i := 1; i < failures && d < refreshBackoffMax; i++ {
		d *= 2
	}
	d = min(d, refreshBackoffMax)
	// ±20% jitter so many failing subscriptions do not retry in lockstep.
	return d - d/5 + time.Duration(rand.Int64N(int64(2*d/5)+1))
}

// RefreshLease is how long a claimed subscription stays leased to this process: longer
// than any refresh or unsubscribe takes, short enough that the work of a process that
// died is taken over soon.
const RefreshLease = 5 * time.Minute

// RunDueRefreshes refreshes every subscription due now (nextRefreshTimestamp within the
// margin, with jitter) and retries the unsubscribe of DELETING ones whose backoff is
// over; it returns how many it handled. Each is claimed in the store first, so processes
// sharing the store never run the same one twice.
func (c *Core) RunDueRefreshes(ctx context.Context) (int, error) {
	now := c.now()
	margin := RefreshMargin - time.Duration(rand.Int64N(int64(RefreshMargin/4)))
	due, err := c.Store.ClaimDueSubscriptions(ctx, store.DueClaim{
		Owner: c.InstanceID(), RefreshBefore: now.Add(margin), RetryBefore: now, Limit: 100, TTL: RefreshLease,
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range due {
		if ctx.Err() == nil && c.running.acquire(s.ID) {
			c.refreshLocked(ctx, s)
			c.running.release(s.ID)
			n++
		}
		if err := c.Store.ReleaseSubscription(context.WithoutCancel(ctx), s.ID, c.InstanceID()); err != nil {
			c.Logger.Warn("release subscription lease", "subscription", s.ID, "err", err)
		}
	}
	return n, nil
}

// RunScheduler runs RunDueRefreshes every interval until ctx ends. Due times live in the
// store, so a restart picks up where the previous process stopped.
func (c *Core) RunScheduler(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := c.RunDueRefreshes(ctx); err != nil && ctx.Err() == nil {
			c.Logger.Warn("refresh scheduler", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
