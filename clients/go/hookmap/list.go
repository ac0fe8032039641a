package hookmap

import (
	"context"
	"fmt"
	"iter"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
)

// Every List RPC has an iterator named after it (ListConnections → AllConnections). It
// takes the same request (nil: an empty one; its page_size, if set, is the page size; its
// page_token, if set, is where it starts), calls the RPC page after page as the loop
// asks for more, and yields each item with a nil error. A failed call yields (nil, err)
// once and ends the loop; err is the call's gRPC status. Breaking out of the loop stops
// the paging.

// ConnectorService is the hookmap.v1.ConnectorService client with iterators.
type ConnectorService struct {
	hookmapv1.ConnectorServiceClient
}

// AllConnectors yields every loaded connector.
func (s ConnectorService) AllConnectors(ctx context.Context, req *hookmapv1.ListConnectorsRequest, opts ...grpc.CallOption) iter.Seq2[*hookmapv1.Connector, error] {
	return once(ctx, req, opts, s.ListConnectors, (*hookmapv1.ListConnectorsResponse).GetConnectors)
}

// AllGlobalWebhooks yields the global webhooks of the request's connector.
func (s ConnectorService) AllGlobalWebhooks(ctx context.Context, req *hookmapv1.ListGlobalWebhooksRequest, opts ...grpc.CallOption) iter.Seq2[*hookmapv1.GlobalWebhook, error] {
	return once(ctx, req, opts, s.ListGlobalWebhooks, (*hookmapv1.ListGlobalWebhooksResponse).GetGlobalWebhooks)
}

// ConnectionService is the hookmap.v1.ConnectionService client with iterators.
type ConnectionService struct {
	hookmapv1.ConnectionServiceClient
}

// AllConnections yields every connection of the workspace, in creation order.
func (s ConnectionService) AllConnections(ctx context.Context, req *hookmapv1.ListConnectionsRequest, opts ...grpc.CallOption) iter.Seq2[*hookmapv1.Connection, error] {
	return pages(ctx, req, opts, s.ListConnections,
		func(r *hookmapv1.ListConnectionsRequest, tok string) { r.PageToken = tok },
		(*hookmapv1.ListConnectionsResponse).GetConnections, (*hookmapv1.ListConnectionsResponse).GetNextPageToken)
}

// SubscriptionService is the hookmap.v1.SubscriptionService client with iterators.
type SubscriptionService struct {
	hookmapv1.SubscriptionServiceClient
}

// AllSubscriptions yields every subscription the request selects.
func (s SubscriptionService) AllSubscriptions(ctx context.Context, req *hookmapv1.ListSubscriptionsRequest, opts ...grpc.CallOption) iter.Seq2[*hookmapv1.Subscription, error] {
	return pages(ctx, req, opts, s.ListSubscriptions,
		func(r *hookmapv1.ListSubscriptionsRequest, tok string) { r.PageToken = tok },
		(*hookmapv1.ListSubscriptionsResponse).GetSubscriptions, (*hookmapv1.ListSubscriptionsResponse).GetNextPageToken)
}

// EventService is the hookmap.v1.EventService client with iterators. Client.Consume is
// the resilient way to stream events.
type EventService struct {
	hookmapv1.EventServiceClient
}

// AllEvents yields every stored event the request selects, in seq order. NewEvent
// turns one into an Event; ask for RECORD_FORMAT_JSON to have its record exact.
func (s EventService) AllEvents(ctx context.Context, req *hookmapv1.ListEventsRequest, opts ...grpc.CallOption) iter.Seq2[*hookmapv1.Event, error] {
	return pages(ctx, req, opts, s.ListEvents,
		func(r *hookmapv1.ListEventsRequest, tok string) { r.PageToken = tok },
		(*hookmapv1.ListEventsResponse).GetEvents, (*hookmapv1.ListEventsResponse).GetNextPageToken)
}

// AllDeliveries yields every delivery the request selects, newest first.
func (s EventService) AllDeliveries(ctx context.Context, req *hookmapv1.ListDeliveriesRequest, opts ...grpc.CallOption) iter.Seq2[*hookmapv1.Delivery, error] {
	return pages(ctx, req, opts, s.ListDeliveries,
		func(r *hookmapv1.ListDeliveriesRequest, tok string) { r.PageToken = tok },
		(*hookmapv1.ListDeliveriesResponse).GetDeliveries, (*hookmapv1.ListDeliveriesResponse).GetNextPageToken)
}

// WebhookService is the hookmap.v1.WebhookService (outgoing webhooks) client with
// iterators.
type WebhookService struct {
	hookmapv1.WebhookServiceClient
}

