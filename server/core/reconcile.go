package core

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"

	"github.com/hookmap/hookmap/engine"
	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/server/store"
)

// Reconcile classifications.
const (
	Owned    = "OWNED"
	Orphaned = "ORPHANED"
	Foreign  = "FOREIGN"
	Missing  = "MISSING"
)

// ReconcileInput is a ReconcileWebhooks request.
type ReconcileInput struct {
	ConnectionID string
	EventKey     string
	Parameters   map[string]any
	DeleteOrphan bool
	URLPrefix    string
	Repair       bool
}

// ReconciledWebhook is one listed webhook or one missing subscription.
type ReconciledWebhook struct {
	ID, URL        string
	Classification string
	SubscriptionID string
	Deleted        bool
	Repaired       bool
	Error          string
}

// maxListedWebhooks bounds what a list method may return (a reconcile holds them all).
const maxListedWebhooks = 100_000

// ReconcileWebhooks runs the event's list method with the given parameters (checked
// against the event's listParametersSchema, else its parametersSchema) and classifies
// each webhook the app holds (DESIGN.md §8):
//   - OWNED: its url is the webhook_uri of a subscription hookmap still has (any status,
//     any connection: a live hook is never an orphan), or a global webhook URL;
//   - ORPHANED: its url is under the public URL's /hooks/ (or starts with URLPrefix) and
//     nothing hookmap has owns it;
//   - FOREIGN: anything else, never touched.
//
// Subscriptions of this connection and event whose parameters equal the given ones and
// whose hook the app no longer lists are MISSING; Repair re-subscribes them. With
// DeleteOrphan each orphan is deleted with the event's delete method; a failure is
// reported on its entry and the others are still processed.
func (c *Core) ReconcileWebhooks(ctx context.Context, workspaceID string, in ReconcileInput) ([]ReconciledWebhook, error) {
	conn, ev, err := c.connectionEvent(ctx, workspaceID, in.ConnectionID, in.EventKey)
	if err != nil {
		return nil, err
	}
	list := ev.Methods[engine.MethodList]
	if list == nil {
		return nil, Errorf(codes.FailedPrecondition, "event %q of connector %q has no list method, so its webhooks cannot be reconciled", in.EventKey, conn.ConnectorKey).WithReason(ReasonMethodNotFound)
	}
	del := ev.Methods[engine.MethodDelete]
	if in.DeleteOrphan && del == nil {
		return nil, Errorf(codes.FailedPrecondition, "event %q of connector %q has no delete method; only DRY_RUN is possible", in.EventKey, conn.ConnectorKey).WithReason(ReasonMethodNotFound)
	}
	params := orEmpty(in.Parameters)
	schema, which := ev.ListParametersSchema, "listParametersSchema"
	if schema == nil {
		schema, which = ev.ParametersSchema, "parametersSchema (it declares no listParametersSchema)"
	}
	if v := validateAgainst(schema, "parameters", params); len(v) > 0 {
		return nil, Invalid(violationSummary("parameters do not match the event's "+which, v), v)
	}
	base, err := c.ConnectionVars(ctx, conn)
	if err != nil {
		return nil, err
	}
	vars := cloneVars(base)
	vars["parameters"] = params
	out, err := c.runConnMethod(ctx, conn, list, vars, c.RunOptions())
	if err != nil {
		return nil, AppError(ctx, "list webhooks", err)
	}
	listed, err := parseListed(out, list.File)
	if err != nil {
		return nil, Errorf(codes.FailedPrecondition, "%s", err.Error()).WithReason(ReasonMappingFailed)
	}

	// The subscriptions of this connection and event whose parameters include these (a
	// GitHub reconcile given {owner, repo} covers the repository's subscriptions whatever
	// their events).
	subs, err := c.connectionSubscriptions(ctx, workspaceID, conn.ID)
	if err != nil {
		return nil, err
	}
	inScope := map[string]*store.Subscription{}
	for _, s := range subs {
		if s.EventKey == in.EventKey && s.GlobalWebhookKey == "" && includes(s.Parameters, params) {
			inScope[c.WebhookURI(s.ID)] = s
		}
	}

	hooksPrefix := strings.TrimRight(c.PublicURL, "/") + "/hooks/"
	seen := map[string]bool{}
	var res []ReconciledWebhook
	for _, w := range listed {
		r := ReconciledWebhook{ID: w.id, URL: w.url, Classification: Foreign}
		switch {
		case strings.HasPrefix(w.url, hooksPrefix):
			rest := strings.TrimPrefix(w.url, hooksPrefix)
			r.Classification = Orphaned
			if strings.HasPrefix(rest, "g/") {
				if c.globalOwned(ctx, strings.TrimPrefix(rest, "g/")) {
					r.Classification = Owned
				}
				break
			}
			owner, err := c.owner(ctx, rest)
			if err != nil {
				return nil, err
			}
			if owner != "" {
				r.Classification, r.SubscriptionID = Owned, owner
			}
		case in.URLPrefix != "" && strings.HasPrefix(w.url, in.URLPrefix):
			r.Classification = Orphaned
		}
		if r.Classification == Owned {
			seen[w.url] = true
		}
		if r.Classification == Orphaned && in.DeleteOrphan {
			dv := cloneVars(base)
			dv["parameters"] = params
			dv["webhook"] = w.raw
			if _, err := c.runConnMethod(ctx, conn, del, dv, c.RunOptions()); err != nil {
				var he *engine.HTTPError
				if errors.As(err, &he) && (he.StatusCode == 404 || he.StatusCode == 410) {
					r.Deleted = true // gone already
				} else {
					r.Error = truncate(err.Error(), 1024)
				}
			} else {
				r.Deleted = true
			}
		}
		res = append(res, r)
	}

	for _, u := range value.SortedKeys(inScope) {
		s := inScope[u]
		if seen[u] || s.Status != store.StatusActive {
			continue
		}
		r := ReconciledWebhook{URL: u, Classification: Missing, SubscriptionID: s.ID}
		if in.Repair {
			if err := c.repair(ctx, s); err != nil {
				r.Error = truncate(err.Error(), 1024)
			} else {
				r.Repaired = true
			}
		}
		res = append(res, r)
	}
	return res, nil
}

