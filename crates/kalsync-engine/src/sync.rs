//! Reading calendars: a user's window read (or a cheap look for changes first), the
//! timeline rebuilt and stored, the status published; which users are due, and the
//! pacing around them (debounce, polls, back-off).

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kalsync_core::{Window, build_timeline_with};
use kalsync_store::{Instance, StoreError, SyncWrite, UserId};
use rand::Rng as _;

use crate::plan::Plan;
use crate::source::{Source, SourceError};
use crate::{CURSOR_KEY, Cursor, Engine, EngineError, FULL_READ_EVERY, SyncOutcome};

impl Engine {
    /// The instance's source in use: the factory's at first use; lease renewals follow
    /// a change of its configuration.
    pub(crate) fn source_for(&self, instance: &Instance) -> Result<Arc<dyn Source>, SourceError> {
        if let Some(s) = self.inner().sources.get(&instance.id) {
            return Ok(s.clone());
        }
        let source = (self.sources)(instance)?;
        self.inner().sources.insert(instance.id, source.clone());
        Ok(source)
    }

    /// `user`'s overrides at `now` that take part (automatic replies only where the
    /// instance reads them).
    async fn overrides_in_force(
        &self,
        instance: &Instance,
        user: UserId,
        now: Timestamp,
    ) -> Result<Vec<kalsync_core::Override>, EngineError> {
        let mut overrides = self.store.overrides(user, now).await?;
        overrides.retain(|o| {
            o.source != kalsync_core::Source::AutomaticReplies
                || instance.settings.automatic_replies.enabled
        });
        Ok(overrides)
    }

