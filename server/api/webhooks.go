package api

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	hookmapv1 "github.com/hookmap/hookmap/proto/gen/hookmap/v1"
	"github.com/hookmap/hookmap/server/core"
	"github.com/hookmap/hookmap/server/outgoing"
	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/webhookfile"
)

// webhookService implements WebhookService (outgoing webhooks) with an outgoing.Sender.
type webhookService struct {
	*Services
	hookmapv1.UnimplementedWebhookServiceServer
	sender *outgoing.Sender
}

var encodingToProto = map[string]hookmapv1.PayloadEncoding{
	store.EncodingJSON:   hookmapv1.PayloadEncoding_PAYLOAD_ENCODING_JSON,
	store.EncodingBase64: hookmapv1.PayloadEncoding_PAYLOAD_ENCODING_BASE64,
	store.EncodingText:   hookmapv1.PayloadEncoding_PAYLOAD_ENCODING_TEXT,
	store.EncodingForm:   hookmapv1.PayloadEncoding_PAYLOAD_ENCODING_FORM,
}

func encodingFromProto(e hookmapv1.PayloadEncoding) string {
	if e == hookmapv1.PayloadEncoding_PAYLOAD_ENCODING_UNSPECIFIED {
		return ""
	}
	for k, v := range encodingToProto {
		if v == e {
			return k
		}
	}
	return e.String() // refused by validation
}

var sourceToProto = map[string]hookmapv1.WebhookSource{
	store.SourceAPI:  hookmapv1.WebhookSource_WEBHOOK_SOURCE_API,
	store.SourceFile: hookmapv1.WebhookSource_WEBHOOK_SOURCE_FILE,
}

// nextProto returns a chain's next step (its mapping values as they were registered).
func nextProto(n *store.WebhookNext) *hookmapv1.WebhookNext {
	if n == nil {
		return nil
	}
	p := &hookmapv1.WebhookNext{WebhookId: n.WebhookID}
	for _, f := range []struct {
		v   any
		dst **structpb.Value
	}{{n.When, &p.When}, {n.Data, &p.Data}, {n.Headers, &p.Headers}, {n.QueryParams, &p.QueryParams}} {
		if f.v != nil {
			*f.dst, _ = valueFromPlain(f.v) // stored values are plain values
		}
	}
	return p
}

func nextFromProto(n *hookmapv1.WebhookNext) *store.WebhookNext {
	if n == nil {
		return nil
	}
	return &store.WebhookNext{
		WebhookID: n.GetWebhookId(), When: plainFromValue(n.GetWhen()), Data: plainFromValue(n.GetData()),
		Headers: plainFromValue(n.GetHeaders()), QueryParams: plainFromValue(n.GetQueryParams()),
	}
}

// webhookProto returns a registration without its header values or secret.
func webhookProto(w *store.OutgoingWebhook) *hookmapv1.Webhook {
	return &hookmapv1.Webhook{
		Source: sourceToProto[w.Source], Next: nextProto(w.Next),
		Id: w.ID, Url: w.URL, Method: w.Method, HeaderNames: w.HeaderNames, QueryParams: w.QueryParams,
		PayloadEncoding: encodingToProto[w.PayloadEncoding], ContentType: w.ContentType,
		Timeout: durationpb.New(w.Timeout), HasSigningSecret: len(w.SigningSecret) > 0, MaxAttempts: int32(w.MaxAttempts),
		FollowRedirects: w.FollowRedirects, CreateTime: ts(w.CreateTime), UpdateTime: ts(w.UpdateTime),
	}
}

// registeredProto is webhookProto with the notes of a registration or update; a note's
// field path is given as the request names it (webhook.headers[…]).
func registeredProto(r *outgoing.Registered) *hookmapv1.Webhook {
	w := webhookProto(r.OutgoingWebhook)
	for _, n := range r.Notes {
		w.Notes = append(w.Notes, "webhook."+n)
	}
	return w
}

func invocationProto(inv *store.Invocation) *hookmapv1.Invocation {
	return &hookmapv1.Invocation{
		ReferenceId: inv.ReferenceID, WebhookId: inv.WebhookID, Time: ts(inv.Time), Attempts: int32(inv.Attempts),
		Status: int32(inv.Status), Duration: durationpb.New(inv.Duration), RequestSize: inv.RequestSize,
		ResponseSize: inv.ResponseSize, Error: inv.Error, ErrorMessage: inv.ErrorMessage,
		ChainReferenceId: inv.ChainReferenceID, Hop: int32(inv.Hop),
	}
}

