//! Secrets stay secret: a service with every kind of secret — a Graph client secret, an
//! Exchange service account's password, a webhook signing secret, an AMI secret, the
//! operator's app secret, account passwords and API tokens — runs, reads, delivers and
//! answers every API and page, with logs at TRACE. None of them then appears in the log,
//! in any answer, or in clear in the database (SQLite's files, and every row of every
//! PostgreSQL table when `KALSYNC_TEST_POSTGRES_URL` is set).

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kalsync_graph_sim::{EventSpec, SimConfig, Simulator};
use kalsync_server::Settings;
use kalsync_server::settings::{
    AccountDecl, CompanyDecl, InstanceDecl, Microsoft365Settings, SourceDecl, TargetDecl, UserDecl,
};
use serde_json::json;

const GRAPH_SECRET: &str = "graph-client-secret-7f3a9d";
const ROTATED_SECRET: &str = "graph-client-secret-rotated-8b21";
const EWS_PASSWORD: &str = "ews-service-password-91c2";
const WEBHOOK_KEY: &str = "c2lnbmluZy1zZWNyZXQtb2YtdGhlLXdlYmhvb2s";
const AMI_SECRET: &str = "ami-manager-secret-55e1";
const OPERATOR_APP_SECRET: &str = "operator-app-secret-3c7d";
const ADMIN_PASSWORD: &str = "admin-password-4411-lång";

/// Everything the service logs, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// The process's one log, at TRACE, captured for every test here (a subscriber set per
/// thread misses events while another test's thread registers its own).
fn captured() -> &'static Captured {
    static LOG: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let log = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(kalsync_server::logs::LineSafe(log.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        log
    })
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

/// Acme with a webhook and an AMI target, a Graph instance (Graph and login at
/// `graph_root`) and an EWS one at `ews`, each with `user`, and every kind of secret.
fn acme_with_every_source_and_target(
    hook: &str,
    ami_port: u16,
    graph_root: &str,
    ews: &str,
    user: UserDecl,
) -> CompanyDecl {
    CompanyDecl {
        name: "Acme".into(),
        targets: vec![
            TargetDecl::Webhook {
                name: "hook".into(),
                url: hook.to_owned(),
                signing_secret: format!("whsec_{WEBHOOK_KEY}").into(),
            },
            TargetDecl::Ami {
                name: "asterisk".into(),
                host: "127.0.0.1".into(),
                port: ami_port,
                username: "kalsync".into(),
                secret: AMI_SECRET.to_owned().into(),
                announcement: "*99".into(),
            },
        ],
        instances: vec![
            InstanceDecl {
                name: "M365".into(),
                source: SourceDecl::Graph {
                    tenant: SIM_TENANT.into(),
                    client_id: "c".into(),
                    client_secret: GRAPH_SECRET.to_owned().into(),
                    graph_url: Some(format!("{graph_root}v1.0/")),
                    login_url: Some(graph_root.to_owned()),
                },
                settings: Some(toml::from_str("template = \"prefix\"").expect("rules")),
                users: vec![user.clone()],
            },
            InstanceDecl {
                name: "Exchange".into(),
                source: SourceDecl::Ews {
                    url: ews.to_owned(),
                    username: "CORP\\svc-kalsync".into(),
                    password: EWS_PASSWORD.to_owned().into(),
                    auth: kalsync_core::exchange::SignIn::Ntlm,
                    version: kalsync_core::exchange::Version::Exchange2013Sp1,
                    access: kalsync_core::exchange::Access::Impersonation,
                    options: Default::default(),
                    ca_file: None,
                },
                settings: Some(toml::from_str("template = \"prefix\"").expect("rules")),
                users: vec![user],
            },
        ],
    }
}

