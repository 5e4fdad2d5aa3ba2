//! Kalsync's engine (SPEC §5–§6): sources feed bookings in, each user's timeline is kept,
//! every transition becomes a delivery written to the outbox before it is sent, and
//! deliveries go to the PBX targets with retries, back-off and dead letters.
//!
//! The engine knows its sources and targets only by the [`Source`] and [`Target`]
//! traits; the server wires the protocols in. Each loop is a loop around public steps
//! that tests call alone with a fixed `now`:
//!
//! | module | step | does |
//! | --- | --- | --- |
//! | `leases` | [`Engine::renew_leases`] | which users this node holds (the sync loop renews them every `refresh_interval`) |
//! | `sync` | [`Engine::start_due`] ([`Engine::sync_due`] waits for it) | re-reads changed or due calendars |
//! | `publish` | [`Engine::publish_due`] | due transitions into the outbox |
//! | `deliver` | [`Engine::deliver_due`] | the outbox to the targets, one pass |
//! | `automatic_replies` | [`Engine::read_automatic_replies`] | held users' automatic replies into their overrides |
//! | `loops` | [`Engine::run`] | the sync, publish, deliver and retention loops, until one cancellation token stops them |

mod automatic_replies;
mod deliver;
mod leases;
mod loops;
pub mod metrics;
mod plan;
mod publish;
pub mod source;
pub mod status;
mod sync;
pub mod target;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kalsync_core::EmailAddress;
use kalsync_store::{Instance, InstanceId, Store, StoreError, TargetId, User, UserId};
use tokio::sync::Notify;

pub use metrics::Metrics;
pub use source::{Changes, Mailbox, Shortened, Source, SourceError, SourceRead};
pub use status::{AbsenceStatus, Person, StatusKey, StatusUpdate, UPCOMING};
pub use sync::ReadAt;
pub use target::{DeliveryError, Envelope, RetryPolicy, Target};
pub use tokio_util::sync::CancellationToken;

use plan::{Plan, Reasons};

/// Builds the source of an instance (the binary wires the protocols in).
pub type SourceFactory =
    Arc<dyn Fn(&Instance) -> Result<Arc<dyn Source>, SourceError> + Send + Sync>;
/// Builds a target from its stored configuration.
pub type TargetFactory =
    Arc<dyn Fn(&kalsync_store::Target) -> Result<Arc<dyn Target>, String> + Send + Sync>;

/// How the engine paces itself.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This node's name (leases).
    pub node: String,
    /// A change waits this long for more changes before the re-read.
    pub debounce: Duration,
    /// Users without notifications are re-read this often (jittered).
    pub poll_interval: Duration,
    /// Users with a live change subscription are re-read this often (jittered): a
    /// safety net, since their changes are notified.
    pub subscribed_poll_interval: Duration,
    /// Concurrent re-reads.
    pub sync_concurrency: usize,
    /// Deliveries taken per pass.
    pub delivery_batch: usize,
    /// Concurrent deliveries.
    pub delivery_concurrency: usize,
    /// Retries.
    pub retry: RetryPolicy,
    /// Bookings are deleted this long after they end.
    pub retention: SignedDuration,
    /// How often the list of users is read again and leases renewed.
    pub refresh_interval: Duration,
    /// How long a lease holds without renewal: a stopped node's users move to another
    /// node after this.
    pub lease_ttl: Duration,
    /// The most users one node holds (each holds its fair share of all users, the
    /// users divided among the nodes alive, up to this).
    pub max_users: usize,
    /// Automatic replies (which have no change notifications) are read this often
    /// (jittered), besides with each read of a calendar.
    pub automatic_replies_interval: Duration,
    /// Coming transitions are written to the outbox this long before their time (due
    /// at it), so that at a top of the hour the instant itself only sends.
    pub publish_ahead: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            node: format!("node-{}", uuid::Uuid::new_v4().simple()),
            debounce: Duration::from_secs(2),
            poll_interval: Duration::from_secs(300),
            subscribed_poll_interval: Duration::from_secs(900),
            sync_concurrency: 16,
            delivery_batch: 5000,
            delivery_concurrency: 64,
            retry: RetryPolicy::default(),
            retention: SignedDuration::from_hours(24 * 30),
            refresh_interval: Duration::from_secs(10),
            lease_ttl: Duration::from_secs(30),
            max_users: 200_000,
            automatic_replies_interval: Duration::from_secs(300),
            publish_ahead: Duration::from_secs(30),
        }
    }
}

