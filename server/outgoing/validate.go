package outgoing

import (
	"encoding/base64"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/server/store"
)

// Limits of a registration.
const (
	DefaultTimeout     = 30 * time.Second
	MinTimeout         = time.Second
	MaxTimeout         = 5 * time.Minute
	DefaultMaxAttempts = 1
	MaxAttempts        = 10
	// MaxRedirects is how many redirects a registration with FollowRedirects follows.
	MaxRedirects = 5

	maxURLLength    = 4096
	maxHeaders      = 64
	maxHeaderValue  = 8 << 10
	maxQueryParams  = 64
	maxNameLength   = 256
	minSecretLength = 24 // bytes, as Standard Webhooks recommends
	maxSecretLength = 64
)

// Methods are the HTTP methods a registration may use.
var Methods = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}

// Registration is a webhook as a client registers it: header values and the signing
// secret in clear (the Sender seals them before storing).
type Registration struct {
	ID              string
	URL             string
	Method          string            // "" → POST
	Headers         map[string]string // name → value
	QueryParams     []string          // names a trigger may set
	PayloadEncoding string            // store.Encoding*; "" → json
	ContentType     string            // "" → the encoding's default
	Timeout         time.Duration     // 0 → DefaultTimeout
	SigningSecret   string            // "" → unsigned
	MaxAttempts     int               // 0 → DefaultMaxAttempts
	FollowRedirects bool
	// Source is store.SourceAPI ("" too) or store.SourceFile (the webhooks file's loader).
	Source string
	// Next continues every trigger into another webhook of the workspace (a chain); nil:
	// none. Its mapping values are plain values in hookmap's mapping syntax.
	Next *store.WebhookNext
}

// Field names of a registration, as UpdateWebhook's mask names them.
const (
	FieldURL             = "url"
	FieldMethod          = "method"
	FieldHeaders         = "headers"
	FieldQueryParams     = "query_params"
	FieldPayloadEncoding = "payload_encoding"
	FieldContentType     = "content_type"
	FieldTimeout         = "timeout"
	FieldSigningSecret   = "signing_secret"
	FieldMaxAttempts     = "max_attempts"
	FieldFollowRedirects = "follow_redirects"
	// FieldNext ("next") is declared with the chains, in chain.go.
)

