package value

import (
	"encoding/base64"
	"fmt"
	"math"
	"sort"
	"time"
)

// SortedKeys returns the keys of m in lexical order.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Plain converts common Go values to plain values: every integer type becomes int64,
// float32 float64, []byte a base64 string, time.Time an RFC 3339 string, and typed
// maps and slices their generic forms. It returns an error for anything else.
func Plain(v any) (any, error) {
	switch t := v.(type) {
	case nil, bool, string, int64, float64:
		return t, nil
	case int:
		return int64(t), nil
	case int32:
		return int64(t), nil
	case int16:
		return int64(t), nil
	case int8:
		return int64(t), nil
	case uint8:
		return int64(t), nil
	case uint16:
		return int64(t), nil
	case uint32:
		return int64(t), nil
	case uint:
		if uint64(t) > math.MaxInt64 {
			return float64(t), nil
		}
		return int64(t), nil
	case uint64:
		if t > math.MaxInt64 {
			return float64(t), nil
		}
		return int64(t), nil
	case float32:
		return float64(t), nil
	case []byte:
		return base64.StdEncoding.EncodeToString(t), nil
	case time.Time:
		return t.UTC().Format(time.RFC3339Nano), nil
	case map[string]any:
		for k, e := range t {
			p, err := Plain(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			t[k] = p
		}
		return t, nil
	case map[string]string:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = e
		}
		return m, nil
	case []any:
		for i, e := range t {
			p, err := Plain(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			t[i] = p
		}
		return t, nil
	case []string:
		l := make([]any, len(t))
		for i, e := range t {
			l[i] = e
		}
		return l, nil
	case []map[string]any:
		l := make([]any, len(t))
		for i, e := range t {
			p, err := Plain(e)
			if err != nil {
				return nil, err
			}
			l[i] = p
		}
		return l, nil
	default:
		return nil, fmt.Errorf("unsupported value of type %T", v)
	}
}

// KindName names a plain value's kind for messages: "null", "a string", "a boolean",
// "a number", "a list", "an object" (else its Go type).
func KindName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}

// Clone returns a deep copy of a plain value: its maps and lists are new, so the copy can
// be changed without changing v. Scalars (and values of other types) are returned as they
// are.
func Clone(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return CloneMap(t)
	case []any:
		if t == nil {
			return t
		}
		l := make([]any, len(t))
		for i, e := range t {
			l[i] = Clone(e)
		}
		return l
	default:
		return v
	}
}

// CloneMap is Clone of an object; nil stays nil.
func CloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, e := range m {
		out[k] = Clone(e)
	}
	return out
}
