-- Indexes for the delivery filters (ListDeliveries by outcome, by subscription and
-- outcome, by global webhook with or without outcome): each has the filter's equalities
-- followed by receive_time (and the rowid), so every filter pages newest first from an
-- index and never scans a workspace's deliveries. The partial ones skip the rows they
-- cannot match (a subscription's deliveries have no global webhook, and the reverse).

-- +goose Up
CREATE INDEX deliveries_workspace_outcome_time ON deliveries (workspace_id, outcome, receive_time);
CREATE INDEX deliveries_subscription_outcome_time ON deliveries (subscription_id, outcome, receive_time) WHERE subscription_id <> '';
CREATE INDEX deliveries_global_time ON deliveries (global_webhook_id, receive_time) WHERE global_webhook_id <> '';
CREATE INDEX deliveries_global_outcome_time ON deliveries (global_webhook_id, outcome, receive_time) WHERE global_webhook_id <> '';

-- +goose Down
DROP INDEX deliveries_global_outcome_time;
DROP INDEX deliveries_global_time;
DROP INDEX deliveries_subscription_outcome_time;
DROP INDEX deliveries_workspace_outcome_time;
