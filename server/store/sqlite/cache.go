package sqlite

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/server/internal/sizedlru"
	"github.com/hookmap/hookmap/server/store"
)

// DefaultCacheBytes is Options.CacheBytes' default: each of the read caches holds at
// most 16 MiB (estimated), some 20,000 to 30,000 subscriptions of a typical size.
const DefaultCacheBytes = 16 << 20

const (
	// cacheStripes is how many generation counters a cache has: a write of one key
	// refuses the concurrent fills of the keys of its stripe only.
	cacheStripes = 64
	// maxEntryShare: an entry larger than its cache's budget divided by this is never
	// cached (a subscription whose state is megabytes is read from the database).
	maxEntryShare = 16
	// entryOverhead is counted for every entry beside its strings and blobs: the struct,
	// the LRU's list element and map slot.
	entryOverhead = 256
)

// caches are the store's in-memory copies of the rows behind three reads the receiver
// makes per webhook (LookupSubscription, GetConnection, GetConnectorParameters), and of
// the API keys every authenticated call looks up (GetAPIKeyByHash). See the package
// documentation for the coherence rule.
type caches struct {
	subs  *lru[string, *store.Subscription]
	conns *lru[wsKey, *store.Connection]
	// params holds nil for a workspace's connector without parameters: a read that found
	// none is cached too, because SetConnectorParameters, the one write that creates
	// them, drops the key like any write (keys of subscriptions and connections that do
	// not exist are not cached: the receiver's ids come from the network).
	params *lru[wsKey, []byte]
	// keys holds API keys by hash (as a string). A write of any key clears it: keys are
	// written rarely (created, revoked), and a revocation names the key by id.
	keys *lru[string, *store.APIKey]
}

// wsKey is a key within a workspace: a connection's id, or a connector's key.
type wsKey struct{ ws, key string }

// newCaches returns caches of budget bytes each; all are nil (nothing is cached)
// when budget is negative.
func newCaches(budget int64, m *metrics) *caches {
	if budget < 0 {
		return &caches{}
	}
	return &caches{
		subs:   newLRU(budget, m, "subscriptions", subscriptionSize),
		conns:  newLRU(budget, m, "connections", connectionSize),
		params: newLRU(budget, m, "connector_parameters", paramsSize),
		keys:   newLRU(budget, m, "api_keys", apiKeySize),
	}
}

// changes are the cached rows a write transaction changed, applied to the caches once it
// has committed. A transaction that is rolled back drops them (its ops, run again,
// record them again).
type changes struct {
	subs    []string
	conns   []wsKey
	params  []wsKey
	touched []touchedSub
	keys    bool
	all     bool
}

// touchedSub is a subscription whose last_event_time became MAX(last_event_time, at).
type touchedSub struct {
	id, ws string
	at     int64
}

// changedSubscription records that t wrote the subscription's row (any column).
func (w *wtx) changedSubscription(id string) { w.ch.subs = append(w.ch.subs, id) }

// changedConnection records that t wrote the connection's row (any column).
func (w *wtx) changedConnection(workspaceID, id string) {
	w.ch.conns = append(w.ch.conns, wsKey{workspaceID, id})
}

// changedConnectorParameters records that t wrote the workspace's parameters of a connector.
func (w *wtx) changedConnectorParameters(workspaceID, connectorKey string) {
	w.ch.params = append(w.ch.params, wsKey{workspaceID, connectorKey})
}

// touchedSubscription records that t ran sqlTouchSubscription with (at, id, workspaceID),
// and nothing else on that row: a cached copy is kept, its LastEventTime moved forward.
func (w *wtx) touchedSubscription(id, workspaceID string, at int64) {
	w.ch.touched = append(w.ch.touched, touchedSub{id, workspaceID, at})
}

// changedAPIKeys records that t wrote a row of api_keys.
func (w *wtx) changedAPIKeys() { w.ch.keys = true }

// changedAll records that t may have written cached rows it cannot name (a DELETE by
// workspace, a raw statement): every cache is cleared when it commits.
func (w *wtx) changedAll() { w.ch.all = true }

