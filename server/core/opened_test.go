package core

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookmap/hookmap/server/store"
)

// probe is a core with the probe connector (testdata/probe) and an ACTIVE subscription to
// one of its events, whose connection has credentials and whose workspace has connector
// parameters.
type probe struct {
	t     *testing.T
	c     *Core
	subID string
	conn  string
	seq   int64
}

func newProbe(t *testing.T, event string) *probe {
	ctx := context.Background()
	c := storeCore(t, "testdata")
	require.NoError(t, c.SetConnectorParameters(ctx, testWorkspace, "probe", map[string]any{"signing": "s1", "nums": []any{int64(1), int64(2)}}))
	conn, err := c.CreateConnection(ctx, testWorkspace, ConnectionInput{
		ConnectorKey: "probe",
		Parameters:   map[string]any{"region": "eu", "limits": map[string]any{"max": int64(3)}},
		Credentials:  map[string]any{"token": "t1", "scopes": []any{"a", "b"}, "n": int64(5)},
	})
	require.NoError(t, err)
	sub, err := c.CreateSubscription(ctx, testWorkspace, SubscriptionInput{ConnectionID: conn.ID, EventKey: event, Parameters: map[string]any{"p": "v"}})
	require.NoError(t, err)
	require.Equal(t, store.StatusActive, sub.Status)
	return &probe{t: t, c: c, subID: sub.ID, conn: conn.ID}
}

// deliver posts body to the subscription, read from the store as the receiver reads it,
// and returns the record of its one event.
func (p *probe) deliver(body string) map[string]any {
	p.t.Helper()
	return p.deliverTo("", http.Header{}, body)
}

// deliverTo posts body with query and header to the subscription, and returns the record
// of its one event.
func (p *probe) deliverTo(query string, header http.Header, body string) map[string]any {
	p.t.Helper()
	res := p.post(query, header, body)
	require.Equal(p.t, store.OutcomeOK, res.Delivery.Outcome, res.Delivery.Error)
	evs, err := p.c.Store.ListEvents(context.Background(), testWorkspace, store.EventFilter{SubscriptionIDs: []string{p.subID}}, p.seq, 0)
	require.NoError(p.t, err)
	require.Len(p.t, evs, 1)
	p.seq = evs[0].Seq
	return evs[0].Record.(map[string]any)
}

// cached returns what the cache holds for the subscription, after checking that each
// value is exactly what opening its sealed bytes gives.
func (p *probe) cached() *openedVars {
	p.t.Helper()
	o := p.c.opened.get(p.subID)
	require.NotNil(p.t, o)
	creds, err := p.c.Box.OpenValue(o.creds.sealed, credentialsAAD(testWorkspace, p.conn))
	require.NoError(p.t, err)
	require.Equal(p.t, creds, o.creds.v, "credentials")
	params, err := p.c.Box.OpenValue(o.params.sealed, connectorParamsAAD(testWorkspace, "probe"))
	require.NoError(p.t, err)
	require.Equal(p.t, params, o.params.v, "connector parameters")
	state, err := p.c.openState(p.subID, o.state.sealed)
	require.NoError(p.t, err)
	require.Equal(p.t, state, o.state.v, "state")
	secret, err := p.c.WebhookSecret(&store.Subscription{ID: p.subID, WebhookSecret: o.secret.sealed})
	require.NoError(p.t, err)
	require.Equal(p.t, secret, o.secret.v, "webhook secret")
	return o
}

// post posts body with query and header to the subscription, read from the store as the
// receiver reads it.
func (p *probe) post(query string, header http.Header, body string) *Result {
	p.t.Helper()
	ctx := context.Background()
	sub, err := p.c.Store.LookupSubscription(ctx, p.subID)
	require.NoError(p.t, err)
	header.Set("Content-Type", "application/json")
	in := &Incoming{
		Method: http.MethodPost, Path: "/hooks/" + sub.ID, RawQuery: query, Header: header,
		Body: []byte(body), URL: p.c.publicRequestURL("/hooks/"+sub.ID, query), Received: time.Now().UTC(),
	}
	return p.c.HandleSubscriptionDelivery(ctx, sub, in, nil, nil)
}

