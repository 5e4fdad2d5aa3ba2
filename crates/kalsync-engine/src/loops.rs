//! The engine's loops — sync (with the leases), publish, deliver, retention — each a
//! loop around public steps, all stopped by one cancellation token with a bounded
//! drain; and the watch on the wall clock that catches a step back.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use kalsync_store::UserId;

use crate::Engine;

impl Engine {
    /// Runs the loops until `shutdown` is cancelled; work in flight then finishes
    /// within `grace` (what is left stays in the outbox), and the leases are released.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken, grace: Duration) {
        // Leases this node's name still holds: it stopped without releasing them, and
        // the changes it was told of but had not read were lost with it.
        match self
            .store
            .recover_leases(&self.config.node, Timestamp::now())
            .await
        {
            Ok(0) => {}
            Ok(users) => tracing::warn!(
                users,
                "this node stopped without a clean shutdown; its users are read again"
            ),
            Err(e) => tracing::error!(error = %e, "cannot recover this node's leases"),
        }
        if let Err(e) = self.renew_leases(Timestamp::now()).await {
            tracing::error!(error = %e, "cannot read the users");
        }
        if let Err(e) = self.catch_up(Timestamp::now()).await {
            tracing::error!(error = %e, "cannot catch up after the start");
        }
        let mut loops = tokio::task::JoinSet::new();
        loops.spawn(self.clone().sync_loop(shutdown.clone()));
        loops.spawn(self.clone().publish_loop(shutdown.clone()));
        loops.spawn(self.clone().deliver_loop(shutdown.clone()));
        loops.spawn(self.clone().retention_loop(shutdown.clone()));
        loops.spawn(self.clone().automatic_replies_loop(shutdown.clone()));
        shutdown.cancelled().await;
        if tokio::time::timeout(grace, async { while loops.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            tracing::warn!(
                "stopping took longer than {grace:?}; the rest is abandoned (the outbox keeps it)"
            );
            loops.abort_all();
        }
        // Changes notified but not read yet are left to the node that takes the users
        // next, and from now on notifications go to the store for it, not to this
        // stopped engine.
        let unread: Vec<UserId> = {
            let mut inner = self.inner();
            inner.held.clear();
            inner.subscribed.clear();
            inner.by_mailbox.clear();
            inner.dirty.drain().map(|(u, _)| u).collect()
        };
        self.held_version.send_modify(|v| *v += 1);
        if let Err(e) = self.store.request_syncs(&unread).await {
            tracing::warn!(users = unread.len(), error = %e, "cannot leave reads to another node");
        }
        // Another node takes this node's users at once instead of after the lease time.
        if let Err(e) = self.store.release_leases(&self.config.node).await {
            tracing::warn!(error = %e, "cannot release the leases");
        }
    }