/// A port nothing listens on (a target that is down: its errors get logged).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// A new PostgreSQL database's URL, and the admin URL to drop it with.
async fn postgres_database() -> Option<(String, String, String)> {
    use sqlx::Connection as _;
    let admin = std::env::var("KALSYNC_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    let name = format!("kalsync_secrets_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("KALSYNC_TEST_POSTGRES_URL reachable");
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut conn)
        .await;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    Some((format!("{base}/{name}"), admin.clone(), name))
}

/// Every row of every table, as JSON text.
async fn postgres_dump(url: &str) -> String {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("tables");
    let mut dump = String::new();
    for (table,) in tables {
        let rows: Vec<(String,)> =
            sqlx::query_as(&format!("SELECT row_to_json(t)::text FROM \"{table}\" t"))
                .fetch_all(&mut conn)
                .await
                .expect("rows");
        for (row,) in rows {
            dump.push_str(&row);
            dump.push('\n');
        }
    }
    dump
}

/// The simulated Microsoft 365 tenant.
const SIM_TENANT: &str = "84bd8158-6d4d-4958-8b9f-9d6445542f95";
#[tokio::test]
async fn no_secret_appears_in_logs_answers_or_the_database_in_clear() {
    let sqlite = run_with_every_secret(None).await;
    check(&sqlite);
    if let Some((url, admin, name)) = postgres_database().await {
        let pg = run_with_every_secret(Some(url.clone())).await;
        check(&pg);
        use sqlx::Connection as _;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await;
        }
    } else {
        eprintln!("skipped the PostgreSQL half: KALSYNC_TEST_POSTGRES_URL is not set (CI sets it)");
    }
}

/// What one run left behind.
struct Seen {
    backend: &'static str,
    log: String,
    answers: String,
    database: String,
    token: String,
}

fn check(seen: &Seen) {
    // The scans see what they should: the run logged, answered and stored things.
    assert!(
        seen.log.contains("store open"),
        "{}: log captured",
        seen.backend
    );
    assert!(
        seen.answers.contains("anna@acme.example"),
        "{}: answers captured",
        seen.backend
    );
    assert!(
        seen.database.contains("svc-kalsync"),
        "{}: the database dump holds the (not secret) account name",
        seen.backend
    );
    for secret in [
        GRAPH_SECRET,
        ROTATED_SECRET,
        EWS_PASSWORD,
        WEBHOOK_KEY,
        AMI_SECRET,
        OPERATOR_APP_SECRET,
        ADMIN_PASSWORD,
        seen.token.as_str(),
    ] {
        for (place, text) in [
            ("the log", &seen.log),
            ("an API or page answer", &seen.answers),
            ("the database", &seen.database),
        ] {
            assert!(
                !text.contains(secret),
                "{}: `{secret}` is in {place}",
                seen.backend
            );
        }
    }
}

