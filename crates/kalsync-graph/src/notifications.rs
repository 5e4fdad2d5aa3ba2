//! Change and lifecycle notifications Graph POSTs to the service, and the validation
//! handshake of a new subscription.
//!
//! The HTTP endpoint lives in the service; this module reads bodies, so that any node
//! that receives a notification understands it the same way.

use serde::Deserialize;
use subtle::ConstantTimeEq as _;

/// The most a notification body may weigh (Graph sends at most a few kB per item).
pub const MAX_NOTIFICATION_BYTES: usize = 1024 * 1024;
/// The most items one POST may carry; Graph batches far fewer.
pub const MAX_NOTIFICATION_ITEMS: usize = 1000;

/// The validation handshake: a POST whose query carries `validationToken`. The
/// endpoint answers `200 text/plain` with the token, decoded, within 10 seconds.
pub fn validation_token(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "validationToken")
        .map(|(_, v)| v.into_owned())
}

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// Created.
    Created,
    /// Updated.
    Updated,
    /// Deleted.
    Deleted,
}

/// A lifecycle event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleEvent {
    /// The subscription must be reauthorised (renewed) soon.
    ReauthorizationRequired,
    /// Graph removed the subscription: create a new one and re-read.
    SubscriptionRemoved,
    /// Notifications were lost: re-read.
    Missed,
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// An event of a subscribed mailbox changed.
    Change {
        /// Subscription id.
        subscription_id: String,
        /// The echoed secret.
        client_state: Option<String>,
        /// What happened.
        change_type: ChangeType,
        /// e.g. `Users/{user}/Events/{id}`.
        resource: String,
        /// The event id, from `resourceData.id`.
        event_id: Option<String>,
        /// Tenant.
        tenant_id: Option<String>,
    },
    /// The subscription itself needs attention.
    Lifecycle {
        /// Subscription id.
        subscription_id: String,
        /// The echoed secret.
        client_state: Option<String>,
        /// What happened.
        event: LifecycleEvent,
        /// Tenant.
        tenant_id: Option<String>,
    },
}

impl Notification {
    /// The subscription it is for.
    pub fn subscription_id(&self) -> &str {
        match self {
            Notification::Change {
                subscription_id, ..
            }
            | Notification::Lifecycle {
                subscription_id, ..
            } => subscription_id,
        }
    }

    /// The `clientState` it carries.
    pub fn client_state(&self) -> Option<&str> {
        match self {
            Notification::Change { client_state, .. }
            | Notification::Lifecycle { client_state, .. } => client_state.as_deref(),
        }
    }

    /// Whether it carries `expected` as its `clientState` (compared in constant time).
    pub fn is_authentic(&self, expected: &str) -> bool {
        self.client_state()
            .is_some_and(|given| bool::from(given.as_bytes().ct_eq(expected.as_bytes())))
    }
}

/// A body read: the notifications understood, and why the others were not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotificationBatch {
    /// Understood.
    pub notifications: Vec<Notification>,
    /// Items that were not notifications, one reason each.
    pub rejected: Vec<String>,
}

/// Why a whole body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    /// Over [`MAX_NOTIFICATION_BYTES`].
    #[error("the notification body is larger than {MAX_NOTIFICATION_BYTES} bytes")]
    TooLarge,
    /// Over [`MAX_NOTIFICATION_ITEMS`].
    #[error("the notification body has more than {MAX_NOTIFICATION_ITEMS} items")]
    TooMany,
    /// Not `{"value": [...]}`.
    #[error("not a notification collection: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
struct Collection {
    value: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    subscription_id: String,
    #[serde(default)]
    client_state: Option<String>,
    #[serde(default)]
    change_type: Option<String>,
    #[serde(default)]
    lifecycle_event: Option<String>,
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    resource_data: Option<ResourceData>,
    #[serde(default)]
    tenant_id: Option<String>,
}

#[derive(Deserialize)]
struct ResourceData {
    #[serde(default)]
    id: Option<String>,
}

