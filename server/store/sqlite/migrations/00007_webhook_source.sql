-- Where an outgoing webhook comes from: 'api' (RegisterWebhook) or 'file' (the server's
-- webhooks file, --webhooks). The file's loader lists the declared ones across workspaces.

-- +goose Up
ALTER TABLE outgoing_webhooks ADD COLUMN source TEXT NOT NULL DEFAULT 'api';
CREATE INDEX outgoing_webhooks_source ON outgoing_webhooks (source);

-- +goose Down
DROP INDEX outgoing_webhooks_source;
ALTER TABLE outgoing_webhooks DROP COLUMN source;
