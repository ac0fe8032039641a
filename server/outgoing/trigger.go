package outgoing

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/sethvargo/go-retry"

	"github.com/hookmap/hookmap/engine/httpbody"
	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/engine/verify"
	"github.com/hookmap/hookmap/server/store"
)

// Trigger is one call of a registered webhook.
type Trigger struct {
	WebhookID string
	// Data is the body as a plain value (engine/value), encoded as the registration's
	// PayloadEncoding says; nil sends no body.
	Data        any
	Headers     map[string]string
	QueryParams map[string]string
}

// Result is what a trigger got back. Error is set when the endpoint answered 4xx/5xx or
// could not be reached (Status 0).
type Result struct {
	ReferenceID string
	Status      int
	// Data is the response body: a plain value when it is JSON (DataEncoding json), else
	// a string (DataEncoding text, or base64 when the body is not UTF-8); nil when empty.
	Data         any
	DataEncoding string
	Truncated    bool // the body was longer than MaxResponseBytes
	ContentType  string
	Header       http.Header // the response's headers (never returned to a caller; chains read them)
	Error        bool
	ErrorMessage string
	Attempts     int
	Duration     time.Duration
	RequestSize  int64
	ResponseSize int64
}

// errTimeout is the cause of an invocation's context when its registration's timeout ends.
var errTimeout = errors.New("outgoing: invocation timeout")

// errRetry marks a retryable attempt for retry.Do; the outcome itself is kept aside.
var errRetry = errors.New("outgoing: retryable outcome")

// Default content types per payload encoding.
var defaultContentType = map[string]string{
	store.EncodingJSON:   "application/json",
	store.EncodingBase64: "application/octet-stream",
	store.EncodingText:   "text/plain; charset=utf-8",
	store.EncodingForm:   "application/x-www-form-urlencoded",
}

// prepared is a checked trigger, ready to send.
type prepared struct {
	w           *store.OutgoingWebhook
	url         string
	headers     http.Header
	body        []byte // nil: no body
	contentType string
	secret      string // "": unsigned
}

// Trigger sends t to its webhook and records the invocation. It returns store.ErrNotFound
// (wrapped) for an unknown webhook, *InvalidError when t does not fit the registration,
// and another error only for an internal failure; whatever the endpoint does is in the
// Result.
func (s *Sender) Trigger(ctx context.Context, workspaceID string, t Trigger) (*Result, error) {
	if t.WebhookID == "" {
		return nil, required("webhook_id")
	}
	w, err := s.cfg.Store.GetOutgoingWebhook(ctx, workspaceID, t.WebhookID)
	if err != nil {
		return nil, err
	}
	p, err := s.prepare(w, &t)
	if err != nil {
		return nil, err
	}
	res := s.call(ctx, workspaceID, p, "", 1)
	if w.Next != nil {
		res = s.runChain(ctx, workspaceID, w, &t, res)
	}
	return res, nil
}

// call sends a prepared call and records its invocation: the hop-th call of the chain
// started by chainRef ("" for a first call, which starts its own).
func (s *Sender) call(ctx context.Context, workspaceID string, p *prepared, chainRef string, hop int) *Result {
	w := p.w
	res := &Result{ReferenceID: uuid.NewString(), RequestSize: int64(len(p.body))}
	if chainRef == "" {
		chainRef = res.ReferenceID
	}
	at := s.cfg.Now()
	start := time.Now()
	s.send(ctx, p, res)
	res.Duration = time.Since(start)

	inv := &store.Invocation{
		WorkspaceID: workspaceID, ReferenceID: res.ReferenceID, WebhookID: w.ID, Time: at.UTC().Truncate(time.Microsecond),
		Attempts: res.Attempts, Status: res.Status, Duration: res.Duration, RequestSize: res.RequestSize,
		ResponseSize: res.ResponseSize, Error: res.Error, ErrorMessage: res.ErrorMessage,
		ChainReferenceID: chainRef, Hop: hop,
	}
	// The request went out: record it even when the caller has gone away.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.cfg.Store.RecordInvocation(rctx, inv); err != nil {
		// The endpoint has the request; failing the call would invite a second send.
		s.cfg.Logger.ErrorContext(ctx, "cannot record outgoing webhook invocation", "workspace", workspaceID,
			"webhook_id", w.ID, "reference_id", res.ReferenceID, "err", err)
	}
	s.cfg.Logger.DebugContext(ctx, "outgoing webhook triggered", "workspace", workspaceID, "webhook_id", w.ID,
		"reference_id", res.ReferenceID, "chain_reference_id", chainRef, "hop", hop, "status", res.Status,
		"attempts", res.Attempts, "duration", res.Duration, "error", res.ErrorMessage)
	return res
}

