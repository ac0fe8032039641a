package api

import (
	"context"
	"errors"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/core"
	"github.com/hookmap/hookmap/server/destination"
	"github.com/hookmap/hookmap/server/store"
)

// destinationService implements DestinationService with a destination.Service.
type destinationService struct {
	*Services
	hookmapv1.UnimplementedDestinationServiceServer
}

var destinationStatusProto = map[string]hookmapv1.DestinationStatus{
	store.DestinationActive:   hookmapv1.DestinationStatus_DESTINATION_STATUS_ACTIVE,
	store.DestinationPaused:   hookmapv1.DestinationStatus_DESTINATION_STATUS_PAUSED,
	store.DestinationDisabled: hookmapv1.DestinationStatus_DESTINATION_STATUS_DISABLED,
}

var destinationEventStateProto = map[string]hookmapv1.DestinationEventState{
	store.DestinationEventPending: hookmapv1.DestinationEventState_DESTINATION_EVENT_STATE_PENDING,
	store.DestinationEventFailed:  hookmapv1.DestinationEventState_DESTINATION_EVENT_STATE_FAILED,
}

func destinationProto(d *store.Destination) *hookmapv1.Destination {
	f := d.Filter
	p := &hookmapv1.Destination{
		Id: d.ID, WebhookId: d.WebhookID, RetryWindow: durationpb.New(d.RetryWindow),
		Status: destinationStatusProto[d.Status], StatusReason: d.StatusReason, Cursor: d.Cursor,
		PendingCount: d.Pending, FailedCount: d.Failed, DeliveredCount: d.Delivered,
		CreateTime: ts(d.CreateTime), UpdateTime: ts(d.UpdateTime),
	}
	if len(f.ConnectionIDs)+len(f.SubscriptionIDs)+len(f.EventKeys)+len(f.Types) > 0 {
		p.Filter = &hookmapv1.EventFilter{
			ConnectionIds: f.ConnectionIDs, SubscriptionIds: f.SubscriptionIDs, EventKeys: f.EventKeys, Types: f.Types,
		}
	}
	if !d.LastDeliveryTime.IsZero() {
		p.LastDeliveryTime = ts(d.LastDeliveryTime)
	}
	return p
}

func destinationEventProto(e *store.DestinationEvent) *hookmapv1.DestinationEvent {
	p := &hookmapv1.DestinationEvent{
		Seq: e.Seq, EventId: e.EventID, SubscriptionId: e.SubscriptionID, ConnectionId: e.ConnectionID,
		State:    destinationEventStateProto[e.State],
		Attempts: int32(e.Attempts), LastStatus: int32(e.LastStatus), LastError: e.LastError,
	}
	if !e.FirstAttemptTime.IsZero() {
		p.FirstAttemptTime = ts(e.FirstAttemptTime)
	}
	if !e.NextAttemptTime.IsZero() {
		p.NextAttemptTime = ts(e.NextAttemptTime)
	}
	return p
}

// destinationFrom converts a request's destination; a malformed retry window is
// INVALID_ARGUMENT.
func destinationFrom(d *hookmapv1.Destination) (store.Destination, error) {
	out := store.Destination{ID: d.GetId(), WebhookID: d.GetWebhookId(), Filter: filterFromProto(d.GetFilter())}
	if w := d.GetRetryWindow(); w != nil {
		if err := w.CheckValid(); err != nil {
			return out, invalid("destination.retry_window", "not a valid duration")
		}
		out.RetryWindow = w.AsDuration()
	}
	return out, nil
}

// err maps the service's errors (see outgoingStatus).
func (s *destinationService) err(ctx context.Context, err error, prefix, what, id string) error {
	return outgoingStatus(ctx, s.Logger, err, prefix, what, id)
}

func (s *destinationService) CreateDestination(ctx context.Context, req *hookmapv1.CreateDestinationRequest) (*hookmapv1.Destination, error) {
	if req.GetDestination() == nil {
		return nil, invalid("destination", "required")
	}
	d, err := destinationFrom(req.GetDestination())
	if err != nil {
		return nil, err
	}
	var start destination.Start
	switch p := req.GetDestination().GetStart().GetPosition().(type) {
	case *hookmapv1.StreamPosition_Seq:
		if p.Seq < 1 {
			return nil, invalid("destination.start.seq", "must be at least 1")
		}
		start.Seq = p.Seq
	case *hookmapv1.StreamPosition_Earliest:
		start.Earliest = p.Earliest
	}
	out, err := s.Destinations.Create(ctx, workspace(ctx), d, start)
	if err != nil {
		return nil, s.err(ctx, err, "destination.", "destination", d.ID)
	}
	return destinationProto(out), nil
}

func (s *destinationService) GetDestination(ctx context.Context, req *hookmapv1.GetDestinationRequest) (*hookmapv1.Destination, error) {
	d, err := s.Destinations.Get(ctx, workspace(ctx), req.GetId())
	if err != nil {
		return nil, s.err(ctx, err, "", "destination", req.GetId())
	}
	return destinationProto(d), nil
}

func (s *destinationService) ListDestinations(ctx context.Context, req *hookmapv1.ListDestinationsRequest) (*hookmapv1.ListDestinationsResponse, error) {
	n, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	ds, next, err := s.Destinations.List(ctx, workspace(ctx), store.Page{Size: n, Token: req.GetPageToken()})
	if err != nil {
		return nil, s.err(ctx, err, "", "destination", "")
	}
	resp := &hookmapv1.ListDestinationsResponse{NextPageToken: next}
	for _, d := range ds {
		resp.Destinations = append(resp.Destinations, destinationProto(d))
	}
	return resp, nil
}

