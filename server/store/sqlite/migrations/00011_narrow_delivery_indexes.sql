-- Fewer index pages per delivery. Every index a delivery enters costs each commit at least
-- one more page written to the WAL (and its share of page splits), so an index now has to
-- name the query that needs it:
--
-- deliveries_receive_time served only Prune, which now deletes the oldest deliveries in
-- rid order (the order they were first committed in), stopping at the first one still
-- within the retention. A delivery committed out of receive-time order is deleted at most
-- a moment later than its cutoff.
--
-- The outcome indexes serve the filters by outcome. Nearly every delivery is OK, and the
-- filter OK pages well from the index without outcome (nearly every row it reads
-- matches), so the outcome indexes now hold only the other outcomes: the rare rows a
-- console looks for (FAILED, REJECTED, DUPLICATE, UNMATCHED).

-- +goose Up
DROP INDEX deliveries_receive_time;
DROP INDEX deliveries_workspace_outcome_time;
DROP INDEX deliveries_subscription_outcome_time;
DROP INDEX deliveries_global_outcome_time;
CREATE INDEX deliveries_workspace_outcome_time ON deliveries (workspace_id, outcome, receive_time)
    WHERE outcome <> 'OK';
CREATE INDEX deliveries_subscription_outcome_time ON deliveries (subscription_id, outcome, receive_time)
    WHERE subscription_id <> '' AND outcome <> 'OK';
CREATE INDEX deliveries_global_outcome_time ON deliveries (global_webhook_id, outcome, receive_time)
    WHERE global_webhook_id <> '' AND outcome <> 'OK';

-- +goose Down
DROP INDEX deliveries_global_outcome_time;
DROP INDEX deliveries_subscription_outcome_time;
DROP INDEX deliveries_workspace_outcome_time;
CREATE INDEX deliveries_workspace_outcome_time ON deliveries (workspace_id, outcome, receive_time);
CREATE INDEX deliveries_subscription_outcome_time ON deliveries (subscription_id, outcome, receive_time) WHERE subscription_id <> '';
CREATE INDEX deliveries_global_outcome_time ON deliveries (global_webhook_id, outcome, receive_time) WHERE global_webhook_id <> '';
CREATE INDEX deliveries_receive_time ON deliveries (receive_time);
