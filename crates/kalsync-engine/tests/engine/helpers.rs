//! An in-memory source, a recording target and a store with one company and one user.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use kalsync_core::{Booking, EmailAddress, Extension, InstanceSettings, Template, Window};
use kalsync_engine::{
    DeliveryError, Engine, EngineConfig, Envelope, Source, SourceError, SourceRead, StatusUpdate,
    Target,
};
use kalsync_store::{
    Delivery, GraphCredential, NewInstance, NewTarget, NewUser, SecretBox, SourceConfig, Store,
    TargetConfig, User,
};
use kalsync_store_sql::{DatabaseUrl, SqlStore};
use secrecy::SecretString;

/// When a test's engine first takes its users: the tests' clock starts here, whatever
/// the machine's date.
pub(crate) const START: &str = "2026-11-24 00:00";

pub(crate) use kalsync_testkit::{at, booking};

/// Calendars in memory; a read can be made to fail.
#[derive(Default)]
pub(crate) struct Calendars {
    pub(crate) bookings: Mutex<HashMap<String, Vec<Booking>>>,
    pub(crate) fail_next: Mutex<Option<SourceError>>,
    pub(crate) reads: std::sync::atomic::AtomicU64,
}

#[async_trait]
impl Source for Calendars {
    async fn read(
        &self,
        mailbox: &EmailAddress,
        _window: Window,
        subjects: bool,
    ) -> Result<SourceRead, SourceError> {
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(e) = self.fail_next.lock().expect("lock").take() {
            return Err(e);
        }
        let mut bookings = self
            .bookings
            .lock()
            .expect("lock")
            .get(mailbox.as_str())
            .cloned()
            .unwrap_or_default();
        if !subjects {
            for b in &mut bookings {
                b.subject = None;
            }
        }
        Ok(SourceRead {
            bookings,
            ..SourceRead::default()
        })
    }
}

/// A PBX that records what it got, applies each delivery id once, and can be told to
/// fail.
#[derive(Default)]
pub(crate) struct RecordingPbx {
    pub(crate) received: Mutex<Vec<(Envelope, StatusUpdate)>>,
    pub(crate) times: Mutex<Vec<Timestamp>>,
    pub(crate) failures: Mutex<Vec<DeliveryError>>,
    pub(crate) attempts: std::sync::atomic::AtomicU64,
    /// Statuses it takes in one request (0: one at a time).
    pub(crate) batch: std::sync::atomic::AtomicUsize,
    /// The size of each batch it was sent.
    pub(crate) batches: Mutex<Vec<usize>>,
}

impl RecordingPbx {
    pub(crate) fn statuses(&self) -> Vec<Option<String>> {
        self.received
            .lock()
            .expect("lock")
            .iter()
            .map(|(_, s)| s.absence.as_ref().map(|a| a.message_sv.clone()))
            .collect()
    }
}

#[async_trait]
impl Target for RecordingPbx {
    async fn deliver(
        &self,
        delivery: &Envelope,
        status: &StatusUpdate,
    ) -> Result<(), DeliveryError> {
        self.attempts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(e) = self.failures.lock().expect("lock").pop() {
            return Err(e);
        }
        self.take(delivery, status);
        Ok(())
    }

    fn batch_size(&self) -> usize {
        self.batch.load(std::sync::atomic::Ordering::Relaxed).max(1)
    }

    async fn deliver_batch(&self, items: &[(Envelope, StatusUpdate)]) -> Result<(), DeliveryError> {
        self.attempts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.batches.lock().expect("lock").push(items.len());
        if let Some(e) = self.failures.lock().expect("lock").pop() {
            return Err(e);
        }
        for (delivery, status) in items {
            self.take(delivery, status);
        }
        Ok(())
    }
}

impl RecordingPbx {
    /// Applies a delivery once (an idempotent PBX).
    fn take(&self, delivery: &Envelope, status: &StatusUpdate) {
        let mut received = self.received.lock().expect("lock");
        if !received.iter().any(|(d, _)| d.id == delivery.id) {
            received.push((*delivery, status.clone()));
            self.times.lock().expect("lock").push(Timestamp::now());
        }
    }
}

pub(crate) struct World {
    pub(crate) store: Arc<SqlStore>,
    pub(crate) calendars: Arc<Calendars>,
    pub(crate) pbx: Arc<RecordingPbx>,
    pub(crate) anna: User,
    pub(crate) target: kalsync_store::Target,
}

