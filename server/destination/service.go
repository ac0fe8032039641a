package destination

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/hookmap/hookmap/server/hub"
	"github.com/hookmap/hookmap/server/outgoing"
	"github.com/hookmap/hookmap/server/store"
)

// Limits and defaults.
const (
	DefaultRetryWindow = 24 * time.Hour
	MinRetryWindow     = time.Minute
	MaxRetryWindow     = 30 * 24 * time.Hour

	DefaultRetryBase   = 5 * time.Second
	DefaultRetryCap    = 30 * time.Minute
	DefaultConcurrency = 8
	DefaultLeaseTTL    = 30 * time.Second
	DefaultRescan      = 10 * time.Second
)

// Updatable fields, as UpdateDestination's mask names them.
const (
	FieldWebhookID   = "webhook_id"
	FieldFilter      = "filter"
	FieldRetryWindow = "retry_window"
)

// Config configures a Service.
type Config struct {
	Store  store.Store
	Sender *outgoing.Sender
	Hub    *hub.Hub // wakes workers when events are committed
	Logger *slog.Logger
	// Now is the clock of the stored times and of the retry windows (default time.Now).
	Now func() time.Time
	// RetryBase is the first wait after a failure, doubled at each attempt up to
	// RetryCap, with ±50% jitter (defaults 5s and 30m).
	RetryBase, RetryCap time.Duration
	// Concurrency is how many subscriptions of one destination are sent to at once
	// (default 8).
	Concurrency int
	// LeaseTTL is how long a worker's lease lasts without renewal (default 30s): after a
	// crash, another process takes over a destination after at most this long.
	LeaseTTL time.Duration
	// Rescan is how often the service looks for destinations created, resumed or freed
	// elsewhere (default 10s); changes made through this Service are seen at once.
	Rescan time.Duration
}

