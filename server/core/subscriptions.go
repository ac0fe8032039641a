package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"

	"github.com/hookmap/hookmap/engine"
	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/server/secrets"
	"github.com/hookmap/hookmap/server/store"
)

// SubscriptionInput is what a client gives to create a subscription.
type SubscriptionInput struct {
	ConnectionID string
	EventKey     string
	Parameters   map[string]any
	RequestID    string // idempotency key: a retry gets the same subscription
}

// CreateSubscription validates the input, stores the subscription as PENDING (its
// webhook URI answers from then on, so apps that call it during subscribe are served) and
// runs subscribe. On failure the subscription ends FAILED with the app's answer in
// LastError and the returned error says what the app answered.
func (c *Core) CreateSubscription(ctx context.Context, workspaceID string, in SubscriptionInput) (*store.Subscription, error) {
	var violations []engine.FieldViolation
	if in.ConnectionID == "" {
		violations = append(violations, engine.FieldViolation{Field: "connection_id", Description: "required"})
	}
	if in.EventKey == "" {
		violations = append(violations, engine.FieldViolation{Field: "event_key", Description: "required"})
	}
	if len(violations) > 0 {
		return nil, Invalid(violationSummary("invalid subscription", violations), violations)
	}
	conn, ev, err := c.connectionEvent(ctx, workspaceID, in.ConnectionID, in.EventKey)
	if err != nil {
		return nil, err
	}
	if err := Usable(conn); err != nil {
		return nil, err
	}
	params := orEmpty(in.Parameters)
	if v := validateAgainst(ev.ParametersSchema, "parameters", params); len(v) > 0 {
		return nil, Invalid(violationSummary("parameters do not match the event's parametersSchema", v), v)
	}
	vars, err := c.ConnectionVars(ctx, conn)
	if err != nil {
		return nil, err
	}
	id := secrets.RandomToken(16)
	if in.RequestID != "" {
		if len(in.RequestID) > 200 {
			return nil, Invalid("request_id is longer than 200 characters", []engine.FieldViolation{{Field: "request_id", Description: "at most 200 characters"}})
		}
		id = c.Box.DeriveToken("subscription\x00"+workspaceID+"\x00"+in.RequestID, 16)
	}
	if !c.running.acquire(id) {
		return nil, Errorf(codes.Aborted, "a CreateSubscription with this request_id is running; retry later").WithReason(ReasonAlreadyRunning)
	}
	defer c.running.release(id)
	var sub *store.Subscription
	var secret string
	if in.RequestID != "" {
		prev, err := c.Store.GetSubscription(ctx, workspaceID, id)
		switch {
		case err == nil:
			if prev.ConnectionID != conn.ID || prev.EventKey != in.EventKey || !sameValue(prev.Parameters, params) {
				return nil, Errorf(codes.AlreadyExists, "request_id %s was used for a different subscription (%s)", Q(in.RequestID), prev.ID).WithReason(ReasonRequestIDReused)
			}
			if prev.Status != store.StatusFailed && prev.Status != store.StatusPending {
				return prev, nil
			}
			sub = prev
			if secret, err = c.WebhookSecret(sub); err != nil {
				return nil, err
			}
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
	}
	if sub == nil {
		now := c.now()
		sub = &store.Subscription{
			WorkspaceID:  workspaceID,
			ID:           id,
			ConnectionID: conn.ID,
			ConnectorKey: conn.ConnectorKey,
			EventKey:     in.EventKey,
			Parameters:   params,
			Status:       store.StatusPending,
			CreateTime:   now,
			UpdateTime:   now,
		}
		secret = secrets.RandomToken(24)
		if sub.WebhookSecret, err = c.Box.Seal([]byte(secret), webhookSecretAAD(sub.ID)); err != nil {
			return nil, err
		}
		if err := c.Store.CreateSubscription(ctx, sub); err != nil {
			return nil, err
		}
	}
	runErr := c.subscribe(ctx, ev, sub, conn, vars, secret)
	if runErr != nil {
		sub.Status = store.StatusFailed
		sub.LastError = truncate(runErr.Error(), 2048)
	} else {
		sub.Status = store.StatusActive
		sub.LastError = ""
	}
	// The subscription's fate is recorded even if the client went away meanwhile.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := c.saveSubscription(wctx, sub); err != nil {
		return nil, fmt.Errorf("record subscription %s: %w", sub.ID, err)
	}
	if runErr != nil {
		return sub, AppError(ctx, "subscribe failed", runErr)
	}
	return sub, nil
}

