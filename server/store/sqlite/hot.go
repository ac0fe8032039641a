package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
)

// The writer's connection and its hot statements.
//
// The writer holds its one connection for good (Store.wc) and runs the statements of the
// ingest path (a delivery, its events, BEGIN and COMMIT) through the driver itself, each
// prepared once, with arguments in a slice it reuses. database/sql costs each statement
// about 1.5 µs of CPU and a kilobyte of garbage (it converts every argument into a new
// slice, and looks after a context and a connection the writer never shares), and each
// transaction a context and a goroutine; under load that was several µs per webhook
// (docs/performance.md). A transaction's new events and deliveries go through multi-row
// statements prepared the same way (staged.go). Every other statement of a write goes
// through database/sql on the same connection (wtx.exec, wtx.queryRow).

// hotStmt is a statement prepared on the writer's connection, run by execHot.
type hotStmt struct {
	query string
	// apart: it neither reads nor writes events or deliveries, so it may run before the
	// rows staged ahead of it are inserted (staged.go).
	apart bool
	ds    driver.Stmt
	nv    []driver.NamedValue // its arguments, reused from one run to the next (the writer's alone)
}

// hotStmts are the statements of CommitDelivery, AckEvents and the writer's transactions.
type hotStmts struct {
	upsertDelivery, insertKey, insertEvent, touchSubscription, setState, ackConsumer *hotStmt
	begin, commit, rollback                                                          *hotStmt
}

func (h *hotStmts) all() []*hotStmt {
	return []*hotStmt{h.upsertDelivery, h.insertKey, h.insertEvent, h.touchSubscription, h.setState,
		h.ackConsumer, h.begin, h.commit, h.rollback}
}

// prepareHot prepares the hot statements on the writer's connection.
func (s *Store) prepareHot(ctx context.Context) error {
	s.hot = hotStmts{
		upsertDelivery:    &hotStmt{query: sqlUpsertDelivery},
		insertKey:         &hotStmt{query: sqlInsertKey, apart: true},
		insertEvent:       &hotStmt{query: sqlInsertEvent},
		touchSubscription: &hotStmt{query: sqlTouchSubscription, apart: true},
		setState:          &hotStmt{query: sqlSetState, apart: true},
		ackConsumer:       &hotStmt{query: sqlAckConsumer, apart: true},
		begin:             &hotStmt{query: "BEGIN IMMEDIATE"},
		commit:            &hotStmt{query: "COMMIT"},
		rollback:          &hotStmt{query: "ROLLBACK"},
	}
	s.staged = newStagedInserts()
	for _, h := range s.hot.all() {
		if err := s.prepareOne(ctx, h); err != nil {
			return err
		}
	}
	return nil
}

// prepareOne prepares h on the writer's connection.
func (s *Store) prepareOne(ctx context.Context, h *hotStmt) error {
	return s.wc.Raw(func(dc any) error {
		cp, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return errors.New("sqlite: the driver's connection cannot prepare with a context")
		}
		ds, err := cp.PrepareContext(ctx, h.query)
		if err != nil {
			return fmt.Errorf("sqlite: prepare: %w", err)
		}
		if _, ok := ds.(driver.StmtExecContext); !ok {
			_ = ds.Close()
			return errors.New("sqlite: the driver's statement cannot execute with a context")
		}
		h.ds = ds
		return nil
	})
}

// closeHot closes the hot statements (the writer has stopped).
func (s *Store) closeHot() error {
	var errs []error
	_ = s.wc.Raw(func(any) error {
		for _, h := range s.hot.all() {
			if h != nil && h.ds != nil {
				errs = append(errs, h.ds.Close())
				h.ds = nil
			}
		}
		errs = append(errs, s.staged.close())
		return nil
	})
	return errors.Join(errs...)
}

// execHot runs h with args on the writer's connection.
func (s *Store) execHot(h *hotStmt, args ...any) (driver.Result, error) {
	h.nv = h.nv[:0]
	for i, a := range args {
		v, err := driverValue(a)
		if err != nil {
			return nil, fmt.Errorf("sqlite: argument %d: %w", i+1, err)
		}
		h.nv = append(h.nv, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	var res driver.Result
	err := s.wc.Raw(func(any) error {
		var err error
		res, err = h.ds.(driver.StmtExecContext).ExecContext(writeCtx, h.nv)
		return err
	})
	clear(h.nv) // not to keep the values alive until the next run
	return res, err
}

// driverValue converts an argument as database/sql's default converter would, without
// reflection for the types the writer passes.
func driverValue(a any) (driver.Value, error) {
	switch v := a.(type) {
	case nil, string, []byte, int64, float64, bool:
		return v, nil
	case int:
		return int64(v), nil
	default:
		return driver.DefaultParameterConverter.ConvertValue(a)
	}
}
