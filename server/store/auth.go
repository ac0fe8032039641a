package store

import (
	"context"
	"time"
)

// AuthState is one authorization a user was sent to make in an external app (the OAuth
// 2.0 authorization code flow): what the callback needs to finish it. The state token
// itself is never stored, only its hash, so a copy of the database cannot complete a flow.
type AuthState struct {
	// Hash is the SHA-256 of the state parameter given to the app.
	Hash         []byte
	WorkspaceID  string
	ConnectionID string
	// Verifier is the PKCE code verifier, sealed by the caller; nil without PKCE.
	Verifier []byte
	// ReturnURL is where the callback sends the user's browser afterwards; "" for none.
	ReturnURL  string
	CreateTime time.Time
	ExpireTime time.Time
}

// AuthStore keeps what connections whose credentials renew themselves (OAuth 2.0) need
// beyond the connection record. Every method is safe for concurrent use.
type AuthStore interface {
	// SetConnectionAuth replaces c's credentials, status, last error, grant and
	// credentials expire time if the stored CredentialsVersion still is
	// c.CredentialsVersion, then increments it and sets UpdateTime (on c too). It returns
	// ErrConflict when the version moved (another writer renewed or replaced the
	// credentials) and ErrNotFound when the connection does not exist. events (connection
	// events: no subscription, no external id) are appended to the workspace's events in
	// the same transaction, and get their Seq.
	SetConnectionAuth(ctx context.Context, c *Connection, events ...*Event) error
	// CreateAuthState stores s: ErrNotFound when its connection does not exist,
	// ErrAlreadyExists on a duplicate hash. Deleting the connection deletes its states.
	CreateAuthState(ctx context.Context, s *AuthState) error
	// ConsumeAuthState deletes the state with hash and returns it (an expired one too: the
	// caller checks ExpireTime); ErrNotFound when there is none. A state is consumed once.
	ConsumeAuthState(ctx context.Context, hash []byte) (*AuthState, error)
	// PruneAuthStates deletes the states that expired before before and returns how many.
	PruneAuthStates(ctx context.Context, before time.Time) (int64, error)

	// ClaimRenewal leases the renewal of a connection's credentials to owner for ttl (by
	// the store's clock), so that processes sharing the store renew a connection once: it
	// returns false while another owner holds a live lease (owner's own lease is taken
	// again). Any write of the credentials (SetConnectionAuth, UpdateConnection) ends the
	// lease; ErrNotFound when the connection does not exist.
	ClaimRenewal(ctx context.Context, workspaceID, id, owner string, ttl time.Duration) (bool, error)
	// ReleaseRenewal ends owner's lease on a connection's renewal; releasing a lease that
	// owner does not hold (expired, taken over, ended by a write) does nothing.
	ReleaseRenewal(ctx context.Context, workspaceID, id, owner string) error
}
