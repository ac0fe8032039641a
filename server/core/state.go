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
	if len(sub.State) == 0 {
		return map[string]any{}, nil
	}
	m, err := c.Box.OpenValue(sub.State, stateAAD(sub.ID))
	if err != nil {
		return nil, fmt.Errorf("open the state of subscription %s: %w", sub.ID, err)
	}
	return m, nil
}

// sealState seals a subscription's new state.
func (c *Core) sealState(subscriptionID string, state map[string]any) ([]byte, error) {
	sealed, err := c.Box.SealValue(state, stateAAD(subscriptionID))
	if err != nil {
		return nil, fmt.Errorf("seal the state of subscription %s: %w", subscriptionID, err)
	}
	return sealed, nil
}
