//! Change to PBX: the Graph simulator (0 ms latency) changes bookings at a steady rate,
//! each change reaching `kalsync serve` as a Graph change notification; the service reads
//! the mailbox, recomputes the timeline and delivers the new status to a webhook on
//! loopback. Reports, per change, the time from the change in the simulator to the
//! webhook's receipt (p50/p90/p99/max) and how many changes never arrived.
//!
//! `cargo bench -p kalsync-server --bench change_to_pbx` (environment: `RATE`, default
//! 500 a second; `DURATION_SECS`, default 60; `USERS`, default 1000; `RUNS`, default 5,
//! each with a fresh service (and SQLite file), then the spread of their p99; `DATABASE_URL`,
//! default a fresh SQLite file). The debounce is 0 here: the figure is the service's own
//! work, not a wait it was asked to make. `BENCH_LOG` (a `RUST_LOG` filter, e.g.
//! `kalsync_engine::deliver=debug`) writes the service's log to stderr, each line with its
//! time since the start, to set beside the late changes a run lists.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use kalsync_graph_sim::{EventSpec, SimConfig, Simulator, UserSpec};
use kalsync_server::settings::{CompanyDecl, InstanceDecl, SourceDecl, TargetDecl, UserDecl};
use kalsync_server::{Service, Settings};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use kalsync_testkit::env_or as env;

/// What the webhook saw: whose status, absent or not, when.
type Seen = Arc<Mutex<Vec<(String, bool, Instant)>>>;

fn main() {
    let rate: u64 = env("RATE", 500);
    let seconds: u64 = env("DURATION_SECS", 60);
    let users: usize = env("USERS", 1000);
    let runs: usize = env("RUNS", 5).max(1);
    if let Ok(filter) = std::env::var("BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_timer(tracing_subscriber::fmt::time::uptime())
            .with_writer(std::io::stderr)
            .init();
    }
    let mut p99s = Vec::with_capacity(runs);
    for run in 1..=runs {
        // A fresh runtime, service and database each run: nothing carries over.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        println!("run {run} of {runs}");
        p99s.push(runtime.block_on(bench(rate, seconds, users, run)));
    }
    let mut sorted = p99s.clone();
    sorted.sort_by(f64::total_cmp);
    let shown: Vec<String> = p99s.iter().map(|p| format!("{p:.1}")).collect();
    println!(
        "p99 over {runs} runs: {} ms (min {:.1}, median {:.1}, max {:.1}; spread {:.1} ms); every run within 50 ms: {}",
        shown.join(", "),
        sorted[0],
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1],
        sorted[sorted.len() - 1] - sorted[0],
        if sorted[sorted.len() - 1] <= 50.0 {
            "yes"
        } else {
            "no"
        }
    );
}

