package outgoing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/textproto"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hookmap/hookmap/server/netguard"
	"github.com/hookmap/hookmap/server/secrets"
	"github.com/hookmap/hookmap/server/store"
)

// Defaults of Config.
const (
	DefaultMaxResponseBytes = 1 << 20
	DefaultRetryBase        = 250 * time.Millisecond
	DefaultRetryCap         = 10 * time.Second
)

// ClientFactory returns the HTTP client for requests that follow redirects (true) or do
// not (false). New calls it once for each and reuses the clients. The clients must apply
// the server's network guard; their own timeouts should be at least MaxTimeout, since
// each invocation is bounded by its registration's timeout through its context.
type ClientFactory func(followRedirects bool) *http.Client

// GuardedClients returns netguard clients: loopback and private targets are refused
// unless allowPrivate (the server's --allow-private-networks).
func GuardedClients(allowPrivate bool) ClientFactory {
	return ClientsFrom(netguard.NewClient(netguard.Options{AllowPrivate: allowPrivate, Timeout: MaxTimeout}))
}

// ClientsFrom returns clients that keep base's network guard (its transport's dialer):
// both share one copy of base's *http.Transport without its response header timeout (the
// invocation's context bounds every request), each with its own redirect policy; base's
// own Timeout is not kept either. A base without an *http.Transport lends its transport
// as it is. A nil base gives GuardedClients(false).
func ClientsFrom(base *http.Client) ClientFactory {
	if base == nil {
		return GuardedClients(false)
	}
	rt := base.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	if t, ok := rt.(*http.Transport); ok {
		t = t.Clone() // one copy, shared by both clients
		t.ResponseHeaderTimeout = 0
		rt = t
	}
	return func(follow bool) *http.Client {
		return &http.Client{Transport: rt, CheckRedirect: netguard.RedirectPolicy(follow, MaxRedirects)}
	}
}

// Config configures a Sender.
type Config struct {
	// Store keeps the webhooks and finds the webhooks file's ones by their source.
	Store interface {
		store.OutgoingStore
		store.OutgoingSourceStore
	}
	Box *secrets.Box
	// Clients makes the HTTP clients (required): GuardedClients(allowPrivate) or
	// ClientsFrom(the server's guarded client).
	Clients ClientFactory
	Logger  *slog.Logger     // default: discarded
	Now     func() time.Time // default time.Now
	// MaxResponseBytes caps the response body returned and recorded (default 1 MiB).
	MaxResponseBytes int64
	// RetryBase is the first backoff delay, doubled at each retry (default 250ms), and
	// RetryCap the longest (default 10s); both get ±50% jitter. A Retry-After answer
	// replaces the delay.
	RetryBase, RetryCap time.Duration
	// UserAgent is sent unless the registration sets one (default "hookmap").
	UserAgent string
	// EvalTimeout bounds the evaluation of a chain's mapping values at each step (0: the
	// mapping package's default, 1s), as --eval-timeout bounds a connector's.
	EvalTimeout time.Duration
	// Users, when set, names what else uses a webhook (e.g. event destinations): a
	// webhook with users cannot be deleted.
	Users func(ctx context.Context, workspaceID, webhookID string) ([]string, error)
}

// Validate reports a missing dependency.
func (c *Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("outgoing: Config.Store is required")
	case c.Box == nil:
		return errors.New("outgoing: Config.Box is required")
	case c.Clients == nil:
		return errors.New("outgoing: Config.Clients is required")
	}
	return nil
}

func (c *Config) withDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.RetryBase <= 0 {
		c.RetryBase = DefaultRetryBase
	}
	if c.RetryCap <= 0 {
		c.RetryCap = DefaultRetryCap
	}
	if c.UserAgent == "" {
		c.UserAgent = "hookmap"
	}
}

// Sender manages registrations and sends triggers. It is safe for concurrent use.
type Sender struct {
	cfg     Config
	direct  *http.Client // redirects not followed
	follows *http.Client // redirects followed
	nexts   nextCache
	// chainMu serialises the writes that can change a chain (a registration with next,
	// a delete), so two concurrent ones cannot build a cycle together in this process.
	chainMu sync.Mutex
}

