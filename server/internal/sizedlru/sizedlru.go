// Package sizedlru is a least-recently-used map bounded by the estimated size of its
// entries rather than by their number: the caches of the server (the SQLite store's rows,
// what core opened of a subscription's sealed values) hold entries of very different
// sizes. It is not safe for concurrent use: its owner locks around it.
package sizedlru

import "github.com/hashicorp/golang-lru/v2/simplelru"

// LRU holds entries of at most budget bytes in all (estimated by the caller).
type LRU[K comparable, V any] struct {
	budget int64
	items  *simplelru.LRU[K, entry[V]]
	bytes  int64
}

type entry[V any] struct {
	v    V
	size int64
}

// New returns an empty LRU of budget bytes whose entries each count at least minEntry
// bytes (which bounds their number).
func New[K comparable, V any](budget, minEntry int64) *LRU[K, V] {
	c := &LRU[K, V]{budget: budget}
	// The byte budget is the bound; the list's own count bound only has to be above what
	// the budget admits.
	// (NewLRU fails only for a count below 1.)
	c.items, _ = simplelru.NewLRU(int(max(budget/max(minEntry, 1), 1)), func(_ K, e entry[V]) { c.bytes -= e.size })
	return c
}

// Get returns k's value and marks it the most recently used.
func (c *LRU[K, V]) Get(k K) (V, bool) {
	e, ok := c.items.Get(k)
	return e.v, ok
}

// Peek returns k's value without marking it used.
func (c *LRU[K, V]) Peek(k K) (V, bool) {
	e, ok := c.items.Peek(k)
	return e.v, ok
}

// Put adds or replaces k's entry, of size bytes, and evicts the least recently used
// entries past the budget.
func (c *LRU[K, V]) Put(k K, v V, size int64) {
	c.items.Remove(k)
	c.items.Add(k, entry[V]{v, size})
	c.bytes += size
	for c.bytes > c.budget {
		if _, _, ok := c.items.RemoveOldest(); !ok {
			break
		}
	}
}

// Remove drops k's entry.
func (c *LRU[K, V]) Remove(k K) { c.items.Remove(k) }

// Contains reports whether k has an entry, without marking it used.
func (c *LRU[K, V]) Contains(k K) bool { return c.items.Contains(k) }

// Purge drops every entry.
func (c *LRU[K, V]) Purge() { c.items.Purge() }

// Len returns the number of entries and their size.
func (c *LRU[K, V]) Len() (n int, bytes int64) { return c.items.Len(), c.bytes }
