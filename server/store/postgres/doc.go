// Package postgres is hookmap's store on PostgreSQL (pgx): a store.Store and
// store.Shared that any number of hookmap processes (replicas) can share, each with the
// same --secret-key.
//
// # Connections
//
// Open takes a postgres:// URL (every pgx connection parameter works, e.g. sslmode,
// search_path, pool_max_conns) and keeps a pool of connections. Watch holds one more
// connection of its own, for LISTEN.
//
// # Commits and the order of events
//
// CommitDelivery is group-committed: concurrent calls are queued, and a few committer
// goroutines (Options.Committers) each take what is waiting (up to Options.MaxBatch) and
// write it in one transaction, so that one WAL flush acknowledges many deliveries. It
// returns once the transaction is committed; with synchronous_commit on (PostgreSQL's
// default, which hookmap needs) that means flushed to disk.
//
// A workspace's event seqs come from its row in event_seqs, which the transaction
// updates as its last write before COMMIT and so holds locked until it has committed.
// Seqs are therefore assigned in commit order: once seq n is visible, every lower seq is
// visible too or never will be. A stream that reads "seq > cursor" can never skip an event
// committed late, which a sequence (nextval) would allow: a value taken by a transaction
// that commits after a higher one is already visible. The price is that transactions
// writing events of one workspace commit one after the other, which group commit makes up
// for.
//
// Re-deliveries are dropped by the idempotency_keys primary key, across processes: a
// transaction inserting a key that another one inserted first waits for it and then
// skips the event.
//
// # Sharing
//
// After a commit, the store sends a NOTIFY (coalesced per workspace) that the Watch of
// every other process turns into a store.Change, so their streams wake within
// milliseconds; OpenStream bumps the consumer's generation in consumer_streams and
// notifies too. Background work is leased row by row (ClaimDueSubscriptions, with FOR
// UPDATE SKIP LOCKED), and so is the renewal of a connection's OAuth 2.0 credentials
// (ClaimRenewal: one replica sends the token request, the others wait for the tokens it
// stores). A notification can be lost with a process that dies between its commit and the
// NOTIFY, or while a Watch reconnects: the caller's slow fallback poll covers both.
//
// # Text
//
// PostgreSQL text cannot hold a NUL character or invalid UTF-8, which a webhook sender can
// put in an event type, an event id or a request path. The store replaces such characters
// with U+FFFD in the free-text fields it is given, instead of failing the delivery.
//
// # Schema
//
// The schema is a series of goose migrations embedded in the binary (migrations/*.sql),
// applied by Open under a PostgreSQL advisory lock, so replicas starting together migrate
// once.
package postgres
