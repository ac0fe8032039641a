package api

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/hookmap/hookmap/engine"
	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/server/core"
	"github.com/hookmap/hookmap/server/outgoing"
	"github.com/hookmap/hookmap/server/store"
)

// maxMessage bounds a status message: whatever an error quotes, a client never gets a
// message longer than this (gRPC sends it in a header).
const maxMessage = 4 << 10

// toStatus maps every error a service returns to a gRPC status, in one place: core errors
// to their code, with an ErrorInfo (domain hookmap.dev) naming the reason and BadRequest
// details for invalid arguments; store sentinels to NOT_FOUND, ALREADY_EXISTS,
// FAILED_PRECONDITION (IN_USE), DATA_LOSS (a damaged stored value) and UNAVAILABLE (the
// store is closing); context errors to CANCELED / DEADLINE_EXCEEDED. Anything else is
// INTERNAL with its cause logged and hidden from the client.
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var ce *core.Error
	if errors.As(err, &ce) {
		return newStatus(ce.Code, ce.Reason, ce.Error(), ce.Violations)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return newStatus(codes.NotFound, core.ReasonResourceNotFound, err.Error(), nil)
	case errors.Is(err, store.ErrAlreadyExists):
		return newStatus(codes.AlreadyExists, core.ReasonAlreadyExists, err.Error(), nil)
	case errors.Is(err, store.ErrInUse):
		return newStatus(codes.FailedPrecondition, core.ReasonInUse, err.Error(), nil)
	case errors.Is(err, store.ErrUnreadable):
		log.ErrorContext(ctx, "stored value cannot be read", "request_id", requestID(ctx), "err", err)
		return newStatus(codes.DataLoss, core.ReasonStoredValueUnreadable, "a stored value cannot be read (request "+requestID(ctx)+"; the log has the details)", nil)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, store.ErrClosed):
		return newStatus(codes.Unavailable, core.ReasonShuttingDown, "server is shutting down", nil)
	}
	log.ErrorContext(ctx, "internal error", "request_id", requestID(ctx), "err", err)
	return status.Errorf(codes.Internal, "internal error (request %s)", requestID(ctx))
}

// outgoingStatus maps an error of the outgoing webhooks or the destinations about what
// (webhook, destination) id: violations (fields prefixed with prefix, update_mask aside)
// to INVALID_ARGUMENT, a webhook declared in the file to FAILED_PRECONDITION, unknown ids
// to NOT_FOUND, taken ids to ALREADY_EXISTS; the rest through toStatus.
func outgoingStatus(ctx context.Context, log *slog.Logger, err error, prefix, what, id string) error {
	var ie *outgoing.InvalidError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie):
		v := make([]engine.FieldViolation, len(ie.Violations))
		msgs := make([]string, len(ie.Violations))
		for i, f := range ie.Violations {
			field := f.Field
			if field != "update_mask" {
				field = prefix + field
			}
			v[i] = shortViolation(engine.FieldViolation{Field: field, Description: f.Description})
			msgs[i] = v[i].Field + ": " + v[i].Description
		}
		return toStatus(ctx, log, core.Invalid(strings.Join(msgs, "; "), v))
	case errors.Is(err, outgoing.ErrDeclared):
		return failed(codes.FailedPrecondition, core.ReasonDeclaredInFile, what+" "+core.Q(id)+" is "+outgoing.ErrDeclared.Error())
	case errors.Is(err, store.ErrNotFound):
		return notFound(what, id)
	case errors.Is(err, store.ErrAlreadyExists):
		return newStatus(codes.AlreadyExists, core.ReasonAlreadyExists, what+" "+core.Q(id)+" already exists",
			[]engine.FieldViolation{{Field: prefix + "id", Description: "already used by another " + what + " of the workspace"}})
	}
	return toStatus(ctx, log, pageTokenError(err))
}

// newStatus builds a status with an ErrorInfo when reason is set and a BadRequest when
// there are violations; the message is bounded by maxMessage.
func newStatus(code codes.Code, reason, msg string, violations []engine.FieldViolation) error {
	st := status.New(code, value.Shorten(msg, maxMessage))
	var details []protoadapt.MessageV1
	if reason != "" {
		details = append(details, &errdetails.ErrorInfo{Reason: reason, Domain: core.ErrorDomain})
	}
	if len(violations) > 0 {
		details = append(details, badRequest(violations))
	}
	if len(details) > 0 {
		if d, err := st.WithDetails(details...); err == nil {
			st = d
		}
	}
	return st.Err()
}

func badRequest(v []engine.FieldViolation) *errdetails.BadRequest {
	br := &errdetails.BadRequest{}
	for _, f := range v {
		f = shortViolation(f)
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: f.Field, Description: f.Description})
	}
	return br
}

// shortViolation bounds a violation's field path and description, which may quote what
// the client sent (a header name, a method, a value).
func shortViolation(f engine.FieldViolation) engine.FieldViolation {
	return engine.FieldViolation{Field: value.Shorten(f.Field, 200), Description: value.Shorten(f.Description, 500)}
}

// invalid returns INVALID_ARGUMENT with one field violation.
func invalid(field, desc string) error {
	return newStatus(codes.InvalidArgument, "", field+": "+desc, []engine.FieldViolation{{Field: field, Description: desc}})
}

// notFound returns NOT_FOUND naming what was not found (the id shortened).
func notFound(what, id string) error {
	return newStatus(codes.NotFound, core.ReasonResourceNotFound, what+" "+core.Q(id)+" not found", nil)
}

// failed returns a status with a reason.
func failed(code codes.Code, reason, msg string) error {
	return newStatus(code, reason, msg, nil)
}
