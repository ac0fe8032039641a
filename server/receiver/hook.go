package receiver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/hookmap/hookmap/server/core"
	"github.com/hookmap/hookmap/server/store"
)

// A request to a hook URL (/hooks/{id}, /hooks/g/{id}) is served by one of two fronts:
// fasthttp for a connection whose first request is to a hook URL, which is how webhook
// senders use a connection, and net/http for every other (fast.go, serve.go). Both read
// the request into a hookRequest and write back the hookAnswer that serveHook gives.

// hookRequest is a request to a hook URL as a front reads it.
type hookRequest struct {
	ctx    context.Context
	reqID  string // its X-Request-Id, for the log
	global bool   // a global webhook's URL (/hooks/g/{id})
	id     string
	size   int64 // the announced body length; -1 when unknown
	// readBody reads the body within the receiver's limit; a refusal refuses the request.
	readBody func() ([]byte, *refusal)
	// incoming is the request with its body, for the core.
	incoming func(body []byte) *core.Incoming
}

// hookAnswer is what a front writes back. tooLarge is set for a body over the limit: the
// front answers, then drains what the sender still sends and closes the connection
// (answerTooLarge).
type hookAnswer struct {
	reply    core.Reply
	tooLarge *refusal
}

// serveHook looks up the hook, reads the body and has the core handle the delivery.
func (rc *Receiver) serveHook(q *hookRequest) hookAnswer {
	var ws, subID, gwID string
	var handle func(*core.Incoming) *core.Result
	if q.global {
		gw, err := rc.Core.Store.LookupGlobalWebhook(q.ctx, q.id)
		if err != nil {
			return hookAnswer{reply: rc.lookupFailed(q, err, "global webhook")}
		}
		ws, gwID = gw.WorkspaceID, gw.ID
		handle = func(in *core.Incoming) *core.Result {
			return rc.Core.HandleGlobalDelivery(q.ctx, gw, in, nil, rc.Metrics)
		}
	} else {
		sub, err := rc.Core.Store.LookupSubscription(q.ctx, q.id)
		if err != nil {
			return hookAnswer{reply: rc.lookupFailed(q, err, "subscription")}
		}
		if sub.Status == store.StatusFailed {
			return hookAnswer{reply: rc.Core.Reject(q.ctx, sub.WorkspaceID, sub.ID, "", q.size,
				http.StatusGone, "subscription is not active: subscribe failed", "this hook URL is not active", rc.Metrics)}
		}
		ws, subID = sub.WorkspaceID, sub.ID
		handle = func(in *core.Incoming) *core.Result {
			return rc.Core.HandleSubscriptionDelivery(q.ctx, sub, in, nil, rc.Metrics)
		}
	}
	body, ref := q.readBody()
	if ref != nil {
		reply := rc.Core.Reject(q.ctx, ws, subID, gwID, q.size, ref.status, ref.msg, ref.public, rc.Metrics)
		if ref.status == http.StatusRequestEntityTooLarge {
			return hookAnswer{reply: reply, tooLarge: ref}
		}
		return hookAnswer{reply: reply}
	}
	res := handle(q.incoming(body))
	// The sender read a generic message with the delivery id; the detail goes to the log
	// (and the delivery record).
	switch {
	case res.Delivery.Outcome == store.OutcomeFailed:
		rc.Logger.Warn("delivery failed; kept for replay", "request_id", q.reqID, "subscription", subID,
			"global_webhook", gwID, "delivery", res.Delivery.ID, "error", res.Delivery.Error)
	case res.Delivery.Outcome == store.OutcomeRejected:
		rc.Logger.Info("delivery rejected", "request_id", q.reqID, "subscription", subID,
			"global_webhook", gwID, "delivery", res.Delivery.ID, "status", res.Reply.Status, "error", res.Delivery.Error)
	case rc.Logger.Enabled(q.ctx, slog.LevelDebug):
		rc.Logger.Debug("delivery", "request_id", q.reqID, "subscription", subID, "global_webhook", gwID,
			"delivery", res.Delivery.ID, "outcome", res.Delivery.Outcome, "status", res.Reply.Status, "events", res.Delivery.EventCount)
	}
	return hookAnswer{reply: res.Reply}
}

func (rc *Receiver) lookupFailed(q *hookRequest, err error, what string) core.Reply {
	if errors.Is(err, store.ErrNotFound) {
		if rc.Metrics != nil {
			rc.Metrics.ReceiverUnknown.Inc()
		}
		return core.ErrorReply(http.StatusNotFound, "unknown "+what)
	}
	rc.Logger.Error("lookup "+what, "request_id", q.reqID, "err", err)
	return core.ErrorReply(http.StatusServiceUnavailable, "temporarily unavailable")
}
