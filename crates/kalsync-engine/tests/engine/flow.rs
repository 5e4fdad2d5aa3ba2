//! From a booking to the PBX and back, through faults and a restart.

use std::time::Duration;

use kalsync_core::Template;
use kalsync_engine::{DeliveryError, SourceError};
use kalsync_store::Store;

use crate::helpers::*;

#[tokio::test]
async fn a_lunch_reaches_the_pbx_at_noon_and_clears_at_one() {
    let w = world(Template::Prefix).await;
    w.book(vec![booking(
        "lunch",
        "2026-11-24 12:00",
        "2026-11-24 13:00",
        "LUN: pizza",
    )]);
    let engine = w.engine_after_read("2026-11-24 09:00").await;
    assert_eq!(
        engine
            .deliver_due(at("2026-11-24 09:00"))
            .await
            .expect("pass")
            .delivered,
        0,
        "nothing is set before noon"
    );
    assert_eq!(engine.next_scheduled(), Some(at("2026-11-24 12:00")));

    assert_eq!(
        engine
            .publish_due(at("2026-11-24 12:00"))
            .await
            .expect("schedule"),
        1
    );
    assert_eq!(
        engine
            .deliver_due(at("2026-11-24 12:00"))
            .await
            .expect("pass")
            .delivered,
        1
    );
    let (delivery, status) = w.pbx.received.lock().expect("lock")[0].clone();
    let absence = status.absence.expect("absent");
    assert_eq!(
        (absence.reason.as_str(), absence.message_sv.as_str()),
        ("lunch", "Lunch, åter 13.00")
    );
    assert_eq!(status.user.extension.as_deref(), Some("201"));
    assert_eq!(delivery.sequence, 1);

    engine
        .publish_due(at("2026-11-24 13:00"))
        .await
        .expect("schedule");
    engine
        .deliver_due(at("2026-11-24 13:00"))
        .await
        .expect("pass");
    assert_eq!(
        w.pbx.statuses(),
        [Some("Lunch, åter 13.00".to_owned()), None]
    );
    let received = w.pbx.received.lock().expect("lock");
    assert_eq!(received[1].0.sequence, 2, "sequences grow per user");
}

#[tokio::test]
async fn after_a_clock_jump_the_state_in_force_goes_out_once() {
    let w = world(Template::Prefix).await;
    w.book(vec![
        booking(
            "lunch",
            "2026-11-24 12:00",
            "2026-11-24 13:00",
            "LUN: pizza",
        ),
        booking(
            "customer",
            "2026-11-24 14:00",
            "2026-11-24 15:00",
            "MOT: Kund",
        ),
    ]);
    let engine = w.engine_after_read("2026-11-24 09:00").await;
    // The clock jumps from 09:00 to 14:30: lunch came and went, the meeting is on.
    assert_eq!(
        engine
            .publish_due(at("2026-11-24 14:30"))
            .await
            .expect("schedule"),
        1
    );
    assert_eq!(
        engine
            .publish_due(at("2026-11-24 14:30"))
            .await
            .expect("again"),
        0,
        "nothing in between is replayed"
    );
    engine
        .deliver_due(at("2026-11-24 14:30"))
        .await
        .expect("pass");
    assert_eq!(w.pbx.statuses(), [Some("Möte, åter 15.00".to_owned())]);
    assert_eq!(engine.next_scheduled(), Some(at("2026-11-24 15:00")));
}

