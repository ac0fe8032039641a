package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Implementations wrap them; callers test with errors.Is.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrClosed        = errors.New("store closed")
	// ErrInvalidPageToken is returned by List methods for a token they did not issue.
	ErrInvalidPageToken = errors.New("invalid page token")
	// ErrInUse is returned when deleting a record that others still reference (a
	// connection that still has subscriptions).
	ErrInUse = errors.New("in use")
	// ErrUnreadable is returned by Get methods for a record whose stored value cannot be
	// decoded (a damaged database). List methods never fail because of such a record: they
	// leave it out and log it, except ListEvents, which returns the event with RecordError
	// set instead of its Record.
	ErrUnreadable = errors.New("stored value cannot be read")
	// ErrConflict is returned by a conditional write whose record changed since it was
	// read (AuthStore.SetConnectionAuth).
	ErrConflict = errors.New("changed concurrently")
)

// Connection statuses.
const (
	ConnectionConnected    = "CONNECTED"    // its credentials are usable
	ConnectionPending      = "PENDING"      // waiting for the user to authorize it (OAuth 2.0)
	ConnectionDisconnected = "DISCONNECTED" // the app refused its credentials for good; LastError says why
)

// Grants a connection's credentials were obtained with.
const (
	GrantGiven             = ""                   // given by the client (CreateConnection, UpdateConnection)
	GrantAuthorizationCode = "authorization_code" // the OAuth 2.0 authorization code flow
	GrantClientCredentials = "client_credentials" // the OAuth 2.0 client credentials grant
)

// Subscription statuses.
const (
	StatusPending  = "PENDING"  // subscribe in flight
	StatusActive   = "ACTIVE"   // subscribed
	StatusFailed   = "FAILED"   // subscribe failed; LastError says why
	StatusDeleting = "DELETING" // unsubscribe failed; retried in the background
)

// Delivery outcomes.
const (
	OutcomeOK        = "OK"
	OutcomeRejected  = "REJECTED"  // verification failed or the request was refused (4xx)
	OutcomeFailed    = "FAILED"    // mapping or store error; Request is kept for replay
	OutcomeUnmatched = "UNMATCHED" // a global webhook delivery that matched no subscription
	OutcomeDuplicate = "DUPLICATE" // every event was a re-delivery of a stored one
)

// Workspace is a tenant. Every other record belongs to exactly one.
type Workspace struct {
	ID         string
	Name       string
	CreateTime time.Time
}

// APIKey authenticates a client service for one workspace. Only a hash of the key is kept.
type APIKey struct {
	ID          string
	WorkspaceID string
	Name        string
	Hash        []byte // SHA-256 of the secret part of the key
	CreateTime  time.Time
	RevokeTime  time.Time // zero while the key is valid
}

// Connection is one customer's account in an external app.
type Connection struct {
	WorkspaceID  string
	ID           string
	ConnectorKey string
	Name         string
	Parameters   map[string]any
	Credentials  []byte // sealed by the caller
	// Status is one of the Connection* statuses; LastError says why it is not CONNECTED
	// (or what last went wrong renewing its credentials).
	Status    string
	LastError string
	// Grant is how the credentials were obtained (one of the Grant* values).
	Grant string
	// CredentialsExpireTime is when the access token in the credentials expires; zero
	// when it does not or nobody knows.
	CredentialsExpireTime time.Time
	// CredentialsVersion is maintained by the store: 1 at creation, one more at every
	// UpdateConnection or SetConnectionAuth, which compares it.
	CredentialsVersion int64
	CreateTime         time.Time
	UpdateTime         time.Time
}

// Subscription is a connection's subscription to one event of its connector.
type Subscription struct {
	WorkspaceID  string
	ID           string // unguessable; the last segment of the webhook URI
	ConnectionID string
	ConnectorKey string
	EventKey     string
	Parameters   map[string]any
	// State is what subscribe, refresh and handle keep for the subscription (a hook id,
	// often the app's signing secret for it): its JSON, sealed by the caller; nil when none.
	State []byte
	// StateChange, when not nil, makes UpdateSubscription compute the state from the
	// stored one in the same transaction instead of writing State: it is given the stored
	// (sealed) state and returns the new one, which is written and set in State. Core
	// merges a method's state into the stored one this way, so the keys a handle stored
	// meanwhile (a handshake answered while subscribe runs) are kept. It runs inside the
	// store's write transaction: it must be quick and touch nothing else.
	StateChange func(stored []byte) ([]byte, error)
	// WebhookSecret is the per-subscription secret given to subscribe as webhookSecret,
	// sealed by the caller.
	WebhookSecret []byte
	Status        string
	LastError     string
	// GlobalWebhookKey and Selector route global webhook deliveries (both empty for
	// per-subscription webhooks). Lookups by (workspace, connector, key, selector) are indexed.
	GlobalWebhookKey string
	Selector         string
	NextRefreshTime  time.Time // zero: no refresh scheduled
	RefreshTime      time.Time // last successful refresh
	RefreshFailures  int
	LastEventTime    time.Time
	CreateTime       time.Time
	UpdateTime       time.Time
}