// subscribe runs the event's subscribe (webhook) or getEventsSelector (global-webhook)
// and writes the result into sub.
func (c *Core) subscribe(ctx context.Context, ev *engine.Event, sub *store.Subscription, conn *store.Connection, connVars map[string]any, secret string) error {
	vars := cloneVars(connVars)
	vars["parameters"] = sub.Parameters
	if ev.Type == engine.TypeGlobalWebhook {
		m := ev.Methods[engine.MethodGetEventsSelector]
		if m == nil {
			return Errorf(codes.FailedPrecondition, "event %q has no getEventsSelector method", ev.Key).WithReason(ReasonMethodNotFound)
		}
		out, err := c.runConnMethod(ctx, conn, m, vars, c.RunOptions())
		if err != nil {
			return err
		}
		res, ok := out.(map[string]any)
		if !ok {
			return Errorf(codes.FailedPrecondition, "getEventsSelector returned %T, want an object {globalWebhookKey, globalWebhookEventSelector}", out).WithReason(ReasonMappingFailed)
		}
		key, _ := res["globalWebhookKey"].(string)
		sel := fmt.Sprint(res["globalWebhookEventSelector"])
		if key == "" || res["globalWebhookEventSelector"] == nil {
			return Errorf(codes.FailedPrecondition, "getEventsSelector must return globalWebhookKey and globalWebhookEventSelector").WithReason(ReasonMappingFailed)
		}
		connector, _ := c.Registry.Connector(sub.ConnectorKey)
		if connector == nil || connector.GlobalWebhooks[key] == nil {
			return Errorf(codes.FailedPrecondition, "getEventsSelector returned unknown global webhook %s", Q(key)).WithReason(ReasonMappingFailed)
		}
		if _, err := c.EnsureGlobalWebhook(ctx, sub.WorkspaceID, sub.ConnectorKey, key); err != nil {
			return err
		}
		sub.GlobalWebhookKey, sub.Selector = key, sel
		return nil
	}
	m := ev.Methods[engine.MethodSubscribe]
	if m == nil {
		return Errorf(codes.FailedPrecondition, "event %q has no subscribe method", ev.Key).WithReason(ReasonMethodNotFound)
	}
	vars["webhookUri"] = c.WebhookURI(sub.ID)
	vars["webhookSecret"] = secret
	vars["subscriptionId"] = sub.ID
	state, err := c.SubscriptionState(sub)
	if err != nil {
		return err
	}
	vars["state"] = state
	opts := c.RunOptions()
	opts.State = c.latestState(sub)
	out, err := c.runConnMethod(ctx, conn, m, vars, opts)
	if err != nil {
		return err
	}
	return c.applyStateResult("subscribe", out, sub, false)
}

// saveSubscription writes sub. Its state is never written from this copy: the state a
// method returned (sub.StateChange, set by applyStateResult) is merged into the stored one
// in the same transaction, so the keys a handle stored meanwhile (a handshake answered
// while subscribe ran) are kept; without one the stored state is kept as it is.
func (c *Core) saveSubscription(ctx context.Context, sub *store.Subscription) error {
	if sub.StateChange == nil {
		sub.StateChange = func(stored []byte) ([]byte, error) { return stored, nil }
	}
	return c.Store.UpdateSubscription(ctx, sub)
}

// latestState returns a function reading the subscription's stored state, for the
// methods that may see state a handle wrote while they run (RunOptions.State).
func (c *Core) latestState(sub *store.Subscription) func(context.Context) (map[string]any, error) {
	return func(ctx context.Context) (map[string]any, error) {
		s, err := c.Store.GetSubscription(ctx, sub.WorkspaceID, sub.ID)
		if err != nil {
			return nil, fmt.Errorf("read the state of subscription %s: %w", sub.ID, err)
		}
		return c.SubscriptionState(s)
	}
}

// applyStateResult reads {state, nextRefreshTimestamp} into sub. The state is merged
// (mergeState) into the stored one when sub is saved (sub.StateChange), and into sub's
// copy now.
func (c *Core) applyStateResult(method string, out any, sub *store.Subscription, requireNext bool) error {
	if out == nil {
		out = map[string]any{}
	}
	res, ok := out.(map[string]any)
	if !ok {
		return Errorf(codes.FailedPrecondition, "%s returned %T, want an object {state, nextRefreshTimestamp}", method, out).WithReason(ReasonMappingFailed)
	}
	if st, present := res["state"]; present && st != nil {
		m, ok := st.(map[string]any)
		if !ok {
			return Errorf(codes.FailedPrecondition, "%s returned state of type %T, want an object", method, st).WithReason(ReasonMappingFailed)
		}
		if err := value.Check(m); err != nil {
			return Errorf(codes.FailedPrecondition, "%s returned state that cannot be stored: %v", method, err).WithReason(ReasonMappingFailed)
		}
		merge := c.stateMerge(sub.ID, m)
		if prev := sub.StateChange; prev != nil {
			sub.StateChange = func(stored []byte) ([]byte, error) {
				b, err := prev(stored)
				if err != nil {
					return nil, err
				}
				return merge(b)
			}
		} else {
			sub.StateChange = merge
		}
		merged, err := merge(sub.State)
		if err != nil {
			return err
		}
		sub.State = merged
	}
	sub.NextRefreshTime = time.Time{}
	if nr, present := res["nextRefreshTimestamp"]; present && nr != nil {
		ms, ok := toInt64(nr)
		if !ok {
			return Errorf(codes.FailedPrecondition, "%s returned nextRefreshTimestamp %v, want milliseconds since the epoch", method, nr).WithReason(ReasonMappingFailed)
		}
		sub.NextRefreshTime = time.UnixMilli(ms).UTC()
	} else if requireNext {
		return Errorf(codes.FailedPrecondition, "%s must return nextRefreshTimestamp", method).WithReason(ReasonMappingFailed)
	}
	return nil
}

