// Package hub wakes event streams when events are committed (push, not polling) and keeps
// one active stream per consumer.
package hub
