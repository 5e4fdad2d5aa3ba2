--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: _sqlx_migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public._sqlx_migrations (
    version bigint NOT NULL,
    description text NOT NULL,
    installed_on timestamp with time zone DEFAULT now() NOT NULL,
    success boolean NOT NULL,
    checksum bytea NOT NULL,
    execution_time bigint NOT NULL
);


--
-- Name: accounts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.accounts (
    id text NOT NULL,
    email text NOT NULL,
    display_name text,
    role text NOT NULL,
    company_id text,
    password_hash text NOT NULL,
    language text,
    created_ms bigint NOT NULL,
    entra_tenant text,
    entra_object text
);


--
-- Name: api_tokens; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.api_tokens (
    id text NOT NULL,
    token_hash text NOT NULL,
    company_id text NOT NULL,
    name text NOT NULL,
    role text NOT NULL,
    created_ms bigint NOT NULL,
    last_used_ms bigint,
    account_id text,
    expires_ms bigint
);


--
-- Name: audit; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audit (
    id bigint NOT NULL,
    at_ms bigint NOT NULL,
    company_id text,
    actor text NOT NULL,
    action text NOT NULL,
    detail text NOT NULL
);


--
-- Name: audit_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.audit_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: audit_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.audit_id_seq OWNED BY public.audit.id;


--
-- Name: bookings; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.bookings (
    user_id text NOT NULL,
    booking_id text NOT NULL,
    ends_ms bigint NOT NULL,
    data text NOT NULL
);


--
-- Name: companies; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.companies (
    id text NOT NULL,
    name text NOT NULL,
    created_ms bigint NOT NULL,
    readers_set_status bigint DEFAULT 0 NOT NULL
);


--
-- Name: company_tenants; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.company_tenants (
    tenant text NOT NULL,
    company_id text NOT NULL,
    admins text NOT NULL,
    readers text NOT NULL,
    proven_ms bigint NOT NULL
);


--
-- Name: deliveries; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.deliveries (
    id text NOT NULL,
    user_id text NOT NULL,
    target_id text NOT NULL,
    company_id text NOT NULL,
    sequence bigint NOT NULL,
    payload text NOT NULL,
    state text NOT NULL,
    attempts bigint NOT NULL,
    due_ms bigint NOT NULL,
    next_attempt_ms bigint NOT NULL,
    created_ms bigint NOT NULL,
    delivered_ms bigint,
    last_error text
);


--
-- Name: directories; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.directories (
    instance_id text NOT NULL,
    settings text NOT NULL,
    state text DEFAULT 'null'::text NOT NULL,
    next_run_ms bigint NOT NULL,
    last_run text,
    password text
);


--
-- Name: instances; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.instances (
    id text NOT NULL,
    company_id text NOT NULL,
    name text NOT NULL,
    source text NOT NULL,
    settings text NOT NULL,
    active bigint NOT NULL,
    created_ms bigint NOT NULL
);


--
-- Name: leases; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.leases (
    user_id text NOT NULL,
    node text NOT NULL,
    expires_ms bigint NOT NULL
);


--
-- Name: overrides; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.overrides (
    user_id text NOT NULL,
    source text NOT NULL,
    start_ms bigint NOT NULL,
    end_ms bigint,
    reason text,
    mode text,
    set_by text NOT NULL
);


--
-- Name: pbx_directories; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.pbx_directories (
    company_id text NOT NULL,
    source text NOT NULL,
    secret text,
    list text DEFAULT '[]'::text NOT NULL,
    updated_ms bigint,
    last_try_ms bigint,
    last_error text,
    next_fetch_ms bigint
);


--
-- Name: pbx_event_secrets; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.pbx_event_secrets (
    company_id text NOT NULL,
    secret text NOT NULL,
    created_ms bigint NOT NULL
);


--
-- Name: pbx_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.pbx_events (
    company_id text NOT NULL,
    event_id text NOT NULL,
    seen_ms bigint NOT NULL
);


--
-- Name: request_budgets; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.request_budgets (
    budget_key text NOT NULL,
    window_ms bigint NOT NULL,
    used bigint NOT NULL
);


--
-- Name: sessions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sessions (
    id_hash text NOT NULL,
    account_id text NOT NULL,
    csrf text NOT NULL,
    expires_ms bigint NOT NULL
);