/// What went wrong in a step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// What one re-read did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Read; bookings added/changed/removed; absences in the window.
    Synced {
        /// Booking changes.
        changed: usize,
        /// Absences now.
        absences: usize,
    },
    /// The instance is switched off.
    Inactive,
    /// A poll found nothing changed since the last read; the window was not read.
    Unchanged,
    /// Read, but not written: another node's read of the user was written since this
    /// one began. The user is read again by whichever node holds it.
    Overtaken,
}

/// A poll reads the whole window at least this often even when the source says nothing
/// changed: the window moves, and a series' later occurrences enter it.
const FULL_READ_EVERY: SignedDuration = SignedDuration::from_hours(6);

/// The sync-state key of a source's change cursor (EWS `SyncState`).
const CURSOR_KEY: &str = "source_cursor";

/// A user's change cursor as the engine holds it.
#[derive(Debug, Clone)]
struct Cursor {
    token: String,
    /// The last full read since the cursor was taken.
    full_read: Option<Timestamp>,
}

/// What one delivery pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryPass {
    /// Acknowledged.
    pub delivered: usize,
    /// To be retried.
    pub retried: usize,
    /// Given up.
    pub dead: usize,
}

#[derive(Default)]
struct Inner {
    /// Users to re-read, and when (debounced).
    dirty: HashMap<UserId, Timestamp>,
    /// Users a source asked to wait (`Retry-After`, or a failed read's back-off): not
    /// read before then, whatever notifications say.
    backoff: HashMap<UserId, Timestamp>,
    /// Users being read now; a change meanwhile reads them once more afterwards.
    in_flight: std::collections::HashSet<UserId>,
    /// Dirty users whose read is only a poll (no change notified).
    polls: std::collections::HashSet<UserId>,
    /// Change cursors of sources that can tell cheaply whether anything changed.
    cursors: HashMap<UserId, Cursor>,
    /// When each known user was last read (when the read began).
    last_read: HashMap<UserId, Timestamp>,
    /// Held users with a live change subscription: polled only as a safety net.
    subscribed: std::collections::HashSet<UserId>,
    /// Users whose last read was refused (credentials, rights): retried once, then
    /// left to the polls until a read succeeds.
    refused: std::collections::HashSet<UserId>,
    /// Instances whose automatic replies were refused (the admin was told once).
    told_no_replies: std::collections::HashSet<InstanceId>,
    /// Each held user's revision as this node last wrote or saw it (the next read
    /// begins from it); without one, the revision of the user's record.
    revisions: HashMap<UserId, u64>,
    /// Known users by instance and mailbox, for notifications.
    by_mailbox: HashMap<(InstanceId, String), UserId>,
    /// The users this node holds, with their company.
    held: HashMap<UserId, (Arc<User>, kalsync_store::CompanyId)>,
    /// Active instances as of the last refresh, so a sync reads no instance row.
    instances: HashMap<InstanceId, Arc<kalsync_store::Instance>>,
    /// Active targets by company, and by id.
    company_targets: HashMap<kalsync_store::CompanyId, Vec<Arc<kalsync_store::Target>>>,
    targets_by_id: HashMap<TargetId, Arc<kalsync_store::Target>>,
    /// Held users' timelines, packed.
    plans: HashMap<UserId, Plan>,
    /// The reason codes the plans name.
    reasons: Reasons,
    /// What was last written for each user and target (absent: nothing, or a dead
    /// letter, so it is written again).
    published: HashMap<(UserId, TargetId), publish::Written>,
    /// When statuses written ahead of their time become due.
    ahead_due: BTreeSet<Timestamp>,
    /// Statuses this node wrote ahead of their time, kept ready to send at it without
    /// reading the outbox back (its rows stay the record).
    ready: publish::ReadySet,
    /// Due transitions.
    schedule: BTreeSet<(Timestamp, UserId)>,
    /// Each user's next scheduled transition.
    next_of: HashMap<UserId, Timestamp>,
    /// Sources in use by instance, as of the last lease renewal.
    sources: HashMap<InstanceId, Arc<dyn Source>>,
    /// Targets by id, with the fingerprint of the configuration each was built from.
    targets: HashMap<TargetId, (u64, Arc<dyn Target>)>,
    /// How many users this node leased at its last renewal.
    leased: usize,
    /// Delivery passes sending statuses kept ready, under way.
    sending_ready: usize,
    /// When another node's leases run out unless it renews them (it may have stopped).
    takeover_at: Option<Timestamp>,
}

