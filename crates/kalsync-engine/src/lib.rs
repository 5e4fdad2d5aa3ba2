//! Kalsync's engine (SPEC §5–§6): sources feed bookings in, each user's timeline is kept,
//! every transition becomes a delivery written to the outbox before it is sent, and
//! deliveries go to the PBX targets with retries, back-off and dead letters.
//!
//! Three steps do the work and each can be called alone (tests call them with a fixed
//! `now`): [`Engine::sync_due`] re-reads the users whose calendars changed or whose poll
//! is due, [`Engine::schedule_due`] turns due transitions into deliveries, and
//! [`Engine::deliver_due`] sends what is due. [`Engine::run`] loops around them until
//! shutdown.

pub mod metrics;
mod plan;
pub mod source;
pub mod status;
pub mod target;

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kalsync_core::{EmailAddress, Window, build_timeline};
use kalsync_store::{
    Delivery, DeliveryState, Instance, InstanceId, NewDelivery, Store, StoreError, SyncWrite,
    TargetId, User, UserId,
};
use rand::Rng as _;
use tokio::sync::Notify;

pub use metrics::Metrics;
pub use source::{EwsSource, GraphSource, Mailbox, Source, SourceError, SourceRead};
pub use status::{AbsenceStatus, Person, StatusUpdate, UPCOMING, next_transition};

use plan::{Plan, Reasons};
pub use target::{DeliveryError, Envelope, RetryPolicy, Target};

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
    /// The most users one node holds.
    pub max_users: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            node: format!("node-{}", uuid::Uuid::new_v4().simple()),
            debounce: Duration::from_secs(2),
            poll_interval: Duration::from_secs(300),
            sync_concurrency: 16,
            delivery_batch: 500,
            delivery_concurrency: 64,
            retry: RetryPolicy::default(),
            retention: SignedDuration::from_hours(24 * 30),
            refresh_interval: Duration::from_secs(10),
            lease_ttl: Duration::from_secs(30),
            max_users: 200_000,
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

