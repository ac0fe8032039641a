package value

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// decode parses one JSON document into a plain value, at most maxDepth levels deep.
func decode(b []byte, maxDepth int) (any, error) { return decodeString(string(b), maxDepth) }

// decodeString is decode of a string. The strings of the value share the memory of s
// where the document writes them without escapes.
//
// A strict single-pass decoder (decoder) builds the plain value of a document as it
// validates it, where encoding/json's Decoder copied the input, scanned it twice and built
// json.Numbers that a second walk converted. Whatever it is not sure to decode exactly as
// encoding/json does goes to encoding/json (FuzzDecodeMatchesEncodingJSON): a document
// nested deeper than fastMaxDepth, a string with invalid UTF-8, a raw control character
// or a \u escape of a UTF-16 surrogate, a number out of range, and every invalid document
// (for encoding/json's error message).
func decodeString(s string, maxDepth int) (any, error) {
	d := decoders.Get().(*decoder)
	v, ok := d.decode(s, min(maxDepth, fastMaxDepth))
	if cap(d.elems)+cap(d.members)+cap(d.buf) <= maxPooledScratch {
		decoders.Put(d)
	}
	if ok {
		return v, nil
	}
	return decodeStd([]byte(s), maxDepth)
}

const (
	// fastMaxDepth is the deepest document decoder decodes itself (its recursion).
	fastMaxDepth = 300
	// maxPooledScratch: a decoder whose stacks grew past this many entries (a huge
	// document) is left to the garbage collector.
	maxPooledScratch = 1 << 16
)

// decoders are reused for their scratch space.
var decoders = sync.Pool{New: func() any { return new(decoder) }}

// decoder decodes one document at a time. Its methods return false where the document
// is invalid or holds something encoding/json decodes otherwise: decodeString then asks
// encoding/json.
type decoder struct {
	s        string
	i        int
	maxDepth int
	// elems and members are stacks of the elements of the arrays and the members of the
	// objects being decoded, so that each is made once at its size.
	elems   []any
	members []member
	buf     []byte // an unescaped string
}

type member struct {
	k string
	v any
}

func (d *decoder) decode(s string, maxDepth int) (any, bool) {
	d.s, d.i, d.maxDepth = s, 0, maxDepth
	d.ws()
	v, ok := d.value(0)
	if ok {
		d.ws()
		ok = d.i == len(d.s)
	}
	// the stacks keep no value alive once the document is decoded (a value that
	// completed cleared its own part)
	clear(d.elems)
	clear(d.members)
	d.elems, d.members, d.s = d.elems[:0], d.members[:0], ""
	if !ok {
		return nil, false
	}
	return v, true
}

// ws skips JSON whitespace.
func (d *decoder) ws() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// value decodes the value at d.i, nested in depth arrays and objects.
func (d *decoder) value(depth int) (any, bool) {
	if d.i >= len(d.s) {
		return nil, false
	}
	switch c := d.s[d.i]; c {
	case '{':
		return d.object(depth)
	case '[':
		return d.array(depth)
	case '"':
		s, ok := d.str()
		return s, ok
	case 't':
		return true, d.literal("true")
	case 'f':
		return false, d.literal("false")
	case 'n':
		return nil, d.literal("null")
	default:
		if c == '-' || c >= '0' && c <= '9' {
			return d.number()
		}
		return nil, false
	}
}

func (d *decoder) literal(lit string) bool {
	if !strings.HasPrefix(d.s[d.i:], lit) {
		return false
	}
	d.i += len(lit)
	return true
}

func (d *decoder) object(depth int) (any, bool) {
	if depth >= d.maxDepth {
		return nil, false
	}
	d.i++ // {
	d.ws()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		return map[string]any{}, true
	}
	base := len(d.members)
	for {
		if d.i >= len(d.s) || d.s[d.i] != '"' {
			return nil, false
		}
		k, ok := d.str()
		if !ok {
			return nil, false
		}
		d.ws()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return nil, false
		}
		d.i++
		d.ws()
		v, ok := d.value(depth + 1)
		if !ok {
			return nil, false
		}
		d.members = append(d.members, member{k, v})
		more, ok := d.next('}')
		if !ok {
			return nil, false
		}
		if !more {
			break
		}
	}
	ms := d.members[base:]
	m := make(map[string]any, len(ms))
	for _, e := range ms {
		m[e.k] = e.v // a repeated key: the last one, as encoding/json
	}
	clear(ms)
	d.members = d.members[:base]
	return m, true
}

