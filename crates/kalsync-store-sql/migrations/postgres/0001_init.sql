-- Kalsync on PostgreSQL: several nodes share one database. Times are milliseconds since 1970 (UTC);
-- JSON documents are TEXT.
CREATE TABLE companies (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);

CREATE TABLE instances (
    id          TEXT PRIMARY KEY,
    company_id  TEXT NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    source      TEXT NOT NULL, -- secrets sealed
    settings    TEXT NOT NULL, -- the rules file (TOML)
    active      BIGINT NOT NULL,
    created_ms  BIGINT NOT NULL
);
CREATE INDEX instances_company ON instances (company_id);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    instance_id   TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    display_name  TEXT,
    extension     TEXT,
    sync_state    TEXT NOT NULL,
    last_sync_ms  BIGINT,
    last_error    TEXT,
    created_ms    BIGINT NOT NULL,
    UNIQUE (instance_id, email)
);

CREATE TABLE bookings (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    booking_id  TEXT NOT NULL,
    ends_ms     BIGINT NOT NULL,
    data        TEXT NOT NULL,
    PRIMARY KEY (user_id, booking_id)
);
CREATE INDEX bookings_ends ON bookings (ends_ms);

CREATE TABLE timelines (
    user_id         TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    data            TEXT NOT NULL,
    next_change_ms  BIGINT,
    saved_ms        BIGINT NOT NULL
);

CREATE TABLE targets (
    id          TEXT PRIMARY KEY,
    company_id  TEXT NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    config      TEXT NOT NULL, -- secrets sealed
    active      BIGINT NOT NULL,
    created_ms  BIGINT NOT NULL
);
CREATE INDEX targets_company ON targets (company_id);

CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    target_id        TEXT NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    company_id       TEXT NOT NULL,
    sequence         BIGINT NOT NULL,
    payload          TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    due_ms           BIGINT NOT NULL,
    next_attempt_ms  BIGINT NOT NULL,
    created_ms       BIGINT NOT NULL,
    delivered_ms     BIGINT,
    last_error       TEXT,
    UNIQUE (user_id, target_id, sequence)
);
CREATE INDEX deliveries_pending ON deliveries (state, next_attempt_ms);
CREATE INDEX deliveries_company ON deliveries (company_id, state, created_ms);

CREATE TABLE audit (
    id          BIGSERIAL PRIMARY KEY,
    at_ms       BIGINT NOT NULL,
    company_id  TEXT,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX audit_company ON audit (company_id, id);

CREATE TABLE leases (
    user_id     TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    node        TEXT NOT NULL,
    expires_ms  BIGINT NOT NULL
);
CREATE INDEX leases_node ON leases (node);
