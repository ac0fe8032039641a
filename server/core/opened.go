package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hookmap/hookmap/engine"
	"github.com/hookmap/hookmap/server/internal/sizedlru"
	"github.com/hookmap/hookmap/server/store"
)

// The receiver's handles see a subscription's sealed values opened (its connection's
// credentials, the workspace's connector parameters, its state and its webhook secret).
// Every webhook of a subscription would open the same bytes again, so openedCache keeps
// what it opened per subscription, each value with the exact sealed bytes it came from
// and what names it (the AAD it was opened with): a value is served only while the store
// gives the same bytes for the same names, so a changed state, rotated credentials or new
// connector parameters are opened afresh. Nothing is invalidated: the store stays the
// source of truth, read on every webhook as before; what is cached is only what opening
// those bytes gives, which never changes.
//
// The opened values are shared by the deliveries of a subscription, so nothing may change
// them: the engine never changes its variables (nor the values its results share with
// them), and core only reads what a handle returns. TestOpenedValuesAreNotChanged fails
// if either stops being true. Errors are never cached, and nothing here is logged.

const (
	// openedBudget bounds the cache to about this many bytes (estimated).
	openedBudget = 16 << 20
	// openedMaxEntry: a subscription whose sealed values are larger is not cached.
	openedMaxEntry = openedBudget / 16
	// openedOverhead is counted for every entry beside its sealed bytes.
	openedOverhead = 512
	// openedExpansion: an opened value is taken to use this many times the memory of
	// its sealed bytes (maps, strings, interfaces).
	openedExpansion = 4
)

// openedVars is what the handles of one subscription see of its sealed values.
type openedVars struct {
	// the names the values were opened with: the subscription's workspace, its
	// connection and the connection's connector
	ws, connID, connectorKey string

	creds  openedValue[map[string]any]
	params openedValue[map[string]any] // found is false when the workspace has none
	state  openedValue[map[string]any]
	secret openedValue[string]
}

// String names the subscription's connection and nothing it opened: the values are
// secrets, never to be printed or logged.
func (o *openedVars) String() string {
	return "opened values of connection " + o.connID + " (redacted)"
}

// GoString is String, for %#v.
func (o *openedVars) GoString() string { return o.String() }

// openedValue is a value and the sealed bytes it was opened from.
type openedValue[T any] struct {
	sealed []byte
	found  bool // connector parameters only: the store had some
	v      T
}

func (o *openedVars) size() int64 {
	n := len(o.creds.sealed) + len(o.params.sealed) + len(o.state.sealed) + len(o.secret.sealed)
	return int64(n*openedExpansion + openedOverhead)
}

// openedCache is a least-recently-used map of subscription id to openedVars, bounded by
// their estimated size. The zero value is ready to use.
type openedCache struct {
	mu    sync.Mutex
	items *sizedlru.LRU[string, *openedVars]
}

func (c *openedCache) get(subID string) *openedVars {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		return nil
	}
	o, _ := c.items.Get(subID)
	return o
}

func (c *openedCache) put(subID string, o *openedVars) {
	size := o.size()
	if size > openedMaxEntry {
		c.remove(subID)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.items = sizedlru.New[string, *openedVars](openedBudget, openedOverhead)
	}
	c.items.Put(subID, o, size)
}

// remove drops what was opened for a subscription (deleted: its secrets need not stay in
// memory until they are evicted).
func (c *openedCache) remove(subID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items != nil {
		c.items.Remove(subID)
	}
}

