//! Footprint: 100,000 users with 14 days of bookings each, read through the engine's
//! own sync path (bookings stored, timelines built, schedule kept in memory). Reports
//! the process's resident memory (now and peak) and the database's size on disk, then
//! the same in a fresh process whose engine loads that database as a restarted service
//! would — the figure a running node settles at.
//!
//! `cargo bench -p kalsync-server --bench footprint` (environment: `USERS`, default
//! 100000; `DATABASE_URL`, default a fresh SQLite file).

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp, ToSpan};
use kalsync_core::{
    Booking, BookingId, BookingTime, EmailAddress, Extension, FreeBusy, InstanceSettings, Window,
};
use kalsync_engine::{Engine, EngineConfig, Source, SourceError, SourceRead};
use kalsync_store::{GraphCredential, NewInstance, NewUser, SecretBox, SourceConfig, Store};
use kalsync_store_sql::{DatabaseUrl, SqlStore};
use secrecy::SecretString;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A working fortnight like the demo's: a daily stand-up and lunch, a customer meeting
/// every other day, a private appointment — about 26 bookings a user.
struct Fortnight;

#[async_trait::async_trait]
impl Source for Fortnight {
    async fn read(
        &self,
        mailbox: &EmailAddress,
        window: Window,
        _: bool,
    ) -> Result<SourceRead, SourceError> {
        let tz = jiff::tz::TimeZone::get("Europe/Stockholm")
            .map_err(|e| SourceError::Failed(e.to_string()))?;
        let first = window.start.to_zoned(tz.clone()).date();
        let mut bookings = Vec::new();
        let mut add = |n: &str,
                       day: jiff::civil::Date,
                       from: (i8, i8),
                       to: (i8, i8),
                       subject: &str,
                       fb: FreeBusy| {
            let at = |(h, m): (i8, i8)| {
                day.at(h, m, 0, 0)
                    .to_zoned(tz.clone())
                    .map(|z| z.timestamp())
            };
            if let (Ok(start), Ok(end)) = (at(from), at(to)) {
                let mut b = Booking::new(
                    BookingId::parse(format!("{mailbox}/{day}/{n}")).expect("id"),
                    BookingTime::Timed { start, end },
                );
                b.free_busy = fb;
                b.subject = Some(subject.into());
                bookings.push(b);
            }
        };
        for d in 0..14 {
            let day = first
                .checked_add(d.days())
                .map_err(|e| SourceError::Failed(e.to_string()))?;
            if matches!(
                day.weekday(),
                jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday
            ) {
                continue;
            }
            add("standup", day, (9, 0), (9, 15), "Stand-up", FreeBusy::Busy);
            add("lunch", day, (12, 0), (13, 0), "LUN: Lunch", FreeBusy::Busy);
            if d % 2 == 0 {
                add(
                    "customer",
                    day,
                    (14, 0),
                    (15, 30),
                    "MOT: Kundmöte",
                    FreeBusy::Busy,
                );
            }
            if d == 3 {
                add(
                    "dentist",
                    day,
                    (16, 0),
                    (17, 0),
                    "Tandläkare",
                    FreeBusy::Oof,
                );
            }
        }
        Ok(SourceRead {
            bookings,
            ..SourceRead::default()
        })
    }
}

fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn disk(path: &std::path::Path) -> f64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
        .map(|m| m.len() as f64)
        .sum::<f64>()
        / 1_048_576.0
}

/// The key both processes seal and open the instance's secret with.
const KEY: &str = "Zm9vdHByaW50LWJlbmNobWFyay1rZXktMzItYnl0ZXM=";
/// Set in the second process: the database to load.
const RELOAD: &str = "FOOTPRINT_RELOAD_URL";

fn engine(store: Arc<dyn Store>, users: usize) -> Arc<Engine> {
    Engine::new(
        store,
        EngineConfig {
            node: "footprint".into(),
            max_users: users + 1,
            ..EngineConfig::default()
        },
        Arc::new(|_| Ok(Arc::new(Fortnight) as Arc<dyn Source>)),
        Arc::new(|_| Err("no targets in this benchmark".into())),
    )
}

