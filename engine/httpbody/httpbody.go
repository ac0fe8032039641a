package httpbody

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/hookmap/hookmap/engine/value"
)

// Errors of Parse.
var (
	ErrMalformedJSON   = errors.New("malformed JSON")
	ErrMalformedForm   = errors.New("malformed form body")
	ErrMalformedMulti  = errors.New("malformed multipart body")
	ErrTooManyParts    = errors.New("too many multipart parts")
	errNoBoundary      = errors.New("multipart Content-Type without boundary")
	maxMultipartParts  = 1000
	maxMultipartMemory = int64(32 << 20)
)

// IsJSON reports whether a media type is JSON.
func IsJSON(mediaType string) bool {
	return mediaType == "application/json" || mediaType == "text/json" || strings.HasSuffix(mediaType, "+json")
}

// Parse parses body by its Content-Type; see the package documentation.
func Parse(contentType string, body []byte) (any, error) {
	if len(body) == 0 {
		return nil, nil
	}
	return ParseString(contentType, string(body))
}

// ParseString is Parse of a body held as a string (a handle's rawBody): the strings of the
// value share its memory where they can, instead of each being copied.
func ParseString(contentType, body string) (any, error) {
	if len(body) == 0 {
		return nil, nil
	}
	mt := mediaType(contentType)
	switch {
	case IsJSON(mt):
		v, err := value.DecodeString(body)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformedJSON, err)
		}
		return v, nil
	case mt == "application/x-www-form-urlencoded":
		vals, err := url.ParseQuery(body)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformedForm, err)
		}
		return Query(vals), nil
	case mt == "multipart/form-data":
		_, params, _ := mime.ParseMediaType(contentType)
		return parseMultipart(params["boundary"], body)
	case strings.HasPrefix(mt, "text/"):
		return strings.ToValidUTF8(body, "\uFFFD"), nil
	default:
		if utf8.ValidString(body) {
			return body, nil
		}
		return base64.StdEncoding.EncodeToString([]byte(body)), nil
	}
}

// mediaType is the media type of a Content-Type, lower case, without its parameters,
// as mime.ParseMediaType returns it, or the same of a Content-Type it refuses: only a
// multipart body needs the parameters.
func mediaType(contentType string) string {
	base, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(base))
}

func parseMultipart(boundary, body string) (any, error) {
	if boundary == "" {
		return nil, fmt.Errorf("%w: %v", ErrMalformedMulti, errNoBoundary)
	}
	r := multipart.NewReader(strings.NewReader(body), boundary)
	out := map[string]any{}
	for n := 0; ; n++ {
		if n >= maxMultipartParts {
			return nil, ErrTooManyParts
		}
		p, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			if n == 0 && !strings.Contains(body, "--"+boundary) {
				// Not even the closing delimiter: this is not the multipart body it says.
				return nil, fmt.Errorf("%w: no part delimited by the boundary %q", ErrMalformedMulti, value.Shorten(boundary, 70))
			}
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformedMulti, err)
		}
		content, err := io.ReadAll(io.LimitReader(p, maxMultipartMemory))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformedMulti, err)
		}
		name := p.FormName()
		var v any
		if p.FileName() != "" {
			v = map[string]any{
				"filename":    p.FileName(),
				"contentType": p.Header.Get("Content-Type"),
				"size":        int64(len(content)),
				"content":     base64.StdEncoding.EncodeToString(content),
			}
		} else {
			v = strings.ToValidUTF8(string(content), "\uFFFD")
		}
		switch prev := out[name].(type) {
		case nil:
			out[name] = v
		case []any:
			out[name] = append(prev, v)
		default:
			out[name] = []any{prev, v}
		}
	}
}

// Query turns URL values into an object: a name given once is a string, several times a
// list of strings.
func Query(vals url.Values) map[string]any {
	out := make(map[string]any, len(vals))
	for k, vs := range vals {
		if len(vs) == 1 {
			out[k] = vs[0]
			continue
		}
		l := make([]any, len(vs))
		for i, v := range vs {
			l[i] = v
		}
		out[k] = l
	}
	return out
}

// LowerHeaders turns headers into an object with lower-case names; a header given several
// times is joined with ", " (as HTTP allows).
func LowerHeaders(h http.Header) map[string]any {
	out := make(map[string]any, len(h))
	for k, vs := range h {
		out[lowerName(k)] = strings.Join(vs, ", ")
	}
	return out
}

// lowerNames holds the lower-case form of the header names seen, up to maxLowerNames of
// them: the same few names come with every request, and each would otherwise be
// lowered into a new string every time.
var (
	lowerNames     sync.Map // string -> string
	lowerNameCount atomic.Int64
)

const (
	maxLowerNames   = 1024
	maxLowerNameLen = 64
)

func lowerName(k string) string {
	if l, ok := lowerNames.Load(k); ok {
		return l.(string)
	}
	l := strings.ToLower(k)
	if len(k) <= maxLowerNameLen && lowerNameCount.Load() < maxLowerNames {
		if _, loaded := lowerNames.LoadOrStore(strings.Clone(k), l); !loaded {
			lowerNameCount.Add(1)
		}
	}
	return l
}
