-- Fetches: runs of an event's fetch method that deliveries ask for (the app's notification
-- only says that something changed; the events are fetched from its API afterwards).
--
-- A fetch is inserted in its delivery's transaction and deleted once a run committed its
-- events. A subscription's unfinished fetches (status PENDING or RETRYING) run one at a
-- time in rid order: a run leases the oldest (lease_token, lease_until) and the others
-- wait for it. FAILED fetches are kept for ReplayDelivery until pruned.
--
-- delivery_fetches is a delivery's fetch summary, read with the delivery. It is a table
-- of its own rather than columns of deliveries so that the kept request body stays the
-- last column there (a read that stops before it never loads its overflow pages); its
-- column names differ from deliveries' so that conditions on a join need no table name.

-- +goose Up
CREATE TABLE fetches (
    rid               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT    NOT NULL UNIQUE,
    workspace_id      TEXT    NOT NULL,
    subscription_id   TEXT    NOT NULL,
    delivery_id       TEXT    NOT NULL,
    delivery_time     INTEGER NOT NULL DEFAULT 0,
    data              TEXT,
    status            TEXT    NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    runs              INTEGER NOT NULL DEFAULT 0,
    next_attempt_time INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT    NOT NULL DEFAULT '',
    lease_token       TEXT    NOT NULL DEFAULT '',
    lease_until       INTEGER NOT NULL DEFAULT 0,
    create_time       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX fetches_subscription ON fetches (subscription_id, rid) WHERE status <> 'FAILED';
CREATE INDEX fetches_due ON fetches (next_attempt_time) WHERE status <> 'FAILED';
CREATE INDEX fetches_delivery ON fetches (delivery_id);
CREATE INDEX fetches_failed ON fetches (create_time) WHERE status = 'FAILED';

CREATE TABLE delivery_fetches (
    delivery_id    TEXT    NOT NULL PRIMARY KEY,
    fetch_status   TEXT    NOT NULL,
    fetch_attempts INTEGER NOT NULL DEFAULT 0,
    fetch_time     INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX delivery_fetches_time ON delivery_fetches (fetch_time);

-- +goose Down
DROP TABLE delivery_fetches;
DROP TABLE fetches;
