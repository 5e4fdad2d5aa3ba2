-- A company's PBX directory (who has a subscription on its PBX): where it comes from,
-- the fetch secret (sealed) stored with its address, the list, and its schedule.
CREATE TABLE pbx_directories (
    company_id    TEXT PRIMARY KEY REFERENCES companies (id) ON DELETE CASCADE,
    source        TEXT NOT NULL,
    secret        TEXT,
    list          TEXT NOT NULL DEFAULT '[]',
    updated_ms    BIGINT,
    last_try_ms   BIGINT,
    last_error    TEXT,
    next_fetch_ms BIGINT
);
CREATE INDEX pbx_directories_due ON pbx_directories (next_fetch_ms);
