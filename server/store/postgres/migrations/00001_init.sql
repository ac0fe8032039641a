-- hookmap schema, PostgreSQL dialect.
--
-- Times are timestamptz (microseconds), NULL for "not set" ('-infinity' in the columns
-- that are sorted or pruned by, so that they can be NOT NULL and indexed). JSON-like
-- values (parameters, records, selectors, headers) are json: the exact text hookmap wrote
-- (integers exact, key order kept), unlike jsonb. Secrets (credentials, connector
-- parameters, webhook secrets, subscription state, outgoing header values and signing
-- secrets) are bytea sealed by hookmap with its --secret-key before they reach the
-- database. Tables listed
-- page by page have an identity rid, so creation order is stable. Events, deliveries and
-- idempotency keys have no foreign keys: they outlive the subscription that produced them
-- and leave only through pruning.

-- +goose Up
CREATE TABLE workspaces (
    rid         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          text        NOT NULL UNIQUE,
    name        text        NOT NULL,
    create_time timestamptz NOT NULL
);

CREATE TABLE api_keys (
    rid          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           text        NOT NULL UNIQUE,
    workspace_id text        NOT NULL REFERENCES workspaces (id),
    name         text        NOT NULL,
    hash         bytea       NOT NULL UNIQUE,
    create_time  timestamptz NOT NULL,
    revoke_time  timestamptz
);
CREATE INDEX api_keys_workspace ON api_keys (workspace_id);

CREATE TABLE connector_parameters (
    workspace_id  text        NOT NULL REFERENCES workspaces (id),
    connector_key text        NOT NULL,
    sealed        bytea       NOT NULL,
    update_time   timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, connector_key)
);

CREATE TABLE connections (
    rid           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            text        NOT NULL UNIQUE,
    workspace_id  text        NOT NULL REFERENCES workspaces (id),
    connector_key text        NOT NULL,
    name          text        NOT NULL,
    parameters    json,
    credentials   bytea,
    create_time   timestamptz NOT NULL,
    update_time   timestamptz NOT NULL,
    UNIQUE (workspace_id, id)
);
CREATE INDEX connections_workspace ON connections (workspace_id, rid);

-- lease_owner and lease_until: the process that claimed the subscription for background
-- work (a due refresh, an unsubscribe retry) and until when, by the database's clock.
CREATE TABLE subscriptions (
    rid                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                 text        NOT NULL UNIQUE,
    workspace_id       text        NOT NULL,
    connection_id      text        NOT NULL,
    connector_key      text        NOT NULL,
    event_key          text        NOT NULL,
    parameters         json,
    state              bytea,
    webhook_secret     bytea,
    status             text        NOT NULL,
    last_error         text        NOT NULL DEFAULT '',
    global_webhook_key text        NOT NULL DEFAULT '',
    selector           text        NOT NULL DEFAULT '',
    next_refresh_time  timestamptz,
    refresh_time       timestamptz,
    refresh_failures   integer     NOT NULL DEFAULT 0,
    last_event_time    timestamptz,
    create_time        timestamptz NOT NULL,
    update_time        timestamptz NOT NULL,
    lease_owner        text        NOT NULL DEFAULT '',
    lease_until        timestamptz,
    -- No cascade: deleting a connection that still has subscriptions fails.
    FOREIGN KEY (workspace_id, connection_id) REFERENCES connections (workspace_id, id)
);
CREATE INDEX subscriptions_workspace ON subscriptions (workspace_id, rid);
CREATE INDEX subscriptions_connection ON subscriptions (workspace_id, connection_id, rid);
CREATE INDEX subscriptions_route ON subscriptions (workspace_id, connector_key, global_webhook_key, selector);
CREATE INDEX subscriptions_next_refresh ON subscriptions (next_refresh_time) WHERE status IN ('ACTIVE', 'DELETING');

CREATE TABLE global_webhooks (
    rid           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            text        NOT NULL UNIQUE,
    workspace_id  text        NOT NULL REFERENCES workspaces (id),
    connector_key text        NOT NULL,
    key           text        NOT NULL,
    create_time   timestamptz NOT NULL,
    UNIQUE (workspace_id, connector_key, key)
);

-- event_seqs holds each workspace's last assigned seq. A delivery's transaction takes the
-- next seqs by updating its workspace's row, which it then holds locked until it commits:
-- seqs are handed out in commit order, so a stream that has read seq n has every seq
-- below n (none can commit later). The row is never deleted, so a seq is never reused.
CREATE TABLE event_seqs (
    workspace_id text   PRIMARY KEY,
    last_seq     bigint NOT NULL
);

CREATE TABLE events (
    workspace_id    text        NOT NULL,
    seq             bigint      NOT NULL,
    id              text        NOT NULL,
    connection_id   text        NOT NULL,
    subscription_id text        NOT NULL,
    event_key       text        NOT NULL,
    type            text        NOT NULL,
    record          json        NOT NULL,
    external_id     text        NOT NULL DEFAULT '',
    delivery_id     text        NOT NULL DEFAULT '',
    receive_time    timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, seq)
);
-- Pruning, and a delivery's events (which carry its receive time).
CREATE INDEX events_receive_time ON events (receive_time, delivery_id);

