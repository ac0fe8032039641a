// Package storetest is the conformance suite of store.Store: every implementation runs
// RunAll in its tests. The suite uses only the store package, so it runs unchanged against
// any backend.
package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

// RunAll runs every conformance test, each as a parallel subtest on its own store.
//
// open returns a new, empty store for one test (DueSubscriptions and Prune see every
// workspace, so stores must not share data). It arranges the store's Close with t.Cleanup,
// ignoring the error of a second Close: the Close test closes the store itself.
//
// Times given to the store in the suite have microsecond precision; a backend must return
// them unchanged (in UTC) and set the times it chooses itself (CreateTime, UpdateTime) on
// the given record.
func RunAll(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Workspaces", testWorkspaces},
		{"WorkspacePagination", testWorkspacePagination},
		{"APIKeys", testAPIKeys},
		{"ConnectorParameters", testConnectorParameters},
		{"Connections", testConnections},
		{"ConnectionPagination", testConnectionPagination},
		{"PageSizeCap", testPageSizeCap},
		{"DeleteConnectionWithSubscriptions", testDeleteConnectionInUse},
		{"Subscriptions", testSubscriptions},
		{"SubscriptionPagination", testSubscriptionPagination},
		{"UpdateSubscription", testUpdateSubscription},
		{"MatchSubscriptions", testMatchSubscriptions},
		{"ClaimDueSubscriptions", testClaimDueSubscriptions},
		{"LeaseExpiry", testLeaseExpiry},
		{"ConcurrentClaims", testConcurrentClaims},
		{"ReadsAfterWrites", testReadsAfterWrites},
		{"ReturnedValuesAreCopies", testReturnedValuesAreCopies},
		{"GlobalWebhooks", testGlobalWebhooks},
		{"EnsureGlobalWebhookRace", testEnsureGlobalWebhookRace},
		{"CommitDelivery", testCommitDelivery},
		{"Duplicates", testDuplicates},
		{"StateUpdates", testStateUpdates},
		{"ReplayReplacesDelivery", testReplay},
		{"DeliveryIsolation", testDeliveryIsolation},
		{"DeliveryPagination", testDeliveryPagination},
		{"DeliveryEvents", testDeliveryEvents},
		{"ListEventsFilter", testListEventsFilter},
		{"ListEventsJSONRecords", testListEventsJSONRecords},
		{"EventsOutliveSubscription", testEventsOutliveSubscription},
		{"Consumers", testConsumers},
		{"ConcurrentCommits", testConcurrentCommits},
		{"BadWriteFailsAlone", testBadWriteFailsAlone},
		{"CanceledContext", testCanceledContext},
		{"Prune", testPrune},
		{"OutgoingWebhooks", testOutgoingWebhooks},
		{"OutgoingWebhookPagination", testOutgoingWebhookPagination},
		{"OutgoingInvocations", testOutgoingInvocations},
		{"Ping", testPing},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// base is the suite's reference time. Times in the suite keep microseconds, the precision
// every backend stores.
var base = time.Date(2031, 5, 6, 7, 8, 9, 123456000, time.UTC)

func at(d time.Duration) time.Time { return base.Add(d) }

var idCounter atomic.Int64

// newID returns an id unique in the process.
func newID(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, idCounter.Add(1))
}

func ctxOf(t *testing.T) context.Context { return t.Context() }

func mkWorkspace(t *testing.T, s store.Store) string {
	t.Helper()
	id := newID("ws")
	require.NoError(t, s.CreateWorkspace(ctxOf(t), &store.Workspace{ID: id, Name: "Workspace " + id, CreateTime: base}))
	return id
}

func mkConnection(t *testing.T, s store.Store, ws string) *store.Connection {
	t.Helper()
	c := &store.Connection{
		WorkspaceID: ws, ID: newID("conn"), ConnectorKey: "github", Name: "acme",
		Parameters:  map[string]any{"baseUri": "https://api.example.com"},
		Credentials: []byte("sealed-credentials"),
		CreateTime:  base, UpdateTime: base,
	}
	require.NoError(t, s.CreateConnection(ctxOf(t), c))
	return c
}

func subscriptionOf(c *store.Connection) *store.Subscription {
	return &store.Subscription{
		WorkspaceID: c.WorkspaceID, ID: newID("sub"), ConnectionID: c.ID, ConnectorKey: c.ConnectorKey,
		EventKey: "issues", Status: store.StatusActive,
		Parameters: map[string]any{"owner": "acme", "repo": "hooks"},
		State:      []byte("sealed-state"),
		CreateTime: base, UpdateTime: base,
	}
}

func mkSubscription(t *testing.T, s store.Store, c *store.Connection, edit ...func(*store.Subscription)) *store.Subscription {
	t.Helper()
	sub := subscriptionOf(c)
	for _, e := range edit {
		e(sub)
	}
	require.NoError(t, s.CreateSubscription(ctxOf(t), sub))
	return sub
}

// eventRecordJSON is the JSON text of eventOf's record.
const eventRecordJSON = `{"closed_at":null,"id":1234567890123,"labels":["a",2],"open":true,"score":0.5,"title":"Bug","user":{"login":"octo","site_admin":false}}`

// eventOf is an event of sub with a realistic record.
func eventOf(sub *store.Subscription, typ, externalID string, received time.Time) *store.Event {
	return &store.Event{
		ID: newID("ev"), WorkspaceID: sub.WorkspaceID, ConnectionID: sub.ConnectionID, SubscriptionID: sub.ID,
		EventKey: sub.EventKey, Type: typ, ExternalID: externalID, ReceiveTime: received,
		Record: map[string]any{
			"id": int64(1234567890123), "title": "Bug", "score": 0.5, "open": true, "labels": []any{"a", int64(2)},
			"user": map[string]any{"login": "octo", "site_admin": false}, "closed_at": nil,
		},
	}
}

func deliveryOf(sub *store.Subscription, received time.Time) *store.Delivery {
	return &store.Delivery{
		ID: newID("dlv"), WorkspaceID: sub.WorkspaceID, SubscriptionID: sub.ID, ReceiveTime: received,
		StatusCode: 200, Outcome: store.OutcomeOK, RequestSize: 321,
	}
}

// commit commits a delivery of sub with the events, each stamped with the delivery's id.
func commit(t *testing.T, s store.Store, d *store.Delivery, events ...*store.Event) *store.CommitResult {
	t.Helper()
	for _, ev := range events {
		ev.DeliveryID = d.ID
	}
	d.EventCount = len(events)
	res, err := s.CommitDelivery(ctxOf(t), &store.DeliveryCommit{Delivery: d, Events: events})
	require.NoError(t, err)
	return res
}

// allEvents lists every event of the workspace matching f, page by page.
func allEvents(t *testing.T, s store.Store, ws string, f store.EventFilter) []*store.Event {
	t.Helper()
	var out []*store.Event
	after := int64(0)
	for {
		page, err := s.ListEvents(ctxOf(t), ws, f, after, 100)
		require.NoError(t, err)
		out = append(out, page...)
		if len(page) < 100 {
			return out
		}
		after = page[len(page)-1].Seq
	}
}

func seqsOf(events []*store.Event) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.Seq
	}
	return out
}

// requireIncreasing fails unless seqs strictly increase.
func requireIncreasing(t *testing.T, seqs []int64) {
	t.Helper()
	for i := 1; i < len(seqs); i++ {
		require.Greater(t, seqs[i], seqs[i-1], "seqs %v not increasing at %d", seqs, i)
	}
}
