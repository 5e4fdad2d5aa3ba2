//! Which users this node holds: leases renewed and taken, each held user's instance,
//! targets and stored plan loaded, requests other nodes left for them claimed.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use kalsync_store::{DeliveryState, Instance, InstanceId, User, UserId};

use crate::plan::Plan;
use crate::source::Source;
use crate::status::StatusUpdate;
use crate::{Engine, EngineError};

impl Engine {
    /// Reads requests other nodes (or an admin's change of an instance) left for this
    /// node's users. Their instances are read from the store first, so the reads use
    /// rules and a source saved a moment ago, not those of the last refresh.
    pub async fn claim_requests(&self, now: Timestamp) -> Result<usize, EngineError> {
        let users = self.store.claim_sync_requests(&self.config.node).await?;
        if users.is_empty() {
            return Ok(0);
        }
        let instances: std::collections::BTreeSet<InstanceId> = {
            let inner = self.inner();
            users
                .iter()
                .filter_map(|u| inner.held.get(u).map(|(user, _)| user.instance))
                .collect()
        };
        for id in instances {
            // One gone or unreadable is left to the reads and the next refresh.
            let Ok(instance) = self.store.instance(id).await else {
                continue;
            };
            // A new source for a changed configuration (the factory keeps the one it
            // has otherwise), as at a refresh.
            let source = (self.sources)(&instance).ok();
            let mut inner = self.inner();
            if let Some(source) = source
                && inner.sources.contains_key(&id)
            {
                inner.sources.insert(id, source);
            }
            inner.instances.insert(id, Arc::new(instance));
        }
        for user in &users {
            self.mark_dirty(*user, now);
        }
        Ok(users.len())
    }

