//! PBX targets as the engine sees them: something that takes a status and says whether
//! it landed, must be retried, or will never land.

use std::time::Duration;

use async_trait::async_trait;
use rand::Rng as _;

use crate::status::StatusUpdate;

/// Why a delivery did not land.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Try again later (network, 5xx, 429), after `retry_after` when the target said so.
    #[error("{message}")]
    Retry {
        /// What happened.
        message: String,
        /// The target's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// The target is gone for good (webhook 410): it is switched off.
    #[error("the target is gone: {0}")]
    Gone(String),
    /// The target refused this status for good (4xx): a dead letter at once.
    #[error("the target refused it: {0}")]
    Rejected(String),
}

/// What a target knows of one delivery besides its status: enough to apply it once and
/// in order, nothing of how the outbox keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Envelope {
    /// The same across retries: an idempotent target applies it once.
    pub id: uuid::Uuid,
    /// Grows with each status for the same user and target: an older one arriving late
    /// is not applied over a newer.
    pub sequence: u64,
    /// Which attempt this is (1 for the first).
    pub attempt: u32,
}

impl Envelope {
    /// The envelope of an outbox delivery about to be tried.
    pub fn of(delivery: &kalsync_store::Delivery) -> Envelope {
        Envelope {
            id: delivery.id.0,
            sequence: delivery.sequence,
            attempt: delivery.attempts.saturating_add(1),
        }
    }
}

/// A PBX adapter: webhook, SIP presence, AMI, simulator.
#[async_trait]
pub trait Target: Send + Sync {
    /// Delivers one status. `envelope.id` is stable across retries: an idempotent target
    /// applies it once.
    async fn deliver(
        &self,
        envelope: &Envelope,
        status: &StatusUpdate,
    ) -> Result<(), DeliveryError>;

    /// How many statuses one request may carry (a PBX that takes them in batches);
    /// 1, the default, for one at a time.
    fn batch_size(&self) -> usize {
        1
    }

    /// Delivers several statuses — of different users, each in its own envelope — in
    /// one request: all land or none (one result for the lot). Called only with at
    /// most [`Target::batch_size`] of them; by default one [`Target::deliver`] each.
    async fn deliver_batch(&self, items: &[(Envelope, StatusUpdate)]) -> Result<(), DeliveryError> {
        for (envelope, status) in items {
            self.deliver(envelope, status).await?;
        }
        Ok(())
    }
}

/// How often and how far apart a delivery is retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts before a dead letter.
    pub max_attempts: u32,
    /// The first wait.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            base: Duration::from_secs(2),
            max: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`: the target's `Retry-After` when it gave one
    /// (capped at `max`), else exponential back-off with jitter (half fixed, half random,
    /// so a crowd of retries spreads out).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max);
        }
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max);
        let half = exp / 2;
        half + Duration::from_millis(rand::rng().random_range(0..=half.as_millis() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_grows_with_jitter_and_honours_retry_after() {
        let p = RetryPolicy::default();
        for attempt in 0..5 {
            let d = p.delay(attempt, None);
            let exp = Duration::from_secs(2 << attempt);
            assert!(d >= exp / 2 && d <= exp, "{attempt}: {d:?}");
        }
        assert_eq!(
            p.delay(3, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            p.delay(3, Some(Duration::from_secs(7200))),
            Duration::from_secs(600)
        );
        assert!(p.delay(30, None) <= Duration::from_secs(600));
    }
}
