package value

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrTrailingData is returned by Decode when the input holds more than one JSON value.
var ErrTrailingData = errors.New("unexpected data after the JSON value")

// Decode parses one JSON document into a plain value. A document nested deeper than
// MaxDepth is an error wrapping ErrTooDeep.
func Decode(b []byte) (any, error) { return decode(b, MaxDepth) }

// DecodeStored is Decode for JSON hookmap wrote itself: it checks no depth of its own
// (encoding/json still stops at 10,000 levels). Values are checked when they enter, so a
// value stored under an older, laxer limit stays readable.
func DecodeStored(b []byte) (any, error) { return decode(b, unlimitedDepth) }

// unlimitedDepth is above encoding/json's own nesting limit (10,000).
const unlimitedDepth = 1 << 20

// DecodeString is Decode of a string. The strings of the value share the memory of s
// where the document writes them without escapes: it saves copying them, and it keeps s
// in memory while any of them is.
func DecodeString(s string) (any, error) { return decodeString(s, MaxDepth) }

func normalize(v any, depth, maxDepth int) (any, error) {
	switch t := v.(type) {
	case json.Number:
		return Number(string(t))
	case map[string]any:
		if depth >= maxDepth {
			return nil, fmt.Errorf("JSON %w", ErrTooDeep)
		}
		for k, e := range t {
			n, err := normalize(e, depth+1, maxDepth)
			if err != nil {
				return nil, err
			}
			t[k] = n
		}
		return t, nil
	case []any:
		if depth >= maxDepth {
			return nil, fmt.Errorf("JSON %w", ErrTooDeep)
		}
		for i, e := range t {
			n, err := normalize(e, depth+1, maxDepth)
			if err != nil {
				return nil, err
			}
			t[i] = n
		}
		return t, nil
	default:
		return v, nil
	}
}

// Number converts a JSON number literal to int64 when it is an integer literal that fits,
// else to float64.
func Number(s string) (any, error) {
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("invalid number %q: %w", s, err)
	}
	return f, nil
}

// Encode marshals a plain value as compact JSON. Integral float64 values are written
// without an exponent; NaN and infinities are an error.
func Encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := encode(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func encode(buf *bytes.Buffer, v any) error {
	switch t := v.(type) {
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return fmt.Errorf("cannot encode %v as JSON", t)
		}
		if t == math.Trunc(t) && math.Abs(t) < 1e21 {
			buf.WriteString(strconv.FormatFloat(t, 'f', -1, 64))
			return nil
		}
		buf.WriteString(strconv.FormatFloat(t, 'g', -1, 64))
		return nil
	case map[string]any:
		buf.WriteByte('{')
		first := true
		for _, k := range SortedKeys(t) {
			if !first {
				buf.WriteByte(',')
			}
			first = false
			kb, _ := json.Marshal(k)
			buf.Write(kb)
			buf.WriteByte(':')
			if err := encode(buf, t[k]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
		return nil
	case []any:
		buf.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := encode(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	default:
		b, err := json.Marshal(t)
		if err != nil {
			return err
		}
		buf.Write(b)
		return nil
	}
}
