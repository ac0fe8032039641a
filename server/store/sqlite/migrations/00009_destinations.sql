-- Event destinations: durable consumers that push the events of a filter to an outgoing
-- webhook. cursor is the highest seq queued (or skipped by the filter); queued events wait
-- in destination_events until acknowledged (then deleted) or parked (state FAILED);
-- pending and failed count them, kept by the same transactions. An event's lane is its
-- ordering key: its subscription, or "connection/<id>" for a connection event (which has
-- no subscription). destination_lanes holds, per lane with pending events, its head
-- (lowest pending seq) and when the head is due, so finding what to send costs the number
-- of lanes, not of queued events.
-- lease_owner/lease_until name the one process sending for a destination. Times are
-- INTEGER nanoseconds, 0 for none; retry_window is nanoseconds.

-- +goose Up
CREATE TABLE destinations (
    rid                INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id       TEXT    NOT NULL REFERENCES workspaces (id),
    id                 TEXT    NOT NULL,
    webhook_id         TEXT    NOT NULL,
    filter             TEXT,
    retry_window       INTEGER NOT NULL,
    status             TEXT    NOT NULL,
    status_reason      TEXT    NOT NULL DEFAULT '',
    cursor             INTEGER NOT NULL DEFAULT 0,
    delivered          INTEGER NOT NULL DEFAULT 0,
    pending            INTEGER NOT NULL DEFAULT 0,
    failed             INTEGER NOT NULL DEFAULT 0,
    last_delivery_time INTEGER NOT NULL DEFAULT 0,
    lease_owner        TEXT    NOT NULL DEFAULT '',
    lease_until        INTEGER NOT NULL DEFAULT 0,
    create_time        INTEGER NOT NULL DEFAULT 0,
    update_time        INTEGER NOT NULL DEFAULT 0,
    UNIQUE (workspace_id, id)
);
CREATE INDEX destinations_status ON destinations (status);

CREATE TABLE destination_events (
    destination_rid   INTEGER NOT NULL REFERENCES destinations (rid) ON DELETE CASCADE,
    seq               INTEGER NOT NULL,
    event_id          TEXT    NOT NULL,
    subscription_id   TEXT    NOT NULL,
    connection_id     TEXT    NOT NULL DEFAULT '',
    lane              TEXT    NOT NULL,
    state             TEXT    NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    first_attempt_time INTEGER NOT NULL DEFAULT 0,
    next_attempt_time INTEGER NOT NULL DEFAULT 0,
    last_status       INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (destination_rid, seq)
) WITHOUT ROWID;
-- A lane's next pending event is the first entry of this index after (rid, PENDING, lane).
CREATE INDEX destination_events_lane ON destination_events (destination_rid, state, lane, seq);
-- The parked (or pending) events of a destination in seq order, for listing them.
CREATE INDEX destination_events_state ON destination_events (destination_rid, state, seq);

CREATE TABLE destination_lanes (
    destination_rid   INTEGER NOT NULL REFERENCES destinations (rid) ON DELETE CASCADE,
    lane              TEXT    NOT NULL,
    head_seq          INTEGER NOT NULL,
    next_attempt_time INTEGER NOT NULL,
    PRIMARY KEY (destination_rid, lane)
) WITHOUT ROWID;
CREATE INDEX destination_lanes_due ON destination_lanes (destination_rid, next_attempt_time, head_seq);

-- +goose Down
DROP TABLE destination_lanes;
DROP TABLE destination_events;
DROP TABLE destinations;