// New returns a Sender.
func New(cfg Config) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.withDefaults()
	return &Sender{
		cfg:    cfg,
		direct: cfg.Clients(false), follows: stripOnRedirect(cfg.Clients(true)),
	}, nil
}

// registeredKey carries a request's registered header names to the redirect policy.
type registeredKey struct{}

// stripOnRedirect returns a copy of c whose redirects never send a Referer and, to
// another host (host and port), drop the registered headers, so an endpoint's redirect cannot send its credentials
// elsewhere (net/http drops only Authorization, Cookie and WWW-Authenticate, and keeps
// them for subdomains).
func stripOnRedirect(c *http.Client) *http.Client {
	cp := *c
	policy := c.CheckRedirect
	cp.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if policy != nil {
			if err := policy(req, via); err != nil {
				return err
			}
		} else if len(via) >= MaxRedirects {
			return fmt.Errorf("stopped after %d redirects", MaxRedirects)
		}
		// net/http sets Referer to the previous URL, which may hold a token in its query.
		req.Header.Del("Referer")
		if !strings.EqualFold(req.URL.Host, via[0].URL.Host) {
			names, _ := req.Context().Value(registeredKey{}).([]string)
			for _, name := range names {
				req.Header.Del(name)
			}
		}
		return nil
	}
	return &cp
}

// Close releases the clients' idle connections.
func (s *Sender) Close() {
	s.direct.CloseIdleConnections()
	s.follows.CloseIdleConnections()
}

func headersAAD(workspaceID, id string) string {
	return "outgoing-webhook-headers:" + workspaceID + ":" + id
}

func secretAAD(workspaceID, id string) string {
	return "outgoing-webhook-secret:" + workspaceID + ":" + id
}

// seal stores r's header values and secret on w, sealed, and its header names in clear.
func (s *Sender) sealHeaders(w *store.OutgoingWebhook, headers map[string]string) error {
	w.HeaderNames, w.Headers = nil, nil
	if len(headers) == 0 {
		return nil
	}
	m := make(map[string]any, len(headers))
	for name, val := range headers {
		c := textproto.CanonicalMIMEHeaderKey(name)
		m[c] = val
		w.HeaderNames = append(w.HeaderNames, c)
	}
	slices.Sort(w.HeaderNames)
	sealed, err := s.cfg.Box.SealValue(m, headersAAD(w.WorkspaceID, w.ID))
	if err != nil {
		return fmt.Errorf("outgoing: seal headers: %w", err)
	}
	w.Headers = sealed
	return nil
}

func (s *Sender) sealSecret(w *store.OutgoingWebhook, secret string) error {
	w.SigningSecret = nil
	if secret == "" {
		return nil
	}
	sealed, err := s.cfg.Box.Seal([]byte(secret), secretAAD(w.WorkspaceID, w.ID))
	if err != nil {
		return fmt.Errorf("outgoing: seal signing secret: %w", err)
	}
	w.SigningSecret = sealed
	return nil
}

// openHeaders returns the registered headers (canonical names).
func (s *Sender) openHeaders(w *store.OutgoingWebhook) (map[string]string, error) {
	if len(w.Headers) == 0 {
		return nil, nil
	}
	m, err := s.cfg.Box.OpenValue(w.Headers, headersAAD(w.WorkspaceID, w.ID))
	if err != nil {
		return nil, fmt.Errorf("outgoing: open headers of webhook %q: %w", w.ID, err)
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		str, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("outgoing: header %q of webhook %q is a %T", k, w.ID, v)
		}
		out[k] = str
	}
	return out, nil
}

func (s *Sender) openSecret(w *store.OutgoingWebhook) (string, error) {
	if len(w.SigningSecret) == 0 {
		return "", nil
	}
	b, err := s.cfg.Box.Open(w.SigningSecret, secretAAD(w.WorkspaceID, w.ID))
	if err != nil {
		return "", fmt.Errorf("outgoing: open signing secret of webhook %q: %w", w.ID, err)
	}
	return string(b), nil
}

