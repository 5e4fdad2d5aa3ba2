//! The Graph source end to end: a booking read by polling reaches the PBX, the endpoints
//! answer and a deleted booking clears the status; with a public URL changes arrive by
//! Graph's notifications, a removed subscription is made again and a forged one refused.

use std::time::Duration;

use crate::support::acme::{self, ANNA};
use crate::support::sims::{anna_at_lunch, book_lunch_now, simulator_with_anna};
use crate::support::{Launch, eventually, spawn_app};

#[tokio::test]
async fn a_booking_in_the_source_reaches_the_pbx_and_the_endpoints_answer() {
    let (sim, sim_url, _sim, _) = anna_at_lunch().await;
    let app = spawn_app(acme::settings(&sim_url)).await;
    let pbx = app.pbx();

    let http = &app.http;
    assert_eq!(
        http.get(app.url("/healthz"))
            .send()
            .await
            .expect("health")
            .text()
            .await
            .expect("text"),
        "ok"
    );
    assert_eq!(
        http.get(app.url("/readyz"))
            .send()
            .await
            .expect("ready")
            .status(),
        200
    );
    // The lunch in force reaches the PBX.
    eventually(async || pbx.received() > 0).await;
    let current = pbx.current();
    let anna = current.get(ANNA).expect("a status for Anna");
    assert_eq!(
        anna.status.absence.as_ref().map(|a| a.reason.as_str()),
        Some("lunch")
    );
    assert_eq!(anna.status.user.extension.as_deref(), Some("201"));
    let page = app.overview_until(|_| true).await;
    assert!(
        page.contains(ANNA) && page.contains("Lunch, back"),
        "{page}"
    );
    let metrics = http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("kalsync_deliveries_total{outcome=\"delivered\"} 1"),
        "{metrics}"
    );

    // The booking is deleted in Outlook: the next poll clears the status.
    let event_id = sim
        .event_ids(ANNA)
        .expect("events")
        .into_iter()
        .next()
        .expect("one event");
    sim.delete_event(ANNA, &event_id).expect("delete");
    eventually(async || pbx.received() >= 2).await;
    assert_eq!(pbx.history(ANNA).len(), 2);
    assert!(pbx.current()[ANNA].status.absence.is_none(), "cleared");
    app.stop().await;
}

#[tokio::test]
async fn with_a_public_url_changes_arrive_by_notification_not_by_polling() {
    let sim = simulator_with_anna();
    let (sim_url, _sim) = kalsync_graph_sim::spawn(sim.clone()).await.expect("sim");
    let mut s = acme::settings(&sim_url);
    s.engine.poll_interval_secs = 3600;
    let app = Launch::new(s).public().spawn().await;
    let pbx = app.pbx();
    let subscriptions = app.service.subscriptions.clone().expect("subscriptions on");

    assert!(
        eventually(async || sim.subscriptions().len() == 1).await,
        "timed out waiting for a subscription"
    );
    assert_eq!(subscriptions.known(), 1);

    // A booking in force now: only the notification can bring it in an hour-long poll.
    let started = std::time::Instant::now();
    book_lunch_now(&sim);
    assert!(
        eventually(async || pbx.received() == 1).await,
        "timed out waiting for the lunch at the PBX"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "arrived by notification in {:?}",
        started.elapsed()
    );

    // Graph removes the subscription: a new one is made.
    let old = sim.subscriptions()[0].0.clone();
    sim.lifecycle(&old, "subscriptionRemoved")
        .expect("lifecycle");
    assert!(
        eventually(async || sim.subscriptions().len() == 1 && sim.subscriptions()[0].0 != old)
            .await,
        "timed out waiting for a new subscription"
    );

    // A forged notification is refused.
    let forged = serde_json::json!({"value": [{"subscriptionId": sim.subscriptions()[0].0, "clientState": "guess", "changeType": "created", "resource": "Users/x/Events/y"}]});
    let answer = app
        .http
        .post(app.url("/notifications/graph"))
        .json(&forged)
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 403);
    app.stop().await;
}