// Validate reports a missing dependency.
func (c *Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("destination: Config.Store is required")
	case c.Sender == nil:
		return errors.New("destination: Config.Sender is required")
	case c.Hub == nil:
		return errors.New("destination: Config.Hub is required")
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
	if c.RetryBase <= 0 {
		c.RetryBase = DefaultRetryBase
	}
	if c.RetryCap <= 0 {
		c.RetryCap = DefaultRetryCap
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.Rescan <= 0 {
		c.Rescan = DefaultRescan
	}
}

// Service manages destinations and, while Run runs, sends their events.
type Service struct {
	cfg   Config
	owner string // this process's lease owner id
	log   *slog.Logger

	wake    chan struct{} // buffered: Run rescans
	workers workers
}

// New returns a Service; call Run to send.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.withDefaults()
	return &Service{
		cfg: cfg, owner: uuid.NewString(), log: cfg.Logger, wake: make(chan struct{}, 1),
		workers: workers{m: map[key]*worker{}},
	}, nil
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// Start says where a new destination starts.
type Start struct {
	Latest   bool  // with the next event committed (the default when all are zero)
	Earliest bool  // with the earliest retained event
	Seq      int64 // with the event of this seq (inclusive)
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

type violations []outgoing.Violation

func (v *violations) add(field, format string, args ...any) {
	*v = append(*v, outgoing.Violation{Field: field, Description: fmt.Sprintf(format, args...)})
}

func (v violations) err() error {
	if len(v) == 0 {
		return nil
	}
	return &outgoing.InvalidError{Violations: v}
}

// checkWebhook adds a violation when the webhook cannot receive events.
func (s *Service) checkWebhook(ctx context.Context, v *violations, workspaceID, id string) error {
	if id == "" {
		v.add(FieldWebhookID, "required")
		return nil
	}
	w, err := s.cfg.Store.GetOutgoingWebhook(ctx, workspaceID, id)
	if errors.Is(err, store.ErrNotFound) {
		v.add(FieldWebhookID, "no webhook %q in the workspace (register it first)", id)
		return nil
	}
	if err != nil {
		return err
	}
	if p := outgoing.DeliverableProblem(w); p != "" {
		v.add(FieldWebhookID, "%s", p)
	}
	return nil
}

func checkWindow(v *violations, d time.Duration) time.Duration {
	if d == 0 {
		return DefaultRetryWindow
	}
	if d < MinRetryWindow || d > MaxRetryWindow {
		v.add(FieldRetryWindow, "must be between %s and %s (got %s)", MinRetryWindow, MaxRetryWindow, d)
	}
	return d
}

// Create validates and stores a destination, which starts sending at once: *outgoing.
// InvalidError for a bad one, store.ErrAlreadyExists for a taken id.
func (s *Service) Create(ctx context.Context, workspaceID string, d store.Destination, start Start) (*store.Destination, error) {
	var v violations
	switch {
	case d.ID == "":
		v.add("id", "required")
	case !idPattern.MatchString(d.ID):
		v.add("id", "must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if err := s.checkWebhook(ctx, &v, workspaceID, d.WebhookID); err != nil {
		return nil, err
	}
	d.RetryWindow = checkWindow(&v, d.RetryWindow)
	if start.Seq < 0 {
		v.add("start.seq", "must be at least 1")
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	switch {
	case start.Seq > 0:
		d.Cursor = start.Seq - 1
	case start.Earliest:
		d.Cursor = 0
	default:
		last, err := s.cfg.Store.LastSeq(ctx, workspaceID)
		if err != nil {
			return nil, err
		}
		d.Cursor = last
	}
	d.WorkspaceID, d.Status, d.StatusReason = workspaceID, store.DestinationActive, ""
	d.CreateTime, d.UpdateTime = time.Time{}, time.Time{}
	if err := s.cfg.Store.CreateDestination(ctx, &d); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "destination created", "workspace", workspaceID, "destination_id", d.ID, "webhook_id", d.WebhookID, "cursor", d.Cursor)
	s.rescan()
	return s.Get(ctx, workspaceID, d.ID)
}

// Get returns a destination with its queue's counts.
func (s *Service) Get(ctx context.Context, workspaceID, id string) (*store.Destination, error) {
	if id == "" {
		return nil, &outgoing.InvalidError{Violations: []outgoing.Violation{{Field: "id", Description: "required"}}}
	}
	return s.cfg.Store.GetDestination(ctx, workspaceID, id)
}

// List pages through the workspace's destinations.
func (s *Service) List(ctx context.Context, workspaceID string, p store.Page) ([]*store.Destination, string, error) {
	return s.cfg.Store.ListDestinations(ctx, workspaceID, p)
}

// Update replaces the fields of d.ID named in mask (Field* names) with d's.
func (s *Service) Update(ctx context.Context, workspaceID string, d store.Destination, mask []string) (*store.Destination, error) {
	var v violations
	if len(mask) == 0 {
		v.add("update_mask", "names no field")
	}
	for _, f := range mask {
		if !slices.Contains([]string{FieldWebhookID, FieldFilter, FieldRetryWindow}, f) {
			v.add("update_mask", "unknown field %q", f)
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	cur, err := s.Get(ctx, workspaceID, d.ID)
	if err != nil {
		return nil, err
	}
	for _, f := range mask {
		switch f {
		case FieldWebhookID:
			if err := s.checkWebhook(ctx, &v, workspaceID, d.WebhookID); err != nil {
				return nil, err
			}
			cur.WebhookID = d.WebhookID
		case FieldFilter:
			cur.Filter = d.Filter
		case FieldRetryWindow:
			cur.RetryWindow = checkWindow(&v, d.RetryWindow)
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := s.cfg.Store.UpdateDestination(ctx, cur); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "destination updated", "workspace", workspaceID, "destination_id", d.ID, "fields", mask)
	s.kick(workspaceID, d.ID)
	return s.Get(ctx, workspaceID, d.ID)
}

// Delete deletes a destination and its queued events; its worker stops.
func (s *Service) Delete(ctx context.Context, workspaceID, id string) error {
	if id == "" {
		return &outgoing.InvalidError{Violations: []outgoing.Violation{{Field: "id", Description: "required"}}}
	}
	if err := s.cfg.Store.DeleteDestination(ctx, workspaceID, id); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "destination deleted", "workspace", workspaceID, "destination_id", id)
	s.rescan()
	return nil
}

// Pause stops sending (an attempt in flight completes).
func (s *Service) Pause(ctx context.Context, workspaceID, id string) (*store.Destination, error) {
	return s.setStatus(ctx, workspaceID, id, store.DestinationPaused, "")
}

// Resume sends again, whatever stopped the destination; a disabled destination's
// webhook must be usable again.
func (s *Service) Resume(ctx context.Context, workspaceID, id string) (*store.Destination, error) {
	d, err := s.Get(ctx, workspaceID, id)
	if err != nil {
		return nil, err
	}
	var v violations
	if err := s.checkWebhook(ctx, &v, workspaceID, d.WebhookID); err != nil {
		return nil, err
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	return s.setStatus(ctx, workspaceID, id, store.DestinationActive, "")
}

func (s *Service) setStatus(ctx context.Context, workspaceID, id, status, reason string) (*store.Destination, error) {
	if id == "" {
		return nil, &outgoing.InvalidError{Violations: []outgoing.Violation{{Field: "id", Description: "required"}}}
	}
	if err := s.cfg.Store.SetDestinationStatus(ctx, workspaceID, id, status, reason); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "destination status", "workspace", workspaceID, "destination_id", id, "status", status, "reason", reason)
	s.rescan()
	s.kick(workspaceID, id)
	return s.Get(ctx, workspaceID, id)
}

// ListEvents pages through a destination's queued events of a state ("": both).
func (s *Service) ListEvents(ctx context.Context, workspaceID, id, state string, p store.Page) ([]*store.DestinationEvent, string, error) {
	if _, err := s.Get(ctx, workspaceID, id); err != nil {
		return nil, "", err
	}
	return s.cfg.Store.ListDestinationEvents(ctx, workspaceID, id, state, p)
}

// GetEvent returns an event the destination holds.
func (s *Service) GetEvent(ctx context.Context, workspaceID, id string, seq int64) (*store.DestinationEvent, error) {
	return s.cfg.Store.GetDestinationEvent(ctx, workspaceID, id, seq)
}

// Retry queues parked events again with a fresh retry window: the one with seq, or every
// one when seq is 0. It returns how many.
func (s *Service) Retry(ctx context.Context, workspaceID, id string, seq int64) (int64, error) {
	if _, err := s.Get(ctx, workspaceID, id); err != nil {
		return 0, err
	}
	n, err := s.cfg.Store.RetryDestinationEvents(ctx, workspaceID, id, seq, s.now())
	if err != nil {
		return 0, err
	}
	s.log.InfoContext(ctx, "destination events retried", "workspace", workspaceID, "destination_id", id, "count", n)
	s.kick(workspaceID, id)
	return n, nil
}

// Users names the destinations that send to a webhook (outgoing.Config.Users: such a
// webhook cannot be deleted).
func (s *Service) Users(ctx context.Context, workspaceID, webhookID string) ([]string, error) {
	var out []string
	for p := (store.Page{Size: 1000}); ; {
		ds, next, err := s.cfg.Store.ListDestinations(ctx, workspaceID, p)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			if d.WebhookID == webhookID {
				out = append(out, fmt.Sprintf("destination %q", d.ID))
			}
		}
		if next == "" {
			return out, nil
		}
		p.Token = next
	}
}
