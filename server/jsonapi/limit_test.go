package jsonapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/hookmap/hookmap/proto/gen/hookmap/v1" // the services' schemas
)

// TestMessageBound: a request message over MaxMessageBytes is refused by the transcoder,
// which reads no more of it than the bound, also when it comes without a length (which
// the transcoder reads whole to measure); one within it reaches the server.
func TestMessageBound(t *testing.T) {
	var reached atomic.Int64
	server := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Grpc-Status", "0")
		w.WriteHeader(http.StatusOK)
	})
	h, err := New(server, []string{"hookmap.v1.EventService"}, false, MaxMessageBytes)
	require.NoError(t, err)
	call := func(size int) *httptest.ResponseRecorder {
		pad := strings.Repeat("x", size)
		body := io.MultiReader(strings.NewReader(`{"page_token": "`), strings.NewReader(pad), strings.NewReader(`"}`))
		r := httptest.NewRequest(http.MethodPost, Prefix+"/hookmap.v1.EventService/ListEvents", body)
		r.ContentLength = -1 // no length: read whole to be measured
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := call(MaxMessageBytes + 1)
	require.Equal(t, http.StatusTooManyRequests, w.Code, w.Body.String()) // Connect's resource_exhausted
	require.Contains(t, w.Body.String(), `"resource_exhausted"`)
	require.Contains(t, w.Body.String(), "max buffer size (8388608) exceeded")
	reached.Store(0)
	w = call(1 << 20)
	require.NotContains(t, w.Body.String(), "resource_exhausted")
	require.EqualValues(t, 1, reached.Load(), "a message within the bound reaches the server")
}
