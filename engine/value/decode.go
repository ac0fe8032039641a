package value

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// parsers are reused: a fastjson parser keeps its arena between documents.
var parsers fastjson.ParserPool

// decode parses one JSON document into a plain value, at most maxDepth levels deep.
//
// It validates the document strictly (fastjson.Validate follows RFC 8259 as
// encoding/json does), parses it with a pooled fastjson parser and builds the plain
// value in one walk, where encoding/json's Decoder copied the input, scanned it twice and
// built json.Numbers that a second walk converted. Rare inputs go to encoding/json so
// that every document decodes exactly as before (FuzzDecodeMatchesEncodingJSON): one
// nested deeper than fastjson's limit (a value stored under a laxer limit), a string with
// invalid UTF-8 or a \u escape of a UTF-16 surrogate, and every invalid document (for
// encoding/json's error message).
func decode(b []byte, maxDepth int) (any, error) {
	switch scan(b, min(maxDepth, fastjson.MaxDepth)) {
	case tooDeep:
		if maxDepth > fastjson.MaxDepth {
			return decodeStd(b, maxDepth)
		}
		return nil, fmt.Errorf("JSON %w", ErrTooDeep)
	case controlChar, surrogate:
		// encoding/json's error for the one (fastjson.Validate misses some), its
		// decoding of the other (a lone surrogate is U+FFFD, and the escape after it
		// stays itself)
		return decodeStd(b, maxDepth)
	}
	if err := fastjson.ValidateBytes(b); err != nil {
		// encoding/json's error, for the same message as before
		return decodeStd(b, maxDepth)
	}
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(b)
	if err != nil {
		return decodeStd(b, maxDepth)
	}
	c := converter{maxDepth: maxDepth}
	out, err := c.convert(v, 0)
	if errors.Is(err, errUseStd) {
		return decodeStd(b, maxDepth)
	}
	return out, err
}

// errUseStd: the document holds something only encoding/json decodes as before.
var errUseStd = errors.New("decode with encoding/json")

type converter struct {
	maxDepth int
	num      []byte
}

func (c *converter) convert(v *fastjson.Value, depth int) (any, error) {
	switch v.Type() {
	case fastjson.TypeObject:
		if depth >= c.maxDepth {
			return nil, fmt.Errorf("JSON %w", ErrTooDeep)
		}
		o, _ := v.Object()
		m := make(map[string]any, o.Len())
		var err error
		o.Visit(func(key []byte, e *fastjson.Value) {
			if err != nil {
				return
			}
			var k string
			if k, err = c.str(key); err != nil {
				return
			}
			m[k], err = c.convert(e, depth+1)
		})
		if err != nil {
			return nil, err
		}
		return m, nil
	case fastjson.TypeArray:
		if depth >= c.maxDepth {
			return nil, fmt.Errorf("JSON %w", ErrTooDeep)
		}
		a, _ := v.Array()
		out := make([]any, len(a))
		for i, e := range a {
			n, err := c.convert(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case fastjson.TypeString:
		sb, _ := v.StringBytes()
		return c.str(sb)
	case fastjson.TypeNumber:
		c.num = v.MarshalTo(c.num[:0])
		return Number(string(c.num))
	case fastjson.TypeTrue:
		return true, nil
	case fastjson.TypeFalse:
		return false, nil
	default:
		return nil, nil
	}
}

// str is an unescaped string, or errUseStd where encoding/json would decode it otherwise.
func (c *converter) str(b []byte) (string, error) {
	if !utf8.Valid(b) {
		return "", errUseStd // encoding/json replaces each bad byte with U+FFFD
	}
	return string(b), nil
}

// What scan finds.
const (
	scanOK      = iota
	tooDeep     // arrays and objects nested deeper than the limit
	controlChar // a control character in a string, which JSON does not allow
	surrogate   // a \u escape of a UTF-16 surrogate, which fastjson pairs otherwise
)

// surrogateEscape reports whether b (after a backslash) is u and a surrogate's hex digits.
func surrogateEscape(b []byte) bool {
	return len(b) >= 3 && b[0] == 'u' && (b[1] == 'd' || b[1] == 'D') && strings.IndexByte("89abcdefABCDEF", b[2]) >= 0
}

// scan walks the document's bytes once, before anything recursive sees it: it finds
// nesting deeper than limit, and raw control characters in strings (which
// fastjson.Validate lets through in a string that also has an escape sequence).
func scan(b []byte, limit int) int {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '[', '{':
			depth++
			if depth > limit {
				return tooDeep
			}
		case ']', '}':
			depth--
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				switch {
				case b[i] < 0x20:
					return controlChar
				case b[i] == '\\':
					if surrogateEscape(b[i+1:]) {
						return surrogate
					}
					i++
				}
			}
		}
	}
	return scanOK
}

// decodeStd is the encoding/json decoder, for the rare documents decode leaves to it and
// for its error messages.
func decodeStd(b []byte, maxDepth int) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if strings.Contains(err.Error(), "exceeded max depth") {
			return nil, fmt.Errorf("JSON %w", ErrTooDeep)
		}
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, ErrTrailingData
	}
	return normalize(v, 0, maxDepth)
}
