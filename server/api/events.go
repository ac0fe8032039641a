package api

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hookmap/hookmap/engine/value"
	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/core"
	"github.com/hookmap/hookmap/server/store"
)

// streamBatch is how many events a stream reads from the store at a time.
const streamBatch = 256

// maxPageBytes bounds a ListEvents page (at least one event is always listed): with
// records of at most value.MaxSize, a page fits in the 4 MiB gRPC clients receive by
// default.
const maxPageBytes = value.MaxSize

type eventService struct {
	*Services
	hookmapv1.UnimplementedEventServiceServer
}

func (s *eventService) err(ctx context.Context, err error) error { return toStatus(ctx, s.Logger, err) }

// eventProto converts a stored event, carrying its record as format asks: a Value in
// record, or the stored JSON text in record_json. A record that cannot be read or sent is
// flagged in record_error, never an error of the whole stream or page.
func eventProto(e *store.Event, format hookmapv1.RecordFormat) *hookmapv1.Event {
	pe := &hookmapv1.Event{
		Seq: e.Seq, Id: e.ID, ConnectionId: e.ConnectionID, SubscriptionId: e.SubscriptionID,
		EventKey: e.EventKey, Type: e.Type, ReceiveTime: ts(e.ReceiveTime),
		ExternalId: e.ExternalID, DeliveryId: e.DeliveryID, RecordError: e.RecordError,
	}
	if pe.RecordError != "" {
		return pe
	}
	if format == hookmapv1.RecordFormat_RECORD_FORMAT_JSON {
		pe.RecordJson = e.RecordJSON
		if pe.RecordJson == "" {
			b, err := value.Encode(e.Record)
			if err != nil {
				pe.RecordError = "the stored record cannot be sent: " + err.Error()
				return pe
			}
			pe.RecordJson = string(b)
		}
		return pe
	}
	rec, err := valueFromPlain(e.Record)
	if err != nil {
		pe.RecordError = "the stored record cannot be sent: " + err.Error()
		return pe
	}
	pe.Record = rec
	return pe
}

// recordFormat checks a request's record_format.
func recordFormat(f hookmapv1.RecordFormat) error {
	if _, ok := hookmapv1.RecordFormat_name[int32(f)]; !ok {
		return invalid("record_format", "unknown format "+strconv.Itoa(int(f)))
	}
	return nil
}

func filterFromProto(f *hookmapv1.EventFilter) store.EventFilter {
	return store.EventFilter{
		ConnectionIDs: f.GetConnectionIds(), SubscriptionIDs: f.GetSubscriptionIds(),
		EventKeys: f.GetEventKeys(), Types: f.GetTypes(),
	}
}

func validConsumer(name string) error {
	if name == "" {
		return invalid("consumer", "required")
	}
	if len(name) > 200 {
		return invalid("consumer", "longer than 200 characters")
	}
	// Control characters (NUL above all) have no place in a name, and the Postgres
	// store could not keep one: refuse them here for every store alike.
	if i := strings.IndexFunc(name, unicode.IsControl); i >= 0 {
		return invalid("consumer", fmt.Sprintf("control character %U at byte %d", []rune(name[i:])[0], i))
	}
	return nil
}