/// The second process: a node starting on the database the first one wrote.
async fn reload(url: DatabaseUrl, users: usize) {
    let (baseline, _) = memory();
    let store: Arc<dyn Store> = Arc::new(
        SqlStore::connect(&url, SecretBox::from_base64(KEY).expect("key"))
            .await
            .expect("store"),
    );
    let node = engine(store, users);
    let load = Instant::now();
    node.catch_up(Timestamp::now() + SignedDuration::from_mins(1))
        .await
        .expect("load");
    let secs = load.elapsed().as_secs_f64();
    let (rss, peak) = memory();
    println!(
        "  restarted node loaded {users} users' timelines in {secs:.1} s; RSS {rss:.0} MiB (peak {peak:.0} MiB; {baseline:.0} MiB before loading)"
    );
}

fn main() {
    let users: usize = std::env::var("USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if let Ok(url) = std::env::var(RELOAD) {
        runtime.block_on(reload(DatabaseUrl::new(url), users));
        return;
    }
    runtime.block_on(async move {
        let dir = std::env::temp_dir().join(format!("kalsync-footprint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("footprint.db");
        let url_text =
            std::env::var("DATABASE_URL").unwrap_or_else(|_| format!("sqlite:{}", file.display()));
        let url = DatabaseUrl::new(url_text.clone());
        let sql = Arc::new(
            SqlStore::connect(&url, SecretBox::from_base64(KEY).expect("key"))
                .await
                .expect("store"),
        );
        let store: Arc<dyn Store> = sql.clone();
        let company = store.create_company("Footprint AB").await.expect("company");
        let instance = store
            .create_instance(NewInstance {
                company: company.id,
                name: "M365".into(),
                source: SourceConfig::Graph {
                    tenant: "t".into(),
                    client_id: "c".into(),
                    credential: GraphCredential::Secret(SecretString::from("s")),
                    graph_url: None,
                    login_url: None,
                },
                settings: InstanceSettings::default(),
            })
            .await
            .expect("instance");
        let (baseline, _) = memory();
        let setup = Instant::now();
        let mut ids = Vec::with_capacity(users);
        for i in 0..users {
            let user = store
                .add_user(NewUser {
                    instance: instance.id,
                    email: EmailAddress::parse(&format!("user{i:06}@footprint.example"))
                        .expect("e"),
                    display_name: Some(format!("User {i}")),
                    extension: Extension::parse(&format!("{}", 100_000 + i)).ok(),
                })
                .await
                .expect("user");
            ids.push(user.id);
        }
        eprintln!(
            "{users} users added in {:.1} s",
            setup.elapsed().as_secs_f64()
        );
        let first = engine(store.clone(), users);
        let now = Timestamp::now();
        first.renew_leases(now).await.expect("users");
        let read = Instant::now();
        let gate = Arc::new(tokio::sync::Semaphore::new(16));
        let mut tasks = tokio::task::JoinSet::new();
        for id in ids {
            let engine = first.clone();
            let permit = gate.clone().acquire_owned().await.expect("gate");
            tasks.spawn(async move {
                let _permit = permit;
                engine.sync_user(id, now).await.map(|_| ())
            });
            while let Some(done) = tasks.try_join_next() {
                done.expect("task").expect("sync");
            }
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("task").expect("sync");
        }
        let read_secs = read.elapsed().as_secs_f64();
        let (rss, peak) = memory();
        println!(
            "footprint: {users} users × 14 days (about 26 bookings a user), {}",
            store.backend()
        );
        println!("  at start       RSS {baseline:.0} MiB (the store open, no users)");
        println!(
            "  first read     {read_secs:.1} s ({:.0} users/s) through the engine's sync",
            users as f64 / read_secs
        );
        println!("  after reading  RSS {rss:.0} MiB (peak {peak:.0} MiB)");
        if std::env::var("DATABASE_URL").is_err() {
            println!(
                "  database       {:.0} MiB on disk with its WAL",
                disk(&file)
            );
            sql.execute_for_tests("PRAGMA wal_checkpoint(TRUNCATE)")
                .await
                .expect("checkpoint");
            println!("  checkpointed   {:.0} MiB on disk", disk(&file));
        }
        drop(first);
        drop(store);
        drop(sql);
        tokio::time::sleep(Duration::from_secs(1)).await;
        // As after a restart: a new process loads users and timelines from the store.
        let status = std::process::Command::new(std::env::current_exe().expect("exe"))
            .env(RELOAD, &url_text)
            .env("USERS", users.to_string())
            .status()
            .expect("second process");
        assert!(status.success(), "the restarted node failed");
        let _ = std::fs::remove_dir_all(dir);
    });
}