// GlobalWebhook is the one URL of a (workspace, connector, global webhook key).
type GlobalWebhook struct {
	WorkspaceID  string
	ID           string // unguessable; the last segment of {public-url}/hooks/g/{id}
	ConnectorKey string
	Key          string
	CreateTime   time.Time
}

// Event is one mapped event, stored before the receiver answers.
type Event struct {
	Seq            int64 // assigned by the store at commit; monotonic per workspace
	ID             string
	WorkspaceID    string
	ConnectionID   string
	SubscriptionID string
	EventKey       string
	Type           string
	Record         any    // a plain value (see engine/value)
	ExternalID     string // the mapping's id, e.g. a provider delivery id; "" when none
	DeliveryID     string
	ReceiveTime    time.Time

	// RecordJSON is the record's JSON text as stored (integers exact, keys sorted). Reads
	// set it beside Record; writers set Record only.
	RecordJSON string
	// RecordError says why the stored record cannot be read (Record is then nil); set
	// only by reads.
	RecordError string
}

// EventFilter narrows ListEvents. Empty fields match everything; several values in one
// field match any of them.
type EventFilter struct {
	ConnectionIDs   []string
	SubscriptionIDs []string
	EventKeys       []string
	Types           []string
	// JSONRecords is not a filter but a promise: the caller reads each event's RecordJSON
	// (or RecordError) and never its Record, which the store may then leave nil rather than
	// decode (a stream in the JSON record format). It is never stored with a destination's
	// filter.
	JSONRecords bool `json:"-"`
}

// RawRequest is a received HTTP request, kept so a failed delivery can be replayed.
type RawRequest struct {
	Method  string
	Path    string
	Query   string // raw query string
	Headers map[string][]string
	Body    []byte
}

// Delivery is the record of one request the receiver handled.
type Delivery struct {
	ID              string
	WorkspaceID     string
	SubscriptionID  string // set for per-subscription webhooks
	GlobalWebhookID string // set for global webhooks
	ReceiveTime     time.Time
	StatusCode      int
	Outcome         string
	Error           string
	EventCount      int
	RequestSize     int64
	Selectors       []string    // a global webhook delivery's selectors
	Request         *RawRequest // kept for FAILED deliveries (replay); nil otherwise
	// HasRequest says a request is kept (replayable). GetDelivery sets it with Request;
	// ListDeliveries sets it but leaves Request nil (a page never loads request bodies).
	// CommitDelivery ignores it.
	HasRequest  bool
	ReplayCount int
	// FetchStatus summarises the fetches the delivery asked for (FetchStore): "" when
	// none, else FetchPending, FetchRetrying, FetchFailed or FetchOK. FetchAttempts is the
	// most failed runs of one of them. Both are read only: a FetchStore maintains them.
	FetchStatus   string
	FetchAttempts int
}

// DeliveryFilter narrows ListDeliveries.
type DeliveryFilter struct {
	SubscriptionID  string
	GlobalWebhookID string
	Outcome         string
	// Start and End bound ReceiveTime: at or after Start, before End (zero: unbounded).
	Start, End time.Time
}

// StateUpdate changes a subscription's state as part of a delivery commit: State (sealed
// by the caller, like Subscription.State) replaces it, or, when Change is set, Change
// computes the new state from the stored one inside the commit's transaction (core merges
// a handle's state this way; like Subscription.StateChange it must be quick).
type StateUpdate struct {
	SubscriptionID string
	State          []byte
	Change         func(stored []byte) ([]byte, error)
}

// DeliveryCommit is everything one delivery writes, committed atomically.
type DeliveryCommit struct {
	// Delivery is inserted, or replaced when a delivery with its ID exists (replay).
	Delivery *Delivery
	// Events get their Seq assigned. An event whose (SubscriptionID, ExternalID) was
	// stored within the idempotency window is skipped and reported as a duplicate.
	Events       []*Event
	StateUpdates []StateUpdate
}