#[tokio::test]
async fn a_change_in_outlook_updates_the_status_in_force() {
    let w = world(Template::Prefix).await;
    w.book(vec![booking(
        "m",
        "2026-11-24 10:00",
        "2026-11-24 11:00",
        "MOT: Volvo",
    )]);
    let engine = w.engine().await;
    let now = at("2026-11-24 10:15");
    engine.sync_user(w.anna.id, now).await.expect("sync");
    engine
        .deliver_due(at("2026-11-24 10:15"))
        .await
        .expect("pass");
    // The meeting runs long; then it is deleted.
    w.book(vec![booking(
        "m",
        "2026-11-24 10:00",
        "2026-11-24 12:00",
        "MOT: Volvo",
    )]);
    engine
        .sync_user(w.anna.id, at("2026-11-24 10:20"))
        .await
        .expect("sync");
    engine
        .deliver_due(at("2026-11-24 10:20"))
        .await
        .expect("pass");
    w.book(vec![]);
    engine
        .sync_user(w.anna.id, at("2026-11-24 10:25"))
        .await
        .expect("sync");
    engine
        .deliver_due(at("2026-11-24 10:25"))
        .await
        .expect("pass");
    assert_eq!(
        w.pbx.statuses(),
        [
            Some("Möte, åter 11.00".to_owned()),
            Some("Möte, åter 12.00".to_owned()),
            None
        ]
    );
    // Reading again without a change sends nothing.
    engine
        .sync_user(w.anna.id, at("2026-11-24 10:26"))
        .await
        .expect("sync");
    assert_eq!(
        engine
            .deliver_due(at("2026-11-24 10:26"))
            .await
            .expect("pass")
            .delivered,
        0
    );
}

#[tokio::test]
async fn after_a_restart_only_the_latest_state_goes_out() {
    let w = world(Template::Prefix).await;
    w.book(vec![
        booking("l", "2026-11-24 12:00", "2026-11-24 13:00", "LUN: x"),
        booking("m", "2026-11-24 13:00", "2026-11-24 14:00", "MOT: y"),
    ]);
    let first = w.engine().await;
    first
        .sync_user(w.anna.id, at("2026-11-24 11:00"))
        .await
        .expect("sync");
    drop(first);
    // The node was down from 11:00 to 13:30: lunch was missed; the meeting is in force.
    let second = w.engine().await;
    assert_eq!(
        second
            .catch_up(at("2026-11-24 13:30"))
            .await
            .expect("catch up"),
        1
    );
    second
        .deliver_due(at("2026-11-24 13:30"))
        .await
        .expect("pass");
    assert_eq!(w.pbx.statuses(), [Some("Möte, åter 14.00".to_owned())]);
    assert_eq!(
        second
            .catch_up(at("2026-11-24 13:31"))
            .await
            .expect("again"),
        0,
        "nothing twice"
    );
    assert_eq!(second.next_scheduled(), Some(at("2026-11-24 14:00")));
}

#[tokio::test]
async fn failed_deliveries_are_retried_then_dead_lettered() {
    let w = world(Template::Prefix).await;
    w.book(vec![booking(
        "l",
        "2026-11-24 12:00",
        "2026-11-24 13:00",
        "LUN: x",
    )]);
    let engine = w.engine_after_read("2026-11-24 12:10").await;
    w.pbx
        .failures
        .lock()
        .expect("lock")
        .push(DeliveryError::Retry {
            message: "503".into(),
            retry_after: Some(Duration::from_secs(30)),
        });
    let now = at("2026-11-24 12:10");
    assert_eq!(engine.deliver_due(now).await.expect("pass").retried, 1);
    let pending = w
        .store
        .due_deliveries("test-node", now + jiff::SignedDuration::from_secs(31), 10)
        .await
        .expect("due");
    assert_eq!(pending.len(), 1);
    assert_eq!(
        pending[0].next_attempt.as_millisecond(),
        (now + jiff::SignedDuration::from_secs(30)).as_millisecond(),
        "Retry-After is honoured"
    );
    assert!(
        w.store
            .due_deliveries("test-node", now + jiff::SignedDuration::from_secs(29), 10)
            .await
            .expect("due")
            .is_empty()
    );
    assert_eq!(
        engine
            .deliver_due(now + jiff::SignedDuration::from_secs(31))
            .await
            .expect("pass")
            .delivered,
        1
    );
    assert_eq!(w.pbx.statuses().len(), 1);

    // A PBX that keeps failing ends in a dead letter after the budget (3 attempts).
    engine
        .publish_due(at("2026-11-24 13:00"))
        .await
        .expect("clear scheduled");
    for _ in 0..3 {
        w.pbx
            .failures
            .lock()
            .expect("lock")
            .push(DeliveryError::Retry {
                message: "connection refused".into(),
                retry_after: None,
            });
    }
    let mut t = at("2026-11-24 13:00");
    for _ in 0..3 {
        engine.deliver_due(t).await.expect("pass");
        t += jiff::SignedDuration::from_secs(120);
    }
    let dead = w.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("connection refused"));
    assert_eq!(engine.metrics().dead_total(), 1);
}

