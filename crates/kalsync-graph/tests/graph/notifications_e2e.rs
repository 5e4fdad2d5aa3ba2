//! Subscriptions end to end: the simulator validates our endpoint, POSTs real change and
//! lifecycle notifications to it, and a change leads to a re-read that yields the new
//! booking — the engine's input.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use jiff::{SignedDuration, Timestamp};
use kalsync_core::{InstanceSettings, Template, build_timeline};
use kalsync_graph::notifications::{self, ChangeType, LifecycleEvent, Notification};
use kalsync_graph::{NewSubscription, ReadOptions};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::mpsc;
use url::Url;

use crate::helpers::*;

type States = Arc<Mutex<HashMap<String, String>>>;

#[derive(Clone)]
struct Inbox {
    states: States,
    fallback: Option<String>,
    raw: mpsc::UnboundedSender<Value>,
    accepted: mpsc::UnboundedSender<Notification>,
    statuses: mpsc::UnboundedSender<u16>,
}

/// A notification endpoint as the service will have one, on a loopback port.
pub(crate) struct Receiver {
    pub(crate) url: Url,
    states: States,
    raw: tokio::sync::Mutex<mpsc::UnboundedReceiver<Value>>,
    accepted: tokio::sync::Mutex<mpsc::UnboundedReceiver<Notification>>,
    statuses: tokio::sync::Mutex<mpsc::UnboundedReceiver<u16>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn endpoint(
    State(inbox): State<Inbox>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> impl IntoResponse {
    if let Ok(v) = serde_json::from_slice::<Value>(&body) {
        let _ = inbox.raw.send(v);
    }
    let states = inbox.states.clone();
    let fallback = inbox.fallback.clone();
    let reception = notifications::receive(query.as_deref(), &body, |id| {
        states
            .lock()
            .expect("lock")
            .get(id)
            .cloned()
            .or_else(|| fallback.clone())
    });
    for n in reception.accepted {
        let _ = inbox.accepted.send(n);
    }
    let _ = inbox.statuses.send(reception.status);
    (
        StatusCode::from_u16(reception.status).unwrap_or(StatusCode::BAD_REQUEST),
        [("content-type", "text/plain")],
        reception.body,
    )
}

impl Receiver {
    /// Accepts notifications of unregistered subscriptions whose clientState is
    /// `secretClientValue` (the shape test's), and registered ones by their own state.
    pub(crate) async fn start() -> Receiver {
        Self::start_with(Some("secretClientValue".into())).await
    }

    async fn start_with(fallback: Option<String>) -> Receiver {
        let states: States = Arc::default();
        let (raw_tx, raw) = mpsc::unbounded_channel();
        let (acc_tx, accepted) = mpsc::unbounded_channel();
        let (st_tx, statuses) = mpsc::unbounded_channel();
        let inbox = Inbox {
            states: states.clone(),
            fallback,
            raw: raw_tx,
            accepted: acc_tx,
            statuses: st_tx,
        };
        let app = axum::Router::new()
            .route("/graph/notifications", axum::routing::post(endpoint))
            .route("/graph/lifecycle", axum::routing::post(endpoint))
            .with_state(inbox);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Receiver {
            url: Url::parse(&format!("http://{addr}/graph/notifications")).expect("url"),
            states,
            raw: tokio::sync::Mutex::new(raw),
            accepted: tokio::sync::Mutex::new(accepted),
            statuses: tokio::sync::Mutex::new(statuses),
            _stop: stop,
        }
    }

    pub(crate) fn lifecycle_url(&self) -> Url {
        self.url.join("lifecycle").expect("url")
    }

    pub(crate) fn register(&self, subscription: &str, state: &str) {
        self.states
            .lock()
            .expect("lock")
            .insert(subscription.into(), state.into());
    }

    pub(crate) async fn next_raw(&self) -> Value {
        tokio::time::timeout(Duration::from_secs(10), self.raw.lock().await.recv())
            .await
            .expect("a notification within 10 s")
            .expect("open")
    }

    pub(crate) async fn next_accepted(&self) -> Notification {
        tokio::time::timeout(Duration::from_secs(10), self.accepted.lock().await.recv())
            .await
            .expect("a notification within 10 s")
            .expect("open")
    }

    async fn next_status(&self) -> u16 {
        tokio::time::timeout(Duration::from_secs(10), self.statuses.lock().await.recv())
            .await
            .expect("an answer")
            .expect("open")
    }
}

#[tokio::test]
async fn a_booking_created_in_the_simulator_reaches_the_engine_through_a_notification() {
    let s = default_simulator().await;
    let anna = user(&s.sim, "anna@contoso.example");
    let client = client(&s.base);
    let receiver = Receiver::start_with(None).await;
    let state = SecretString::from(uuid::Uuid::new_v4().to_string());
    let subscription = client
        .create_subscription(&NewSubscription {
            user: anna.clone(),
            notification_url: receiver.url.clone(),
            lifecycle_url: Some(receiver.lifecycle_url()),
            client_state: state.clone(),
            expires: Timestamp::now() + SignedDuration::from_hours(48),
        })
        .await
        .expect("Graph validated our endpoint and created the subscription");
    receiver.register(&subscription.id, state.expose_secret());
    assert_eq!(
        receiver.next_status().await,
        200,
        "validation of the notification URL"
    );
    assert_eq!(
        receiver.next_status().await,
        200,
        "validation of the lifecycle URL"
    );

    // Someone books lunch in Outlook (the simulator's control API, over HTTP).
    let created: Value = reqwest::Client::new()
        .post(
            s.base
                .join(&format!("_sim/users/{anna}/events"))
                .expect("url"),
        )
        .json(&event(
            "LUN: Lunch med Bo",
            "2026-11-24 12:00",
            "2026-11-24 13:00",
        ))
        .send()
        .await
        .expect("control API")
        .json()
        .await
        .expect("json");
    let event_id = created["id"].as_str().expect("id");

    let Notification::Change {
        change_type,
        resource,
        event_id: notified,
        ..
    } = receiver.next_accepted().await
    else {
        panic!("a change notification");
    };
    assert_eq!(change_type, ChangeType::Created);
    assert_eq!(notified.as_deref(), Some(event_id));
    let mailbox = notifications::mailbox_of(&resource).expect("mailbox");

    // The re-read the notification triggers, and the timeline it gives.
    let read = client
        .calendar_view(
            mailbox,
            week(),
            ReadOptions {
                subject: true,
                location: false,
            },
            &stockholm(),
        )
        .await
        .expect("read");
    assert!(read.bookings.iter().any(|b| b.id.as_str() == event_id));
    let settings = InstanceSettings::with_template(Template::Prefix);
    let timeline = build_timeline(&read.bookings, &settings, week());
    assert_eq!(timeline.absences.len(), 1);
    assert_eq!(
        timeline.message(&timeline.absences[0], &settings, kalsync_core::Lang::Sv),
        "Lunch, åter 13.00"
    );
    assert_eq!(timeline.absences[0].start, at("2026-11-24 12:00"));

    // Moving and deleting it notify too.
    let mut moved = s.sim.event(&anna, event_id).expect("event");
    moved.start = at("2026-11-24 11:30").to_string();
    s.sim.update_event(&anna, event_id, moved).expect("update");
    assert!(matches!(
        receiver.next_accepted().await,
        Notification::Change {
            change_type: ChangeType::Updated,
            ..
        }
    ));
    s.sim.delete_event(&anna, event_id).expect("delete");
    assert!(matches!(
        receiver.next_accepted().await,
        Notification::Change {
            change_type: ChangeType::Deleted,
            ..
        }
    ));
    assert!(
        client
            .calendar_view(&anna, week(), ReadOptions::default(), &stockholm())
            .await
            .expect("read")
            .bookings
            .is_empty()
    );
}

#[tokio::test]
async fn forged_notifications_are_refused() {
    let receiver = Receiver::start_with(None).await;
    receiver.register("sub-1", "the-real-secret");
    let forged = serde_json::json!({"value": [{"subscriptionId": "sub-1", "clientState": "a-guess", "changeType": "created", "resource": "Users/u/Events/e"}]});
    let answer = reqwest::Client::new()
        .post(receiver.url.clone())
        .json(&forged)
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 403);
    let unknown = serde_json::json!({"value": [{"subscriptionId": "sub-9", "clientState": "the-real-secret", "changeType": "created", "resource": "Users/u/Events/e"}]});
    assert_eq!(
        reqwest::Client::new()
            .post(receiver.url.clone())
            .json(&unknown)
            .send()
            .await
            .expect("answer")
            .status(),
        403
    );
    let oversized = vec![b'x'; notifications::MAX_NOTIFICATION_BYTES + 10];
    assert_eq!(
        reqwest::Client::new()
            .post(receiver.url.clone())
            .body(oversized)
            .send()
            .await
            .expect("answer")
            .status(),
        413
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(200), receiver.next_accepted())
            .await
            .is_err(),
        "nothing was accepted"
    );
}