--
-- Name: targets; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.targets (
    id text NOT NULL,
    company_id text NOT NULL,
    name text NOT NULL,
    config text NOT NULL,
    active bigint NOT NULL,
    created_ms bigint NOT NULL
);


--
-- Name: teams_people; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.teams_people (
    user_id text NOT NULL,
    object_id text,
    message text,
    message_until_ms bigint,
    session text,
    session_until_ms bigint,
    session_set_ms bigint,
    call_until_ms bigint,
    presence text,
    read_ms bigint
);


--
-- Name: timelines; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.timelines (
    user_id text NOT NULL,
    data text NOT NULL,
    next_change_ms bigint,
    saved_ms bigint NOT NULL
);


--
-- Name: users; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.users (
    id text NOT NULL,
    instance_id text NOT NULL,
    email text NOT NULL,
    display_name text,
    extension text,
    sync_state text NOT NULL,
    last_sync_ms bigint,
    last_error text,
    created_ms bigint NOT NULL,
    subscription_id text,
    sync_requested_ms bigint,
    push_token text,
    sync_revision bigint DEFAULT 0 NOT NULL,
    department text,
    directory_key text,
    leaving_since_ms bigint
);


--
-- Name: audit id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit ALTER COLUMN id SET DEFAULT nextval('public.audit_id_seq'::regclass);


--
-- Data for Name: _sqlx_migrations; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public._sqlx_migrations VALUES (1, 'init', '2026-12-06 22:28:43.544871+00', true, '\xedda9c4153d457b8080c8448927b2528a7718dcf8e1747858fc40cfb05d367142c8b0c3e535fd6776159e66e385f55e5', 21310865);
INSERT INTO public._sqlx_migrations VALUES (2, 'nodes', '2026-12-06 22:28:43.567083+00', true, '\xa17f23d0c1aeb422985d9cee35a58c5fdef9159ca75db6df52ea547ffe74c1204798184a25587f06024179ebc786bdab', 1805618);
INSERT INTO public._sqlx_migrations VALUES (3, 'accounts', '2026-12-06 22:28:43.569202+00', true, '\x396819a5594a0bd2e9309f612d6b6c9ac71cf4c5f8e22afc70967c0941bdc90acba1864d229dedf4a020751ea7f46b66', 8646675);
INSERT INTO public._sqlx_migrations VALUES (4, 'push tokens', '2026-12-06 22:28:43.578309+00', true, '\xa07f70153976575a0793f2598e11b86f3b2c627146e74d5738a9955a2b26326303f9af47f7d6d9faede0234ece05a4ef', 1269346);
INSERT INTO public._sqlx_migrations VALUES (5, 'token owners', '2026-12-06 22:28:43.579875+00', true, '\x47aae77bcfc59fb4e2f59289ae8b9914b2848901ab90961d68f559b4a5b14463e56da5cf13be77f12cdd847958d43675', 1167475);
INSERT INTO public._sqlx_migrations VALUES (6, 'entra sign in', '2026-12-06 22:28:43.58133+00', true, '\x47dd4e3648c317d85c9fefb67c1fe3a68dc6a6ce753988bf6b7daddc6843bc0b011aab919a05830cfb27548c9942a59d', 3424599);
INSERT INTO public._sqlx_migrations VALUES (7, 'unique names', '2026-12-06 22:28:43.585166+00', true, '\xde9a28a9922504dd6d6ca5389c9ee61ce5ba7cfbf78909183e941eecf55967dd9d4a4d00de406998b49d68c847351f33', 2964175);
INSERT INTO public._sqlx_migrations VALUES (8, 'sync revisions', '2026-12-06 22:28:43.588482+00', true, '\x3b17511e8e3798130b7c1ca6ffd34e271517b49da468943802805d996fcd93a972990a9fd193b0296a06873ff9078b6d', 1044357);
INSERT INTO public._sqlx_migrations VALUES (9, 'directories', '2026-12-06 22:28:43.589871+00', true, '\x197168a8d2ac161c13054c49591c4451dac57ba075d937bfe53979d1b539f53d99888524fd797a795a5f017cfd1f5407', 3261532);
INSERT INTO public._sqlx_migrations VALUES (10, 'directory passwords', '2026-12-06 22:28:43.59348+00', true, '\xffe1c753fa278f65727e391421090a9ea8821af00c7771d062522cabd9b9e2f51f4d690640ff45493a009c97c2819c8a', 669455);
INSERT INTO public._sqlx_migrations VALUES (11, 'pbx directories', '2026-12-06 22:28:43.594419+00', true, '\x087ee9d2401c33cde3f332723b6aff4e2026802cff3e586f8f4f1b30591dc72f294c651883027422582ab182d10122d1', 2780903);
INSERT INTO public._sqlx_migrations VALUES (12, 'overrides', '2026-12-06 22:28:43.597472+00', true, '\xbc813c70f465eb75a7a839ae66e64724b0440514eb8ac285205e1886f98561b36d2f42500d1c592c08a22e772f28e41f', 2570165);
INSERT INTO public._sqlx_migrations VALUES (13, 'phone events', '2026-12-06 22:28:43.600358+00', true, '\xa4fc9b36813669c69c2def3de9841b64b6e7963bcd9347ef9ac5667af641ddeb1ef961865b3f804ed599d667c8e7c59c', 4084811);
INSERT INTO public._sqlx_migrations VALUES (14, 'teams', '2026-12-06 22:28:43.604761+00', true, '\x697e911d9a92bb514def20d00c503584a67722ffb2b14299e4dfbfbe562c825d54d4becf0b582e0cf33fa993410c5803', 3668653);