// Applied sets what a committed c stored on its records, as every store's CommitDelivery
// does: the events' seqs and, when events were duplicates, the delivery's count and
// outcome (DUPLICATE when none was new).
func (c *DeliveryCommit) Applied(res *CommitResult) {
	for i, ev := range c.Events {
		ev.Seq = res.Seqs[i]
	}
	if d := c.Delivery; d != nil && res.Duplicates > 0 {
		d.EventCount = res.Inserted
		if res.Inserted == 0 && d.Outcome == OutcomeOK {
			d.Outcome = OutcomeDuplicate
		}
	}
}

// SubscriptionWorkspace finds a subscription's workspace among c's events (the workspace
// of a state update in a commit without a delivery); "" when none of them is its.
func (c *DeliveryCommit) SubscriptionWorkspace(subID string) string {
	for _, ev := range c.Events {
		if ev.SubscriptionID == subID {
			return ev.WorkspaceID
		}
	}
	return ""
}

// CommitResult reports what CommitDelivery stored.
type CommitResult struct {
	// Seqs has one entry per DeliveryCommit.Events entry: its seq, or 0 when skipped as a duplicate.
	Seqs       []int64
	Inserted   int
	Duplicates int
	MaxSeq     int64 // the highest seq inserted; 0 when none
}

// Page asks for one page of a list. Size 0 means the implementation's default (50);
// sizes over 1000 are capped at 1000. Token is the NextToken of the previous page.
type Page struct {
	Size  int
	Token string
}

