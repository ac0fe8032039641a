package outgoing

import (
	"errors"
	"fmt"
	"strings"
)

// ErrDeclared is an update or delete through the API of a webhook declared in the server's
// webhooks file: the file is where it changes.
var ErrDeclared = errors.New("declared in the server's webhooks file (--webhooks): change it there and reload")

// Violation is one invalid field: Field is the request field's path as the gRPC API names
// it ("url", "headers[Host]", "query_params[page]", "data").
type Violation struct {
	Field       string
	Description string
}

// InvalidError is a registration or a trigger that does not fit: the api package turns it
// into INVALID_ARGUMENT with one field violation each.
type InvalidError struct {
	Violations []Violation
}

func (e *InvalidError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Field + ": " + v.Description
	}
	return strings.Join(parts, "; ")
}

// required is the error of a missing required field.
func required(field string) error {
	return &InvalidError{Violations: []Violation{{Field: field, Description: "required"}}}
}

// violations collects Violations.
type violations []Violation

func (v *violations) add(field, format string, args ...any) {
	*v = append(*v, Violation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// err returns nil when there is no violation, else an *InvalidError.
func (v violations) err() error {
	if len(v) == 0 {
		return nil
	}
	return &InvalidError{Violations: v}
}
