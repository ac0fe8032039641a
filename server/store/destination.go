package store

import (
	"context"
	"time"
)

// Destination statuses.
const (
	DestinationActive = "ACTIVE"
	DestinationPaused = "PAUSED"
	// DestinationDisabled: the endpoint answered 410 Gone, or its webhook can no longer be
	// used; StatusReason says which.
	DestinationDisabled = "DISABLED"
)

// States of a queued destination event.
const (
	DestinationEventPending = "PENDING" // to be sent, or being retried
	DestinationEventFailed  = "FAILED"  // parked after its retry window; retried only on request
)

// Destination pushes the events of a filter to a registered outgoing webhook. Under the
// hood it is a durable consumer: Cursor is the highest seq it has queued (or skipped as
// not matching the filter), and its queued events wait in DestinationEvents until their
// endpoint acknowledges them.
type Destination struct {
	WorkspaceID  string
	ID           string // chosen by the client, unique per workspace
	WebhookID    string
	Filter       EventFilter
	RetryWindow  time.Duration // how long a failing event is retried before it is parked
	Status       string        // Destination*
	StatusReason string
	Cursor       int64
	// Output only, maintained by the store.
	Delivered        int64     // events acknowledged by the endpoint
	LastDeliveryTime time.Time // of the last acknowledged event
	Pending, Failed  int64     // queued events by state, counted when read
	CreateTime       time.Time
	UpdateTime       time.Time
}

// DestinationEvent is an event queued for a destination.
type DestinationEvent struct {
	WorkspaceID   string
	DestinationID string
	Seq           int64
	EventID       string
	// SubscriptionID and ConnectionID are the event's; a connection event has no
	// subscription. Events of one Lane are sent in seq order.
	SubscriptionID   string
	ConnectionID     string
	State            string // DestinationEvent*
	Attempts         int
	FirstAttemptTime time.Time // zero until the first attempt
	NextAttemptTime  time.Time // when a PENDING event is due
	LastStatus       int       // HTTP status of the last attempt; 0 when none or unreachable
	LastError        string
}

// Lane is the ordering key of a queued event: its subscription, or for a connection
// event (no subscription) its connection.
func (e *DestinationEvent) Lane() string {
	if e.SubscriptionID != "" {
		return e.SubscriptionID
	}
	return "connection/" + e.ConnectionID
}

// DestinationStore keeps destinations and their queued events. Methods taking a
// workspace id never see another workspace's records (ErrNotFound instead).
type DestinationStore interface {
	// CreateDestination inserts d: ErrAlreadyExists when the workspace has a destination
	// with its ID, ErrNotFound when the workspace does not exist. Zero times are set to now.
	CreateDestination(ctx context.Context, d *Destination) error
	GetDestination(ctx context.Context, workspaceID, id string) (*Destination, error)
	// ListDestinations lists the workspace's destinations in creation order.
	ListDestinations(ctx context.Context, workspaceID string, p Page) ([]*Destination, string, error)
	// ListDestinationsByStatus returns every workspace's destinations with a status (the
	// sender looks for the ACTIVE ones), ordered by workspace and id.
	ListDestinationsByStatus(ctx context.Context, status string) ([]*Destination, error)
	// UpdateDestination replaces WebhookID, Filter and RetryWindow and sets UpdateTime.
	UpdateDestination(ctx context.Context, d *Destination) error
	// SetDestinationStatus sets the status and its reason.
	SetDestinationStatus(ctx context.Context, workspaceID, id, status, reason string) error
	// DeleteDestination deletes a destination and its queued events.
	DeleteDestination(ctx context.Context, workspaceID, id string) error

	// EnqueueDestinationEvents queues events (one already queued is kept as it is) and
	// moves the cursor to cursor unless it is already further, in one transaction.
	EnqueueDestinationEvents(ctx context.Context, workspaceID, id string, events []*DestinationEvent, cursor int64) error
	// DestinationHeads returns, for up to limit lanes (DestinationEvent.Lane), the PENDING
	// event with the lowest seq of each (the only one of its lane that may be sent),
	// ordered by NextAttemptTime then seq.
	DestinationHeads(ctx context.Context, workspaceID, id string, limit int) ([]*DestinationEvent, error)
	// CompleteDestinationEvent removes an acknowledged event and counts it as delivered at
	// at. ErrNotFound when it is not queued.
	CompleteDestinationEvent(ctx context.Context, workspaceID, id string, seq int64, at time.Time) error
	// UpdateDestinationEvent replaces the state, attempts, times, last status and error of
	// a queued event (e.WorkspaceID, e.DestinationID, e.Seq). ErrNotFound when it is not
	// queued.
	UpdateDestinationEvent(ctx context.Context, e *DestinationEvent) error
	// GetDestinationEvent returns a queued event; ErrNotFound when it is not queued.
	GetDestinationEvent(ctx context.Context, workspaceID, id string, seq int64) (*DestinationEvent, error)
	// ListDestinationEvents lists queued events in seq order, of one state ("" for all).
	ListDestinationEvents(ctx context.Context, workspaceID, id, state string, p Page) ([]*DestinationEvent, string, error)
	// RetryDestinationEvents makes FAILED events PENDING again, with no attempt made and
	// due at at: the one with seq, or every one when seq is 0. It returns how many; with a
	// seq that is not a FAILED event, ErrNotFound.
	RetryDestinationEvents(ctx context.Context, workspaceID, id string, seq int64, at time.Time) (int64, error)

	// AcquireDestinationLease makes owner the destination's one sender until until, when
	// the lease is free, has expired (before now) or is already owner's; it reports
	// whether owner holds it. ErrNotFound when the destination does not exist.
	AcquireDestinationLease(ctx context.Context, workspaceID, id, owner string, now, until time.Time) (bool, error)
	// ReleaseDestinationLease frees the lease if owner holds it.
	ReleaseDestinationLease(ctx context.Context, workspaceID, id, owner string) error
}
