// Package hub wakes event streams when events are committed (push, not polling) and keeps
// one active stream per consumer. Its state is this process's; when several processes
// share a store, server/cluster feeds it what the others commit.
package hub