// Fields are the updatable fields.
var Fields = []string{
	FieldURL, FieldMethod, FieldHeaders, FieldQueryParams, FieldPayloadEncoding, FieldContentType,
	FieldTimeout, FieldSigningSecret, FieldMaxAttempts, FieldFollowRedirects, FieldNext,
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// reservedHeaders may be set neither by a registration nor by a trigger: the transport
// owns them (Host, Content-Length, hop-by-hop headers), the registration's content_type
// owns Content-Type (a registration's Content-Type header is moved there first, see
// takeContentType), and signing owns the webhook-* headers.
var reservedHeaders = map[string]string{
	"Host":                "is set from the URL",
	"Content-Length":      "is set from the body",
	"Content-Type":        "is set from content_type and payload_encoding",
	"Transfer-Encoding":   "is a hop-by-hop header",
	"Connection":          "is a hop-by-hop header",
	"Keep-Alive":          "is a hop-by-hop header",
	"Proxy-Connection":    "is a hop-by-hop header",
	"Proxy-Authenticate":  "is a hop-by-hop header",
	"Proxy-Authorization": "is a hop-by-hop header",
	"Te":                  "is a hop-by-hop header",
	"Trailer":             "is a hop-by-hop header",
	"Upgrade":             "is a hop-by-hop header",
	"Webhook-Id":          "is set when the request is signed",
	"Webhook-Timestamp":   "is set when the request is signed",
	"Webhook-Signature":   "is set when the request is signed",
}

// isToken reports whether s is an HTTP token (RFC 9110 §5.6.2), what a header name is.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s may be sent as a header value: no control
// characters but horizontal tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// checkHeaderName adds a violation when name may not be set; field is its field path.
func checkHeaderName(v *violations, field, name string) bool {
	switch {
	case !isToken(name) || len(name) > maxNameLength:
		v.add(field, "not a valid header name")
		return false
	case reservedHeaders[textproto.CanonicalMIMEHeaderKey(name)] != "":
		v.add(field, "%s %s and cannot be set", textproto.CanonicalMIMEHeaderKey(name), reservedHeaders[textproto.CanonicalMIMEHeaderKey(name)])
		return false
	}
	return true
}

// normalize applies the defaults and canonical forms to r.
func (r *Registration) normalize() {
	r.Method = strings.ToUpper(strings.TrimSpace(r.Method))
	if r.Method == "" {
		r.Method = "POST"
	}
	r.PayloadEncoding = strings.ToLower(strings.TrimSpace(r.PayloadEncoding))
	if r.PayloadEncoding == "" {
		r.PayloadEncoding = store.EncodingJSON
	}
	r.ContentType = strings.TrimSpace(r.ContentType)
	if r.Timeout == 0 {
		r.Timeout = DefaultTimeout
	}
	if r.MaxAttempts == 0 {
		r.MaxAttempts = DefaultMaxAttempts
	}
}

// takeContentType moves a Content-Type header of the registration into ContentType, as
// the plugin webhook format writes the type (headers: {"Content-Type": "image/jpeg"}).
// With an explicit ContentType (given in the same request) the header must name the same
// media type, else it is a violation. It returns what it did, for the caller's answer.
// r.Headers is copied, never changed in place.
func (r *Registration) takeContentType(v *violations, explicit bool) []string {
	var notes []string
	first := ""
	for _, name := range value.SortedKeys(r.Headers) {
		if textproto.CanonicalMIMEHeaderKey(name) != "Content-Type" {
			continue
		}
		field := "headers[" + name + "]"
		val := strings.TrimSpace(r.Headers[name])
		headers := make(map[string]string, len(r.Headers)-1)
		for k, hv := range r.Headers {
			if k != name {
				headers[k] = hv
			}
		}
		r.Headers = headers
		switch {
		case first != "":
			v.add(field, "same header as %q (names are case-insensitive)", first)
		case explicit && !sameMediaType(val, r.ContentType):
			v.add(field, "conflicts with content_type %q: a Content-Type header is the content type, so give the type once", r.ContentType)
		case explicit:
			notes = append(notes, fmt.Sprintf("%s is the same type as content_type; it is not sent twice", field))
		default:
			r.ContentType = val
			notes = append(notes, fmt.Sprintf("%s %q is used as content_type", field, val))
		}
		first = name
	}
	return notes
}

// sameMediaType reports whether a and b are the same media type with the same parameters
// (type, subtype and parameter names compare case-insensitively).
func sameMediaType(a, b string) bool {
	ma, pa, errA := mime.ParseMediaType(a)
	mb, pb, errB := mime.ParseMediaType(b)
	if errA != nil || errB != nil {
		return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
	}
	return ma == mb && maps.Equal(pa, pb)
}

// validate checks a normalized registration, adding to v; headers are checked only when
// checkHeaders (an update that keeps the stored headers does not resend them).
func (r *Registration) validate(v *violations, checkID, checkHeaders, checkSecret bool) {
	if checkID {
		switch {
		case r.ID == "":
			v.add("id", "required")
		case !idPattern.MatchString(r.ID):
			v.add("id", "must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit")
		}
	}
	validateURL(v, r.URL)
	if !slices.Contains(Methods, r.Method) {
		v.add("method", "%q is not one of %s", r.Method, strings.Join(Methods, ", "))
	}
	switch r.PayloadEncoding {
	case store.EncodingJSON, store.EncodingBase64, store.EncodingText, store.EncodingForm:
	default:
		v.add("payload_encoding", "%q is not one of json, base64, text, form", r.PayloadEncoding)
	}
	if r.ContentType != "" {
		mt, _, err := mime.ParseMediaType(r.ContentType)
		switch {
		case err != nil || !validHeaderValue(r.ContentType):
			v.add("content_type", "not a valid media type")
		case r.PayloadEncoding == store.EncodingForm && mt != "application/x-www-form-urlencoded":
			v.add("content_type", "payload_encoding form sends application/x-www-form-urlencoded, not %s", mt)
		}
	}
	if r.Timeout < MinTimeout || r.Timeout > MaxTimeout {
		v.add("timeout", "must be between %s and %s (got %s)", MinTimeout, MaxTimeout, r.Timeout)
	}
	if r.MaxAttempts < 1 || r.MaxAttempts > MaxAttempts {
		v.add("max_attempts", "must be between 1 and %d (got %d)", MaxAttempts, r.MaxAttempts)
	}
	if checkHeaders {
		validateHeaders(v, r.Headers)
	}
	if len(r.QueryParams) > maxQueryParams {
		v.add("query_params", "at most %d names", maxQueryParams)
	}
	seen := map[string]bool{}
	for i, q := range r.QueryParams {
		field := "query_params[" + strconv.Itoa(i) + "]"
		switch {
		case q == "" || len(q) > maxNameLength:
			v.add(field, "must be 1-%d characters", maxNameLength)
		case seen[q]:
			v.add(field, "%q is listed twice", q)
		}
		seen[q] = true
	}
	if checkSecret && r.SigningSecret != "" {
		if _, err := signingKey(r.SigningSecret); err != nil {
			v.add("signing_secret", "%s", err.Error())
		}
	}
	switch r.Source {
	case "", store.SourceAPI, store.SourceFile:
	default:
		v.add("source", "unknown source %q", r.Source)
	}
	r.validateNext(v)
}

func validateURL(v *violations, raw string) {
	if raw == "" {
		v.add("url", "required")
		return
	}
	if len(raw) > maxURLLength {
		v.add("url", "longer than %d characters", maxURLLength)
		return
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		v.add("url", "not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		v.add("url", "must be an absolute http or https URL")
	case u.Host == "" || u.Hostname() == "":
		v.add("url", "has no host")
	case u.User != nil:
		v.add("url", "must not carry credentials: send them in a header (e.g. Authorization), which is stored encrypted")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		v.add("url", "must not have a fragment")
	}
}

func validateHeaders(v *violations, headers map[string]string) {
	if len(headers) > maxHeaders {
		v.add("headers", "at most %d headers", maxHeaders)
	}
	checkHeaders(v, headers, nil)
}

// checkHeaders checks header names and values, adding violations, and returns the good
// ones under their canonical names. A trigger's headers may not override the registered
// ones (registered: canonical names).
func checkHeaders(v *violations, headers map[string]string, registered []string) http.Header {
	out := http.Header{}
	canon := map[string]string{}
	for _, name := range value.SortedKeys(headers) {
		field := "headers[" + name + "]"
		if !checkHeaderName(v, field, name) {
			continue
		}
		c := textproto.CanonicalMIMEHeaderKey(name)
		if slices.Contains(registered, c) {
			v.add(field, "would override the registered header %s", c)
			continue
		}
		ok := true
		if other, dup := canon[c]; dup {
			v.add(field, "same header as %q (names are case-insensitive)", other)
			ok = false
		}
		canon[c] = name
		if val := headers[name]; !validHeaderValue(val) || len(val) > maxHeaderValue {
			v.add(field, "the value must be at most %d bytes without control characters", maxHeaderValue)
			ok = false
		}
		if ok {
			out.Set(c, headers[name])
		}
	}
	return out
}

// signingKey decodes a Standard Webhooks secret: "whsec_" + base64, or base64 (the
// standard, padded alphabet, as the spec's libraries and engine/verify read it).
func signingKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return nil, errString("must be base64 (standard alphabet, padded), optionally prefixed with whsec_")
	}
	if len(key) < minSecretLength || len(key) > maxSecretLength {
		return nil, errString("must decode to 24-64 bytes (got " + strconv.Itoa(len(key)) + ")")
	}
	return key, nil
}

type errString string

func (e errString) Error() string { return string(e) }