#[tokio::test]
async fn a_gone_webhook_is_switched_off() {
    let w = world(Template::Prefix).await;
    w.book(vec![booking(
        "l",
        "2026-11-24 12:00",
        "2026-11-24 13:00",
        "LUN: x",
    )]);
    let engine = w.engine_after_read("2026-11-24 12:10").await;
    w.pbx
        .failures
        .lock()
        .expect("lock")
        .push(DeliveryError::Gone("410".into()));
    assert_eq!(
        engine
            .deliver_due(at("2026-11-24 12:10"))
            .await
            .expect("pass")
            .dead,
        1
    );
    assert!(!w.store.target(w.target.id).await.expect("target").active);
}

#[tokio::test]
async fn a_throttled_read_is_retried_after_retry_after_and_reported() {
    let w = world(Template::Prefix).await;
    let engine = w.engine().await;
    *w.calendars.fail_next.lock().expect("lock") = Some(SourceError::Throttled {
        retry_after: Duration::from_secs(20),
    });
    let now = at("2026-11-24 09:00");
    engine.renew_leases(now).await.expect("users");
    assert_eq!(engine.sync_due(now).await, 1);
    let user = w.store.user(w.anna.id).await.expect("user");
    assert!(
        user.last_error
            .as_deref()
            .is_some_and(|e| e.contains("throttled"))
    );
    assert_eq!(
        engine
            .sync_due(now + jiff::SignedDuration::from_secs(19))
            .await,
        0,
        "waits for Retry-After"
    );
    assert_eq!(
        engine
            .sync_due(now + jiff::SignedDuration::from_secs(20))
            .await,
        1
    );
    assert_eq!(
        w.store.user(w.anna.id).await.expect("user").last_error,
        None
    );
}

#[tokio::test]
async fn subjects_are_kept_only_where_titles_may_be_shown() {
    let w = world(Template::Prefix).await;
    w.book(vec![booking(
        "m",
        "2026-11-24 10:00",
        "2026-11-24 11:00",
        "MOT: Hemligt förvärv",
    )]);
    let engine = w.engine_after_read("2026-11-24 10:15").await;
    engine
        .deliver_due(at("2026-11-24 10:15"))
        .await
        .expect("pass");
    assert!(
        w.store
            .bookings(w.anna.id)
            .await
            .expect("bookings")
            .iter()
            .all(|b| b.subject.is_none())
    );
    let received = w.pbx.received.lock().expect("lock").clone();
    assert_eq!(
        received[0]
            .1
            .absence
            .as_ref()
            .and_then(|a| a.subject.clone()),
        None
    );
    assert!(!w.store.dump_for_tests().await.contains("förvärv"));
}

#[tokio::test]
async fn the_run_loop_delivers_on_time_and_stops_cleanly() {
    let w = world(Template::Prefix).await;
    let now = jiff::Timestamp::now();
    let start = now + jiff::SignedDuration::from_millis(1500);
    let mut b = booking("soon", "2026-11-24 12:00", "2026-11-24 13:00", "LUN: x");
    b.time = kalsync_core::BookingTime::timed(start, start + jiff::SignedDuration::from_secs(3600))
        .expect("time");
    w.book(vec![b]);
    // The run loop reads the machine's clock, so this test's engine starts on it too.
    let engine = w.engine_at(now).await;
    let stop = kalsync_engine::CancellationToken::new();
    let running = tokio::spawn(engine.clone().run(stop.clone(), Duration::from_secs(5)));
    // A real sleep: the run loop reads the wall clock (jiff), which tokio's paused time
    // does not move.
    tokio::time::sleep(Duration::from_millis(2800)).await;
    assert_eq!(
        w.pbx.received.lock().expect("lock").len(),
        1,
        "the lunch went out"
    );
    let late = w.pbx.times.lock().expect("lock")[0].duration_since(start);
    assert!(
        late < jiff::SignedDuration::from_secs(1),
        "within a second of its time: {late}"
    );
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(6), running)
        .await
        .expect("stops within the grace")
        .expect("task");
}