func apply(w *store.OutgoingWebhook, r *Registration) {
	w.Next = r.Next
	w.URL, w.Method, w.QueryParams = r.URL, r.Method, slices.Clone(r.QueryParams)
	w.PayloadEncoding, w.ContentType = r.PayloadEncoding, r.ContentType
	w.Timeout, w.MaxAttempts, w.FollowRedirects = r.Timeout, r.MaxAttempts, r.FollowRedirects
}

// Check validates a registration as Register does before it looks at the stored webhooks
// (a next webhook's existence and the chain's shape are checked by Register only):
// *InvalidError when it does not fit.
func Check(r Registration) error {
	var v violations
	r.takeContentType(&v, strings.TrimSpace(r.ContentType) != "")
	r.normalize()
	r.validate(&v, true, true, true)
	return v.err()
}

// Registered is a stored registration and what hookmap read differently from how it was
// written (Notes, for the caller's answer: a Content-Type header used as content_type).
type Registered struct {
	*store.OutgoingWebhook
	Notes []string
}

// Register validates r (defaults applied) and stores it in the workspace:
// *InvalidError for a bad registration, store.ErrAlreadyExists for a taken id.
func (s *Sender) Register(ctx context.Context, workspaceID string, r Registration) (*Registered, error) {
	var v violations
	notes := r.takeContentType(&v, strings.TrimSpace(r.ContentType) != "")
	r.normalize()
	r.validate(&v, true, true, true)
	if r.Next != nil {
		s.chainMu.Lock()
		defer s.chainMu.Unlock()
		if err := s.checkChain(ctx, workspaceID, &r, &v); err != nil {
			return nil, err
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	w := &store.OutgoingWebhook{WorkspaceID: workspaceID, ID: r.ID, Source: r.Source}
	apply(w, &r)
	if err := s.sealHeaders(w, r.Headers); err != nil {
		return nil, err
	}
	if err := s.sealSecret(w, r.SigningSecret); err != nil {
		return nil, err
	}
	if err := s.cfg.Store.CreateOutgoingWebhook(ctx, w); err != nil {
		return nil, err
	}
	s.cfg.Logger.InfoContext(ctx, "outgoing webhook registered", "workspace", workspaceID, "webhook_id", w.ID, "source", w.Source)
	return &Registered{OutgoingWebhook: w, Notes: notes}, nil
}

// Update replaces the fields of the webhook r.ID named in mask (Field* names) with r's
// and validates the result. Headers are replaced as a whole; an empty SigningSecret
// removes the secret. A webhook declared in the webhooks file is ErrDeclared.
func (s *Sender) Update(ctx context.Context, workspaceID string, r Registration, mask []string) (*Registered, error) {
	var v violations
	if len(mask) == 0 {
		v.add("update_mask", "names no field")
	}
	set := map[string]bool{}
	for _, f := range mask {
		if !slices.Contains(Fields, f) {
			v.add("update_mask", "unknown field %q", f)
		}
		set[f] = true
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	w, err := s.Get(ctx, workspaceID, r.ID)
	if err != nil {
		return nil, err
	}
	if w.Source == store.SourceFile {
		return nil, fmt.Errorf("webhook %q: %w", w.ID, ErrDeclared)
	}
	cur := registrationOf(w)
	for f := range set {
		switch f {
		case FieldURL:
			cur.URL = r.URL
		case FieldMethod:
			cur.Method = r.Method
		case FieldHeaders:
			cur.Headers = r.Headers
		case FieldQueryParams:
			cur.QueryParams = r.QueryParams
		case FieldPayloadEncoding:
			cur.PayloadEncoding = r.PayloadEncoding
		case FieldContentType:
			cur.ContentType = r.ContentType
		case FieldTimeout:
			cur.Timeout = r.Timeout
		case FieldSigningSecret:
			cur.SigningSecret = r.SigningSecret
		case FieldMaxAttempts:
			cur.MaxAttempts = r.MaxAttempts
		case FieldFollowRedirects:
			cur.FollowRedirects = r.FollowRedirects
		case FieldNext:
			cur.Next = r.Next
		}
	}
	var notes []string
	if set[FieldHeaders] {
		notes = cur.takeContentType(&v, set[FieldContentType] && strings.TrimSpace(r.ContentType) != "")
	}
	cur.normalize()
	cur.validate(&v, false, set[FieldHeaders], set[FieldSigningSecret])
	if set[FieldNext] && cur.Next != nil {
		s.chainMu.Lock()
		defer s.chainMu.Unlock()
		if err := s.checkChain(ctx, workspaceID, &cur, &v); err != nil {
			return nil, err
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	apply(w, &cur)
	if set[FieldHeaders] {
		if err := s.sealHeaders(w, cur.Headers); err != nil {
			return nil, err
		}
	}
	if set[FieldSigningSecret] {
		if err := s.sealSecret(w, cur.SigningSecret); err != nil {
			return nil, err
		}
	}
	if err := s.cfg.Store.UpdateOutgoingWebhook(ctx, w); err != nil {
		return nil, err
	}
	s.cfg.Logger.InfoContext(ctx, "outgoing webhook updated", "workspace", workspaceID, "webhook_id", w.ID, "fields", mask)
	return &Registered{OutgoingWebhook: w, Notes: notes}, nil
}

// registrationOf is w's registration without its sealed header values and secret.
func registrationOf(w *store.OutgoingWebhook) Registration {
	return Registration{
		ID: w.ID, URL: w.URL, Method: w.Method, QueryParams: w.QueryParams, PayloadEncoding: w.PayloadEncoding,
		ContentType: w.ContentType, Timeout: w.Timeout, MaxAttempts: w.MaxAttempts, FollowRedirects: w.FollowRedirects,
		Source: w.Source, Next: w.Next,
	}
}

// Replace replaces every field of the stored webhook r.ID with r's (the webhooks file's
// loader: a declaration is the whole registration). The stored webhook must have r's
// Source. Nothing is written when the declaration matches what is stored: changed says
// whether it was.
func (s *Sender) Replace(ctx context.Context, workspaceID string, r Registration) (reg *Registered, changed bool, err error) {
	var v violations
	notes := r.takeContentType(&v, strings.TrimSpace(r.ContentType) != "")
	r.normalize()
	r.validate(&v, true, true, true)
	if r.Next != nil {
		s.chainMu.Lock()
		defer s.chainMu.Unlock()
		if err := s.checkChain(ctx, workspaceID, &r, &v); err != nil {
			return nil, false, err
		}
	}
	if err := v.err(); err != nil {
		return nil, false, err
	}
	w, err := s.Get(ctx, workspaceID, r.ID)
	if err != nil {
		return nil, false, err
	}
	if sourceOf(w.Source) != sourceOf(r.Source) {
		return nil, false, fmt.Errorf("webhook %q comes from the %s, not the %s: %w", w.ID, sourceOf(w.Source), sourceOf(r.Source), store.ErrAlreadyExists)
	}
	same, err := s.matches(w, &r)
	if err != nil {
		return nil, false, err
	}
	if same {
		return &Registered{OutgoingWebhook: w, Notes: notes}, false, nil
	}
	apply(w, &r)
	if err := s.sealHeaders(w, r.Headers); err != nil {
		return nil, false, err
	}
	if err := s.sealSecret(w, r.SigningSecret); err != nil {
		return nil, false, err
	}
	if err := s.cfg.Store.UpdateOutgoingWebhook(ctx, w); err != nil {
		return nil, false, err
	}
	s.cfg.Logger.InfoContext(ctx, "outgoing webhook replaced", "workspace", workspaceID, "webhook_id", w.ID, "source", w.Source)
	return &Registered{OutgoingWebhook: w, Notes: notes}, true, nil
}

func sourceOf(source string) string {
	if source == "" {
		return store.SourceAPI
	}
	return source
}

// matches reports whether the stored w already is the normalized registration r, header
// values and secret included.
func (s *Sender) matches(w *store.OutgoingWebhook, r *Registration) (bool, error) {
	cur := registrationOf(w)
	cur.ID, cur.Source = r.ID, r.Source
	if !slices.Equal(cur.QueryParams, r.QueryParams) {
		return false, nil
	}
	cur.QueryParams = r.QueryParams
	headers, err := s.openHeaders(w)
	if err != nil {
		return false, err
	}
	canon := make(map[string]string, len(r.Headers))
	for k, val := range r.Headers {
		canon[textproto.CanonicalMIMEHeaderKey(k)] = val
	}
	if !maps.Equal(headers, canon) && (len(headers) > 0 || len(canon) > 0) {
		return false, nil
	}
	if cur.SigningSecret, err = s.openSecret(w); err != nil {
		return false, err
	}
	cur.Headers = r.Headers
	return reflect.DeepEqual(cur, *r), nil
}

// Get returns a registration (sealed fields sealed).
func (s *Sender) Get(ctx context.Context, workspaceID, id string) (*store.OutgoingWebhook, error) {
	if id == "" {
		return nil, required("id")
	}
	return s.cfg.Store.GetOutgoingWebhook(ctx, workspaceID, id)
}

// List pages through the workspace's registrations.
func (s *Sender) List(ctx context.Context, workspaceID string, p store.Page) ([]*store.OutgoingWebhook, string, error) {
	return s.cfg.Store.ListOutgoingWebhooks(ctx, workspaceID, p)
}

// Delete deletes a registration made through the API (a declared one is ErrDeclared);
// its invocation records stay.
func (s *Sender) Delete(ctx context.Context, workspaceID, id string) error {
	return s.delete(ctx, workspaceID, id, store.SourceAPI)
}

// DeleteDeclared deletes a webhook declared in the webhooks file (the file's loader).
func (s *Sender) DeleteDeclared(ctx context.Context, workspaceID, id string) error {
	return s.delete(ctx, workspaceID, id, store.SourceFile)
}

func (s *Sender) delete(ctx context.Context, workspaceID, id, source string) error {
	if id == "" {
		return required("id")
	}
	w, err := s.cfg.Store.GetOutgoingWebhook(ctx, workspaceID, id)
	if err != nil {
		return err
	}
	if sourceOf(w.Source) != source {
		if w.Source == store.SourceFile {
			return fmt.Errorf("webhook %q: %w", id, ErrDeclared)
		}
		return fmt.Errorf("webhook %q is not declared in the webhooks file: %w", id, store.ErrNotFound)
	}
	s.chainMu.Lock()
	defer s.chainMu.Unlock()
	refs, err := s.referrers(ctx, workspaceID, id)
	if err != nil {
		return err
	}
	if len(refs) > 0 {
		return fmt.Errorf("webhook %q is the next webhook of %s: remove their next first: %w", id, strings.Join(quoted(refs), ", "), store.ErrInUse)
	}
	if s.cfg.Users != nil {
		users, err := s.cfg.Users(ctx, workspaceID, id)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return fmt.Errorf("webhook %q is used by %s: %w", id, strings.Join(users, ", "), store.ErrInUse)
		}
	}
	if err := s.cfg.Store.DeleteOutgoingWebhook(ctx, workspaceID, id); err != nil {
		return err
	}
	s.cfg.Logger.InfoContext(ctx, "outgoing webhook deleted", "workspace", workspaceID, "webhook_id", id, "source", source)
	return nil
}

func quoted(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// ListDeclared returns the webhooks declared in the webhooks file, in every workspace.
func (s *Sender) ListDeclared(ctx context.Context) ([]*store.OutgoingWebhook, error) {
	return s.cfg.Store.ListOutgoingWebhooksBySource(ctx, store.SourceFile)
}

// GetInvocation returns an invocation record.
func (s *Sender) GetInvocation(ctx context.Context, workspaceID, referenceID string) (*store.Invocation, error) {
	if referenceID == "" {
		return nil, required("reference_id")
	}
	return s.cfg.Store.GetInvocation(ctx, workspaceID, referenceID)
}

// ListInvocations pages through invocation records, newest first.
func (s *Sender) ListInvocations(ctx context.Context, workspaceID string, f store.InvocationFilter, p store.Page) ([]*store.Invocation, string, error) {
	if !f.Start.IsZero() && !f.End.IsZero() && !f.End.After(f.Start) {
		return nil, "", &InvalidError{Violations: []Violation{{Field: "end_time", Description: "must be after start_time"}}}
	}
	return s.cfg.Store.ListInvocations(ctx, workspaceID, f, p)
}
