package value

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
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
// without an exponent; NaN and infinities are an error. Map keys are sorted, and strings
// are escaped as encoding/json escapes them (FuzzEncodeMatchesEncodingJSON): the bytes are
// those encoding/json's Marshal of the value's parts would give.
func Encode(v any) ([]byte, error) {
	return encodeCopy(v, bytes.Clone)
}

// EncodeString is Encode returning a string, copied once from the encoder's buffer (a
// caller that wants a string would otherwise copy the bytes twice).
func EncodeString(v any) (string, error) {
	return encodeCopy(v, func(b []byte) string { return string(b) })
}

// encodeCopy encodes v into a pooled encoder's buffer and returns out's copy of it.
func encodeCopy[T any](v any, out func([]byte) T) (T, error) {
	e := encoders.Get().(*encoder)
	defer e.release()
	b, err := e.encode(e.buf[:0], v)
	e.buf = b
	if err != nil {
		var zero T
		return zero, err
	}
	return out(b), nil
}

// encoders are reused for their buffer and key scratch space.
var encoders = sync.Pool{New: func() any { return new(encoder) }}

type encoder struct {
	buf  []byte
	keys []string // a stack of the sorted keys of the maps being encoded
}

// maxPooledEncoder: an encoder whose buffer grew past this (a huge value) is left to the
// garbage collector.
const maxPooledEncoder = 64 << 10

func (e *encoder) release() {
	clear(e.keys[:cap(e.keys)])
	e.keys = e.keys[:0]
	if cap(e.buf) <= maxPooledEncoder {
		encoders.Put(e)
	}
}

func (e *encoder) encode(b []byte, v any) ([]byte, error) {
	switch t := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, t), nil
	case string:
		return appendString(b, t), nil
	case int64:
		return strconv.AppendInt(b, t, 10), nil
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return b, fmt.Errorf("cannot encode %v as JSON", t)
		}
		if t == math.Trunc(t) && math.Abs(t) < 1e21 {
			return strconv.AppendFloat(b, t, 'f', -1, 64), nil
		}
		return strconv.AppendFloat(b, t, 'g', -1, 64), nil
	case map[string]any:
		base := len(e.keys)
		for k := range t {
			e.keys = append(e.keys, k)
		}
		keys := e.keys[base:]
		slices.Sort(keys)
		b = append(b, '{')
		var err error
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			if b, err = e.encode(b, t[k]); err != nil {
				return b, err
			}
		}
		clear(keys)
		e.keys = e.keys[:base]
		return append(b, '}'), nil
	case []any:
		b = append(b, '[')
		var err error
		for i, el := range t {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = e.encode(b, el); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	default:
		js, err := json.Marshal(t)
		if err != nil {
			return b, err
		}
		return append(b, js...), nil
	}
}

// appendString appends s as a JSON string, escaped as encoding/json escapes it: ", \ and
// control characters, <, > and & (HTML-safe), U+2028 and U+2029, and each byte of invalid
// UTF-8 written as U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
