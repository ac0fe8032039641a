package api

import (
	"context"
	"errors"
	"strings"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/core"
	"github.com/hookmap/hookmap/server/store"
)

type subscriptionService struct {
	*Services
	hookmapv1.UnimplementedSubscriptionServiceServer
}

var statusProto = map[string]hookmapv1.SubscriptionStatus{
	store.StatusPending:  hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_PENDING,
	store.StatusActive:   hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE,
	store.StatusFailed:   hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_FAILED,
	store.StatusDeleting: hookmapv1.SubscriptionStatus_SUBSCRIPTION_STATUS_DELETING,
}

// globalURLs resolves the URLs of global webhooks, each connector's listed once per call.
type globalURLs map[string]map[string]string // connector key → global webhook key → URL

func (s *subscriptionService) subscriptionProto(ctx context.Context, sub *store.Subscription, urls globalURLs) *hookmapv1.Subscription {
	uri := s.Core.WebhookURI(sub.ID)
	if sub.GlobalWebhookKey != "" {
		byKey, ok := urls[sub.ConnectorKey]
		if !ok {
			byKey = map[string]string{}
			if gws, err := s.Core.Store.ListGlobalWebhooks(ctx, sub.WorkspaceID, sub.ConnectorKey); err == nil {
				for _, g := range gws {
					byKey[g.Key] = s.Core.GlobalWebhookURL(g.ID)
				}
			} else {
				s.Logger.Warn("list global webhooks", "connector", sub.ConnectorKey, "err", err)
			}
			urls[sub.ConnectorKey] = byKey
		}
		uri = byKey[sub.GlobalWebhookKey]
	}
	return &hookmapv1.Subscription{
		Id: sub.ID, ConnectionId: sub.ConnectionID, EventKey: sub.EventKey, ConnectorKey: sub.ConnectorKey,
		Parameters: mustStruct(sub.Parameters), WebhookUri: uri, Status: statusProto[sub.Status],
		LastError: sub.LastError, NextRefreshTime: ts(sub.NextRefreshTime), CreateTime: ts(sub.CreateTime),
		UpdateTime: ts(sub.UpdateTime), LastEventTime: ts(sub.LastEventTime), RefreshTime: ts(sub.RefreshTime),
	}
}

func (s *subscriptionService) err(ctx context.Context, err error) error {
	return toStatus(ctx, s.Logger, err)
}

func (s *subscriptionService) CreateSubscription(ctx context.Context, req *hookmapv1.CreateSubscriptionRequest) (*hookmapv1.Subscription, error) {
	sub, err := s.Core.CreateSubscription(ctx, workspace(ctx), core.SubscriptionInput{
		ConnectionID: req.GetConnectionId(), EventKey: req.GetEventKey(), Parameters: plainFromStruct(req.GetParameters()),
		RequestID: req.GetRequestId(),
	})
	if err != nil {
		return nil, s.err(ctx, err)
	}
	return s.subscriptionProto(ctx, sub, globalURLs{}), nil
}

func (s *subscriptionService) GetSubscription(ctx context.Context, req *hookmapv1.GetSubscriptionRequest) (*hookmapv1.Subscription, error) {
	if req.GetId() == "" {
		return nil, invalid("id", "required")
	}
	sub, err := s.Core.Store.GetSubscription(ctx, workspace(ctx), req.GetId())
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("subscription", req.GetId())
	}
	if err != nil {
		return nil, s.err(ctx, err)
	}
	return s.subscriptionProto(ctx, sub, globalURLs{}), nil
}

func (s *subscriptionService) ListSubscriptions(ctx context.Context, req *hookmapv1.ListSubscriptionsRequest) (*hookmapv1.ListSubscriptionsResponse, error) {
	n, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	if id := req.GetConnectionId(); id != "" {
		if _, err := s.Core.Store.GetConnection(ctx, workspace(ctx), id); errors.Is(err, store.ErrNotFound) {
			return nil, notFound("connection", id)
		}
	}
	subs, next, err := s.Core.Store.ListSubscriptions(ctx, workspace(ctx), req.GetConnectionId(), store.Page{Size: n, Token: req.GetPageToken()})
	if err != nil {
		return nil, s.err(ctx, pageTokenError(err))
	}
	resp := &hookmapv1.ListSubscriptionsResponse{NextPageToken: next}
	urls := globalURLs{}
	for _, sub := range subs {
		resp.Subscriptions = append(resp.Subscriptions, s.subscriptionProto(ctx, sub, urls))
	}
	return resp, nil
}

