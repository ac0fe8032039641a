package rest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hookmap/hookmap/engine/httpbody"
	"github.com/hookmap/hookmap/engine/mapping"
	"github.com/hookmap/hookmap/engine/value"
)

// DefaultMaxResponseBytes caps a response body read when Options leaves it 0.
const DefaultMaxResponseBytes = 10 << 20

// MaxErrorBody is the size of the body excerpt an HTTPError keeps.
const MaxErrorBody = 1 << 10

// ErrNoHTTPClient is returned when a rest-api-mapping runs without an HTTP client.
var ErrNoHTTPClient = errors.New("no HTTP client to run a rest-api-mapping")

// ErrResponseTooLarge is wrapped by the error for a response body over the limit.
var ErrResponseTooLarge = errors.New("response body too large")

// Doer sends HTTP requests (an *http.Client satisfies it).
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Options configure a run.
type Options struct {
	HTTP             Doer
	MaxResponseBytes int64
	// State, when set, is called after each request; the requests after it and the
	// responseMapping see its result as `state` (what a handle stored meanwhile).
	State func(ctx context.Context) (map[string]any, error)
	// Reauth, when set, renews the run's credentials after a request answered 401: it
	// returns the new credentials, with which the api block is evaluated again and that
	// request sent once more. It is called at most once per run.
	Reauth func(ctx context.Context) (map[string]any, error)
}

