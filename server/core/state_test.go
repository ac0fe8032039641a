package core

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/server/secrets"
	"github.com/hookmap/hookmap/server/store"
)

func testCore(t testing.TB) *Core {
	box, err := secrets.NewBox(bytes.Repeat([]byte{3}, secrets.KeySize))
	require.NoError(t, err)
	return &Core{Box: box}
}

// githubState is a typical state: a hook id and its secret.
var githubState = map[string]any{"hookId": int64(9007199254740993), "secret": "kq3v7d2mxo5zq4hbc6tjw2ylsu3y2t7n4c3dqbeim"}

func TestStateSealed(t *testing.T) {
	c := testCore(t)
	sealed, err := c.sealState("sub-1", githubState)
	require.NoError(t, err)
	require.NotContains(t, string(sealed), "kq3v7d2m")

	got, err := c.SubscriptionState(&store.Subscription{ID: "sub-1", State: sealed})
	require.NoError(t, err)
	require.Equal(t, githubState, got, "integers stay exact")

	_, err = c.SubscriptionState(&store.Subscription{ID: "sub-2", State: sealed})
	require.ErrorIs(t, err, secrets.ErrDecrypt, "a state copied to another subscription does not open")
	require.ErrorContains(t, err, "sub-2")

	got, err = c.SubscriptionState(&store.Subscription{ID: "sub-3"})
	require.NoError(t, err)
	require.Equal(t, map[string]any{}, got, "no state reads as {}")

	// What a store's upgrade seals from clear JSON opens the same way.
	legacy, err := StateSealer(c.Box)("sub-4", []byte(`{"hookId":9007199254740993,"secret":"kq3v7d2mxo5zq4hbc6tjw2ylsu3y2t7n4c3dqbeim"}`))
	require.NoError(t, err)
	got, err = c.SubscriptionState(&store.Subscription{ID: "sub-4", State: legacy})
	require.NoError(t, err)
	require.Equal(t, githubState, got)
}

// BenchmarkState is what sealing costs a delivery: opening the state (every delivery to a
// subscription) and sealing a new one (a handle that returns state).
//
//	go test ./server/core -run '^$' -bench BenchmarkState
func BenchmarkState(b *testing.B) {
	c := testCore(b)
	sealed, err := c.sealState("sub-1", githubState)
	require.NoError(b, err)
	sub := &store.Subscription{ID: "sub-1", State: sealed}
	b.Run("open", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.SubscriptionState(sub); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("seal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.sealState("sub-1", githubState); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A method's state over the value limits is refused before it is merged and sealed, from
// a handle and from a fetch alike.
func TestMethodStateOverLimitsRefused(t *testing.T) {
	deep := any("x")
	for range value.MaxDepth + 1 {
		deep = map[string]any{"k": deep}
	}
	out := map[string]any{"state": deep}
	_, err := parseHandleResult(out, false, "handle.map.yml")
	require.ErrorIs(t, err, value.ErrTooDeep)
	_, err = parseFetchResult(out, "fetch.map.yml")
	require.ErrorIs(t, err, value.ErrTooDeep)

	hr, err := parseFetchResult(map[string]any{"state": map[string]any{"cursor": "c1"}}, "fetch.map.yml")
	require.NoError(t, err)
	require.True(t, hr.hasState)
	require.Equal(t, "c1", hr.state["cursor"])
}
