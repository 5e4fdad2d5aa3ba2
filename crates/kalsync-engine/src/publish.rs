//! Publishing: each user's status at a transition written to the outbox of every
//! target that lacks it, and the schedule of next transitions.

use std::time::Duration;

use jiff::Timestamp;
use kalsync_store::{NewDelivery, StoreError, TargetId, UserId};

use crate::status::{StatusKey, StatusUpdate, UPCOMING};
use crate::{Engine, EngineError};

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
    /// service did not set.
    pub(crate) async fn publish_many(
        &self,
        items: &[(UserId, Timestamp)],
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
                    ahead: false,
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

    /// Publishes every transition due by `now`: the status in force goes to the outbox
    /// of each target that lacks it, and each user's next transition is scheduled.
    /// Returns how many deliveries were written. The publish loop's one step.
    pub async fn publish_due(&self, now: Timestamp) -> Result<usize, EngineError> {
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
        self.renew_leases(now).await?;
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
}
