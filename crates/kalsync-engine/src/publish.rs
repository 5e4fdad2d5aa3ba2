//! Publishing: each user's status at a transition written to the outbox of every
//! target that lacks it — ahead of its time, due at it, so the instant itself only
//! sends — and the schedule of next transitions.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use jiff::Timestamp;
use kalsync_store::{Delivery, DeliveryId, NewDelivery, StoreError, TargetId, UserId};

use crate::status::{StatusKey, StatusUpdate, UPCOMING};
use crate::{Engine, EngineError, Inner};

/// How soon statuses kept ready must be due for [`Engine::sending_ahead`].
pub(crate) const SENDING_SOON: Duration = Duration::from_secs(1);

/// What was last written for a user and target: its status and when it is due, and,
/// for one written ahead of its time, the status in force until then.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub(crate) key: Option<StatusKey>,
    pub(crate) due: Timestamp,
    pub(crate) before: Option<StatusKey>,
    /// Written ahead of its time (and not taken as in force yet).
    pub(crate) ahead: bool,
}

impl Written {
    /// The status this target has, or is about to get, at `t`.
    pub(crate) fn at(&self, t: Timestamp) -> &Option<StatusKey> {
        if self.ahead && t < self.due {
            &self.before
        } else {
            &self.key
        }
    }

    /// What a delivery already written and due says (loaded after a start).
    pub(crate) fn of(key: Option<StatusKey>, due: Timestamp) -> Written {
        Written {
            before: key.clone(),
            key,
            due,
            ahead: false,
        }
    }
}

/// Statuses written ahead of their time, ready to send at it: the outbox row (its
/// payload taken out) and the status it carries. The row stays the record: what is not
/// sent from here — after a restart, on a retry — the delivery loop reads back.
#[derive(Default)]
pub(crate) struct ReadySet {
    by_due: BTreeMap<(Timestamp, DeliveryId), (Delivery, StatusUpdate)>,
    of: HashMap<(UserId, TargetId), (Timestamp, DeliveryId)>,
}

impl ReadySet {
    /// Keeps a delivery just written ahead.
    fn keep(&mut self, mut delivery: Delivery, status: StatusUpdate) {
        delivery.payload = serde_json::Value::Null;
        let key = (delivery.due, delivery.id);
        if let Some(old) = self.of.insert((delivery.user, delivery.target), key) {
            self.by_due.remove(&old);
        }
        self.by_due.insert(key, (delivery, status));
    }

    /// Forgets what the outbox superseded when a status due at `at` was written for the
    /// user and target: everything pending, or, for one written ahead, what is due at or
    /// after it (the store's rule).
    fn supersede(&mut self, user: UserId, target: TargetId, at: Timestamp, ahead: bool) {
        if let Some(key) = self.of.get(&(user, target)).copied() {
            if !ahead || key.0 >= at {
                self.of.remove(&(user, target));
                self.by_due.remove(&key);
            }
        }
    }

    /// Takes those due by `now` of users `held` says this node still holds.
    pub(crate) fn take_due(
        &mut self,
        now: Timestamp,
        held: impl Fn(UserId) -> bool,
    ) -> Vec<(Delivery, StatusUpdate)> {
        let later = self
            .by_due
            .split_off(&(now + Duration::from_nanos(1), DeliveryId(uuid::Uuid::nil())));
        let due = std::mem::replace(&mut self.by_due, later);
        due.into_values()
            .filter(|(d, _)| {
                self.of.remove(&(d.user, d.target));
                held(d.user)
            })
            .collect()
    }

    /// When the earliest status kept ready is due.
    pub(crate) fn first_due(&self) -> Option<Timestamp> {
        self.by_due.keys().next().map(|(t, _)| *t)
    }

    /// Forgets the users this node no longer holds.
    pub(crate) fn retain(&mut self, held: impl Fn(UserId) -> bool) {
        self.by_due.retain(|_, (d, _)| held(d.user));
        self.of.retain(|(u, _), _| held(*u));
    }
}

impl Inner {
    /// The targets a user has a status written ahead for, due after `now`, and when.
    pub(crate) fn ahead_of(&self, user: UserId, now: Timestamp) -> Vec<(TargetId, Timestamp)> {
        let Some((_, company)) = self.held.get(&user) else {
            return Vec::new();
        };
        self.company_targets
            .get(company)
            .into_iter()
            .flatten()
            .filter_map(|t| {
                self.published
                    .get(&(user, t.id))
                    .filter(|w| w.ahead && w.due > now)
                    .map(|w| (t.id, w.due))
            })
            .collect()
    }