pub(crate) async fn world(template: Template) -> World {
    let dir = std::env::temp_dir().join(format!("kalsync-engine-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let url = DatabaseUrl::new(format!("sqlite:{}", dir.join("k.db").display()));
    let secrets = SecretBox::ephemeral();
    let store = Arc::new(
        SqlStore::connect(&url, secrets.clone())
            .await
            .expect("store"),
    );
    let company = store.create_company("Acme").await.expect("company");
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
            settings: InstanceSettings::with_template(template),
        })
        .await
        .expect("instance");
    let anna = store
        .add_user(NewUser {
            instance: instance.id,
            email: EmailAddress::parse("anna@acme.example").expect("e"),
            display_name: Some("Anna".into()),
            extension: Some(Extension::parse("201").expect("x")),
        })
        .await
        .expect("user");
    let target = store
        .create_target(NewTarget {
            company: company.id,
            name: "pbx".into(),
            config: TargetConfig::Simulator,
        })
        .await
        .expect("target");
    World {
        store,
        calendars: Arc::default(),
        pbx: Arc::default(),
        anna,
        target,
    }
}

impl World {
    /// An engine that has read Anna's calendar at `when`.
    pub(crate) async fn engine_after_read(&self, when: &str) -> Arc<Engine> {
        let engine = self.engine().await;
        engine
            .sync_user(self.anna.id, at(when))
            .await
            .expect("sync");
        engine
    }

    /// An engine that took its users at the tests' [`START`].
    pub(crate) async fn engine(&self) -> Arc<Engine> {
        self.engine_at(at(START)).await
    }

    /// An engine that took its users at `now`.
    pub(crate) async fn engine_at(&self, now: Timestamp) -> Arc<Engine> {
        self.engine_with(now, Duration::ZERO).await
    }

    /// An engine that took its users at `now` and waits `debounce` after a change.
    pub(crate) async fn engine_with(&self, now: Timestamp, debounce: Duration) -> Arc<Engine> {
        let calendars = self.calendars.clone();
        let pbx = self.pbx.clone();
        let config = EngineConfig {
            node: "test-node".into(),
            debounce,
            retry: kalsync_engine::RetryPolicy {
                max_attempts: 3,
                base: Duration::from_secs(2),
                max: Duration::from_secs(60),
            },
            ..EngineConfig::default()
        };
        let engine = Engine::new(
            self.store.clone(),
            config,
            Arc::new(move |_| Ok(calendars.clone() as Arc<dyn Source>)),
            Arc::new(move |_| Ok(pbx.clone() as Arc<dyn Target>)),
        );
        engine.renew_leases(now).await.expect("lease");
        engine
    }

    /// The company's dead letters, newest first.
    pub(crate) async fn dead_letters(&self) -> Vec<Delivery> {
        let company = self
            .store
            .instance(self.anna.instance)
            .await
            .expect("instance")
            .company;
        self.store
            .deliveries(company, kalsync_store::DeliveryState::Dead, 10)
            .await
            .expect("dead letters")
    }

    /// A colleague of Anna's, in her instance: `name@acme.example`.
    pub(crate) async fn colleague(&self, name: &str, extension: Option<&str>) -> User {
        self.store
            .add_user(kalsync_store::NewUser {
                instance: self.anna.instance,
                email: kalsync_core::EmailAddress::parse(&format!("{name}@acme.example"))
                    .expect("an address"),
                display_name: None,
                extension: extension.and_then(|e| kalsync_core::Extension::parse(e).ok()),
            })
            .await
            .expect("a user")
    }

    pub(crate) fn book(&self, bookings: Vec<Booking>) {
        self.calendars
            .bookings
            .lock()
            .expect("lock")
            .insert("anna@acme.example".into(), bookings);
    }
}

/// The publish loop's step at `when`: deliveries written.
pub(crate) async fn publish(engine: &Engine, when: &str) -> usize {
    engine.publish_due(at(when)).await.expect("publish")
}

/// The delivery loop's step at `when`.
pub(crate) async fn deliver(engine: &Arc<Engine>, when: &str) -> kalsync_engine::DeliveryPass {
    engine.deliver_due(at(when)).await.expect("deliver")
}

/// A read of `user`'s calendar at `when`.
pub(crate) async fn read(engine: &Engine, user: &User, when: &str) {
    engine.sync_user(user.id, at(when)).await.expect("sync");
}
