package core

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDefaultReply: a handle without a response is answered {"received": N}, from the
// shared replies up to 64 events and encoded past them.
func TestDefaultReply(t *testing.T) {
	for _, n := range []int{0, 1, 2, 63, 64, 65, MaxEventsPerDelivery} {
		r, err := buildReply(nil, n)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.Status)
		require.Equal(t, http.Header{"Content-Type": {"application/json"}}, r.Header)
		require.JSONEq(t, `{"received": `+strconv.Itoa(n)+`}`, string(r.Body))
		require.Equal(t, `{"received":`+strconv.Itoa(n)+`}`, string(r.Body))
	}
}