    /// The status a user's plan has at `t`.
    pub(crate) fn key_at(&self, user: UserId, t: Timestamp) -> Option<StatusKey> {
        let (u, _) = self.held.get(&user)?;
        let plan = self.plans.get(&user)?;
        let instance = self.instances.get(&u.instance)?;
        plan.around(t, UPCOMING, &instance.settings.time_zone, &self.reasons)
            .at(t)
            .map(StatusKey::of)
    }
}

impl Engine {
    pub(crate) fn schedule(&self, user: UserId, next: Option<Timestamp>) {
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
    /// service did not set. An `at` after `now` is written ahead of its time.
    ///
    /// A user may have a status written ahead for a coming transition; what is written
    /// now replaces it in the outbox, so afterwards the coming transition is written
    /// again as the user's plan now has it — or withdrawn, where the plan no longer
    /// changes anything then.
    pub(crate) async fn publish_many(
        &self,
        items: &[(UserId, Timestamp)],
        now: Timestamp,
    ) -> Result<usize, EngineError> {
        let coming: Vec<(UserId, TargetId, Timestamp)> = {
            let inner = self.inner();
            items
                .iter()
                .flat_map(|(user, at)| {
                    inner
                        .ahead_of(*user, now)
                        .into_iter()
                        .filter(move |(_, due)| due > at)
                        .map(move |(target, due)| (*user, target, due))
                })
                .collect()
        };
        let mut written = self.write_statuses(items, now).await?;
        if coming.is_empty() {
            return Ok(written);
        }
        // Withdrawn: a status written ahead that the plan no longer has, where nothing
        // else takes its place (the status in force before it goes on).
        let withdraw: Vec<(UserId, TargetId, Timestamp)> = {
            let mut inner = self.inner();
            let mut withdraw = Vec::new();
            for (user, target, due) in &coming {
                let planned = inner.key_at(*user, *due);
                let Some(w) = inner.published.get_mut(&(*user, *target)) else {
                    continue;
                };
                if w.ahead && w.due == *due && planned != w.key && planned == w.before {
                    w.key = w.before.clone();
                    w.ahead = false;
                    withdraw.push((*user, *target, *due));
                }
            }
            withdraw
        };
        for (user, target, due) in withdraw {
            self.store.withdraw_ahead(user, target, due).await?;
            self.inner().ready.supersede(user, target, due, true);
        }
        let mut again: Vec<(UserId, Timestamp)> = coming.iter().map(|(u, _, d)| (*u, *d)).collect();
        again.sort();
        again.dedup();
        written += self.write_statuses(&again, now).await?;
        Ok(written)
    }

    /// [`Engine::publish_many`]'s writing: each `(user, at)`'s status for each target
    /// that lacks it at `at`.
    async fn write_statuses(
        &self,
        items: &[(UserId, Timestamp)],
        now: Timestamp,
    ) -> Result<usize, EngineError> {
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
                let key: Option<StatusKey> = timeline.at(*at).map(StatusKey::of);
                let needing: Vec<TargetId> = targets
                    .iter()
                    .filter(|target| {
                        match (
                            inner.published.get(&(*user, target.id)).map(|w| w.at(*at)),
                            &key,
                        ) {
                            (None, None) => false,
                            (Some(old), new) => old != new,
                            (None, Some(_)) => true,
                        }
                    })
                    .map(|t| t.id)
                    .collect();
                if !needing.is_empty() {
                    work.push((u.clone(), instance.clone(), timeline, *at, key, needing));
                }
            }
        }
        let mut new = Vec::new();
        let mut keys = Vec::new();
        let mut statuses = Vec::new();
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
                    ahead: at > now,
                });
                keys.push(((user.id, target), at, key.clone()));
                statuses.push((at > now).then(|| status.clone()));
            }
        }
        if new.is_empty() {
            return Ok(0);
        }
        // The outbox returns the rows in the order they were given.
        let rows = self.store.enqueue_many(new).await?;
        let written = rows.len();
        {
            let mut inner = self.inner();
            for (delivery, status) in rows.into_iter().zip(statuses) {
                inner.ready.supersede(
                    delivery.user,
                    delivery.target,
                    delivery.due,
                    status.is_some(),
                );
                if let Some(status) = status {
                    inner.ready.keep(delivery, status);
                }
            }
            for (k, at, key) in keys {
                // What was in force before this one: the one it follows, or, for one
                // that replaces a later one written ahead, what that one followed.
                let before = match inner.published.get(&k) {
                    Some(w) if w.ahead && w.due >= at => w.before.clone(),
                    Some(w) => w.key.clone(),
                    None => None,
                };
                inner.published.insert(
                    k,
                    Written {
                        key,
                        due: at,
                        before,
                        ahead: at > now,
                    },
                );
                if at > now {
                    inner.ahead_due.insert(at);
                }
            }
        }
        self.delivery_wake.notify_one();
        Ok(written)
    }

    /// Publishes every transition due by `now`, and writes those due within
    /// `publish_ahead` ahead of their time (at most one ahead per user), so that the
    /// instant itself only sends: the status in force goes to the outbox of each target
    /// that lacks it, and each user's next transition is scheduled. Returns how many
    /// deliveries were written. The publish loop's one step.
    pub async fn publish_due(&self, now: Timestamp) -> Result<usize, EngineError> {
        let horizon = now.checked_add(self.config.publish_ahead).unwrap_or(now);
        let due: Vec<(UserId, Timestamp)> = {
            let mut inner = self.inner();
            let candidates: Vec<(Timestamp, UserId)> = inner
                .schedule
                .range(..=(horizon, UserId(uuid::Uuid::max())))
                .copied()
                .collect();
            let mut due = Vec::with_capacity(candidates.len());
            for (t, u) in candidates {
                // One transition ahead per user: a later one waits until the earlier is
                // in force.
                if t > now && !inner.ahead_of(u, now).is_empty() {
                    continue;
                }
                inner.schedule.remove(&(t, u));
                inner.next_of.remove(&u);
                // Late (a clock jump, a busy node): the state in force now, once.
                let at = if t <= now {
                    inner.plans.get(&u).map_or(t, |p| p.caught_up(t, now))
                } else {
                    t
                };
                due.push((u, at));
            }
            due
        };
        if due.is_empty() {
            return Ok(0);
        }
        let began = std::time::Instant::now();
        // In chunks, so the first deliveries go out while later ones are still written.
        const CHUNK: usize = 1000;
        let mut written = 0;
        for (n, chunk) in due.chunks(CHUNK).enumerate() {
            match self.publish_many(chunk, now).await {
                Ok(count) => written += count,
                Err(e) => {
                    tracing::warn!(error = %e, users = due.len() - n * CHUNK, "transitions could not be published; retrying in a second");
                    for (user, at) in &due[n * CHUNK..] {
                        self.schedule(*user, Some((*at).max(now + Duration::from_secs(1))));
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
        tracing::debug!(
            users = due.len(),
            written,
            ms = began.elapsed().as_millis(),
            "transitions published"
        );
        Ok(written)
    }

    /// When the earliest status written ahead becomes due (the delivery loop wakes
    /// then); those already due are forgotten.
    pub fn next_ahead(&self, now: Timestamp) -> Option<Timestamp> {
        let mut inner = self.inner();
        while inner.ahead_due.first().is_some_and(|t| *t <= now) {
            inner.ahead_due.pop_first();
        }
        inner.ahead_due.first().copied()
    }

    /// After a start: every known user's stored timeline is scheduled, and the status in
    /// force now goes out where the PBX does not have it yet — the latest state only,
    /// not a replay of what was missed.
    pub async fn catch_up(&self, now: Timestamp) -> Result<usize, EngineError> {
        self.renew_leases(now).await?;
        let users: Vec<(UserId, Timestamp)> =
            self.inner().plans.keys().map(|u| (*u, now)).collect();
        let written = self.publish_many(&users, now).await?;
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

    /// Whether statuses written ahead go out now: some kept ready are due within a
    /// second, or a pass is sending those kept ready. Chores that read many
    /// rows (a lease renewal) wait meanwhile, so the instant has the cores to itself.
    pub fn sending_ahead(&self, now: Timestamp) -> bool {
        let inner = self.inner();
        inner.sending_ready > 0
            || inner
                .ready
                .first_due()
                .is_some_and(|t| t <= now + SENDING_SOON)
    }

    /// When the earliest scheduled transition is.
    pub fn next_scheduled(&self) -> Option<Timestamp> {
        self.inner().schedule.first().map(|(t, _)| *t)
    }
}
