package store

import "context"

// Shared is implemented by a store that several hookmap processes (replicas) share, such
// as Postgres. What one replica commits, the others learn through Watch, so a stream on
// any replica is woken by a commit on any other, and a consumer has one active stream
// across all of them. A store that one process owns (SQLite) does not implement it: the
// process's own hub sees everything.
type Shared interface {
	// Watch calls fn, from one goroutine and in the order they were committed, with each
	// change another process sharing the store committed, until ctx ends (it then returns
	// ctx's error). When it may have missed changes (its connection to the database was
	// lost and reopened) it calls fn with a ChangeResync, and the caller must assume
	// anything changed. Changes of the calling process itself are not reported.
	Watch(ctx context.Context, fn func(Change)) error
	// OpenStream records that a new stream of a consumer opened and returns its
	// generation: higher than every generation returned before for that consumer, by any
	// process. Watchers in the other processes get a ChangeStream: their streams of the
	// consumer with a lower generation must end (one active stream per consumer).
	OpenStream(ctx context.Context, workspaceID, consumer string) (generation int64, err error)
	// StreamGeneration returns the newest generation OpenStream returned for the
	// consumer, 0 when none (the fallback check of a stream that may have missed a
	// ChangeStream).
	StreamGeneration(ctx context.Context, workspaceID, consumer string) (int64, error)
}

// ChangeKind says what a Change is about.
type ChangeKind int

// Kinds of Change.
const (
	// ChangeEvents: events up to Seq of WorkspaceID are committed.
	ChangeEvents ChangeKind = iota + 1
	// ChangeStream: a stream of Consumer in WorkspaceID opened with Generation.
	ChangeStream
	// ChangeResync: changes may have been missed; every stream must check the store.
	ChangeResync
)

// Change is something another process committed to a shared store.
type Change struct {
	Kind        ChangeKind
	WorkspaceID string
	Seq         int64  // ChangeEvents
	Consumer    string // ChangeStream
	Generation  int64  // ChangeStream
}
