-- events and deliveries lose AUTOINCREMENT. With it, every INSERT into either table looked
-- its row up in sqlite_sequence and wrote it back, so every commit wrote that table's page
-- to the WAL and ran two more b-tree updates per delivery. SQLite can drop AUTOINCREMENT
-- only by rebuilding the table, so both are rebuilt here with the same columns, rows and
-- indexes.
--
-- What AUTOINCREMENT guaranteed for events, that a seq is never reused, is now kept by the
-- store: the writer gives every event its seq, one above the highest it has given, and
-- starts at Open above both the highest seq in the table and the events_seq_floor mark,
-- which the trigger below raises to the seq of every event deleted above it (pruning
-- every event cannot bring seqs back to 1; a consumer's cursor never skips a new event).
-- A delivery's rid only orders deliveries among themselves (listing ties, pruning), so a
-- rid that comes back after the newest deliveries were deleted is harmless, and the plain
-- rowid (the highest plus one) is enough.
--
-- events also loses events_receive_time, one more b-tree page per commit and one more
-- index entry per event. It served two queries:
-- * a delivery's events (DeliveryEvents): a delivery now lists the seqs of its events in
--   event_seqs, as comma-separated runs ("12-14,90"), one run per commit that stored
--   events for it (its first, a replay, a fetch), and they are read by seq. The rebuild
--   fills it from the events the old query found: same delivery id, workspace and
--   receive time.
-- * Prune: events now go in seq order up to the first one still within the retention, as
--   deliveries do (migration 11). An event committed out of receive-time order (a replay
--   keeps its delivery's receive time) goes with its neighbours.
--
-- The rebuild takes about 5 s per 300,000 events and deliveries on a 2-core machine.

-- +goose Up
CREATE TABLE events_rebuilt (
    seq             INTEGER PRIMARY KEY,
    id              TEXT    NOT NULL,
    workspace_id    TEXT    NOT NULL,
    connection_id   TEXT    NOT NULL,
    subscription_id TEXT    NOT NULL,
    event_key       TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    record          TEXT    NOT NULL,
    external_id     TEXT    NOT NULL DEFAULT '',
    delivery_id     TEXT    NOT NULL DEFAULT '',
    receive_time    INTEGER NOT NULL DEFAULT 0
);
INSERT INTO events_rebuilt (seq, id, workspace_id, connection_id, subscription_id, event_key, type, record,
        external_id, delivery_id, receive_time)
    SELECT seq, id, workspace_id, connection_id, subscription_id, event_key, type, record,
        external_id, delivery_id, receive_time FROM events ORDER BY seq;
INSERT INTO store_marks (name, value) SELECT 'events_seq_floor', MAX(
        COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
        COALESCE((SELECT MAX(seq) FROM events), 0));
DROP TABLE events;
ALTER TABLE events_rebuilt RENAME TO events;
CREATE INDEX events_workspace_seq ON events (workspace_id, seq);

-- +goose StatementBegin
CREATE TRIGGER events_seq_floor AFTER DELETE ON events
    WHEN OLD.seq > (SELECT value FROM store_marks WHERE name = 'events_seq_floor')
BEGIN
    UPDATE store_marks SET value = OLD.seq WHERE name = 'events_seq_floor';
END;
-- +goose StatementEnd

CREATE TABLE deliveries_rebuilt (
    rid               INTEGER PRIMARY KEY,
    id                TEXT    NOT NULL UNIQUE,
    workspace_id      TEXT    NOT NULL,
    subscription_id   TEXT    NOT NULL DEFAULT '',
    global_webhook_id TEXT    NOT NULL DEFAULT '',
    receive_time      INTEGER NOT NULL DEFAULT 0,
    status_code       INTEGER NOT NULL DEFAULT 0,
    outcome           TEXT    NOT NULL DEFAULT '',
    error             TEXT    NOT NULL DEFAULT '',
    event_count       INTEGER NOT NULL DEFAULT 0,
    request_size      INTEGER NOT NULL DEFAULT 0,
    selectors         TEXT,
    replay_count      INTEGER NOT NULL DEFAULT 0,
    event_seqs        TEXT    NOT NULL DEFAULT '',
    request_method    TEXT,
    request_path      TEXT,
    request_query     TEXT,
    request_headers   TEXT,
    request_body      BLOB
);
INSERT INTO deliveries_rebuilt (rid, id, workspace_id, subscription_id, global_webhook_id, receive_time, status_code,
        outcome, error, event_count, request_size, selectors, replay_count, request_method, request_path,
        request_query, request_headers, request_body)
    SELECT rid, id, workspace_id, subscription_id, global_webhook_id, receive_time, status_code,
        outcome, error, event_count, request_size, selectors, replay_count, request_method, request_path,
        request_query, request_headers, request_body FROM deliveries ORDER BY rid;
-- A delivery's events in runs of consecutive seqs: seq minus its rank within the delivery
-- is the same along a run.
UPDATE deliveries_rebuilt SET event_seqs = r.seqs FROM (
    SELECT delivery_id, workspace_id,
        group_concat(CASE WHEN lo = hi THEN CAST(lo AS TEXT) ELSE lo || '-' || hi END, ',' ORDER BY lo) AS seqs
    FROM (
        SELECT delivery_id, workspace_id, MIN(seq) AS lo, MAX(seq) AS hi FROM (
            SELECT e.delivery_id, e.workspace_id, e.seq,
                e.seq - ROW_NUMBER() OVER (PARTITION BY e.delivery_id, e.workspace_id ORDER BY e.seq) AS run
            FROM events AS e JOIN deliveries AS d
                ON d.id = e.delivery_id AND d.workspace_id = e.workspace_id AND d.receive_time = e.receive_time)
        GROUP BY delivery_id, workspace_id, run)
    GROUP BY delivery_id, workspace_id) AS r
WHERE deliveries_rebuilt.id = r.delivery_id AND deliveries_rebuilt.workspace_id = r.workspace_id;
DROP TABLE deliveries;
ALTER TABLE deliveries_rebuilt RENAME TO deliveries;
CREATE INDEX deliveries_workspace_time ON deliveries (workspace_id, receive_time);
CREATE INDEX deliveries_subscription_time ON deliveries (subscription_id, receive_time) WHERE subscription_id <> '';
CREATE INDEX deliveries_global_time ON deliveries (global_webhook_id, receive_time) WHERE global_webhook_id <> '';
CREATE INDEX deliveries_workspace_outcome_time ON deliveries (workspace_id, outcome, receive_time)
    WHERE outcome <> 'OK';
CREATE INDEX deliveries_subscription_outcome_time ON deliveries (subscription_id, outcome, receive_time)
    WHERE subscription_id <> '' AND outcome <> 'OK';
CREATE INDEX deliveries_global_outcome_time ON deliveries (global_webhook_id, outcome, receive_time)
    WHERE global_webhook_id <> '' AND outcome <> 'OK';
DELETE FROM sqlite_sequence WHERE name IN ('events', 'deliveries');

-- +goose Down
CREATE TABLE events_rebuilt (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL,
    workspace_id    TEXT    NOT NULL,
    connection_id   TEXT    NOT NULL,
    subscription_id TEXT    NOT NULL,
    event_key       TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    record          TEXT    NOT NULL,
    external_id     TEXT    NOT NULL DEFAULT '',
    delivery_id     TEXT    NOT NULL DEFAULT '',
    receive_time    INTEGER NOT NULL DEFAULT 0
);
INSERT INTO events_rebuilt SELECT seq, id, workspace_id, connection_id, subscription_id, event_key, type, record,
    external_id, delivery_id, receive_time FROM events ORDER BY seq;
DROP TABLE events;
ALTER TABLE events_rebuilt RENAME TO events;
CREATE INDEX events_workspace_seq ON events (workspace_id, seq);
CREATE INDEX events_receive_time ON events (receive_time);
-- AUTOINCREMENT's counter (the rename carried the rebuilt table's) is the highest seq ever
-- given, which the floor holds when the newest events were deleted.
DELETE FROM sqlite_sequence WHERE name = 'events';
INSERT INTO sqlite_sequence (name, seq) SELECT 'events', MAX(
    COALESCE((SELECT value FROM store_marks WHERE name = 'events_seq_floor'), 0),
    COALESCE((SELECT MAX(seq) FROM events), 0));
DELETE FROM store_marks WHERE name = 'events_seq_floor';

CREATE TABLE deliveries_rebuilt (
    rid               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT    NOT NULL UNIQUE,
    workspace_id      TEXT    NOT NULL,
    subscription_id   TEXT    NOT NULL DEFAULT '',
    global_webhook_id TEXT    NOT NULL DEFAULT '',
    receive_time      INTEGER NOT NULL DEFAULT 0,
    status_code       INTEGER NOT NULL DEFAULT 0,
    outcome           TEXT    NOT NULL DEFAULT '',
    error             TEXT    NOT NULL DEFAULT '',
    event_count       INTEGER NOT NULL DEFAULT 0,
    request_size      INTEGER NOT NULL DEFAULT 0,
    selectors         TEXT,
    replay_count      INTEGER NOT NULL DEFAULT 0,
    request_method    TEXT,
    request_path      TEXT,
    request_query     TEXT,
    request_headers   TEXT,
    request_body      BLOB
);
INSERT INTO deliveries_rebuilt SELECT rid, id, workspace_id, subscription_id, global_webhook_id, receive_time, status_code,
    outcome, error, event_count, request_size, selectors, replay_count, request_method, request_path,
    request_query, request_headers, request_body FROM deliveries ORDER BY rid;
DROP TABLE deliveries;
ALTER TABLE deliveries_rebuilt RENAME TO deliveries;
CREATE INDEX deliveries_workspace_time ON deliveries (workspace_id, receive_time);
CREATE INDEX deliveries_subscription_time ON deliveries (subscription_id, receive_time) WHERE subscription_id <> '';
CREATE INDEX deliveries_global_time ON deliveries (global_webhook_id, receive_time) WHERE global_webhook_id <> '';
CREATE INDEX deliveries_workspace_outcome_time ON deliveries (workspace_id, outcome, receive_time)
    WHERE outcome <> 'OK';
CREATE INDEX deliveries_subscription_outcome_time ON deliveries (subscription_id, outcome, receive_time)
    WHERE subscription_id <> '' AND outcome <> 'OK';
CREATE INDEX deliveries_global_outcome_time ON deliveries (global_webhook_id, outcome, receive_time)
    WHERE global_webhook_id <> '' AND outcome <> 'OK';
