package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookmap/hookmap/server/secrets"
	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/storemetrics"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Defaults of Options.
const (
	DefaultMaxConns   = 16
	DefaultMaxBatch   = 256
	DefaultCommitters = 2
)

// Options tune a Store. The zero value is ready to use.
type Options struct {
	// MaxConns is the size of the connection pool (default 16, or the URL's
	// pool_max_conns). Watch uses one connection more.
	MaxConns int32
	// MaxBatch is the most deliveries one transaction commits (default 256).
	MaxBatch int
	// Committers is how many delivery transactions may run at once (default 2): while one
	// waits for its WAL flush, the next one is prepared.
	Committers int
	// Logger receives the store's logs (default: discarded).
	Logger *slog.Logger
	// Registerer, when set, receives the store's metrics (batch sizes, commit durations).
	// They are unregistered by Close.
	Registerer prometheus.Registerer
}

func (o *Options) withDefaults() {
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.Committers <= 0 {
		o.Committers = DefaultCommitters
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Store is the PostgreSQL store. Create it with Open; it is safe for concurrent use.
type Store struct {
	opts Options
	log  *slog.Logger
	m    *storemetrics.Group
	pool *pgxpool.Pool
	cfg  *pgxpool.Config

	// instance tells this store's notifications from other processes'.
	instance string
	// channel is the LISTEN/NOTIFY channel of the database and schema.
	channel string

	// mu guards the send side of queue: senders hold it shared and check isClosed, Close
	// sets isClosed holding it exclusively, so no send races the close of the queue.
	mu             sync.RWMutex
	isClosed       atomic.Bool
	queue          chan *commitOp
	committersDone sync.WaitGroup
	batches        atomic.Int64 // delivery transactions committed (tests and benchmarks)

	// bg is the committers' and notifier's context: transactions never run under a
	// caller's context, so a caller that gives up cannot abort its neighbours' commit.
	bg     context.Context
	stopBg context.CancelFunc

	notify       notifier
	notifierDone chan struct{}

	// beforeCommit, when set (tests), runs in a delivery transaction just before COMMIT,
	// after the events are written and their workspace's seq row is locked; pid is the
	// transaction's backend.
	beforeCommit func(ctx context.Context, pid uint32)
}

var (
	_ store.Store  = (*Store)(nil)
	_ store.Shared = (*Store)(nil)
)

// Open connects to the database at url (postgres://…), applies pending migrations and
// starts the committers. Close releases everything.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	opts.withDefaults()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, errors.New("postgres: the URL is not a valid PostgreSQL connection string")
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	} else if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	s := &Store{
		opts:         opts,
		log:          opts.Logger,
		cfg:          cfg,
		instance:     secrets.RandomToken(9),
		queue:        make(chan *commitOp, opts.MaxBatch),
		notifierDone: make(chan struct{}),
	}
	s.notify.init()
	s.bg, s.stopBg = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			s.stopBg()
			if s.pool != nil {
				s.pool.Close()
			}
		}
	}()
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("postgres: connect to %s: %w", where(cfg), err)
	}
	var schema string
	if err := s.pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return nil, fmt.Errorf("postgres: connect to %s: %w", where(cfg), err)
	}
	if schema == "" {
		return nil, fmt.Errorf("postgres: %s: no schema to create tables in (check search_path)", where(cfg))
	}
	s.channel = channelName(schema)
	if err := s.migrate(ctx, schema); err != nil {
		return nil, err
	}
	s.m = storemetrics.New(opts.Registerer)
	ok = true
	for range opts.Committers {
		s.committersDone.Add(1)
		go s.committer()
	}
	go s.notifier()
	return s, nil
}

// where names the database of cfg for messages, without credentials.
func where(cfg *pgxpool.Config) string {
	return fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
}

// channelName is the notification channel of a schema: replicas sharing a database and
// schema share it; stores in other schemas of the same database do not hear it.
func channelName(schema string) string {
	name := "hookmap"
	if schema != "public" {
		name += ":" + schema
	}
	if len(name) > 63 { // NAMEDATALEN - 1
		h := fnv.New64a()
		_, _ = h.Write([]byte(schema))
		name = fmt.Sprintf("hookmap:%x", h.Sum64())
	}
	return name
}

func (s *Store) migrate(ctx context.Context, schema string) error {
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		return err
	}
	// Replicas starting together take turns; the lock is per schema so stores in
	// different schemas (tests) do not wait for each other.
	h := fnv.New64a()
	_, _ = h.Write([]byte("hookmap-migrate:" + schema))
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(int64(h.Sum64()>>1)), lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub,
		goose.WithDisableGlobalRegistry(true), goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate %s: %w", where(s.cfg), err)
	}
	for _, r := range res {
		s.log.Info("applied migration", "version", r.Source.Version, "file", filepath.Base(r.Source.Path), "duration", r.Duration)
	}
	return nil
}

// Close stops accepting operations, lets the committers commit everything already
// queued, sends the last notifications and closes the pool. Calls after Close return
// store.ErrClosed; a second Close returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if !s.isClosed.CompareAndSwap(false, true) {
		s.mu.Unlock()
		return nil
	}
	close(s.queue)
	s.mu.Unlock()

	s.committersDone.Wait()
	s.notify.close()
	<-s.notifierDone
	s.stopBg()
	s.m.Unregister()
	s.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.isClosed.Load() {
		return store.ErrClosed
	}
	if _, err := s.pool.Exec(ctx, `SELECT 1`); err != nil {
		return s.opErr("ping", err)
	}
	return nil
}

// opErr wraps a failed operation's error; after Close every error is store.ErrClosed.
func (s *Store) opErr(what string, err error) error {
	if s.isClosed.Load() {
		return store.ErrClosed
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

// exec runs a write statement on the pool.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	if s.isClosed.Load() {
		return 0, store.ErrClosed
	}
	tag, err := s.pool.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// scanner is pgx.Row or pgx.Rows.
type scanner interface{ Scan(dest ...any) error }

// getOne runs a single-row read and scans it with scan; no row is store.ErrNotFound.
func getOne[T any](ctx context.Context, s *Store, what, id, query string, scan func(scanner) (T, error), args ...any) (T, error) {
	var zero T
	if s.isClosed.Load() {
		return zero, store.ErrClosed
	}
	v, err := scan(s.pool.QueryRow(ctx, query, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return zero, fmt.Errorf("%s %s: %w", what, quote(id), store.ErrNotFound)
	}
	if err != nil {
		return zero, s.opErr(what, err)
	}
	return v, nil
}

// getAll runs a read and scans every row. A row whose scan says it cannot be read
// (store.ErrUnreadable) is logged and left out; a keyed row stays, marked, so that the
// page token still continues after it.
func getAll[T any](ctx context.Context, s *Store, what, query string, scan func(scanner) (T, error), args ...any) ([]T, error) {
	if s.isClosed.Load() {
		return nil, store.ErrClosed
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, s.opErr(what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if errors.Is(err, store.ErrUnreadable) {
			s.log.ErrorContext(ctx, "a stored record cannot be read; it is left out of the list", "list", what, "err", err)
			if k, ok := any(&v).(interface{ markUnreadable() }); ok {
				k.markUnreadable()
				out = append(out, v)
			}
			continue
		}
		if err != nil {
			return nil, s.opErr(what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.opErr(what, err)
	}
	return out, nil
}

// retryDelay is the pause before a transaction that lost a deadlock runs again.
const retryDelay = 5 * time.Millisecond
