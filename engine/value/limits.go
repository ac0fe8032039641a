package value

import (
	"fmt"
	"strconv"
	"strings"
)

// The limits of every JSON-like value hookmap accepts: request bodies, parameters,
// credentials, inputs, records, state and payloads. They are checked where a value enters
// (Decode, Check) so that whatever hookmap stores it can read back and send to any client:
// with objects inside objects, each level costs three levels of protobuf messages (Value,
// Struct, map entry), and a record of MaxDepth levels inside a ListEventsResponse stays
// within the 100 nested messages the C++, Java and Python protobuf runtimes read by default.
const (
	// MaxDepth is how many arrays and objects may nest: [[1]] has depth 2, a scalar 0.
	MaxDepth = 32
	// MaxSize bounds a value's size, counted by Check about as the larger of its JSON and
	// protobuf encodings (see the weights): a value of MaxSize fits, with room to spare, in
	// the 4 MiB gRPC clients receive by default.
	MaxSize = 3 << 20
)

// Size weights: strings and keys count their bytes plus sizeFrame, containers sizeFrame,
// every other value sizeScalar.
const (
	sizeScalar = 10 // a number (8 bytes in protobuf) or boolean or null, with its framing
	sizeFrame  = 8  // the framing of a string, a key or a container
)

// ErrTooDeep and ErrTooLarge are the errors of Check (wrapped in a *LimitError) and of
// Decode (wrapped).
var (
	ErrTooDeep  = fmt.Errorf("nested deeper than %d levels of lists and objects", MaxDepth)
	ErrTooLarge = fmt.Errorf("larger than %d MiB", MaxSize>>20)
)

// LimitError is a value over a limit. Path locates the first part that is over it
// ("a.b[3]"; "" for the value itself), shortened when long.
type LimitError struct {
	Path string
	Err  error // ErrTooDeep or ErrTooLarge
}

func (e *LimitError) Error() string {
	if e.Path == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + " (at " + e.Path + ")"
}

func (e *LimitError) Unwrap() error { return e.Err }

// Check returns a *LimitError when v nests deeper than MaxDepth or its size is over
// MaxSize. v is a plain value; Check never recurses deeper than MaxDepth.
func Check(v any) error {
	c := checker{budget: MaxSize}
	if c.walk(v, 0) {
		return nil
	}
	return &LimitError{Path: c.path(), Err: c.err}
}

type checker struct {
	budget int
	err    error
	at     []string // the path to the part over a limit, innermost first
}

// walk spends v's size from the budget and reports whether v is within the limits.
func (c *checker) walk(v any, depth int) bool {
	switch t := v.(type) {
	case string:
		return c.spend(len(t) + sizeFrame)
	case map[string]any:
		if depth >= MaxDepth {
			c.err = ErrTooDeep
			return false
		}
		if !c.spend(sizeFrame) {
			return false
		}
		for k, e := range t {
			if !c.spend(len(k)+sizeFrame) || !c.walk(e, depth+1) {
				c.at = append(c.at, k)
				return false
			}
		}
		return true
	case []any:
		if depth >= MaxDepth {
			c.err = ErrTooDeep
			return false
		}
		if !c.spend(sizeFrame) {
			return false
		}
		for i, e := range t {
			if !c.walk(e, depth+1) {
				c.at = append(c.at, "["+strconv.Itoa(i)+"]")
				return false
			}
		}
		return true
	default:
		return c.spend(sizeScalar)
	}
}

func (c *checker) spend(n int) bool {
	c.budget -= n
	if c.budget < 0 {
		c.err = ErrTooLarge
		return false
	}
	return true
}

// maxPath bounds the path of a LimitError (a key may be megabytes long).
const maxPath = 120

func (c *checker) path() string {
	var b strings.Builder
	for i := len(c.at) - 1; i >= 0; i-- {
		seg := c.at[i]
		if !strings.HasPrefix(seg, "[") && b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(seg)
		if b.Len() > maxPath {
			break
		}
	}
	return Shorten(b.String(), maxPath)
}

// Shorten returns s when it is at most n bytes long, else its start (cut at a rune
// boundary) and "…", n bytes at most: for ids and paths quoted in messages.
func Shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	i := max(n-len(ellipsis), 0)
	for i > 0 && !utf8RuneStart(s[i]) {
		i--
	}
	return s[:i] + ellipsis
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
