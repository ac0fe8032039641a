// Package sqlite is hookmap's embedded store: a store.Store on one SQLite file (pure Go,
// modernc.org/sqlite), hookmap's default.
//
// # Connections
//
// The file is opened in WAL mode with synchronous=FULL, so a commit is on disk (the WAL is
// fsynced) before it is acknowledged, and with foreign keys on. Three pools share it:
//
//   - one writer connection (_txlock=immediate), used only by the writer goroutine;
//   - a pool of read connections (query_only), used by every read method concurrently;
//   - one checkpoint connection, used only by the checkpoint goroutine.
//
// # Group commit
//
// Every write is an operation queued for the writer goroutine. The writer takes everything
// waiting (up to Options.MaxBatch), runs it in one transaction and commits it with one
// fsync, then answers each caller. A bad write fails alone: when an operation of a batch
// fails, the transaction is rolled back, that operation gets its error and the others are
// run again, in order, in a new transaction (a failing COMMIT instead re-runs each
// operation in a transaction of its own). A caller whose context ends before its batch
// starts is dropped from the queue; once its batch has started the caller waits for the
// outcome, so an error is never reported for a write that was committed.
//
// Within a transaction the new events and new deliveries of its commits are staged and
// inserted by one multi-row INSERT per table and power of two (staged.go), before any
// other statement that could read them and before the COMMIT. A staged INSERT that fails
// does not say which row failed: the transaction is rolled back and run again with every
// row inserted by its own statement, where the failing operation is found as above.
//
// # Read caches
//
// Three reads the receiver makes for every webhook are served from memory: a subscription
// by id (LookupSubscription), a connection (GetConnection) and a workspace's parameters
// of a connector (GetConnectorParameters, which also remembers that there are none); so
// is the read every authenticated call makes, an API key by hash (GetAPIKeyByHash, whose
// cache any write of a key, a revocation included, clears). Each is a least-recently-used
// cache bounded by the estimated size of its entries
// (Options.CacheBytes, 16 MiB each by default; a row larger than a sixteenth of that is
// never cached). The newest committed events are kept too, in the tail (tail.go, up to
// 16384 events and 8 MiB): ListEvents of events the tail covers, a caught-up stream's
// read after each commit, and LastSeq are served from it. Every other read,
// GetSubscription and the other lists included, reads the database.
//
// The caches are exactly as fresh as the database, because the store is the file's only
// writer (hookmap on SQLite is one process) and every write goes through the writer: each
// write operation records the cached rows it writes on its transaction, and the writer
// drops them from the caches after the COMMIT and before it answers the operation's
// caller. A reader that misses takes a generation counter of its key's stripe before it
// reads the database, and caches what it read only if no write of that stripe was
// applied meanwhile, so a row read before a write never outlives it. The writer likewise
// appends the events a transaction inserted to the tail after its COMMIT, and applies its
// prunes; a failed COMMIT empties the tail until the next commit of events. Every read
// returns a copy its caller may change. The PostgreSQL store has no such caches: its
// replicas share the database, and one's writes would not reach the others' memory.
//
// # Last event times
//
// A delivery's commit does not write its subscription's last_event_time (a page and a
// statement in every commit): the writer keeps each subscription's newest event time in
// memory once the commit is durable, every read of a subscription lays it over the row,
// and the writer writes them all in a transaction of its own about once a second (each
// checkpoint tick) and at Close; that write is applied to a cached subscription rather
// than dropping it. The table store_marks records up to which event seq the rows are
// complete, and after a crash Open recomputes the newer times from the events after that
// seq (lastevent.go).
//
// # Checkpoints
//
// Automatic checkpoints are off (wal_autocheckpoint=0): they would run inside a commit and
// stall the writer. A background goroutine on its own connection runs a PASSIVE checkpoint
// every Options.CheckpointInterval (it never blocks the writer), and, when that one copied
// the whole WAL but the file has grown past Options.WALTruncateSize (a long reader kept it
// from being reused), a TRUNCATE checkpoint that resets it to zero bytes.
//
// # Schema
//
// The schema is a series of goose migrations embedded in the binary (migrations/*.sql,
// and migration 3, in Go, which seals the subscription state earlier versions kept in
// clear with Options.SealState), applied by Open with secure_delete on, so whatever a
// migration deletes or rewrites is overwritten with zeros.
//
// # Secrets
//
// Every secret arrives sealed by the caller (credentials, connector parameters, webhook
// secrets, subscription state, PKCE code verifiers, outgoing header values and signing
// secrets) and is stored as an opaque BLOB; the store never sees one in clear, except
// once, in migration 3. An OAuth state parameter is kept only as its SHA-256.
package sqlite
