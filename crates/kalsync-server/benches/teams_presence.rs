//! Teams Presence at scale, on the Graph simulator answering after 30 ms:
//! - the top of the hour: `USERS` people (default 10000) whose absences begin at once get
//!   their Teams status messages; prints the time until the last is shown and the most
//!   presence requests Graph saw in any 30 seconds (its limit: 1,500);
//! - Teams → PBX: `CALLS` people (default 1000) start a Teams call at random moments
//!   over a minute, polled every 30 s; prints the lag until the PBX shows them busy
//!   (p50, p99, max).
//!
//! `cargo bench -p kalsync-server --bench teams_presence`

#[path = "teams/scenario.rs"]
mod scenario;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kalsync_server::settings::{
    CompanyDecl, InstanceDecl, OutboundSettings, SourceDecl, TargetDecl, UserDecl,
};
use rand::Rng as _;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use kalsync_testkit::env_or as env;

const LATENCY_MS: u64 = 30;

fn main() {
    let users: usize = env("USERS", 10_000);
    let calls: usize = env("CALLS", 1_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let top = scenario::top_of_the_hour(
            users,
            LATENCY_MS,
            std::env::var("DATABASE_URL").ok(),
            Duration::from_secs(300),
        )
        .await;
        println!("Teams at the top of the hour: {users} people, Graph at {LATENCY_MS} ms");
        println!("  messages shown   {} of {}", top.shown, top.users);
        println!(
            "  last shown       {:.1} s after the absences began",
            top.last.as_secs_f64()
        );
        println!(
            "  presence requests {} in all, at most {} in any 30 s (limit 1500)",
            top.requests, top.peak_per_30s
        );
        println!("  undocumented pairs sent: {}", top.refused_pairs);

        let lag = teams_to_pbx(calls).await;
        let q = |p: f64| kalsync_testkit::quantile(&lag, p);
        println!("Teams → PBX: {calls} Teams calls over a minute, polled every 30 s");
        println!("  shown on the PBX {} of {calls}", lag.len());
        println!(
            "  lag              p50 {:.1} s, p99 {:.1} s, max {:.1} s",
            q(0.5),
            q(0.99),
            lag.last().copied().unwrap_or(f64::NAN)
        );
    });
}

/// Starts `calls` Teams calls at random moments over a minute; the sorted lags (s)
/// until the PBX showed each.
async fn teams_to_pbx(calls: usize) -> Vec<f64> {
    let mails: Vec<String> = (0..calls)
        .map(|i| format!("caller{i:04}@teams.example"))
        .collect();
    let sim = scenario::simulated(&mails, LATENCY_MS);
    let (sim_url, _graph) = kalsync_graph_sim::spawn(sim.clone()).await.expect("sim");
    let dir = std::env::temp_dir().join(format!("kalsync-teams-calls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut settings = kalsync_server::Settings {
        database_url: format!("sqlite:{}", dir.join("calls.db").display()),
        master_key_file: dir.join("key"),
        companies: vec![CompanyDecl {
            name: "Calls AB".into(),
            targets: vec![TargetDecl::Simulator { name: "pbx".into() }],
            instances: vec![InstanceDecl {
                name: "m365".into(),
                source: SourceDecl::Graph {
                    tenant: "t".into(),
                    client_id: "c".into(),
                    client_secret: "s".to_owned().into(),
                    graph_url: Some(format!("{sim_url}v1.0/")),
                    login_url: Some(sim_url.to_string()),
                },
                settings: Some(
                    toml::from_str("[teams]\nread = true\npoll_seconds = 30\n").expect("rules"),
                ),
                users: mails
                    .iter()
                    .enumerate()
                    .map(|(i, m)| UserDecl::Full {
                        email: m.clone(),
                        name: None,
                        extension: Some(format!("{}", 2000 + i)),
                    })
                    .collect(),
                directory: None,
            }],
        }],
        outbound: OutboundSettings::loopback(),
        ..kalsync_server::Settings::default()
    };
    settings.engine.poll_interval_secs = 3600;
    settings.engine.debounce_ms = 0;
    settings.log.level = "warn".into();
    let service = kalsync_server::Service::start(settings)
        .await
        .expect("service");
    let pbx = service.pbx.clone().expect("pbx");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let stop = kalsync_engine::CancellationToken::new();
    let stopped = stop.clone();
    let serving = tokio::spawn(service.serve(listener, async move { stopped.cancelled().await }));
    // Let the first rounds read everybody (offline) before the calls.
    tokio::time::sleep(Duration::from_secs(35)).await;
    let t0 = Instant::now();
    let mut at: Vec<(Duration, usize)> = (0..calls)
        .map(|i| {
            (
                Duration::from_millis(rand::rng().random_range(0..60_000)),
                i,
            )
        })
        .collect();
    at.sort();
    let mut started: HashMap<String, Instant> = HashMap::new();
    let mut shown: HashMap<String, f64> = HashMap::new();
    let mut next = 0;
    while shown.len() < calls && t0.elapsed() < Duration::from_secs(180) {
        while next < at.len() && at[next].0 <= t0.elapsed() {
            let mail = &mails[at[next].1];
            sim.set_client_presence(mail, Some(("Busy", "InACall")))
                .expect("call");
            started.insert(mail.clone(), Instant::now());
            next += 1;
        }
        for (mail, r) in pbx.current() {
            if r.status
                .absence
                .as_ref()
                .is_some_and(|a| a.reason == "busy")
                && !shown.contains_key(&mail)
            {
                if let Some(s) = started.get(&mail) {
                    shown.insert(mail, s.elapsed().as_secs_f64());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    let _ = serving.await;
    let _ = std::fs::remove_dir_all(dir);
    let mut lag: Vec<f64> = shown.into_values().collect();
    lag.sort_by(f64::total_cmp);
    lag
}
