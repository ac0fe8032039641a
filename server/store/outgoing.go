package store

import (
	"context"
	"time"
)

// Payload encodings of an outgoing webhook.
const (
	EncodingJSON   = "json"
	EncodingBase64 = "base64"
	EncodingText   = "text"
	EncodingForm   = "form"
)

// Sources of an outgoing webhook.
const (
	SourceAPI  = "api"  // registered through the API
	SourceFile = "file" // declared in the server's webhooks file
)

// OutgoingWebhook is a registered third-party endpoint that clients trigger by id. Its ID
// is chosen by the client and unique per workspace (two workspaces may use the same ID).
//
// Header values and the signing secret are write-only: the caller seals them (server/
// secrets) before storing, so the store only ever holds ciphertext. Header names are kept
// in clear so they can be listed and checked without opening the seal.
type OutgoingWebhook struct {
	WorkspaceID string
	ID          string
	URL         string
	Method      string
	// HeaderNames are the registered headers' names (canonical form, sorted).
	HeaderNames []string
	// Headers is the sealed JSON object of header name → value; nil when there are none.
	Headers []byte
	// QueryParams are the query parameter names a trigger may set.
	QueryParams     []string
	PayloadEncoding string // one of the Encoding* constants
	ContentType     string // "" for the encoding's default
	Timeout         time.Duration
	// SigningSecret is the sealed Standard Webhooks secret; nil when requests are unsigned.
	SigningSecret   []byte
	MaxAttempts     int
	FollowRedirects bool
	// Source is SourceAPI or SourceFile; "" is stored as SourceAPI.
	Source string
	// Next continues a trigger into another webhook of the workspace; nil when none.
	Next       *WebhookNext
	CreateTime time.Time
	UpdateTime time.Time
}

// WebhookNext is a chain's next step: the webhook to call and the mapping values (plain
// values in hookmap's mapping syntax, see engine/mapping; nil when absent) that decide
// whether to continue and build the call.
type WebhookNext struct {
	WebhookID   string
	When        any
	Data        any
	Headers     any
	QueryParams any
}

// Invocation is the record of one trigger of an outgoing webhook: never a header value,
// the secret, the body or the URL.
type Invocation struct {
	WorkspaceID  string
	ReferenceID  string // unique; sent as webhook-id when the request is signed
	WebhookID    string
	Time         time.Time // when the trigger started
	Attempts     int
	Status       int // HTTP status of the last attempt; 0 when the endpoint was not reached
	Duration     time.Duration
	RequestSize  int64
	ResponseSize int64
	Error        bool
	ErrorMessage string
	// ChainReferenceID is the reference id of its chain's first invocation (its own for
	// the first; "" in records written before chains, which read as their own).
	ChainReferenceID string
	Hop              int // 1 for the triggered webhook, 2 for the next one, …
}

// InvocationFilter narrows ListInvocations. Zero fields match everything.
type InvocationFilter struct {
	WebhookID        string
	ChainReferenceID string
	Start            time.Time // Time >= Start
	End              time.Time // Time < End
	ErrorsOnly       bool
}

// OutgoingStore keeps outgoing webhook registrations and their invocation records. Every
// method is safe for concurrent use; methods taking a workspace id never see another
// workspace's records (ErrNotFound instead).
type OutgoingStore interface {
	// CreateOutgoingWebhook inserts w: ErrAlreadyExists when the workspace has a webhook
	// with its ID, ErrNotFound when the workspace does not exist. Zero CreateTime and
	// UpdateTime are set to now on w.
	CreateOutgoingWebhook(ctx context.Context, w *OutgoingWebhook) error
	GetOutgoingWebhook(ctx context.Context, workspaceID, id string) (*OutgoingWebhook, error)
	// ListOutgoingWebhooks lists the workspace's webhooks in creation order.
	ListOutgoingWebhooks(ctx context.Context, workspaceID string, p Page) ([]*OutgoingWebhook, string, error)
	// UpdateOutgoingWebhook replaces every mutable field of the webhook (w.WorkspaceID,
	// w.ID) and sets w.UpdateTime to now. ErrNotFound when it does not exist.
	UpdateOutgoingWebhook(ctx context.Context, w *OutgoingWebhook) error
	// DeleteOutgoingWebhook deletes a webhook; its invocation records stay.
	DeleteOutgoingWebhook(ctx context.Context, workspaceID, id string) error

	// RecordInvocation inserts an invocation record (ErrAlreadyExists on a duplicate
	// ReferenceID).
	RecordInvocation(ctx context.Context, inv *Invocation) error
	GetInvocation(ctx context.Context, workspaceID, referenceID string) (*Invocation, error)
	// ListInvocations lists newest (Time) first.
	ListInvocations(ctx context.Context, workspaceID string, f InvocationFilter, p Page) ([]*Invocation, string, error)
	// PruneInvocations deletes the records with Time before the cutoff, in every
	// workspace, and returns how many it deleted.
	PruneInvocations(ctx context.Context, before time.Time) (int64, error)
}

// OutgoingSourceStore finds outgoing webhooks by where they come from, across workspaces:
// the webhooks file's loader compares what is declared with what is stored.
type OutgoingSourceStore interface {
	// ListOutgoingWebhooksBySource returns the webhooks of every workspace whose Source is
	// source, ordered by workspace id and webhook id.
	ListOutgoingWebhooksBySource(ctx context.Context, source string) ([]*OutgoingWebhook, error)
}