// apply drops (or, for a touch, updates) the cached copies of the rows a committed
// transaction changed. The writer calls it after the COMMIT and before it answers the
// transaction's callers.
func (c *caches) apply(ch *changes) {
	if ch.all {
		c.clear()
		return
	}
	for _, id := range ch.subs {
		c.subs.invalidate(id)
	}
	for _, k := range ch.conns {
		c.conns.invalidate(k)
	}
	for _, k := range ch.params {
		c.params.invalidate(k)
	}
	if ch.keys {
		c.keys.clear()
	}
	for _, t := range ch.touched {
		c.subs.update(t.id, func(sub *store.Subscription) (*store.Subscription, bool) {
			if sub.WorkspaceID != t.ws || t.at <= nanos(sub.LastEventTime) {
				return nil, false // the statement's WHERE or its MAX left the row as it was
			}
			cp := *sub // cached values are never changed in place: readers hold copies of them
			cp.LastEventTime = fromNanos(t.at)
			return &cp, true
		})
	}
}

// drop drops the cached copies of every row ch names, touched ones included: what the
// writer does when a COMMIT failed, not knowing what the database kept.
func (c *caches) drop(ch *changes) {
	for _, t := range ch.touched {
		ch.subs = append(ch.subs, t.id)
	}
	ch.touched = nil
	c.apply(ch)
}

// clear empties every cache.
func (c *caches) clear() {
	c.subs.clear()
	c.conns.clear()
	c.params.clear()
	c.keys.clear()
}

// cached serves a read from cache c: a hit returns a copy of the cached value; a miss runs
// read and caches a copy of what it returned, unless a write of the same stripe committed
// meanwhile. Errors (store.ErrNotFound included) are never cached.
func cached[K comparable, V any](c *lru[K, V], k K, clone func(V) V, read func() (V, error)) (V, error) {
	v, ok, ticket := c.get(k)
	if ok {
		return clone(v), nil
	}
	v, err := read()
	if err != nil || c == nil {
		return v, err
	}
	c.fill(k, ticket, clone(v))
	return v, nil
}

// lru is one read cache: a least-recently-used map bounded by the estimated size of its
// entries, with a generation counter per stripe of keys. A nil *lru caches nothing.
//
// A reader that misses takes its key's stripe generation before it reads the database,
// and caches what it read only if the generation has not moved: every committed write
// of a key moves it (and drops the key), so a row read before a write is never cached
// after the write has dropped its key.
type lru[K comparable, V any] struct {
	name   string
	budget int64
	size   func(K, V) int64
	seed   maphash.Seed

	mu    sync.Mutex
	items *sizedlru.LRU[K, V]
	gens  [cacheStripes]uint64

	hits, misses    atomic.Int64
	hitVec, missVec prometheus.Counter // nil without a registry

	// beforeFill, when set (by tests), runs after a miss has read the database and before
	// it fills the cache.
	beforeFill func(K)
}

func newLRU[K comparable, V any](budget int64, m *metrics, name string, size func(K, V) int64) *lru[K, V] {
	c := &lru[K, V]{name: name, budget: budget, size: size, seed: maphash.MakeSeed(), items: sizedlru.New[K, V](budget, entryOverhead)}
	if m.cacheLookups != nil {
		c.hitVec = m.cacheLookups.WithLabelValues(name, "hit")
		c.missVec = m.cacheLookups.WithLabelValues(name, "miss")
	}
	return c
}

func (c *lru[K, V]) stripe(k K) int {
	return int(maphash.Comparable(c.seed, k) % cacheStripes)
}

// get returns k's cached value, which the caller must not change, or, on a miss, the
// ticket to give fill.
func (c *lru[K, V]) get(k K) (v V, ok bool, ticket uint64) {
	if c == nil {
		return v, false, 0
	}
	i := c.stripe(k)
	c.mu.Lock()
	v, ok = c.items.Get(k)
	ticket = c.gens[i]
	c.mu.Unlock()
	if ok {
		c.hits.Add(1)
		if c.hitVec != nil {
			c.hitVec.Inc()
		}
		return v, true, 0
	}
	c.misses.Add(1)
	if c.missVec != nil {
		c.missVec.Inc()
	}
	return v, false, ticket
}