type listedWebhook struct {
	id, url string
	raw     map[string]any
}

func parseListed(out any, file string) ([]listedWebhook, error) {
	m, ok := out.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: list must return {webhooks: [{id, url}]}, got %s", file, value.KindName(out))
	}
	l, ok := m["webhooks"].([]any)
	if !ok && m["webhooks"] != nil {
		return nil, fmt.Errorf("%s: webhooks must be a list, got %s", file, value.KindName(m["webhooks"]))
	}
	if len(l) > maxListedWebhooks {
		return nil, fmt.Errorf("%s: list returned %d webhooks, more than the %d a reconcile handles", file, len(l), maxListedWebhooks)
	}
	var res []listedWebhook
	for i, e := range l {
		w, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: webhooks[%d] must be a map with id and url, got %s", file, i, value.KindName(e))
		}
		id, err := scalarText(w["id"])
		if err != nil || id == "" {
			return nil, fmt.Errorf("%s: webhooks[%d].id must be a non-empty string or number", file, i)
		}
		u, _ := w["url"].(string)
		res = append(res, listedWebhook{id: id, url: u, raw: w})
	}
	return res, nil
}

func scalarText(v any) (string, error) {
	switch t := v.(type) {
	case string:
		return t, nil
	case int64:
		return fmt.Sprint(t), nil
	case float64:
		if t == float64(int64(t)) {
			return fmt.Sprint(int64(t)), nil
		}
		return fmt.Sprint(t), nil
	}
	return "", fmt.Errorf("not a scalar: %T", v)
}

// owner returns the id of the live subscription whose URL ends in rest (the part after
// /hooks/), or "" when none.
func (c *Core) owner(ctx context.Context, rest string) (string, error) {
	id := rest
	if i := strings.IndexAny(id, "/?#"); i >= 0 {
		id = id[:i]
	}
	if id == "" {
		return "", nil
	}
	s, err := c.Store.LookupSubscription(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return s.ID, nil
}

// globalOwned reports whether id is a global webhook hookmap has.
func (c *Core) globalOwned(ctx context.Context, id string) bool {
	if i := strings.IndexAny(id, "/?#"); i >= 0 {
		id = id[:i]
	}
	_, err := c.Store.LookupGlobalWebhook(ctx, id)
	return err == nil
}

func (c *Core) connectionSubscriptions(ctx context.Context, workspaceID, connectionID string) ([]*store.Subscription, error) {
	var all []*store.Subscription
	p := store.Page{Size: 500}
	for {
		subs, next, err := c.Store.ListSubscriptions(ctx, workspaceID, connectionID, p)
		if err != nil {
			return nil, err
		}
		all = append(all, subs...)
		if next == "" {
			return all, nil
		}
		p.Token = next
	}
}

// repair re-subscribes a subscription whose hook the app lost, under the refresh lock.
func (c *Core) repair(ctx context.Context, sub *store.Subscription) error {
	if !c.running.acquire(sub.ID) {
		return fmt.Errorf("subscription %s is being refreshed right now; run reconcile again", sub.ID)
	}
	defer c.running.release(sub.ID)
	_, ev, err := c.Event(sub.ConnectorKey, sub.EventKey)
	if err != nil {
		return err
	}
	if err := c.resubscribe(ctx, ev, sub); err != nil {
		return err
	}
	now := c.now()
	sub.Status = store.StatusActive
	sub.RefreshTime = now
	sub.RefreshFailures = 0
	sub.LastError = "repaired at " + now.UTC().Format("2006-01-02T15:04:05Z") + ": reconcile found the app no longer had its webhook"
	return c.saveSubscription(context.WithoutCancel(ctx), sub)
}

// includes reports whether every entry of sub is in all, with the same value.
func includes(all, sub map[string]any) bool {
	for k, v := range sub {
		w, ok := all[k]
		if !ok {
			return false
		}
		ev, err1 := value.Encode(v)
		ew, err2 := value.Encode(w)
		if err1 != nil || err2 != nil || string(ev) != string(ew) {
			return false
		}
	}
	return true
}
