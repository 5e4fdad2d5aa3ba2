//! Initial read of many mailboxes from the Graph simulator on loopback, at 0 ms and at
//! an injected latency: users per second, and the ratio to the bound the concurrency
//! limits set (requests needed ÷ allowed concurrency × latency).
//!
//! `cargo bench -p kalsync-graph --bench initial_read` (environment: `USERS`, default
//! 10000; `CONCURRENCY`, global concurrent requests to try, default `4,8,16`;
//! `LATENCIES_MS`, the simulator's response time, default `0,30`).

use std::time::{Duration, Instant};

use kalsync_core::{Window, Zone};
use kalsync_graph::{AppCredentials, ClientAuth, Endpoints, GraphClient, Limits, ReadOptions};
use kalsync_graph_sim::{Faults, SimConfig, Simulator, sample};
use secrecy::SecretString;

/// The allocator the `kalsync` binary uses, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use kalsync_testkit::env_or as env;

fn main() {
    let users: usize = env("USERS", 10_000);
    let concurrencies: Vec<usize> = env("CONCURRENCY", "4,8,16".to_owned())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let latencies: Vec<u64> = env("LATENCIES_MS", "0,30".to_owned())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let sim = Simulator::new(SimConfig::with_secret("bench-tenant", "bench-app", "bench-secret"));
        let stockholm = Zone::parse("Europe/Stockholm").expect("zone");
        let monday: jiff::civil::Date = "2026-11-23".parse().expect("date");
        let built = Instant::now();
        let people = sample::populate(&sim, users, monday, 2, 42, "bench.example").expect("population");
        eprintln!("populated {users} mailboxes in {:.1} s", built.elapsed().as_secs_f64());
        let (base, _handle) = kalsync_graph_sim::spawn(sim.clone()).await.expect("simulator");
        let window = Window { start: stockholm.parse_instant("2026-11-23").expect("t"), end: stockholm.parse_instant("2026-12-07").expect("t") };
        let ids: Vec<String> = people.into_iter().map(|p| p.id).collect();

        println!("initial read: {users} mailboxes × 14 days, $batch of 20 mailboxes, at most 4 requests per mailbox, 2 worker threads (simulator included)");
        println!("{:>8} {:>12} {:>9} {:>9} {:>10} {:>9} {:>9} {:>8}", "latency", "concurrency", "seconds", "users/s", "bookings", "requests", "bound s", "ratio");
        for &latency in &latencies {
            sim.set_faults(Faults { latency_ms: latency, ..Faults::default() });
            for &concurrency in &concurrencies {
                let client = GraphClient::new(
                    Endpoints::at(&base).expect("endpoints"),
                    AppCredentials { tenant: "bench-tenant".into(), client_id: "bench-app".into(), auth: ClientAuth::Secret(SecretString::from("bench-secret")) },
                    Limits { global: concurrency, timeout: Duration::from_secs(60), ..Limits::default() },
                    &kalsync_outbound::OutboundPolicy::with_loopback(),
                )
                .expect("client");
                client.check_credentials().await.expect("token");
                let before = client.counters().requests.load(std::sync::atomic::Ordering::Relaxed);
                let started = Instant::now();
                let results = client.calendar_views(&ids, window, ReadOptions { subject: true, location: false }, &stockholm).await;
                let seconds = started.elapsed().as_secs_f64();
                let requests = client.counters().requests.load(std::sync::atomic::Ordering::Relaxed) - before;
                let failed = results.iter().filter(|(_, r)| r.is_err()).count();
                assert_eq!(failed, 0, "every mailbox read");
                let bookings: usize = results.iter().filter_map(|(_, r)| r.as_ref().ok()).map(|r| r.bookings.len()).sum();
                let bound = requests as f64 / concurrency as f64 * latency as f64 / 1000.0;
                let ratio = if bound > 0.0 { format!("{:.2}×", seconds / bound) } else { "—".into() };
                println!("{:>6}ms {:>12} {:>9.2} {:>9.0} {:>10} {:>9} {:>9.2} {:>8}", latency, concurrency, seconds, users as f64 / seconds, bookings, requests, bound, ratio);
            }
        }
    });
}
