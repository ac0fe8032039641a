-- Leases on subscriptions for background work (a due refresh, an unsubscribe retry):
-- ClaimDueSubscriptions sets lease_owner and lease_until (nanoseconds since the epoch),
-- ReleaseSubscription clears them. A lease is free when lease_until <= now.

-- +goose Up
ALTER TABLE subscriptions ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE subscriptions ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE subscriptions DROP COLUMN lease_until;
ALTER TABLE subscriptions DROP COLUMN lease_owner;
