package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/pressly/goose/v3"
)

// sealStateVersion is the migration that seals subscription state. It is a Go migration
// (the key that seals is the caller's, not SQL's); the others are SQL files under
// migrations/.
const sealStateVersion = 3

// subscriptionsIndexes are the indexes of the subscriptions table (00001_init.sql),
// created again after the table is rebuilt.
var subscriptionsIndexes = []string{
	`CREATE INDEX subscriptions_workspace ON subscriptions (workspace_id)`,
	`CREATE INDEX subscriptions_connection ON subscriptions (workspace_id, connection_id)`,
	`CREATE INDEX subscriptions_route ON subscriptions (workspace_id, connector_key, global_webhook_key, selector)`,
	`CREATE INDEX subscriptions_next_refresh ON subscriptions (next_refresh_time) WHERE next_refresh_time > 0`,
	`CREATE INDEX subscriptions_deleting ON subscriptions (status) WHERE status = 'DELETING'`,
}

// sealStateMigration returns migration 3. Versions before it kept a subscription's state
// (which holds secrets: GitHub's hook secret, Stripe's whsec_ signing secret) as JSON in
// clear; from it on, subscriptions.state is a BLOB sealed by the caller like every other
// secret. The migration rebuilds the subscriptions table with each clear state sealed by
// Options.SealState, keeping every rid (and the AUTOINCREMENT sequence, so no rid is ever
// reused). Rebuilding, rather than updating rows in place, frees every page that held a
// clear state; Open runs migrations with secure_delete on, so those pages are zeroed, and
// truncates the WAL afterwards: no clear copy is left in the database files.
func (s *Store) sealStateMigration() *goose.Migration {
	return goose.NewGoMigration(sealStateVersion,
		&goose.GoFunc{RunTx: s.sealState},
		&goose.GoFunc{RunTx: func(context.Context, *sql.Tx) error {
			return errors.New("migration 3 cannot be undone: subscription state is sealed with the server's secret key")
		}})
}

func (s *Store) sealState(ctx context.Context, tx *sql.Tx) error {
	var hasClear bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM subscriptions WHERE state IS NOT NULL)`).Scan(&hasClear); err != nil {
		return err
	}
	if hasClear && s.opts.SealState == nil {
		return errors.New("subscriptions hold state in clear, written by an earlier version: " +
			"sealing it needs the server's secret key (Options.SealState)")
	}
	stmts := []string{
		`CREATE TABLE subscriptions_sealed (
			rid                INTEGER PRIMARY KEY AUTOINCREMENT,
			id                 TEXT    NOT NULL UNIQUE,
			workspace_id       TEXT    NOT NULL,
			connection_id      TEXT    NOT NULL,
			connector_key      TEXT    NOT NULL,
			event_key          TEXT    NOT NULL,
			parameters         TEXT,
			state              BLOB,
			webhook_secret     BLOB,
			status             TEXT    NOT NULL,
			last_error         TEXT    NOT NULL DEFAULT '',
			global_webhook_key TEXT    NOT NULL DEFAULT '',
			selector           TEXT    NOT NULL DEFAULT '',
			next_refresh_time  INTEGER NOT NULL DEFAULT 0,
			refresh_time       INTEGER NOT NULL DEFAULT 0,
			refresh_failures   INTEGER NOT NULL DEFAULT 0,
			last_event_time    INTEGER NOT NULL DEFAULT 0,
			create_time        INTEGER NOT NULL DEFAULT 0,
			update_time        INTEGER NOT NULL DEFAULT 0,
			FOREIGN KEY (workspace_id, connection_id) REFERENCES connections (workspace_id, id)
		)`,
		`INSERT INTO subscriptions_sealed (rid, id, workspace_id, connection_id, connector_key, event_key, parameters,
			state, webhook_secret, status, last_error, global_webhook_key, selector, next_refresh_time, refresh_time,
			refresh_failures, last_event_time, create_time, update_time)
		SELECT rid, id, workspace_id, connection_id, connector_key, event_key, parameters,
			NULL, webhook_secret, status, last_error, global_webhook_key, selector, next_refresh_time, refresh_time,
			refresh_failures, last_event_time, create_time, update_time
		FROM subscriptions`,
	}
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	sealed, err := s.sealClearStates(ctx, tx)
	if err != nil {
		return err
	}
	stmts = []string{
		// The new table's sequence is the old one's (its highest rid ever), not the highest
		// rid copied.
		`DELETE FROM sqlite_sequence WHERE name = 'subscriptions_sealed'`,
		`UPDATE sqlite_sequence SET name = 'subscriptions_sealed' WHERE name = 'subscriptions'`,
		`DROP TABLE subscriptions`,
		`ALTER TABLE subscriptions_sealed RENAME TO subscriptions`,
	}
	for _, q := range append(stmts, subscriptionsIndexes...) {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	if sealed > 0 {
		s.log.Info("sealed the subscription state written in clear by an earlier version", "subscriptions", sealed)
	}
	return nil
}

// sealClearStates seals, page by page, each clear state of subscriptions into
// subscriptions_sealed, and returns how many it sealed.
func (s *Store) sealClearStates(ctx context.Context, tx *sql.Tx) (int, error) {
	type row struct {
		rid   int64
		id    string
		state []byte
	}
	n := 0
	for after := int64(0); ; {
		rows, err := tx.QueryContext(ctx, `SELECT rid, id, state FROM subscriptions
			WHERE state IS NOT NULL AND rid > ? ORDER BY rid LIMIT 256`, after)
		if err != nil {
			return n, err
		}
		var page []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.rid, &r.id, &r.state); err != nil {
				rows.Close()
				return n, err
			}
			page = append(page, r)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return n, err
		}
		if len(page) == 0 {
			return n, nil
		}
		for _, r := range page {
			sealed, err := s.opts.SealState(r.id, r.state)
			if err != nil {
				return n, fmt.Errorf("seal the state of subscription %q: %w", r.id, err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE subscriptions_sealed SET state = ? WHERE rid = ?`, sealed, r.rid); err != nil {
				return n, err
			}
			n++
		}
		after = page[len(page)-1].rid
	}
}