    /// When the calendar cannot be read (Exchange down, a permission withdrawn), a
    /// status set by hand, the phone's word or automatic replies still reach the PBX:
    /// the absences last read from the calendar are kept as they were and the other
    /// sources are laid over them again. Nothing is done for a user without them.
    async fn without_the_calendar(
        &self,
        instance: &Instance,
        user: &kalsync_store::User,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let overrides = self.overrides_in_force(instance, user.id, now).await?;
        if overrides.is_empty() {
            return Ok(());
        }
        let stored = self.store.timeline(user.id).await?.unwrap_or_default();
        let window = Window::sync(now, instance.settings.days_ahead);
        let timeline = stored.with_overrides(&overrides, &instance.settings, window);
        if timeline.absences == stored.absences {
            return Ok(());
        }
        let plan = {
            let mut inner = self.inner();
            Plan::pack(&timeline, &instance.settings.time_zone, &mut inner.reasons)
        };
        let next = plan.next_transition(now);
        self.store.save_timeline(user.id, &timeline, next).await?;
        self.inner().plans.insert(user.id, plan);
        self.publish_many(&[(user.id, now)], now).await?;
        self.schedule(user.id, next);
        Ok(())
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
        let revision = {
            // This read covers every change asked for before it starts; one asked for
            // while it runs asks again.
            let mut inner = self.inner();
            inner.last_read.insert(user.id, now);
            inner.dirty.remove(&user.id);
            inner
                .revisions
                .get(&user.id)
                .copied()
                .unwrap_or(user.sync_revision)
        };
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
                {
                    let mut inner = self.inner();
                    let retry = match &e {
                        SourceError::Throttled { retry_after } => Some(*retry_after),
                        SourceError::Failed(_) => Some(Duration::from_secs(30)),
                        // Refused (credentials, rights, a mailbox not found): the admin
                        // must act, but a refusal can pass too (a token revoked as it was
                        // used). Tried once more after a minute, then left to the polls,
                        // so a wrong password cannot lock the account out.
                        _ if inner.refused.insert(user.id) => Some(Duration::from_secs(60)),
                        _ => None,
                    };
                    if let Some(after) = retry {
                        inner.dirty.insert(user.id, now + after);
                        inner.backoff.insert(user.id, now + after);
                    }
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
                // The other sources do not wait for the calendar.
                if let Err(why) = self.without_the_calendar(&instance, &user, now).await {
                    tracing::warn!(user = %user.id, error = %why, "the status cannot follow the other sources");
                }
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
        // The other sources (a status set by hand, the phone, automatic replies) meet the
        // bookings on one timeline, by their precedence.
        // Automatic replies are read with the calendar (they have no notifications);
        // an instance that does not read them has none.
        if instance.settings.automatic_replies.enabled {
            if let Ok(source) = self.source_for(&instance) {
                let answer = source
                    .automatic_replies(std::slice::from_ref(&user.email))
                    .await
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| Err(SourceError::Failed("no answer".into())));
                self.take_automatic_replies(&instance, &user, answer, now)
                    .await?;
            }
        }
        let overrides = self.overrides_in_force(&instance, user.id, now).await?;
        let timeline =
            build_timeline_with(&read.bookings, &overrides, &settings, window).without_bookings();
        let plan = {
            let mut inner = self.inner();
            Plan::pack(&timeline, &instance.settings.time_zone, &mut inner.reasons)
        };
        let next = plan.next_transition(now);
        let note = (!read.rejected.is_empty())
            .then(|| format!("{} booking(s) could not be read", read.rejected.len()));
        let saved = self
            .store
            .save_sync(SyncWrite {
                user: user.id,
                bookings: &read.bookings,
                keep_subjects: settings.subjects_allowed(),
                timeline: &timeline,
                next_change: next,
                at: now,
                note: note.as_deref(),
                revision,
            })
            .await;
        let diff = match saved {
            Ok(saved) => {
                self.inner().revisions.insert(user.id, saved.revision);
                saved.diff
            }
            Err(StoreError::Overtaken { revision }) => {
                // Another node read the user and wrote it after this read began (the
                // user moved while this ran): this read is dropped, and whoever holds
                // the user now reads it once more — this read may have seen a change
                // the other one began too early to see.
                tracing::info!(user = %user.id, "a read was overtaken by another node's; the user is read again");
                self.inner().revisions.insert(user.id, revision);
                self.store.request_sync(user.id).await?;
                return Ok(SyncOutcome::Overtaken);
            }
            Err(e) => return Err(e.into()),
        };
        self.metrics.synced();
        {
            let mut inner = self.inner();
            inner.backoff.remove(&user.id);
            inner.refused.remove(&user.id);
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
        self.publish_many(&[(user.id, now)], now).await?;
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

    /// Starts a read of every user due by `now` (debounce over, or poll due), each on
    /// its own task under the sync concurrency, so a slow mailbox holds up no other.
    /// Each read happens at `at` — a fixed instant (tests), or the wall clock when the
    /// read gets its turn (the sync loop: a read that waited for a turn must not
    /// count from before it waited, or a back-off would be over before it began).
    /// The handles say when each read is done.
    pub fn start_due(
        self: &Arc<Self>,
        now: Timestamp,
        at: ReadAt,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        self.take_due(now)
            .into_iter()
            .map(|user| {
                let engine = self.clone();
                tokio::spawn(async move {
                    let _permit = engine.sync_gate.clone().acquire_owned().await;
                    let now = match at {
                        ReadAt::Fixed(t) => t,
                        ReadAt::Wall => Timestamp::now(),
                    };
                    engine.sync_one(user, now).await;
                })
            })
            .collect()
    }

    /// Reads every user due by `now` and waits for the reads. Returns how many were
    /// read.
    pub async fn sync_due(self: &Arc<Self>, now: Timestamp) -> usize {
        let started = self.start_due(now, ReadAt::Fixed(now));
        let count = started.len();
        for read in started {
            if let Err(e) = read.await {
                tracing::error!(error = %e, "a read failed");
            }
        }
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
        // What was written ahead of a time the clock had not reached may have gone out
        // already: it is taken as what the PBX has, and the state in force goes out again.
        for written in inner.published.values_mut() {
            written.ahead = false;
        }
    }

    /// Takes the users due for a re-read: debounce over, or poll due; not being read
    /// already. They are marked in flight.
    pub(crate) fn take_due(&self, now: Timestamp) -> Vec<UserId> {
        let mut inner = self.inner();
        // Users whose changes are notified are polled only as a safety net.
        let interval = |subscribed: bool| {
            if subscribed {
                self.config.subscribed_poll_interval
            } else {
                self.config.poll_interval
            }
        };
        let stale: Vec<(UserId, Duration)> = inner
            .last_read
            .iter()
            .filter(|(u, _)| !inner.dirty.contains_key(u))
            .map(|(u, at)| (*u, *at, interval(inner.subscribed.contains(u))))
            .filter(|(_, at, every)| {
                SignedDuration::try_from(*every).is_ok_and(|every| now.duration_since(*at) >= every)
            })
            .map(|(u, _, every)| (u, every))
            .collect();
        for (u, every) in stale {
            // Jitter spreads the polls of many users over a tenth of the interval.
            let jitter = rand::rng().random_range(0..=every.as_millis() as u64 / 10);
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

    /// Reads one user taken by [`Engine::start_due`] (a poll, or a read of the window)
    /// and lets them be taken again. Only for a user taken: it ends the user's turn.
    async fn sync_one(&self, user: UserId, now: Timestamp) {
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
    pub(crate) fn next_dirty(&self) -> Option<Timestamp> {
        let inner = self.inner();
        inner
            .dirty
            .iter()
            .filter(|(u, _)| !inner.in_flight.contains(u))
            .map(|(_, t)| *t)
            .min()
    }
}

/// When the reads [`Engine::start_due`] starts take place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAt {
    /// At this instant (a test's `now`).
    Fixed(Timestamp),
    /// By the wall clock, when each read gets its turn.
    Wall,
}
