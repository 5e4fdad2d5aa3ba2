//! Top of the hour: many users, many absences starting at the same instant, a webhook
//! target on loopback. Reports the time until the last delivery is acknowledged and the
//! lateness of the first, median and p99 delivery.
//!
//! `cargo bench -p kalsync-server --bench top_of_hour` (environment: `USERS`, default
//! 100000; `ABSENCES`, default 30000; `DATABASE_URL`, default a fresh SQLite file;
//! `BATCH=true` for a webhook that takes statuses in batches).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};
use kalsync_core::{
    Absence, BookingId, EmailAddress, Extension, InstanceSettings, Mode, ReasonCode, Timeline, Zone,
};
use kalsync_engine::{Engine, EngineConfig, Source, SourceError};
use kalsync_store::{
    GraphCredential, NewInstance, NewTarget, NewUser, SecretBox, SourceConfig, Store, TargetConfig,
};
use kalsync_store_sql::{DatabaseUrl, SqlStore};
use secrecy::SecretString;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use kalsync_testkit::env_or as env;

fn main() {
    let users: usize = env("USERS", 100_000);
    let absences: usize = env("ABSENCES", 30_000).min(users);
    // BATCH=true: the webhook takes up to 500 statuses in one signed POST.
    let batch: bool = env("BATCH", false);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let acks: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let recorded = acks.clone();
        // Each status acknowledged counts once, whether it came alone or in a batch.
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: axum::body::Bytes| {
                let recorded = recorded.clone();
                async move {
                    // Counted as cheaply as it can be: the receiver is the PBX's work,
                    // not Kalsync's, and shares this machine's two cores.
                    let statuses = body
                        .windows(b"\"delivery_id\"".len())
                        .filter(|w| *w == b"\"delivery_id\"")
                        .count()
                        .max(1);
                    let now = Instant::now();
                    recorded.lock().expect("lock").extend(std::iter::repeat_n(now, statuses));
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let hook = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });

        let dir = std::env::temp_dir().join(format!("kalsync-top-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let url = DatabaseUrl::new(std::env::var("DATABASE_URL").unwrap_or_else(|_| format!("sqlite:{}", dir.join("bench.db").display())));
        let store: Arc<dyn Store> = Arc::new(SqlStore::connect(&url, SecretBox::ephemeral()).await.expect("store"));
        let setup = Instant::now();
        let company = store.create_company("Bench AB").await.expect("company");
        let instance = store
            .create_instance(NewInstance {
                company: company.id,
                name: "bench".into(),
                source: SourceConfig::Graph { tenant: "t".into(), client_id: "c".into(), credential: GraphCredential::Secret(SecretString::from("s")), graph_url: None, login_url: None },
                settings: InstanceSettings::default(),
            })
            .await
            .expect("instance");
        store
            .create_target(NewTarget { company: company.id, name: "hook".into(), config: TargetConfig::Webhook { url: hook, signing_secret: SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), batch } })
            .await
            .expect("target");
        let mut ids = Vec::with_capacity(users);
        for i in 0..users {
            let user = store
                .add_user(NewUser { instance: instance.id, email: EmailAddress::parse(&format!("user{i:06}@bench.example")).expect("e"), display_name: None, extension: Extension::parse(&format!("{}", 10_000 + i)).ok() })
                .await
                .expect("user");
            // Read a moment ago: the engine reads nobody at start.
            store.record_sync(user.id, Timestamp::now(), None).await.expect("sync");
            ids.push(user.id);
        }
        // The instant all absences begin: after the timelines are written and the engine
        // has started (about 20 µs a timeline and 40 µs a user to load, generously).
        let start = Timestamp::now() + SignedDuration::from_secs(10 + (absences / 2000) as i64 + (users / 10_000) as i64);
        let reason = ReasonCode::parse("meeting").expect("code");
        for (i, user) in ids.iter().take(absences).enumerate() {
            let timeline = Timeline {
                zone: Zone::stockholm(),
                absences: vec![Absence {
                    reason: reason.clone(),
                    mode: Mode::Divert,
                    start,
                    end: start + SignedDuration::from_hours(1),
                    returns_at: start + SignedDuration::from_hours(1),
                    bookings: vec![BookingId::parse(format!("b{i}")).expect("id")],
                    user_choice: false,
                    subject: None,
                    source: kalsync_core::Source::Booking,
                    open_ended: false,
                }],
            };
            store.save_timeline(*user, &timeline, Some(start)).await.expect("timeline");
        }
        eprintln!("set up {users} users and {absences} absences in {:.1} s", setup.elapsed().as_secs_f64());

        struct NoSource;
        #[async_trait::async_trait]
        impl Source for NoSource {
            async fn read(&self, _: &EmailAddress, _: kalsync_core::Window, _: bool) -> Result<kalsync_engine::SourceRead, SourceError> {
                Err(SourceError::Failed("the benchmark reads no mailbox".into()))
            }
        }
        let config = EngineConfig { node: "bench".into(), poll_interval: Duration::from_secs(86_400),max_users: users + 1, delivery_batch: env("DELIVERY_BATCH", EngineConfig::default().delivery_batch), delivery_concurrency: env("DELIVERY_CONCURRENCY", EngineConfig::default().delivery_concurrency), ..EngineConfig::default() };
        let engine = Engine::new(
            store.clone(),
            config,
            Arc::new(|_| Ok(Arc::new(NoSource) as Arc<dyn Source>)),
            kalsync_targets::factory(kalsync_outbound::OutboundPolicy::with_loopback(), None, None),
        );
        let stop = kalsync_engine::CancellationToken::new();
        let running = tokio::spawn(engine.clone().run(stop.clone(), Duration::from_secs(10)));
        let wait = Duration::try_from(start.duration_since(Timestamp::now())).unwrap_or(Duration::ZERO);
        eprintln!("engine started; the absences begin in {:.1} s", wait.as_secs_f64());
        tokio::time::sleep(wait).await;
        let t0 = Instant::now();
        while acks.lock().expect("lock").len() < absences && t0.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let acks = acks.lock().expect("lock").clone();
        stop.cancel();
        let _ = running.await;
        let mut lateness: Vec<f64> = acks.iter().map(|a| a.saturating_duration_since(t0).as_secs_f64()).collect();
        lateness.sort_by(f64::total_cmp);
        let q = |p: f64| kalsync_testkit::quantile(&lateness, p);
        println!("top of the hour: {users} users, {absences} absences at the same instant, webhook on loopback{}, {} ({})", if batch { " in batches" } else { "" }, store.backend(), url);
        println!("  acknowledged   {} of {absences}", lateness.len());
        println!("  last           {:.2} s after the transition", lateness.last().copied().unwrap_or(f64::NAN));
        println!("  lateness       first {:.3} s, median {:.3} s, p99 {:.3} s", q(0.0), q(0.5), q(0.99));
        let _ = std::fs::remove_dir_all(dir);
    });
}