func (s *eventService) StreamEvents(req *hookmapv1.StreamEventsRequest, stream grpc.ServerStreamingServer[hookmapv1.Event]) error {
	ctx := stream.Context()
	ws := workspace(ctx)
	if err := validConsumer(req.GetConsumer()); err != nil {
		return err
	}
	if err := recordFormat(req.GetRecordFormat()); err != nil {
		return err
	}
	// Register first, so a stream opened after this one replaces it even while it reads.
	h, err := s.Core.OpenStream(ctx, ws, req.GetConsumer())
	if err != nil {
		return s.err(ctx, err)
	}
	defer s.Core.Hub.Close(h)
	if s.Metrics != nil {
		s.Metrics.StreamsOpen.Inc()
		defer s.Metrics.StreamsOpen.Dec()
	}
	var after int64
	switch p := req.GetStart().GetPosition().(type) {
	case *hookmapv1.StreamPosition_Seq:
		if p.Seq < 1 {
			return invalid("start.seq", "must be at least 1")
		}
		after = p.Seq - 1
	case *hookmapv1.StreamPosition_Earliest:
		after = 0
	case *hookmapv1.StreamPosition_Latest:
		last, err := s.Core.Store.LastSeq(ctx, ws)
		if err != nil {
			return s.err(ctx, err)
		}
		after = last
	default:
		cur, _, err := s.Core.Store.GetCursor(ctx, ws, req.GetConsumer())
		if err != nil {
			return s.err(ctx, err)
		}
		after = cur
	}
	filter := filterFromProto(req.GetFilter())
	filter.JSONRecords = req.GetRecordFormat() == hookmapv1.RecordFormat_RECORD_FORMAT_JSON
	// Headers now, not with the first event: a client (the JSON API's, a browser's fetch)
	// then knows the stream is open even while no event comes.
	if err := stream.SendHeader(nil); err != nil {
		return err
	}
	for {
		wake := s.Core.Hub.Wait(ws)
		events, err := s.Core.Store.ListEvents(ctx, ws, filter, after, streamBatch)
		if err != nil {
			return s.err(ctx, err)
		}
		for _, e := range events {
			pe := eventProto(e, req.GetRecordFormat())
			select {
			case <-h.Replaced():
				return replaced(req.GetConsumer())
			default:
			}
			if err := stream.Send(pe); err != nil {
				return err
			}
			if s.Metrics != nil {
				s.Metrics.EventsStreamed.Inc()
			}
			after = e.Seq
		}
		if len(events) == streamBatch {
			continue
		}
		select {
		case <-wake:
		case <-h.Replaced():
			return replaced(req.GetConsumer())
		case <-s.Core.Hub.Closing():
			return failed(codes.Unavailable, core.ReasonShuttingDown, "server shutting down; reconnect to resume after the last acked event")
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// replaced is the end of a stream a newer stream of its consumer took over.
func replaced(consumer string) error {
	return failed(codes.Aborted, core.ReasonStreamReplaced, "a newer stream of consumer "+strconv.Quote(consumer)+" replaced this one")
}

func (s *eventService) AckEvents(ctx context.Context, req *hookmapv1.AckEventsRequest) (*hookmapv1.AckEventsResponse, error) {
	if err := validConsumer(req.GetConsumer()); err != nil {
		return nil, err
	}
	if req.GetSeq() < 1 {
		return nil, invalid("seq", "must be at least 1")
	}
	last, err := s.Core.Store.LastSeq(ctx, workspace(ctx))
	if err != nil {
		return nil, s.err(ctx, err)
	}
	if req.GetSeq() > last {
		return nil, invalid("seq", "is beyond the last stored event ("+strconv.FormatInt(last, 10)+")")
	}
	if err := s.Core.Store.AckEvents(ctx, workspace(ctx), req.GetConsumer(), req.GetSeq()); err != nil {
		return nil, s.err(ctx, err)
	}
	return &hookmapv1.AckEventsResponse{}, nil
}

func (s *eventService) ListEvents(ctx context.Context, req *hookmapv1.ListEventsRequest) (*hookmapv1.ListEventsResponse, error) {
	n, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	if err := recordFormat(req.GetRecordFormat()); err != nil {
		return nil, err
	}
	if n == 0 {
		n = 50
	}
	if n > 1000 {
		n = 1000
	}
	after := req.GetAfterSeq()
	if tok := req.GetPageToken(); tok != "" {
		after, err = strconv.ParseInt(tok, 10, 64)
		if err != nil || after < 0 {
			return nil, invalid("page_token", "not a token this list returned")
		}
	}
	filter := filterFromProto(req.GetFilter())
	filter.JSONRecords = req.GetRecordFormat() == hookmapv1.RecordFormat_RECORD_FORMAT_JSON
	events, err := s.Core.Store.ListEvents(ctx, workspace(ctx), filter, after, n+1)
	if err != nil {
		return nil, s.err(ctx, err)
	}
	resp := &hookmapv1.ListEventsResponse{}
	size := 0
	for i, e := range events {
		pe := eventProto(e, req.GetRecordFormat())
		size += proto.Size(pe)
		if i == n || (i > 0 && size > maxPageBytes) {
			// More events follow: the page ends at the size asked for, or before it grows
			// past what a client receives by default.
			resp.NextPageToken = strconv.FormatInt(events[i-1].Seq, 10)
			break
		}
		resp.Events = append(resp.Events, pe)
	}
	return resp, nil
}

var outcomeProto = map[string]hookmapv1.DeliveryOutcome{
	store.OutcomeOK:        hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_OK,
	store.OutcomeRejected:  hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_REJECTED,
	store.OutcomeFailed:    hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED,
	store.OutcomeUnmatched: hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_UNMATCHED,
	store.OutcomeDuplicate: hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_DUPLICATE,
}

var fetchStatusProto = map[string]hookmapv1.FetchStatus{
	store.FetchPending:  hookmapv1.FetchStatus_FETCH_STATUS_PENDING,
	store.FetchRetrying: hookmapv1.FetchStatus_FETCH_STATUS_RETRYING,
	store.FetchOK:       hookmapv1.FetchStatus_FETCH_STATUS_OK,
	store.FetchFailed:   hookmapv1.FetchStatus_FETCH_STATUS_FAILED,
}

func deliveryProto(d *store.Delivery) *hookmapv1.Delivery {
	out := &hookmapv1.Delivery{
		Id: d.ID, ReceiveTime: ts(d.ReceiveTime), StatusCode: int32(d.StatusCode), Outcome: outcomeProto[d.Outcome],
		Error: d.Error, EventCount: int32(d.EventCount), SubscriptionId: d.SubscriptionID,
		GlobalWebhookId: d.GlobalWebhookID, RequestSize: d.RequestSize, Selectors: d.Selectors,
		// A given-up fetch is replayed without a kept request: ReplayDelivery queues it again.
		Replayable:  d.HasRequest || d.Request != nil || d.FetchStatus == store.FetchFailed,
		ReplayCount: int32(d.ReplayCount),
	}
	if d.FetchStatus != "" {
		out.Fetch = &hookmapv1.DeliveryFetch{Status: fetchStatusProto[d.FetchStatus], Attempts: int32(d.FetchAttempts)}
	}
	return out
}

// secretHeaderParts are what a header name contains when its values are credentials or
// signatures (authorization, cookie, x-hub-signature-256, x-api-key, x-shopify-hmac-sha256,
// x-goog-channel-token…): GetDelivery withholds their values.
var secretHeaderParts = []string{"auth", "cookie", "secret", "signature", "token", "password", "hmac", "key"}

func redactedHeader(name string) bool {
	for _, p := range secretHeaderParts {
		if strings.Contains(name, p) {
			return true
		}
	}
	return false
}

// requestProto is a kept request with the values of secret-looking headers withheld.
func requestProto(r *store.RawRequest) *hookmapv1.DeliveryRequest {
	out := &hookmapv1.DeliveryRequest{Method: r.Method, Path: r.Path, Query: r.Query, Body: r.Body}
	for _, name := range value.SortedKeys(r.Headers) {
		h := &hookmapv1.DeliveryHeader{Name: strings.ToLower(name)}
		if redactedHeader(h.Name) {
			h.Redacted = true
		} else {
			h.Values = r.Headers[name]
		}
		out.Headers = append(out.Headers, h)
	}
	return out
}

// deliveryEventsLimit bounds the events GetDelivery returns.
const deliveryEventsLimit = 100

func (s *eventService) GetDelivery(ctx context.Context, req *hookmapv1.GetDeliveryRequest) (*hookmapv1.Delivery, error) {
	if req.GetId() == "" {
		return nil, invalid("id", "required")
	}
	if err := recordFormat(req.GetRecordFormat()); err != nil {
		return nil, err
	}
	d, err := s.Core.Store.GetDelivery(ctx, workspace(ctx), req.GetId())
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("delivery", req.GetId())
	}
	if err != nil {
		return nil, s.err(ctx, err)
	}
	out := deliveryProto(d)
	if d.Request != nil {
		out.Request = requestProto(d.Request)
	}
	events, err := s.Core.Store.DeliveryEvents(ctx, workspace(ctx), d, deliveryEventsLimit)
	if err != nil {
		return nil, s.err(ctx, err)
	}
	size := proto.Size(out)
	for i, e := range events {
		pe := eventProto(e, req.GetRecordFormat())
		if size += proto.Size(pe); i > 0 && size > maxPageBytes {
			break // the answer stays within what a client receives by default
		}
		out.Events = append(out.Events, pe)
	}
	return out, nil
}

func (s *eventService) ListDeliveries(ctx context.Context, req *hookmapv1.ListDeliveriesRequest) (*hookmapv1.ListDeliveriesResponse, error) {
	n, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	f := store.DeliveryFilter{SubscriptionID: req.GetSubscriptionId(), GlobalWebhookID: req.GetGlobalWebhookId()}
	for _, t := range []struct {
		field string
		ts    *timestamppb.Timestamp
		to    *time.Time
	}{{"start_time", req.GetStartTime(), &f.Start}, {"end_time", req.GetEndTime(), &f.End}} {
		if t.ts == nil {
			continue
		}
		if err := t.ts.CheckValid(); err != nil {
			return nil, invalid(t.field, err.Error())
		}
		*t.to = t.ts.AsTime()
	}
	if !f.Start.IsZero() && !f.End.IsZero() && !f.End.After(f.Start) {
		return nil, invalid("end_time", "must be after start_time")
	}
	if o := req.GetOutcome(); o != hookmapv1.DeliveryOutcome_DELIVERY_OUTCOME_UNSPECIFIED {
		for k, v := range outcomeProto {
			if v == o {
				f.Outcome = k
			}
		}
		if f.Outcome == "" {
			return nil, invalid("outcome", "unknown outcome "+o.String())
		}
	}
	ds, next, err := s.Core.Store.ListDeliveries(ctx, workspace(ctx), f, store.Page{Size: n, Token: req.GetPageToken()})
	if err != nil {
		return nil, s.err(ctx, pageTokenError(err))
	}
	resp := &hookmapv1.ListDeliveriesResponse{NextPageToken: next}
	for _, d := range ds {
		resp.Deliveries = append(resp.Deliveries, deliveryProto(d))
	}
	return resp, nil
}

func (s *eventService) ReplayDelivery(ctx context.Context, req *hookmapv1.ReplayDeliveryRequest) (*hookmapv1.Delivery, error) {
	if req.GetId() == "" {
		return nil, invalid("id", "required")
	}
	d, err := s.Core.ReplayDelivery(ctx, workspace(ctx), req.GetId(), s.Metrics)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("delivery", req.GetId())
	}
	if err != nil {
		return nil, s.err(ctx, err)
	}
	return deliveryProto(d), nil
}
