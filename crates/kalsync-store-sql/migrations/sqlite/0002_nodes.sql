-- Several nodes: a notification may land on any node; the node holding the user reads.
ALTER TABLE users ADD COLUMN subscription_id TEXT;
ALTER TABLE users ADD COLUMN sync_requested_ms INTEGER;
CREATE INDEX users_subscription ON users (subscription_id);
CREATE INDEX users_sync_requested ON users (sync_requested_ms);