/// Reads a notification body. One bad item does not spoil the others.
pub fn parse(body: &[u8]) -> Result<NotificationBatch, NotificationError> {
    if body.len() > MAX_NOTIFICATION_BYTES {
        return Err(NotificationError::TooLarge);
    }
    let collection: Collection =
        serde_json::from_slice(body).map_err(|e| NotificationError::Malformed(e.to_string()))?;
    if collection.value.len() > MAX_NOTIFICATION_ITEMS {
        return Err(NotificationError::TooMany);
    }
    let mut batch = NotificationBatch::default();
    for (index, value) in collection.value.into_iter().enumerate() {
        match read_item(value) {
            Ok(n) => batch.notifications.push(n),
            Err(why) => batch.rejected.push(format!("value[{index}]: {why}")),
        }
    }
    Ok(batch)
}

fn read_item(value: serde_json::Value) -> Result<Notification, String> {
    let item: Item = serde_json::from_value(value).map_err(|e| e.to_string())?;
    if let Some(event) = item.lifecycle_event {
        let event = match event.as_str() {
            "reauthorizationRequired" => LifecycleEvent::ReauthorizationRequired,
            "subscriptionRemoved" => LifecycleEvent::SubscriptionRemoved,
            "missed" => LifecycleEvent::Missed,
            other => return Err(format!("unknown lifecycleEvent `{other}`")),
        };
        return Ok(Notification::Lifecycle {
            subscription_id: item.subscription_id,
            client_state: item.client_state,
            event,
            tenant_id: item.tenant_id,
        });
    }
    let change_type = match item.change_type.as_deref() {
        Some("created") => ChangeType::Created,
        Some("updated") => ChangeType::Updated,
        Some("deleted") => ChangeType::Deleted,
        Some(other) => return Err(format!("unknown changeType `{other}`")),
        None => return Err("neither changeType nor lifecycleEvent".into()),
    };
    Ok(Notification::Change {
        subscription_id: item.subscription_id,
        client_state: item.client_state,
        change_type,
        resource: item.resource.ok_or("no resource")?,
        event_id: item.resource_data.and_then(|d| d.id),
        tenant_id: item.tenant_id,
    })
}

/// What the notification endpoint answers, and what it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reception {
    /// HTTP status to answer.
    pub status: u16,
    /// Body to answer (the validation token, as `text/plain`, or empty).
    pub body: String,
    /// Authentic notifications, to act on.
    pub accepted: Vec<Notification>,
    /// Why items were refused: malformed, unknown subscription, wrong `clientState`.
    pub rejected: Vec<String>,
}

/// Handles one POST to the notification endpoint. `client_state_of` gives the secret of
/// a subscription this service holds. Answers 200 with the token to a validation
/// request, 202 when something authentic arrived, 400 for a body that is not a
/// notification collection, 403 when nothing in it was authentic (Graph never sends
/// those; whoever did gets no retry invitation).
pub fn receive(
    query: Option<&str>,
    body: &[u8],
    client_state_of: impl Fn(&str) -> Option<String>,
) -> Reception {
    if let Some(token) = validation_token(query) {
        return Reception {
            status: 200,
            body: token,
            accepted: Vec::new(),
            rejected: Vec::new(),
        };
    }
    let batch = match parse(body) {
        Ok(b) => b,
        Err(e) => {
            return Reception {
                status: match e {
                    NotificationError::TooLarge | NotificationError::TooMany => 413,
                    NotificationError::Malformed(_) => 400,
                },
                body: String::new(),
                accepted: Vec::new(),
                rejected: vec![e.to_string()],
            };
        }
    };
    let mut reception = Reception {
        status: 202,
        body: String::new(),
        accepted: Vec::new(),
        rejected: batch.rejected,
    };
    for n in batch.notifications {
        match client_state_of(n.subscription_id()) {
            None => reception
                .rejected
                .push(format!("unknown subscription `{}`", n.subscription_id())),
            Some(expected) if n.is_authentic(&expected) => reception.accepted.push(n),
            Some(_) => reception.rejected.push(format!(
                "wrong clientState for subscription `{}`",
                n.subscription_id()
            )),
        }
    }
    if reception.accepted.is_empty() && !reception.rejected.is_empty() {
        reception.status = 403;
    }
    reception
}