#[tokio::test]
async fn after_the_clock_steps_back_the_status_sent_early_is_taken_back() {
    let w = world(Template::Prefix).await;
    w.book(vec![booking(
        "customer",
        "2026-11-24 14:00",
        "2026-11-24 15:00",
        "MOT: Kund",
    )]);
    let engine = w.engine_after_read("2026-11-24 09:00").await;
    // A clock five hours fast: the meeting goes out early.
    engine
        .publish_due(at("2026-11-24 14:30"))
        .await
        .expect("schedule");
    engine
        .deliver_due(at("2026-11-24 14:30"))
        .await
        .expect("pass");
    assert_eq!(w.pbx.statuses(), [Some("Möte, åter 15.00".to_owned())]);
    // Set right: the state in force at 09:30 goes out, and the meeting waits for 14:00.
    engine
        .catch_up(at("2026-11-24 09:30"))
        .await
        .expect("catch up");
    engine
        .deliver_due(at("2026-11-24 09:30"))
        .await
        .expect("pass");
    assert_eq!(
        w.pbx.statuses(),
        [Some("Möte, åter 15.00".to_owned()), None]
    );
    assert_eq!(engine.next_scheduled(), Some(at("2026-11-24 14:00")));
}

#[tokio::test]
async fn a_reread_asked_under_a_fast_clock_waits_no_longer_once_it_steps_back() {
    let w = world(Template::Prefix).await;
    w.book(Vec::new());
    let engine = w.engine_after_read("2026-11-24 09:00").await;
    // A notification while the clock was an hour fast.
    engine.mark_dirty(w.anna.id, at("2026-11-24 10:00"));
    assert_eq!(
        engine.sync_due(at("2026-11-24 09:01")).await,
        0,
        "not due yet"
    );
    // The clock is set right: the re-read is due now, not in an hour.
    engine.clock_stepped_back(std::time::Duration::from_secs(3600));
    assert_eq!(engine.sync_due(at("2026-11-24 09:01")).await, 1);
}

#[tokio::test]
async fn a_read_recorded_in_the_future_does_not_delay_the_next_one() {
    let w = world(Template::Prefix).await;
    w.book(vec![booking(
        "l",
        "2026-11-24 12:00",
        "2026-11-24 13:00",
        "LUN: x",
    )]);
    // Another node, whose clock is a day ahead, read Anna last; this node's clock says
    // it is a day earlier. Waiting for a poll "five minutes after" that read would
    // leave her unread for a day.
    w.store
        .record_sync(w.anna.id, at("2026-11-25 00:00"), None)
        .await
        .expect("recorded");
    let engine = w.engine().await;
    assert_eq!(engine.sync_due(at(START)).await, 1, "read at once");
    engine
        .publish_due(at("2026-11-24 12:00"))
        .await
        .expect("schedule");
    engine
        .deliver_due(at("2026-11-24 12:00"))
        .await
        .expect("pass");
    assert_eq!(w.pbx.statuses(), [Some("Lunch, åter 13.00".to_owned())]);
}

#[tokio::test]
async fn notifications_faster_than_the_debounce_cannot_keep_a_user_from_being_read() {
    let w = world(Template::Prefix).await;
    w.book(vec![booking(
        "l",
        "2026-11-24 12:00",
        "2026-11-24 13:00",
        "LUN: x",
    )]);
    let first = at("2026-11-24 11:00");
    let engine = w.engine_with(first, Duration::from_secs(2)).await;
    assert_eq!(engine.sync_due(first).await, 1, "the first read");
    let reads = || w.calendars.reads.load(std::sync::atomic::Ordering::Relaxed);
    let before = reads();
    // One notification every 100 ms for ten seconds, forged or real: the read they ask
    // for is due two seconds after the first of them and happens then.
    let mut read_at = None;
    for i in 0..100 {
        let t = first + jiff::SignedDuration::from_millis(100 * i);
        engine.mark_dirty(w.anna.id, t);
        if engine.sync_due(t).await > 0 && read_at.is_none() {
            read_at = Some(t);
        }
    }
    assert_eq!(
        read_at,
        Some(first + jiff::SignedDuration::from_secs(2)),
        "read within the debounce of the first notification"
    );
    assert!(
        reads() - before >= 4,
        "and again every debounce while they go on"
    );
}

