package core

import (
	"fmt"

	"github.com/hookmap/hookmap/server/secrets"
	"github.com/hookmap/hookmap/server/store"
)

// A subscription's state is sealed as a whole, like credentials: it is small, only core
// reads it (to run a method) and connectors put secrets in it (a hook's secret, an
// endpoint's signing secret), so nothing in it is ever stored in clear and connector
// authors have nothing to mark.

func stateAAD(subscriptionID string) string {
	return "subscription-state:" + subscriptionID
}

// StateSealer returns the function a store uses to seal the state an earlier version
// kept in clear (the state's JSON), the way core seals it.
func StateSealer(box *secrets.Box) func(subscriptionID string, state []byte) ([]byte, error) {
	return func(id string, state []byte) ([]byte, error) { return box.Seal(state, stateAAD(id)) }
}

// SubscriptionState opens a subscription's state ({} when it has none).
func (c *Core) SubscriptionState(sub *store.Subscription) (map[string]any, error) {
	return c.openState(sub.ID, sub.State)
}

func (c *Core) openState(subscriptionID string, sealed []byte) (map[string]any, error) {
	if len(sealed) == 0 {
		return map[string]any{}, nil
	}
	m, err := c.Box.OpenValue(sealed, stateAAD(subscriptionID))
	if err != nil {
		return nil, fmt.Errorf("open the state of subscription %s: %w", subscriptionID, err)
	}
	return m, nil
}

// SealState seals a state for the store, for callers that write a subscription record
// themselves (the subscriptions a connector test starts from).
func (c *Core) SealState(subscriptionID string, state map[string]any) ([]byte, error) {
	return c.sealState(subscriptionID, state)
}

// mergeState is how a method's state changes a subscription's: each key of patch replaces
// the stored key, a null value removes it, and every other stored key stays. A handle that
// returns {cursor} cannot erase the hookId unsubscribe needs; what a handle stored while
// subscribe ran is kept when subscribe's own result is merged over it.
func mergeState(stored, patch map[string]any) map[string]any {
	out := make(map[string]any, len(stored)+len(patch))
	for k, v := range stored {
		out[k] = v
	}
	for k, v := range patch {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// stateMerge returns the store's change (store.Subscription.StateChange,
// store.StateUpdate.Change) merging patch into a subscription's stored state: it opens
// the stored state, merges and seals the result, inside the store's transaction.
func (c *Core) stateMerge(subscriptionID string, patch map[string]any) func([]byte) ([]byte, error) {
	return func(stored []byte) ([]byte, error) {
		cur, err := c.openState(subscriptionID, stored)
		if err != nil {
			return nil, err
		}
		return c.sealState(subscriptionID, mergeState(cur, patch))
	}
}

// sealState seals a subscription's new state.
func (c *Core) sealState(subscriptionID string, state map[string]any) ([]byte, error) {
	sealed, err := c.Box.SealValue(state, stateAAD(subscriptionID))
	if err != nil {
		return nil, fmt.Errorf("seal the state of subscription %s: %w", subscriptionID, err)
	}
	return sealed, nil
}