    /// Leases renewed every `refresh_interval`, other nodes' requests claimed, and the
    /// due reads started, each on its own.
    async fn sync_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let mut last_refresh = tokio::time::Instant::now();
        let mut renewal_owed = false;
        let mut put_off_since: Option<tokio::time::Instant> = None;
        while !shutdown.is_cancelled() {
            // A node that stopped without releasing its users is taken over the moment
            // its leases run out, not at the next refresh after.
            if self.takeover_at().is_some_and(|t| Timestamp::now() > t) {
                // Once: a failed renewal waits for the next refresh.
                self.inner().takeover_at = None;
                renewal_owed = true;
            }
            if last_refresh.elapsed() >= self.config.refresh_interval {
                renewal_owed = true;
            }
            // A renewal reads every held user: at the top of the hour it waits until the
            // statuses written ahead are out, at most `RENEWAL_PUT_OFF` (far within the
            // lease time).
            let put_off = renewal_owed
                && self.sending_ahead(Timestamp::now())
                && put_off_since
                    .get_or_insert_with(tokio::time::Instant::now)
                    .elapsed()
                    < RENEWAL_PUT_OFF;
            if renewal_owed && !put_off {
                renewal_owed = false;
                put_off_since = None;
                last_refresh = tokio::time::Instant::now();
                match self.renew_leases(Timestamp::now()).await {
                    Ok(held) => tracing::debug!(
                        held,
                        ms = last_refresh.elapsed().as_millis(),
                        "leases renewed"
                    ),
                    Err(e) => tracing::warn!(error = %e, "cannot refresh the users"),
                }
            }
            if let Err(e) = self.claim_requests(Timestamp::now()).await {
                tracing::warn!(error = %e, "cannot read requests from other nodes");
            }
            // The reads run on their own: this loop does not wait for them.
            drop(self.start_due(Timestamp::now(), crate::ReadAt::Wall));
            let takeover = self
                .takeover_at()
                .and_then(|t| t.checked_add(Duration::from_millis(50)).ok());
            let next = match (self.next_dirty(), takeover) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let mut wait = until(next, Duration::from_millis(500));
            if put_off {
                wait = wait.min(Duration::from_millis(100));
            }
            tokio::select! {
                () = self.sync_wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => {}
            }
        }
    }

    /// Due transitions published; a step back of the wall clock sends the state in
    /// force again.
    async fn publish_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let mut clock = WallClock::new();
        while !shutdown.is_cancelled() {
            // The wall clock stepped back (an NTP correction after a forward step):
            // statuses sent early are taken back by the state in force.
            if let Some(back) = clock.stepped_back() {
                tracing::warn!(
                    seconds = back.as_secs_f64(),
                    "the wall clock stepped back; the status in force now goes out again"
                );
                self.clock_stepped_back(back);
                if let Err(e) = self.catch_up(Timestamp::now()).await {
                    tracing::warn!(error = %e, "cannot catch up after the clock step");
                }
            }
            if let Err(e) = self.publish_due(Timestamp::now()).await {
                tracing::warn!(error = %e, "scheduling failed");
            }
            // Transitions are written `publish_ahead` before their time. One still
            // within that after a pass waits for its user's earlier one to be in force.
            let ahead = SignedDuration::try_from(self.config.publish_ahead).unwrap_or_default();
            let first = self
                .next_scheduled()
                .map(|t| t.checked_sub(ahead).unwrap_or(t));
            let mut wait = until(first, Duration::from_millis(250));
            if wait.is_zero() {
                wait = Duration::from_millis(100);
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => {}
            }
        }
    }

    /// Passes over the outbox, back to back while there is work; one last pass after
    /// the stop, so what was written goes out.
    async fn deliver_loop(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            match self.deliver_due(Timestamp::now()).await {
                Ok(pass) if pass.delivered + pass.retried + pass.dead > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "delivery pass failed"),
            }
            if shutdown.is_cancelled() {
                break;
            }
            // Statuses written ahead are sent the moment they are due.
            let wait = until(
                self.next_ahead(Timestamp::now()),
                Duration::from_millis(250),
            );
            tokio::select! {
                () = self.delivery_wake.notified() => {}
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Held users' automatic replies read every `automatic_replies_interval`, jittered
    /// by up to a tenth so nodes and restarts spread their reads.
    async fn automatic_replies_loop(self: Arc<Self>, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let every = self.config.automatic_replies_interval;
            let jitter = every.mul_f64(rand::random::<f64>() / 10.0);
            tokio::select! {
                () = tokio::time::sleep(every + jitter) => {}
                () = shutdown.cancelled() => return,
            }
            if let Err(e) = self.read_automatic_replies(Timestamp::now()).await {
                tracing::warn!(error = %e, "automatic replies could not be read");
            }
        }
    }

    /// Bookings past the retention deleted hourly.
    async fn retention_loop(self: Arc<Self>, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            if let Err(e) = self.apply_retention(Timestamp::now()).await {
                tracing::warn!(error = %e, "retention failed");
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(3600)) => {}
                () = shutdown.cancelled() => {}
            }
        }
    }
}

/// How long a lease renewal waits at most for statuses written ahead to go out.
const RENEWAL_PUT_OFF: Duration = Duration::from_secs(5);

/// How long to wait for `next`, at most `longest`.
fn until(next: Option<Timestamp>, longest: Duration) -> Duration {
    next.map(|t| Duration::try_from(t.duration_since(Timestamp::now())).unwrap_or(Duration::ZERO))
        .unwrap_or(longest)
        .min(longest)
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