#[tokio::test]
async fn a_notification_does_not_cut_a_sources_retry_after_short() {
    let w = world(Template::Prefix).await;
    let now = at("2026-11-24 09:00");
    let engine = w.engine_with(now, Duration::from_secs(2)).await;
    *w.calendars.fail_next.lock().expect("lock") = Some(SourceError::Throttled {
        retry_after: Duration::from_secs(20),
    });
    assert_eq!(engine.sync_due(now).await, 1);
    let later = now + jiff::SignedDuration::from_secs(5);
    engine.mark_dirty(w.anna.id, later);
    assert_eq!(
        engine
            .sync_due(later + jiff::SignedDuration::from_secs(2))
            .await,
        0,
        "Graph said wait 20 s"
    );
    assert_eq!(
        engine
            .sync_due(now + jiff::SignedDuration::from_secs(20))
            .await,
        1
    );
}

#[tokio::test]
async fn a_dead_letter_says_what_failed_but_not_where() {
    let w = world(Template::Prefix).await;
    w.book(vec![booking(
        "l",
        "2026-11-24 12:00",
        "2026-11-24 13:00",
        "LUN: x",
    )]);
    let engine = w.engine_after_read("2026-11-24 12:10").await;
    w.pbx
        .failures
        .lock()
        .expect("lock")
        .push(DeliveryError::Rejected(
            "422 from http://pbx.corp.example:8443/hook (10.20.0.7:8443): unknown extension".into(),
        ));
    engine
        .deliver_due(at("2026-11-24 12:10"))
        .await
        .expect("pass");
    let dead = w.dead_letters().await;
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("422 from (address) ((address)): unknown extension")
    );
}

#[tokio::test]
async fn a_new_subscription_owes_a_read_unless_one_is_due_and_spares_the_polls() {
    let w = world(Template::Prefix).await;
    let reads = || w.calendars.reads.load(std::sync::atomic::Ordering::Relaxed);
    let first = at("2026-11-24 09:00");
    let engine = w.engine_at(first).await;
    assert_eq!(engine.sync_due(first).await, 1, "the first read");

    // Subscribed after that read: a change between the two is in neither, so the user
    // is read again — even where the wall clock says the read came later (it stepped).
    let made = first - jiff::SignedDuration::from_secs(60);
    engine.subscribed(w.anna.id, made).await;
    // Subscribed again before that read began: the one read covers both.
    engine.subscribed(w.anna.id, made).await;
    assert_eq!(
        engine.sync_due(made).await,
        1,
        "read after subscribing, once"
    );
    let made = first + jiff::SignedDuration::from_secs(1);
    assert_eq!(engine.sync_due(made).await, 0, "nothing more is owed");

    // Notified users are polled only as a safety net (15 minutes), others every five.
    let before = reads();
    let six = made + jiff::SignedDuration::from_mins(6);
    assert_eq!(engine.sync_due(six).await, 0, "no poll after six minutes");
    engine.notified(w.anna.id, false);
    // A poll is due, jittered by up to a tenth of its interval.
    let polled = engine.sync_due(six).await
        + engine
            .sync_due(six + jiff::SignedDuration::from_secs(31))
            .await;
    assert_eq!(polled, 1, "polled once unsubscribed");
    assert_eq!(reads() - before, 1);
    engine.notified(w.anna.id, true);
    let fourteen = six + jiff::SignedDuration::from_mins(14);
    assert_eq!(
        engine.sync_due(fourteen).await,
        0,
        "not polled before 15 minutes"
    );
    let sixteen = six + jiff::SignedDuration::from_mins(16);
    let polled = engine.sync_due(sixteen).await
        + engine
            .sync_due(sixteen + jiff::SignedDuration::from_secs(91))
            .await;
    assert_eq!(polled, 1, "the safety-net poll");
}

