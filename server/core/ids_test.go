package core

import (
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestTimeIDs: ids are UUIDs version 7 of the current millisecond, each above the one
// before in string order, and unique across goroutines.
func TestTimeIDs(t *testing.T) {
	before := time.Now()
	prev := ""
	for range 10_000 {
		id := newTimeID()
		require.Greater(t, id, prev)
		prev = id
	}
	u, err := uuid.Parse(prev)
	require.NoError(t, err)
	require.Equal(t, uuid.Version(7), u.Version())
	require.Equal(t, uuid.RFC4122, u.Variant())
	sec, nsec := u.Time().UnixTime()
	at := time.Unix(sec, nsec)
	require.False(t, at.Before(before.Truncate(time.Millisecond)), "%s is before %s", at, before)
	require.False(t, at.After(time.Now().Add(time.Second)), "%s is in the future", at)

	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			ids := make([]string, 5000)
			for i := range ids {
				ids[i] = newTimeID()
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				require.False(t, seen[id], "duplicate %s", id)
				seen[id] = true
			}
		})
	}
	wg.Wait()
}
