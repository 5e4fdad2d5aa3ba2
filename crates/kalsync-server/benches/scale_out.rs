//! Scale-out: `NODES` `kalsync serve` nodes, each its own process, on one PostgreSQL,
//! sharing `USERS` users of one Microsoft 365 instance (the Graph simulator, in this
//! process, one booking a user). Reports the first read of every mailbox, each node's
//! share and resident memory, the top of the hour with `TOP` absences beginning at one
//! instant (lateness at the webhook: first, median, p99, last), and, with one node
//! killed, the time until the others hold its users and whether any status reached the
//! PBX twice.
//!
//! `cargo bench -p kalsync-server --bench scale_out` (environment: `USERS`, default
//! 300000; `TOP`, default 100000; `NODES`, default 3; `BATCH`, default true (the
//! webhook takes batches); `ADMIN_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`,
//! where a fresh database is made and dropped; `NODE_LOG`, the nodes' `RUST_LOG` (their logs are then kept), default `warn`; `TOP_AFTER_SECS`: when the absences begin,
//! counted from the start of the set-up, default 100 s + 2.7 ms a user, time for the set-up
//! and the first read on two cores).

use std::collections::HashMap;
use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use base64::Engine as _;
use jiff::{SignedDuration, Timestamp};
use kalsync_core::{EmailAddress, Extension, InstanceSettings};
use kalsync_graph_sim::{EventSpec, SimConfig, Simulator, UserSpec};
use kalsync_store::{
    GraphCredential, NewInstance, NewTarget, NewUser, SecretBox, SourceConfig, Store, TargetConfig,
};
use kalsync_store_sql::{DatabaseUrl, SqlStore};
use secrecy::SecretString;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Set in a node's environment: the settings file it runs with.
const NODE_SETTINGS: &str = "SCALE_OUT_NODE_SETTINGS";

use kalsync_testkit::env_or as env;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    match std::env::var(NODE_SETTINGS) {
        Ok(file) => runtime.block_on(node(file)),
        Err(_) => runtime.block_on(bench()),
    }
}

/// One node: `kalsync serve` with the settings file, until it is killed.
async fn node(file: String) {
    // Its log (`NODE_LOG`) to its own file, beside its settings.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let settings = kalsync_server::Settings::load(
        Some(std::path::Path::new(&file)),
        &kalsync_server::settings::Overrides::default(),
    )
    .expect("settings");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    println!("ready {}", listener.local_addr().expect("addr"));
    kalsync_server::run(settings, listener, std::future::pending())
        .await
        .expect("node");
}

/// What the webhook saw of each user: absent or not, the delivery id, when.
type Seen = Arc<Mutex<HashMap<String, Vec<(bool, String, Instant)>>>>;

/// What the webhook reads of an event: one status, or a batch's.
#[derive(serde::Deserialize)]
struct HookEvent<'a> {
    #[serde(borrow)]
    data: HookData<'a>,
}

/// A batch's statuses, or one status's fields.
#[derive(serde::Deserialize)]
struct HookData<'a> {
    #[serde(borrow, default)]
    statuses: Option<Vec<HookStatus<'a>>>,
    #[serde(borrow, default)]
    user: Option<HookUser<'a>>,
    #[serde(default)]
    absence: Option<serde::de::IgnoredAny>,
    #[serde(borrow, default)]
    delivery_id: Option<std::borrow::Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct HookStatus<'a> {
    #[serde(borrow)]
    user: HookUser<'a>,
    #[serde(default)]
    absence: Option<serde::de::IgnoredAny>,
    #[serde(borrow)]
    delivery_id: std::borrow::Cow<'a, str>,
}

#[derive(serde::Deserialize)]
struct HookUser<'a> {
    #[serde(borrow)]
    email: std::borrow::Cow<'a, str>,
}

