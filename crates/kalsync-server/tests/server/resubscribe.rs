//! No change is lost on any path that makes a change subscription: on each, the source
//! gets a booking in the window between the loss (or the start) and the new
//! subscription — made by the simulator just before it creates the subscription, so a
//! read made before subscribing cannot see it and the new subscription never reports it
//! — and the booking must still reach the PBX. Polls are hourly: only the order
//! subscribe-then-read brings it.

use std::time::Duration;

use kalsync_graph_sim::Simulator;

use crate::support::acme::{self, ANNA};
use crate::support::sims::{Exchange, book_lunch_now, exchange_with_anna, simulator_with_anna};
use crate::support::{Launch, Storage, TestApp, eventually, eventually_within, spawn_app};

/// Whether the PBX shows Anna at lunch.
fn at_lunch(app: &TestApp) -> bool {
    app.pbx()
        .current()
        .get(ANNA)
        .and_then(|s| s.status.absence.as_ref())
        .is_some_and(|a| a.reason == "lunch")
}

/// A lunch booked for Anna when `f`'s hook runs.
fn lunch_in(calendars: &Simulator) -> impl FnOnce() + Send + 'static {
    let calendars = calendars.clone();
    move || book_lunch_now(&calendars)
}

/// Waits until the service is subscribed and has read Anna.
async fn settled_with(app: &TestApp, subscribed: impl Fn() -> bool) {
    assert!(
        eventually(async || {
            subscribed() && app.overview_until(|_| true).await.contains("Available")
        })
        .await,
        "subscribed and read"
    );
    // Whatever the start read is done before the fault.
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn ews_streaming_the_first_subscription_is_made_before_the_first_read_counts() {
    let exchange = exchange_with_anna().await;
    let Exchange { calendars, ews, .. } = &exchange;
    // Booked as the service's first Subscribe arrives.
    ews.before_next_subscribe(lunch_in(calendars));
    let app = spawn_app(exchange.acme_over_ews("ntlm", "2016")).await;
    assert!(
        eventually_within(Duration::from_secs(15), async || at_lunch(&app)).await,
        "the lunch booked while the first subscription was made reached the PBX"
    );
    app.stop().await;
}

#[tokio::test]
async fn ews_streaming_subscriptions_exchange_forgot_are_made_again_then_read() {
    let exchange = exchange_with_anna().await;
    let Exchange { calendars, ews, .. } = &exchange;
    let app = spawn_app(exchange.acme_over_ews("ntlm", "2016")).await;
    settled_with(&app, || ews.subscriptions().len() == 1).await;
    assert!(!at_lunch(&app));

    // The mailbox server restarts: every subscription is gone, the stream cut; Anna
    // books a lunch before the service's next Subscribe is answered.
    ews.before_next_subscribe(lunch_in(calendars));
    assert_eq!(ews.forget_subscriptions(), 1);
    assert!(
        eventually_within(Duration::from_secs(15), async || at_lunch(&app)).await,
        "the lunch booked while there was no subscription reached the PBX"
    );
    assert_eq!(ews.subscriptions().len(), 1, "subscribed again");
    app.stop().await;
}

#[tokio::test]
async fn ews_a_user_taken_over_by_another_node_is_subscribed_then_read() {
    let exchange = exchange_with_anna().await;
    let Exchange { calendars, ews, .. } = &exchange;
    let storage = Storage::postgres().await.unwrap_or_else(Storage::sqlite);
    let mut s = exchange.acme_over_ews("ntlm", "2016");
    s.node = Some("node-a".into());
    let first = Launch::new(s).on(storage).spawn().await;
    settled_with(&first, || ews.subscriptions().len() == 1).await;
    let storage = first.halt().await;

    // node-b takes Anna over: read lately, so only the read after its subscription can
    // see the lunch booked as that subscription is made.
    ews.before_next_subscribe(lunch_in(calendars));
    let mut s = exchange.acme_over_ews("ntlm", "2016");
    s.node = Some("node-b".into());
    let second = Launch::new(s).on(storage).spawn().await;
    assert!(
        eventually_within(Duration::from_secs(20), async || at_lunch(&second)).await,
        "the lunch booked as node-b subscribed reached the PBX"
    );
    second.stop().await;
}

#[tokio::test]
async fn exchange_2007_push_with_an_expired_watermark_is_subscribed_afresh_then_read() {
    let exchange = exchange_with_anna().await;
    let Exchange { calendars, ews, .. } = &exchange;
    let start = |storage: Storage| {
        Launch::new(exchange.acme_over_ews("basic", "2007"))
            .public()
            .on(storage)
            .spawn()
    };
    let first = start(Storage::sqlite()).await;
    settled_with(&first, || ews.subscriptions().len() == 1).await;
    // A change, so a watermark is kept.
    let tomorrow = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24);
    calendars
        .create_event(
            ANNA,
            kalsync_graph_sim::EventSpec::new(
                "Möte",
                tomorrow,
                tomorrow + jiff::SignedDuration::from_hours(1),
            ),
        )
        .expect("event");
    assert!(eventually(async || ews.stats().notifications_pushed >= 1).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let storage = first.halt().await;

    // The kept watermark has expired by the restart: the service subscribes afresh, and
    // the lunch is booked as that fresh subscription is made.
    let mut faults = ews.faults();
    faults.expire_watermarks = 1;
    ews.set_faults(faults);
    let (hook_ews, hook_calendars) = (ews.clone(), calendars.clone());
    ews.before_next_subscribe(move || hook_ews.before_next_subscribe(lunch_in(&hook_calendars)));
    let second = start(storage).await;
    assert!(
        eventually_within(Duration::from_secs(15), async || at_lunch(&second)).await,
        "the lunch booked while the fresh subscription was made reached the PBX"
    );
    second.stop().await;
}

#[tokio::test]
async fn exchange_2007_pull_subscriptions_exchange_forgot_resume_from_the_watermark() {
    let exchange = exchange_with_anna().await;
    let Exchange { calendars, ews, .. } = &exchange;
    let app = spawn_app(exchange.acme_over_ews("ntlm", "2007")).await;
    settled_with(&app, || ews.subscriptions().len() == 1).await;
    assert_eq!(ews.subscriptions()[0].2, "pull");

    ews.before_next_subscribe(lunch_in(calendars));
    assert_eq!(ews.forget_subscriptions(), 1);
    // The next pull (every ten seconds) finds the subscription gone; the one made again
    // from the kept watermark replays the lunch, reported at the pull after.
    assert!(
        eventually_within(Duration::from_secs(35), async || at_lunch(&app)).await,
        "the lunch booked while there was no subscription reached the PBX"
    );
    assert_eq!(ews.subscriptions().len(), 1, "subscribed again");
    app.stop().await;
}

#[tokio::test]
async fn graph_a_notification_before_the_subscription_is_stored_is_taken() {
    let sim = simulator_with_anna();
    let (sim_url, _sim) = kalsync_graph_sim::spawn(sim.clone()).await.expect("sim");
    let mut s = acme::settings(&sim_url);
    s.engine.poll_interval_secs = 3600;
    // Booked once Anna's first subscription exists, notified before its 201 is read.
    sim.during_next_subscription(lunch_in(&sim));
    let app = Launch::new(s).public().spawn().await;
    assert!(
        eventually_within(Duration::from_secs(15), async || at_lunch(&app)).await,
        "the lunch reached the PBX"
    );
    assert!(eventually(async || sim.stats().notifications_sent >= 1).await);
    assert_eq!(
        sim.stats().notifications_refused,
        0,
        "the notification that came before the subscription's id was known was taken"
    );
    app.stop().await;
}

#[tokio::test]
async fn graph_a_removed_subscription_is_made_again_then_read() {
    let sim = simulator_with_anna();
    let (sim_url, _sim) = kalsync_graph_sim::spawn(sim.clone()).await.expect("sim");
    let mut s = acme::settings(&sim_url);
    s.engine.poll_interval_secs = 3600;
    let app = Launch::new(s).public().spawn().await;
    settled_with(&app, || sim.subscriptions().len() == 1).await;
    let old = sim.subscriptions()[0].0.clone();

    // Graph loses it (`subscriptionRemoved`); the lunch is booked as the service asks
    // for the new one.
    sim.before_next_subscription(lunch_in(&sim));
    assert_eq!(sim.forget_subscriptions(), 1);
    assert!(
        eventually_within(Duration::from_secs(15), async || at_lunch(&app)).await,
        "the lunch booked while there was no subscription reached the PBX"
    );
    assert!(sim.subscriptions().iter().all(|(id, _, _)| *id != old));
    assert_eq!(sim.subscriptions().len(), 1, "subscribed again");
    app.stop().await;
}

/// Graph removes a subscription before its `201 Created` is read (its maker stores it
/// after the `subscriptionRemoved` came): it is not believed in, but made again, and a
/// lunch booked later reaches the PBX by notification.
#[tokio::test]
async fn graph_a_subscription_removed_before_it_is_stored_is_made_again() {
    let sim = simulator_with_anna();
    let (sim_url, _sim) = kalsync_graph_sim::spawn(sim.clone()).await.expect("sim");
    let mut s = acme::settings(&sim_url);
    s.engine.poll_interval_secs = 3600;
    let removed = sim.clone();
    sim.during_next_subscription(move || {
        removed.forget_subscriptions();
    });
    let app = Launch::new(s).public().spawn().await;
    // The first one was removed before its 201 went out: any one seen is a new one.
    assert!(
        eventually(async || sim.subscriptions().len() == 1).await,
        "subscribed again"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    book_lunch_now(&sim);
    assert!(
        eventually_within(Duration::from_secs(10), async || at_lunch(&app)).await,
        "the lunch reached the PBX by a subscription that exists"
    );
    app.stop().await;
}
