package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/prometheus/client_golang/prometheus"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/hookmap/hookmap/server/durable"
	"github.com/hookmap/hookmap/server/store"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Defaults of Options.
const (
	DefaultMaxBatch           = 256
	DefaultCheckpointInterval = time.Second
	DefaultWALTruncateSize    = 64 << 20
	DefaultBusyTimeout        = 10 * time.Second
)

// Options tune a Store. The zero value is ready to use.
type Options struct {
	// MaxBatch is the most operations the writer commits in one transaction (default 256).
	MaxBatch int
	// ReadConns is the size of the read pool (default max(4, GOMAXPROCS)).
	ReadConns int
	// CheckpointInterval is how often the background checkpointer runs (default 1s).
	CheckpointInterval time.Duration
	// WALTruncateSize: when the WAL file is larger after a complete PASSIVE checkpoint,
	// the checkpointer also runs a TRUNCATE checkpoint, which resets it to zero bytes; it
	// is also the journal_size_limit (default 64 MiB).
	WALTruncateSize int64
	// BusyTimeout is how long a connection waits for a lock held by another (default 10s).
	BusyTimeout time.Duration
	// Logger receives the store's logs (default: discarded).
	Logger *slog.Logger
	// Registerer, when set, receives the store's metrics (batch sizes, commit and
	// checkpoint durations, WAL size). They are unregistered by Close.
	Registerer prometheus.Registerer
	// SealState seals a subscription's state (its JSON) the way the caller seals
	// store.Subscription.State. Open uses it once, to upgrade a database written by a
	// version that kept state in clear (migration 3); it fails without it then.
	SealState func(subscriptionID string, state []byte) ([]byte, error)
	// CacheBytes bounds each of the store's read caches (subscriptions by id, API keys,
	// connections, connector parameters) to about this many bytes of memory, estimated
	// (default DefaultCacheBytes); a negative value turns the caches off, the tail of
	// recent events (tail.go, bounded by its own constants) included.
	CacheBytes int64
	// PageSize is the page size of a database file Open creates (default DefaultPageSize);
	// a file that exists keeps the page size it was created with.
	PageSize int
}