/// A node process, killed when dropped.
struct NodeProcess {
    name: String,
    child: Child,
    url: String,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodeProcess {
    fn start(dir: &std::path::Path, name: &str, settings: &str) -> NodeProcess {
        let file = dir.join(format!("{name}.toml"));
        std::fs::write(&file, settings).expect("settings file");
        let mut child = Command::new(std::env::current_exe().expect("exe"))
            .env(NODE_SETTINGS, &file)
            .env("RUST_LOG", env("NODE_LOG", "warn".to_owned()))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join(format!("{name}.log"))).expect("log"),
            ))
            .spawn()
            .expect("node");
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let addr = loop {
            let line = lines.next().expect("a ready line").expect("line");
            if let Some(addr) = line.strip_prefix("ready ") {
                break addr.to_owned();
            }
        };
        // The rest of its output is read so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        NodeProcess {
            name: name.to_owned(),
            child,
            url: format!("http://{addr}"),
        }
    }

    /// Resident memory, MiB.
    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }

    /// A gauge or counter from its `/metrics`.
    async fn metric(&self, http: &reqwest::Client, name: &str) -> Option<u64> {
        let text = http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }
}

async fn bench() {
    let users: usize = env("USERS", 300_000);
    let top: usize = env("TOP", 100_000).min(users);
    let nodes: usize = env("NODES", 3).max(2);
    let batch: bool = env("BATCH", true);
    let admin = env(
        "ADMIN_URL",
        "postgres://postgres@127.0.0.1:5432/postgres".to_owned(),
    );
    let top_after = Duration::from_secs(env("TOP_AFTER_SECS", 100 + users as u64 * 27 / 10_000));
    let dir = std::env::temp_dir().join(format!("kalsync-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");

    // A fresh database, dropped at the end.
    let name = format!("kalsync_scale_{}", std::process::id());
    let admin_pool = sqlx::PgPool::connect(&admin).await.expect("admin");
    // What an interrupted run left behind.
    let left: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'kalsync\\_scale\\_%'",
    )
    .fetch_all(&admin_pool)
    .await
    .expect("databases");
    for old in left {
        let _ = sqlx::query(&format!("DROP DATABASE \"{old}\" WITH (FORCE)"))
            .execute(&admin_pool)
            .await;
    }
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin_pool)
        .await
        .expect("create database");
    let database_url = format!("{}/{name}", admin.rsplit_once('/').expect("a path").0);
    let db = sqlx::PgPool::connect(&database_url).await.expect("db");

    // The PBX: a webhook on loopback that records each user's statuses.
    let seen: Seen = Arc::default();
    let recorded = seen.clone();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let recorded = recorded.clone();
            async move {
                let at = Instant::now();
                // Read as cheaply as it can be (only the fields counted, borrowed): the
                // PBX's work, not Kalsync's, on the same two cores.
                let Ok(event) = serde_json::from_slice::<HookEvent<'_>>(&body) else {
                    return StatusCode::BAD_REQUEST;
                };
                let data = event.data;
                let one = match (data.user, data.delivery_id) {
                    (Some(user), Some(delivery_id)) => Some(HookStatus {
                        user,
                        absence: data.absence,
                        delivery_id,
                    }),
                    _ => None,
                };
                let statuses = data.statuses.unwrap_or_default();
                let mut recorded = recorded.lock().expect("lock");
                for s in statuses.into_iter().chain(one) {
                    recorded
                        .entry(s.user.email.into_owned())
                        .or_default()
                        .push((s.absence.is_some(), s.delivery_id.into_owned(), at));
                }
                StatusCode::NO_CONTENT
            }
        }),
    );
    let hook_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook_url = format!("http://{}/hook", hook_listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(hook_listener, hook).await });

    // The calendars: every user in the simulator; the first `top` have an absence that
    // begins at one instant and ends five minutes later (after the killed node's users
    // are taken over and read again), the others a lunch tomorrow.
    let setup = Instant::now();
    let sim = Simulator::new(SimConfig::with_secret("t", "c", "s"));
    let emails: Vec<String> = (0..users)
        .map(|i| format!("user{i:06}@bench.example"))
        .collect();
    let start = Timestamp::now() + SignedDuration::try_from(top_after).expect("secs");
    let start = Timestamp::from_second(start.as_second()).expect("whole second");
    let end = start + SignedDuration::from_mins(5);
    let tomorrow = start + SignedDuration::from_hours(20);
    for (i, email) in emails.iter().enumerate() {
        sim.add_user(UserSpec {
            upn: email.clone(),
            id: None,
            display_name: None,
            time_zone: "W. Europe Standard Time".into(),
            working_hours: None,
        })
        .expect("user");
        let (subject, from, to) = if i < top {
            ("MOT: Kundmöte", start, end)
        } else {
            (
                "LUN: Lunch",
                tomorrow,
                tomorrow + SignedDuration::from_hours(1),
            )
        };
        sim.create_event(email, EventSpec::new(subject, from, to))
            .expect("event");
    }
    let (sim_url, _sim) = kalsync_graph_sim::spawn(sim.clone()).await.expect("sim");

    // The store: one company, its instance and webhook, the users (no read yet).
    let mut key = [0u8; 32];
    rand::fill(&mut key);
    let key = base64::engine::general_purpose::STANDARD.encode(key);
    let store = Arc::new(
        SqlStore::connect(
            &DatabaseUrl::new(database_url.clone()),
            SecretBox::from_base64(&key).expect("key"),
        )
        .await
        .expect("store"),
    );
    let company = store.create_company("Scale AB").await.expect("company");
    let instance = store
        .create_instance(NewInstance {
            company: company.id,
            name: "M365".into(),
            source: SourceConfig::Graph {
                tenant: "t".into(),
                client_id: "c".into(),
                credential: GraphCredential::Secret(SecretString::from("s")),
                graph_url: Some(format!("{sim_url}v1.0/")),
                login_url: Some(sim_url.to_string()),
            },
            settings: InstanceSettings::with_template(kalsync_core::Template::Prefix),
        })
        .await
        .expect("instance");
    store
        .create_target(NewTarget {
            company: company.id,
            name: "hook".into(),
            config: TargetConfig::Webhook {
                url: hook_url,
                signing_secret: SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                batch,
            },
        })
        .await
        .expect("target");
    let mut adding = tokio::task::JoinSet::new();
    for part in 0..8 {
        let store = store.clone();
        let emails: Vec<(usize, String)> = emails
            .iter()
            .enumerate()
            .skip(part)
            .step_by(8)
            .map(|(i, e)| (i, e.clone()))
            .collect();
        adding.spawn(async move {
            for (i, email) in emails {
                store
                    .add_user(NewUser {
                        instance: instance.id,
                        email: EmailAddress::parse(&email).expect("email"),
                        display_name: None,
                        extension: Extension::parse(&format!("{}", 100_000 + i)).ok(),
                    })
                    .await
                    .expect("user");
            }
        });
    }
    while adding.join_next().await.is_some() {}
    eprintln!(
        "set up {users} users ({top} with an absence at one instant) in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    // The nodes.
    let settings = |node: &str| {
        format!(
            "node = \"{node}\"\ndatabase_url = \"{database_url}\"\nmaster_key = \"{key}\"\n\
             [engine]\npoll_interval_secs = 86400\nautomatic_replies_secs = 86400\n\
             [outbound]\nallow = [\"127.0.0.0/8\"]\n"
        )
    };
    let began = Instant::now();
    let mut running: Vec<NodeProcess> = (1..=nodes)
        .map(|n| {
            let name = format!("scale-{n}");
            NodeProcess::start(&dir, &name, &settings(&name))
        })
        .collect();
    let http = reqwest::Client::new();
    eprintln!(
        "{nodes} nodes started; the absences begin in {:.0} s",
        start.duration_since(Timestamp::now()).as_secs_f64()
    );

    // First read: every mailbox read once.
    let read_count = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users WHERE last_sync_ms IS NOT NULL")
            .fetch_one(&db)
            .await
            .expect("count") as usize
    };
    let mut last_print = Instant::now();
    while read_count().await < users && Timestamp::now() < start {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if last_print.elapsed() > Duration::from_secs(15) {
            last_print = Instant::now();
            eprintln!(
                "  {} read after {:.0} s",
                read_count().await,
                began.elapsed().as_secs_f64()
            );
        }
    }
    let first_read = began.elapsed();
    let read = read_count().await;
    let mut shares = Vec::new();
    for n in &running {
        let held = n.metric(&http, "kalsync_users_held").await.unwrap_or(0);
        shares.push((n.name.clone(), held, n.rss_mib()));
    }

    // The top of the hour.
    let until_start =
        Duration::try_from(start.duration_since(Timestamp::now())).unwrap_or_default();
    let t0 = Instant::now() + until_start;
    tokio::time::sleep_until(t0.into()).await;
    let absent = |seen: &Seen| {
        seen.lock()
            .expect("lock")
            .values()
            .flat_map(|v| v.iter().filter(|(a, _, _)| *a).map(|(_, _, t)| *t))
            .collect::<Vec<Instant>>()
    };
    while absent(&seen).len() < top && t0.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut lateness: Vec<f64> = absent(&seen)
        .iter()
        .map(|a| a.saturating_duration_since(t0).as_secs_f64())
        .collect();
    lateness.sort_by(f64::total_cmp);
    let q = |p: f64| kalsync_testkit::quantile(&lateness, p);

    // A node killed (SIGKILL: its leases are never released); the others take its users.
    tokio::time::sleep_until((t0 + Duration::from_secs(20)).into()).await;
    let victim = running.pop().expect("a node");
    let victim_name = victim.name.clone();
    let victim_held = victim
        .metric(&http, "kalsync_users_held")
        .await
        .unwrap_or(0);
    let killed = Instant::now();
    drop(victim);
    let others_hold = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM leases l JOIN nodes n ON n.name = l.node \
             WHERE l.node <> $1 AND n.expires_ms > $2",
        )
        .bind(&victim_name)
        .bind(Timestamp::now().as_millisecond())
        .fetch_one(&db)
        .await
        .expect("leases") as usize
    };
    while others_hold().await < users && killed.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let takeover = killed.elapsed();
    let taken = others_hold().await;

    // The absences end five minutes after they began: each status once, also for the
    // killed node's users.
    let t1 = t0 + Duration::from_secs(300);
    tokio::time::sleep_until(t1.into()).await;
    let ended = |seen: &Seen| {
        seen.lock()
            .expect("lock")
            .values()
            .filter(|v| v.iter().any(|(a, _, _)| !*a))
            .count()
    };
    while ended(&seen) < top && t1.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ended_count = ended(&seen);
    let end_last = seen
        .lock()
        .expect("lock")
        .values()
        .flat_map(|v| v.iter().filter(|(a, _, _)| !*a).map(|(_, _, t)| *t))
        .max()
        .map_or(f64::NAN, |t| t.saturating_duration_since(t1).as_secs_f64());
    let (twice, resent, others) = {
        let seen = seen.lock().expect("lock");
        // Twice: two deliveries (two ids) of one transition. Sent again: one delivery
        // received more than once (a retry after a timeout; an idempotent PBX applies it
        // once).
        let mut twice = 0;
        let mut resent = 0;
        for v in seen.values() {
            for kind in [true, false] {
                let ids: Vec<&String> = v
                    .iter()
                    .filter(|(a, _, _)| *a == kind)
                    .map(|(_, id, _)| id)
                    .collect();
                let distinct: std::collections::HashSet<&&String> = ids.iter().collect();
                twice += distinct.len().saturating_sub(1);
                resent += ids.len() - distinct.len();
            }
        }
        let index: HashMap<&str, usize> = emails
            .iter()
            .enumerate()
            .map(|(i, e)| (e.as_str(), i))
            .collect();
        let others = seen
            .keys()
            .filter(|e| index.get(e.as_str()).is_none_or(|i| *i >= top))
            .count();
        (twice, resent, others)
    };
    drop(running);

    println!(
        "scale-out: {nodes} nodes (each its own process) on one PostgreSQL, {users} users, webhook on loopback{}",
        if batch { " in batches" } else { "" }
    );
    println!(
        "  first read     {read} of {users} mailboxes in {:.1} s ({:.0} a second)",
        first_read.as_secs_f64(),
        read as f64 / first_read.as_secs_f64()
    );
    for (name, held, rss) in &shares {
        println!("  {name}        holds {held} users, {rss:.0} MiB resident");
    }
    println!(
        "  top of hour    {} of {top} acknowledged; first {:.3} s, median {:.3} s, p99 {:.3} s, last {:.3} s",
        lateness.len(),
        q(0.0),
        q(0.5),
        q(0.99),
        lateness.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "  takeover       {victim_name} ({victim_held} users) killed; the others held all {taken} of {users} after {:.1} s (lease time 30 s)",
        takeover.as_secs_f64()
    );
    println!(
        "  end            {ended_count} of {top} ends delivered, the last {end_last:.2} s after; {twice} transitions delivered twice, {resent} deliveries received again (same id); {others} users without an absence sent anything"
    );

    db.close().await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin_pool)
        .await
        .expect("drop database");
    // The nodes' logs are kept when they were asked for.
    if std::env::var_os("NODE_LOG").is_some() {
        eprintln!("the nodes' logs: {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(dir);
    }
}
