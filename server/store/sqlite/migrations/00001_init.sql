-- hookmap schema, SQLite dialect.
--
-- Times are INTEGER nanoseconds since the Unix epoch, 0 for "not set". JSON-like values
-- (parameters, state, records) are TEXT holding JSON written by engine/value. Tables that
-- are listed page by page have an AUTOINCREMENT rid, so creation order is stable and a rid
-- is never reused. Events, deliveries and idempotency keys have no foreign keys: they
-- outlive the subscription that produced them and leave only through Prune.

-- +goose Up
CREATE TABLE workspaces (
    rid         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    create_time INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE api_keys (
    rid          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT    NOT NULL UNIQUE,
    workspace_id TEXT    NOT NULL REFERENCES workspaces (id),
    name         TEXT    NOT NULL,
    hash         BLOB    NOT NULL UNIQUE,
    create_time  INTEGER NOT NULL DEFAULT 0,
    revoke_time  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_workspace ON api_keys (workspace_id);

CREATE TABLE connector_parameters (
    workspace_id  TEXT    NOT NULL REFERENCES workspaces (id),
    connector_key TEXT    NOT NULL,
    sealed        BLOB    NOT NULL,
    update_time   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, connector_key)
) WITHOUT ROWID;

CREATE TABLE connections (
    rid           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT    NOT NULL UNIQUE,
    workspace_id  TEXT    NOT NULL REFERENCES workspaces (id),
    connector_key TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    parameters    TEXT,
    credentials   BLOB,
    create_time   INTEGER NOT NULL DEFAULT 0,
    update_time   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (workspace_id, id)
);
-- (workspace_id, rid): an index carries the rowid, so this lists a workspace in creation order.
CREATE INDEX connections_workspace ON connections (workspace_id);

CREATE TABLE subscriptions (
    rid                INTEGER PRIMARY KEY AUTOINCREMENT,
    id                 TEXT    NOT NULL UNIQUE,
    workspace_id       TEXT    NOT NULL,
    connection_id      TEXT    NOT NULL,
    connector_key      TEXT    NOT NULL,
    event_key          TEXT    NOT NULL,
    parameters         TEXT,
    state              TEXT,
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
    -- No cascade: deleting a connection that still has subscriptions fails.
    FOREIGN KEY (workspace_id, connection_id) REFERENCES connections (workspace_id, id)
);
CREATE INDEX subscriptions_workspace ON subscriptions (workspace_id);
CREATE INDEX subscriptions_connection ON subscriptions (workspace_id, connection_id);
CREATE INDEX subscriptions_route ON subscriptions (workspace_id, connector_key, global_webhook_key, selector);
CREATE INDEX subscriptions_next_refresh ON subscriptions (next_refresh_time) WHERE next_refresh_time > 0;
CREATE INDEX subscriptions_deleting ON subscriptions (status) WHERE status = 'DELETING';

CREATE TABLE global_webhooks (
    rid           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT    NOT NULL UNIQUE,
    workspace_id  TEXT    NOT NULL REFERENCES workspaces (id),
    connector_key TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    create_time   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (workspace_id, connector_key, key)
);

-- seq is AUTOINCREMENT: monotonic and never reused, even after the newest events are pruned.
CREATE TABLE events (
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
CREATE INDEX events_workspace_seq ON events (workspace_id, seq);
CREATE INDEX events_receive_time ON events (receive_time);

CREATE TABLE idempotency_keys (
    subscription_id TEXT    NOT NULL,
    external_id     TEXT    NOT NULL,
    create_time     INTEGER NOT NULL,
    PRIMARY KEY (subscription_id, external_id)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_create_time ON idempotency_keys (create_time);

-- request_* are set only for a kept request (request_method IS NOT NULL); the body is the
-- last column, so a read that stops before it never loads its overflow pages.
CREATE TABLE deliveries (
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
CREATE INDEX deliveries_workspace_time ON deliveries (workspace_id, receive_time);
CREATE INDEX deliveries_subscription_time ON deliveries (subscription_id, receive_time) WHERE subscription_id <> '';
CREATE INDEX deliveries_receive_time ON deliveries (receive_time);

CREATE TABLE consumers (
    workspace_id TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    cursor       INTEGER NOT NULL,
    update_time  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, name)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE consumers;
DROP TABLE deliveries;
DROP TABLE idempotency_keys;
DROP TABLE events;
DROP TABLE global_webhooks;
DROP TABLE subscriptions;
DROP TABLE connections;
DROP TABLE connector_parameters;
DROP TABLE api_keys;
DROP TABLE workspaces;