// AllWebhooks yields every registered outgoing webhook, in creation order.
func (s WebhookService) AllWebhooks(ctx context.Context, req *hookmapv1.ListWebhooksRequest, opts ...grpc.CallOption) iter.Seq2[*hookmapv1.Webhook, error] {
	return pages(ctx, req, opts, s.ListWebhooks,
		func(r *hookmapv1.ListWebhooksRequest, tok string) { r.PageToken = tok },
		(*hookmapv1.ListWebhooksResponse).GetWebhooks, (*hookmapv1.ListWebhooksResponse).GetNextPageToken)
}

// AllInvocations yields every invocation record the request selects, newest first.
func (s WebhookService) AllInvocations(ctx context.Context, req *hookmapv1.ListInvocationsRequest, opts ...grpc.CallOption) iter.Seq2[*hookmapv1.Invocation, error] {
	return pages(ctx, req, opts, s.ListInvocations,
		func(r *hookmapv1.ListInvocationsRequest, tok string) { r.PageToken = tok },
		(*hookmapv1.ListInvocationsResponse).GetInvocations, (*hookmapv1.ListInvocationsResponse).GetNextPageToken)
}

// AdminService is the hookmap.v1.AdminService client with iterators. Its calls need the
// admin token.
type AdminService struct {
	hookmapv1.AdminServiceClient
}

// AllWorkspaces yields every workspace, in creation order.
func (s AdminService) AllWorkspaces(ctx context.Context, req *hookmapv1.ListWorkspacesRequest, opts ...grpc.CallOption) iter.Seq2[*hookmapv1.Workspace, error] {
	return pages(ctx, req, opts, s.ListWorkspaces,
		func(r *hookmapv1.ListWorkspacesRequest, tok string) { r.PageToken = tok },
		(*hookmapv1.ListWorkspacesResponse).GetWorkspaces, (*hookmapv1.ListWorkspacesResponse).GetNextPageToken)
}

// DestinationService is the hookmap.v1.DestinationService client with iterators.
type DestinationService struct {
	hookmapv1.DestinationServiceClient
}

// AllDestinations yields every destination of the workspace.
func (s DestinationService) AllDestinations(ctx context.Context, req *hookmapv1.ListDestinationsRequest, opts ...grpc.CallOption) iter.Seq2[*hookmapv1.Destination, error] {
	return pages(ctx, req, opts, s.ListDestinations,
		func(r *hookmapv1.ListDestinationsRequest, tok string) { r.PageToken = tok },
		(*hookmapv1.ListDestinationsResponse).GetDestinations, (*hookmapv1.ListDestinationsResponse).GetNextPageToken)
}

// AllDestinationEvents yields every event the request's destination still holds, in seq order.
func (s DestinationService) AllDestinationEvents(ctx context.Context, req *hookmapv1.ListDestinationEventsRequest, opts ...grpc.CallOption) iter.Seq2[*hookmapv1.DestinationEvent, error] {
	return pages(ctx, req, opts, s.ListDestinationEvents,
		func(r *hookmapv1.ListDestinationEventsRequest, tok string) { r.PageToken = tok },
		(*hookmapv1.ListDestinationEventsResponse).GetEvents, (*hookmapv1.ListDestinationEventsResponse).GetNextPageToken)
}

type call[Req, Resp any] func(context.Context, Req, ...grpc.CallOption) (Resp, error)

// pages iterates a paged List RPC. The caller's request is cloned, never changed.
func pages[Req proto.Message, Resp, T any](
	ctx context.Context, req Req, opts []grpc.CallOption, list call[Req, Resp],
	setToken func(Req, string), items func(Resp) []T, next func(Resp) string,
) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		r := cloneOrNew(req)
		seen := map[string]bool{}
		for {
			resp, err := list(ctx, r, opts...)
			if err != nil {
				yield(zero, err)
				return
			}
			for _, it := range items(resp) {
				if !yield(it, nil) {
					return
				}
			}
			tok := next(resp)
			if tok == "" {
				return
			}
			if seen[tok] {
				yield(zero, fmt.Errorf("hookmap: the server returned page token %q twice", tok))
				return
			}
			seen[tok] = true
			setToken(r, tok)
		}
	}
}

// once iterates an unpaged List RPC.
func once[Req proto.Message, Resp, T any](ctx context.Context, req Req, opts []grpc.CallOption, list call[Req, Resp], items func(Resp) []T) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		resp, err := list(ctx, cloneOrNew(req), opts...)
		if err != nil {
			var zero T
			yield(zero, err)
			return
		}
		for _, it := range items(resp) {
			if !yield(it, nil) {
				return
			}
		}
	}
}

// cloneOrNew returns a copy of req, or a new empty request when req is nil.
func cloneOrNew[Req proto.Message](req Req) Req {
	var zero Req
	if req.ProtoReflect().IsValid() {
		return proto.Clone(req).(Req)
	}
	return zero.ProtoReflect().Type().New().Interface().(Req)
}