// Deleted is what DeleteSubscription did.
type Deleted struct {
	// WebhookMayRemain is true when the subscription was deleted locally (force) without
	// hookmap knowing that the app removed its webhook: the app may still hold it and send
	// to WebhookURI, which answers 404 from now on.
	WebhookMayRemain bool
	// WebhookURI is the deleted subscription's URL, to find the webhook in the app.
	WebhookURI string
	// Leftover says why the webhook may remain (the unsubscribe error) and what to do.
	Leftover string
}

// DeleteSubscription runs unsubscribe with the stored state and deletes the subscription.
// A 404 from the app counts as gone. When unsubscribe fails the subscription stays in
// DELETING (retried in the background) unless force: force deletes it locally whatever
// its status (a DELETING subscription whose unsubscribe can never succeed, a PENDING one
// whose subscribe never finished), after one more unsubscribe attempt, and says in the
// result when the app may still hold the webhook.
func (c *Core) DeleteSubscription(ctx context.Context, workspaceID, id string, force bool) (Deleted, error) {
	sub, err := c.Store.GetSubscription(ctx, workspaceID, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Deleted{}, Errorf(codes.NotFound, "subscription %s not found", Q(id)).WithReason(ReasonResourceNotFound)
		}
		return Deleted{}, err
	}
	res := Deleted{WebhookURI: c.WebhookURI(sub.ID)}
	runErr := c.unsubscribe(ctx, sub)
	if runErr != nil && !force {
		sub.Status = store.StatusDeleting
		sub.LastError = truncate("unsubscribe failed: "+runErr.Error(), 2048)
		sub.RefreshFailures = 1
		sub.NextRefreshTime = c.now().Add(backoff(1)) // the scheduler retries from then on
		if err := c.saveSubscription(context.WithoutCancel(ctx), sub); err != nil {
			return Deleted{}, err
		}
		return Deleted{}, AppError(ctx, "unsubscribe failed; the subscription stays DELETING and is retried (force: true deletes it locally)", runErr)
	}
	if err := c.Store.DeleteSubscription(context.WithoutCancel(ctx), workspaceID, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return Deleted{}, err
	}
	c.opened.remove(id)
	if runErr != nil {
		res.WebhookMayRemain = true
		res.Leftover = truncate(fmt.Sprintf("deleted locally, but unsubscribe failed: %s; the app may still hold the webhook for %s "+
			"(it is answered 404 from now on): remove it in the app, or with ReconcileWebhooks in mode DELETE_ORPHANS", runErr, res.WebhookURI), 2048)
		c.Logger.Warn("subscription deleted with force; the app may still hold its webhook", "subscription", sub.ID, "status", sub.Status, "err", runErr)
	}
	return res, nil
}

func (c *Core) unsubscribe(ctx context.Context, sub *store.Subscription) error {
	if sub.Status == store.StatusFailed || sub.GlobalWebhookKey != "" {
		return nil // nothing was registered in the app by this subscription
	}
	_, ev, err := c.Event(sub.ConnectorKey, sub.EventKey)
	if err != nil {
		return err
	}
	m := ev.Methods[engine.MethodUnsubscribe]
	if m == nil {
		return nil
	}
	vars, conn, err := c.subscriptionVars(ctx, sub, allReads)
	if err != nil {
		return err
	}
	_, err = c.runConnMethod(ctx, conn, m, vars, c.RunOptions())
	var he *engine.HTTPError
	if errors.As(err, &he) && (he.StatusCode == 404 || he.StatusCode == 410) {
		return nil
	}
	return err
}

// EnsureGlobalWebhook returns the global webhook of (workspace, connector, key), creating
// it with an unguessable id on first need.
func (c *Core) EnsureGlobalWebhook(ctx context.Context, workspaceID, connectorKey, key string) (*store.GlobalWebhook, error) {
	return c.Store.EnsureGlobalWebhook(ctx, &store.GlobalWebhook{
		WorkspaceID:  workspaceID,
		ID:           secrets.RandomToken(16),
		ConnectorKey: connectorKey,
		Key:          key,
		CreateTime:   c.now(),
	})
}

func cloneVars(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+8)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func toInt64(v any) (int64, bool) {
	switch t := v.(type) {
	case int64:
		return t, true
	case float64:
		if t != float64(int64(t)) {
			return 0, false
		}
		return int64(t), true
	case string:
		var n int64
		_, err := fmt.Sscan(t, &n)
		return n, err == nil
	}
	return 0, false
}

// truncate keeps at most n bytes of s (then "…") as valid UTF-8: what it returns goes
// into a proto string field (a last error, a connection event), which must be valid
// UTF-8, and s may quote what an app or a callback's query sent.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func sameValue(a, b map[string]any) bool {
	ea, err1 := value.Encode(orEmpty(a))
	eb, err2 := value.Encode(orEmpty(b))
	return err1 == nil && err2 == nil && string(ea) == string(eb)
}
