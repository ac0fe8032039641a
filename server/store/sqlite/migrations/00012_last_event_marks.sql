-- A subscription's last_event_time is no longer written by every commit that stores one of
-- its events (a page of the subscriptions table and a statement per commit): the writer
-- keeps the newest times in memory and writes them about once a second (lastevent.go).
-- store_marks remembers up to which event seq those writes are complete, so that after a
-- crash Open recomputes the times lost in memory from the events after that seq alone.
-- A database written by an earlier version is complete up to its newest event.

-- +goose Up
CREATE TABLE store_marks (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO store_marks (name, value) SELECT 'last_event_time_seq', COALESCE(MAX(seq), 0) FROM events;

-- +goose Down
DROP TABLE store_marks;
