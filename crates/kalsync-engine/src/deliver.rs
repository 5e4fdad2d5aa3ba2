//! Delivering: due outbox entries sent to their targets, acknowledged, retried with
//! back-off, or given up as dead letters.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use kalsync_store::{Delivery, StoreError, TargetId};

use crate::status::StatusUpdate;
use crate::target::{DeliveryError, Envelope, Target};
use crate::{DeliveryPass, Engine, EngineError, Inner};

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

    /// Sends the deliveries due by `now`: one request each, or, to a target that takes
    /// them in batches, up to its batch size in one request.
    pub async fn deliver_due(
        self: &Arc<Self>,
        now: Timestamp,
    ) -> Result<DeliveryPass, EngineError> {
        let began = std::time::Instant::now();
        // What this node wrote ahead and is due goes out from memory; the outbox is
        // read back in the passes after (retries, what another node or a restart left).
        let ready = {
            let mut inner = self.inner();
            let Inner { ready, held, .. } = &mut *inner;
            ready.take_due(now, |u| held.contains_key(&u))
        };
        let from_memory = ready.len();
        let _sending = (from_memory > 0).then(|| SendingReady::new(self));
        let due: Vec<(Delivery, Option<StatusUpdate>)> = if ready.is_empty() {
            self.store
                .due_deliveries(&self.config.node, now, self.config.delivery_batch)
                .await?
                .into_iter()
                .map(|d| (d, None))
                .collect()
        } else {
            ready.into_iter().map(|(d, s)| (d, Some(s))).collect()
        };
        // How late the pass began for the earliest of its deliveries.
        let woke_late = due
            .iter()
            .map(|(d, _)| d.due)
            .min()
            .map_or(0, |first| now.duration_since(first).as_millis());
        let mut pass = DeliveryPass::default();
        let mut delivered = Vec::new();
        let mut count = |outcome: DeliveryOutcome, pass: &mut DeliveryPass| match outcome {
            DeliveryOutcome::Delivered(id) => {
                pass.delivered += 1;
                delivered.push(id);
            }
            DeliveryOutcome::Retry => pass.retried += 1,
            DeliveryOutcome::Dead => pass.dead += 1,
        };
        // Each delivery made ready to send; those to a batch target gathered per target.
        let mut singles = Vec::new();
        let mut batched: HashMap<TargetId, Batch> = HashMap::new();
        for (mut delivery, status) in due {
            match self.prepare(&mut delivery, status).await? {
                Prepared::Ready(adapter, status) if adapter.batch_size() > 1 => {
                    batched
                        .entry(delivery.target)
                        .or_insert_with(|| (adapter, Vec::new()))
                        .1
                        .push((delivery, *status));
                }
                Prepared::Ready(adapter, status) => singles.push((delivery, adapter, *status)),
                Prepared::Unknown => count(DeliveryOutcome::Dead, &mut pass),
                Prepared::GiveUp(why) => {
                    self.dead_letter(&delivery, &why).await?;
                    count(DeliveryOutcome::Dead, &mut pass);
                }
            }
        }
        let prepared = began.elapsed();
        let mut tasks = tokio::task::JoinSet::new();
        let gate = Arc::new(tokio::sync::Semaphore::new(
            self.config.delivery_concurrency.max(1),
        ));
        for (delivery, adapter, status) in singles {
            let engine = self.clone();
            let gate = gate.clone();
            tasks.spawn(async move {
                let _permit = gate.acquire().await;
                let result = adapter.deliver(&Envelope::of(&delivery), &status).await;
                let mut outcomes = Vec::with_capacity(1);
                outcomes.push(engine.record(&delivery, result, now).await);
                outcomes
            });
        }
        for (_, (adapter, items)) in batched {
            let size = adapter.batch_size();
            let mut items = items;
            while !items.is_empty() {
                let rest = items.split_off(items.len().min(size));
                let chunk = std::mem::replace(&mut items, rest);
                let engine = self.clone();
                let gate = gate.clone();
                let adapter = adapter.clone();
                tasks.spawn(async move {
                    let _permit = gate.acquire().await;
                    let sent: Vec<(Envelope, StatusUpdate)> = chunk
                        .iter()
                        .map(|(d, s)| (Envelope::of(d), s.clone()))
                        .collect();
                    let result = adapter.deliver_batch(&sent).await;
                    let mut outcomes = Vec::with_capacity(chunk.len());
                    for (delivery, _) in &chunk {
                        outcomes.push(engine.record(delivery, result.clone(), now).await);
                    }
                    outcomes
                });
            }
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(outcomes) => {
                    for outcome in outcomes {
                        match outcome {
                            Ok(outcome) => count(outcome, &mut pass),
                            Err(e) => {
                                tracing::warn!(error = %e, "a delivery could not be recorded");
                            }
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "a delivery task failed"),
            }
        }
        let sent = began.elapsed();
        if !delivered.is_empty() {
            self.store.mark_delivered_many(&delivered, now).await?;
        }
        if pass.delivered + pass.retried + pass.dead > 0 {
            tracing::debug!(
                from_memory,
                delivered = pass.delivered,
                retried = pass.retried,
                dead = pass.dead,
                woke_late_ms = woke_late,
                prepared_ms = prepared.as_millis(),
                sent_ms = sent.as_millis(),
                acknowledged_ms = began.elapsed().as_millis(),
                "delivery pass"
            );
        }
        Ok(pass)
    }

    /// What a delivery needs to be sent: its target's adapter and its status (the one
    /// kept ready, or taken out of its payload, which is not needed after) — or why it
    /// cannot be sent at all.
    async fn prepare(
        &self,
        delivery: &mut Delivery,
        ready: Option<StatusUpdate>,
    ) -> Result<Prepared, EngineError> {
        let cached = self.inner().targets_by_id.get(&delivery.target).cloned();
        let target = match cached {
            Some(t) => t,
            None => match self.store.target(delivery.target).await {
                Ok(t) => Arc::new(t),
                Err(StoreError::NotFound(_)) => return Ok(Prepared::Unknown),
                Err(e) => return Err(e.into()),
            },
        };
        if !target.active {
            return Ok(Prepared::GiveUp("the target is switched off".into()));
        }
        let status: StatusUpdate = match ready {
            Some(s) => s,
            None => match serde_json::from_value(std::mem::take(&mut delivery.payload)) {
                Ok(s) => s,
                Err(e) => return Ok(Prepared::GiveUp(format!("unreadable payload: {e}"))),
            },
        };
        match self.target_for(&target) {
            Ok(adapter) => Ok(Prepared::Ready(adapter, Box::new(status))),
            Err(e) => Ok(Prepared::GiveUp(format!("target configuration: {e}"))),
        }
    }

    /// Records what came of one try: an acknowledgement is left to
    /// [`Engine::deliver_due`], which writes its pass's in one go; a retry is put off
    /// (or given up when the budget is spent); a refusal is a dead letter; a target that
    /// is gone is switched off.
    async fn record(
        &self,
        delivery: &Delivery,
        result: Result<(), DeliveryError>,
        now: Timestamp,
    ) -> Result<DeliveryOutcome, EngineError> {
        let why = match result {
            Ok(()) => {
                self.metrics
                    .delivered(Timestamp::now().duration_since(delivery.due));
                return Ok(DeliveryOutcome::Delivered(delivery.id));
            }
            Err(DeliveryError::Retry {
                message,
                retry_after,
            }) => {
                if delivery.attempts + 1 >= self.config.retry.max_attempts {
                    tracing::warn!(target = %delivery.target, delivery = %delivery.id, "retry budget spent");
                    message
                } else {
                    let wait = self.config.retry.delay(delivery.attempts, retry_after);
                    tracing::debug!(target = %delivery.target, delivery = %delivery.id, error = %message, "a delivery will be tried again");
                    self.store
                        .mark_retry(
                            delivery.id,
                            now + wait,
                            &kalsync_core::redact::shown_error(&message),
                        )
                        .await?;
                    self.metrics.retried();
                    return Ok(DeliveryOutcome::Retry);
                }
            }
            Err(DeliveryError::Gone(message)) => {
                self.store.set_target_active(delivery.target, false).await?;
                tracing::warn!(target = %delivery.target, "the target answered 410 Gone: switched off");
                message
            }
            Err(DeliveryError::Rejected(message)) => message,
        };
        self.dead_letter(delivery, &why).await?;
        Ok(DeliveryOutcome::Dead)
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

/// A pass sending statuses kept ready, counted while it lasts (an error too ends it).
struct SendingReady<'a>(&'a Engine);

impl<'a> SendingReady<'a> {
    fn new(engine: &'a Engine) -> SendingReady<'a> {
        engine.inner().sending_ready += 1;
        SendingReady(engine)
    }
}

impl Drop for SendingReady<'_> {
    fn drop(&mut self) {
        self.0.inner().sending_ready -= 1;
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

/// A batch target's adapter and the deliveries gathered for it in a pass.
type Batch = (Arc<dyn Target>, Vec<(Delivery, StatusUpdate)>);

/// A delivery made ready to send, or why it cannot be.
enum Prepared {
    /// Its target's adapter and its status.
    Ready(Arc<dyn Target>, Box<StatusUpdate>),
    /// The target is gone from the store: nothing to record a dead letter against.
    Unknown,
    /// It can never be sent (the target switched off, the payload unreadable).
    GiveUp(String),
}
