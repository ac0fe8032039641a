-- Event destinations: durable consumers that push the events of a filter to an outgoing
-- webhook. cursor is the highest seq queued (or skipped by the filter); queued events wait
-- in destination_events until acknowledged (then deleted) or parked (state FAILED);
-- pending and failed count them. An event's lane is its ordering key: its subscription,
-- or "connection/<id>" for a connection event (which has no subscription).
-- destination_lanes holds, per lane with pending events, its head (lowest pending seq) and
-- when the head is due, so finding what to send costs the number of lanes, not of queued
-- events. Every change of a queue locks
-- its destination's row first, so replicas (the sender and an API call) change it one at
-- a time. lease_owner/lease_until name the one process sending for a destination.

-- +goose Up
CREATE TABLE destinations (
    rid                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id       text        NOT NULL REFERENCES workspaces (id),
    id                 text        NOT NULL,
    webhook_id         text        NOT NULL,
    filter             json,
    retry_window       bigint      NOT NULL,
    status             text        NOT NULL,
    status_reason      text        NOT NULL DEFAULT '',
    cursor             bigint      NOT NULL DEFAULT 0,
    delivered          bigint      NOT NULL DEFAULT 0,
    pending            bigint      NOT NULL DEFAULT 0,
    failed             bigint      NOT NULL DEFAULT 0,
    last_delivery_time timestamptz,
    lease_owner        text        NOT NULL DEFAULT '',
    lease_until        timestamptz,
    create_time        timestamptz NOT NULL,
    update_time        timestamptz NOT NULL,
    UNIQUE (workspace_id, id)
);
CREATE INDEX destinations_status ON destinations (status, workspace_id, id);

CREATE TABLE destination_events (
    destination_rid    bigint      NOT NULL REFERENCES destinations (rid) ON DELETE CASCADE,
    seq                bigint      NOT NULL,
    event_id           text        NOT NULL,
    subscription_id    text        NOT NULL,
    connection_id      text        NOT NULL DEFAULT '',
    lane               text        NOT NULL,
    state              text        NOT NULL,
    attempts           integer     NOT NULL DEFAULT 0,
    first_attempt_time timestamptz,
    next_attempt_time  timestamptz,
    last_status        integer     NOT NULL DEFAULT 0,
    last_error         text        NOT NULL DEFAULT '',
    PRIMARY KEY (destination_rid, seq)
);
CREATE INDEX destination_events_lane ON destination_events (destination_rid, state, lane, seq);
CREATE INDEX destination_events_state ON destination_events (destination_rid, state, seq);

CREATE TABLE destination_lanes (
    destination_rid   bigint      NOT NULL REFERENCES destinations (rid) ON DELETE CASCADE,
    lane              text        NOT NULL,
    head_seq          bigint      NOT NULL,
    next_attempt_time timestamptz NOT NULL,
    PRIMARY KEY (destination_rid, lane)
);
CREATE INDEX destination_lanes_due ON destination_lanes (destination_rid, next_attempt_time, head_seq);

-- +goose Down
DROP TABLE destination_lanes;
DROP TABLE destination_events;
DROP TABLE destinations;
