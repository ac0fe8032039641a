package core

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/grpc/codes"

	"github.com/hookmap/hookmap/engine"
	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/server/netguard"
)

// Reasons are the machine-readable causes of errors (google.rpc.ErrorInfo.reason, in
// ErrorDomain) where one gRPC code covers several. The README lists them.
const (
	ErrorDomain = "hookmap.dev"

	ReasonConnectorNotLoaded      = "CONNECTOR_NOT_LOADED"      // FAILED_PRECONDITION
	ReasonEventNotFound           = "EVENT_NOT_FOUND"           // FAILED_PRECONDITION: the connector has no such event
	ReasonGlobalWebhookNotFound   = "GLOBAL_WEBHOOK_NOT_FOUND"  // FAILED_PRECONDITION: the connector has no such global webhook
	ReasonMethodNotFound          = "METHOD_NOT_FOUND"          // FAILED_PRECONDITION: the event has no such method
	ReasonSideEffectsNotAllowed   = "SIDE_EFFECTS_NOT_ALLOWED"  // FAILED_PRECONDITION: EvaluateMethod of a rest call without allow_side_effects
	ReasonMappingFailed           = "MAPPING_FAILED"            // FAILED_PRECONDITION: a formula failed or a method returned something unusable
	ReasonAppRefused              = "APP_REFUSED"               // FAILED_PRECONDITION: the app answered a 4xx (other than 429)
	ReasonAppUnavailable          = "APP_UNAVAILABLE"           // UNAVAILABLE: the app answered a 5xx or 429
	ReasonAppUnreachable          = "APP_UNREACHABLE"           // UNAVAILABLE: the app could not be reached (DNS, connect, TLS, timeout)
	ReasonAddressRefused          = "ADDRESS_REFUSED"           // FAILED_PRECONDITION: the network guard refused a loopback or private address
	ReasonNothingToReplay         = "NOTHING_TO_REPLAY"         // FAILED_PRECONDITION: the delivery kept no request
	ReasonReplayTargetGone        = "REPLAY_TARGET_GONE"        // FAILED_PRECONDITION: the delivery's subscription or global webhook is gone
	ReasonInUse                   = "IN_USE"                    // FAILED_PRECONDITION: other records still use it
	ReasonAlreadyRunning          = "ALREADY_RUNNING"           // ABORTED: the same operation is running; retry later
	ReasonStreamReplaced          = "STREAM_REPLACED"           // ABORTED: a newer stream of the consumer took over
	ReasonShuttingDown            = "SHUTTING_DOWN"             // UNAVAILABLE: the server is stopping
	ReasonResourceNotFound        = "RESOURCE_NOT_FOUND"        // NOT_FOUND: the named record does not exist in the workspace
	ReasonWorkspaceNotFound       = "WORKSPACE_NOT_FOUND"       // NOT_FOUND: the workspace the call acts on does not exist
	ReasonAlreadyExists           = "ALREADY_EXISTS"            // ALREADY_EXISTS: the id is taken
	ReasonRequestIDReused         = "REQUEST_ID_REUSED"         // ALREADY_EXISTS: the request_id named a different subscription
	ReasonMalformedRequest        = "MALFORMED_REQUEST"         // INVALID_ARGUMENT: the request message cannot be decoded
	ReasonStoredValueUnreadable   = "STORED_VALUE_UNREADABLE"   // DATA_LOSS: a stored value cannot be decoded (damaged database)
	ReasonAdminRequired           = "ADMIN_REQUIRED"            // PERMISSION_DENIED: the call needs the admin token
	ReasonNotConnected            = "CONNECTION_NOT_CONNECTED"  // FAILED_PRECONDITION: the connection waits for its authorization, or the app revoked its grant
	ReasonNoAuthorizationFlow     = "NO_AUTHORIZATION_FLOW"     // FAILED_PRECONDITION: the connector has no OAuth 2.0 authorization code flow
	ReasonNotRenewable            = "CREDENTIALS_NOT_RENEWABLE" // FAILED_PRECONDITION: no refresh token and no client credentials grant to renew with
	ReasonDeclaredInFile          = "DECLARED_IN_FILE"          // FAILED_PRECONDITION: the webhook is declared in the webhooks file
	ReasonWebhooksFileUnavailable = "WEBHOOKS_FILE_UNAVAILABLE" // FAILED_PRECONDITION: no --webhooks, or the file cannot be read
)

// Error is an error with the gRPC code it maps to, the reason (one of the Reason
// constants) when the code covers several causes, and, for invalid arguments, the fields
// that are wrong. The api package turns it into a status with ErrorInfo and BadRequest
// details.
type Error struct {
	Code       codes.Code
	Reason     string
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

// WithReason sets the error's reason and returns it.
func (e *Error) WithReason(reason string) *Error {
	e.Reason = reason
	return e
}

// Errorf returns an *Error with code and a formatted message.
func Errorf(code codes.Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an INVALID_ARGUMENT error listing the violations.
func Invalid(msg string, v []engine.FieldViolation) *Error {
	return &Error{Code: codes.InvalidArgument, Message: msg, Violations: v}
}

// MaxQuoted is how much of a client-given id or key a message quotes.
const MaxQuoted = 64

// Q quotes a client-given id or key for a message, shortened to MaxQuoted bytes: a
// client that sends a 7 MB id does not get it back in the error.
func Q(s string) string { return strconv.Quote(value.Shorten(s, MaxQuoted)) }

// AppError turns an error of a method run (a mapping, or a rest call to the external app)
// into a precise status: the app's 4xx answers are FAILED_PRECONDITION (APP_REFUSED), 5xx
// and 429 UNAVAILABLE (APP_UNAVAILABLE), a refused address FAILED_PRECONDITION
// (ADDRESS_REFUSED), other transport failures and timeouts UNAVAILABLE (APP_UNREACHABLE),
// formula failures FAILED_PRECONDITION (MAPPING_FAILED: the connector is wrong for this
// input). When ctx itself ended (the client went away or its deadline passed) ctx's error
// is returned, so the client gets CANCELED or DEADLINE_EXCEEDED.
func AppError(ctx context.Context, what string, err error) error {
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return ctx.Err()
	}
	msg := fmt.Sprintf("%s: %s", what, err)
	var he *engine.HTTPError
	if errors.As(err, &he) {
		code, reason := codes.FailedPrecondition, ReasonAppRefused
		if he.StatusCode >= 500 || he.StatusCode == 429 {
			code, reason = codes.Unavailable, ReasonAppUnavailable
		}
		return &Error{Code: code, Reason: reason, Message: msg, Err: err}
	}
	var ee *engine.EvalError
	if errors.As(err, &ee) {
		return &Error{Code: codes.FailedPrecondition, Reason: ReasonMappingFailed, Message: msg, Err: err}
	}
	if errors.Is(err, netguard.ErrForbiddenAddress) {
		return &Error{Code: codes.FailedPrecondition, Reason: ReasonAddressRefused, Message: msg, Err: err}
	}
	return &Error{Code: codes.Unavailable, Reason: ReasonAppUnreachable, Message: msg, Err: err}
}