// next reads what follows a member or an element: a comma (more is true, and the
// whitespace after it is skipped) or the closer of its object or array.
func (d *decoder) next(closer byte) (more, ok bool) {
	d.ws()
	if d.i >= len(d.s) {
		return false, false
	}
	switch d.s[d.i] {
	case ',':
		d.i++
		d.ws()
		return true, true
	case closer:
		d.i++
		return false, true
	}
	return false, false
}

func (d *decoder) array(depth int) (any, bool) {
	if depth >= d.maxDepth {
		return nil, false
	}
	d.i++ // [
	d.ws()
	if d.i < len(d.s) && d.s[d.i] == ']' {
		d.i++
		return []any{}, true
	}
	base := len(d.elems)
	for {
		v, ok := d.value(depth + 1)
		if !ok {
			return nil, false
		}
		d.elems = append(d.elems, v)
		more, ok := d.next(']')
		if !ok {
			return nil, false
		}
		if !more {
			break
		}
	}
	es := d.elems[base:]
	out := make([]any, len(es))
	copy(out, es)
	clear(es)
	d.elems = d.elems[:base]
	return out, true
}

// SWAR constants: a byte repeated in each of a word's eight bytes.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plain8 reports whether none of the eight bytes of x ends a run of plain string bytes:
// a quote, a backslash, a control character or a byte of a multi-byte UTF-8 sequence.
func plain8(x uint64) bool {
	q := x ^ (ones * '"')
	b := x ^ (ones * '\\')
	special := (x - ones*0x20) | (q - ones) | (b - ones) // a byte that was below 0x20, or zero
	return (special|x)&highs == 0
}

// str decodes the string at d.i (its opening quote).
func (d *decoder) str() (string, bool) {
	s := d.s
	start := d.i + 1
	j := start
	ascii := true
	for {
		for j+8 <= len(s) && plain8(uint64(s[j])|uint64(s[j+1])<<8|uint64(s[j+2])<<16|uint64(s[j+3])<<24|
			uint64(s[j+4])<<32|uint64(s[j+5])<<40|uint64(s[j+6])<<48|uint64(s[j+7])<<56) {
			j += 8
		}
		if j >= len(s) {
			return "", false // unterminated
		}
		switch c := s[j]; {
		case c == '"':
			out := s[start:j]
			if !ascii && !utf8.ValidString(out) {
				return "", false // encoding/json replaces each bad byte with U+FFFD
			}
			d.i = j + 1
			return out, true
		case c == '\\':
			return d.unescape(start, j)
		case c < 0x20:
			return "", false // JSON has no raw control characters
		case c >= utf8.RuneSelf:
			ascii = false
		}
		j++
	}
}

// unescape decodes the string starting at start whose first escape is at j.
func (d *decoder) unescape(start, j int) (string, bool) {
	s := d.s
	b := append(d.buf[:0], s[start:j]...)
	for j < len(s) {
		c := s[j]
		switch {
		case c == '"':
			d.i = j + 1
			d.buf = b
			if !utf8.Valid(b) {
				return "", false
			}
			return string(b), true
		case c < 0x20:
			return "", false
		case c != '\\':
			b = append(b, c)
			j++
			continue
		}
		if j+1 >= len(s) {
			return "", false
		}
		switch e := s[j+1]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			if j+6 > len(s) {
				return "", false
			}
			r, err := strconv.ParseUint(s[j+2:j+6], 16, 16)
			if err != nil || r >= 0xd800 && r <= 0xdfff {
				return "", false // a surrogate: encoding/json pairs them (or writes U+FFFD)
			}
			b = utf8.AppendRune(b, rune(r))
			j += 6
			continue
		default:
			return "", false
		}
		j += 2
	}
	return "", false
}

// number decodes the number at d.i as Number does.
func (d *decoder) number() (any, bool) {
	s := d.s
	start, j := d.i, d.i
	if s[j] == '-' {
		j++
	}
	switch {
	case j < len(s) && s[j] == '0':
		j++
	case j < len(s) && s[j] >= '1' && s[j] <= '9':
		j = digits(s, j)
	default:
		return nil, false
	}
	integer := true
	if j < len(s) && s[j] == '.' {
		integer = false
		if j = digits(s, j+1); s[j-1] == '.' {
			return nil, false
		}
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		integer = false
		j++
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		k := digits(s, j)
		if k == j {
			return nil, false
		}
		j = k
	}
	d.i = j
	lit := s[start:j]
	if integer {
		if n, err := strconv.ParseInt(lit, 10, 64); err == nil {
			return n, true
		}
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return nil, false // out of range: encoding/json's error
	}
	return f, true
}

// digits returns the index after the digits at j.
func digits(s string, j int) int {
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	return j
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
