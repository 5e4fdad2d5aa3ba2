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
        // Each delivery made ready and sent as it is (one to a batch target when its
        // batch is full), so the first requests leave while later ones are prepared;
        // each target looked up once a pass.
        let mut tasks = tokio::task::JoinSet::new();
        let gate = Arc::new(tokio::sync::Semaphore::new(
            self.config.delivery_concurrency.max(1),
        ));
        let mut adapters: HashMap<TargetId, Adapter> = HashMap::new();
        let mut batched: HashMap<TargetId, Batch> = HashMap::new();
        // A store that fails stops the preparing; what was sent is still recorded.
        let mut failed: Option<EngineError> = None;
        for (mut delivery, status) in due {
            let prepared = match self.prepare(&mut adapters, &mut delivery, status).await {
                Ok(p) => p,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            let (adapter, status) = match prepared {
                Prepared::Send(adapter, status) => (adapter, status),
                Prepared::Unknown => {
                    count(DeliveryOutcome::Dead, &mut pass);
                    continue;
                }
                Prepared::GiveUp(why) => {
                    if let Err(e) = self.dead_letter(&delivery, &why).await {
                        failed = Some(e);
                        break;
                    }
                    count(DeliveryOutcome::Dead, &mut pass);
                    continue;
                }
            };
            let size = adapter.batch_size();
            if size <= 1 {
                let engine = self.clone();
                let gate = gate.clone();
                tasks.spawn(async move {
                    let _permit = gate.acquire().await;
                    let result = adapter.deliver(&Envelope::of(&delivery), &status).await;
                    vec![engine.record(&delivery, result, now).await]
                });
                continue;
            }
            let (_, items) = batched
                .entry(delivery.target)
                .or_insert_with(|| (adapter.clone(), Vec::new()));
            items.push((delivery, status));
            if items.len() >= size {
                let full = std::mem::take(items);
                self.send_batch(&mut tasks, &gate, adapter, full, now);
            }
        }
        for (_, (adapter, items)) in batched {
            if !items.is_empty() {
                self.send_batch(&mut tasks, &gate, adapter, items, now);
            }
        }
        let prepared = began.elapsed();
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
        if let Some(e) = failed {
            return Err(e);
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

    /// A delivery made ready to send: its target's adapter (looked up once a pass) and
    /// its status (kept in memory, or read from the payload), or why it cannot be sent.
    async fn prepare(
        &self,
        adapters: &mut HashMap<TargetId, Adapter>,
        delivery: &mut Delivery,
        status: Option<StatusUpdate>,
    ) -> Result<Prepared, EngineError> {
        let adapter = match adapters.get(&delivery.target) {
            Some(a) => a.clone(),
            None => {
                let a = self.adapter(delivery.target).await?;
                adapters.insert(delivery.target, a.clone());
                a
            }
        };
        let adapter = match adapter {
            Adapter::Ready(adapter) => adapter,
            Adapter::Unknown => return Ok(Prepared::Unknown),
            Adapter::GiveUp(why) => return Ok(Prepared::GiveUp(why)),
        };
        Ok(match status {
            Some(s) => Prepared::Send(adapter, s),
            None => match serde_json::from_value(std::mem::take(&mut delivery.payload)) {
                Ok(s) => Prepared::Send(adapter, s),
                Err(e) => Prepared::GiveUp(format!("unreadable payload: {e}")),
            },
        })
    }

    /// A target's adapter for a pass, or why nothing can be sent to it.
    async fn adapter(&self, id: TargetId) -> Result<Adapter, EngineError> {
        let cached = self.inner().targets_by_id.get(&id).cloned();
        let target = match cached {
            Some(t) => t,
            None => match self.store.target(id).await {
                Ok(t) => Arc::new(t),
                Err(StoreError::NotFound(_)) => return Ok(Adapter::Unknown),
                Err(e) => return Err(e.into()),
            },
        };
        if !target.active {
            return Ok(Adapter::GiveUp("the target is switched off".into()));
        }
        Ok(match self.target_for(&target) {
            Ok(adapter) => Adapter::Ready(adapter),
            Err(e) => Adapter::GiveUp(format!("target configuration: {e}")),
        })
    }

    /// Sends one batch (up to the target's batch size) on its own task.
    fn send_batch(
        self: &Arc<Self>,
        tasks: &mut tokio::task::JoinSet<Vec<Result<DeliveryOutcome, EngineError>>>,
        gate: &Arc<tokio::sync::Semaphore>,
        adapter: Arc<dyn Target>,
        items: Vec<(Delivery, StatusUpdate)>,
        now: Timestamp,
    ) {
        let engine = self.clone();
        let gate = gate.clone();
        tasks.spawn(async move {
            let _permit = gate.acquire().await;
            let (deliveries, sent): (Vec<Delivery>, Vec<(Envelope, StatusUpdate)>) = items
                .into_iter()
                .map(|(d, s)| {
                    let envelope = Envelope::of(&d);
                    (d, (envelope, s))
                })
                .unzip();
            let result = adapter.deliver_batch(&sent).await;
            let mut outcomes = Vec::with_capacity(deliveries.len());
            for delivery in &deliveries {
                outcomes.push(engine.record(delivery, result.clone(), now).await);
            }
            outcomes
        });
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

/// A delivery as a pass finds it. Lives for one step of the pass: the status moved in
/// and straight out again rather than boxed for each delivery.
#[allow(clippy::large_enum_variant)]
enum Prepared {
    /// To be sent with this adapter.
    Send(Arc<dyn Target>, StatusUpdate),
    /// Its target is gone from the store: nothing to record a dead letter against.
    Unknown,
    /// To be given up, for this reason.
    GiveUp(String),
}

/// A target as a pass finds it: its adapter, or why nothing can be sent to it.
#[derive(Clone)]
enum Adapter {
    /// Ready to send.
    Ready(Arc<dyn Target>),
    /// The target is gone from the store: nothing to record a dead letter against.
    Unknown,
    /// Nothing can be sent to it (switched off, its configuration unusable).
    GiveUp(String),
}