func (s *destinationService) UpdateDestination(ctx context.Context, req *hookmapv1.UpdateDestinationRequest) (*hookmapv1.Destination, error) {
	pd := req.GetDestination()
	if pd == nil {
		return nil, invalid("destination", "required")
	}
	if pd.GetId() == "" {
		return nil, invalid("destination.id", "required")
	}
	d, err := destinationFrom(pd)
	if err != nil {
		return nil, err
	}
	mask := req.GetUpdateMask().GetPaths()
	if len(mask) == 0 {
		if pd.GetWebhookId() != "" {
			mask = append(mask, destination.FieldWebhookID)
		}
		if pd.GetFilter() != nil {
			mask = append(mask, destination.FieldFilter)
		}
		if pd.GetRetryWindow() != nil {
			mask = append(mask, destination.FieldRetryWindow)
		}
	}
	out, err := s.Destinations.Update(ctx, workspace(ctx), d, mask)
	if err != nil {
		return nil, s.err(ctx, err, "destination.", "destination", d.ID)
	}
	return destinationProto(out), nil
}

func (s *destinationService) DeleteDestination(ctx context.Context, req *hookmapv1.DeleteDestinationRequest) (*hookmapv1.DeleteDestinationResponse, error) {
	if err := s.Destinations.Delete(ctx, workspace(ctx), req.GetId()); err != nil {
		return nil, s.err(ctx, err, "", "destination", req.GetId())
	}
	return &hookmapv1.DeleteDestinationResponse{}, nil
}

func (s *destinationService) PauseDestination(ctx context.Context, req *hookmapv1.PauseDestinationRequest) (*hookmapv1.Destination, error) {
	d, err := s.Destinations.Pause(ctx, workspace(ctx), req.GetId())
	if err != nil {
		return nil, s.err(ctx, err, "", "destination", req.GetId())
	}
	return destinationProto(d), nil
}

func (s *destinationService) ResumeDestination(ctx context.Context, req *hookmapv1.ResumeDestinationRequest) (*hookmapv1.Destination, error) {
	d, err := s.Destinations.Resume(ctx, workspace(ctx), req.GetId())
	if err != nil {
		return nil, s.err(ctx, err, "", "destination", req.GetId())
	}
	return destinationProto(d), nil
}

func (s *destinationService) ListDestinationEvents(ctx context.Context, req *hookmapv1.ListDestinationEventsRequest) (*hookmapv1.ListDestinationEventsResponse, error) {
	if req.GetDestinationId() == "" {
		return nil, invalid("destination_id", "required")
	}
	n, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	state := ""
	if st := req.GetState(); st != hookmapv1.DestinationEventState_DESTINATION_EVENT_STATE_UNSPECIFIED {
		for k, v := range destinationEventStateProto {
			if v == st {
				state = k
			}
		}
		if state == "" {
			return nil, invalid("state", "unknown state "+st.String())
		}
	}
	evs, next, err := s.Destinations.ListEvents(ctx, workspace(ctx), req.GetDestinationId(), state, store.Page{Size: n, Token: req.GetPageToken()})
	if err != nil {
		return nil, s.err(ctx, err, "", "destination", req.GetDestinationId())
	}
	resp := &hookmapv1.ListDestinationEventsResponse{NextPageToken: next}
	for _, e := range evs {
		resp.Events = append(resp.Events, destinationEventProto(e))
	}
	return resp, nil
}

func (s *destinationService) RetryDestinationEvent(ctx context.Context, req *hookmapv1.RetryDestinationEventRequest) (*hookmapv1.DestinationEvent, error) {
	if req.GetDestinationId() == "" {
		return nil, invalid("destination_id", "required")
	}
	if req.GetSeq() < 1 {
		return nil, invalid("seq", "must be at least 1")
	}
	ws := workspace(ctx)
	if _, err := s.Destinations.Retry(ctx, ws, req.GetDestinationId(), req.GetSeq()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			if _, gerr := s.Destinations.Get(ctx, ws, req.GetDestinationId()); gerr == nil {
				return nil, failed(codes.NotFound, core.ReasonResourceNotFound,
					"destination "+core.Q(req.GetDestinationId())+" holds no failed event "+strconv.FormatInt(req.GetSeq(), 10))
			}
		}
		return nil, s.err(ctx, err, "", "destination", req.GetDestinationId())
	}
	e, err := s.Destinations.GetEvent(ctx, ws, req.GetDestinationId(), req.GetSeq())
	if errors.Is(err, store.ErrNotFound) {
		// Delivered already, between the retry and this read.
		return &hookmapv1.DestinationEvent{Seq: req.GetSeq()}, nil
	}
	if err != nil {
		return nil, s.err(ctx, err, "", "destination", req.GetDestinationId())
	}
	return destinationEventProto(e), nil
}

func (s *destinationService) RetryDestinationEvents(ctx context.Context, req *hookmapv1.RetryDestinationEventsRequest) (*hookmapv1.RetryDestinationEventsResponse, error) {
	if req.GetDestinationId() == "" {
		return nil, invalid("destination_id", "required")
	}
	n, err := s.Destinations.Retry(ctx, workspace(ctx), req.GetDestinationId(), 0)
	if err != nil {
		return nil, s.err(ctx, err, "", "destination", req.GetDestinationId())
	}
	return &hookmapv1.RetryDestinationEventsResponse{Retried: n}, nil
}
