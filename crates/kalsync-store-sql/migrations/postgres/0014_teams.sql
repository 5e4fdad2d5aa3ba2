-- What Kalsync knows of a person in Teams: their object id, the status message and the
-- presence session it set (so it clears only its own), a PBX call's session, and their
-- presence as last read.
CREATE TABLE teams_people (
    user_id          TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    object_id        TEXT,
    message          TEXT,
    message_until_ms BIGINT,
    session          TEXT,
    session_until_ms BIGINT,
    session_set_ms   BIGINT,
    call_until_ms    BIGINT,
    presence         TEXT,
    read_ms          BIGINT
);

-- Requests taken from a shared budget (a tenant's Graph presence requests) per window,
-- across every node.
CREATE TABLE request_budgets (
    budget_key TEXT NOT NULL,
    window_ms  BIGINT NOT NULL,
    used       BIGINT NOT NULL,
    PRIMARY KEY (budget_key, window_ms)
);