-- The unique key is the cross-replica dedup: a second transaction inserting the same key
-- waits for the first and then skips it.
CREATE TABLE idempotency_keys (
    subscription_id text        NOT NULL,
    external_id     text        NOT NULL,
    create_time     timestamptz NOT NULL,
    PRIMARY KEY (subscription_id, external_id)
);
CREATE INDEX idempotency_keys_create_time ON idempotency_keys (create_time);

-- request_* are set only for a kept request (request_method IS NOT NULL).
CREATE TABLE deliveries (
    rid               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                text        NOT NULL UNIQUE,
    workspace_id      text        NOT NULL,
    subscription_id   text        NOT NULL DEFAULT '',
    global_webhook_id text        NOT NULL DEFAULT '',
    receive_time      timestamptz NOT NULL,
    status_code       integer     NOT NULL DEFAULT 0,
    outcome           text        NOT NULL DEFAULT '',
    error             text        NOT NULL DEFAULT '',
    event_count       integer     NOT NULL DEFAULT 0,
    request_size      bigint      NOT NULL DEFAULT 0,
    selectors         json,
    replay_count      integer     NOT NULL DEFAULT 0,
    request_method    text,
    request_path      text,
    request_query     text,
    request_headers   json,
    request_body      bytea
);
-- Each filter of ListDeliveries pages newest first from an index: its equalities, then
-- (receive_time, rid).
CREATE INDEX deliveries_workspace_time ON deliveries (workspace_id, receive_time, rid);
CREATE INDEX deliveries_workspace_outcome_time ON deliveries (workspace_id, outcome, receive_time, rid);
CREATE INDEX deliveries_subscription_time ON deliveries (subscription_id, receive_time, rid) WHERE subscription_id <> '';
CREATE INDEX deliveries_subscription_outcome_time ON deliveries (subscription_id, outcome, receive_time, rid) WHERE subscription_id <> '';
CREATE INDEX deliveries_global_time ON deliveries (global_webhook_id, receive_time, rid) WHERE global_webhook_id <> '';
CREATE INDEX deliveries_global_outcome_time ON deliveries (global_webhook_id, outcome, receive_time, rid) WHERE global_webhook_id <> '';
CREATE INDEX deliveries_receive_time ON deliveries (receive_time);

CREATE TABLE consumers (
    workspace_id text        NOT NULL,
    name         text        NOT NULL,
    cursor       bigint      NOT NULL,
    update_time  timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, name)
);

-- The newest stream of each consumer, over every replica: a stream whose generation is
-- lower than its consumer's is replaced and ends.
CREATE TABLE consumer_streams (
    workspace_id text        NOT NULL,
    name         text        NOT NULL,
    generation   bigint      NOT NULL,
    open_time    timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, name)
);

-- Outgoing webhooks: a webhook's id is chosen by the client and unique per workspace.
-- header_names and query_params are JSON arrays in clear; headers (a JSON object of
-- values) and signing_secret are sealed. timeout and duration are nanoseconds.
-- Invocation records have no foreign key: they outlive the webhook (an audit trail).
CREATE TABLE outgoing_webhooks (
    rid              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id     text        NOT NULL REFERENCES workspaces (id),
    id               text        NOT NULL,
    url              text        NOT NULL,
    method           text        NOT NULL,
    header_names     json,
    headers          bytea,
    query_params     json,
    payload_encoding text        NOT NULL,
    content_type     text        NOT NULL DEFAULT '',
    timeout          bigint      NOT NULL DEFAULT 0,
    signing_secret   bytea,
    max_attempts     integer     NOT NULL DEFAULT 1,
    follow_redirects boolean     NOT NULL DEFAULT false,
    create_time      timestamptz NOT NULL,
    update_time      timestamptz NOT NULL,
    UNIQUE (workspace_id, id)
);

CREATE TABLE outgoing_invocations (
    rid           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reference_id  text        NOT NULL UNIQUE,
    workspace_id  text        NOT NULL,
    webhook_id    text        NOT NULL,
    time          timestamptz NOT NULL,
    attempts      integer     NOT NULL DEFAULT 0,
    status        integer     NOT NULL DEFAULT 0,
    duration      bigint      NOT NULL DEFAULT 0,
    request_size  bigint      NOT NULL DEFAULT 0,
    response_size bigint      NOT NULL DEFAULT 0,
    error         boolean     NOT NULL DEFAULT false,
    error_message text        NOT NULL DEFAULT ''
);
CREATE INDEX outgoing_invocations_workspace_time ON outgoing_invocations (workspace_id, time, rid);
CREATE INDEX outgoing_invocations_webhook_time ON outgoing_invocations (workspace_id, webhook_id, time, rid);
CREATE INDEX outgoing_invocations_time ON outgoing_invocations (time);

-- +goose Down
DROP TABLE outgoing_invocations;
DROP TABLE outgoing_webhooks;
DROP TABLE consumer_streams;
DROP TABLE consumers;
DROP TABLE deliveries;
DROP TABLE idempotency_keys;
DROP TABLE events;
DROP TABLE event_seqs;
DROP TABLE global_webhooks;
DROP TABLE subscriptions;
DROP TABLE connections;
DROP TABLE connector_parameters;
DROP TABLE api_keys;
DROP TABLE workspaces;
