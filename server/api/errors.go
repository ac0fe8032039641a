package api

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hookmap/hookmap/engine"
	"github.com/hookmap/hookmap/server/core"
	"github.com/hookmap/hookmap/server/store"
)

// toStatus maps every error a service returns to a gRPC status, in one place: store
// sentinels to NOT_FOUND / ALREADY_EXISTS, core errors to their code with BadRequest
// details, context errors to CANCELED / DEADLINE_EXCEEDED; anything else is INTERNAL with
// its cause logged and hidden from the client.
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var ce *core.Error
	if errors.As(err, &ce) {
		st := status.New(ce.Code, ce.Error())
		if len(ce.Violations) > 0 {
			if d, derr := st.WithDetails(badRequest(ce.Violations)); derr == nil {
				st = d
			}
		}
		return st.Err()
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, store.ErrAlreadyExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, store.ErrInUse):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, store.ErrClosed):
		return status.Error(codes.Unavailable, "server is shutting down")
	}
	log.ErrorContext(ctx, "internal error", "request_id", requestID(ctx), "err", err)
	return status.Errorf(codes.Internal, "internal error (request %s)", requestID(ctx))
}

func badRequest(v []engine.FieldViolation) *errdetails.BadRequest {
	br := &errdetails.BadRequest{}
	for _, f := range v {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: f.Field, Description: f.Description})
	}
	return br
}

// invalid returns INVALID_ARGUMENT with one field violation.
func invalid(field, desc string) error {
	return toStatus(context.Background(), slog.Default(), core.Invalid(field+": "+desc, []engine.FieldViolation{{Field: field, Description: desc}}))
}

// notFound returns NOT_FOUND naming what was not found.
func notFound(what, id string) error {
	return status.Errorf(codes.NotFound, "%s %q not found", what, id)
}