#[tokio::test]
async fn a_refused_read_is_tried_once_more_then_left_to_the_polls() {
    let w = world(Template::Prefix).await;
    let first = at("2026-11-24 09:00");
    let engine = w.engine_at(first).await;
    let secs = |s: i64| first + jiff::SignedDuration::from_secs(s);
    let refuse = || {
        *w.calendars.fail_next.lock().expect("lock") = Some(
            kalsync_engine::SourceError::Credentials("token revoked".into()),
        );
    };
    // A token revoked as it was used: the read asked for is not dropped.
    refuse();
    assert_eq!(engine.sync_due(first).await, 1, "refused");
    assert_eq!(engine.sync_due(secs(30)).await, 0, "not hammered");
    assert_eq!(
        engine.sync_due(secs(61)).await,
        1,
        "tried once more, and read"
    );

    // Refused twice in a row (a wrong password): the second is left to the polls, so
    // the account is not locked out by retries.
    engine.mark_dirty(w.anna.id, secs(100));
    refuse();
    assert_eq!(engine.sync_due(secs(100)).await, 1, "refused");
    refuse();
    assert_eq!(engine.sync_due(secs(161)).await, 1, "refused again");
    assert_eq!(
        engine.sync_due(secs(250)).await,
        0,
        "no third try before a poll"
    );
}

#[tokio::test]
async fn a_batch_target_gets_many_statuses_per_request_and_a_failed_batch_is_retried_whole() {
    let w = world(Template::Prefix).await;
    w.pbx.batch.store(2, std::sync::atomic::Ordering::Relaxed);
    let mut users = vec![w.anna.clone()];
    for (i, name) in ["bo", "carl", "dora", "eva"].iter().enumerate() {
        users.push(w.colleague(name, Some(&format!("{}", 202 + i))).await);
    }
    for user in &users {
        w.calendars.bookings.lock().expect("lock").insert(
            user.email.to_string(),
            vec![booking(
                "lunch",
                "2026-11-24 12:00",
                "2026-11-24 13:00",
                "LUN: pizza",
            )],
        );
    }
    let engine = w.engine().await;
    for user in &users {
        read(&engine, user, "2026-11-24 09:00").await;
    }
    assert_eq!(publish(&engine, "2026-11-24 12:00").await, 5);
    let pass = deliver(&engine, "2026-11-24 12:00").await;
    assert_eq!(pass.delivered, 5);
    let mut sizes = w.pbx.batches.lock().expect("lock").clone();
    sizes.sort_unstable();
    assert_eq!(sizes, [1, 2, 2], "five statuses in three requests");
    assert_eq!(w.pbx.received.lock().expect("lock").len(), 5);

    // At one, the first batch sent fails: its two deliveries are retried, the rest land.
    w.pbx.batches.lock().expect("lock").clear();
    w.pbx
        .failures
        .lock()
        .expect("lock")
        .push(DeliveryError::Retry {
            message: "webhook answered 503".into(),
            retry_after: Some(Duration::from_secs(5)),
        });
    publish(&engine, "2026-11-24 13:00").await;
    let pass = deliver(&engine, "2026-11-24 13:00").await;
    assert_eq!((pass.delivered, pass.retried), (3, 2));
    let pass = deliver(&engine, "2026-11-24 13:00:05").await;
    assert_eq!((pass.delivered, pass.retried), (2, 0));
    let cleared = w
        .pbx
        .received
        .lock()
        .expect("lock")
        .iter()
        .filter(|(_, s)| s.absence.is_none())
        .count();
    assert_eq!(cleared, 5, "everyone's lunch cleared, once each");

    // A refusal is the whole batch's: its deliveries are dead letters.
    w.pbx
        .failures
        .lock()
        .expect("lock")
        .push(DeliveryError::Rejected(
            "webhook answered 400 Bad Request".into(),
        ));
    w.calendars.bookings.lock().expect("lock").insert(
        "anna@acme.example".into(),
        vec![booking(
            "kund",
            "2026-11-24 14:00",
            "2026-11-24 15:00",
            "MOT: Volvo",
        )],
    );
    read(&engine, &w.anna, "2026-11-24 13:30").await;
    publish(&engine, "2026-11-24 14:00").await;
    let pass = deliver(&engine, "2026-11-24 14:00").await;
    assert_eq!(pass.dead, 1, "{pass:?} {:?}", w.pbx.statuses());
    assert_eq!(w.dead_letters().await.len(), 1);
}

