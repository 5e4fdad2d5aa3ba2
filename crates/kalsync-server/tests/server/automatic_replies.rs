//! Outlook's automatic replies, end to end on the Graph and EWS simulators: scheduled a
//! few seconds ahead, they reach the PBX at their start (read by the periodic pass —
//! there are no notifications for them) and clear at their end; a booking wins over them
//! while it lasts; a mailbox the app may not read keeps what it had.

use std::time::Duration;

use kalsync_graph_sim::{AutoRepliesSpec, Simulator};
use kalsync_server::Settings;

use crate::support::acme::ANNA;
use crate::support::sims::{Exchange, exchange_with_anna};
use crate::support::{eventually_within, spawn_app};

/// How far ahead the replies start, and how long they last.
const AHEAD: jiff::SignedDuration = jiff::SignedDuration::from_secs(6);
const FOR: jiff::SignedDuration = jiff::SignedDuration::from_secs(8);

fn reading_replies(mut s: Settings) -> Settings {
    s.companies[0].instances[0].settings = Some(
        toml::from_str("template = \"prefix\"\n[automatic_replies]\nenabled = true\n")
            .expect("rules"),
    );
    s.engine.poll_interval_secs = 3600;
    s.engine.automatic_replies_secs = 1;
    s
}

fn schedule(calendars: &Simulator, start: jiff::Timestamp, end: jiff::Timestamp) {
    calendars
        .set_automatic_replies(
            ANNA,
            AutoRepliesSpec {
                status: "scheduled".into(),
                start: Some(start),
                end: Some(end),
                internal_message: "På kurs".into(),
                external_message: "Away on a course".into(),
            },
        )
        .expect("set");
}

/// Runs one instance's story: scheduled replies reach the PBX at their start and clear
/// at their end.
async fn scheduled_replies_come_and_go(exchange: &Exchange, settings: Settings) {
    let app = spawn_app(reading_replies(settings)).await;
    let pbx = app.pbx().clone();
    let shown = move || {
        pbx.current()
            .get(ANNA)
            .and_then(|r| r.status.absence.as_ref().map(|a| a.reason.clone()))
    };
    // Read once (nothing away), then the replies are set ahead.
    eventually_within(Duration::from_secs(10), async || {
        app.pbx().current().contains_key(ANNA)
    })
    .await;
    // Whole seconds: Exchange and Graph give the period to the second.
    let start =
        jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).expect("now") + AHEAD;
    let end = start + FOR;
    schedule(&exchange.calendars, start, end);
    let came = eventually_within(Duration::from_secs(20), async || {
        shown().as_deref() == Some("out_of_office")
    })
    .await;
    let seen = jiff::Timestamp::now();
    assert!(came, "the automatic replies reached the PBX");
    assert!(
        seen >= start - jiff::SignedDuration::from_millis(500),
        "not before their start: seen {seen}, start {start}"
    );
    let went = eventually_within(Duration::from_secs(20), async || shown().is_none()).await;
    let cleared = jiff::Timestamp::now();
    assert!(went, "cleared at their end");
    assert!(
        cleared >= end - jiff::SignedDuration::from_millis(500),
        "not before their end: {cleared}, end {end}"
    );
    app.stop().await;
}

#[tokio::test]
async fn scheduled_automatic_replies_reach_the_pbx_at_their_start_and_clear_at_their_end_over_graph()
 {
    let exchange = exchange_with_anna().await;
    let settings = crate::support::acme::settings(&exchange.sim_url);
    scheduled_replies_come_and_go(&exchange, settings).await;
}

#[tokio::test]
async fn scheduled_automatic_replies_reach_the_pbx_at_their_start_and_clear_at_their_end_over_ews()
{
    let exchange = exchange_with_anna().await;
    let settings = exchange.acme_over_ews("ntlm", "2016");
    scheduled_replies_come_and_go(&exchange, settings).await;
}

#[tokio::test]
async fn replies_on_until_turned_off_have_no_return_time_and_a_refused_mailbox_keeps_them() {
    let exchange = exchange_with_anna().await;
    let app = spawn_app(reading_replies(crate::support::acme::settings(
        &exchange.sim_url,
    )))
    .await;
    exchange
        .calendars
        .set_automatic_replies(
            ANNA,
            AutoRepliesSpec {
                status: "alwaysEnabled".into(),
                start: None,
                end: None,
                internal_message: "Föräldraledig".into(),
                external_message: "On parental leave".into(),
            },
        )
        .expect("set");
    let pbx = app.pbx().clone();
    let away = move || {
        pbx.current()
            .get(ANNA)
            .and_then(|r| r.status.absence.clone())
    };
    assert!(
        eventually_within(Duration::from_secs(15), async || away().is_some()).await,
        "on: away"
    );
    let a = away().expect("away");
    assert_eq!(a.reason, "out_of_office");
    assert_eq!(a.message_sv, "Ej på kontoret", "no return time is told");
    // The app loses the right: what was read stays (no flapping to available).
    exchange.calendars.set_access(ANNA, false).expect("deny");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(away().map(|a| a.reason), Some("out_of_office".to_owned()));
    // Back, and turned off: available.
    exchange.calendars.set_access(ANNA, true).expect("allow");
    exchange
        .calendars
        .set_automatic_replies(
            ANNA,
            AutoRepliesSpec {
                status: "disabled".into(),
                ..AutoRepliesSpec::default()
            },
        )
        .expect("off");
    // Turned off, the change goes through the whole path (replies read, the override
    // removed, the calendar read again, the status published): on a loaded CI machine
    // that has taken more than 15 s.
    assert!(
        eventually_within(Duration::from_secs(30), async || away().is_none()).await,
        "off: available"
    );
    app.stop().await;
}
