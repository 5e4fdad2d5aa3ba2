-- Who may sign in to the admin UI and the API: accounts (argon2 password hashes),
-- their sessions (only a hash of the session id is kept) and API tokens per company
-- (only a hash of the token is kept).
CREATE TABLE accounts (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE, -- lower case
    display_name   TEXT,
    role           TEXT NOT NULL,        -- operator | company_admin | reader
    company_id     TEXT REFERENCES companies (id) ON DELETE CASCADE,
    password_hash  TEXT NOT NULL,
    language       TEXT,
    created_ms     INTEGER NOT NULL
);
CREATE INDEX accounts_company ON accounts (company_id);

CREATE TABLE sessions (
    id_hash     TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    csrf        TEXT NOT NULL,
    expires_ms  INTEGER NOT NULL
);
CREATE INDEX sessions_account ON sessions (account_id);
CREATE INDEX sessions_expires ON sessions (expires_ms);

CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    token_hash    TEXT NOT NULL UNIQUE,
    company_id    TEXT NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,          -- company_admin | reader
    created_ms    INTEGER NOT NULL,
    last_used_ms  INTEGER
);
CREATE INDEX api_tokens_company ON api_tokens (company_id);