// Store is hookmap's storage. Every method is safe for concurrent use. Methods taking a
// workspace id never return another workspace's records (ErrNotFound instead).
//
// Records are created in an existing parent: creating an API key, connection, connector
// parameters or global webhook in an unknown workspace, or a subscription of an unknown
// connection (of its workspace), is ErrNotFound. Create methods set a zero CreateTime
// (and UpdateTime) to now on the given record.
//
// Every store keeps OAuth 2.0 connections, fetches, outgoing webhooks and destinations
// too; only Shared is optional (a store that one process owns lacks it by design).
type Store interface {
	AuthStore
	FetchStore
	OutgoingStore
	OutgoingSourceStore
	DestinationStore

	// Workspaces and API keys.
	CreateWorkspace(ctx context.Context, w *Workspace) error // ErrAlreadyExists on a duplicate ID
	GetWorkspace(ctx context.Context, id string) (*Workspace, error)
	ListWorkspaces(ctx context.Context, p Page) ([]*Workspace, string, error)
	CreateAPIKey(ctx context.Context, k *APIKey) error
	GetAPIKeyByHash(ctx context.Context, hash []byte) (*APIKey, error) // revoked keys too; caller checks RevokeTime
	RevokeAPIKey(ctx context.Context, id string, at time.Time) error

	// Connector parameters (workspace level, sealed by the caller).
	SetConnectorParameters(ctx context.Context, workspaceID, connectorKey string, sealed []byte) error
	GetConnectorParameters(ctx context.Context, workspaceID, connectorKey string) ([]byte, error) // ErrNotFound when never set

	// Connections.
	// CreateConnection sets c.CredentialsVersion to 1.
	CreateConnection(ctx context.Context, c *Connection) error
	GetConnection(ctx context.Context, workspaceID, id string) (*Connection, error)
	ListConnections(ctx context.Context, workspaceID string, p Page) ([]*Connection, string, error)
	// UpdateConnection replaces name, parameters, credentials, status, last error, grant
	// and credentials expire time, increments CredentialsVersion and sets UpdateTime (on c
	// too).
	UpdateConnection(ctx context.Context, c *Connection) error
	// DeleteConnection deletes only the connection: ErrInUse while it has subscriptions.
	DeleteConnection(ctx context.Context, workspaceID, id string) error

	// Subscriptions.
	CreateSubscription(ctx context.Context, s *Subscription) error
	GetSubscription(ctx context.Context, workspaceID, id string) (*Subscription, error)
	// LookupSubscription finds a subscription by its unguessable id alone (the receiver).
	LookupSubscription(ctx context.Context, id string) (*Subscription, error)
	ListSubscriptions(ctx context.Context, workspaceID string, connectionID string, p Page) ([]*Subscription, string, error)
	// UpdateSubscription replaces every mutable field and sets UpdateTime; LastEventTime,
	// maintained by CommitDelivery, keeps the later of the stored and the given time. The
	// state is State, or with a StateChange what it makes of the stored state, atomically.
	// ErrNotFound when the subscription does not exist.
	UpdateSubscription(ctx context.Context, s *Subscription) error
	DeleteSubscription(ctx context.Context, workspaceID, id string) error
	// MatchSubscriptions returns the ACTIVE subscriptions routed by a global webhook selector (indexed).
	MatchSubscriptions(ctx context.Context, workspaceID, connectorKey, globalWebhookKey, selector string) ([]*Subscription, error)
	// ClaimDueSubscriptions leases the subscriptions due for background work to c.Owner
	// and returns them (see DueClaim). While a lease holds, no other claim returns the
	// subscription, in this process or in another one sharing the store, so each due
	// refresh and each unsubscribe retry runs once. The owner ends the lease with
	// ReleaseSubscription once the outcome is recorded; a lease whose owner died ends
	// when its TTL runs out.
	ClaimDueSubscriptions(ctx context.Context, c DueClaim) ([]*Subscription, error)
	// ReleaseSubscription ends owner's lease on a subscription. Releasing a lease that
	// owner does not hold (expired and taken by another, or of a deleted subscription)
	// is not an error: it does nothing.
	ReleaseSubscription(ctx context.Context, id, owner string) error

	// Global webhooks.
	EnsureGlobalWebhook(ctx context.Context, g *GlobalWebhook) (*GlobalWebhook, error) // returns the existing one for (workspace, connector, key) or inserts g
	LookupGlobalWebhook(ctx context.Context, id string) (*GlobalWebhook, error)
	ListGlobalWebhooks(ctx context.Context, workspaceID, connectorKey string) ([]*GlobalWebhook, error)

	// Deliveries and events.
	// CommitDelivery writes a delivery, its events and state updates in one transaction,
	// durably (fsync) before it returns. Concurrent calls are group-committed. A delivery
	// ID that exists in another workspace is ErrAlreadyExists. A state update of a
	// subscription that no longer exists is skipped (the events are kept). When events are
	// skipped as duplicates, the delivery records what was new, in the same transaction
	// and in c.Delivery: EventCount is the inserted count, and an OK delivery whose
	// events were all duplicates is DUPLICATE.
	CommitDelivery(ctx context.Context, c *DeliveryCommit) (*CommitResult, error)
	GetDelivery(ctx context.Context, workspaceID, id string) (*Delivery, error)
	// ListDeliveries lists newest (ReceiveTime) first, each page from an index whatever
	// the filter. Listed deliveries say HasRequest but carry no Request (GetDelivery does).
	ListDeliveries(ctx context.Context, workspaceID string, f DeliveryFilter, p Page) ([]*Delivery, string, error)
	// DeliveryEvents returns up to limit of the events delivery d produced, in seq order.
	// d is a delivery as GetDelivery returned it: its events share its ReceiveTime.
	DeliveryEvents(ctx context.Context, workspaceID string, d *Delivery, limit int) ([]*Event, error)
	// ListEvents returns up to limit events with seq > afterSeq in seq order (limit <= 0:
	// 100; at most 10000).
	ListEvents(ctx context.Context, workspaceID string, f EventFilter, afterSeq int64, limit int) ([]*Event, error)
	// LastSeq returns the highest seq of a workspace, 0 when it has no events.
	LastSeq(ctx context.Context, workspaceID string) (int64, error)

	// Consumers.
	GetCursor(ctx context.Context, workspaceID, consumer string) (seq int64, found bool, err error)
	// AckEvents moves the consumer's cursor to seq if seq is greater (never backwards).
	AckEvents(ctx context.Context, workspaceID, consumer string, seq int64) error

	// Retention.
	Prune(ctx context.Context, r Retention) (PruneResult, error)

	Ping(ctx context.Context) error
	Close() error
}

// DueClaim says which subscriptions ClaimDueSubscriptions leases: those in status ACTIVE
// with 0 < NextRefreshTime <= RefreshBefore (a refresh is due), and those in status
// DELETING with NextRefreshTime <= RetryBefore (an unsubscribe to retry; a zero
// NextRefreshTime is due at once), whose lease is free (never taken, released, or
// expired). At most Limit (<= 0: 100) are leased, the earliest NextRefreshTime first (a
// zero time first), each to Owner until TTL from now by the store's clock.
type DueClaim struct {
	Owner         string
	RefreshBefore time.Time
	RetryBefore   time.Time
	Limit         int
	TTL           time.Duration
}

// Retention says what Prune removes: records older than each cutoff (zero: keep).
type Retention struct {
	DeliveriesBefore      time.Time
	IdempotencyKeysBefore time.Time
	EventsBefore          time.Time
}

// PruneResult counts what Prune removed.
type PruneResult struct {
	Deliveries, IdempotencyKeys, Events int64
}
