-- Whether a company's readers (its receptionists) may set a person's status by hand
-- (0 or 1).
ALTER TABLE companies ADD COLUMN readers_set_status BIGINT NOT NULL DEFAULT 0;

-- The secret a company's PBX signs its events with ("I'm back", "extend"), sealed.
CREATE TABLE pbx_event_secrets (
    company_id TEXT PRIMARY KEY REFERENCES companies (id) ON DELETE CASCADE,
    secret     TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

-- The PBX events taken lately, by their id: one sent again is refused.
CREATE TABLE pbx_events (
    company_id TEXT NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    event_id   TEXT NOT NULL,
    seen_ms    BIGINT NOT NULL,
    PRIMARY KEY (company_id, event_id)
);
CREATE INDEX pbx_events_seen ON pbx_events (seen_ms);