/// The engine of one node.
pub struct Engine {
    store: Arc<dyn Store>,
    config: EngineConfig,
    sources: SourceFactory,
    targets: TargetFactory,
    inner: Mutex<Inner>,
    metrics: Metrics,
    delivery_wake: Notify,
    sync_wake: Notify,
    sync_gate: Arc<tokio::sync::Semaphore>,
    /// Counts changes of the set of users this node holds.
    held_version: tokio::sync::watch::Sender<u64>,
}

impl Engine {
    /// An engine over a store, with the factories that build sources and targets.
    pub fn new(
        store: Arc<dyn Store>,
        config: EngineConfig,
        sources: SourceFactory,
        targets: TargetFactory,
    ) -> Arc<Engine> {
        let sync_gate = Arc::new(tokio::sync::Semaphore::new(config.sync_concurrency.max(1)));
        Arc::new(Engine {
            store,
            config,
            sources,
            targets,
            inner: Mutex::new(Inner::default()),
            metrics: Metrics::default(),
            delivery_wake: Notify::new(),
            sync_wake: Notify::new(),
            sync_gate,
            held_version: tokio::sync::watch::Sender::new(0),
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Counters and histograms.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Asks for a re-read of a user's window after the debounce.
    ///
    /// The first pending change sets the time: later notifications gather into the same
    /// read but never push it back, so no notification rate, forged or real, can keep a
    /// user from being read. A source's back-off still holds.
    pub fn mark_dirty(&self, user: UserId, now: Timestamp) {
        let due = now + self.config.debounce;
        {
            let mut inner = self.inner();
            inner.polls.remove(&user);
            let not_before = inner.backoff.get(&user).copied();
            let entry = inner.dirty.entry(user).or_insert(due);
            *entry = (*entry).min(due);
            if let Some(wait) = not_before {
                *entry = (*entry).max(wait);
            }
        }
        self.sync_wake.notify_one();
    }

    /// A change subscription for the user was just made (its answer received): it
    /// reports changes from then on, never earlier ones. So the order on every path is
    /// subscribe first, then read — a change between a read and a new subscription
    /// would be in neither: the user is read once more, unless a read is due that has
    /// not begun (it begins after the subscription). Whether a read began before or
    /// after is not judged by the wall clock, which may have stepped. `now` times the
    /// read; from now on the user is polled only every `subscribed_poll_interval`.
    /// A user this node no longer holds (its lease moved while the subscription was
    /// being made) is read by the node that holds it.
    pub async fn subscribed(&self, user: UserId, now: Timestamp) {
        let (held, due) = {
            let mut inner = self.inner();
            let held = inner.held.contains_key(&user);
            if held {
                inner.subscribed.insert(user);
            }
            (
                held,
                inner.dirty.contains_key(&user) && !inner.in_flight.contains(&user),
            )
        };
        if !held {
            if let Err(e) = self.store.request_sync(user).await {
                tracing::warn!(user = %user, error = %e, "cannot pass a read on to the node that holds the user");
            }
        } else if !due {
            self.mark_dirty(user, now);
        }
    }

    /// Whether the user's changes are notified (a subscription this node keeps, made
    /// before this node took the user, so no read is owed): `false` puts the user back
    /// on the ordinary poll.
    pub fn notified(&self, user: UserId, notified: bool) {
        let mut inner = self.inner();
        if notified {
            inner.subscribed.insert(user);
        } else {
            inner.subscribed.remove(&user);
        }
    }

    /// The user a notification names: by instance and mailbox (address or source id).
    pub fn user_by_mailbox(&self, instance: InstanceId, mailbox: &str) -> Option<UserId> {
        self.inner()
            .by_mailbox
            .get(&(instance, mailbox.to_ascii_lowercase()))
            .copied()
    }

    /// Tells every holder of the receiver when the set of users this node holds
    /// changes (each loop keeps its own, so none misses a change).
    pub fn held_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.held_version.subscribe()
    }

    /// Whether this node holds the user (reads, schedules and delivers for it).
    pub fn holds(&self, user: UserId) -> bool {
        self.inner().held.contains_key(&user)
    }

    /// Deletes bookings past the retention.
    pub async fn apply_retention(&self, now: Timestamp) -> Result<u64, EngineError> {
        Ok(self
            .store
            .delete_bookings_ended_before(now - self.config.retention)
            .await?)
    }

    /// The mailbox a user is, for diagnostics.
    pub async fn mailbox_of(&self, user: UserId) -> Result<EmailAddress, EngineError> {
        Ok(self.store.user(user).await?.email)
    }
}