// openedSubscription returns sub's opened values as the store holds them now (from the
// cache when it opened the same bytes before) and its connection, read from the store as
// on every webhook.
func (c *Core) openedSubscription(ctx context.Context, sub *store.Subscription) (*openedVars, *store.Connection, error) {
	conn, err := c.Store.GetConnection(ctx, sub.WorkspaceID, sub.ConnectionID)
	if err != nil {
		return nil, nil, fmt.Errorf("connection %s: %w", sub.ConnectionID, err)
	}
	found := true
	cp, err := c.Store.GetConnectorParameters(ctx, conn.WorkspaceID, conn.ConnectorKey)
	if errors.Is(err, store.ErrNotFound) {
		cp, found = nil, false
	} else if err != nil {
		return nil, nil, fmt.Errorf("connector parameters: %w", err)
	}
	prev := c.opened.get(sub.ID)
	if prev != nil && (prev.ws != sub.WorkspaceID || prev.connID != conn.ID || prev.connectorKey != conn.ConnectorKey) {
		prev = nil // opened with other names
	}
	var sameCreds, sameParams, sameState, sameSecret bool
	if prev != nil {
		sameCreds = bytes.Equal(prev.creds.sealed, conn.Credentials)
		sameParams = prev.params.found == found && bytes.Equal(prev.params.sealed, cp)
		sameState = bytes.Equal(prev.state.sealed, sub.State)
		sameSecret = bytes.Equal(prev.secret.sealed, sub.WebhookSecret)
	}
	if sameCreds && sameParams && sameState && sameSecret {
		return prev, conn, nil
	}
	o := &openedVars{ws: sub.WorkspaceID, connID: conn.ID, connectorKey: conn.ConnectorKey}
	if prev != nil {
		*o = *prev
	}
	if !sameCreds {
		v, err := c.openCredentials(conn)
		if err != nil {
			return nil, nil, err
		}
		o.creds = openedValue[map[string]any]{sealed: bytes.Clone(conn.Credentials), v: v}
	}
	if !sameParams {
		v := map[string]any{}
		if found {
			if v, err = c.Box.OpenValue(cp, connectorParamsAAD(conn.WorkspaceID, conn.ConnectorKey)); err != nil {
				return nil, nil, fmt.Errorf("connector parameters: %w", err)
			}
		}
		o.params = openedValue[map[string]any]{sealed: bytes.Clone(cp), found: found, v: v}
	}
	if !sameState {
		v, err := c.SubscriptionState(sub)
		if err != nil {
			return nil, nil, err
		}
		o.state = openedValue[map[string]any]{sealed: bytes.Clone(sub.State), v: v}
	}
	if !sameSecret {
		v, err := c.WebhookSecret(sub)
		if err != nil {
			return nil, nil, err
		}
		o.secret = openedValue[string]{sealed: bytes.Clone(sub.WebhookSecret), v: v}
	}
	c.opened.put(sub.ID, o)
	return o, conn, nil
}

// subscriptionVars are the variables of a subscription's methods besides the request's:
// its connection's (connection, connectorParameters, credentials), its state, parameters
// and webhook secret, the sealed ones opened through the cache, each only when reads has
// it (an event's verify block and handle read no other; allReads for every one). The map
// has room for the request's variables. It returns the connection too.
func (c *Core) subscriptionVars(ctx context.Context, sub *store.Subscription, reads engine.Reads) (map[string]any, *store.Connection, error) {
	o, conn, err := c.openedSubscription(ctx, sub)
	if err != nil {
		return nil, nil, err
	}
	size := handleVarCount
	if !reads.All() {
		size = 2 // data and body
		for _, n := range handleVarNames {
			if reads.Has(n) {
				size++
			}
		}
	}
	vars := make(map[string]any, size)
	if reads.Has("connection") {
		params := conn.Parameters
		if params == nil {
			params = map[string]any{}
		}
		vars["connection"] = map[string]any{"id": conn.ID, "parameters": params}
	}
	if reads.Has("connectorParameters") {
		vars["connectorParameters"] = o.params.v
	}
	if reads.Has("credentials") {
		vars["credentials"] = o.creds.v
	}
	if reads.Has("state") {
		vars["state"] = o.state.v
	}
	if reads.Has("parameters") {
		vars["parameters"] = orEmpty(sub.Parameters)
	}
	if reads.Has("webhookSecret") {
		vars["webhookSecret"] = o.secret.v
	}
	return vars, conn, nil
}

// handleVarNames are the variables of a subscription's handle but data and body (which
// it always has): subscriptionVars' and requestVars'.
var handleVarNames = []string{
	"connection", "connectorParameters", "credentials", "state", "parameters", "webhookSecret",
	"method", "query", "headers", "rawBody", "url",
}

// How many variables a handle has: handleVarNames and data and body; a global webhook's
// handle has requestVars' (7) and the connector parameters.
var handleVarCount = len(handleVarNames) + 2

const globalVarCount = 8