// prepare checks t against w and builds what every attempt sends.
func (s *Sender) prepare(w *store.OutgoingWebhook, t *Trigger) (*prepared, error) {
	var v violations
	for _, name := range value.SortedKeys(t.QueryParams) {
		if !slices.Contains(w.QueryParams, name) {
			allowed := "none"
			if len(w.QueryParams) > 0 {
				allowed = strings.Join(w.QueryParams, ", ")
			}
			v.add("query_params["+name+"]", "not a query parameter of webhook %q (allowed: %s)", w.ID, allowed)
		}
	}
	hdr := checkHeaders(&v, t.Headers, w.HeaderNames)
	body := encodeBody(&v, w, t.Data)
	if err := v.err(); err != nil {
		return nil, err
	}

	registered, err := s.openHeaders(w)
	if err != nil {
		return nil, err
	}
	for name, val := range registered {
		hdr.Set(name, val)
	}
	if hdr.Get("User-Agent") == "" {
		hdr.Set("User-Agent", s.cfg.UserAgent)
	}
	p := &prepared{w: w, headers: hdr, body: body, contentType: w.ContentType}
	if p.contentType == "" {
		p.contentType = defaultContentType[w.PayloadEncoding]
	}
	if p.url, err = withQuery(w.URL, t.QueryParams); err != nil {
		return nil, fmt.Errorf("outgoing: webhook %q: stored URL: %w", w.ID, err)
	}
	if p.secret, err = s.openSecret(w); err != nil {
		return nil, err
	}
	if p.secret != "" {
		if _, err := signingKey(p.secret); err != nil {
			return nil, fmt.Errorf("outgoing: webhook %q: stored signing secret: %w", w.ID, err)
		}
	}
	return p, nil
}

// encodeBody encodes data as w's payload encoding says, adding a violation of "data" when
// it does not fit. nil data is no body.
func encodeBody(v *violations, w *store.OutgoingWebhook, data any) []byte {
	if data == nil {
		return nil
	}
	if w.Method == http.MethodGet {
		v.add("data", "webhook %q uses GET, which sends no body", w.ID)
		return nil
	}
	switch w.PayloadEncoding {
	case store.EncodingJSON:
		b, err := value.Encode(data)
		if err != nil {
			v.add("data", "cannot be encoded as JSON: %v", err)
		}
		return b
	case store.EncodingText:
		str, ok := data.(string)
		if !ok {
			v.add("data", "payload_encoding text needs a string, got %s", value.KindName(data))
		}
		return []byte(str)
	case store.EncodingBase64:
		str, ok := data.(string)
		if !ok {
			v.add("data", "payload_encoding base64 needs a base64 string, got %s", value.KindName(data))
			return nil
		}
		b, err := decodeBase64(str)
		if err != nil {
			v.add("data", "not valid base64 (payload_encoding base64): %v", err)
		}
		return b
	case store.EncodingForm:
		m, ok := data.(map[string]any)
		if !ok {
			v.add("data", "payload_encoding form needs an object of scalars, got %s", value.KindName(data))
			return nil
		}
		form := url.Values{}
		for _, k := range value.SortedKeys(m) {
			switch e := m[k].(type) {
			case string:
				form.Set(k, e)
			case int64:
				form.Set(k, strconv.FormatInt(e, 10))
			case float64:
				form.Set(k, strconv.FormatFloat(e, 'f', -1, 64))
			case bool:
				form.Set(k, strconv.FormatBool(e))
			case nil:
				form.Set(k, "")
			default:
				v.add("data", "form field %q is %s: payload_encoding form takes only strings, numbers, booleans and null", k, value.KindName(e))
			}
		}
		return []byte(form.Encode())
	}
	v.add("data", "webhook %q has an unknown payload encoding %q", w.ID, w.PayloadEncoding)
	return nil
}

