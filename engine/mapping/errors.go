package mapping

import (
	"errors"
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/hookmap/hookmap/engine/yamlsrc"
)

// EvalError is a formula that failed at evaluation: the file and position of the formula
// and what went wrong (for a missing field, its name: "no such key: issue").
type EvalError struct {
	File      string
	Line, Col int
	Message   string
	// Err is the underlying error, if any (e.g. context.Canceled).
	Err error
}

func (e *EvalError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Message)
}

// Unwrap returns the underlying error.
func (e *EvalError) Unwrap() error { return e.Err }

// source locates a formula for error messages.
type source struct {
	path string
	file *yamlsrc.File
	node *yaml.Node // the node holding the formula's text (or the formula's map)
}

// errAt returns an EvalError at rune offset off inside the formula's text.
func (s source) errAt(off int, err error, format string, args ...any) *EvalError {
	e := &EvalError{File: s.path, Message: fmt.Sprintf(format, args...), Err: err}
	if s.file != nil && s.node != nil {
		e.Line, e.Col = s.file.ValuePos(s.node, off)
	} else if s.node != nil {
		e.Line, e.Col = s.node.Line, s.node.Column
	}
	return e
}

// stopped is the error of a formula stopped (or not started) because ctx ended with cause.
func (s source) stopped(cause error) *EvalError {
	var te *TimeoutError
	if errors.As(cause, &te) {
		return s.errAt(0, cause, "evaluation stopped: %s", cause.Error())
	}
	return s.errAt(0, cause, "evaluation cancelled: %s", cause.Error())
}