/// What a status is keyed by: what the PBX shows (`None`: available).
type StatusKey = Option<(String, kalsync_core::Mode, Timestamp, Timestamp, Timestamp)>;

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
    /// When each known user was last read.
    last_read: HashMap<UserId, Timestamp>,
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
    published: HashMap<(UserId, TargetId), StatusKey>,
    /// Due transitions.
    schedule: BTreeSet<(Timestamp, UserId)>,
    /// Each user's next scheduled transition.
    next_of: HashMap<UserId, Timestamp>,
    /// Sources by instance.
    sources: HashMap<InstanceId, Arc<dyn Source>>,
    /// Targets by id.
    targets: HashMap<TargetId, Arc<dyn Target>>,
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

    /// Reads requests other nodes left for this node's users.
    pub async fn claim_requests(&self, now: Timestamp) -> Result<usize, EngineError> {
        let users = self.store.claim_sync_requests(&self.config.node).await?;
        for user in &users {
            self.mark_dirty(*user, now);
        }
        Ok(users.len())
    }

    /// Forgets cached sources and targets (an admin changed an instance or a target).
    pub fn forget_connections(&self) {
        let mut inner = self.inner();
        inner.sources.clear();
        inner.targets.clear();
    }

    /// Reads every active instance's users: new ones are read at once, removed ones
    /// leave the schedule. Returns how many users are known.
    pub async fn refresh_users(&self, now: Timestamp) -> Result<usize, EngineError> {
        let ttl = SignedDuration::try_from(self.config.lease_ttl)
            .unwrap_or(SignedDuration::from_secs(30));
        let leased: std::collections::HashSet<UserId> = self
            .store
            .lease_users(&self.config.node, now, ttl, self.config.max_users)
            .await?
            .into_iter()
            .collect();
        let mut held = HashMap::new();
        let mut instances = HashMap::new();
        let mut mailboxes = HashMap::new();
        let mut company_targets = HashMap::new();
        let mut targets_by_id = HashMap::new();
        for instance in self.store.active_instances().await? {
            if let std::collections::hash_map::Entry::Vacant(slot) =
                company_targets.entry(instance.company)
            {
                let targets: Vec<Arc<kalsync_store::Target>> = self
                    .store
                    .targets(instance.company)
                    .await?
                    .into_iter()
                    .filter(|t| t.active)
                    .map(Arc::new)
                    .collect();
                for t in &targets {
                    targets_by_id.insert(t.id, t.clone());
                }
                slot.insert(targets);
            }
            for user in self.store.users(instance.id).await? {
                if !leased.contains(&user.id) {
                    continue;
                }
                mailboxes.insert((instance.id, user.email.to_string()), user.id);
                held.insert(user.id, (Arc::new(user), instance.company));
            }
            instances.insert(instance.id, Arc::new(instance));
        }
        let poll = SignedDuration::try_from(self.config.poll_interval)
            .unwrap_or(SignedDuration::from_mins(5));
        let new_users = {
            let inner = self.inner();
            held.keys().any(|u| !inner.held.contains_key(u))
        };
        // Newly held users' timelines (page by page) and last deliveries.
        let deliveries = if new_users {
            self.load_plans(&held, &instances, now).await?;
            self.store.held_last_deliveries(&self.config.node).await?
        } else {
            Vec::new()
        };
        let mut inner = self.inner();
        for (id, (user, _)) in &held {
            if inner.held.contains_key(id)
                || inner.last_read.contains_key(id)
                || inner.dirty.contains_key(id)
            {
                continue;
            }
            // Read recently (by this node before a restart, or another): polled on
            // schedule; otherwise read now. A read recorded after `now` (this node's
            // clock is behind the one that read, or was stepped back) says nothing about
            // when the next poll is due: read now rather than wait for that clock.
            match user.last_sync {
                Some(at) if at <= now && now.duration_since(at) < poll => {
                    inner.last_read.insert(*id, at);
                }
                _ => {
                    inner.dirty.insert(*id, now);
                }
            }
        }
        for d in deliveries {
            if d.state == DeliveryState::Dead {
                continue;
            }
            let key = serde_json::from_value::<StatusUpdate>(d.payload)
                .map(|s| s.key())
                .ok();
            if let Some(key) = key {
                inner.published.entry((d.user, d.target)).or_insert(key);
            }
        }
        inner.last_read.retain(|u, _| held.contains_key(u));
        inner.dirty.retain(|u, _| held.contains_key(u));
        inner.backoff.retain(|u, _| held.contains_key(u));
        inner.plans.retain(|u, _| held.contains_key(u));
        inner.published.retain(|(u, _), _| held.contains_key(u));
        let gone: Vec<(Timestamp, UserId)> = inner
            .schedule
            .iter()
            .filter(|(_, u)| !held.contains_key(u))
            .copied()
            .collect();
        for entry in gone {
            inner.schedule.remove(&entry);
            inner.next_of.remove(&entry.1);
        }
        let changed =
            held.len() != inner.held.len() || held.keys().any(|u| !inner.held.contains_key(u));
        inner.by_mailbox = mailboxes;
        inner.company_targets = company_targets;
        inner.targets_by_id = targets_by_id;
        let count = held.len();
        inner.held = held;
        inner.instances = instances;
        drop(inner);
        if changed {
            self.held_version.send_modify(|v| *v += 1);
        }
        Ok(count)
    }

    /// Packs the stored timelines of the users this node holds and has no plan for yet,
    /// a page at a time. A timeline that cannot be read sends its user to a re-read.
    async fn load_plans(
        &self,
        held: &HashMap<UserId, (Arc<User>, kalsync_store::CompanyId)>,
        instances: &HashMap<InstanceId, Arc<Instance>>,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        const PAGE: usize = 2000;
        let mut after = None;
        loop {
            let page = self
                .store
                .held_timelines(&self.config.node, after, PAGE)
                .await?;
            let Some((last, _)) = page.last() else {
                return Ok(());
            };
            after = Some(*last);
            let more = page.len() == PAGE;
            let mut guard = self.inner();
            let inner = &mut *guard;
            for (user, timeline) in page {
                let Some(instance) = held
                    .get(&user)
                    .and_then(|(u, _)| instances.get(&u.instance))
                else {
                    continue;
                };
                if inner.plans.contains_key(&user) {
                    continue;
                }
                match timeline {
                    Ok(t) => {
                        let plan = Plan::pack(&t, &instance.settings.time_zone, &mut inner.reasons);
                        inner.plans.insert(user, plan);
                    }
                    Err(e) => {
                        tracing::warn!(user = %user, error = %e, "the stored timeline cannot be read; the calendar is read again");
                        inner.dirty.insert(user, now);
                    }
                }
            }
            drop(guard);
            if !more {
                return Ok(());
            }
        }
    }

    fn source_for(&self, instance: &Instance) -> Result<Arc<dyn Source>, SourceError> {
        if let Some(s) = self.inner().sources.get(&instance.id) {
            return Ok(s.clone());
        }
        let source = (self.sources)(instance)?;
        self.inner().sources.insert(instance.id, source.clone());
        Ok(source)
    }

    fn target_for(&self, target: &kalsync_store::Target) -> Result<Arc<dyn Target>, String> {
        if let Some(t) = self.inner().targets.get(&target.id) {
            return Ok(t.clone());
        }
        let built = (self.targets)(target)?;
        self.inner().targets.insert(target.id, built.clone());
        Ok(built)
    }

    /// Re-reads one user's window: bookings stored (as the instance allows), timeline
    /// recomputed, the current status published if it changed, the next transition
    /// scheduled.
    pub async fn sync_user(
        &self,
        user: UserId,
        now: Timestamp,
    ) -> Result<SyncOutcome, EngineError> {
        // The user and instance as of the last refresh; the store only for one not held.
        let (cached_user, cached_instance) = {
            let inner = self.inner();
            let user = inner.held.get(&user).map(|(u, _)| u.clone());
            let instance = user
                .as_ref()
                .and_then(|u| inner.instances.get(&u.instance).cloned());
            (user, instance)
        };
        let user = match cached_user {
            Some(u) => u,
            None => Arc::new(self.store.user(user).await?),
        };
        let instance = match cached_instance {
            Some(i) => i,
            None => Arc::new(self.store.instance(user.instance).await?),
        };
        if !instance.active {
            return Ok(SyncOutcome::Inactive);
        }
        {
            // This read covers every change asked for before it starts; one asked for
            // while it runs asks again.
            let mut inner = self.inner();
            inner.last_read.insert(user.id, now);
            inner.dirty.remove(&user.id);
        }
        let window = Window::sync(now, instance.settings.days_ahead);
        let read = match self.source_for(&instance) {
            Ok(source) => {
                source
                    .read(&user.email, window, instance.settings.needs_subject())
                    .await
            }
            Err(e) => Err(e),
        };
        let read = match read {
            Ok(read) => read,
            Err(e) => {
                self.metrics.sync_failed(&e);
                let retry = match &e {
                    SourceError::Throttled { retry_after } => Some(*retry_after),
                    SourceError::Failed(_) => Some(Duration::from_secs(30)),
                    _ => None,
                };
                if let Some(after) = retry {
                    let mut inner = self.inner();
                    inner.dirty.insert(user.id, now + after);
                    inner.backoff.insert(user.id, now + after);
                }
                tracing::warn!(user = %user.id, instance = %instance.id, error = %e, "sync failed");
                // The company sees what failed; where it failed is in the log.
                self.store
                    .record_sync(
                        user.id,
                        now,
                        Some(&kalsync_core::redact::shown_error(&e.to_string())),
                    )
                    .await?;
                return Err(e.into());
            }
        };
        for (id, why) in &read.rejected {
            tracing::warn!(user = %user.id, instance = %instance.id, item = %id, reason = %why, "a booking could not be read; it is left out");
        }
        let settings = instance.settings.for_mailbox(
            read.mailbox.zone.as_ref(),
            read.mailbox.working_hours.as_ref(),
        );
        let timeline = build_timeline(&read.bookings, &settings, window).without_bookings();
        let plan = {
            let mut inner = self.inner();
            Plan::pack(&timeline, &instance.settings.time_zone, &mut inner.reasons)
        };
        let next = plan.next_transition(now);
        let note = (!read.rejected.is_empty())
            .then(|| format!("{} booking(s) could not be read", read.rejected.len()));
        let diff = self
            .store
            .save_sync(SyncWrite {
                user: user.id,
                bookings: &read.bookings,
                keep_subjects: settings.subjects_allowed(),
                timeline: &timeline,
                next_change: next,
                at: now,
                note: note.as_deref(),
            })
            .await?;
        self.metrics.synced();
        {
            let mut inner = self.inner();
            inner.backoff.remove(&user.id);
            inner.plans.insert(user.id, plan);
            inner
                .held
                .entry(user.id)
                .or_insert_with(|| (user.clone(), instance.company));
            inner
                .instances
                .entry(instance.id)
                .or_insert_with(|| instance.clone());
        }
        self.publish_many(&[(user.id, now)]).await?;
        self.schedule(user.id, next);
        Ok(SyncOutcome::Synced {
            changed: diff.added + diff.changed + diff.removed,
            absences: timeline.absences.len(),
        })
    }

    /// A poll: where the source can tell cheaply that nothing changed since the last
    /// look, and the window was read within [`FULL_READ_EVERY`], only the look is
    /// recorded; otherwise the window is read. The cursor is taken before the read, so
    /// a change during the read is seen again, never missed.
    pub async fn poll_user(
        &self,
        user: UserId,
        now: Timestamp,
    ) -> Result<SyncOutcome, EngineError> {
        let (record, instance) = {
            let inner = self.inner();
            let record = inner.held.get(&user).map(|(u, _)| u.clone());
            let instance = record
                .as_ref()
                .and_then(|u| inner.instances.get(&u.instance).cloned());
            (record, instance)
        };
        let (Some(record), Some(instance)) = (record, instance) else {
            return self.sync_user(user, now).await;
        };
        let Ok(source) = self.source_for(&instance) else {
            return self.sync_user(user, now).await;
        };
        let kept = self.inner().cursors.get(&user).cloned();
        let read_lately = kept
            .as_ref()
            .and_then(|c| c.full_read)
            .is_some_and(|at| now.duration_since(at) < FULL_READ_EVERY);
        let token = kept.map(|c| c.token).or_else(|| {
            record
                .sync_state
                .0
                .get(CURSOR_KEY)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        });
        let changes = match source.changes(&record.email, token.as_deref()).await {
            Ok(Some(c)) => c,
            Ok(None) => return self.sync_user(user, now).await,
            Err(e) => {
                tracing::debug!(user = %user, error = %e, "the look for changes failed; reading the window");
                return self.sync_user(user, now).await;
            }
        };
        if token.as_deref() != Some(changes.cursor.as_str()) {
            self.store
                .set_sync_key(
                    user,
                    CURSOR_KEY,
                    Some(&serde_json::Value::String(changes.cursor.clone())),
                )
                .await?;
        }
        let full_read = read_lately
            .then(|| self.inner().cursors.get(&user).and_then(|c| c.full_read))
            .flatten();
        self.inner().cursors.insert(
            user,
            Cursor {
                token: changes.cursor,
                full_read,
            },
        );
        if !changes.any && read_lately {
            self.inner().last_read.insert(user, now);
            self.store.record_sync(user, now, None).await?;
            return Ok(SyncOutcome::Unchanged);
        }
        let outcome = self.sync_user(user, now).await?;
        if let Some(c) = self.inner().cursors.get_mut(&user) {
            c.full_read = Some(now);
        }
        Ok(outcome)
    }

    fn schedule(&self, user: UserId, next: Option<Timestamp>) {
        let mut inner = self.inner();
        if let Some(old) = inner.next_of.remove(&user) {
            inner.schedule.remove(&(old, user));
        }
        if let Some(t) = next {
            inner.schedule.insert((t, user));
            inner.next_of.insert(user, t);
        }
    }

    /// Writes the status of each `(user, at)` to the outbox of every active target of
    /// the user's company, unless that target already has (or is about to get) this
    /// very status — in one batch. A target is never told to clear a status the
    /// service did not set.
    async fn publish_many(&self, items: &[(UserId, Timestamp)]) -> Result<usize, EngineError> {
        // Under the lock only what decides whether a target needs the status; the
        // texts are written afterwards, for those that do.
        let mut work = Vec::new();
        {
            let inner = self.inner();
            for (user, at) in items {
                let (Some((u, company)), Some(plan)) =
                    (inner.held.get(user), inner.plans.get(user))
                else {
                    continue;
                };
                let (Some(instance), Some(targets)) = (
                    inner.instances.get(&u.instance),
                    inner.company_targets.get(company),
                ) else {
                    continue;
                };
                let timeline =
                    plan.around(*at, UPCOMING, &instance.settings.time_zone, &inner.reasons);
                let key: StatusKey = timeline
                    .at(*at)
                    .map(|a| (a.reason.to_string(), a.mode, a.start, a.end, a.returns_at));
                let needing: Vec<TargetId> = targets
                    .iter()
                    .filter(
                        |target| match (inner.published.get(&(*user, target.id)), &key) {
                            (None, None) => false,
                            (Some(old), new) => old != new,
                            (None, Some(_)) => true,
                        },
                    )
                    .map(|t| t.id)
                    .collect();
                if !needing.is_empty() {
                    work.push((u.clone(), instance.clone(), timeline, *at, key, needing));
                }
            }
        }
        let mut new = Vec::new();
        let mut keys = Vec::new();
        for (user, instance, timeline, at, key, needing) in work {
            let status = StatusUpdate::at(&user, &timeline, &instance.settings, at);
            let payload = serde_json::to_value(&status).map_err(|e| StoreError::Corrupt {
                what: "status".into(),
                message: e.to_string(),
            })?;
            for target in needing {
                new.push(NewDelivery {
                    user: user.id,
                    target,
                    payload: payload.clone(),
                    due: at,
                });
                keys.push(((user.id, target), key.clone()));
            }
        }
        if new.is_empty() {
            return Ok(0);
        }
        let written = self.store.enqueue_many(new).await?.len();
        {
            let mut inner = self.inner();
            for (k, v) in keys {
                inner.published.insert(k, v);
            }
        }
        self.delivery_wake.notify_one();
        Ok(written)
    }

    /// Re-reads users whose debounce ran out or whose poll is due, up to the sync
    /// concurrency at a time. Returns how many were read.
    pub async fn sync_due(self: &Arc<Self>, now: Timestamp) -> usize {
        let due = self.take_due(now);
        let count = due.len();
        let mut tasks = tokio::task::JoinSet::new();
        let gate = Arc::new(tokio::sync::Semaphore::new(
            self.config.sync_concurrency.max(1),
        ));
        for user in due {
            let engine = self.clone();
            let gate = gate.clone();
            tasks.spawn(async move {
                let _permit = gate.acquire().await;
                engine.sync_and_release(user, now).await;
            });
        }
        while tasks.join_next().await.is_some() {}
        count
    }

    /// The wall clock stepped back by `by`: pending re-reads and the poll clock move
    /// back with it, so nothing waits for the time the clock had been ahead.
    pub fn clock_stepped_back(&self, by: Duration) {
        let mut inner = self.inner();
        let earlier = |t: &mut Timestamp| {
            if let Ok(back) = t.checked_sub(by) {
                *t = back;
            }
        };
        inner.dirty.values_mut().for_each(earlier);
        inner.backoff.values_mut().for_each(earlier);
        inner.last_read.values_mut().for_each(earlier);
    }

    /// Takes the users due for a re-read: debounce over, or poll due; not being read
    /// already. They are marked in flight.
    fn take_due(&self, now: Timestamp) -> Vec<UserId> {
        let mut inner = self.inner();
        let poll = SignedDuration::try_from(self.config.poll_interval)
            .unwrap_or(SignedDuration::from_mins(5));
        let stale: Vec<UserId> = inner
            .last_read
            .iter()
            .filter(|(u, at)| now.duration_since(**at) >= poll && !inner.dirty.contains_key(u))
            .map(|(u, _)| *u)
            .collect();
        for u in stale {
            // Jitter spreads the polls of many users over a tenth of the interval.
            let jitter =
                rand::rng().random_range(0..=self.config.poll_interval.as_millis() as u64 / 10);
            inner.dirty.insert(u, now + Duration::from_millis(jitter));
            inner.polls.insert(u);
        }
        let mut due: Vec<(Timestamp, UserId)> = inner
            .dirty
            .iter()
            .filter(|(u, t)| **t <= now && !inner.in_flight.contains(u))
            .map(|(u, t)| (*t, *u))
            .collect();
        due.sort();
        due.truncate(self.config.sync_concurrency.max(1) * 4);
        for (_, u) in &due {
            inner.dirty.remove(u);
            inner.in_flight.insert(*u);
        }
        due.into_iter().map(|(_, u)| u).collect()
    }

    async fn sync_and_release(&self, user: UserId, now: Timestamp) {
        let poll = self.inner().polls.remove(&user);
        let outcome = if poll {
            self.poll_user(user, now).await
        } else {
            self.sync_user(user, now).await
        };
        if let Err(e) = outcome {
            tracing::debug!(user = %user, error = %e, "sync step failed");
        }
        self.inner().in_flight.remove(&user);
        self.sync_wake.notify_one();
    }

    /// When the next re-read is due.
    fn next_dirty(&self) -> Option<Timestamp> {
        let inner = self.inner();
        inner
            .dirty
            .iter()
            .filter(|(u, _)| !inner.in_flight.contains(u))
            .map(|(_, t)| *t)
            .min()
    }

    /// Publishes every transition due by `now`. Returns how many users changed status.
    pub async fn schedule_due(&self, now: Timestamp) -> Result<usize, EngineError> {
        let due: Vec<(UserId, Timestamp)> = {
            let mut inner = self.inner();
            let due: Vec<(Timestamp, UserId)> = inner
                .schedule
                .range(..=(now, UserId(uuid::Uuid::max())))
                .copied()
                .collect();
            for entry in &due {
                inner.schedule.remove(entry);
                inner.next_of.remove(&entry.1);
            }
            // Late (a clock jump, a busy node): the state in force now, once.
            due.into_iter()
                .map(|(t, u)| {
                    let at = inner.plans.get(&u).map_or(t, |p| p.caught_up(t, now));
                    (u, at)
                })
                .collect()
        };
        if due.is_empty() {
            return Ok(0);
        }
        // In chunks, so the first deliveries go out while later ones are still written.
        const CHUNK: usize = 1000;
        let mut written = 0;
        for (n, chunk) in due.chunks(CHUNK).enumerate() {
            match self.publish_many(chunk).await {
                Ok(count) => written += count,
                Err(e) => {
                    tracing::warn!(error = %e, users = due.len() - n * CHUNK, "transitions could not be published; retrying in a second");
                    for (user, _) in &due[n * CHUNK..] {
                        self.schedule(*user, Some(now + Duration::from_secs(1)));
                    }
                    return Err(e);
                }
            }
            let next: Vec<(UserId, Option<Timestamp>)> = {
                let inner = self.inner();
                chunk
                    .iter()
                    .map(|(u, at)| (*u, inner.plans.get(u).and_then(|p| p.next_transition(*at))))
                    .collect()
            };
            for (user, next) in next {
                self.schedule(user, next);
            }
        }
        Ok(written)
    }

    /// After a start: every known user's stored timeline is scheduled, and the status in
    /// force now goes out where the PBX does not have it yet — the latest state only,
    /// not a replay of what was missed.
    pub async fn catch_up(&self, now: Timestamp) -> Result<usize, EngineError> {
        self.refresh_users(now).await?;
        let users: Vec<(UserId, Timestamp)> =
            self.inner().plans.keys().map(|u| (*u, now)).collect();
        let written = self.publish_many(&users).await?;
        let next: Vec<(UserId, Option<Timestamp>)> = {
            let inner = self.inner();
            users
                .iter()
                .map(|(u, _)| (*u, inner.plans.get(u).and_then(|p| p.next_transition(now))))
                .collect()
        };
        for (user, next) in next {
            self.schedule(user, next);
        }
        Ok(written)
    }

    /// When the earliest scheduled transition is.
    pub fn next_scheduled(&self) -> Option<Timestamp> {
        self.inner().schedule.first().map(|(t, _)| *t)
    }

    /// Sends the deliveries due by `now`.
    pub async fn deliver_due(
        self: &Arc<Self>,
        now: Timestamp,
    ) -> Result<DeliveryPass, EngineError> {
        let due = self
            .store
            .due_deliveries(&self.config.node, now, self.config.delivery_batch)
            .await?;
        let mut tasks = tokio::task::JoinSet::new();
        let gate = Arc::new(tokio::sync::Semaphore::new(
            self.config.delivery_concurrency.max(1),
        ));
        for delivery in due {
            let engine = self.clone();
            let gate = gate.clone();
            tasks.spawn(async move {
                let _permit = gate.acquire().await;
                engine.deliver_one(delivery, now).await
            });
        }
        let mut pass = DeliveryPass::default();
        let mut delivered = Vec::new();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(Outcome::Delivered(id))) => {
                    pass.delivered += 1;
                    delivered.push(id);
                }
                Ok(Ok(Outcome::Retry)) => pass.retried += 1,
                Ok(Ok(Outcome::Dead)) => pass.dead += 1,
                Ok(Err(e)) => tracing::warn!(error = %e, "a delivery could not be recorded"),
                Err(e) => tracing::error!(error = %e, "a delivery task failed"),
            }
        }
        if !delivered.is_empty() {
            self.store.mark_delivered_many(&delivered, now).await?;
        }
        Ok(pass)
    }

    async fn deliver_one(
        &self,
        delivery: Delivery,
        now: Timestamp,
    ) -> Result<Outcome, EngineError> {
        let cached = self.inner().targets_by_id.get(&delivery.target).cloned();
        let target = match cached {
            Some(t) => t,
            None => match self.store.target(delivery.target).await {
                Ok(t) => Arc::new(t),
                Err(StoreError::NotFound(_)) => return Ok(Outcome::Dead),
                Err(e) => return Err(e.into()),
            },
        };
        if !target.active {
            return self
                .dead_letter(&delivery, "the target is switched off")
                .await;
        }
        let status: StatusUpdate = match serde_json::from_value(delivery.payload.clone()) {
            Ok(s) => s,
            Err(e) => {
                return self
                    .dead_letter(&delivery, &format!("unreadable payload: {e}"))
                    .await;
            }
        };
        let adapter = match self.target_for(&target) {
            Ok(a) => a,
            Err(e) => {
                return self
                    .dead_letter(&delivery, &format!("target configuration: {e}"))
                    .await;
            }
        };
        match adapter.deliver(&Envelope::of(&delivery), &status).await {
            Ok(()) => {
                // Recorded with the pass's other acknowledgements, in one write.
                self.metrics
                    .delivered(Timestamp::now().duration_since(delivery.due));
                Ok(Outcome::Delivered(delivery.id))
            }
            Err(DeliveryError::Retry {
                message,
                retry_after,
            }) => {
                if delivery.attempts + 1 >= self.config.retry.max_attempts {
                    tracing::warn!(target = %target.id, delivery = %delivery.id, "retry budget spent");
                    return self.dead_letter(&delivery, &message).await;
                }
                let wait = self.config.retry.delay(delivery.attempts, retry_after);
                tracing::debug!(target = %target.id, delivery = %delivery.id, error = %message, "a delivery will be tried again");
                self.store
                    .mark_retry(
                        delivery.id,
                        now + wait,
                        &kalsync_core::redact::shown_error(&message),
                    )
                    .await?;
                self.metrics.retried();
                Ok(Outcome::Retry)
            }
            Err(DeliveryError::Gone(message)) => {
                self.store.set_target_active(target.id, false).await?;
                tracing::warn!(target = %target.id, "the target answered 410 Gone: switched off");
                self.dead_letter(&delivery, &message).await
            }
            Err(DeliveryError::Rejected(message)) => self.dead_letter(&delivery, &message).await,
        }
    }

    /// Gives a delivery up: the whole reason to the log, the company's view of it
    /// (without addresses) to the store; the target may lack this user's status, so
    /// the next change writes it again.
    async fn dead_letter(&self, delivery: &Delivery, why: &str) -> Result<Outcome, EngineError> {
        tracing::warn!(delivery = %delivery.id, target = %delivery.target, error = %why, "dead letter");
        self.store
            .mark_dead(delivery.id, &kalsync_core::redact::shown_error(why))
            .await?;
        self.forget_published(delivery);
        self.metrics.dead_letter();
        Ok(Outcome::Dead)
    }

    /// A dead letter: the target may not have this user's status, so the next change
    /// (or poll) writes it again.
    fn forget_published(&self, delivery: &Delivery) {
        self.inner()
            .published
            .remove(&(delivery.user, delivery.target));
    }

    /// Deletes bookings past the retention.
    pub async fn apply_retention(&self, now: Timestamp) -> Result<u64, EngineError> {
        Ok(self
            .store
            .delete_bookings_ended_before(now - self.config.retention)
            .await?)
    }

    /// Runs the loops until `shutdown` completes; in-flight work finishes first, within
    /// `grace`.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()> + Send, grace: Duration) {
        let stop = Arc::new(Notify::new());
        let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let is_stopping = {
            let s = stopping.clone();
            move || s.load(std::sync::atomic::Ordering::Relaxed)
        };
        if let Err(e) = self.refresh_users(Timestamp::now()).await {
            tracing::error!(error = %e, "cannot read the users");
        }
        if let Err(e) = self.catch_up(Timestamp::now()).await {
            tracing::error!(error = %e, "cannot catch up after the start");
        }
        let mut loops = tokio::task::JoinSet::new();
        {
            let engine = self.clone();
            let stopped = is_stopping.clone();
            loops.spawn(async move {
                let mut last_refresh = tokio::time::Instant::now();
                while !stopped() {
                    if last_refresh.elapsed() >= engine.config.refresh_interval {
                        last_refresh = tokio::time::Instant::now();
                        if let Err(e) = engine.refresh_users(Timestamp::now()).await {
                            tracing::warn!(error = %e, "cannot refresh the users");
                        }
                    }
                    if let Err(e) = engine.claim_requests(Timestamp::now()).await {
                        tracing::warn!(error = %e, "cannot read requests from other nodes");
                    }
                    // Each read runs on its own: a slow mailbox holds up no other.
                    for user in engine.take_due(Timestamp::now()) {
                        let engine = engine.clone();
                        tokio::spawn(async move {
                            let _permit = engine.sync_gate.clone().acquire_owned().await;
                            engine.sync_and_release(user, Timestamp::now()).await;
                        });
                    }
                    let wait = engine
                        .next_dirty()
                        .map(|t| {
                            Duration::try_from(t.duration_since(Timestamp::now()))
                                .unwrap_or(Duration::ZERO)
                        })
                        .unwrap_or(Duration::from_millis(500))
                        .min(Duration::from_millis(500));
                    tokio::select! {
                        () = engine.sync_wake.notified() => {}
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            });
        }
        {
            let engine = self.clone();
            let stopped = is_stopping.clone();
            loops.spawn(async move {
                let mut clock = WallClock::new();
                while !stopped() {
                    // The wall clock stepped back (an NTP correction after a forward
                    // step): statuses sent early are taken back by the state in force.
                    if let Some(back) = clock.stepped_back() {
                        tracing::warn!(
                            seconds = back.as_secs_f64(),
                            "the wall clock stepped back; the status in force now goes out again"
                        );
                        engine.clock_stepped_back(back);
                        if let Err(e) = engine.catch_up(Timestamp::now()).await {
                            tracing::warn!(error = %e, "cannot catch up after the clock step");
                        }
                    }
                    if let Err(e) = engine.schedule_due(Timestamp::now()).await {
                        tracing::warn!(error = %e, "scheduling failed");
                    }
                    let wait = engine
                        .next_scheduled()
                        .map(|t| {
                            Duration::try_from(t.duration_since(Timestamp::now()))
                                .unwrap_or(Duration::ZERO)
                        })
                        .unwrap_or(Duration::from_millis(250))
                        .min(Duration::from_millis(250));
                    tokio::time::sleep(wait).await;
                }
            });
        }
        {
            let engine = self.clone();
            let stopped = is_stopping.clone();
            let stop = stop.clone();
            loops.spawn(async move {
                loop {
                    match engine.deliver_due(Timestamp::now()).await {
                        Ok(pass) if pass.delivered + pass.retried + pass.dead > 0 => continue,
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "delivery pass failed"),
                    }
                    if stopped() {
                        break;
                    }
                    tokio::select! {
                        () = engine.delivery_wake.notified() => {}
                        () = stop.notified() => {}
                        () = tokio::time::sleep(Duration::from_millis(250)) => {}
                    }
                }
            });
        }
        {
            let engine = self.clone();
            let stopped = is_stopping;
            loops.spawn(async move {
                while !stopped() {
                    if let Err(e) = engine.apply_retention(Timestamp::now()).await {
                        tracing::warn!(error = %e, "retention failed");
                    }
                    for _ in 0..(3600 * 4) {
                        if stopped() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
            });
        }
        shutdown.await;
        stopping.store(true, std::sync::atomic::Ordering::Relaxed);
        stop.notify_waiters();
        if tokio::time::timeout(grace, async { while loops.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            tracing::warn!(
                "stopping took longer than {grace:?}; the rest is abandoned (the outbox keeps it)"
            );
            loops.abort_all();
        }
        // Another node takes this node's users at once instead of after the lease time.
        if let Err(e) = self.store.release_leases(&self.config.node).await {
            tracing::warn!(error = %e, "cannot release the leases");
        }
    }

    /// The mailbox a user is, for diagnostics.
    pub async fn mailbox_of(&self, user: UserId) -> Result<EmailAddress, EngineError> {
        Ok(self.store.user(user).await?.email)
    }
}

enum Outcome {
    Delivered(kalsync_store::DeliveryId),
    Retry,
    Dead,
}

/// Watches the wall clock against the monotonic one: a step back shows as wall time
/// that advanced less than the monotonic time did.
struct WallClock {
    wall: Timestamp,
    mono: std::time::Instant,
}

/// Smaller differences are scheduling noise, not a step.
const CLOCK_STEP: Duration = Duration::from_secs(2);

impl WallClock {
    fn new() -> WallClock {
        WallClock {
            wall: Timestamp::now(),
            mono: std::time::Instant::now(),
        }
    }

    /// How far the wall clock stepped back since the last look, if it did.
    fn stepped_back(&mut self) -> Option<Duration> {
        let (wall, mono) = (Timestamp::now(), std::time::Instant::now());
        let back = step_back(self.wall, mono.duration_since(self.mono), wall);
        (self.wall, self.mono) = (wall, mono);
        back
    }
}

/// How far `now` lies behind `before + elapsed`, when more than [`CLOCK_STEP`].
fn step_back(before: Timestamp, elapsed: Duration, now: Timestamp) -> Option<Duration> {
    let expected = before.checked_add(elapsed).ok()?;
    let behind = Duration::try_from(expected.duration_since(now)).ok()?;
    (behind > CLOCK_STEP).then_some(behind)
}

#[cfg(test)]
mod clock_tests {
    use super::*;

    #[test]
    fn a_step_back_is_seen_and_noise_is_not() {
        let t = Timestamp::from_second(1_795_000_000).expect("t");
        let s = Duration::from_secs;
        assert_eq!(step_back(t, s(10), t + s(10)), None);
        assert_eq!(step_back(t, s(10), t + s(9)), None, "a second of noise");
        assert_eq!(step_back(t, s(10), t + s(100)), None, "a step forward");
        assert_eq!(step_back(t, s(10), t - s(80)), Some(s(90)));
    }
}
