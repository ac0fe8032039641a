package core

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"

	"github.com/hookmap/hookmap/engine"
)

// Error is an error with the gRPC code it maps to and, for invalid arguments, the fields
// that are wrong. The api package turns it into a status with BadRequest details.
type Error struct {
	Code       codes.Code
	Message    string
	Violations []engine.FieldViolation
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil && e.Message == "" {
		return e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code codes.Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an INVALID_ARGUMENT error listing the violations.
func Invalid(msg string, v []engine.FieldViolation) *Error {
	return &Error{Code: codes.InvalidArgument, Message: msg, Violations: v}
}

// AppError turns an error of a method calling the external app into a precise status:
// the app's 4xx answers are FAILED_PRECONDITION, 5xx and transport failures UNAVAILABLE,
// formula failures FAILED_PRECONDITION (the connector is wrong for this input).
func AppError(what string, err error) *Error {
	var he *engine.HTTPError
	if errors.As(err, &he) {
		code := codes.FailedPrecondition
		if he.StatusCode >= 500 || he.StatusCode == 429 {
			code = codes.Unavailable
		}
		return &Error{Code: code, Message: fmt.Sprintf("%s: %s", what, err), Err: err}
	}
	var ee *engine.EvalError
	if errors.As(err, &ee) {
		return &Error{Code: codes.FailedPrecondition, Message: fmt.Sprintf("%s: %s", what, err), Err: err}
	}
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	return &Error{Code: codes.Unavailable, Message: fmt.Sprintf("%s: %s", what, err), Err: err}
}
