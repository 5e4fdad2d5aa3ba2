PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
);
INSERT INTO _sqlx_migrations VALUES(1,'init','2026-12-06 22:28:43',1,X'a75d910e3734abc1b7b0a7926805c81fd96611a2c084f4ed045f5051c5a357388794d7fa98deed10f9775a5862ed933e',1833414);
INSERT INTO _sqlx_migrations VALUES(2,'nodes','2026-12-06 22:28:43',1,X'677c1b4bdd12c285792f27a414b38acf0351f7a0a3e8874435400e8c66e64b232a19af2869bcd20b04116a11ca5dcfda',1051442);
INSERT INTO _sqlx_migrations VALUES(3,'accounts','2026-12-06 22:28:43',1,X'f59f99cdefdfbd1b265cfaf4ecfff7ec1857f75b0f043f7c4135548b2d6e6729b0293469b6043e7ae5d25a0cd9a8e877',1050541);
INSERT INTO _sqlx_migrations VALUES(4,'push tokens','2026-12-06 22:28:43',1,X'a07f70153976575a0793f2598e11b86f3b2c627146e74d5738a9955a2b26326303f9af47f7d6d9faede0234ece05a4ef',623075);
INSERT INTO _sqlx_migrations VALUES(5,'token owners','2026-12-06 22:28:43',1,X'4f1f4661e2e9e3b8260c50b8fb3fa6eed6db7d6c33cf4dfd7c0f0a7e11bf9022d79314f4668e02a7626757adce142a1d',998844);
INSERT INTO _sqlx_migrations VALUES(6,'entra sign in','2026-12-06 22:28:43',1,X'28b09db2f825bd6019b1b65bcfd97a94564d410ac438b64d1f63207fab28b5966edc27c382a0dd94b11712d5bbfaf89f',1084932);
INSERT INTO _sqlx_migrations VALUES(7,'unique names','2026-12-06 22:28:43',1,X'de9a28a9922504dd6d6ca5389c9ee61ce5ba7cfbf78909183e941eecf55967dd9d4a4d00de406998b49d68c847351f33',722513);
INSERT INTO _sqlx_migrations VALUES(8,'sync revisions','2026-12-06 22:28:43',1,X'3b17511e8e3798130b7c1ca6ffd34e271517b49da468943802805d996fcd93a972990a9fd193b0296a06873ff9078b6d',684568);
INSERT INTO _sqlx_migrations VALUES(9,'directories','2026-12-06 22:28:43',1,X'197168a8d2ac161c13054c49591c4451dac57ba075d937bfe53979d1b539f53d99888524fd797a795a5f017cfd1f5407',1497816);
INSERT INTO _sqlx_migrations VALUES(10,'directory passwords','2026-12-06 22:28:43',1,X'ffe1c753fa278f65727e391421090a9ea8821af00c7771d062522cabd9b9e2f51f4d690640ff45493a009c97c2819c8a',598770);
INSERT INTO _sqlx_migrations VALUES(11,'pbx directories','2026-12-06 22:28:43',1,X'087ee9d2401c33cde3f332723b6aff4e2026802cff3e586f8f4f1b30591dc72f294c651883027422582ab182d10122d1',453294);
INSERT INTO _sqlx_migrations VALUES(12,'overrides','2026-12-06 22:28:43',1,X'bc813c70f465eb75a7a839ae66e64724b0440514eb8ac285205e1886f98561b36d2f42500d1c592c08a22e772f28e41f',467184);
INSERT INTO _sqlx_migrations VALUES(13,'phone events','2026-12-06 22:28:43',1,X'a4fc9b36813669c69c2def3de9841b64b6e7963bcd9347ef9ac5667af641ddeb1ef961865b3f804ed599d667c8e7c59c',912936);
INSERT INTO _sqlx_migrations VALUES(14,'teams','2026-12-06 22:28:43',1,X'697e911d9a92bb514def20d00c503584a67722ffb2b14299e4dfbfbe562c825d54d4becf0b582e0cf33fa993410c5803',625018);
CREATE TABLE companies (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
, readers_set_status BIGINT NOT NULL DEFAULT 0);
INSERT INTO companies VALUES('b10885d8-4d40-40c0-a1df-df41abdbae50','Uppgradering AB',1796596123457,1);
CREATE TABLE instances (
    id          TEXT PRIMARY KEY,
    company_id  TEXT NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    source      TEXT NOT NULL, -- secrets sealed
    settings    TEXT NOT NULL, -- the rules file (TOML)
    active      INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL
);
INSERT INTO instances VALUES('edd7ec61-1eea-4486-8bec-de1c2a0b899d','b10885d8-4d40-40c0-a1df-df41abdbae50','Microsoft 365','{"client_id":"release-app","credential":{"kind":"secret","secret":"sealed:v1:6YucwHQznxlWvvQGHnPN4SZBTUtYZ1ULL0QwDC0qYUjcrncfUGRHWskC6mTvjywCWg=="},"graph_url":null,"kind":"graph","login_url":null,"tenant":"uppgradering.onmicrosoft.com"}',replace('active = true\ntime_zone = "Europe/Stockholm"\ndays_ahead = 14\nfrom_template = "showas-info"\nuser_choice = "off"\nallowed_reasons = []\nshow_subject = false\nhide_titles = false\nprivate = "skip"\nignore_declined = true\nchain_return_time = true\nmerge_gap = "0s"\nrank = [\n    "vacation",\n    "sick",\n    "out_of_office",\n    "gone_for_the_day",\n    "working_from_home",\n    "meeting",\n    "lunch",\n    "busy",\n]\nwrite_back = false\n\n[[rules]]\nreason = "busy"\nmode = "info"\nshow_subject = false\n\n[rules.when]\nshow_as = ["busy"]\n\n[[rules]]\nreason = "out_of_office"\nmode = "info"\nshow_subject = false\n\n[rules.when]\nshow_as = ["oof"]\n\n[working_hours]\ndays = [\n    "mon",\n    "tue",\n    "wed",\n    "thu",\n    "fri",\n]\nstart = "08:00"\nend = "17:00"\n\n[[reasons]]\ncode = "working_from_home"\nlabel_sv = "Jobbar hemifrån"\nlabel_en = "Working from home"\nprefix = "HEM:"\n\n[[reasons]]\ncode = "sick"\nlabel_sv = "Sjuk / VAB"\nlabel_en = "Sick / caring for child"\nprefix = "SJU:"\n\n[[reasons]]\ncode = "gone_for_the_day"\nlabel_sv = "Gått för dagen"\nlabel_en = "Gone for the day"\nprefix = "SLU:"\n\n[[reasons]]\ncode = "available"\nlabel_sv = "Tillgänglig"\nlabel_en = "Available"\n\n[[reasons]]\ncode = "busy"\nlabel_sv = "Upptagen"\nlabel_en = "Busy"\nprefix = "UPP:"\n\n[[reasons]]\ncode = "lunch"\nlabel_sv = "Lunch"\nlabel_en = "Lunch"\nprefix = "LUN:"\n\n[[reasons]]\ncode = "meeting"\nlabel_sv = "Möte"\nlabel_en = "Meeting"\nprefix = "MOT:"\n\n[[reasons]]\ncode = "out_of_office"\nlabel_sv = "Ej på kontoret"\nlabel_en = "Out of office"\nprefix = "UTE:"\n\n[[reasons]]\ncode = "vacation"\nlabel_sv = "Semester"\nlabel_en = "Vacation"\nprefix = "SEM:"\n\n[automatic_replies]\nenabled = false\nreason = "out_of_office"\nmode = "info"\n\n[teams]\nread = false\npoll_seconds = 30\nabove_diverts = false\n','\n',char(10)),1,1796596123466);
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    instance_id   TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    display_name  TEXT,
    extension     TEXT,
    sync_state    TEXT NOT NULL,
    last_sync_ms  INTEGER,
    last_error    TEXT,
    created_ms    INTEGER NOT NULL, subscription_id TEXT, sync_requested_ms INTEGER, push_token TEXT, sync_revision BIGINT NOT NULL DEFAULT 0, department TEXT, directory_key TEXT, leaving_since_ms BIGINT,
    UNIQUE (instance_id, email)
);
INSERT INTO users VALUES('fe458a63-6769-4557-9b3a-b584bfb4c656','edd7ec61-1eea-4486-8bec-de1c2a0b899d','anna@uppgradering.example','Anna Berg','201','null',NULL,NULL,1796596123469,NULL,NULL,NULL,0,NULL,NULL,NULL);
INSERT INTO users VALUES('cea0bbd8-1f5f-4de2-893b-42b8f6845bd4','edd7ec61-1eea-4486-8bec-de1c2a0b899d','bo@uppgradering.example','Bo Ek','202','null',NULL,NULL,1796596123471,NULL,NULL,NULL,0,NULL,NULL,NULL);
INSERT INTO users VALUES('000cb14b-5ed9-4e04-8c94-cb2c4d76b9e0','edd7ec61-1eea-4486-8bec-de1c2a0b899d','carl@uppgradering.example','Carl Dahl','203','null',NULL,NULL,1796596123472,NULL,NULL,NULL,0,NULL,NULL,NULL);
CREATE TABLE bookings (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    booking_id  TEXT NOT NULL,
    ends_ms     INTEGER NOT NULL,
    data        TEXT NOT NULL,
    PRIMARY KEY (user_id, booking_id)
);
INSERT INTO bookings VALUES('fe458a63-6769-4557-9b3a-b584bfb4c656','lunch-1',1795435200000,'{"id":"lunch-1","start":"2026-11-23T11:00:00Z","end":"2026-11-23T12:00:00Z","all_day":false,"free_busy":"busy","sensitivity":"normal","cancelled":false,"response":"none"}');
INSERT INTO bookings VALUES('fe458a63-6769-4557-9b3a-b584bfb4c656','kund-2',1795512600000,'{"id":"kund-2","start":"2026-11-24T08:00:00Z","end":"2026-11-24T09:30:00Z","all_day":false,"free_busy":"busy","sensitivity":"normal","cancelled":false,"response":"none"}');
CREATE TABLE timelines (
    user_id         TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    data            TEXT NOT NULL,
    next_change_ms  INTEGER,
    saved_ms        INTEGER NOT NULL
);
INSERT INTO timelines VALUES('fe458a63-6769-4557-9b3a-b584bfb4c656','{"zone":"Europe/Stockholm","absences":[{"reason":"busy","mode":"info","start":"2026-11-23T11:00:00Z","end":"2026-11-23T12:00:00Z","returns_at":"2026-11-23T12:00:00Z","bookings":["lunch-1"],"user_choice":false},{"reason":"busy","mode":"info","start":"2026-11-24T08:00:00Z","end":"2026-11-24T09:30:00Z","returns_at":"2026-11-24T09:30:00Z","bookings":["kund-2"],"user_choice":false}]}',1795431600000,1796596123475);
CREATE TABLE targets (
    id          TEXT PRIMARY KEY,
    company_id  TEXT NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    config      TEXT NOT NULL, -- secrets sealed
    active      INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL
);
INSERT INTO targets VALUES('4e871e09-2f37-4ac3-8f92-ab80f4f19d4c','b10885d8-4d40-40c0-a1df-df41abdbae50','Växel','{"kind":"webhook","signing_secret":"sealed:v1:VX7/G4NgvWB3VCrwj/rYogEIhGIlkVZ1FxjTvY/ebW8MsuNrFp4CtepD9iH4nZ2aQUf22KKju7k=","url":"https://pbx.uppgradering.example/kalsync"}',1,1796596123458);
CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    target_id        TEXT NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    company_id       TEXT NOT NULL,
    sequence         INTEGER NOT NULL,
    payload          TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    due_ms           INTEGER NOT NULL,
    next_attempt_ms  INTEGER NOT NULL,
    created_ms       INTEGER NOT NULL,
    delivered_ms     INTEGER,
    last_error       TEXT,
    UNIQUE (user_id, target_id, sequence)
);
INSERT INTO deliveries VALUES('8c8924a9-332e-41e8-ac52-fab28ca68f5e','fe458a63-6769-4557-9b3a-b584bfb4c656','4e871e09-2f37-4ac3-8f92-ab80f4f19d4c','b10885d8-4d40-40c0-a1df-df41abdbae50',1,'{"reason":"lunch","return_at":"2026-11-23T13:00:00+01:00"}','pending',0,1795431600000,1795431600000,1796596123476,NULL,NULL);
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       INTEGER NOT NULL,
    company_id  TEXT,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE TABLE leases (
    user_id     TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    node        TEXT NOT NULL,
    expires_ms  INTEGER NOT NULL
);
CREATE TABLE accounts (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE, -- lower case
    display_name   TEXT,
    role           TEXT NOT NULL,        -- operator | company_admin | reader
    company_id     TEXT REFERENCES companies (id) ON DELETE CASCADE,
    password_hash  TEXT NOT NULL,
    language       TEXT,
    created_ms     INTEGER NOT NULL
, entra_tenant TEXT, entra_object TEXT);
INSERT INTO accounts VALUES('c0b16572-f9ee-46aa-9591-c75399601f2a','admin@uppgradering.example','Admin','company_admin','b10885d8-4d40-40c0-a1df-df41abdbae50','$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$release',NULL,1796596123476,NULL,NULL);
CREATE TABLE sessions (
    id_hash     TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    csrf        TEXT NOT NULL,
    expires_ms  INTEGER NOT NULL
);
CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    token_hash    TEXT NOT NULL UNIQUE,
    company_id    TEXT NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,          -- company_admin | reader
    created_ms    INTEGER NOT NULL,
    last_used_ms  INTEGER
