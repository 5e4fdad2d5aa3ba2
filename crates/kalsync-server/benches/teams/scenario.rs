//! Teams at the top of the hour, shared by the scale test and the benchmark: `users`
//! people of one Microsoft 365 instance (the Graph simulator, `latency_ms` a request)
//! each with an absence starting at the same instant and a `teams` target; the engine
//! delivers, the Teams target writes the status messages. Measures the time until the
//! last message is shown and the most presence requests Graph saw in any 30 seconds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use kalsync_core::{
    Absence, BookingId, EmailAddress, Extension, InstanceSettings, Lang, Mode, ReasonCode,
    Timeline, Zone,
};
use kalsync_engine::{Engine, EngineConfig, Source, SourceError};
use kalsync_graph_sim::{Faults, SimConfig, Simulator, UserSpec};
use kalsync_store::{
    GraphCredential, NewInstance, NewTarget, NewUser, SecretBox, SourceConfig, Store, TargetConfig,
};
use kalsync_store_sql::{DatabaseUrl, SqlStore};
use secrecy::SecretString;

/// What a top of the hour came to.
#[derive(Debug)]
pub(crate) struct TopOfTheHour {
    /// People with an absence.
    pub(crate) users: usize,
    /// Messages Teams showed at the end.
    pub(crate) shown: usize,
    /// From the instant the absences began to the last message shown.
    pub(crate) last: Duration,
    /// The most presence requests Graph saw in any 30 seconds.
    pub(crate) peak_per_30s: u32,
    /// Presence requests in all.
    pub(crate) requests: u64,
    /// `setPresence` requests Graph refused for an undocumented pair.
    pub(crate) refused_pairs: u64,
}

/// A Graph simulator (tenant `t`, client `c`, secret `s`) with these mailboxes,
/// answering after `latency_ms`.
pub(crate) fn simulated(mails: &[String], latency_ms: u64) -> Simulator {
    let sim = Simulator::new(SimConfig::with_secret("t", "c", "s"));
    for mail in mails {
        sim.add_user(UserSpec {
            upn: mail.clone(),
            id: None,
            display_name: None,
            time_zone: "W. Europe Standard Time".into(),
            working_hours: None,
        })
        .expect("user");
    }
    sim.set_faults(Faults {
        latency_ms,
        ..Faults::default()
    });
    sim
}

struct NoSource;

#[async_trait::async_trait]
impl Source for NoSource {
    async fn read(
        &self,
        _: &EmailAddress,
        _: kalsync_core::Window,
        _: bool,
    ) -> Result<kalsync_engine::SourceRead, SourceError> {
        Err(SourceError::Failed("the scenario reads no mailbox".into()))
    }
}

/// Runs it: `users` people, Graph answering after `latency_ms`, the store at
/// `database_url` (a fresh SQLite file when none), giving up after `limit`.
pub(crate) async fn top_of_the_hour(
    users: usize,
    latency_ms: u64,
    database_url: Option<String>,
    limit: Duration,
) -> TopOfTheHour {
    let mails: Vec<String> = (0..users)
        .map(|i| format!("user{i:05}@teams.example"))
        .collect();
    let sim = simulated(&mails, latency_ms);
    let (sim_url, _graph) = kalsync_graph_sim::spawn(sim.clone()).await.expect("sim");

    let dir = std::env::temp_dir().join(format!(
        "kalsync-teams-top-{}-{}",
        std::process::id(),
        Timestamp::now().as_millisecond()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let url = DatabaseUrl::new(
        database_url.unwrap_or_else(|| format!("sqlite:{}", dir.join("teams.db").display())),
    );
    let store: Arc<dyn Store> = Arc::new(
        SqlStore::connect(&url, SecretBox::ephemeral())
            .await
            .expect("store"),
    );
    let company = store
        .create_company(&format!("Teams AB {}", Timestamp::now().as_millisecond()))
        .await
        .expect("company");
    let instance = store
        .create_instance(NewInstance {
            company: company.id,
            name: "m365".into(),
            source: SourceConfig::Graph {
                tenant: "t".into(),
                client_id: "c".into(),
                credential: GraphCredential::Secret(SecretString::from("s")),
                graph_url: Some(format!("{sim_url}v1.0/")),
                login_url: Some(sim_url.to_string()),
            },
            settings: InstanceSettings::default(),
        })
        .await
        .expect("instance");
    store
        .create_target(NewTarget {
            company: company.id,
            name: "teams".into(),
            config: TargetConfig::Teams {
                presence: false,
                language: Lang::Sv,
            },
        })
        .await
        .expect("target");
    let mut ids = Vec::with_capacity(users);
    for (i, mail) in mails.iter().enumerate() {
        let user = store
            .add_user(NewUser {
                instance: instance.id,
                email: EmailAddress::parse(mail).expect("mail"),
                display_name: None,
                extension: Extension::parse(&format!("{}", 10_000 + i)).ok(),
            })
            .await
            .expect("user");
        store
            .record_sync(user.id, Timestamp::now(), None)
            .await
            .expect("sync");
        ids.push(user.id);
    }
    let start = Timestamp::now() + SignedDuration::from_secs(5 + (users / 2000) as i64);
    let reason = ReasonCode::parse("lunch").expect("code");
    for (i, user) in ids.iter().enumerate() {
        let timeline = Timeline {
            zone: Zone::stockholm(),
            absences: vec![Absence {
                reason: reason.clone(),
                mode: Mode::Info,
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
        store
            .save_timeline(*user, &timeline, Some(start))
            .await
            .expect("timeline");
    }

    let outbound = kalsync_outbound::OutboundPolicy::with_loopback();
    let connections = kalsync_sources::Connections::new(outbound.clone());
    let teams = kalsync_teams::Teams::new(
        store.clone(),
        connections,
        kalsync_teams::limiter::GRAPH_BUDGET,
    );
    let engine = Engine::new(
        store.clone(),
        EngineConfig {
            node: "teams".into(),
            poll_interval: Duration::from_secs(86_400),
            max_users: users + 1,
            delivery_concurrency: std::env::var("DELIVERY_CONCURRENCY")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(64),
            ..EngineConfig::default()
        },
        Arc::new(|_| Ok(Arc::new(NoSource) as Arc<dyn Source>)),
        kalsync_targets::factory(outbound, None, Some(teams)),
    );
    let stop = kalsync_engine::CancellationToken::new();
    let running = tokio::spawn(engine.run(stop.clone(), Duration::from_secs(10)));
    let wait = Duration::try_from(start.duration_since(Timestamp::now())).unwrap_or_default();
    tokio::time::sleep(wait).await;
    let t0 = Instant::now();
    let mut shown = 0;
    while t0.elapsed() < limit {
        shown = sim.status_messages_shown();
        if shown >= users {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let last = t0.elapsed();
    stop.cancel();
    let _ = running.await;
    let _ = std::fs::remove_dir_all(dir);
    TopOfTheHour {
        users,
        shown,
        last,
        peak_per_30s: sim.presence_peak(),
        requests: sim.presence_requests(),
        refused_pairs: sim.presence_refused_pairs(),
    }
}
