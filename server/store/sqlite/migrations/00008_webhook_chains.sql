-- Webhook chains: a webhook may continue into another one (next: a JSON object of the next
-- webhook's id and the mapping values that build its call), and each call of a chain
-- records an invocation linked to the first one's reference id.

-- +goose Up
ALTER TABLE outgoing_webhooks ADD COLUMN next TEXT;
ALTER TABLE outgoing_invocations ADD COLUMN chain_reference_id TEXT NOT NULL DEFAULT '';
ALTER TABLE outgoing_invocations ADD COLUMN hop INTEGER NOT NULL DEFAULT 1;
CREATE INDEX outgoing_invocations_chain ON outgoing_invocations (workspace_id, chain_reference_id);

-- +goose Down
DROP INDEX outgoing_invocations_chain;
ALTER TABLE outgoing_invocations DROP COLUMN hop;
ALTER TABLE outgoing_invocations DROP COLUMN chain_reference_id;
ALTER TABLE outgoing_webhooks DROP COLUMN next;
