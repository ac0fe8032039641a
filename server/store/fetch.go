package store

import (
	"context"
	"errors"
	"time"
)

// Fetch statuses: of a Fetch (pending, retrying, failed) and, summarising its fetches,
// of a Delivery (Delivery.FetchStatus, which is also OK once every fetch is done).
const (
	FetchPending  = "PENDING"  // waiting for its first run
	FetchRetrying = "RETRYING" // a run failed; tried again at NextAttemptTime
	FetchOK       = "OK"       // a delivery's fetches are all done
	FetchFailed   = "FAILED"   // given up; ReplayDelivery queues it again
)

// ErrLeaseLost is returned by FinishFetch and FailFetch when the fetch's lease is no
// longer the caller's (it expired and another run claimed it, or the fetch is gone):
// nothing was written.
var ErrLeaseLost = errors.New("fetch lease lost")

// Fetch is a run of an event's fetch method that a delivery asked for: it is inserted in
// the delivery's own transaction (so a crash between the receiver's 2xx and the run
// loses nothing) and deleted once a run committed its events.
type Fetch struct {
	ID             string
	WorkspaceID    string
	SubscriptionID string
	DeliveryID     string
	// DeliveryTime is the delivery's ReceiveTime: the fetched events carry it, as the
	// events of the delivery itself do (DeliveryEvents finds them by it).
	DeliveryTime time.Time
	// Data is the fetch method's delivery.data: what handle asked to fetch (a plain value).
	Data any
	// Status is FetchPending, FetchRetrying or FetchFailed.
	Status string
	// Attempts counts the failed runs since the fetch was queued (or queued again).
	Attempts int
	// Runs counts the runs that committed events and asked for more (a page of a backlog).
	Runs            int
	NextAttemptTime time.Time
	LastError       string
	CreateTime      time.Time

	// LeaseToken and LeaseUntil are set by ClaimFetches: FinishFetch and FailFetch succeed
	// only while the fetch is still leased with this token.
	LeaseToken string
	LeaseUntil time.Time
}

// FetchClaim says which fetches ClaimFetches leases.
type FetchClaim struct {
	// Now is the time of the claim: leases that end before it have expired.
	Now time.Time
	// Due takes the fetches whose NextAttemptTime is at or before it; zero means Now.
	Due time.Time
	// LeaseFor is how long the claimed fetches are leased (from Now).
	LeaseFor time.Duration
	// Limit is the most fetches claimed (at most one per subscription).
	Limit int
	// SubscriptionID, when set, claims only that subscription's fetch.
	SubscriptionID string
}

// FetchDone is what a successful run of a fetch commits.
type FetchDone struct {
	// Events get their Seq assigned; duplicates are skipped as in CommitDelivery.
	Events []*Event
	// StateUpdate, when its SubscriptionID is set, changes the subscription's state.
	StateUpdate StateUpdate
	// More keeps the fetch queued for another run right away (the app has more to give):
	// it stays due, its Runs grows by one, its Attempts restart from zero.
	More bool
}

// FetchFailure is a failed run of a fetch.
type FetchFailure struct {
	// Error says why; it becomes the fetch's LastError.
	Error string
	// DeliveryError is what the delivery's Error says meanwhile.
	DeliveryError string
	// NextAttemptTime is when to run it again; ignored when GiveUp.
	NextAttemptTime time.Time
	// GiveUp marks the fetch FAILED (and its delivery's Outcome FAILED) until
	// RetryFailedFetches queues it again.
	GiveUp bool
}

// FetchStore keeps the fetches deliveries ask for. A store implements it beside Store;
// every method is safe for concurrent use.
//
// A delivery with fetches records their progress in its FetchStatus (PENDING while none
// has failed, RETRYING while one is being retried, FAILED once one was given up, OK once
// all are done), FetchAttempts (the most failed attempts of its fetches) and, when a
// fetch fails, Error; a successful run adds the events it inserted to EventCount.
type FetchStore interface {
	// CommitDeliveryWithFetches is CommitDelivery that also inserts fetches, in the same
	// transaction: each PENDING, due at its NextAttemptTime. The delivery's FetchStatus
	// is set to PENDING (and FetchAttempts to 0) when there are fetches.
	CommitDeliveryWithFetches(ctx context.Context, c *DeliveryCommit, fetches []*Fetch) (*CommitResult, error)

	// ClaimFetches leases up to c.Limit fetches that are due, at most one per
	// subscription: the oldest unfinished (PENDING or RETRYING) fetch of a subscription,
	// when no lease on it is running, so that a subscription's fetches run one at a time
	// in the order of their deliveries. The returned fetches carry their lease.
	ClaimFetches(ctx context.Context, c FetchClaim) ([]*Fetch, error)

	// FinishFetch commits a successful run of f: its events, its state update and the
	// fetch's end (deleted, or with More kept first in line). The delivery's EventCount
	// grows by the events inserted and its fetch status is summarised again.
	// ErrLeaseLost (nothing written) when f's lease is not held any more.
	FinishFetch(ctx context.Context, f *Fetch, done *FetchDone) (*CommitResult, error)

	// FailFetch records a failed run of f and ends its lease. ErrLeaseLost when f's
	// lease is not held any more.
	FailFetch(ctx context.Context, f *Fetch, fail FetchFailure) error

	// ReleaseFetch ends f's lease without counting a run (the server is stopping). A lease
	// that is not held any more is left alone.
	ReleaseFetch(ctx context.Context, f *Fetch) error

	// RetryFailedFetches queues a delivery's FAILED fetches again (PENDING, due at now,
	// attempts from zero); the delivery's Outcome is OK again. It returns how many.
	RetryFailedFetches(ctx context.Context, workspaceID, deliveryID string, now time.Time) (int, error)

	// DeliveryFetches returns a delivery's unfinished and failed fetches, oldest first.
	DeliveryFetches(ctx context.Context, workspaceID, deliveryID string) ([]*Fetch, error)

	// PruneFetches deletes the FAILED fetches created before the cutoff.
	PruneFetches(ctx context.Context, before time.Time) (int64, error)
}
