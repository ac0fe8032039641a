package api

import (
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hookmap/hookmap/engine/value"
)

// maxExactFloat is the largest integer a float64 holds exactly (2^53).
const maxExactFloat = 1 << 53

// plainFromValue converts a protobuf Value to a plain value; integral numbers within
// ±2^53 become int64 (protobuf JSON numbers are doubles).
func plainFromValue(v *structpb.Value) any {
	if v == nil {
		return nil
	}
	switch k := v.Kind.(type) {
	case *structpb.Value_NullValue:
		return nil
	case *structpb.Value_BoolValue:
		return k.BoolValue
	case *structpb.Value_StringValue:
		return k.StringValue
	case *structpb.Value_NumberValue:
		f := k.NumberValue
		if f == math.Trunc(f) && math.Abs(f) <= maxExactFloat {
			return int64(f)
		}
		return f
	case *structpb.Value_ListValue:
		out := make([]any, len(k.ListValue.GetValues()))
		for i, e := range k.ListValue.GetValues() {
			out[i] = plainFromValue(e)
		}
		return out
	case *structpb.Value_StructValue:
		return plainFromStruct(k.StructValue)
	}
	return nil
}

// plainFromStruct converts a Struct to a plain map (nil stays nil).
func plainFromStruct(s *structpb.Struct) map[string]any {
	if s == nil {
		return nil
	}
	out := make(map[string]any, len(s.GetFields()))
	for k, v := range s.GetFields() {
		out[k] = plainFromValue(v)
	}
	return out
}

// valueFromPlain converts a plain value to a protobuf Value.
func valueFromPlain(v any) (*structpb.Value, error) {
	switch t := v.(type) {
	case nil:
		return structpb.NewNullValue(), nil
	case bool:
		return structpb.NewBoolValue(t), nil
	case string:
		return structpb.NewStringValue(t), nil
	case int64:
		return structpb.NewNumberValue(float64(t)), nil
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return nil, fmt.Errorf("number %v cannot be sent", t)
		}
		return structpb.NewNumberValue(t), nil
	case []any:
		l := &structpb.ListValue{Values: make([]*structpb.Value, len(t))}
		for i, e := range t {
			ev, err := valueFromPlain(e)
			if err != nil {
				return nil, err
			}
			l.Values[i] = ev
		}
		return structpb.NewListValue(l), nil
	case map[string]any:
		s, err := structFromPlain(t)
		if err != nil {
			return nil, err
		}
		return structpb.NewStructValue(s), nil
	default:
		p, err := value.Plain(v)
		if err != nil {
			return nil, err
		}
		return valueFromPlain(p)
	}
}

// structFromPlain converts a plain map to a Struct (nil → empty Struct).
func structFromPlain(m map[string]any) (*structpb.Struct, error) {
	s := &structpb.Struct{Fields: make(map[string]*structpb.Value, len(m))}
	for k, v := range m {
		pv, err := valueFromPlain(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		s.Fields[k] = pv
	}
	return s, nil
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func mustStruct(m map[string]any) *structpb.Struct {
	s, err := structFromPlain(m)
	if err != nil {
		return &structpb.Struct{}
	}
	return s
}
