-- An API token belongs to the account that made it (and goes with it) and expires.
-- Tokens made before have no owner and expire a year after they were made.
ALTER TABLE api_tokens ADD COLUMN account_id TEXT REFERENCES accounts (id) ON DELETE CASCADE;
ALTER TABLE api_tokens ADD COLUMN expires_ms INTEGER;
UPDATE api_tokens SET expires_ms = created_ms + 31536000000;
