//! Subscriptions' notifications: change notifications on every calendar change,
//! lifecycle notifications on request, and their delivery with retries.

use std::sync::atomic::Ordering;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::mpsc;

use crate::{Shared, Simulator, SpecError, calendar, graph_time, world};

#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) resource: String,
    pub(crate) change_type: String,
    pub(crate) notification_url: String,
    pub(crate) lifecycle_url: Option<String>,
    pub(crate) client_state: Option<String>,
    pub(crate) expires: Timestamp,
    pub(crate) client_id: String,
}

/// One POST to a subscriber.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) url: String,
    pub(crate) body: serde_json::Value,
}

/// How notifications are sent: Graph allows a receiver three seconds.
pub(crate) const DELIVERY_TIMEOUT: Duration = Duration::from_secs(3);

impl Simulator {
    /// Live subscriptions: (id, mailbox id, expiry).
    pub fn subscriptions(&self) -> Vec<(String, String, Timestamp)> {
        let world = self.world();
        let mut subs: Vec<_> = world
            .subscriptions
            .values()
            .map(|s| (s.id.clone(), s.user_id.clone(), s.expires))
            .collect();
        subs.sort();
        subs
    }

    /// Sends a lifecycle notification for a subscription; `subscriptionRemoved` also
    /// removes it, as Graph does.
    pub fn lifecycle(&self, subscription: &str, event: &str) -> Result<(), SpecError> {
        if !matches!(
            event,
            "reauthorizationRequired" | "subscriptionRemoved" | "missed"
        ) {
            return Err(SpecError::Invalid(format!(
                "lifecycle event `{event}` (expected reauthorizationRequired, subscriptionRemoved or missed)"
            )));
        }
        let mut world = self.world();
        let sub = world
            .subscriptions
            .get(subscription)
            .cloned()
            .ok_or_else(|| SpecError::NotFound(format!("subscription `{subscription}`")))?;
        if event == "subscriptionRemoved" {
            world.subscriptions.remove(subscription);
        }
        drop(world);
        let body = serde_json::json!({"value": [{
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": graph_time(sub.expires),
            "tenantId": self.shared.config.tenant,
            "clientState": sub.client_state,
            "lifecycleEvent": event,
        }]});
        let url = sub.lifecycle_url.unwrap_or(sub.notification_url);
        let _ = self.shared.outbox.send(Delivery { url, body });
        Ok(())
    }

    /// Queues change notifications for every live subscription on the user's events.
    pub(crate) fn notify(&self, user_id: &str, event_id: &str, change: &str) {
        let _ = self.shared.changes.send(calendar::CalendarChange {
            user: user_id.to_owned(),
            item: event_id.to_owned(),
            kind: change.to_owned(),
        });
        let now = Timestamp::now();
        let mut world = self.world();
        let subs: Vec<Subscription> = world
            .subscriptions
            .values()
            .filter(|s| {
                s.user_id == user_id
                    && s.expires > now
                    && s.change_type.split(',').any(|c| c.trim() == change)
            })
            .cloned()
            .collect();
        for sub in subs {
            if world.faults.lose_notifications > 0 {
                world.faults.lose_notifications -= 1;
                self.shared
                    .stats
                    .notifications_lost
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let resource = format!("Users/{user_id}/Events/{event_id}");
            let body = serde_json::json!({"value": [{
                "id": world::graph_id(&format!("notification/{}/{}", sub.id, now.as_nanosecond()))[5..18].to_owned(),
                "subscriptionId": sub.id,
                "subscriptionExpirationDateTime": graph_time(sub.expires),
                "changeType": change,
                "resource": resource,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Event",
                    "@odata.id": resource,
                    "@odata.etag": format!("W/\"{}\"", world::graph_id(&format!("{event_id}/{}", now.as_nanosecond()))),
                    "id": event_id,
                },
                "clientState": sub.client_state,
                "tenantId": self.shared.config.tenant,
            }]});
            if world.faults.duplicate_notifications > 0 {
                world.faults.duplicate_notifications -= 1;
                let _ = self.shared.outbox.send(Delivery {
                    url: sub.notification_url.clone(),
                    body: body.clone(),
                });
            }
            let _ = self.shared.outbox.send(Delivery {
                url: sub.notification_url,
                body,
            });
        }
    }
}

/// Delivers queued notifications, each on its own task, retrying a failed one three
/// times with back-off before giving up (Graph retries for hours; a test has no hours).
pub(crate) async fn deliver(
    shared: std::sync::Weak<Shared>,
    mut inbox: mpsc::UnboundedReceiver<Delivery>,
) {
    while let Some(delivery) = inbox.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            for attempt in 0..4u32 {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt * attempt)))
                        .await;
                }
                let sent = shared
                    .http
                    .post(&delivery.url)
                    .json(&delivery.body)
                    .send()
                    .await;
                if sent.is_ok_and(|r| r.status().is_success()) {
                    shared
                        .stats
                        .notifications_sent
                        .fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            shared
                .stats
                .notifications_lost
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(url = %delivery.url, "simulator gave up delivering a notification");
        });
    }
}
