package jmes

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jmespath/go-jmespath"
)

// ErrPanic is wrapped by errors that come from a panic inside go-jmespath.
var ErrPanic = errors.New("jmespath failed")

// SyntaxError is a JMESPath syntax error with the offset (in bytes) inside the expression.
type SyntaxError struct {
	Offset  int
	Message string
}

func (e *SyntaxError) Error() string { return e.Message }

// Expr is a compiled JMESPath expression, safe for concurrent use.
type Expr struct {
	src string
	jp  *jmespath.JMESPath
}

// String returns the expression as written.
func (e *Expr) String() string { return e.src }

var compiles atomic.Int64

// Compiles returns how many expressions Compile has parsed in this process.
func Compiles() int64 { return compiles.Load() }

// Compile parses a JMESPath expression.
func Compile(expr string) (e *Expr, err error) {
	compiles.Add(1)
	defer func() {
		if r := recover(); r != nil {
			e, err = nil, &SyntaxError{Message: fmt.Sprintf("JMESPath syntax error: %v", r)}
		}
	}()
	jp, err := jmespath.Compile(expr)
	if err != nil {
		var se jmespath.SyntaxError
		if errors.As(err, &se) {
			return nil, &SyntaxError{Offset: se.Offset, Message: "JMESPath " + lowerFirst(se.Error())}
		}
		return nil, &SyntaxError{Message: "JMESPath: " + err.Error()}
	}
	return &Expr{src: expr, jp: jp}, nil
}

func lowerFirst(s string) string {
	if s == "SyntaxError: " || len(s) < len("SyntaxError: ") {
		return s
	}
	if s[:len("SyntaxError: ")] == "SyntaxError: " {
		return "syntax error: " + s[len("SyntaxError: "):]
	}
	return s
}

// Search evaluates e over doc, a document already converted with ToJMES, and returns a
// plain value (integral numbers as int64).
func (e *Expr) Search(doc any) (out any, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%w: %v", ErrPanic, r)
		}
	}()
	res, err := e.jp.Search(doc)
	if err != nil {
		return nil, err
	}
	return FromJMES(res), nil
}

// SearchRaw evaluates e over doc as it is and returns the result unconverted. Use it only
// for expressions that are not NumberSensitive.
func (e *Expr) SearchRaw(doc any) (out any, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%w: %v", ErrPanic, r)
		}
	}()
	return e.jp.Search(doc)
}

// SearchPlain converts doc with ToJMES and searches it.
func (e *Expr) SearchPlain(doc any) (any, error) { return e.Search(ToJMES(doc)) }

// ToJMES returns a copy of a plain value with every integer as float64 (the only number
// type go-jmespath knows). Strings, booleans and null are shared.
func ToJMES(v any) any {
	switch t := v.(type) {
	case int64:
		return float64(t)
	case int:
		return float64(t)
	case int32:
		return float64(t)
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = ToJMES(e)
		}
		return m
	case []any:
		l := make([]any, len(t))
		for i, e := range t {
			l[i] = ToJMES(e)
		}
		return l
	default:
		return v
	}
}

// NumberSensitive reports whether expr may compare numbers or call functions (its text
// has one of = < > ( or a `literal`), the only operations where go-jmespath needs
// float64 numbers. Other expressions (fields, indexes, slices, projections, flatten,
// filters on truthiness, multi-selects, pipes, || && !) can search plain values as they
// are, with no conversion, keeping integers and floats exactly as they were.
func NumberSensitive(expr string) bool {
	return strings.ContainsAny(expr, "=<>(`")
}

var identRe = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*|"(?:[^"\\]|\\.)*"`)

// RootNames returns the names an expression may read from the root document (every
// identifier it mentions, a superset), and whether it may read the whole root (it uses @
// or a wildcard that is not right after '.' or '[').
func RootNames(expr string) (names []string, whole bool) {
	if strings.Contains(expr, "@") {
		return nil, true
	}
	for i := 0; i < len(expr); i++ {
		if expr[i] != '*' {
			continue
		}
		j := i - 1
		for j >= 0 && (expr[j] == ' ' || expr[j] == '\t' || expr[j] == '\n') {
			j--
		}
		if j < 0 || (expr[j] != '.' && expr[j] != '[') {
			return nil, true
		}
	}
	seen := map[string]bool{}
	for _, m := range identRe.FindAllString(expr, -1) {
		if strings.HasPrefix(m, `"`) {
			var s string
			if err := json.Unmarshal([]byte(m), &s); err != nil {
				continue
			}
			m = s
		}
		if !seen[m] {
			seen[m] = true
			names = append(names, m)
		}
	}
	return names, false
}

// maxExact is 2^53, the largest magnitude up to which every integer is a float64.
const maxExact = 1 << 53

// FromJMES returns a plain value for a go-jmespath result: integral float64 values within
// ±2^53 become int64. Maps and lists are copied.
func FromJMES(v any) any {
	switch t := v.(type) {
	case float64:
		if t == math.Trunc(t) && math.Abs(t) <= maxExact {
			return int64(t)
		}
		return t
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = FromJMES(e)
		}
		return m
	case []any:
		l := make([]any, len(t))
		for i, e := range t {
			l[i] = FromJMES(e)
		}
		return l
	default:
		return v
	}
}

// CacheSize bounds the number of expressions Cached keeps.
const CacheSize = 1024

var cache = struct {
	sync.RWMutex
	m map[string]*Expr
}{m: map[string]*Expr{}}

// Cached returns the compiled expr, compiling it on first use. At most CacheSize
// expressions are kept; when full, an arbitrary entry is evicted.
func Cached(expr string) (*Expr, error) {
	cache.RLock()
	e, ok := cache.m[expr]
	cache.RUnlock()
	if ok {
		return e, nil
	}
	e, err := Compile(expr)
	if err != nil {
		return nil, err
	}
	cache.Lock()
	if len(cache.m) >= CacheSize {
		for k := range cache.m {
			delete(cache.m, k)
			break
		}
	}
	cache.m[expr] = e
	cache.Unlock()
	return e, nil
}