#[tokio::test]
async fn a_transition_is_written_ahead_and_sent_at_its_time_once() {
    let w = world(Template::Prefix).await;
    w.book(vec![booking(
        "lunch",
        "2026-11-24 12:00",
        "2026-11-24 13:00",
        "LUN: pizza",
    )]);
    let engine = w.engine_after_read("2026-11-24 09:00").await;
    // Thirty seconds before noon the lunch is written, due at noon.
    assert_eq!(
        publish(&engine, "2026-11-24 11:59:20").await,
        0,
        "not yet within the time written ahead"
    );
    assert_eq!(publish(&engine, "2026-11-24 11:59:40").await, 1);
    assert_eq!(
        engine.next_ahead(at("2026-11-24 11:59:40")),
        Some(at("2026-11-24 12:00"))
    );
    assert_eq!(
        deliver(&engine, "2026-11-24 11:59:50").await.delivered,
        0,
        "not sent before its time"
    );
    assert_eq!(deliver(&engine, "2026-11-24 12:00").await.delivered, 1);
    assert_eq!(
        publish(&engine, "2026-11-24 12:00").await,
        0,
        "written once"
    );
    assert_eq!(w.pbx.statuses(), [Some("Lunch, åter 13.00".to_owned())]);
    // A restart between writing the end ahead and its time: sent at its time, once.
    publish(&engine, "2026-11-24 12:59:45").await;
    drop(engine);
    let again = w.engine_at(at("2026-11-24 12:59:50")).await;
    again
        .catch_up(at("2026-11-24 12:59:50"))
        .await
        .expect("catch up");
    deliver(&again, "2026-11-24 12:59:50").await;
    publish(&again, "2026-11-24 12:59:55").await;
    deliver(&again, "2026-11-24 13:00").await;
    publish(&again, "2026-11-24 13:00").await;
    deliver(&again, "2026-11-24 13:00").await;
    let statuses = w.pbx.statuses();
    assert_eq!(
        statuses.first(),
        Some(&Some("Lunch, åter 13.00".to_owned()))
    );
    assert_eq!(statuses.last(), Some(&None), "cleared at one: {statuses:?}");
    assert_eq!(
        statuses.iter().filter(|s| s.is_none()).count(),
        1,
        "cleared once: {statuses:?}"
    );
}

#[tokio::test]
async fn a_change_before_a_transition_written_ahead_rewrites_or_withdraws_it() {
    let w = world(Template::Prefix).await;
    w.book(vec![booking(
        "lunch",
        "2026-11-24 12:00",
        "2026-11-24 13:00",
        "LUN: pizza",
    )]);
    let engine = w.engine_after_read("2026-11-24 09:00").await;
    publish(&engine, "2026-11-24 11:59:40").await;
    // Cancelled ten seconds before noon: what was written ahead is withdrawn, and the
    // PBX, told nothing yet, is told nothing.
    w.book(vec![]);
    read(&engine, &w.anna, "2026-11-24 11:59:50").await;
    publish(&engine, "2026-11-24 11:59:50").await;
    deliver(&engine, "2026-11-24 12:00").await;
    assert!(w.pbx.statuses().is_empty(), "{:?}", w.pbx.statuses());
    // A meeting at one, written ahead; moved to a customer meeting ending later just
    // before: the new one is what goes out at one.
    w.book(vec![booking(
        "m",
        "2026-11-24 13:00",
        "2026-11-24 14:00",
        "MOT: intern",
    )]);
    read(&engine, &w.anna, "2026-11-24 12:30").await;
    publish(&engine, "2026-11-24 12:59:40").await;
    w.book(vec![booking(
        "m",
        "2026-11-24 13:00",
        "2026-11-24 15:00",
        "MOT: Kund",
    )]);
    read(&engine, &w.anna, "2026-11-24 12:59:50").await;
    publish(&engine, "2026-11-24 12:59:50").await;
    deliver(&engine, "2026-11-24 13:00").await;
    assert_eq!(w.pbx.statuses(), [Some("Möte, åter 15.00".to_owned())]);
}