, account_id TEXT REFERENCES accounts (id) ON DELETE CASCADE, expires_ms INTEGER);
CREATE TABLE company_tenants (
    tenant      TEXT PRIMARY KEY,  -- the Directory (tenant) id, lower case
    company_id  TEXT NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    admins      TEXT NOT NULL,     -- JSON array of app role values or group ids
    readers     TEXT NOT NULL,     -- JSON array
    proven_ms   INTEGER NOT NULL
);
CREATE TABLE directories (
    instance_id TEXT PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
    settings    TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'null',
    next_run_ms BIGINT NOT NULL,
    last_run    TEXT
, password TEXT);
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
CREATE TABLE pbx_event_secrets (
    company_id TEXT PRIMARY KEY REFERENCES companies (id) ON DELETE CASCADE,
    secret     TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
INSERT INTO pbx_event_secrets VALUES('b10885d8-4d40-40c0-a1df-df41abdbae50','sealed:v1:JzNxP93JPr/HOhdMhQ3bghIdl8cM5Brhbrsa2+SpPiwZLMeCjDp3Fj1tPbVXDw==',1795158000000);
CREATE TABLE pbx_events (
    company_id TEXT NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    event_id   TEXT NOT NULL,
    seen_ms    BIGINT NOT NULL,
    PRIMARY KEY (company_id, event_id)
);
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
CREATE TABLE request_budgets (
    budget_key TEXT NOT NULL,
    window_ms  BIGINT NOT NULL,
    used       BIGINT NOT NULL,
    PRIMARY KEY (budget_key, window_ms)
);
DELETE FROM sqlite_sequence;
CREATE INDEX instances_company ON instances (company_id);
CREATE INDEX bookings_ends ON bookings (ends_ms);
CREATE INDEX targets_company ON targets (company_id);
CREATE INDEX deliveries_pending ON deliveries (state, next_attempt_ms);
CREATE INDEX deliveries_company ON deliveries (company_id, state, created_ms);
CREATE INDEX audit_company ON audit (company_id, id);
CREATE INDEX leases_node ON leases (node);
CREATE INDEX users_subscription ON users (subscription_id);
CREATE INDEX users_sync_requested ON users (sync_requested_ms);
CREATE INDEX accounts_company ON accounts (company_id);
CREATE INDEX sessions_account ON sessions (account_id);
CREATE INDEX sessions_expires ON sessions (expires_ms);
CREATE INDEX api_tokens_company ON api_tokens (company_id);
CREATE UNIQUE INDEX users_push_token ON users (push_token);
CREATE UNIQUE INDEX accounts_entra ON accounts (entra_tenant, entra_object);
CREATE INDEX company_tenants_company ON company_tenants (company_id);
CREATE UNIQUE INDEX companies_name ON companies (name);
CREATE UNIQUE INDEX instances_company_name ON instances (company_id, name);
CREATE UNIQUE INDEX targets_company_name ON targets (company_id, name);
CREATE INDEX directories_due ON directories (next_run_ms);
CREATE INDEX pbx_directories_due ON pbx_directories (next_fetch_ms);
CREATE INDEX pbx_events_seen ON pbx_events (seen_ms);
COMMIT;
