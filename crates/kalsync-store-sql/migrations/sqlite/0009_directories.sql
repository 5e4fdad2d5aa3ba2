-- Katalog Synk: a user's directory fields, and each instance's directory (its settings,
-- the state its next read starts from, when it runs next and what its last run did).
ALTER TABLE users ADD COLUMN department TEXT;
ALTER TABLE users ADD COLUMN directory_key TEXT;
ALTER TABLE users ADD COLUMN leaving_since_ms BIGINT;
CREATE TABLE directories (
    instance_id TEXT PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
    settings    TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'null',
    next_run_ms BIGINT NOT NULL,
    last_run    TEXT
);
CREATE INDEX directories_due ON directories (next_run_ms);
