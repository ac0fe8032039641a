package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hookmap/hookmap/engine/value"
	"github.com/hookmap/hookmap/server/store"
	"github.com/hookmap/hookmap/server/store/pagetoken"
)

// ListEvents: limit <= 0 means defaultEventsLimit; larger limits are capped at maxEventsLimit.
const (
	defaultEventsLimit = 100
	maxEventsLimit     = 10000
)

// now is the store's clock for the times it sets itself, with the microseconds
// PostgreSQL keeps.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

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

// ts encodes a time; the zero time is NULL.
func ts(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: t, Valid: true}
}

// tsSorted encodes a time of a NOT NULL column: the zero time is -infinity, which sorts
// first, as the zero time does.
func tsSorted(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{Valid: true, InfinityModifier: pgtype.NegativeInfinity}
	}
	return pgtype.Timestamptz{Time: t, Valid: true}
}

// fromTS decodes a time in UTC; NULL and -infinity are the zero time.
func fromTS(t pgtype.Timestamptz) time.Time {
	if !t.Valid || t.InfinityModifier != pgtype.Finite {
		return time.Time{}
	}
	return t.Time.UTC()
}

// micros is a time as microseconds since the epoch (page tokens), 0 for the zero time.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// clean makes s storable as PostgreSQL text: NUL characters and invalid UTF-8 become
// U+FFFD. Free text that a webhook sender controls goes through it.
func clean(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// encodeMap encodes a JSON-like map; nil stays NULL.
func encodeMap(m map[string]any) (*string, error) {
	if m == nil {
		return nil, nil
	}
	b, err := value.Encode(m)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

func decodeMap(s *string) (map[string]any, error) {
	if s == nil {
		return nil, nil
	}
	v, err := value.DecodeStored([]byte(*s))
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok && v != nil {
		return nil, fmt.Errorf("stored value is a %T, want an object", v)
	}
	return m, nil
}

// encodeJSON encodes a plain Go value (selectors, headers) with encoding/json; nil stays NULL.
func encodeJSON[T any](v T, isNil bool) (*string, error) {
	if isNil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

func decodeJSON[T any](s *string) (T, error) {
	var v T
	if s == nil {
		return v, nil
	}
	err := json.Unmarshal([]byte(*s), &v)
	return v, err
}

// keyed is a listed record with the sort key its page token continues after.
type keyed[T any] struct {
	key int64
	v   T
	bad bool // the record cannot be read: its key still counts for the page token
}

func (k *keyed[T]) markUnreadable() { k.bad = true }

// unreadable is the error of a stored value that cannot be decoded.
func unreadable(what string, err error) error {
	return fmt.Errorf("%s: %w: %v", what, store.ErrUnreadable, err)
}

// quote quotes an id for an error message, shortened: errors of a lookup by a client's id
// reach the client.
func quote(id string) string { return strconv.Quote(value.Shorten(id, 64)) }

// paginate trims a list read with LIMIT size+1 to size and makes the next page token
// from the last row's key.
func paginate[T any](rows []keyed[T], size int, kind string) ([]T, string) {
	return trimPage(rows, size, func(last keyed[T]) string { return pagetoken.Encode(kind, last.key) })
}

// paginateByTime is paginate for lists ordered by (time DESC, rid DESC): the token holds
// both.
func paginateByTime[T any](rows []keyed[T], size int, kind string, at func(T) time.Time) ([]T, string) {
	return trimPage(rows, size, func(last keyed[T]) string { return pagetoken.Encode(kind, micros(at(last.v)), last.key) })
}

func trimPage[T any](rows []keyed[T], size int, token func(last keyed[T]) string) ([]T, string) {
	next := ""
	if len(rows) > size {
		rows = rows[:size]
		next = token(rows[size-1])
	}
	out := make([]T, 0, len(rows))
	for _, r := range rows {
		if !r.bad {
			out = append(out, r.v)
		}
	}
	return out, next
}

// SQLSTATE codes the store tells apart.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeDeadlock            = "40P01"
	codeSerialization       = "40001"
)

func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// insertErr maps an insert's error: a duplicate to store.ErrAlreadyExists, a missing
// parent (foreign key) to store.ErrNotFound.
func (s *Store) insertErr(what, id, parent string, err error) error {
	switch {
	case err == nil:
		return nil
	case pgCode(err) == codeUniqueViolation:
		return fmt.Errorf("%s %s: %w", what, quote(id), store.ErrAlreadyExists)
	case pgCode(err) == codeForeignKeyViolation:
		return fmt.Errorf("%s %s: %s: %w", what, quote(id), parent, store.ErrNotFound)
	default:
		return s.opErr("insert "+what+" "+strconv.Quote(id), err)
	}
}

// mustAffect turns an UPDATE or DELETE that matched nothing into store.ErrNotFound.
func (s *Store) mustAffect(n int64, err error, what, id string) error {
	if err != nil {
		return s.opErr(what+" "+strconv.Quote(id), err)
	}
	if n == 0 {
		return fmt.Errorf("%s %s: %w", what, quote(id), store.ErrNotFound)
	}
	return nil
}