func (o *Options) withDefaults() {
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.ReadConns <= 0 {
		o.ReadConns = max(4, runtime.GOMAXPROCS(0))
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = DefaultCheckpointInterval
	}
	if o.WALTruncateSize <= 0 {
		o.WALTruncateSize = DefaultWALTruncateSize
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = DefaultBusyTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.CacheBytes == 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
}

// DefaultPageSize is the page size of a new database file: 2 KiB, not SQLite's 4 KiB.
// A commit writes to the WAL every page it changes, and a delivery's commit changes the
// last page of each b-tree it enters (its rows and the index entries are far smaller than
// a page), so the WAL grows by about one page per b-tree per commit whatever the page
// size. At 2 KiB the WAL took 3.9 KB per webhook under the ingest benchmark's load,
// against 5.7 KB at 4 KiB, and the writer spent less CPU per webhook (docs/performance.md).
const DefaultPageSize = 2048

// Store is the SQLite store. Create it with Open; it is safe for concurrent use.
type Store struct {
	path string
	opts Options
	log  *slog.Logger
	m    *metrics

	w  *sql.DB   // the writer's database: one connection, wc once the migrations are done
	wc *sql.Conn // the writer's connection, held for good (hot.go); only the writer goroutine uses it after Open
	r  *sql.DB   // the read pool (query_only)
	ck *sql.DB   // the checkpoint connection

	hot      hotStmts      // prepared on w
	staged   stagedInserts // the rows the writer's transaction staged (staged.go)
	tailOps  []tailOp      // the writer's buffer of a transaction's tail changes, reused
	pageSize int           // the database's page size, for the WAL metrics
	cache    *caches       // rows of the hot reads, kept coherent by the writer (cache.go)
	tail     *tail         // the newest committed events, kept by the writer (tail.go); nil with the caches off
	// seq is the highest event seq ever given out (the writer's after Open): the highest in
	// the table or, when the newest events were deleted, the events_seq_floor mark above it.
	seq int64

	// mu guards the send side of queue: senders hold it shared and check isClosed, Close
	// sets isClosed holding it exclusively, so no send races the close of the queue.
	mu         sync.RWMutex
	isClosed   atomic.Bool
	queue      chan *op
	writerDone chan struct{}

	// bg is the checkpointer's context, canceled by Close (the writer's is writeCtx).
	bg      context.Context
	stopBg  context.CancelFunc
	ckDone  chan struct{}
	batches atomic.Int64 // transactions committed by the writer (for tests and benchmarks)

	// restartMode is the WAL restart the checkpointer asks the writer for (restartNone,
	// restartRestart, restartTruncate); restartMu guards the backoff after a failed one.
	restartMode    atomic.Int32
	ckMu           sync.Mutex    // held by the checkpoint running (the checkpointer's or the writer's)
	ckWake         chan struct{} // the writer wakes the checkpointer when much was written (countWAL)
	flushWake      chan struct{} // the checkpointer's tick: the writer writes the last event times (lastevent.go)
	lastEvent      lastEvents
	sinceWake      int64 // WAL bytes written since the last wake (the writer's)
	restartMu      sync.Mutex
	restartBackoff time.Duration
	restartAfter   time.Time
	stmtsMu        sync.RWMutex // read mostly: each fixed query is prepared once
	readStmt       map[string]*sql.Stmt
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the SQLite database at path, applies pending migrations
// and starts the writer and checkpoint goroutines. Close releases everything.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	opts.withDefaults()
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: %q: the store needs a plain file path (an in-memory database cannot be shared by its connections)", path)
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite: %q: the path must not contain '?' or '#'", path)
	}
	if opts.PageSize < 512 || opts.PageSize > 65536 || opts.PageSize&(opts.PageSize-1) != 0 {
		return nil, fmt.Errorf("sqlite: page size %d: want a power of two from 512 to 65536", opts.PageSize)
	}
	if err := prepareFile(path); err != nil {
		return nil, err
	}
	s := &Store{
		path:       path,
		opts:       opts,
		log:        opts.Logger,
		queue:      make(chan *op, opts.MaxBatch),
		writerDone: make(chan struct{}),
		ckDone:     make(chan struct{}),
		ckWake:     make(chan struct{}, 1),
		flushWake:  make(chan struct{}, 1),
		readStmt:   map[string]*sql.Stmt{},
	}
	s.bg, s.stopBg = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			s.stopBg()
			_ = s.closeDBs()
		}
	}()

	busy := strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10)
	var err error
	// The writer. journal_mode=WAL is persistent in the file; synchronous=FULL fsyncs the
	// WAL at every commit; wal_autocheckpoint=0 keeps checkpoints out of the commit path;
	// journal_size_limit caps the WAL file left behind by a checkpoint that resets it.
	s.w, err = openDB(path, 1, url.Values{
		"_txlock":       {"immediate"},
		"_busy_timeout": {busy},
		"_journal_mode": {"WAL"},
		"_synchronous":  {"FULL"},
		"_foreign_keys": {"1"},
		// page_size only applies to a file with no table yet: it comes before anything
		// that would create one.
		"_pragma": {"page_size(" + strconv.Itoa(opts.PageSize) + ")", "wal_autocheckpoint(0)", "journal_size_limit(" + strconv.FormatInt(opts.WALTruncateSize, 10) + ")"},
	})
	if err != nil {
		return nil, err
	}
	if err := s.checkWAL(ctx); err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	// From here on the writer's one connection is held (hot.go): nothing uses s.w itself.
	if s.wc, err = s.w.Conn(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", s.path, err)
	}
	if err := s.voidFetchLeases(ctx); err != nil {
		return nil, err
	}
	if err := s.recoverLastEvents(ctx); err != nil {
		return nil, err
	}
	if err := s.prepareHot(ctx); err != nil {
		return nil, err
	}
	if err := s.wc.QueryRowContext(ctx, "PRAGMA page_size").Scan(&s.pageSize); err != nil {
		return nil, fmt.Errorf("sqlite: page size: %w", err)
	}
	s.r, err = openDB(path, opts.ReadConns, url.Values{
		"_busy_timeout": {busy},
		"_synchronous":  {"FULL"},
		"_foreign_keys": {"1"},
		"_pragma":       {"wal_autocheckpoint(0)"},
		"_query_only":   {"1"},
	})
	if err != nil {
		return nil, err
	}
	// The checkpointer never waits for a lock (busy_timeout 0): a TRUNCATE checkpoint that
	// waited for readers would hold the write lock meanwhile and stall the writer. One
	// that finds the lock taken gives up and is tried again at the next tick.
	s.ck, err = openDB(path, 1, url.Values{
		"_busy_timeout": {"0"},
		"_synchronous":  {"FULL"},
		"_pragma":       {"wal_autocheckpoint(0)"},
	})
	if err != nil {
		return nil, err
	}
	s.m = newMetrics(opts.Registerer)
	// The caches start empty after the migrations (sealstate.go's rewrite of every
	// subscription included): nothing read before this point is kept.
	s.cache = newCaches(opts.CacheBytes, s.m)
	// The tail starts empty above every seq the events table ever had: it holds every
	// event committed from now on.
	if err := s.wc.QueryRowContext(ctx, `SELECT MAX(
			COALESCE((SELECT value FROM store_marks WHERE name = 'events_seq_floor'), 0),
			COALESCE((SELECT MAX(seq) FROM events), 0))`).Scan(&s.seq); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: last seq: %w", s.path, err)
	}
	s.tail = newTail(s.seq+1, s.m, opts.CacheBytes < 0)
	ok = true
	go s.writer()
	go s.checkpointer()
	return s, nil
}

