-- Outgoing webhooks and their invocation records.
--
-- A webhook's id is chosen by the client and unique per workspace, not globally.
-- header_names and query_params are JSON arrays in clear; headers (a JSON object of
-- values) and signing_secret are sealed by the caller and stored as ciphertext only.
-- timeout and duration are INTEGER nanoseconds. Invocation records have no foreign key:
-- they outlive the webhook (an audit trail) and leave only through PruneInvocations.

-- +goose Up
CREATE TABLE outgoing_webhooks (
    rid              INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id     TEXT    NOT NULL REFERENCES workspaces (id),
    id               TEXT    NOT NULL,
    url              TEXT    NOT NULL,
    method           TEXT    NOT NULL,
    header_names     TEXT,
    headers          BLOB,
    query_params     TEXT,
    payload_encoding TEXT    NOT NULL,
    content_type     TEXT    NOT NULL DEFAULT '',
    timeout          INTEGER NOT NULL DEFAULT 0,
    signing_secret   BLOB,
    max_attempts     INTEGER NOT NULL DEFAULT 1,
    follow_redirects INTEGER NOT NULL DEFAULT 0,
    create_time      INTEGER NOT NULL DEFAULT 0,
    update_time      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (workspace_id, id)
);

CREATE TABLE outgoing_invocations (
    rid           INTEGER PRIMARY KEY AUTOINCREMENT,
    reference_id  TEXT    NOT NULL UNIQUE,
    workspace_id  TEXT    NOT NULL,
    webhook_id    TEXT    NOT NULL,
    time          INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    status        INTEGER NOT NULL DEFAULT 0,
    duration      INTEGER NOT NULL DEFAULT 0,
    request_size  INTEGER NOT NULL DEFAULT 0,
    response_size INTEGER NOT NULL DEFAULT 0,
    error         INTEGER NOT NULL DEFAULT 0,
    error_message TEXT    NOT NULL DEFAULT ''
);
-- (…, rid) is implied: an index carries the rowid, so newest-first pages are index scans.
CREATE INDEX outgoing_invocations_workspace_time ON outgoing_invocations (workspace_id, time);
CREATE INDEX outgoing_invocations_webhook_time ON outgoing_invocations (workspace_id, webhook_id, time);
CREATE INDEX outgoing_invocations_time ON outgoing_invocations (time);

-- +goose Down
DROP TABLE outgoing_invocations;
DROP TABLE outgoing_webhooks;
