-- Absences from other sources than bookings (a status set by hand, the phone, Outlook's
-- automatic replies): at most one per user and source; NULL end: until cleared; NULL
-- reason: "available".
CREATE TABLE overrides (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source     TEXT NOT NULL,
    start_ms   BIGINT NOT NULL,
    end_ms     BIGINT,
    reason     TEXT,
    mode       TEXT,
    set_by     TEXT NOT NULL,
    PRIMARY KEY (user_id, source)
);