// registration converts a request's webhook; a malformed timeout is INVALID_ARGUMENT.
func registration(w *hookmapv1.Webhook) (outgoing.Registration, error) {
	r := outgoing.Registration{
		ID: w.GetId(), URL: w.GetUrl(), Method: w.GetMethod(), Headers: w.GetHeaders(), QueryParams: w.GetQueryParams(),
		PayloadEncoding: encodingFromProto(w.GetPayloadEncoding()), ContentType: w.GetContentType(),
		SigningSecret: w.GetSigningSecret(), MaxAttempts: int(w.GetMaxAttempts()), FollowRedirects: w.GetFollowRedirects(),
		Next: nextFromProto(w.GetNext()),
	}
	if d := w.GetTimeout(); d != nil {
		if err := d.CheckValid(); err != nil {
			return r, invalid("webhook.timeout", "not a valid duration")
		}
		r.Timeout = d.AsDuration() // 0s: the default
	}
	return r, nil
}

// err maps the sender's errors (see outgoingStatus).
func (s *webhookService) err(ctx context.Context, err error, prefix, what, id string) error {
	return outgoingStatus(ctx, s.Logger, err, prefix, what, id)
}

func (s *webhookService) RegisterWebhook(ctx context.Context, req *hookmapv1.RegisterWebhookRequest) (*hookmapv1.Webhook, error) {
	if req.GetWebhook() == nil {
		return nil, invalid("webhook", "required")
	}
	r, err := registration(req.GetWebhook())
	if err != nil {
		return nil, err
	}
	w, err := s.sender.Register(ctx, workspace(ctx), r)
	if err != nil {
		return nil, s.err(ctx, err, "webhook.", "webhook", r.ID)
	}
	return registeredProto(w), nil
}

// setFields returns the fields of w that are set (not their zero value): the update mask
// of an UpdateWebhook without one.
func setFields(w *hookmapv1.Webhook) []string {
	var f []string
	for _, c := range []struct {
		name string
		set  bool
	}{
		{outgoing.FieldURL, w.GetUrl() != ""},
		{outgoing.FieldMethod, w.GetMethod() != ""},
		{outgoing.FieldHeaders, len(w.GetHeaders()) > 0},
		{outgoing.FieldQueryParams, len(w.GetQueryParams()) > 0},
		{outgoing.FieldPayloadEncoding, w.GetPayloadEncoding() != hookmapv1.PayloadEncoding_PAYLOAD_ENCODING_UNSPECIFIED},
		{outgoing.FieldContentType, w.GetContentType() != ""},
		{outgoing.FieldTimeout, w.GetTimeout() != nil},
		{outgoing.FieldSigningSecret, w.GetSigningSecret() != ""},
		{outgoing.FieldMaxAttempts, w.GetMaxAttempts() != 0},
		{outgoing.FieldFollowRedirects, w.GetFollowRedirects()},
		{outgoing.FieldNext, w.GetNext() != nil},
	} {
		if c.set {
			f = append(f, c.name)
		}
	}
	return f
}

func (s *webhookService) UpdateWebhook(ctx context.Context, req *hookmapv1.UpdateWebhookRequest) (*hookmapv1.Webhook, error) {
	if req.GetWebhook() == nil {
		return nil, invalid("webhook", "required")
	}
	if req.GetWebhook().GetId() == "" {
		return nil, invalid("webhook.id", "required")
	}
	r, err := registration(req.GetWebhook())
	if err != nil {
		return nil, err
	}
	mask := req.GetUpdateMask().GetPaths()
	if len(mask) == 0 {
		mask = setFields(req.GetWebhook())
	}
	w, err := s.sender.Update(ctx, workspace(ctx), r, mask)
	if err != nil {
		return nil, s.err(ctx, err, "webhook.", "webhook", r.ID)
	}
	return registeredProto(w), nil
}

func (s *webhookService) GetWebhook(ctx context.Context, req *hookmapv1.GetWebhookRequest) (*hookmapv1.Webhook, error) {
	w, err := s.sender.Get(ctx, workspace(ctx), req.GetId())
	if err != nil {
		return nil, s.err(ctx, err, "", "webhook", req.GetId())
	}
	return webhookProto(w), nil
}

func (s *webhookService) ListWebhooks(ctx context.Context, req *hookmapv1.ListWebhooksRequest) (*hookmapv1.ListWebhooksResponse, error) {
	n, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	ws, next, err := s.sender.List(ctx, workspace(ctx), store.Page{Size: n, Token: req.GetPageToken()})
	if err != nil {
		return nil, s.err(ctx, err, "", "webhook", "")
	}
	resp := &hookmapv1.ListWebhooksResponse{NextPageToken: next}
	for _, w := range ws {
		resp.Webhooks = append(resp.Webhooks, webhookProto(w))
	}
	return resp, nil
}