// prepareFile creates the database file with owner-only permissions when it does not
// exist (SQLite gives the -wal and -shm files the database's permissions), and its
// directory. Both are created durably: the directories that hold the new entries are
// fsynced, so a power cut soon after the first start cannot lose the new file. (SQLite
// itself syncs the directory when it creates the WAL.)
func prepareFile(path string) error {
	dir := filepath.Dir(path)
	if err := durable.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if err := durable.SyncDir(dir); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return nil
}

func openDB(path string, conns int, params url.Values) (*sql.DB, error) {
	db, err := sql.Open("sqlite", path+"?"+params.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

func (s *Store) checkWAL(ctx context.Context) error {
	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("sqlite: open %s: %w", s.path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("sqlite: open %s: journal_mode is %q, want wal (is the file on a network file system?)", s.path, mode)
	}
	return nil
}

// migrate applies pending migrations. They run with secure_delete on, so what they
// delete or rewrite (clear state that migration 3 seals) is overwritten with zeros, and
// when one of them scrubbed secrets the WAL is checkpointed and truncated after them.
func (s *Store) migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.w, sub, goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(s.sealStateMigration()))
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	// s.w has exactly one connection: the pragma applies to the migrations' transactions.
	var secureDelete int
	if err := s.w.QueryRowContext(ctx, "PRAGMA secure_delete").Scan(&secureDelete); err != nil {
		return fmt.Errorf("sqlite: migrate %s: %w", s.path, err)
	}
	if _, err := s.w.ExecContext(ctx, "PRAGMA secure_delete = ON"); err != nil {
		return fmt.Errorf("sqlite: migrate %s: %w", s.path, err)
	}
	// p.Close would close s.w; the provider holds nothing else.
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: migrate %s: %w", s.path, err)
	}
	if _, err := s.w.ExecContext(ctx, "PRAGMA secure_delete = "+strconv.Itoa(secureDelete)); err != nil {
		return fmt.Errorf("sqlite: migrate %s: %w", s.path, err)
	}
	scrubbed := false
	for _, r := range res {
		s.log.Info("applied migration", "version", r.Source.Version, "file", filepath.Base(r.Source.Path), "duration", r.Duration)
		scrubbed = scrubbed || r.Source.Version == sealStateVersion
	}
	if scrubbed {
		// Older frames of the WAL (left by a crash of the earlier version) may hold clear
		// copies: copy the WAL into the database and reset it to zero bytes.
		var busy, logFrames, done int
		if err := s.w.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done); err != nil {
			return fmt.Errorf("sqlite: checkpoint after migrating %s: %w", s.path, err)
		}
		if busy != 0 {
			s.log.Warn("WAL not truncated after sealing subscription state (another process holds the database)", "path", s.path)
		}
	}
	return nil
}

// Close stops accepting operations, lets the writer commit everything already queued,
// stops the writer and the checkpointer and closes the database. Calls after Close return
// store.ErrClosed; a second Close returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if !s.isClosed.CompareAndSwap(false, true) {
		s.mu.Unlock()
		return nil
	}
	close(s.queue)
	s.mu.Unlock()

	<-s.writerDone
	s.stopBg()
	<-s.ckDone
	s.cache.clear()
	s.tail.forget()
	s.m.Unregister()
	return s.closeDBs()
}

func (s *Store) closeDBs() error {
	var errs []error
	s.stmtsMu.Lock()
	for _, st := range s.readStmt {
		errs = append(errs, st.Close())
	}
	s.readStmt = nil
	s.stmtsMu.Unlock()
	if s.wc != nil {
		errs = append(errs, s.closeHot(), s.wc.Close())
	}
	// The writer closes last: closing the last connection checkpoints the WAL into the
	// database and removes it.
	for _, db := range []*sql.DB{s.r, s.ck, s.w} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.isClosed.Load() {
		return store.ErrClosed
	}
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return s.readErr("ping", err)
	}
	return nil
}
