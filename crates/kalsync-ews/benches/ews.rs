//! EWS against the simulator on loopback, NTLM-signed connections: the initial read of
//! many mailboxes × 14 days (`FindItem` calendar views, then `GetItem` with the §3.1
//! shape) at 0 ms and an injected latency, in users per second; then every mailbox on a
//! streaming subscription (groups of 200 on one connection each) and changes made at a
//! steady rate: the latency from the change in Exchange to its notification read by
//! Kalsync, p50/p99.
//!
//! `cargo bench -p kalsync-ews --bench ews` (environment: `USERS`, default 10000;
//! `CONCURRENCY`, concurrent mailboxes, default 16; `LATENCIES_MS`, default `0,30`;
//! `CHANGES`, default 2000, made at `RATE` a second, default 100).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kalsync_core::{WindowsZone, Zone};
use kalsync_ews::request::{self, Shape};
use kalsync_ews::{Affinity, Auth, EwsClient, Settings};
use kalsync_ews_sim::{EwsConfig, EwsFaults, EwsSim};
use kalsync_graph_sim::{EventSpec, SimConfig, Simulator, sample};
use secrecy::SecretString;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let users: usize = env("USERS", 10_000);
    let concurrency: usize = env("CONCURRENCY", 16);
    let latencies: Vec<u64> = env("LATENCIES_MS", "0,30".to_owned())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let changes: usize = env("CHANGES", 2_000).min(users);
    let rate: f64 = env("RATE", 100.0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let calendars = Simulator::new(SimConfig::with_secret("t", "c", "s"));
        let stockholm = Zone::stockholm();
        let monday: jiff::civil::Date = "2026-11-23".parse().expect("date");
        let built = Instant::now();
        let people = sample::populate(&calendars, users, monday, 2, 42, "bench.example").expect("population");
        eprintln!("populated {users} mailboxes in {:.1} s", built.elapsed().as_secs_f64());
        let sim = EwsSim::new(calendars.clone(), EwsConfig::new("CORP\\svc-kalsync", "bench"));
        let (base, _handle) = kalsync_ews_sim::spawn(sim.clone()).await.expect("simulator");
        let mut settings = Settings::new(
            base.join("EWS/Exchange.asmx").expect("url"),
            Auth::Ntlm { username: "CORP\\svc-kalsync".into(), password: SecretString::from("bench") },
        );
        settings.zone = WindowsZone::from_zone(&stockholm);
        settings.timeout = Duration::from_secs(60);
        // The instance's own limit follows the concurrency measured.
        settings.max_concurrency = concurrency;
        settings.outbound = kalsync_outbound::OutboundPolicy::with_loopback();
        let client = EwsClient::new(settings).expect("client");
        let start = stockholm.parse_instant("2026-11-23").expect("t");
        let end = stockholm.parse_instant("2026-12-07").expect("t");
        let mailboxes: Vec<String> = people.iter().map(|p| p.upn.clone()).collect();

        println!("EWS initial read: {users} mailboxes × 14 days, FindItem + GetItem per mailbox, NTLM, {concurrency} mailboxes at a time, 2 worker threads (simulator included)");
        println!("{:>8} {:>9} {:>9} {:>10} {:>9}", "latency", "seconds", "users/s", "bookings", "requests");
        for &latency in &latencies {
            sim.set_faults(EwsFaults { latency_ms: latency, ..EwsFaults::default() });
            let before = sim.stats().requests;
            let started = Instant::now();
            let gate = Arc::new(tokio::sync::Semaphore::new(concurrency));
            let mut tasks = tokio::task::JoinSet::new();
            for mailbox in &mailboxes {
                let (client, gate, mailbox, zone) = (client.clone(), gate.clone(), mailbox.clone(), stockholm.clone());
                tasks.spawn(async move {
                    let _permit = gate.acquire().await;
                    client
                        .read_window(&mailbox, start, end, Shape { subject: true, location: false }, &zone)
                        .await
                        .map(|r| r.bookings.len())
                });
            }
            let mut bookings = 0;
            while let Some(done) = tasks.join_next().await {
                bookings += done.expect("task").expect("every mailbox read");
            }
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "{:>6}ms {:>9.2} {:>9.0} {:>10} {:>9}",
                latency,
                seconds,
                users as f64 / seconds,
                bookings,
                sim.stats().requests - before
            );
        }
        assert_eq!(sim.stats().body_requested, 0);

        // Streaming: every mailbox subscribed, one connection per group of 200.
        sim.set_faults(EwsFaults::default());
        let subscribed = Instant::now();
                let owner: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let gate = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut groups: Vec<(Affinity, Vec<String>)> = Vec::new();
        for chunk in mailboxes.chunks(200) {
            // The group's first Subscribe brings its back-end cookie; the rest follow
            // at once with it.
            let mut affinity = Affinity::new(&chunk[0]);
            let first = client.subscribe_streaming(&chunk[0], &mut affinity).await.expect("subscribe");
            owner.lock().expect("lock").insert(first.clone(), chunk[0].clone());
            let mut ids = vec![first];
            let mut tasks = tokio::task::JoinSet::new();
            for mailbox in &chunk[1..] {
                let (client, gate, mailbox, mut group) = (client.clone(), gate.clone(), mailbox.clone(), affinity.clone());
                tasks.spawn(async move {
                    let _permit = gate.acquire().await;
                    let id = client.subscribe_streaming(&mailbox, &mut group).await.expect("subscribe");
                    (id, mailbox)
                });
            }
            while let Some(done) = tasks.join_next().await {
                let (id, mailbox) = done.expect("task");
                owner.lock().expect("lock").insert(id.clone(), mailbox);
                ids.push(id);
            }
            groups.push((affinity, ids));
        }
        eprintln!("{users} streaming subscriptions in {:.1} s", subscribed.elapsed().as_secs_f64());
        let pending: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let latencies_ms: Arc<Mutex<Vec<f64>>> = Arc::default();
                for (affinity, ids) in groups {
            let (client, owner, pending, seen) = (client.clone(), owner.clone(), pending.clone(), latencies_ms.clone());
            tokio::spawn(async move {
                let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
                let ctx = client.context(&affinity.anchor);
                let mut stream = client
                    .stream(&request::get_streaming_events(&ctx, &refs, 30), &affinity)
                    .await
                    .expect("stream");
                while let Some(part) = stream.next().await {
                    let part = part.expect("part");
                    let now = Instant::now();
                    for n in part.notifications {
                        let mailbox = owner.lock().expect("lock").get(&n.subscription).cloned();
                        if let Some(at) = mailbox.and_then(|m| pending.lock().expect("lock").remove(&m)) {
                            seen.lock().expect("lock").push(now.duration_since(at).as_secs_f64() * 1000.0);
                        }
                    }
                }
            });
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let interval = Duration::from_secs_f64(1.0 / rate);
        let began = Instant::now();
        for (i, p) in people.iter().take(changes).enumerate() {
            tokio::time::sleep_until((began + interval * u32::try_from(i).unwrap_or(0)).into()).await;
            pending.lock().expect("lock").insert(p.upn.clone(), Instant::now());
            calendars
                .create_event(&p.id, EventSpec::new("LUN: Lunch", "2026-11-25T12:00:00+01:00", "2026-11-25T13:00:00+01:00"))
                .expect("event");
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut seen = latencies_ms.lock().expect("lock").clone();
        seen.sort_by(f64::total_cmp);
        println!(
            "EWS streaming: {users} subscriptions on {} connections, {changes} changes at {rate}/s: {} notified (0 ms latency), change → notification read p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            users.div_ceil(200),
            seen.len(),
            percentile(&seen, 0.5),
            percentile(&seen, 0.99),
            seen.last().copied().unwrap_or(f64::NAN)
        );
    });
}