// decodeBase64 accepts the standard and URL alphabets, padded or not, with line breaks.
func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
	var first error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err == nil {
			return b, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// withQuery adds the trigger's query parameters to the registered URL. When none of them
// is already in the URL's query they are appended, so the registered query is sent byte
// for byte; otherwise they replace the registered values.
func withQuery(raw string, params map[string]string) (string, error) {
	if len(params) == 0 {
		return raw, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	q := u.Query()
	add := url.Values{}
	clash := false
	for k, val := range params {
		add.Set(k, val)
		clash = clash || q.Has(k)
	}
	switch {
	case clash:
		for k := range add {
			q.Set(k, add.Get(k))
		}
		u.RawQuery = q.Encode()
	case u.RawQuery == "":
		u.RawQuery = add.Encode()
	default:
		u.RawQuery += "&" + add.Encode()
	}
	return u.String(), nil
}

// budget is the retry policy: the wrapped backoff (exponential, jitter, max retries), a
// Retry-After answer overriding the next delay, and no wait that would end past the
// invocation's deadline.
type budget struct {
	next       retry.Backoff
	deadline   time.Time
	retryAfter time.Duration // from the last attempt; < 0: none
	stopped    string        // why retrying stopped early, for the error message
}

func (b *budget) Next() (time.Duration, bool) {
	d, stop := b.next.Next()
	if stop {
		return 0, true
	}
	what := "the next attempt"
	if b.retryAfter >= 0 {
		d, what = b.retryAfter, "Retry-After "+b.retryAfter.String()
	}
	if left := time.Until(b.deadline); d >= left {
		b.stopped = fmt.Sprintf("no retry: %s would start after the timeout", what)
		return 0, true
	}
	return d, false
}

// send makes the attempts and fills res from the last one.
func (s *Sender) send(ctx context.Context, p *prepared, res *Result) {
	timeout := p.w.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, errTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	client := s.direct
	if p.w.FollowRedirects {
		client = s.follows
		ctx = context.WithValue(ctx, registeredKey{}, p.w.HeaderNames)
	}
	attempts := max(p.w.MaxAttempts, 1)
	b := &budget{
		next: retry.WithMaxRetries(uint64(attempts-1),
			retry.WithJitterPercent(50, retry.WithCappedDuration(s.cfg.RetryCap, retry.NewExponential(s.cfg.RetryBase)))),
		deadline:   deadline,
		retryAfter: -1,
	}
	var last outcome
	_ = retry.Do(ctx, b, func(ctx context.Context) error {
		res.Attempts++
		last = s.attempt(ctx, client, p, res.ReferenceID, timeout)
		b.retryAfter = last.retryAfter
		if last.retryable {
			return retry.RetryableError(errRetry)
		}
		return nil
	})

	if res.Attempts == 0 { // the context ended before the first attempt
		last.msg, _ = describe(ctx, context.Cause(ctx), timeout)
	}
	res.Status, res.ContentType, res.Truncated, res.Header = last.status, last.contentType, last.truncated, last.header
	res.ResponseSize = int64(len(last.body))
	res.Data, res.DataEncoding = decodeBody(last.body, last.contentType, last.truncated)
	if last.msg != "" {
		res.Error = true
		res.ErrorMessage = last.msg
		var notes []string
		if res.Attempts > 1 {
			notes = append(notes, fmt.Sprintf("after %d attempts", res.Attempts))
		}
		if last.retryable && b.stopped != "" {
			notes = append(notes, b.stopped)
		}
		if len(notes) > 0 {
			res.ErrorMessage += " (" + strings.Join(notes, "; ") + ")"
		}
	}
}

// outcome is one attempt's result.
type outcome struct {
	status      int
	contentType string
	header      http.Header
	body        []byte
	truncated   bool
	msg         string // what went wrong; "" for a success
	retryable   bool
	retryAfter  time.Duration // < 0: no Retry-After
}

func (s *Sender) attempt(ctx context.Context, client *http.Client, p *prepared, refID string, timeout time.Duration) outcome {
	o := outcome{retryAfter: -1}
	var body io.Reader = http.NoBody
	if p.body != nil {
		body = bytes.NewReader(p.body)
	}
	req, err := http.NewRequestWithContext(ctx, p.w.Method, p.url, body)
	if err != nil {
		o.msg = "cannot build the request: " + err.Error()
		return o
	}
	req.Header = p.headers.Clone()
	if p.body != nil {
		req.Header.Set("Content-Type", p.contentType)
	}
	if p.secret != "" {
		ts := s.cfg.Now()
		sig, err := verify.SignStandardWebhooks(p.secret, refID, ts, p.body)
		if err != nil { // the secret was checked by prepare
			o.msg = "cannot sign the request: " + err.Error()
			return o
		}
		req.Header.Set("webhook-id", refID)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
		req.Header.Set("webhook-signature", sig)
	}
	resp, err := client.Do(req)
	if err != nil {
		o.msg, o.retryable = describe(ctx, err, timeout)
		return o
	}
	defer resp.Body.Close()
	o.status = resp.StatusCode
	o.contentType = resp.Header.Get("Content-Type")
	o.header = resp.Header
	o.body, o.truncated, err = readCapped(resp.Body, s.cfg.MaxResponseBytes)
	if resp.StatusCode >= 400 {
		o.msg = "endpoint answered " + statusText(resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			o.retryable = true
			if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				o.retryAfter = d
			}
		}
	}
	if err != nil {
		msg, retryable := describe(ctx, err, timeout)
		if o.msg == "" {
			o.msg = "reading the response failed: " + msg
			o.retryable = retryable
		}
	}
	return o
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

// readCapped reads at most max bytes of r; truncated reports there were more.
func readCapped(r io.Reader, max int64) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if int64(len(b)) > max {
		return b[:max], true, nil
	}
	return b, false, err
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
func parseRetryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, int64(24*time.Hour/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// decodeBody returns the response body as the trigger's data: parsed JSON when the
// response says JSON (or says nothing and parses), else text, else base64.
func decodeBody(body []byte, contentType string, truncated bool) (any, string) {
	if len(body) == 0 {
		return nil, ""
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if !truncated && (mt == "" || httpbody.IsJSON(mt)) {
		if v, err := value.Decode(body); err == nil {
			return v, store.EncodingJSON
		}
	}
	if truncated && !utf8.Valid(body) {
		// The cut may have split the last character of a text.
		for i := 1; i < utf8.UTFMax && i < len(body); i++ {
			if utf8.Valid(body[:len(body)-i]) {
				body = body[:len(body)-i]
				break
			}
		}
	}
	if utf8.Valid(body) {
		return string(body), store.EncodingText
	}
	return base64.StdEncoding.EncodeToString(body), store.EncodingBase64
}