// HTTPError is a request the app answered with a status outside allowedStatusCodes (or
// outside 2xx by default).
type HTTPError struct {
	// File is the rest-api-mapping file that made the request.
	File       string
	Method     string
	URL        string // without the query string, which may carry secrets
	StatusCode int
	Body       string // an excerpt of at most 1 KiB
	// Headers (lower-case names) and Data (the body parsed as a response's data is) of
	// the answer, for code that decides what the failure means; never part of Error().
	Headers map[string]any
	Data    any
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("%s %s answered %d", e.Method, e.URL, e.StatusCode)
	if e.File != "" {
		msg = e.File + ": " + msg
	}
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Run executes the method's requests in scope s with the connector's api block (nil for
// none) and returns the responseMapping's result (nil without one).
func (m *Method) Run(s *mapping.Scope, api *API, opts Options) (any, error) {
	if opts.HTTP == nil {
		return nil, fmt.Errorf("%s: %w", m.File, ErrNoHTTPClient)
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	base, headers, timeout, err := evalAPI(s, api)
	if err != nil {
		return nil, err
	}
	responses := map[string]any{}
	var last map[string]any
	var state map[string]any // read again after each request when opts.State is set
	scope := func(extra map[string]any) *mapping.Scope {
		if state != nil {
			extra["state"] = state
		}
		if len(extra) == 0 {
			return s
		}
		return s.With(extra)
	}
	reauthed := false
	for i, r := range m.Requests {
		if i > 0 && opts.State != nil {
			if state, err = opts.State(s.Context()); err != nil {
				return nil, err
			}
		}
		requestScope := func() *mapping.Scope {
			extra := map[string]any{}
			if m.Multi {
				extra["responses"] = responses
			}
			return scope(extra)
		}
		rs := requestScope()
		if r.When != nil {
			ok, err := r.When.EvalBool(rs)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		resp, err := m.do(rs, r, base, headers, timeout, opts)
		var he *HTTPError
		if err != nil && opts.Reauth != nil && !reauthed && errors.As(err, &he) && he.StatusCode == 401 {
			reauthed = true
			creds, rerr := opts.Reauth(s.Context())
			if rerr != nil {
				return nil, fmt.Errorf("%s: %s %s answered 401 and renewing the credentials failed: %w", m.File, he.Method, he.URL, rerr)
			}
			s = s.With(map[string]any{"credentials": creds})
			if base, headers, timeout, err = evalAPI(s, api); err != nil {
				return nil, err
			}
			resp, err = m.do(requestScope(), r, base, headers, timeout, opts)
		}
		if err != nil {
			return nil, err
		}
		if r.Key != "" {
			responses[r.Key] = resp
		}
		last = resp
	}
	if m.ResponseMapping == nil {
		return nil, nil
	}
	if last == nil {
		last = map[string]any{}
	}
	if opts.State != nil {
		if state, err = opts.State(s.Context()); err != nil {
			return nil, err
		}
	}
	extra := map[string]any{"response": last}
	if m.Multi {
		extra["responses"] = responses
	}
	return m.ResponseMapping.Eval(scope(extra))
}

func evalAPI(s *mapping.Scope, api *API) (string, map[string]any, time.Duration, error) {
	if api == nil {
		return "", nil, DefaultTimeout, nil
	}
	var base string
	if api.BaseURI != nil {
		v, err := api.BaseURI.Eval(s)
		if err != nil {
			return "", nil, 0, err
		}
		if base, err = mapping.Text(v); err != nil {
			return "", nil, 0, fmt.Errorf("api.baseUri: %w", err)
		}
	}
	var headers map[string]any
	if api.Headers != nil {
		v, err := api.Headers.Eval(s)
		if err != nil {
			return "", nil, 0, err
		}
		if v != nil {
			h, ok := v.(map[string]any)
			if !ok {
				return "", nil, 0, fmt.Errorf("api.headers evaluated to %T, want a map", v)
			}
			headers = h
		}
	}
	timeout := api.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return base, headers, timeout, nil
}

func (m *Method) do(s *mapping.Scope, r *Request, base string, apiHeaders map[string]any, timeout time.Duration, opts Options) (map[string]any, error) {
	u, err := m.buildURL(s, r, base)
	if err != nil {
		return nil, err
	}
	resp, err := m.send(s, r, u, apiHeaders, timeout, opts)
	if err != nil || r.Pagination == nil {
		return resp, err
	}
	return m.paginate(s, r, u, resp, apiHeaders, timeout, opts)
}

// paginate follows r.Pagination from the first page's response.
func (m *Method) paginate(s *mapping.Scope, r *Request, first *url.URL, resp map[string]any, apiHeaders map[string]any, timeout time.Duration, opts Options) (map[string]any, error) {
	pg := r.Pagination
	var items []any
	seen := map[string]bool{first.String(): true}
	for page := 1; ; page++ {
		ps := s.With(map[string]any{"response": resp})
		iv, err := pg.Items.Eval(ps)
		if err != nil {
			return nil, err
		}
		switch t := iv.(type) {
		case nil:
		case []any:
			items = append(items, t...)
		default:
			return nil, fmt.Errorf("%s: pagination.items evaluated to %T on page %d, want a list", m.File, iv, page)
		}
		nv, err := pg.Next.Eval(ps)
		if err != nil {
			return nil, err
		}
		next, err := nextPage(first, nv)
		if err != nil {
			return nil, fmt.Errorf("%s: pagination.next on page %d: %w", m.File, page, err)
		}
		if next == nil {
			break
		}
		if seen[next.String()] {
			return nil, fmt.Errorf("%s: pagination.next on page %d points to a page already fetched (%s)", m.File, page, hideCredentials(redact(next), s))
		}
		if page >= pg.MaxPages {
			return nil, fmt.Errorf("%s: more than %d pages (raise pagination.maxPages if the app really has that many)", m.File, pg.MaxPages)
		}
		seen[next.String()] = true
		if resp, err = m.send(s, r, next, apiHeaders, timeout, opts); err != nil {
			return nil, err
		}
		resp["pages"] = int64(page + 1)
	}
	if items == nil {
		items = []any{}
	}
	resp["items"] = items
	if _, ok := resp["pages"]; !ok {
		resp["pages"] = int64(1)
	}
	return resp, nil
}

// nextPage turns pagination.next's value into the next URL: nil or "" for none; a string
// is a URL on the first request's origin (absolute or a path: credentials never go to
// another host); a map sets those query parameters on the first request's URL (null
// removes one).
func nextPage(first *url.URL, v any) (*url.URL, error) {
	switch t := v.(type) {
	case nil:
		return nil, nil
	case string:
		if t == "" {
			return nil, nil
		}
		ref, err := url.Parse(t)
		if err != nil {
			return nil, fmt.Errorf("bad URL: %w", err)
		}
		u := first.ResolveReference(ref)
		if u.Scheme != first.Scheme || u.Host != first.Host {
			return nil, fmt.Errorf("next page %s is not on %s://%s (credentials are only sent to the API's own host)", redact(u), first.Scheme, first.Host)
		}
		return u, nil
	case map[string]any:
		if len(t) == 0 {
			return nil, nil
		}
		u := *first
		q := u.Query()
		for _, k := range value.SortedKeys(t) {
			q.Del(k)
			if err := addValues(q, k, t[k]); err != nil {
				return nil, fmt.Errorf("query %s: %w", k, err)
			}
		}
		u.RawQuery = q.Encode()
		return &u, nil
	}
	return nil, fmt.Errorf("evaluated to %T, want null, a URL string or a map of query parameters", v)
}

func (m *Method) send(s *mapping.Scope, r *Request, u *url.URL, apiHeaders map[string]any, timeout time.Duration, opts Options) (map[string]any, error) {
	var body io.Reader
	var contentType string
	if r.Data != nil {
		data, err := r.Data.Eval(s)
		if err != nil {
			return nil, err
		}
		if data != nil {
			if r.Form {
				form := url.Values{}
				if err := encodeForm("", data, form); err != nil {
					return nil, fmt.Errorf("%s: requestMapping.data: %w", m.File, err)
				}
				body, contentType = strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"
			} else {
				b, err := value.Encode(data)
				if err != nil {
					return nil, fmt.Errorf("%s: requestMapping.data: %w", m.File, err)
				}
				body, contentType = strings.NewReader(string(b)), "application/json"
			}
		}
	}
	ctx, cancel := context.WithTimeout(s.Context(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %w", m.File, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if err := setHeaders(req.Header, apiHeaders); err != nil {
		return nil, fmt.Errorf("%s: api.headers: %w", m.File, err)
	}
	if r.Headers != nil {
		hv, err := r.Headers.Eval(s)
		if err != nil {
			return nil, err
		}
		if hv != nil {
			hm, ok := hv.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: requestMapping.headers evaluated to %T, want a map", m.File, hv)
			}
			if err := setHeaders(req.Header, hm); err != nil {
				return nil, fmt.Errorf("%s: requestMapping.headers: %w", m.File, err)
			}
		}
	}
	shown := hideCredentials(redact(u), s)
	resp, err := opts.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s: %w", m.File, r.Method, shown, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, opts.MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s: read response: %w", m.File, r.Method, shown, err)
	}
	if int64(len(raw)) > opts.MaxResponseBytes {
		return nil, fmt.Errorf("%s: %s %s: %w (over %d bytes)", m.File, r.Method, shown, ErrResponseTooLarge, opts.MaxResponseBytes)
	}
	if !allowed(r.Allowed, resp.StatusCode) {
		return nil, &HTTPError{File: m.File, Method: r.Method, URL: shown, StatusCode: resp.StatusCode, Body: excerpt(raw),
			Headers: httpbody.LowerHeaders(resp.Header), Data: parseBody(resp.Header.Get("Content-Type"), raw)}
	}
	return map[string]any{
		"statusCode": int64(resp.StatusCode),
		"headers":    httpbody.LowerHeaders(resp.Header),
		"data":       parseBody(resp.Header.Get("Content-Type"), raw),
	}, nil
}

func (m *Method) buildURL(s *mapping.Scope, r *Request, base string) (*url.URL, error) {
	path := r.Path
	if r.PathParameters != nil && strings.Contains(path, "{") {
		pv, err := r.PathParameters.Eval(s)
		if err != nil {
			return nil, err
		}
		params, _ := pv.(map[string]any)
		var ferr error
		path = placeholderRe.ReplaceAllStringFunc(path, func(ph string) string {
			name := ph[1 : len(ph)-1]
			v, ok := params[name]
			if !ok || v == nil {
				if ferr == nil {
					ferr = fmt.Errorf("%s: path parameter {%s} is missing or null", m.File, name)
				}
				return ph
			}
			t, err := mapping.Text(v)
			if err != nil && ferr == nil {
				ferr = fmt.Errorf("%s: path parameter {%s}: %w", m.File, name, err)
			}
			if t == "" && ferr == nil {
				ferr = fmt.Errorf("%s: path parameter {%s} is empty", m.File, name)
			}
			return url.PathEscape(t)
		})
		if ferr != nil {
			return nil, ferr
		}
	}
	full := path
	if !strings.HasPrefix(path, "http://") && !strings.HasPrefix(path, "https://") {
		if base == "" {
			return nil, fmt.Errorf("%s: path %s is relative and the connector's api.baseUri is empty", m.File, r.Path)
		}
		full = strings.TrimRight(base, "/") + "/" + strings.TrimLeft(path, "/")
	}
	u, err := url.Parse(full)
	if err != nil {
		return nil, fmt.Errorf("%s: bad URL %q: %w", m.File, full, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%s: URL %q must be http or https", m.File, full)
	}
	if r.Query != nil {
		qv, err := r.Query.Eval(s)
		if err != nil {
			return nil, err
		}
		if qv != nil {
			qm, ok := qv.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: requestMapping.query evaluated to %T, want a map", m.File, qv)
			}
			q := u.Query()
			for _, k := range value.SortedKeys(qm) {
				if err := addValues(q, k, qm[k]); err != nil {
					return nil, fmt.Errorf("%s: query %s: %w", m.File, k, err)
				}
			}
			u.RawQuery = q.Encode()
		}
	}
	return u, nil
}

func addValues(q url.Values, k string, v any) error {
	switch t := v.(type) {
	case nil:
		return nil
	case []any:
		for _, e := range t {
			if e == nil {
				continue
			}
			s, err := mapping.Text(e)
			if err != nil {
				return err
			}
			q.Add(k, s)
		}
		return nil
	}
	s, err := mapping.Text(v)
	if err != nil {
		return err
	}
	q.Set(k, s)
	return nil
}

func setHeaders(h http.Header, m map[string]any) error {
	for _, k := range value.SortedKeys(m) {
		v := m[k]
		if v == nil {
			h.Del(k)
			continue
		}
		if l, ok := v.([]any); ok {
			h.Del(k)
			for _, e := range l {
				s, err := mapping.Text(e)
				if err != nil {
					return err
				}
				h.Add(k, s)
			}
			continue
		}
		s, err := mapping.Text(v)
		if err != nil {
			return err
		}
		if strings.ContainsAny(s, "\r\n") {
			return fmt.Errorf("header %s contains a line break", k)
		}
		h.Set(k, s)
	}
	return nil
}

// encodeForm encodes data as form fields: k[sub]=v for maps, k[]=v for lists of scalars,
// k[i][sub]=v for lists of maps or lists; null values are left out.
func encodeForm(prefix string, v any, out url.Values) error {
	switch t := v.(type) {
	case nil:
		return nil
	case map[string]any:
		for _, k := range value.SortedKeys(t) {
			key := k
			if prefix != "" {
				key = prefix + "[" + k + "]"
			}
			if err := encodeForm(key, t[k], out); err != nil {
				return err
			}
		}
		return nil
	case []any:
		if prefix == "" {
			return errors.New("form data must be a map")
		}
		for i, e := range t {
			switch e.(type) {
			case map[string]any, []any:
				if err := encodeForm(prefix+"["+strconv.Itoa(i)+"]", e, out); err != nil {
					return err
				}
			case nil:
			default:
				s, err := mapping.Text(e)
				if err != nil {
					return err
				}
				out.Add(prefix+"[]", s)
			}
		}
		return nil
	}
	if prefix == "" {
		return errors.New("form data must be a map")
	}
	s, err := mapping.Text(v)
	if err != nil {
		return err
	}
	out.Add(prefix, s)
	return nil
}

func allowed(codes []int, status int) bool {
	if len(codes) == 0 {
		return status >= 200 && status < 300
	}
	for _, c := range codes {
		if c == status {
			return true
		}
	}
	return false
}

func excerpt(b []byte) string {
	if len(b) > MaxErrorBody {
		// ToValidUTF8 drops a multi-byte sequence cut in half
		return strings.ToValidUTF8(string(b[:MaxErrorBody-len("…")]), "") + "…"
	}
	return strings.ToValidUTF8(string(b), "")
}

func redact(u *url.URL) string {
	c := *u
	c.RawQuery, c.User, c.Fragment = "", nil, ""
	return c.String()
}

// hideCredentials replaces each credential (a string of the credentials variable, of 6
// characters or more) that appears in shown, as is or path-escaped, with "***": a URL in
// an error never shows a credential, even one an app wants in its path (Trello's
// /1/tokens/{token}/webhooks).
func hideCredentials(shown string, s *mapping.Scope) string {
	v, ok := s.Lookup("credentials")
	if !ok {
		return shown
	}
	creds, _ := v.(map[string]any)
	for _, c := range creds {
		str, ok := c.(string)
		if !ok || len(str) < 6 {
			continue
		}
		shown = strings.ReplaceAll(shown, str, "***")
		shown = strings.ReplaceAll(shown, url.PathEscape(str), "***")
	}
	return shown
}

// parseBody parses a response body by its Content-Type: JSON (application/json,
// text/json or +json) with value.Decode, form-urlencoded as a map, anything else a string; an empty
// body is null. A body that claims JSON but does not parse stays a string.
func parseBody(ct string, raw []byte) any {
	if len(raw) == 0 {
		return nil
	}
	mt, _, _ := mime.ParseMediaType(ct)
	switch {
	case httpbody.IsJSON(mt):
		if v, err := value.Decode(raw); err == nil {
			return v
		}
	case mt == "application/x-www-form-urlencoded":
		if q, err := url.ParseQuery(string(raw)); err == nil {
			return httpbody.Query(q)
		}
	}
	return string(raw)
}