// fill caches v, read from the database after get returned ticket, unless a write of k's
// stripe has committed since (v may then be older than the database) or v is too large.
func (c *lru[K, V]) fill(k K, ticket uint64, v V) {
	if c.beforeFill != nil {
		c.beforeFill(k)
	}
	size := c.size(k, v)
	if size > c.budget/maxEntryShare {
		return
	}
	i := c.stripe(k)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gens[i] != ticket {
		return
	}
	c.items.Put(k, v, size)
}

// invalidate drops k's entry and refuses the fills of k's stripe in progress: a committed
// write changed k's row.
func (c *lru[K, V]) invalidate(k K) {
	if c == nil {
		return
	}
	i := c.stripe(k)
	c.mu.Lock()
	c.gens[i]++
	c.items.Remove(k)
	c.mu.Unlock()
}

// update replaces k's entry, when there is one, by what change makes of it (change must
// not modify its argument; false keeps the entry), and refuses the fills of k's stripe in
// progress: a committed write changed k's row in a way change reproduces.
func (c *lru[K, V]) update(k K, change func(V) (V, bool)) {
	if c == nil {
		return
	}
	i := c.stripe(k)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gens[i]++
	old, ok := c.items.Peek(k)
	if !ok {
		return
	}
	if v, changed := change(old); changed {
		c.items.Put(k, v, c.size(k, v))
	}
}

// clear drops every entry and refuses every fill in progress.
func (c *lru[K, V]) clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	for i := range c.gens {
		c.gens[i]++
	}
	c.items.Purge()
	c.mu.Unlock()
}

// len returns the number of entries and their estimated size.
func (c *lru[K, V]) len() (n int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.items.Len()
}

// cloneSubscription returns a copy of sub that shares nothing a caller can change with it:
// its parameters are copied deeply and its byte slices copied.
func cloneSubscription(sub *store.Subscription) *store.Subscription {
	cp := *sub
	cp.Parameters = value.CloneMap(sub.Parameters)
	cp.State = cloneBytes(sub.State)
	cp.WebhookSecret = cloneBytes(sub.WebhookSecret)
	return &cp
}

// cloneConnection is cloneSubscription of a connection.
func cloneConnection(c *store.Connection) *store.Connection {
	cp := *c
	cp.Parameters = value.CloneMap(c.Parameters)
	cp.Credentials = cloneBytes(c.Credentials)
	return &cp
}

// cloneBytes copies b, keeping nil and empty apart.
func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func subscriptionSize(_ string, s *store.Subscription) int64 {
	return entryOverhead + int64(len(s.WorkspaceID)+len(s.ID)+len(s.ConnectionID)+len(s.ConnectorKey)+len(s.EventKey)+
		len(s.State)+len(s.WebhookSecret)+len(s.Status)+len(s.LastError)+len(s.GlobalWebhookKey)+len(s.Selector)) +
		plainSize(s.Parameters)
}

func connectionSize(_ wsKey, c *store.Connection) int64 {
	return entryOverhead + int64(len(c.WorkspaceID)+len(c.ID)+len(c.ConnectorKey)+len(c.Name)+len(c.Credentials)+
		len(c.Status)+len(c.LastError)+len(c.Grant)) + plainSize(c.Parameters)
}

func apiKeySize(hash string, k *store.APIKey) int64 {
	return entryOverhead + int64(len(hash)+len(k.ID)+len(k.WorkspaceID)+len(k.Name)+len(k.Hash))
}

func paramsSize(k wsKey, b []byte) int64 {
	return entryOverhead + int64(len(k.ws)+len(k.key)+len(b))
}

// plainSize estimates the memory of a plain value (see engine/value).
func plainSize(v any) int64 {
	switch t := v.(type) {
	case map[string]any:
		n := int64(48)
		for k, e := range t {
			n += 32 + int64(len(k)) + plainSize(e)
		}
		return n
	case []any:
		n := int64(24)
		for _, e := range t {
			n += 16 + plainSize(e)
		}
		return n
	case string:
		return 16 + int64(len(t))
	default:
		return 16
	}
}
