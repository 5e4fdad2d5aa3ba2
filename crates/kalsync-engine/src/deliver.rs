//! Delivering: due outbox entries sent to their targets, acknowledged, retried with
//! back-off, or given up as dead letters.

use std::sync::Arc;

use jiff::Timestamp;
use kalsync_store::{Delivery, StoreError};

use crate::status::StatusUpdate;
use crate::target::{DeliveryError, Envelope, Target};
use crate::{DeliveryPass, Engine, EngineError};

impl Engine {
    /// The target, built again when its configuration changed since.
    pub(crate) fn target_for(
        &self,
        target: &kalsync_store::Target,
    ) -> Result<Arc<dyn Target>, String> {
        let fingerprint = target.config.fingerprint();
        if let Some((kept, t)) = self.inner().targets.get(&target.id) {
            if *kept == fingerprint {
                return Ok(t.clone());
            }
        }
        let built = (self.targets)(target)?;
        self.inner()
            .targets
            .insert(target.id, (fingerprint, built.clone()));
        Ok(built)
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
                Ok(Ok(DeliveryOutcome::Delivered(id))) => {
                    pass.delivered += 1;
                    delivered.push(id);
                }
                Ok(Ok(DeliveryOutcome::Retry)) => pass.retried += 1,
                Ok(Ok(DeliveryOutcome::Dead)) => pass.dead += 1,
                Ok(Err(e)) => tracing::warn!(error = %e, "a delivery could not be recorded"),
                Err(e) => tracing::error!(error = %e, "a delivery task failed"),
            }
        }
        if !delivered.is_empty() {
            self.store.mark_delivered_many(&delivered, now).await?;
        }
        Ok(pass)
    }

    /// Sends one delivery to its target and records what came of it — except an
    /// acknowledgement, which [`Engine::deliver_due`] records with the rest of its
    /// pass in one write (so this is only ever called from there).
    async fn deliver_one(
        &self,
        delivery: Delivery,
        now: Timestamp,
    ) -> Result<DeliveryOutcome, EngineError> {
        let why = match self.attempt(&delivery, now).await? {
            Attempt::Delivered => {
                self.metrics
                    .delivered(Timestamp::now().duration_since(delivery.due));
                return Ok(DeliveryOutcome::Delivered(delivery.id));
            }
            Attempt::Retry => return Ok(DeliveryOutcome::Retry),
            Attempt::Unknown => return Ok(DeliveryOutcome::Dead),
            Attempt::GiveUp(why) => why,
        };
        self.dead_letter(&delivery, &why).await?;
        Ok(DeliveryOutcome::Dead)
    }

    /// One try: sent, or put off (the retry recorded), or given up with the reason.
    async fn attempt(&self, delivery: &Delivery, now: Timestamp) -> Result<Attempt, EngineError> {
        let cached = self.inner().targets_by_id.get(&delivery.target).cloned();
        let target = match cached {
            Some(t) => t,
            None => match self.store.target(delivery.target).await {
                Ok(t) => Arc::new(t),
                Err(StoreError::NotFound(_)) => return Ok(Attempt::Unknown),
                Err(e) => return Err(e.into()),
            },
        };
        if !target.active {
            return Ok(Attempt::GiveUp("the target is switched off".into()));
        }
        let status: StatusUpdate = match serde_json::from_value(delivery.payload.clone()) {
            Ok(s) => s,
            Err(e) => return Ok(Attempt::GiveUp(format!("unreadable payload: {e}"))),
        };
        let adapter = match self.target_for(&target) {
            Ok(a) => a,
            Err(e) => return Ok(Attempt::GiveUp(format!("target configuration: {e}"))),
        };
        match adapter.deliver(&Envelope::of(delivery), &status).await {
            Ok(()) => Ok(Attempt::Delivered),
            Err(DeliveryError::Retry {
                message,
                retry_after,
            }) => {
                if delivery.attempts + 1 >= self.config.retry.max_attempts {
                    tracing::warn!(target = %target.id, delivery = %delivery.id, "retry budget spent");
                    return Ok(Attempt::GiveUp(message));
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
                Ok(Attempt::Retry)
            }
            Err(DeliveryError::Gone(message)) => {
                self.store.set_target_active(target.id, false).await?;
                tracing::warn!(target = %target.id, "the target answered 410 Gone: switched off");
                Ok(Attempt::GiveUp(message))
            }
            Err(DeliveryError::Rejected(message)) => Ok(Attempt::GiveUp(message)),
        }
    }

    /// Gives a delivery up: the whole reason to the log, the company's view of it
    /// (without addresses) to the store; the target may lack this user's status, so
    /// the next change writes it again.
    async fn dead_letter(&self, delivery: &Delivery, why: &str) -> Result<(), EngineError> {
        tracing::warn!(delivery = %delivery.id, target = %delivery.target, error = %why, "dead letter");
        self.store
            .mark_dead(delivery.id, &kalsync_core::redact::shown_error(why))
            .await?;
        self.inner()
            .published
            .remove(&(delivery.user, delivery.target));
        self.metrics.dead_letter();
        Ok(())
    }
}

/// What came of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeliveryOutcome {
    /// The target took it (to be acknowledged).
    Delivered(kalsync_store::DeliveryId),
    /// To be tried again.
    Retry,
    /// Given up (or its target no longer exists).
    Dead,
}

/// One try's result, before it is recorded.
enum Attempt {
    Delivered,
    Retry,
    /// The target is gone from the store: nothing to record the dead letter against.
    Unknown,
    GiveUp(String),
}