#[tokio::test]
async fn each_lifecycle_event_is_handled() {
    let s = default_simulator().await;
    let anna = user(&s.sim, "anna@contoso.example");
    let client = client(&s.base);
    let receiver = Receiver::start_with(None).await;
    let subscribe = |expires: Timestamp| {
        let client = client.clone();
        let anna = anna.clone();
        let url = receiver.url.clone();
        let lifecycle = receiver.lifecycle_url();
        async move {
            client
                .create_subscription(&NewSubscription {
                    user: anna,
                    notification_url: url,
                    lifecycle_url: Some(lifecycle),
                    client_state: SecretString::from("state-1"),
                    expires,
                })
                .await
                .expect("subscription")
        }
    };
    let sub = subscribe(Timestamp::now() + SignedDuration::from_hours(1)).await;
    receiver.register(&sub.id, "state-1");

    // reauthorizationRequired → renew.
    s.sim
        .lifecycle(&sub.id, "reauthorizationRequired")
        .expect("lifecycle");
    let Notification::Lifecycle {
        event: LifecycleEvent::ReauthorizationRequired,
        subscription_id,
        ..
    } = receiver.next_accepted().await
    else {
        panic!("reauthorizationRequired");
    };
    let later = Timestamp::now() + SignedDuration::from_hours(72);
    let renewed = client
        .renew_subscription(&subscription_id, later)
        .await
        .expect("renew");
    assert!(renewed.expires().expect("expiry") >= later - SignedDuration::from_secs(1));
    assert!(s.sim.subscriptions()[0].2 >= later - SignedDuration::from_secs(1));

    // missed → re-read the window.
    s.sim.lifecycle(&sub.id, "missed").expect("lifecycle");
    assert!(matches!(
        receiver.next_accepted().await,
        Notification::Lifecycle {
            event: LifecycleEvent::Missed,
            ..
        }
    ));
    assert!(
        client
            .calendar_view(&anna, week(), ReadOptions::default(), &stockholm())
            .await
            .is_ok()
    );

    // subscriptionRemoved → subscribe again.
    s.sim
        .lifecycle(&sub.id, "subscriptionRemoved")
        .expect("lifecycle");
    assert!(matches!(
        receiver.next_accepted().await,
        Notification::Lifecycle {
            event: LifecycleEvent::SubscriptionRemoved,
            ..
        }
    ));
    assert!(s.sim.subscriptions().is_empty());
    let again = subscribe(Timestamp::now() + SignedDuration::from_hours(48)).await;
    assert_eq!(s.sim.subscriptions().len(), 1);

    // Removing the user deletes the subscription; twice is harmless.
    client.delete_subscription(&again.id).await.expect("delete");
    client
        .delete_subscription(&again.id)
        .await
        .expect("already gone");
    assert!(s.sim.subscriptions().is_empty());
}

#[tokio::test]
async fn an_endpoint_that_fails_validation_gets_no_subscription() {
    let s = default_simulator().await;
    let anna = user(&s.sim, "anna@contoso.example");
    let client = client(&s.base);
    // Nothing listens here.
    let dead = Url::parse("http://127.0.0.1:9/graph/notifications").expect("url");
    let e = client
        .create_subscription(&NewSubscription {
            user: anna,
            notification_url: dead,
            lifecycle_url: None,
            client_state: SecretString::from("x"),
            expires: Timestamp::now() + SignedDuration::from_hours(1),
        })
        .await
        .expect_err("validation fails");
    assert!(e.to_string().contains("validation"), "{e}");
    assert!(s.sim.subscriptions().is_empty());
}
