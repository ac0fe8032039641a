package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/server/store"
)

// ListEvents: limit <= 0 means defaultEventsLimit; larger limits are capped at maxEventsLimit.
const (
	defaultEventsLimit = 100
	maxEventsLimit     = 10000
)

// now is the store's clock for the times it sets itself. It keeps microseconds, what
// every backend (Postgres included) stores, so all backends return the same times.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// nanos encodes a time as nanoseconds since the epoch, 0 for the zero time.
// createTimes fills a new record's zero times: created now, updated when created.
func createTimes(created, updated time.Time) (time.Time, time.Time) {
	if created.IsZero() {
		created = now()
	}
	if updated.IsZero() {
		updated = created
	}
	return created, updated
}

// orNow is t, or now when t is zero.
func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return now()
	}
	return t
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos decodes nanos; times come back in UTC.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// encodeMap encodes a JSON-like map; nil stays NULL.
func encodeMap(m map[string]any) (any, error) {
	if m == nil {
		return nil, nil
	}
	b, err := value.Encode(m)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func decodeMap(s sql.NullString) (map[string]any, error) {
	if !s.Valid {
		return nil, nil
	}
	v, err := value.DecodeStored([]byte(s.String))
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok && v != nil {
		return nil, fmt.Errorf("stored value is a %T, want an object", v)
	}
	return m, nil
}

func encodeValue(v any) (string, error) {
	return value.EncodeString(v)
}

// encodeJSON encodes a plain Go value (selectors, headers) with encoding/json; nil stays NULL.
func encodeJSON[T any](v T, isNil bool) (any, error) {
	if isNil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func decodeJSON[T any](s sql.NullString) (T, error) {
	var v T
	if !s.Valid {
		return v, nil
	}
	err := json.Unmarshal([]byte(s.String), &v)
	return v, err
}

// blob keeps nil and empty byte slices apart: nil is NULL.
func blob(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

func isUniqueViolation(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

func isFKViolation(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// quote quotes an id for an error message, shortened: errors of a lookup by a client's id
// reach the client.
func quote(id string) string { return strconv.Quote(value.Shorten(id, 64)) }

// insertErr maps an insert's error: a duplicate to store.ErrAlreadyExists, a missing
// parent (foreign key) to store.ErrNotFound.
func insertErr(what, id string, parent string, err error) error {
	switch {
	case err == nil:
		return nil
	case isUniqueViolation(err):
		return fmt.Errorf("%s %s: %w", what, quote(id), store.ErrAlreadyExists)
	case isFKViolation(err):
		return fmt.Errorf("%s %s: %s: %w", what, quote(id), parent, store.ErrNotFound)
	default:
		return fmt.Errorf("sqlite: insert %s %q: %w", what, id, err)
	}
}

// mustAffect turns an UPDATE or DELETE that matched nothing into store.ErrNotFound.
func mustAffect(res sql.Result, err error, what, id string) error {
	if err != nil {
		return fmt.Errorf("sqlite: %s %q: %w", what, id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: %s %q: %w", what, id, err)
	}
	if n == 0 {
		return fmt.Errorf("%s %s: %w", what, quote(id), store.ErrNotFound)
	}
	return nil
}

// readErr wraps a read's error; after Close every error is store.ErrClosed.
func (s *Store) readErr(what string, err error) error {
	if s.isClosed.Load() {
		return store.ErrClosed
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}

// rstmt returns the statement for query prepared on the read pool (prepared once).
func (s *Store) rstmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s.stmtsMu.RLock()
	st, ok := s.readStmt[query]
	s.stmtsMu.RUnlock()
	if ok {
		return st, nil
	}
	s.stmtsMu.Lock()
	defer s.stmtsMu.Unlock()
	if s.readStmt == nil {
		return nil, store.ErrClosed
	}
	if st, ok := s.readStmt[query]; ok {
		return st, nil
	}
	st, err := s.r.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s.readStmt[query] = st
	return st, nil
}

// query runs a read. Queries built from filters vary; only fixed ones are worth caching.
func (s *Store) query(ctx context.Context, what, query string, cache bool, args ...any) (*sql.Rows, error) {
	if s.isClosed.Load() {
		return nil, store.ErrClosed
	}
	var rows *sql.Rows
	var err error
	if cache {
		var st *sql.Stmt
		if st, err = s.rstmt(ctx, query); err == nil {
			rows, err = st.QueryContext(ctx, args...)
		}
	} else {
		rows, err = s.r.QueryContext(ctx, query, args...)
	}
	if err != nil {
		return nil, s.readErr(what, err)
	}
	return rows, nil
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// getOne runs a single-row read and scans it with scan; no row is store.ErrNotFound.
func getOne[T any](ctx context.Context, s *Store, what, id, query string, scan func(scanner) (T, error), args ...any) (T, error) {
	var zero T
	rows, err := s.query(ctx, what, query, true, args...)
	if err != nil {
		return zero, err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return zero, s.readErr(what, err)
		}
		return zero, fmt.Errorf("%s %s: %w", what, quote(id), store.ErrNotFound)
	}
	v, err := scan(rows)
	if err != nil {
		return zero, s.readErr(what, err)
	}
	return v, nil
}

// unreadable is the error of a stored value that cannot be decoded.
func unreadable(what string, err error) error {
	return fmt.Errorf("%s: %w: %v", what, store.ErrUnreadable, err)
}

// getAll runs a read and scans every row. A row whose scan says it cannot be read
// (store.ErrUnreadable) is logged and left out; a keyed row stays, marked, so that the
// page token still continues after it.
func getAll[T any](ctx context.Context, s *Store, what, query string, cache bool, scan func(scanner) (T, error), args ...any) ([]T, error) {
	rows, err := s.query(ctx, what, query, cache, args...)
	if err != nil {
		return nil, err
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
			return nil, s.readErr(what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr(what, err)
	}
	return out, nil
}

// placeholders returns "?, ?, …" for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