/// The mailbox a resource path names: `Users/{user}/Events/{id}` → `{user}`.
pub fn mailbox_of(resource: &str) -> Option<&str> {
    let mut parts = resource.trim_start_matches('/').split('/');
    let head = parts.next()?;
    if !head.eq_ignore_ascii_case("users") {
        return None;
    }
    parts.next().filter(|u| !u.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_and_lifecycle_items_are_told_apart() {
        let body = br##"{"value":[
            {"subscriptionId":"s1","clientState":"k","changeType":"updated","resource":"Users/u1/Events/e1",
             "resourceData":{"@odata.type":"#Microsoft.Graph.Event","id":"e1"},"tenantId":"t"},
            {"subscriptionId":"s1","clientState":"k","lifecycleEvent":"missed"},
            {"subscriptionId":"s1","changeType":"exploded","resource":"x"},
            "nonsense"
        ]}"##;
        let batch = parse(body).expect("parses");
        assert_eq!(batch.notifications.len(), 2);
        assert_eq!(batch.rejected.len(), 2, "{:?}", batch.rejected);
        assert!(
            matches!(&batch.notifications[0], Notification::Change { change_type: ChangeType::Updated, event_id: Some(e), .. } if e == "e1")
        );
        assert!(matches!(
            &batch.notifications[1],
            Notification::Lifecycle {
                event: LifecycleEvent::Missed,
                ..
            }
        ));
        assert!(batch.notifications[0].is_authentic("k"));
        assert!(!batch.notifications[0].is_authentic("K"));
        assert!(!batch.notifications[0].is_authentic("kk"));
    }

    #[test]
    fn bodies_that_are_not_collections_are_refused() {
        assert!(matches!(parse(b"{}"), Err(NotificationError::Malformed(_))));
        assert!(matches!(
            parse(b"<xml/>"),
            Err(NotificationError::Malformed(_))
        ));
        assert_eq!(
            parse(&vec![b' '; MAX_NOTIFICATION_BYTES + 1]),
            Err(NotificationError::TooLarge)
        );
    }

    #[test]
    fn the_endpoint_answers_validation_accepts_authentic_and_refuses_forged() {
        let state = |id: &str| (id == "s1").then(|| "k".to_owned());
        let r = receive(Some("validationToken=abc%20def"), b"", state);
        assert_eq!((r.status, r.body.as_str()), (200, "abc def"));
        let good = br#"{"value":[{"subscriptionId":"s1","clientState":"k","changeType":"created","resource":"Users/u/Events/e"}]}"#;
        let r = receive(None, good, state);
        assert_eq!((r.status, r.accepted.len()), (202, 1));
        let forged = br#"{"value":[{"subscriptionId":"s1","clientState":"guess","changeType":"created","resource":"Users/u/Events/e"}]}"#;
        let r = receive(None, forged, state);
        assert_eq!((r.status, r.accepted.len()), (403, 0));
        assert!(r.rejected[0].contains("wrong clientState"));
        let unknown = br#"{"value":[{"subscriptionId":"s9","clientState":"k","changeType":"created","resource":"Users/u/Events/e"}]}"#;
        assert!(receive(None, unknown, state).rejected[0].contains("unknown subscription"));
        assert_eq!(receive(None, b"not json", state).status, 400);
    }

    #[test]
    fn validation_tokens_are_decoded_and_resources_name_mailboxes() {
        assert_eq!(
            validation_token(Some("validationToken=Validation%3A%20Testing%20client")),
            Some("Validation: Testing client".into())
        );
        assert_eq!(validation_token(Some("other=1")), None);
        assert_eq!(validation_token(None), None);
        assert_eq!(mailbox_of("Users/622eaaff/Events/AAMk="), Some("622eaaff"));
        assert_eq!(
            mailbox_of("/users/anna@contoso.se/events/x"),
            Some("anna@contoso.se")
        );
        assert_eq!(mailbox_of("groups/x"), None);
    }
}
