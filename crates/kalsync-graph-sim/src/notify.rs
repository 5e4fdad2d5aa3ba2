//! Subscriptions' notifications: change notifications on every calendar change,
//! lifecycle notifications on request, and their delivery with retries.

use std::sync::atomic::Ordering;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::mpsc;

use crate::{Shared, Simulator, SpecError, calendar, graph_time, lock, world};

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

/// A change to make around the next subscription's creation.
pub(crate) type Hook = Box<dyn FnOnce() + Send>;

/// What runs around the next subscription's creation.
#[derive(Default)]
pub(crate) struct Hooks {
    /// Before it exists: a change its subscriber must read after subscribing.
    pub(crate) before: Option<Hook>,
    /// Once it exists, before its `201 Created` is sent (held back a moment): the
    /// notification reaches the subscriber before it knows the subscription's id.
    pub(crate) during: Option<Hook>,
}

/// One POST to a subscriber.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) url: String,
    pub(crate) body: serde_json::Value,
    /// A change notification's subscription's lifecycle URL, where a `missed` goes
    /// when it is given up on.
    pub(crate) lifecycle_url: Option<String>,
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

    /// Graph loses every subscription (a `subscriptionRemoved` for each, which removes
    /// it); how many there were.
    pub fn forget_subscriptions(&self) -> usize {
        let ids: Vec<String> = self
            .subscriptions()
            .into_iter()
            .map(|(id, _, _)| id)
            .collect();
        ids.iter()
            .filter(|id| self.lifecycle(id, "subscriptionRemoved").is_ok())
            .count()
    }

    /// Runs `f` when the next subscription is asked for, before it exists: a change `f`
    /// makes is in no notification of it — what a subscriber that read the mailbox
    /// before subscribing would miss.
    pub fn before_next_subscription(&self, f: impl FnOnce() + Send + 'static) {
        lock(&self.shared.hooks).before = Some(Box::new(f));
    }

    /// Runs `f` once the next subscription exists and holds its `201 Created` back half
    /// a second: the change `f` makes is notified before the subscriber has read the
    /// subscription's id.
    pub fn during_next_subscription(&self, f: impl FnOnce() + Send + 'static) {
        lock(&self.shared.hooks).during = Some(Box::new(f));
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
        let _ = self.shared.outbox.send(Delivery {
            url,
            body,
            lifecycle_url: None,
        });
        Ok(())
    }

    /// Queues change notifications for every live subscription on the user's events.
    pub(crate) fn notify(&self, user_id: &str, event_id: &str, change: &str) {
        let now = Timestamp::now();
        let _ = self.shared.changes.send(calendar::CalendarChange {
            user: user_id.to_owned(),
            item: event_id.to_owned(),
            kind: change.to_owned(),
            at: now,
        });
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
                // Graph says so with a `missed` lifecycle notification.
                let body = serde_json::json!({"value": [{
                    "subscriptionId": sub.id,
                    "subscriptionExpirationDateTime": graph_time(sub.expires),
                    "tenantId": self.shared.config.tenant,
                    "clientState": sub.client_state,
                    "lifecycleEvent": "missed",
                }]});
                let url = sub
                    .lifecycle_url
                    .clone()
                    .unwrap_or(sub.notification_url.clone());
                let _ = self.shared.outbox.send(Delivery {
                    url,
                    body,
                    lifecycle_url: None,
                });
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
                    lifecycle_url: sub.lifecycle_url.clone(),
                });
            }
            let _ = self.shared.outbox.send(Delivery {
                url: sub.notification_url,
                body,
                lifecycle_url: sub.lifecycle_url,
            });
        }
    }
}

/// Delivers queued notifications, each on its own task, retrying a failed one seven
/// times over some twenty seconds before giving up (Graph retries for hours; a test has
/// no hours, but a restarted receiver is back within them).
pub(crate) async fn deliver(
    shared: std::sync::Weak<Shared>,
    mut inbox: mpsc::UnboundedReceiver<Delivery>,
) {
    while let Some(delivery) = inbox.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            for attempt in 0..8u32 {
                if attempt > 0 {
                    let wait = (200 * u64::from(attempt * attempt)).min(5000);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
                let sent = shared
                    .http
                    .post(&delivery.url)
                    .json(&delivery.body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => {
                        shared
                            .stats
                            .notifications_sent
                            .fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Ok(_) => {
                        shared
                            .stats
                            .notifications_refused
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {}
                }
            }
            shared
                .stats
                .notifications_lost
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(url = %delivery.url, "simulator gave up delivering a notification");
            // As Graph does, a `missed` lifecycle notification says so (once; a missed
            // notification that cannot be delivered either is not followed by another).
            if let Some(missed) = missed_for(&delivery) {
                let _ = shared.outbox.send(missed);
            }
        });
    }
}

/// The `missed` lifecycle notification for a change notification given up on, sent to
/// where its subscription's lifecycle notifications go; none for a lifecycle one.
fn missed_for(delivery: &Delivery) -> Option<Delivery> {
    let item = delivery.body.get("value")?.get(0)?;
    if item.get("lifecycleEvent").is_some() {
        return None;
    }
    let body = serde_json::json!({"value": [{
        "subscriptionId": item.get("subscriptionId")?,
        "subscriptionExpirationDateTime": item.get("subscriptionExpirationDateTime")?,
        "tenantId": item.get("tenantId")?,
        "clientState": item.get("clientState")?,
        "lifecycleEvent": "missed",
    }]});
    let url = delivery.lifecycle_url.clone()?;
    Some(Delivery {
        url,
        body,
        lifecycle_url: None,
    })
}