func (s *subscriptionService) DeleteSubscription(ctx context.Context, req *hookmapv1.DeleteSubscriptionRequest) (*hookmapv1.DeleteSubscriptionResponse, error) {
	if req.GetId() == "" {
		return nil, invalid("id", "required")
	}
	del, err := s.Core.DeleteSubscription(ctx, workspace(ctx), req.GetId(), req.GetForce())
	if err != nil {
		return nil, s.err(ctx, err)
	}
	return &hookmapv1.DeleteSubscriptionResponse{
		Leftover: del.Leftover, WebhookMayRemain: del.WebhookMayRemain, WebhookUri: del.WebhookURI,
	}, nil
}

func (s *subscriptionService) RefreshSubscription(ctx context.Context, req *hookmapv1.RefreshSubscriptionRequest) (*hookmapv1.RefreshSubscriptionResponse, error) {
	if req.GetId() == "" {
		return nil, invalid("id", "required")
	}
	sub, out, err := s.Core.RefreshSubscription(ctx, workspace(ctx), req.GetId())
	if err != nil {
		return nil, s.err(ctx, err)
	}
	if out.Err != nil {
		return nil, s.err(ctx, core.AppError(ctx, "refresh failed", out.Err))
	}
	resp := &hookmapv1.RefreshSubscriptionResponse{Healed: out.Healed, Deleted: out.Deleted}
	if !out.Deleted {
		resp.Subscription = s.subscriptionProto(ctx, sub, globalURLs{})
	}
	return resp, nil
}

var classifications = map[string]hookmapv1.WebhookClassification{
	core.Owned:    hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_OWNED,
	core.Orphaned: hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_ORPHANED,
	core.Foreign:  hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_FOREIGN,
	core.Missing:  hookmapv1.WebhookClassification_WEBHOOK_CLASSIFICATION_MISSING,
}

func (s *subscriptionService) ReconcileWebhooks(ctx context.Context, req *hookmapv1.ReconcileWebhooksRequest) (*hookmapv1.ReconcileWebhooksResponse, error) {
	if req.GetConnectionId() == "" {
		return nil, invalid("connection_id", "required")
	}
	if req.GetEventKey() == "" {
		return nil, invalid("event_key", "required")
	}
	switch req.GetMode() {
	case hookmapv1.ReconcileMode_RECONCILE_MODE_DRY_RUN, hookmapv1.ReconcileMode_RECONCILE_MODE_DELETE_ORPHANS:
	default:
		return nil, invalid("mode", "must be RECONCILE_MODE_DRY_RUN or RECONCILE_MODE_DELETE_ORPHANS")
	}
	if p := req.GetUrlPrefix(); p != "" && !strings.HasPrefix(p, "https://") && !strings.HasPrefix(p, "http://") {
		return nil, invalid("url_prefix", "must be an http(s) URL prefix such as https://hooks.example.com/hooks/")
	}
	res, err := s.Core.ReconcileWebhooks(ctx, workspace(ctx), core.ReconcileInput{
		ConnectionID: req.GetConnectionId(),
		EventKey:     req.GetEventKey(),
		Parameters:   plainFromStruct(req.GetParameters()),
		DeleteOrphan: req.GetMode() == hookmapv1.ReconcileMode_RECONCILE_MODE_DELETE_ORPHANS,
		URLPrefix:    req.GetUrlPrefix(),
		Repair:       req.GetRepair(),
	})
	if err != nil {
		return nil, s.err(ctx, err)
	}
	resp := &hookmapv1.ReconcileWebhooksResponse{}
	for _, r := range res {
		w := &hookmapv1.ReconciledWebhook{
			Id: r.ID, Url: r.URL, Classification: classifications[r.Classification],
			SubscriptionId: r.SubscriptionID, Deleted: r.Deleted, Repaired: r.Repaired, Error: r.Error,
		}
		resp.Webhooks = append(resp.Webhooks, w)
		switch r.Classification {
		case core.Owned:
			resp.Owned++
		case core.Orphaned:
			resp.Orphaned++
		case core.Foreign:
			resp.Foreign++
		case core.Missing:
			resp.Missing++
		}
		if r.Deleted {
			resp.Deleted++
		}
		if r.Error != "" {
			resp.Failed++
		}
	}
	return resp, nil
}
