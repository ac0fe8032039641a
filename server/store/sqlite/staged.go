package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"strings"
)

// Staged rows: a transaction's new events and new deliveries, inserted a batch at a time.
//
// Under load a transaction holds the deliveries of a dozen or more webhooks, each one new
// event and one new delivery. One INSERT per row cost each row its statement's fixed work
// (opening a cursor on the table and on each of its indexes, starting and halting the
// program, binding through the driver) on top of the b-tree work itself: about half of
// the 11 µs the two rows took. So the writer stages them and inserts each table's rows
// with one multi-row INSERT per power of two (13 rows: 8, 4 and 1), before any other
// statement of the transaction and before its COMMIT (flush): every statement still sees
// the rows staged before it.
//
// Only rows that cannot fail but for a reason that fails the transaction are staged: an
// event (its seq is the writer's own, above every seq given) and a delivery that is new
// (not a replay; its id is a new time-ordered id). Should a staged INSERT fail all the
// same (a delivery id that exists after all, a full disk), which row failed is unknown:
// the transaction is rolled back and run again without staging (runTx), where every row
// is inserted at once by its own op, and the op that fails fails alone.

// maxStagedRows is the most rows one multi-row INSERT holds, 1<<maxStagedShift: 64
// deliveries bind 1,152 arguments, well within SQLite's 32,766.
const (
	maxStagedShift = 6
	maxStagedRows  = 1 << maxStagedShift
)

// rowsInsert is an INSERT whose rows are staged: one prepared statement per power of two
// up to maxStagedRows, prepared when first used, and the arguments of the rows staged.
type rowsInsert struct {
	head  string // INSERT INTO table (columns) VALUES
	cols  int
	stmts [maxStagedShift + 1]*hotStmt // stmts[k] inserts 1<<k rows
	args  []any                        // the staged rows' arguments, row after row
}

func newRowsInsert(head string, cols int) *rowsInsert {
	return &rowsInsert{head: head, cols: cols}
}

// stage adds a row; args has the insert's cols arguments.
func (r *rowsInsert) stage(args ...any) {
	r.args = append(r.args, args...)
}

// staged is the number of rows staged.
func (r *rowsInsert) staged() int { return len(r.args) / r.cols }

// reset drops the staged rows.
func (r *rowsInsert) reset() {
	clear(r.args) // not to keep the values alive until the next transaction
	r.args = r.args[:0]
}

// flush inserts the staged rows and drops them, whether or not it succeeded.
func (r *rowsInsert) flush(s *Store) error {
	defer r.reset()
	for off, n := 0, r.staged(); n > 0; {
		k := min(bits.Len(uint(n)), len(r.stmts)) - 1 // the largest power of two up to n
		h, err := r.stmt(s, k)
		if err != nil {
			return err
		}
		rows := 1 << k
		if _, err := s.execHot(h, r.args[off:off+rows*r.cols]...); err != nil {
			return err
		}
		off, n = off+rows*r.cols, n-rows
	}
	return nil
}

// stmt returns the statement inserting 1<<k rows, preparing it when first asked for.
func (r *rowsInsert) stmt(s *Store, k int) (*hotStmt, error) {
	if h := r.stmts[k]; h != nil {
		return h, nil
	}
	row := "(" + strings.Repeat("?, ", r.cols-1) + "?)"
	var b strings.Builder
	b.WriteString(r.head)
	for i := range 1 << k {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	h := &hotStmt{query: b.String()}
	if err := s.prepareOne(context.Background(), h); err != nil {
		return nil, err
	}
	r.stmts[k] = h
	return h, nil
}

// close closes the statements prepared.
func (r *rowsInsert) close() error {
	var errs []error
	for k, h := range r.stmts {
		if h != nil {
			errs = append(errs, h.ds.Close())
			r.stmts[k] = nil
		}
	}
	return errors.Join(errs...)
}

// errStagedInsert marks the failure of a staged INSERT: the row that failed is unknown.
var errStagedInsert = errors.New("sqlite: staged insert")

// flush inserts the rows t staged. A failure is kept: every later statement of t fails
// with it, and runTx runs the transaction again without staging.
func (w *wtx) flush() error {
	if w.flushErr != nil {
		return w.flushErr
	}
	if w.s.staged.events.staged() == 0 && w.s.staged.deliveries.staged() == 0 {
		return nil
	}
	for _, r := range []*rowsInsert{w.s.staged.events, w.s.staged.deliveries} {
		if err := r.flush(w.s); err != nil {
			w.s.staged.reset()
			w.flushErr = fmt.Errorf("%w: %w", errStagedInsert, err)
			return w.flushErr
		}
	}
	return nil
}

// stagedInserts are the writer's staged rows (the writer's alone).
type stagedInserts struct {
	events, deliveries *rowsInsert
}

func newStagedInserts() stagedInserts {
	return stagedInserts{
		events:     newRowsInsert(sqlInsertEventHead, sqlInsertEventCols),
		deliveries: newRowsInsert(sqlInsertDeliveryHead, sqlDeliveryCols),
	}
}

func (st *stagedInserts) reset() {
	st.events.reset()
	st.deliveries.reset()
}

func (st *stagedInserts) close() error {
	if st.events == nil {
		return nil
	}
	return errors.Join(st.events.close(), st.deliveries.close())
}