--
-- Data for Name: accounts; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.accounts VALUES ('d35e2ae6-e844-4596-86ca-ab00a0d33f88', 'admin@uppgradering.example', 'Admin', 'company_admin', '59b9871f-76b0-413a-8e84-3d9a7e975b44', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$release', NULL, 1796596123635, NULL, NULL);


--
-- Data for Name: api_tokens; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: audit; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: bookings; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.bookings VALUES ('05357bd3-e62b-484a-b909-8bf58dae84f9', 'lunch-1', 1795435200000, '{"id":"lunch-1","start":"2026-11-23T11:00:00Z","end":"2026-11-23T12:00:00Z","all_day":false,"free_busy":"busy","sensitivity":"normal","cancelled":false,"response":"none"}');
INSERT INTO public.bookings VALUES ('05357bd3-e62b-484a-b909-8bf58dae84f9', 'kund-2', 1795512600000, '{"id":"kund-2","start":"2026-11-24T08:00:00Z","end":"2026-11-24T09:30:00Z","all_day":false,"free_busy":"busy","sensitivity":"normal","cancelled":false,"response":"none"}');


--
-- Data for Name: companies; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.companies VALUES ('59b9871f-76b0-413a-8e84-3d9a7e975b44', 'Uppgradering AB', 1796596123609, 1);


--
-- Data for Name: company_tenants; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: deliveries; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.deliveries VALUES ('d86d49b6-72a1-466c-a477-6ea8a0cd0dcd', '05357bd3-e62b-484a-b909-8bf58dae84f9', '9e307962-c9f9-415b-99b1-e79faf59a2ed', '59b9871f-76b0-413a-8e84-3d9a7e975b44', 1, '{"reason":"lunch","return_at":"2026-11-23T13:00:00+01:00"}', 'pending', 0, 1795431600000, 1795431600000, 1796596123634, NULL, NULL);


--
-- Data for Name: directories; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: instances; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.instances VALUES ('d1e2632b-209f-4910-9a2f-29bf0ba2683d', '59b9871f-76b0-413a-8e84-3d9a7e975b44', 'Microsoft 365', '{"client_id":"release-app","credential":{"kind":"secret","secret":"sealed:v1:m1RgeQGe3rsCN50/Pgc7qeRq9YCiEmno1i0+Fsove6j2IikT+mFIHW/spmfcDoBziQ=="},"graph_url":null,"kind":"graph","login_url":null,"tenant":"uppgradering.onmicrosoft.com"}', 'active = true
time_zone = "Europe/Stockholm"
days_ahead = 14
from_template = "showas-info"
user_choice = "off"
allowed_reasons = []
show_subject = false
hide_titles = false
private = "skip"
ignore_declined = true
chain_return_time = true
merge_gap = "0s"
rank = [
    "vacation",
    "sick",
    "out_of_office",
    "gone_for_the_day",
    "working_from_home",
    "meeting",
    "lunch",
    "busy",
]
write_back = false

[[rules]]
reason = "busy"
mode = "info"
show_subject = false

[rules.when]
show_as = ["busy"]

[[rules]]
reason = "out_of_office"
mode = "info"
show_subject = false

[rules.when]
show_as = ["oof"]

[working_hours]
days = [
    "mon",
    "tue",
    "wed",
    "thu",
    "fri",
]
start = "08:00"
end = "17:00"

[[reasons]]
code = "working_from_home"
label_sv = "Jobbar hemifrån"
label_en = "Working from home"
prefix = "HEM:"

[[reasons]]
code = "sick"
label_sv = "Sjuk / VAB"
label_en = "Sick / caring for child"
prefix = "SJU:"

[[reasons]]
code = "gone_for_the_day"
label_sv = "Gått för dagen"
label_en = "Gone for the day"
prefix = "SLU:"

[[reasons]]
code = "available"
label_sv = "Tillgänglig"
label_en = "Available"

[[reasons]]
code = "busy"
label_sv = "Upptagen"
label_en = "Busy"
prefix = "UPP:"

[[reasons]]
code = "lunch"
label_sv = "Lunch"
label_en = "Lunch"
prefix = "LUN:"

[[reasons]]
code = "meeting"
label_sv = "Möte"
label_en = "Meeting"
prefix = "MOT:"

[[reasons]]
code = "out_of_office"
label_sv = "Ej på kontoret"
label_en = "Out of office"
prefix = "UTE:"

[[reasons]]
code = "vacation"
label_sv = "Semester"
label_en = "Vacation"
prefix = "SEM:"

[automatic_replies]
enabled = false
reason = "out_of_office"
mode = "info"

[teams]
read = false
poll_seconds = 30
above_diverts = false
', 1, 1796596123613);


--
-- Data for Name: leases; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: overrides; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: pbx_directories; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: pbx_event_secrets; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.pbx_event_secrets VALUES ('59b9871f-76b0-413a-8e84-3d9a7e975b44', 'sealed:v1:1UlUW7K6k/NUX58BCxS9oZ5UP6LFDninIZ1BCdZuI1mcMI8muQUVfJypOfnQrw==', 1795158000000);


--
-- Data for Name: pbx_events; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: request_budgets; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: sessions; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: targets; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.targets VALUES ('9e307962-c9f9-415b-99b1-e79faf59a2ed', '59b9871f-76b0-413a-8e84-3d9a7e975b44', 'Växel', '{"kind":"webhook","signing_secret":"sealed:v1:8ul8PaK+3iETQIQujx3wPyHH8O3JTwaw30740ST2isLGIKe26uEoolwC2el4DTQyz7NxvSS62CA=","url":"https://pbx.uppgradering.example/kalsync"}', 1, 1796596123611);


--
-- Data for Name: teams_people; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: timelines; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.timelines VALUES ('05357bd3-e62b-484a-b909-8bf58dae84f9', '{"zone":"Europe/Stockholm","absences":[{"reason":"busy","mode":"info","start":"2026-11-23T11:00:00Z","end":"2026-11-23T12:00:00Z","returns_at":"2026-11-23T12:00:00Z","bookings":["lunch-1"],"user_choice":false},{"reason":"busy","mode":"info","start":"2026-11-24T08:00:00Z","end":"2026-11-24T09:30:00Z","returns_at":"2026-11-24T09:30:00Z","bookings":["kund-2"],"user_choice":false}]}', 1795431600000, 1796596123631);


--
-- Data for Name: users; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.users VALUES ('05357bd3-e62b-484a-b909-8bf58dae84f9', 'd1e2632b-209f-4910-9a2f-29bf0ba2683d', 'anna@uppgradering.example', 'Anna Berg', '201', 'null', NULL, NULL, 1796596123616, NULL, NULL, NULL, 0, NULL, NULL, NULL);
INSERT INTO public.users VALUES ('c8526f26-7a86-4260-b780-31fe13c71ac1', 'd1e2632b-209f-4910-9a2f-29bf0ba2683d', 'bo@uppgradering.example', 'Bo Ek', '202', 'null', NULL, NULL, 1796596123624, NULL, NULL, NULL, 0, NULL, NULL, NULL);
INSERT INTO public.users VALUES ('3b3a6d27-710a-424b-ac5f-01b77fecebef', 'd1e2632b-209f-4910-9a2f-29bf0ba2683d', 'carl@uppgradering.example', 'Carl Dahl', '203', 'null', NULL, NULL, 1796596123627, NULL, NULL, NULL, 0, NULL, NULL, NULL);


--
-- Name: audit_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.audit_id_seq', 1, false);


--
-- Name: _sqlx_migrations _sqlx_migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public._sqlx_migrations
    ADD CONSTRAINT _sqlx_migrations_pkey PRIMARY KEY (version);


--
-- Name: accounts accounts_email_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_email_key UNIQUE (email);


--
-- Name: accounts accounts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_pkey PRIMARY KEY (id);


--
-- Name: api_tokens api_tokens_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_tokens
    ADD CONSTRAINT api_tokens_pkey PRIMARY KEY (id);


--
-- Name: api_tokens api_tokens_token_hash_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_tokens
    ADD CONSTRAINT api_tokens_token_hash_key UNIQUE (token_hash);


--
-- Name: audit audit_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit
    ADD CONSTRAINT audit_pkey PRIMARY KEY (id);


--
-- Name: bookings bookings_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.bookings
    ADD CONSTRAINT bookings_pkey PRIMARY KEY (user_id, booking_id);


--
-- Name: companies companies_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.companies
    ADD CONSTRAINT companies_pkey PRIMARY KEY (id);


--
-- Name: company_tenants company_tenants_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.company_tenants
    ADD CONSTRAINT company_tenants_pkey PRIMARY KEY (tenant);


--
-- Name: deliveries deliveries_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deliveries
    ADD CONSTRAINT deliveries_pkey PRIMARY KEY (id);


--
-- Name: deliveries deliveries_user_id_target_id_sequence_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deliveries
    ADD CONSTRAINT deliveries_user_id_target_id_sequence_key UNIQUE (user_id, target_id, sequence);


--
-- Name: directories directories_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.directories
    ADD CONSTRAINT directories_pkey PRIMARY KEY (instance_id);


--
-- Name: instances instances_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.instances
    ADD CONSTRAINT instances_pkey PRIMARY KEY (id);


--
-- Name: leases leases_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.leases
    ADD CONSTRAINT leases_pkey PRIMARY KEY (user_id);


--
-- Name: overrides overrides_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.overrides
    ADD CONSTRAINT overrides_pkey PRIMARY KEY (user_id, source);


--
-- Name: pbx_directories pbx_directories_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.pbx_directories
    ADD CONSTRAINT pbx_directories_pkey PRIMARY KEY (company_id);


--
-- Name: pbx_event_secrets pbx_event_secrets_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.pbx_event_secrets
    ADD CONSTRAINT pbx_event_secrets_pkey PRIMARY KEY (company_id);


--
-- Name: pbx_events pbx_events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.pbx_events
    ADD CONSTRAINT pbx_events_pkey PRIMARY KEY (company_id, event_id);


--
-- Name: request_budgets request_budgets_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.request_budgets
    ADD CONSTRAINT request_budgets_pkey PRIMARY KEY (budget_key, window_ms);


--
-- Name: sessions sessions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_pkey PRIMARY KEY (id_hash);


--
-- Name: targets targets_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.targets
    ADD CONSTRAINT targets_pkey PRIMARY KEY (id);


--
-- Name: teams_people teams_people_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.teams_people
    ADD CONSTRAINT teams_people_pkey PRIMARY KEY (user_id);


--
-- Name: timelines timelines_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.timelines
    ADD CONSTRAINT timelines_pkey PRIMARY KEY (user_id);


--
-- Name: users users_instance_id_email_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_instance_id_email_key UNIQUE (instance_id, email);


--
-- Name: users users_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);


--
-- Name: accounts_company; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX accounts_company ON public.accounts USING btree (company_id);


--
-- Name: accounts_entra; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX accounts_entra ON public.accounts USING btree (entra_tenant, entra_object);


--
-- Name: api_tokens_company; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX api_tokens_company ON public.api_tokens USING btree (company_id);


--
-- Name: audit_company; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX audit_company ON public.audit USING btree (company_id, id);


--
-- Name: bookings_ends; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX bookings_ends ON public.bookings USING btree (ends_ms);


--
-- Name: companies_name; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX companies_name ON public.companies USING btree (name);


--
-- Name: company_tenants_company; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX company_tenants_company ON public.company_tenants USING btree (company_id);


--
-- Name: deliveries_company; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX deliveries_company ON public.deliveries USING btree (company_id, state, created_ms);


--
-- Name: deliveries_pending; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX deliveries_pending ON public.deliveries USING btree (state, next_attempt_ms);


--
-- Name: directories_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX directories_due ON public.directories USING btree (next_run_ms);


--
-- Name: instances_company; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX instances_company ON public.instances USING btree (company_id);


--
-- Name: instances_company_name; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX instances_company_name ON public.instances USING btree (company_id, name);


--
-- Name: leases_node; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX leases_node ON public.leases USING btree (node);


--
-- Name: pbx_directories_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX pbx_directories_due ON public.pbx_directories USING btree (next_fetch_ms);


--
-- Name: pbx_events_seen; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX pbx_events_seen ON public.pbx_events USING btree (seen_ms);


--
-- Name: sessions_account; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX sessions_account ON public.sessions USING btree (account_id);


--
-- Name: sessions_expires; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX sessions_expires ON public.sessions USING btree (expires_ms);


--
-- Name: targets_company; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX targets_company ON public.targets USING btree (company_id);


--
-- Name: targets_company_name; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX targets_company_name ON public.targets USING btree (company_id, name);


--
-- Name: users_push_token; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX users_push_token ON public.users USING btree (push_token);


--
-- Name: users_subscription; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX users_subscription ON public.users USING btree (subscription_id);


--
-- Name: users_sync_requested; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX users_sync_requested ON public.users USING btree (sync_requested_ms);


--
-- Name: accounts accounts_company_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_company_id_fkey FOREIGN KEY (company_id) REFERENCES public.companies(id) ON DELETE CASCADE;


--
-- Name: api_tokens api_tokens_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_tokens
    ADD CONSTRAINT api_tokens_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts(id) ON DELETE CASCADE;


--
-- Name: api_tokens api_tokens_company_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_tokens
    ADD CONSTRAINT api_tokens_company_id_fkey FOREIGN KEY (company_id) REFERENCES public.companies(id) ON DELETE CASCADE;


--
-- Name: bookings bookings_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.bookings
    ADD CONSTRAINT bookings_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;


--
-- Name: company_tenants company_tenants_company_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.company_tenants
    ADD CONSTRAINT company_tenants_company_id_fkey FOREIGN KEY (company_id) REFERENCES public.companies(id) ON DELETE CASCADE;


--
-- Name: deliveries deliveries_target_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deliveries
    ADD CONSTRAINT deliveries_target_id_fkey FOREIGN KEY (target_id) REFERENCES public.targets(id) ON DELETE CASCADE;


--
-- Name: deliveries deliveries_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deliveries
    ADD CONSTRAINT deliveries_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;


--
-- Name: directories directories_instance_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.directories
    ADD CONSTRAINT directories_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES public.instances(id) ON DELETE CASCADE;


--
-- Name: instances instances_company_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.instances
    ADD CONSTRAINT instances_company_id_fkey FOREIGN KEY (company_id) REFERENCES public.companies(id) ON DELETE CASCADE;


--
-- Name: leases leases_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.leases
    ADD CONSTRAINT leases_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;


--
-- Name: overrides overrides_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.overrides
    ADD CONSTRAINT overrides_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;


--
-- Name: pbx_directories pbx_directories_company_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.pbx_directories
    ADD CONSTRAINT pbx_directories_company_id_fkey FOREIGN KEY (company_id) REFERENCES public.companies(id) ON DELETE CASCADE;


--
-- Name: pbx_event_secrets pbx_event_secrets_company_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.pbx_event_secrets
    ADD CONSTRAINT pbx_event_secrets_company_id_fkey FOREIGN KEY (company_id) REFERENCES public.companies(id) ON DELETE CASCADE;


--
-- Name: pbx_events pbx_events_company_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.pbx_events
    ADD CONSTRAINT pbx_events_company_id_fkey FOREIGN KEY (company_id) REFERENCES public.companies(id) ON DELETE CASCADE;


--
-- Name: sessions sessions_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts(id) ON DELETE CASCADE;


--
-- Name: targets targets_company_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.targets
    ADD CONSTRAINT targets_company_id_fkey FOREIGN KEY (company_id) REFERENCES public.companies(id) ON DELETE CASCADE;


--
-- Name: teams_people teams_people_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.teams_people
    ADD CONSTRAINT teams_people_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;


--
-- Name: timelines timelines_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.timelines
    ADD CONSTRAINT timelines_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;


--
-- Name: users users_instance_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES public.instances(id) ON DELETE CASCADE;


--
-- PostgreSQL database dump complete
--


