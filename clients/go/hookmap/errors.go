package hookmap

import (
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
)

// ErrReplaced is returned by Consume when a newer stream of the same consumer took over
// (the server ended this one with ABORTED). The returned error also carries that status.
var ErrReplaced = errors.New("hookmap: a newer stream of this consumer took over")

// FieldViolations returns the google.rpc.BadRequest field violations of err's gRPC
// status (INVALID_ARGUMENT errors name the request fields at fault), nil when it has none.
// err may be wrapped.
func FieldViolations(err error) []*errdetails.BadRequest_FieldViolation {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	var out []*errdetails.BadRequest_FieldViolation
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			out = append(out, br.GetFieldViolations()...)
		}
	}
	return out
}
