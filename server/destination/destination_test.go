package destination

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hookmap/hookmap/server/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The backoff doubles from RetryBase up to RetryCap, within ±50%.
func TestBackoff(t *testing.T) {
	t.Parallel()
	s := &Service{cfg: Config{RetryBase: time.Second, RetryCap: time.Minute}}
	for _, tc := range []struct {
		attempts int
		nominal  time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {6, 32 * time.Second}, {7, time.Minute}, {500, time.Minute}} {
		for range 50 {
			d := s.backoff(tc.attempts)
			require.GreaterOrEqual(t, d, tc.nominal/2, "attempt %d", tc.attempts)
			require.LessOrEqual(t, d, tc.nominal*3/2, "attempt %d", tc.attempts)
		}
	}
}

// The body is the Standard Webhooks payload shape with the event as the API streams it;
// integers stay exact.
func TestEnvelope(t *testing.T) {
	t.Parallel()
	at := time.Date(2031, 5, 6, 7, 8, 9, 123456000, time.UTC)
	b, err := Envelope(&store.Event{
		Seq: 12, ID: "ev-1", ConnectionID: "conn", SubscriptionID: "sub", EventKey: "issues", Type: "issue.opened",
		Record: map[string]any{"id": int64(9007199254740993)}, ExternalID: "x-1", DeliveryID: "dlv", ReceiveTime: at,
	})
	require.NoError(t, err)
	require.JSONEq(t, `{"type": "issue.opened", "timestamp": "2031-05-06T07:08:09.123456Z", "data": {
		"seq": 12, "id": "ev-1", "connection_id": "conn", "subscription_id": "sub", "event_key": "issues",
		"type": "issue.opened", "record": {"id": 9007199254740993}, "external_id": "x-1", "delivery_id": "dlv",
		"receive_time": "2031-05-06T07:08:09.123456Z"}}`, string(b))
	require.Contains(t, string(b), `9007199254740993`)
	require.True(t, json.Valid(b))
}