async fn run_with_every_secret(postgres: Option<String>) -> Seen {
    let log = captured();

    let calendars = Simulator::new(SimConfig::with_secret(SIM_TENANT, "c", GRAPH_SECRET));
    calendars
        .add_user(support::mailbox("anna@acme.example"))
        .expect("user");
    let now = jiff::Timestamp::now();
    calendars
        .create_event(
            "anna@acme.example",
            EventSpec::new(
                "LUN: Lunch",
                now - jiff::SignedDuration::from_mins(5),
                now + jiff::SignedDuration::from_mins(55),
            ),
        )
        .expect("event");
    let (sim_url, _graph) = kalsync_graph_sim::spawn(calendars.clone())
        .await
        .expect("sim");
    let ews = kalsync_ews_sim::EwsSim::new(
        calendars.clone(),
        kalsync_ews_sim::EwsConfig::new("CORP\\svc-kalsync", EWS_PASSWORD),
    );
    let (ews_url, _ews) = kalsync_ews_sim::spawn(ews).await.expect("ews");
    let backend = if postgres.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let dir =
        std::env::temp_dir().join(format!("kalsync-secrets-{backend}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let (listener, base) = support::listener().await;
    let user = || UserDecl::Full {
        email: "anna@acme.example".into(),
        name: Some("Anna".into()),
        extension: Some("201".into()),
    };
    let mut settings = Settings {
        database_url: postgres
            .clone()
            .unwrap_or_else(|| format!("sqlite:{}", dir.join("k.db").display())),
        master_key_file: dir.join("k.key"),
        public_url: url::Url::parse(&format!("{base}/")).ok(),
        companies: vec![acme_with_every_source_and_target(
            &format!("http://127.0.0.1:{}/hook", closed_port()),
            closed_port(),
            sim_url.as_ref(),
            &format!("{ews_url}EWS/Exchange.asmx"),
            user(),
        )],
        accounts: vec![AccountDecl {
            email: "it@acme.example".into(),
            role: "company_admin".into(),
            company: Some("Acme".into()),
            password: ADMIN_PASSWORD.to_owned().into(),
        }],
        microsoft365: Some(Microsoft365Settings {
            client_id: "operator-app".into(),
            client_secret: OPERATOR_APP_SECRET.to_owned().into(),
            login_url: Some(sim_url.clone()),
            graph_url: None,
            operator_tenant: None,
            operator_roles: vec!["Kalsync.Operator".into()],
        }),
        // The simulators listen on loopback.
        outbound: kalsync_server::settings::OutboundSettings::loopback(),
        ..Settings::default()
    };
    settings.engine.debounce_ms = 0;
    settings.engine.poll_interval_secs = 1;
    let served = support::Served::start(settings, listener, dir.clone());

    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let mut answers = String::new();
    let mut me = serde_json::Value::Null;
    for _ in 0..100 {
        if let Ok(r) = http
            .post(format!("{base}/api/v1/session"))
            .json(&json!({"email": "it@acme.example", "password": ADMIN_PASSWORD}))
            .send()
            .await
            && r.status().is_success()
        {
            me = r.json().await.expect("me");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let csrf = me["csrf"].as_str().expect("signed in").to_owned();
    let company = me["company"].as_str().expect("company").to_owned();
    let get = |path: String| {
        let http = http.clone();
        let base = base.clone();
        async move {
            http.get(format!("{base}{path}"))
                .send()
                .await
                .expect("get")
                .text()
                .await
                .expect("text")
        }
    };
    // The token is shown once, in its creation's answer: that answer is not scanned.
    let made: serde_json::Value = http
        .post(format!("{base}/api/v1/companies/{company}/tokens"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "console"}))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let token = made["token"].as_str().expect("token").to_owned();
    let instances: serde_json::Value =
        serde_json::from_str(&get(format!("/api/v1/companies/{company}/instances")).await)
            .expect("instances");
    let graph_instance = instances
        .as_array()
        .and_then(|l| l.iter().find(|i| i["source"]["kind"] == "graph"))
        .expect("graph")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // Anna's lunch is read and served (her mailbox was read with the secret).
    let users: serde_json::Value =
        serde_json::from_str(&get(format!("/api/v1/instances/{graph_instance}/users")).await)
            .expect("users");
    let anna = users[0]["id"].as_str().expect("anna").to_owned();
    let lunch = support::eventually(|| async {
        get(format!("/api/v1/users/{anna}/status"))
            .await
            .contains("lunch")
    })
    .await;
    assert!(lunch, "Anna's lunch was read");
    // A new secret in a change is stored, and not echoed back.
    let changed = http
        .patch(format!("{base}/api/v1/instances/{graph_instance}"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"source": {"kind": "graph", "tenant": SIM_TENANT, "client_id": "c", "client_secret": ROTATED_SECRET,
            "graph_url": format!("{sim_url}v1.0/"), "login_url": sim_url.to_string()}}))
        .send()
        .await
        .expect("patch");
    assert!(changed.status().is_success(), "the secret was rotated");
    answers.push_str(&changed.text().await.expect("text"));
    for path in [
        "/api/v1/me".to_owned(),
        "/api/v1/companies".to_owned(),
        format!("/api/v1/companies/{company}"),
        format!("/api/v1/companies/{company}/instances"),
        format!("/api/v1/companies/{company}/tokens"),
        format!("/api/v1/companies/{company}/accounts"),
        format!("/api/v1/companies/{company}/audit"),
        format!("/api/v1/companies/{company}/deliveries"),
        format!("/api/v1/companies/{company}/deliveries?state=dead"),
        format!("/api/v1/instances/{graph_instance}"),
        format!("/api/v1/instances/{graph_instance}/users"),
        format!("/api/v1/users/{anna}/status"),
        "/api/v1/directory?all=true".to_owned(),
        "/api/v1/openapi.json".to_owned(),
        "/".to_owned(),
        "/switchboard".to_owned(),
        format!("/instances/{graph_instance}"),
        format!("/instances/{graph_instance}/settings"),
        format!("/instances/{graph_instance}/rules"),
        format!("/users/{anna}"),
        format!("/companies/{company}/accounts"),
        format!("/companies/{company}/instances/new"),
        "/account".to_owned(),
        "/metrics".to_owned(),
    ] {
        answers.push_str(&get(path).await);
    }
    // The token works, and its use is not echoed.
    answers.push_str(
        &http
            .get(format!("{base}/api/v1/directory"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("token use")
            .text()
            .await
            .expect("text"),
    );
    // A wrong password's refusal says nothing of the right one.
    answers.push_str(
        &reqwest::Client::new()
            .post(format!("{base}/api/v1/session"))
            .json(&json!({"email": "it@acme.example", "password": "wrong-password-00"}))
            .send()
            .await
            .expect("refused")
            .text()
            .await
            .expect("text"),
    );

    served.halt().await;
    let database = match &postgres {
        Some(url) => postgres_dump(url).await,
        None => std::fs::read_dir(&dir)
            .expect("dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("k.db"))
            .map(|e| String::from_utf8_lossy(&std::fs::read(e.path()).expect("read")).into_owned())
            .collect(),
    };
    let _ = std::fs::remove_dir_all(&dir);
    Seen {
        backend,
        log: log.text(),
        answers,
        database,
        token,
    }
}

#[tokio::test]
async fn hostile_notifications_are_refused_and_change_nothing() {
    captured();
    let calendars = Simulator::new(SimConfig::with_secret(SIM_TENANT, "c", "s"));
    calendars
        .add_user(support::mailbox("anna@acme.example"))
        .expect("user");
    let (sim_url, _graph) = kalsync_graph_sim::spawn(calendars.clone())
        .await
        .expect("sim");
    let dir = support::folder("kalsync-hostile");
    let (listener, base) = support::listener().await;
    let settings = Settings {
        database_url: format!("sqlite:{}", dir.join("k.db").display()),
        master_key_file: dir.join("k.key"),
        public_url: url::Url::parse(&format!("{base}/")).ok(),
        companies: vec![CompanyDecl {
            name: "Acme".into(),
            targets: vec![TargetDecl::Simulator { name: "pbx".into() }],
            instances: vec![InstanceDecl {
                name: "M365".into(),
                source: SourceDecl::Graph {
                    tenant: SIM_TENANT.into(),
                    client_id: "c".into(),
                    client_secret: "s".to_owned().into(),
                    graph_url: Some(format!("{sim_url}v1.0/")),
                    login_url: Some(sim_url.to_string()),
                },
                settings: None,
                users: vec![UserDecl::Email("anna@acme.example".into())],
            }],
        }],
        // The simulators listen on loopback.
        outbound: kalsync_server::settings::OutboundSettings::loopback(),
        ..Settings::default()
    };
    let mut settings = settings;
    // Any read a hostile notification caused would come at once.
    settings.engine.debounce_ms = 0;
    let served = support::Served::start(settings, listener, dir.clone());
    for _ in 0..100 {
        if !calendars.subscriptions().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let subscription = calendars.subscriptions()[0].0.clone();
    // The first reads are over before counting.
    let mut reads = calendars.stats().requests;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = calendars.stats().requests;
        if now == reads {
            break;
        }
        reads = now;
    }
    let http = reqwest::Client::new();
    let post = |path: &str, body: Vec<u8>, kind: &str| {
        http.post(format!("{base}{path}"))
            .header("content-type", kind)
            .body(body)
            .send()
    };

    // Oversized: refused before it is read.
    let huge = post(
        "/notifications/graph",
        vec![b' '; 3 * 1024 * 1024],
        "application/json",
    )
    .await
    .expect("answer");
    assert_eq!(huge.status(), 413);
    // Malformed, or the right subscription with a guessed clientState: refused.
    let malformed = post(
        "/notifications/graph",
        b"{\"value\": [".to_vec(),
        "application/json",
    )
    .await
    .expect("answer");
    assert!(
        malformed.status().is_client_error(),
        "{}",
        malformed.status()
    );
    let forged = json!({"value": [{"subscriptionId": subscription, "clientState": "guess",
        "changeType": "updated", "resource": "Users/x/Events/y", "tenantId": "t"}]});
    let answer = post(
        "/notifications/graph",
        forged.to_string().into_bytes(),
        "application/json",
    )
    .await
    .expect("answer");
    assert_eq!(answer.status(), 403);
    // An EWS push for no subscription of ours, carrying an entity bomb: told to stop.
    let bomb = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\"><!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>&lol3;</s:Body></s:Envelope>";
    let pushed = post("/notifications/ews/guessed-token", bomb.into(), "text/xml")
        .await
        .expect("answer")
        .text()
        .await
        .expect("text");
    assert!(pushed.contains("Unsubscribe"), "{pushed}");
    // A Graph subscription id posted as an EWS push token names nobody.
    let crossed = post(
        &format!("/notifications/ews/{subscription}"),
        b"<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"/>".to_vec(),
        "text/xml",
    )
    .await
    .expect("answer")
    .text()
    .await
    .expect("text");
    assert!(crossed.contains("Unsubscribe"), "{crossed}");
    // A flood of unknown subscriptions, one of them carrying a forged log line: refused
    // without a look-up or a log line each, and the forged line never starts a line.
    let forged_line = "2026-12-02T00:00:00.000000Z  WARN kalsync: FORGED by a notification";
    let mut flood: Vec<serde_json::Value> = (0..999)
        .map(|i| {
            json!({"subscriptionId": format!("flood-{i}"), "clientState": "guess",
            "changeType": "updated", "resource": "Users/x/Events/y"})
        })
        .collect();
    flood.push(
        json!({"subscriptionId": format!("x\n{forged_line}\u{1b}[31m"),
        "clientState": format!("y\n{forged_line}"), "changeType": "updated", "resource": "r"}),
    );
    let answer = post(
        "/notifications/graph",
        json!({"value": flood}).to_string().into_bytes(),
        "application/json",
    )
    .await
    .expect("answer");
    assert_eq!(answer.status(), 403);
    let too_many: Vec<serde_json::Value> = (0..1001)
        .map(|_| {
            json!({"subscriptionId": subscription, "clientState": "guess",
            "changeType": "updated", "resource": "r"})
        })
        .collect();
    let answer = post(
        "/notifications/graph",
        json!({"value": too_many}).to_string().into_bytes(),
        "application/json",
    )
    .await
    .expect("answer");
    assert_eq!(answer.status(), 413, "more items than Graph ever batches");
    let log = captured().text();
    assert!(
        !log.lines().any(|l| l.starts_with(forged_line)),
        "a field from outside started a line of its own"
    );
    assert!(!log.contains('\u{1b}'), "no escape byte reaches the log");
    assert!(
        log.lines().filter(|l| l.contains("flood-")).count() <= 1,
        "a thousand refused items are one summary line at most"
    );
    // The validation handshake echoes only plain text.
    let echo = http
        .post(format!(
            "{base}/notifications/graph?validationToken=%3Cscript%3Ealert(1)%3C%2Fscript%3E"
        ))
        .send()
        .await
        .expect("answer");
    let kind = echo
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(kind.starts_with("text/plain"), "{kind}");

    // Nothing was read because of them, and the service still answers.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(calendars.stats().requests, reads);
    let health = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("health");
    assert!(health.status().is_success());
    served.stop().await;
}

/// Sources and targets a company admin points at this machine or a private network are
/// refused before anything is sent (`docs/THREAT_MODEL.md`, T5): with no `[outbound]
/// allow`, an Exchange, a Graph and login host, a webhook and an AMI manager on loopback
/// get no connection, and the connection check says why.
#[tokio::test]
async fn sources_and_targets_on_local_addresses_are_refused_without_the_operators_allow_list() {
    captured();
    let internal = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("an internal service");
    let port = internal.local_addr().expect("addr").port();
    let local = format!("http://127.0.0.1:{port}/");
    let dir = support::folder("kalsync-outbound");
    let (listener, _base) = support::listener().await;
    let user = || UserDecl::Email("anna@acme.example".into());
    let mut settings = Settings {
        database_url: format!("sqlite:{}", dir.join("k.db").display()),
        master_key_file: dir.join("k.key"),
        companies: vec![acme_with_every_source_and_target(
            &format!("{local}hook"),
            port,
            &local,
            &format!("{local}EWS/Exchange.asmx"),
            user(),
        )],
        ..Settings::default()
    };
    settings.engine.debounce_ms = 0;
    settings.engine.poll_interval_secs = 1;
    // The service runs, reads and delivers for a while: nothing reaches the listener.
    let served = support::Served::start(settings.clone(), listener, dir.clone());
    let reached = tokio::time::timeout(Duration::from_secs(3), internal.accept()).await;
    assert!(reached.is_err(), "a request reached an internal address");
    served.stop().await;

    // The connection check names the refusal for each source.
    let service = kalsync_server::Service::start(settings)
        .await
        .expect("service");
    let company = service.store.companies().await.expect("companies")[0].id;
    for instance in service.store.instances(company).await.expect("instances") {
        let steps = kalsync_server::check::check_instance(
            service.store.as_ref(),
            &service.connections,
            instance.id,
            Some("anna@acme.example"),
        )
        .await;
        let text = format!("{steps:?}");
        assert!(
            text.contains("local or private network"),
            "{}: {text}",
            instance.name
        );
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(200), internal.accept())
            .await
            .is_err(),
        "the check reached an internal address"
    );
}

/// Nothing a client holds open delays a stop (`docs/THREAT_MODEL.md`, T8): a
/// receptionist's live switchboard ends when the service is told to stop.
#[tokio::test]
async fn an_open_switchboard_stream_does_not_hold_a_stop_up() {
    captured();
    let dir = support::folder("kalsync-stop");
    let (listener, base) = support::listener().await;
    let settings = Settings {
        database_url: format!("sqlite:{}", dir.join("k.db").display()),
        master_key_file: dir.join("k.key"),
        accounts: vec![AccountDecl {
            email: "operator@example.se".into(),
            role: "operator".into(),
            company: None,
            password: ADMIN_PASSWORD.to_owned().into(),
        }],
        ..Settings::default()
    };
    let served = support::Served::start(settings, listener, dir);
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let signed_in = support::eventually(|| async {
        http.post(format!("{base}/api/v1/session"))
            .json(&json!({"email": "operator@example.se", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert!(signed_in, "the service answers");
    let stream = http
        .get(format!("{base}/switchboard/events"))
        .send()
        .await
        .expect("the stream");
    assert_eq!(stream.status(), reqwest::StatusCode::OK);
    assert!(
        served.stop_within(Duration::from_secs(8)).await,
        "the stop waited for the open stream"
    );
    drop(stream);
}