func (s *webhookService) DeleteWebhook(ctx context.Context, req *hookmapv1.DeleteWebhookRequest) (*hookmapv1.DeleteWebhookResponse, error) {
	if err := s.sender.Delete(ctx, workspace(ctx), req.GetId()); err != nil {
		return nil, s.err(ctx, err, "", "webhook", req.GetId())
	}
	return &hookmapv1.DeleteWebhookResponse{}, nil
}

func (s *webhookService) TriggerWebhook(ctx context.Context, req *hookmapv1.TriggerWebhookRequest) (*hookmapv1.TriggerWebhookResponse, error) {
	res, err := s.sender.Trigger(ctx, workspace(ctx), outgoing.Trigger{
		WebhookID: req.GetWebhookId(), Data: plainFromValue(req.GetData()),
		Headers: req.GetHeaders(), QueryParams: req.GetQueryParams(),
	})
	if err != nil {
		return nil, s.err(ctx, err, "", "webhook", req.GetWebhookId())
	}
	resp := &hookmapv1.TriggerWebhookResponse{
		ReferenceId: res.ReferenceID, Status: int32(res.Status), Error: res.Error, ErrorMessage: res.ErrorMessage,
		Attempts: int32(res.Attempts), DataEncoding: encodingToProto[res.DataEncoding], Truncated: res.Truncated,
		ContentType: res.ContentType,
	}
	if res.DataEncoding != "" {
		if resp.Data, err = valueFromPlain(res.Data); err != nil {
			return nil, toStatus(ctx, s.Logger, err)
		}
	}
	return resp, nil
}

func (s *webhookService) ListInvocations(ctx context.Context, req *hookmapv1.ListInvocationsRequest) (*hookmapv1.ListInvocationsResponse, error) {
	n, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	f := store.InvocationFilter{WebhookID: req.GetWebhookId(), ErrorsOnly: req.GetErrorsOnly(), ChainReferenceID: req.GetChainReferenceId()}
	if t := req.GetStartTime(); t != nil {
		if t.CheckValid() != nil {
			return nil, invalid("start_time", "not a valid timestamp")
		}
		f.Start = t.AsTime()
	}
	if t := req.GetEndTime(); t != nil {
		if t.CheckValid() != nil {
			return nil, invalid("end_time", "not a valid timestamp")
		}
		f.End = t.AsTime()
	}
	invs, next, err := s.sender.ListInvocations(ctx, workspace(ctx), f, store.Page{Size: n, Token: req.GetPageToken()})
	if err != nil {
		return nil, s.err(ctx, err, "", "invocation", "")
	}
	resp := &hookmapv1.ListInvocationsResponse{NextPageToken: next}
	for _, inv := range invs {
		resp.Invocations = append(resp.Invocations, invocationProto(inv))
	}
	return resp, nil
}

func (s *webhookService) GetInvocation(ctx context.Context, req *hookmapv1.GetInvocationRequest) (*hookmapv1.Invocation, error) {
	inv, err := s.sender.GetInvocation(ctx, workspace(ctx), req.GetReferenceId())
	if err != nil {
		return nil, s.err(ctx, err, "", "invocation", req.GetReferenceId())
	}
	return invocationProto(inv), nil
}

func (s *webhookService) ReloadWebhooks(ctx context.Context, _ *hookmapv1.ReloadWebhooksRequest) (*hookmapv1.ReloadWebhooksResponse, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	if s.WebhooksFile == nil {
		return nil, failed(codes.FailedPrecondition, core.ReasonWebhooksFileUnavailable, "the server runs without a webhooks file (--webhooks)")
	}
	res, err := s.WebhooksFile.Reload(ctx)
	if errors.Is(err, webhookfile.ErrUnreadable) {
		return nil, failed(codes.FailedPrecondition, core.ReasonWebhooksFileUnavailable, err.Error())
	}
	if err != nil {
		return nil, toStatus(ctx, s.Logger, err)
	}
	return &hookmapv1.ReloadWebhooksResponse{
		Diagnostics: diagnosticsProto(res.Diagnostics), Created: res.Created, Updated: res.Updated,
		Unchanged: res.Unchanged, Deleted: res.Deleted, KeptPrevious: res.KeptPrevious,
	}, nil
}
