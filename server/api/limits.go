package api

import (
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/hookmap/hookmap/engine"
	"github.com/hookmap/hookmap/engine/value"
)

// Limits every request is held to before its handler runs, whatever the RPC (so a new RPC
// cannot forget them). JSON-like fields (google.protobuf.Struct, Value, ListValue) are
// held to the value limits of engine/value: what a client may store it can read back.
const (
	// MaxStringField bounds every string field, map key and map value of a request.
	MaxStringField = 64 << 10
	// MaxRepeated bounds the entries of every repeated or map field of a request.
	MaxRepeated = 1000
	// maxViolations bounds how many violations one error lists.
	maxViolations = 20
)

// checkRequest returns INVALID_ARGUMENT, with a field violation each, when a field of req
// is over a limit; nil otherwise.
func checkRequest(req any) error {
	m, ok := req.(proto.Message)
	if !ok || m == nil {
		return nil
	}
	var c requestChecker
	c.message(m.ProtoReflect(), "")
	if len(c.violations) == 0 {
		return nil
	}
	msgs := make([]string, len(c.violations))
	for i, v := range c.violations {
		msgs[i] = v.Field + ": " + v.Description
	}
	return newStatus(codes.InvalidArgument, "", strings.Join(msgs, "; "), c.violations)
}

type requestChecker struct {
	violations []engine.FieldViolation
}

func (c *requestChecker) add(field, desc string) {
	if len(c.violations) < maxViolations {
		c.violations = append(c.violations, engine.FieldViolation{Field: field, Description: desc})
	}
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func (c *requestChecker) message(m protoreflect.Message, prefix string) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		field := join(prefix, string(fd.Name()))
		switch {
		case fd.IsMap():
			mp := v.Map()
			if mp.Len() > MaxRepeated {
				c.add(field, "more than "+strconv.Itoa(MaxRepeated)+" entries")
				return true
			}
			mp.Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				key := k.String()
				entry := field + "[" + value.Shorten(key, 64) + "]"
				if len(key) > MaxStringField {
					c.add(entry, "key longer than "+strconv.Itoa(MaxStringField)+" bytes")
				}
				c.single(fd.MapValue(), mv, entry)
				return true
			})
		case fd.IsList():
			l := v.List()
			if l.Len() > MaxRepeated {
				c.add(field, "more than "+strconv.Itoa(MaxRepeated)+" entries")
				return true
			}
			for i := range l.Len() {
				c.single(fd, l.Get(i), field+"["+strconv.Itoa(i)+"]")
			}
		default:
			c.single(fd, v, field)
		}
		return true
	})
}

// single checks one value of a field (an element of a list or map, or a singular field).
func (c *requestChecker) single(fd protoreflect.FieldDescriptor, v protoreflect.Value, field string) {
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BytesKind:
		n := 0
		if fd.Kind() == protoreflect.StringKind {
			n = len(v.String())
		} else {
			n = len(v.Bytes())
		}
		if n > MaxStringField {
			c.add(field, "longer than "+strconv.Itoa(MaxStringField)+" bytes")
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		var plain any
		switch m := v.Message().Interface().(type) {
		case *structpb.Struct:
			plain = plainFromStruct(m)
		case *structpb.Value:
			plain = plainFromValue(m)
		case *structpb.ListValue:
			plain = plainFromValue(structpb.NewListValue(m))
		default:
			c.message(v.Message(), field)
			return
		}
		if err := value.Check(plain); err != nil {
			c.add(field, err.Error())
		}
	}
}
