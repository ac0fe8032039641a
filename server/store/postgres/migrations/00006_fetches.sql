-- Fetches: runs of an event's fetch method that deliveries ask for (the app's notification
-- only says that something changed; the events are fetched from its API afterwards).
--
-- A fetch is inserted in its delivery's transaction and deleted once a run committed its
-- events. A subscription's unfinished fetches (status PENDING or RETRYING) run one at a
-- time in rid order: a run leases the oldest (lease_token until lease_until, by hookmap's
-- clock) and the others wait for it; a lease of a replica that died ends with its time.
-- FAILED fetches are kept for ReplayDelivery until pruned. A delivery's fetch summary is
-- in fetch_status and fetch_attempts ('' and 0 when it asked for no fetch).

-- +goose Up
CREATE TABLE fetches (
    rid               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                text        NOT NULL UNIQUE,
    workspace_id      text        NOT NULL,
    subscription_id   text        NOT NULL,
    delivery_id       text        NOT NULL,
    delivery_time     timestamptz NOT NULL,
    data              json,
    status            text        NOT NULL,
    attempts          integer     NOT NULL DEFAULT 0,
    runs              integer     NOT NULL DEFAULT 0,
    next_attempt_time timestamptz NOT NULL,
    last_error        text        NOT NULL DEFAULT '',
    lease_token       text        NOT NULL DEFAULT '',
    lease_until       timestamptz NOT NULL DEFAULT '-infinity',
    create_time       timestamptz NOT NULL
);
CREATE INDEX fetches_subscription ON fetches (subscription_id, rid) WHERE status <> 'FAILED';
CREATE INDEX fetches_due ON fetches (next_attempt_time, rid) WHERE status <> 'FAILED';
CREATE INDEX fetches_delivery ON fetches (delivery_id);
CREATE INDEX fetches_failed ON fetches (create_time) WHERE status = 'FAILED';

ALTER TABLE deliveries
    ADD COLUMN fetch_status   text    NOT NULL DEFAULT '',
    ADD COLUMN fetch_attempts integer NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE deliveries DROP COLUMN fetch_attempts, DROP COLUMN fetch_status;
DROP TABLE fetches;
