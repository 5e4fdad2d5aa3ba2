//! The Graph source end to end: a booking read by polling reaches the PBX, the endpoints
//! answer and a deleted booking clears the status; with a public URL changes arrive by
//! Graph's notifications, a removed subscription is made again and a forged one refused.

use std::time::Duration;

use crate::support::acme::{self, ANNA};
use crate::support::sims::{anna_at_lunch, book_lunch_now, simulator_with_anna};
use crate::support::{Launch, eventually, eventually_within, spawn_app};

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
    // Graph answers the subscription before the service has stored it.
    assert!(
        eventually(async || subscriptions.known() == 1).await,
        "the subscription Graph made is known to the service: {}",
        subscriptions.known()
    );

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

/// Two instances on Graph: a maintenance pass keeps each one's subscriptions. (A pass
/// once judged which subscriptions were gone after each instance, so the first
/// instance's pass deleted every later instance's subscriptions at Graph and went on
/// believing in them: their bookings then waited for the poll.)
#[tokio::test]
async fn a_pass_keeps_the_subscriptions_of_every_instance() {
    let sim = crate::support::sims::simulator(
        kalsync_graph_sim::SimConfig::with_secret("t", "c", "s"),
        &[ANNA, "bo@beta.example"],
    );
    let (sim_url, _sim) = kalsync_graph_sim::spawn(sim.clone()).await.expect("sim");
    let mut s = acme::settings(&sim_url);
    let mut beta = s.companies[0].clone();
    beta.name = "Beta".into();
    beta.instances[0].users = vec![kalsync_server::settings::UserDecl::Full {
        email: "bo@beta.example".into(),
        name: Some("Bo".into()),
        extension: Some("301".into()),
    }];
    s.companies.push(beta);
    s.engine.poll_interval_secs = 3600;
    let app = Launch::new(s).public().spawn().await;
    let pbx = app.pbx();
    let subscriptions = app.service.subscriptions.clone().expect("subscriptions on");
    assert!(
        eventually(async || sim.subscriptions().len() == 2).await,
        "timed out waiting for both subscriptions"
    );
    // Passes in both orders of the instances' listing.
    for _ in 0..3 {
        subscriptions.maintain(jiff::Timestamp::now()).await;
    }
    assert_eq!(sim.subscriptions().len(), 2, "both subscriptions live on");

    // A booking for each arrives by notification (the poll is an hour away).
    let before = pbx.received();
    for mailbox in [ANNA, "bo@beta.example"] {
        let now = jiff::Timestamp::now();
        sim.create_event(
            mailbox,
            kalsync_graph_sim::EventSpec::new(
                "LUN: Lunch",
                now - jiff::SignedDuration::from_mins(1),
                now + jiff::SignedDuration::from_mins(59),
            ),
        )
        .expect("event");
    }
    assert!(
        eventually(async || pbx.received() >= before + 2).await,
        "timed out waiting for both lunches at the PBX"
    );
    app.stop().await;
}

/// New rules apply at once: saving them reads the instance's users again, so a booking
/// read under the old rules does not wait for the next poll (an hour here) to follow
/// the new ones.
#[tokio::test]
async fn saved_rules_apply_at_once() {
    let (_calendars, sim_url, _graph, _) = anna_at_lunch().await;
    let mut s = acme::settings(&sim_url);
    s.accounts.push(acme::admin());
    // Free/busy only: "LUN: Lunch" is a busy hour.
    s.companies[0].instances[0].settings =
        Some(toml::from_str("template = \"showas-info\"").expect("settings"));
    s.engine.poll_interval_secs = 3600;
    let app = spawn_app(s).await;
    let (http, me) = app.signed_in_as(acme::ADMIN, acme::ADMIN_PASSWORD).await;
    let csrf = me["csrf"].as_str().expect("csrf").to_owned();
    let company = me["company"].as_str().expect("company").to_owned();
    let instance = app.instances_of(&http, &company).await[0]["id"]
        .as_str()
        .expect("instance")
        .to_owned();
    let reason = async || -> String {
        let directory: serde_json::Value = http
            .get(app.url("/api/v1/directory"))
            .send()
            .await
            .expect("directory")
            .json()
            .await
            .expect("json");
        directory[0]["absence"]["reason"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    assert!(
        eventually(async || reason().await == "busy").await,
        "read under free/busy rules"
    );
    let saved = http
        .patch(app.url(&format!("/api/v1/instances/{instance}")))
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({"settings": "template = \"prefix\"\n"}))
        .send()
        .await
        .expect("patch");
    assert!(saved.status().is_success(), "{:?}", saved.text().await);
    assert!(
        eventually_within(Duration::from_secs(5), async || reason().await == "lunch").await,
        "the prefix rules apply to the booking already read: {}",
        reason().await
    );
    app.stop().await;
}