    /// Renews this node's leases and takes free users up to its fair share of them
    /// (the users divided among the nodes alive, at most `max_users`) — or lets a
    /// surplus go when more nodes share them now — then reads
    /// every active instance's users and targets: newly held users are read at once (or
    /// polled on schedule when read lately), users no longer held leave the schedule.
    /// Returns how many users this node holds.
    pub async fn renew_leases(&self, now: Timestamp) -> Result<usize, EngineError> {
        let ttl = SignedDuration::try_from(self.config.lease_ttl)
            .unwrap_or(SignedDuration::from_secs(30));
        // Each node holds its fair share of the users: a node over it (others joined)
        // lets the surplus go, users with no transition soon first; one under it takes
        // free users up to it.
        let census = self.store.lease_census(&self.config.node, now, ttl).await?;
        let share = census.share(self.config.max_users);
        let mut leased_before = self.inner().leased;
        if leased_before > share + share / 50 {
            let surplus = self.surplus(leased_before - share, now);
            if !surplus.is_empty() {
                tracing::info!(
                    users = surplus.len(),
                    nodes = census.nodes,
                    "more nodes share the users: some are left to them"
                );
                self.store
                    .release_users(&self.config.node, &surplus)
                    .await?;
                leased_before -= surplus.len();
            }
        }
        let leased: std::collections::HashSet<UserId> = self
            .store
            .lease_users(
                &self.config.node,
                now,
                ttl,
                share.saturating_sub(leased_before),
            )
            .await?
            .into_iter()
            .collect();
        {
            let mut inner = self.inner();
            inner.leased = leased.len();
            inner.takeover_at = census.next_expiry;
        }
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
            instances.insert(instance.id, Arc::new(instance));
        }
        // Only this node's users are read, not every user of every instance.
        for user in self.store.held_users(&self.config.node).await? {
            let Some(instance) = instances.get(&user.instance) else {
                continue;
            };
            if !leased.contains(&user.id) {
                continue;
            }
            mailboxes.insert((instance.id, user.email.to_string()), user.id);
            held.insert(user.id, (Arc::new(user), instance.company));
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
        // The sources in use follow the instances just read (the factory keeps one
        // connection per instance, and makes a new one when its configuration changed).
        // Only here, from rows read now: a read's older snapshot never takes a
        // connection back to the configuration an admin just replaced.
        let in_use: Vec<InstanceId> = self.inner().sources.keys().copied().collect();
        let sources: HashMap<InstanceId, Arc<dyn Source>> = in_use
            .iter()
            .filter_map(|id| instances.get(id))
            .filter_map(|i| (self.sources)(i).ok().map(|s| (i.id, s)))
            .collect();
        let (changed, count, handed, fresh) = {
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
                    if d.state == DeliveryState::Pending && d.due > now {
                        // Written ahead before a restart: sent at its time unless the
                        // transition is written again meanwhile. What the target has
                        // until then is not known here; the next status is written as
                        // for a target this node has told nothing.
                        inner.ahead_due.insert(d.due);
                        continue;
                    }
                    inner
                        .published
                        .entry((d.user, d.target))
                        .or_insert_with(|| crate::publish::Written::of(key, d.due));
                }
            }
            inner.last_read.retain(|u, _| held.contains_key(u));
            inner.subscribed.retain(|u| held.contains_key(u));
            inner.refused.retain(|u| held.contains_key(u));
            // A user newly held begins from its record's revision (another node may
            // have written it meanwhile).
            let kept: std::collections::HashSet<UserId> = inner
                .held
                .keys()
                .filter(|u| held.contains_key(*u))
                .copied()
                .collect();
            inner.revisions.retain(|u, _| kept.contains(u));
            // Reads owed to users another node took (their lease ran out here: a stall, a
            // clock step) go to that node, as at a clean shutdown.
            let handed: Vec<UserId> = inner
                .dirty
                .keys()
                .chain(inner.in_flight.iter())
                .filter(|u| !held.contains_key(*u))
                .copied()
                .collect();
            inner.dirty.retain(|u, _| held.contains_key(u));
            inner.backoff.retain(|u, _| held.contains_key(u));
            inner.plans.retain(|u, _| held.contains_key(u));
            inner.published.retain(|(u, _), _| held.contains_key(u));
            inner.ready.retain(|u| held.contains_key(&u));
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
            let fresh: Vec<UserId> = held
                .keys()
                .filter(|u| !inner.held.contains_key(*u))
                .copied()
                .collect();
            let changed = held.len() != inner.held.len() || !fresh.is_empty();
            inner.by_mailbox = mailboxes;
            inner.company_targets = company_targets;
            inner.targets_by_id = targets_by_id;
            let count = held.len();
            inner.held = held;
            inner.instances = instances;
            inner.sources = sources;
            (changed, count, handed, fresh)
        };
        // Users taken over (from a node that stopped, or let go) are scheduled from their
        // stored timelines at once: their transitions do not wait for their re-read.
        let scheduled: Vec<(UserId, Option<Timestamp>)> = {
            let inner = self.inner();
            fresh
                .iter()
                .filter(|u| !inner.next_of.contains_key(*u))
                .filter_map(|u| inner.plans.get(u).map(|p| (*u, p.next_transition(now))))
                .collect()
        };
        for (user, next) in scheduled {
            self.schedule(user, next);
        }
        self.metrics.holding(count);
        if changed {
            self.held_version.send_modify(|v| *v += 1);
        }
        if !handed.is_empty() {
            if let Err(e) = self.store.request_syncs(&handed).await {
                tracing::warn!(users = handed.len(), error = %e, "cannot hand reads over to the nodes that took the users");
            }
        }
        Ok(count)
    }

    /// Up to `count` held users to give up to other nodes (a read owed to one is handed
    /// over with it): those not being read, with
    /// nothing written ahead and no transition within two refreshes and the time
    /// statuses are written ahead — so none is late for the move — highest ids first
    /// (free users are taken lowest first).
    fn surplus(&self, count: usize, now: Timestamp) -> Vec<UserId> {
        let inner = self.inner();
        let soon = now
            .checked_add(2 * self.config.refresh_interval + self.config.publish_ahead)
            .unwrap_or(now);
        let mut quiet: Vec<UserId> = inner
            .held
            .keys()
            .filter(|u| {
                !inner.in_flight.contains(u)
                    && inner.next_of.get(u).is_none_or(|t| *t > soon)
                    && inner.ahead_of(**u, now).is_empty()
            })
            .copied()
            .collect();
        quiet.sort_unstable_by(|a, b| b.cmp(a));
        quiet.truncate(count);
        quiet
    }

    /// When this node renews its leases next to take over a node that stopped: the
    /// moment that node's leases run out.
    pub(crate) fn takeover_at(&self) -> Option<Timestamp> {
        self.inner().takeover_at
    }

    /// Packs the stored timelines of the users this node holds and has no plan for yet,
    /// a page at a time. A timeline that cannot be read sends its user to a re-read.
    pub(crate) async fn load_plans(
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
}
