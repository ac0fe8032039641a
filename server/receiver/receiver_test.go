package receiver

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// TestLogsNameTheRequest: what the receiver logs of a request names it by the id its
// answer carries in X-Request-Id.
func TestLogsNameTheRequest(t *testing.T) {
	var logs bytes.Buffer
	rc, sub := testReceiver(t, slog.New(slog.NewJSONHandler(&logs, nil)), false)
	h := rc.Handler()
	ids := map[string]bool{}
	for _, body := range []string{`{"id": "w-1"}`, `{"id": `} { // no action: FAILED; malformed: REJECTED
		logs.Reset()
		req := httptest.NewRequest(http.MethodPost, "/hooks/"+sub.ID, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		require.NotEqual(t, http.StatusOK, w.Code, w.Body.String())
		id := w.Header().Get("X-Request-Id")
		u, err := uuid.Parse(id)
		require.NoError(t, err)
		require.Equal(t, uuid.Version(4), u.Version())
		require.Equal(t, uuid.RFC4122, u.Variant())
		require.False(t, ids[id], "a new id for every request")
		ids[id] = true
		var line struct {
			Msg       string `json:"msg"`
			RequestID string `json:"request_id"`
		}
		require.NoError(t, json.Unmarshal(logs.Bytes(), &line), logs.String())
		require.Contains(t, line.Msg, "delivery")
		require.Equal(t, id, line.RequestID)
	}
}

// TestLatencyByStatus: every webhook's latency is recorded under its answer's status code,
// each code's series apart, however often it is seen.
func TestLatencyByStatus(t *testing.T) {
	rc, sub := testReceiver(t, slog.New(slog.DiscardHandler), false)
	h := rc.Handler()
	send := func(path, body string) int {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	for range 3 {
		require.Equal(t, http.StatusOK, send("/hooks/"+sub.ID, `{"id": "w-1", "action": "opened", "user": {"login": "o"}}`))
	}
	require.Equal(t, http.StatusNotFound, send("/hooks/no-such-subscription", `{}`))
	count := func(code string) uint64 {
		m := &dto.Metric{}
		o, err := rc.Metrics.ReceiverLatency.GetMetricWithLabelValues(code)
		require.NoError(t, err)
		require.NoError(t, o.(prometheus.Metric).Write(m))
		return m.GetHistogram().GetSampleCount()
	}
	require.Equal(t, uint64(3), count("200"))
	require.Equal(t, uint64(1), count("404"))
}