/// One run; returns its p99 in milliseconds.
async fn bench(rate: u64, seconds: u64, users: usize, run: usize) -> f64 {
    let seen: Seen = Arc::default();
    let recorded = seen.clone();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let recorded = recorded.clone();
            async move {
                let at = Instant::now();
                let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
                    return StatusCode::BAD_REQUEST;
                };
                let email = v["data"]["user"]["email"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let absent = !v["data"]["absence"].is_null();
                recorded.lock().expect("lock").push((email, absent, at));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let hook_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook_url = format!("http://{}/hook", hook_listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(hook_listener, hook).await });

    let sim = Simulator::new(SimConfig::with_secret("t", "c", "s"));
    let emails: Vec<String> = (0..users)
        .map(|i| format!("user{i:05}@bench.example"))
        .collect();
    for email in &emails {
        sim.add_user(UserSpec {
            upn: email.clone(),
            id: None,
            display_name: None,
            time_zone: "W. Europe Standard Time".into(),
            working_hours: None,
        })
        .expect("user");
    }
    let (sim_url, _sim) = kalsync_graph_sim::spawn(sim.clone()).await.expect("sim");

    let dir = std::env::temp_dir().join(format!("kalsync-change-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/", listener.local_addr().expect("addr"));
    let table: toml::Table = toml::from_str("template = \"prefix\"").expect("settings");
    let mut settings = Settings {
        database_url: std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| format!("sqlite:{}", dir.join("k.db").display())),
        master_key_file: dir.join("k.key"),
        public_url: Some(url::Url::parse(&base).expect("url")),
        companies: vec![CompanyDecl {
            name: "Bench AB".into(),
            targets: vec![TargetDecl::Webhook {
                name: "hook".into(),
                url: hook_url,
                signing_secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned().into(),
                batch: false,
            }],
            instances: vec![InstanceDecl {
                name: "M365".into(),
                source: SourceDecl::Graph {
                    tenant: "t".into(),
                    client_id: "c".into(),
                    client_secret: "s".to_owned().into(),
                    graph_url: Some(format!("{sim_url}v1.0/")),
                    login_url: Some(sim_url.to_string()),
                },
                settings: Some(table),
                users: emails
                    .iter()
                    .enumerate()
                    .map(|(i, e)| UserDecl::Full {
                        email: e.clone(),
                        name: None,
                        extension: Some(format!("{}", 10_000 + i)),
                    })
                    .collect(),
                directory: None,
            }],
        }],
        // The simulators listen on loopback.
        outbound: kalsync_server::settings::OutboundSettings::loopback(),
        ..Settings::default()
    };
    settings.engine.poll_interval_secs = 3600;
    settings.engine.debounce_ms = 0;
    let service = Service::start(settings).await.expect("service");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(service.serve(listener, async move {
        let _ = stopped.await;
    }));

    // How late a 10 ms timer fires on the service's runtime: a stall of the runtime (a
    // blocking call, the cores taken) shows here, a wait inside the service does not.
    let stalls: Arc<Mutex<Vec<(Instant, f64)>>> = Arc::default();
    let watch = {
        let stalls = stalls.clone();
        tokio::spawn(async move {
            loop {
                let asked = Instant::now();
                tokio::time::sleep(Duration::from_millis(10)).await;
                let late = asked.elapsed().as_secs_f64() * 1000.0 - 10.0;
                if late > 20.0 {
                    stalls.lock().expect("lock").push((asked, late));
                }
            }
        })
    };
    let ready = Instant::now();
    while sim.subscriptions().len() < users && ready.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{} of {users} users subscribed in {:.1} s",
        sim.subscriptions().len(),
        ready.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    seen.lock().expect("lock").clear();

    // Each change flips a user between a lunch in force now and nothing.
    let total = (rate * seconds) as usize;
    let mut sent: Vec<(usize, bool, Instant)> = Vec::with_capacity(total);
    let mut events: Vec<Option<String>> = vec![None; users];
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let began = Instant::now();
    for k in 0..total {
        ticker.tick().await;
        let u = k % users;
        let at = Instant::now();
        match events[u].take() {
            Some(id) => {
                sim.delete_event(&emails[u], &id).expect("delete");
                sent.push((u, false, at));
            }
            None => {
                let now = jiff::Timestamp::now();
                let id = sim
                    .create_event(
                        &emails[u],
                        EventSpec::new(
                            "LUN: Lunch",
                            now - jiff::SignedDuration::from_mins(1),
                            now + jiff::SignedDuration::from_mins(59),
                        ),
                    )
                    .expect("create");
                events[u] = Some(id);
                sent.push((u, true, at));
            }
        }
    }
    let driven = began.elapsed();
    let settle = Instant::now();
    while seen.lock().expect("lock").len() < total && settle.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = seen.lock().expect("lock").clone();
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(20), running).await;

    // Pair each user's changes with what the webhook saw for that user, in order.
    let index: HashMap<&str, usize> = emails
        .iter()
        .enumerate()
        .map(|(i, e)| (e.as_str(), i))
        .collect();
    let mut received: Vec<Vec<(bool, Instant)>> = vec![Vec::new(); users];
    for (email, absent, at) in &seen {
        if let Some(&u) = index.get(email.as_str()) {
            received[u].push((*absent, *at));
        }
    }
    let mut cursor = vec![0usize; users];
    let mut latencies = Vec::with_capacity(total);
    let mut late: Vec<(f64, f64)> = Vec::new();
    let mut lost = 0usize;
    for (u, absent, at) in &sent {
        let r = &received[*u];
        let c = &mut cursor[*u];
        match r.get(*c) {
            Some((state, got)) if state == absent => {
                let ms = got.saturating_duration_since(*at).as_secs_f64() * 1000.0;
                latencies.push(ms);
                if ms > LATE_MS {
                    late.push((at.duration_since(began).as_secs_f64(), ms));
                }
                *c += 1;
            }
            _ => lost += 1,
        }
    }
    watch.abort();
    latencies.sort_by(f64::total_cmp);
    let q = |p: f64| kalsync_testkit::quantile(&latencies, p);
    println!(
        "change to PBX: {total} changes at {rate}/s over {:.1} s, {users} users, Graph simulator at 0 ms, webhook on loopback, {}",
        driven.as_secs_f64(),
        if std::env::var("DATABASE_URL").is_ok() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    println!(
        "  delivered      {} of {total} ({lost} lost, {} deliveries seen)",
        latencies.len(),
        seen.len()
    );
    println!(
        "  latency        p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        q(0.5),
        q(0.9),
        q(0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    print_late(&late);
    let stalls: Vec<(Instant, f64)> = stalls
        .lock()
        .expect("lock")
        .iter()
        .filter(|(at, _)| *at >= began)
        .copied()
        .collect();
    if let Some((at, ms)) = stalls.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
        println!(
            "  runtime        a 10 ms timer late by more than 20 ms {} times; at worst {ms:.0} ms, {:.2} s after the changes began",
            stalls.len(),
            at.saturating_duration_since(began).as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir_all(dir);
    q(0.99)
}

/// Changes slower than this are listed by when in the run they were made.
const LATE_MS: f64 = 50.0;

/// The changes over [`LATE_MS`] in runs of consecutive seconds-tenths: when in the run
/// they were made, how many, the slowest — a stall shows as one run, noise as many.
fn print_late(late: &[(f64, f64)]) {
    let mut spans: Vec<(f64, f64, usize, f64)> = Vec::new();
    for &(at, ms) in late {
        match spans.last_mut() {
            Some((_, end, n, worst)) if at - *end < 0.2 => {
                *end = at;
                *n += 1;
                *worst = worst.max(ms);
            }
            _ => spans.push((at, at, 1, ms)),
        }
    }
    for (from, to, n, worst) in spans.iter().filter(|s| s.2 >= 5) {
        println!(
            "  late           {n} changes over {LATE_MS:.0} ms made {from:.2}-{to:.2} s after the start, slowest {worst:.0} ms"
        );
    }
}