func sameMap(a, b map[string]any) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// TestOpenedValuesAreNotChanged: the values a subscription's handles see of its sealed
// values are opened once and shared by its deliveries, so nothing may change them. The
// probe's verify block and handle read them with every kind of formula (CEL, with a loop
// and jmespath(); JMESPath, plain, number-sensitive and over the whole document; $var;
// $tpl) and return them in the record; after each delivery the cached values must still be
// exactly what their sealed bytes open to. An engine that converted a variable in place
// (JMESPath's float64 numbers) or a caller that changed a record would fail it.
func TestOpenedValuesAreNotChanged(t *testing.T) {
	p := newProbe(t, "echo")
	hook := map[string]any{"id": int64(7), "name": "hook", "ids": []any{int64(1), int64(2), int64(3)}, "big": int64(9007199254740993), "ratio": 0.5, "on": true, "none": nil}
	wantState := map[string]any{"hook": hook}
	wantCreds := map[string]any{"token": "t1", "scopes": []any{"a", "b"}, "n": int64(5)}

	var first *openedVars
	for i := range 3 {
		rec := p.deliver(`{"n": 1}`)
		cel := rec["cel"].(map[string]any)
		require.Equal(t, wantState, cel["state"])
		require.Equal(t, wantCreds, cel["credentials"])
		require.Equal(t, map[string]any{"signing": "s1", "nums": []any{int64(1), int64(2)}}, cel["connectorParameters"])
		require.Equal(t, map[string]any{"id": p.conn, "parameters": map[string]any{"region": "eu", "limits": map[string]any{"max": int64(3)}}}, cel["connection"])
		require.NotEmpty(t, cel["webhookSecret"])
		require.Equal(t, []any{int64(2), int64(4), int64(6)}, rec["celLoop"])
		require.Equal(t, int64(2), rec["celJmespath"])
		require.Equal(t, []any{int64(2), int64(3)}, rec["jmesNumbers"])
		require.Equal(t, wantState, rec["var"])
		require.Equal(t, wantCreds, rec["varCredentials"])
		o := p.cached()
		require.Equal(t, wantState, o.state.v)
		require.Equal(t, wantCreds, o.creds.v)
		if i == 0 {
			first = o
			continue
		}
		require.Same(t, first, o, "delivery %d opened nothing again", i)
	}

	// A state a handle stores is opened afresh; the other values are still shared.
	rec := p.deliver(`{"cursor": 42}`)
	require.Equal(t, wantState, rec["var"], "the handle saw the state before its own change")
	rec = p.deliver(`{}`)
	require.Equal(t, map[string]any{"hook": hook, "cursor": int64(42)}, rec["var"])
	o := p.cached()
	require.NotSame(t, first, o)
	require.True(t, sameMap(first.creds.v, o.creds.v), "the credentials were not opened again")
	require.Equal(t, first.secret, o.secret)
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(f, o)
		require.NotContains(t, out, "t1", "a credential printed with %s", f)
		require.NotContains(t, out, o.secret.v, "the webhook secret printed with %s", f)
	}
}

// TestHandleGetsWhatItReads: a delivery makes only the variables its verify block and
// handle may read, and those it makes are the ones it would make all of: every variable
// the picks handle reads by name has its value, and the query only its verify block reads
// decides the verification.
func TestHandleGetsWhatItReads(t *testing.T) {
	p := newProbe(t, "picks")
	conn, ok := p.c.Registry.Connector("probe")
	require.True(t, ok)
	reads := conn.Events["picks"].HandleReads()
	require.False(t, reads.All())
	require.False(t, reads.Has("unknown"))

	body := `{"n": 1}`
	rec := p.deliverTo("ok=yes", http.Header{"X-Probe": {"p1"}}, body)
	require.Equal(t, map[string]any{
		"header": "p1", "method": "POST", "url": p.c.WebhookURI(p.subID) + "?ok=yes", "raw": body,
		"state": map[string]any{"hook": int64(7)}, "token": "t1", "signing": "s1", "region": "eu",
		"parameters": map[string]any{"p": "v"}, "secret": true, "n": int64(1),
	}, rec)

	res := p.post("ok=no", http.Header{}, body)
	require.Equal(t, http.StatusUnauthorized, res.Reply.Status)
	require.Equal(t, store.OutcomeRejected, res.Delivery.Outcome)
}

// TestOpenedValuesFollowTheStore: a change of the credentials, of the connector
// parameters or of the connection's parameters reaches the next delivery, and a deleted
// subscription leaves nothing behind.
func TestOpenedValuesFollowTheStore(t *testing.T) {
	ctx := context.Background()
	p := newProbe(t, "echo")
	p.deliver(`{}`)

	_, err := p.c.UpdateConnection(ctx, testWorkspace, p.conn, ConnectionInput{
		Credentials: map[string]any{"token": "t2", "scopes": []any{"c"}},
		Parameters:  map[string]any{"region": "us"},
	}, map[string]bool{"credentials": true, "parameters": true})
	require.NoError(t, err)
	cel := p.deliver(`{}`)["cel"].(map[string]any)
	require.Equal(t, map[string]any{"token": "t2", "scopes": []any{"c"}}, cel["credentials"])
	require.Equal(t, map[string]any{"id": p.conn, "parameters": map[string]any{"region": "us"}}, cel["connection"])
	p.cached()

	require.NoError(t, p.c.SetConnectorParameters(ctx, testWorkspace, "probe", map[string]any{"signing": "s2"}))
	cel = p.deliver(`{}`)["cel"].(map[string]any)
	require.Equal(t, map[string]any{"signing": "s2"}, cel["connectorParameters"])
	p.cached()

	_, err = p.c.DeleteSubscription(ctx, testWorkspace, p.subID, false)
	require.NoError(t, err)
	require.Nil(t, p.c.opened.get(p.subID))
}

// TestOpenedCacheIsBounded: the cache keeps about openedBudget bytes, the least recently
// used subscriptions leaving first, and never keeps a subscription larger than
// openedMaxEntry.
func TestOpenedCacheIsBounded(t *testing.T) {
	var c openedCache
	entry := func(n int) *openedVars {
		return &openedVars{state: openedValue[map[string]any]{sealed: make([]byte, n)}}
	}
	per := entry(1000).size()
	n := int(openedBudget/per) + 10
	for i := range n {
		c.put(fmt.Sprint("sub-", i), entry(1000))
	}
	count, bytes := c.items.Len()
	require.LessOrEqual(t, bytes, int64(openedBudget))
	require.Equal(t, int(bytes/per), count)
	require.Nil(t, c.get("sub-0"), "the first one left")
	require.NotNil(t, c.get(fmt.Sprint("sub-", n-1)))

	c.put("big", entry(openedMaxEntry))
	require.Nil(t, c.get("big"))
	c.put("small", entry(10))
	require.NotNil(t, c.get("small"))
	c.put("small", entry(openedMaxEntry)) // grew past the limit: dropped
	require.Nil(t, c.get("small"))
}
