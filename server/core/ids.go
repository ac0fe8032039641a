package core

import "github.com/google/uuid"

// newTimeID returns a UUID version 7: unique like a random UUID, but ordered by creation
// time (to the millisecond, then by a counter within the process). Deliveries, events and
// fetches are keyed by such ids, so the store's indexes on them grow at their right
// edge: a commit appends to the last page of each index instead of writing one random
// page per new record.
func newTimeID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// NewV7 fails only when the system's random source does, as NewString would.
		return uuid.NewString()
	}
	return id.String()
}
