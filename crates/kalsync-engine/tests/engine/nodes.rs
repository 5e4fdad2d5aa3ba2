//! Several nodes on one database: a user belongs to one node at a time, a stopped node's
//! users move on within the lease time and are read by the node that takes them, and a
//! read request reaches the holder.

use std::sync::Arc;
use std::time::Duration;

use kalsync_core::Template;
use kalsync_engine::{Engine, EngineConfig, Source, Target};
use kalsync_store::Store;

use crate::helpers::*;

fn node(w: &World, name: &str, store: Arc<dyn Store>) -> Arc<Engine> {
    let calendars = w.calendars.clone();
    let pbx = w.pbx.clone();
    let config = EngineConfig {
        node: name.into(),
        debounce: Duration::ZERO,
        lease_ttl: Duration::from_millis(400),
        ..EngineConfig::default()
    };
    Engine::new(
        store,
        config,
        Arc::new(move |_| Ok(calendars.clone() as Arc<dyn Source>)),
        Arc::new(move |_| Ok(pbx.clone() as Arc<dyn Target>)),
    )
}

async fn takeover(store: Arc<dyn Store>, w: &World) {
    let a = node(w, "node-a", store.clone());
    let b = node(w, "node-b", store.clone());
    let now = at("2026-11-24 09:00");
    assert_eq!(a.renew_leases(now).await.expect("a"), 1);
    assert_eq!(
        b.renew_leases(now).await.expect("b"),
        0,
        "a user belongs to one node"
    );
    assert!(a.holds(w.anna.id) && !b.holds(w.anna.id));

    // A notification lands on node b: it asks the holder to read.
    store.request_sync(w.anna.id).await.expect("request");
    assert_eq!(b.claim_requests(now).await.expect("b claims"), 0);
    assert_eq!(a.claim_requests(now).await.expect("a claims"), 1);
    assert_eq!(a.sync_due(now).await, 1);
    a.deliver_due(now).await.expect("a delivers");
    assert_eq!(w.pbx.received.lock().expect("lock").len(), 1);

    // Node a is told of a change and stops without a word before reading it; after the
    // lease time node b holds the user and, the lease never released, reads it.
    a.mark_dirty(w.anna.id, now);
    let later = now + jiff::SignedDuration::from_millis(500);
    assert_eq!(b.renew_leases(later).await.expect("b"), 1);
    assert!(b.holds(w.anna.id));
    assert_eq!(a.renew_leases(later).await.expect("a"), 0, "a lost it");
    assert_eq!(
        b.claim_requests(later).await.expect("b claims"),
        1,
        "what node a was told and did not read is read by node b"
    );
    // Node b picks up where node a stopped: nothing is sent twice.
    assert_eq!(b.catch_up(later).await.expect("catch up"), 0);
}

#[tokio::test]
async fn users_move_to_another_node_when_one_stops() {
    let w = world(Template::Prefix).await;
    w.book(vec![booking(
        "l",
        "2000-01-01 00:00",
        "2100-01-01 00:00",
        "LUN: x",
    )]);
    takeover(w.store.clone(), &w).await;
}

#[tokio::test]
async fn a_read_owed_to_a_user_that_moved_goes_to_the_node_that_holds_it() {
    let w = world(Template::Prefix).await;
    let store = w.store.clone();
    let a = node(&w, "node-a", store.clone());
    let b = node(&w, "node-b", store.clone());
    let now = at("2026-11-24 09:00");
    assert_eq!(a.renew_leases(now).await.expect("a"), 1);

    // Node a is told of a change; before it reads, the user moves to node b (here its
    // lease is let go; a stall or a clock step does the same).
    a.mark_dirty(w.anna.id, now);
    store.release_leases("node-a").await.expect("let go");
    assert_eq!(b.renew_leases(now).await.expect("b takes"), 1);
    assert_eq!(b.claim_requests(now).await.expect("nothing yet"), 0);
    assert_eq!(a.renew_leases(now).await.expect("a lost it"), 0);
    assert_eq!(
        b.claim_requests(now).await.expect("b claims"),
        1,
        "node a handed its pending read over"
    );

    // Node a finishes a subscription for the user it no longer holds: node b reads.
    a.subscribed(w.anna.id, now).await;
    assert_eq!(a.sync_due(now).await, 0, "node a reads nothing");
    assert_eq!(b.claim_requests(now).await.expect("b claims"), 1);
}

/// A source that says, on each read, which app it was built for.
struct Labelled {
    app: String,
    calendars: Arc<Calendars>,
    reads: Arc<std::sync::Mutex<Vec<String>>>,
}

#[async_trait::async_trait]
impl Source for Labelled {
    async fn read(
        &self,
        mailbox: &kalsync_core::EmailAddress,
        window: kalsync_core::Window,
        subjects: bool,
    ) -> Result<kalsync_engine::SourceRead, kalsync_engine::SourceError> {
        self.reads.lock().expect("lock").push(self.app.clone());
        self.calendars.read(mailbox, window, subjects).await
    }
}

/// An admin's change of an instance's source (another app, a new secret) is taken up
/// at the next lease renewal, from the instance as stored then; until then the source in
/// use stays.
#[tokio::test]
async fn a_changed_source_is_taken_up_at_the_next_lease_renewal() {
    let w = world(Template::Prefix).await;
    let reads: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let (calendars, pbx, seen) = (w.calendars.clone(), w.pbx.clone(), reads.clone());
    let engine = Engine::new(
        w.store.clone(),
        EngineConfig {
            node: "test-node".into(),
            debounce: Duration::ZERO,
            ..EngineConfig::default()
        },
        Arc::new(move |instance: &kalsync_store::Instance| {
            let app = match &instance.source {
                kalsync_store::SourceConfig::Graph { client_id, .. } => client_id.clone(),
                kalsync_store::SourceConfig::Ews { .. } => "ews".into(),
            };
            Ok(Arc::new(Labelled {
                app,
                calendars: calendars.clone(),
                reads: seen.clone(),
            }) as Arc<dyn Source>)
        }),
        Arc::new(move |_| Ok(pbx.clone() as Arc<dyn Target>)),
    );
    let now = at(START);
    let read_by = || reads.lock().expect("lock").last().cloned();
    engine.renew_leases(now).await.expect("lease");
    engine.sync_user(w.anna.id, now).await.expect("read");
    assert_eq!(read_by().as_deref(), Some("c"));

    let mut instance = w.store.instance(w.anna.instance).await.expect("instance");
    let kalsync_store::SourceConfig::Graph { client_id, .. } = &mut instance.source else {
        panic!("a Graph instance");
    };
    *client_id = "another-app".into();
    w.store.update_instance(&instance).await.expect("changed");
    engine.sync_user(w.anna.id, now).await.expect("read");
    assert_eq!(
        read_by().as_deref(),
        Some("c"),
        "until the renewal the source in use stays"
    );

    engine.renew_leases(now).await.expect("lease");
    engine.sync_user(w.anna.id, now).await.expect("read");
    assert_eq!(
        read_by().as_deref(),
        Some("another-app"),
        "the renewal takes the changed source up"
    );
}

/// A source whose reads take what the calendar holds at once and then wait for the test
/// to let them finish: a read that is slow to come back.
struct Slow {
    calendars: Arc<Calendars>,
    began: Arc<tokio::sync::Notify>,
    finish: Arc<tokio::sync::Semaphore>,
}

#[async_trait::async_trait]
impl Source for Slow {
    async fn read(
        &self,
        mailbox: &kalsync_core::EmailAddress,
        window: kalsync_core::Window,
        subjects: bool,
    ) -> Result<kalsync_engine::SourceRead, kalsync_engine::SourceError> {
        let read = self.calendars.read(mailbox, window, subjects).await;
        self.began.notify_one();
        let _go = self.finish.acquire().await;
        read
    }
}

/// Node a begins a read; the user moves to node b (a stall, a clock step) while it runs,
/// and node b reads the booking made meanwhile and writes it. Node a's read, older, comes
/// back last: it must not put the calendar as it was back (it would stay so until the
/// next poll — an hour for a notified mailbox), and the holder reads once more.
#[tokio::test]
async fn a_slow_read_of_a_user_that_moved_does_not_undo_the_new_holders() {
    let w = world(Template::Prefix).await;
    let store: Arc<dyn Store> = w.store.clone();
    let began = Arc::new(tokio::sync::Notify::new());
    let finish = Arc::new(tokio::sync::Semaphore::new(0));
    let slow = Arc::new(Slow {
        calendars: w.calendars.clone(),
        began: began.clone(),
        finish: finish.clone(),
    });
    let pbx = w.pbx.clone();
    let a = Engine::new(
        store.clone(),
        EngineConfig {
            node: "node-a".into(),
            debounce: Duration::ZERO,
            lease_ttl: Duration::from_millis(400),
            ..EngineConfig::default()
        },
        Arc::new(move |_| Ok(slow.clone() as Arc<dyn Source>)),
        Arc::new(move |_| Ok(pbx.clone() as Arc<dyn Target>)),
    );
    let b = node(&w, "node-b", store.clone());
    let now = at("2026-11-24 09:00");
    assert_eq!(a.renew_leases(now).await.expect("a"), 1);

    // Node a's read takes the empty calendar and is slow to come back.
    let reading = tokio::spawn({
        let a = a.clone();
        let anna = w.anna.id;
        async move { a.sync_user(anna, now).await }
    });
    began.notified().await;

    // Meanwhile the user moves to node b, Anna books lunch, node b reads and writes it.
    store.release_leases("node-a").await.expect("let go");
    assert_eq!(b.renew_leases(now).await.expect("b takes"), 1);
    w.book(vec![booking(
        "l",
        "2026-11-24 08:30",
        "2026-11-24 10:00",
        "LUN: x",
    )]);
    b.sync_user(w.anna.id, now).await.expect("b reads");

    // Node a's read comes back last: it writes nothing, and node b reads again.
    finish.add_permits(1);
    let outcome = reading.await.expect("joined").expect("a's read");
    let stored = store
        .timeline(w.anna.id)
        .await
        .expect("timeline")
        .expect("stored");
    assert_eq!(
        stored.absences.len(),
        1,
        "the lunch node b read is still stored"
    );
    assert_eq!(outcome, kalsync_engine::SyncOutcome::Overtaken);
    assert_eq!(
        b.claim_requests(now).await.expect("b claims"),
        1,
        "the holder reads once more"
    );
    assert_eq!(b.sync_due(now).await, 1);
    assert_eq!(
        store
            .timeline(w.anna.id)
            .await
            .expect("timeline")
            .expect("stored")
            .absences
            .len(),
        1
    );
}

/// Adds `n` more users to Anna's instance.
async fn more_users(w: &World, n: usize) {
    for i in 0..n {
        w.colleague(&format!("user{i}"), None).await;
    }
}

#[tokio::test]
async fn nodes_share_the_users_and_one_that_joins_gets_its_part() {
    let w = world(Template::Prefix).await;
    more_users(&w, 9).await;
    let store: Arc<dyn Store> = w.store.clone();
    let (a, b, c) = (
        node(&w, "node-a", store.clone()),
        node(&w, "node-b", store.clone()),
        node(&w, "node-c", store.clone()),
    );
    let now = at("2026-11-24 09:00");
    let ms = jiff::SignedDuration::from_millis;
    assert_eq!(a.renew_leases(now).await.expect("a"), 10, "alone: all");
    assert_eq!(b.renew_leases(now).await.expect("b"), 0, "none free yet");
    // At its next renewal node a sees node b and lets half go; node b takes them.
    assert_eq!(a.renew_leases(now + ms(100)).await.expect("a"), 5);
    assert_eq!(b.renew_leases(now + ms(100)).await.expect("b"), 5);
    // A third joins: ceil(10 / 3) = 4 each at most.
    assert_eq!(c.renew_leases(now + ms(150)).await.expect("c"), 0);
    assert_eq!(a.renew_leases(now + ms(200)).await.expect("a"), 4);
    assert_eq!(b.renew_leases(now + ms(200)).await.expect("b"), 4);
    assert_eq!(c.renew_leases(now + ms(200)).await.expect("c"), 2);
    // Stable: nobody moves again.
    for t in [250, 300] {
        let held = (
            a.renew_leases(now + ms(t)).await.expect("a"),
            b.renew_leases(now + ms(t)).await.expect("b"),
            c.renew_leases(now + ms(t)).await.expect("c"),
        );
        assert_eq!(held, (4, 4, 2));
    }
    let all: std::collections::HashSet<_> = store
        .users(w.anna.instance)
        .await
        .expect("users")
        .into_iter()
        .map(|u| u.id)
        .filter(|u| [&a, &b, &c].iter().filter(|n| n.holds(*u)).count() == 1)
        .collect();
    assert_eq!(all.len(), 10, "each user is held by exactly one node");

    // Node c stops without a word: the others know when its leases run out and split
    // its users between them then.
    let expiry = now + ms(300) + ms(400);
    assert_eq!(a.renew_leases(now + ms(350)).await.expect("a"), 4);
    assert_eq!(b.renew_leases(now + ms(350)).await.expect("b"), 4);
    let after = expiry + ms(1);
    let held = (
        a.renew_leases(after).await.expect("a"),
        b.renew_leases(after).await.expect("b"),
    );
    assert_eq!(
        held,
        (5, 5),
        "node c's two users are taken the moment its leases end"
    );
}

#[tokio::test]
async fn a_user_with_a_transition_soon_is_not_moved() {
    let w = world(Template::Prefix).await;
    more_users(&w, 1).await;
    let now = at("2026-11-24 09:00");
    // Anna's lunch begins in 40 s: her node keeps her while a second node joins.
    w.book(vec![booking(
        "l",
        "2026-11-24 09:00:40",
        "2026-11-24 10:00",
        "LUN: x",
    )]);
    let store: Arc<dyn Store> = w.store.clone();
    let (a, b) = (
        node(&w, "node-a", store.clone()),
        node(&w, "node-b", store.clone()),
    );
    assert_eq!(a.renew_leases(now).await.expect("a"), 2);
    assert_eq!(a.sync_due(now).await, 2);
    a.publish_due(now).await.expect("schedule");
    assert_eq!(b.renew_leases(now).await.expect("b"), 0);
    let ms = jiff::SignedDuration::from_millis;
    assert_eq!(a.renew_leases(now + ms(100)).await.expect("a"), 1);
    assert!(
        a.holds(w.anna.id),
        "the user let go is the one without a transition soon"
    );
    assert_eq!(b.renew_leases(now + ms(100)).await.expect("b"), 1);
}

/// Anna with a lunch from noon to one, and two nodes on her store.
async fn lunch_and_two_nodes() -> (World, Arc<dyn Store>, Arc<Engine>, Arc<Engine>) {
    let w = world(Template::Prefix).await;
    w.book(vec![booking(
        "lunch",
        "2026-11-24 12:00",
        "2026-11-24 13:00",
        "LUN: pizza",
    )]);
    let store: Arc<dyn Store> = w.store.clone();
    let a = node(&w, "node-a", store.clone());
    let b = node(&w, "node-b", store.clone());
    (w, store, a, b)
}

#[tokio::test]
async fn a_status_written_ahead_goes_out_once_from_the_node_that_holds_the_user_then() {
    let (w, store, a, b) = lunch_and_two_nodes().await;
    let before = at("2026-11-24 11:59:40");
    assert_eq!(a.renew_leases(before).await.expect("a"), 1);
    assert_eq!(a.sync_due(before).await, 1);
    assert_eq!(
        a.publish_due(before).await.expect("written ahead"),
        1,
        "noon's lunch written ahead, kept in node a's memory"
    );
    // Before noon the user moves to node b (node a let it go: a stall, a clock step).
    store.release_leases("node-a").await.expect("let go");
    let moved = at("2026-11-24 11:59:50");
    assert_eq!(b.renew_leases(moved).await.expect("b takes"), 1);
    assert_eq!(a.renew_leases(moved).await.expect("a lost it"), 0);
    let noon = at("2026-11-24 12:00");
    assert_eq!(
        a.deliver_due(noon).await.expect("a").delivered,
        0,
        "what node a kept ready is not sent for a user it no longer holds"
    );
    assert_eq!(b.deliver_due(noon).await.expect("b").delivered, 1);
    assert_eq!(b.deliver_due(noon).await.expect("b again").delivered, 0);
    assert_eq!(w.pbx.statuses(), [Some("Lunch, åter 13.00".to_owned())]);
}

#[tokio::test]
async fn a_user_taken_over_keeps_its_transitions_before_it_is_read_again() {
    let (w, _, a, b) = lunch_and_two_nodes().await;
    let now = at("2026-11-24 11:00");
    assert_eq!(a.renew_leases(now).await.expect("a"), 1);
    assert_eq!(a.sync_due(now).await, 1);
    let noon = at("2026-11-24 12:00");
    a.publish_due(noon).await.expect("noon");
    a.deliver_due(noon).await.expect("sent");
    assert_eq!(w.pbx.statuses(), [Some("Lunch, åter 13.00".to_owned())]);
    // Node a stops without a word; node b takes Anna when its leases have run out and
    // has not read her calendar again yet (a busy Exchange, thousands taken at once).
    assert_eq!(b.renew_leases(at("2026-11-24 12:30")).await.expect("b"), 1);
    let one = at("2026-11-24 13:00");
    b.publish_due(one).await.expect("one");
    b.deliver_due(one).await.expect("sent");
    assert_eq!(
        w.pbx.statuses(),
        [Some("Lunch, åter 13.00".to_owned()), None],
        "the end of her lunch goes out from her stored timeline"
    );
}

#[tokio::test]
async fn a_node_knows_when_statuses_written_ahead_are_about_to_go_out() {
    // A lease renewal (every held user read) waits while they go out, so the top of
    // the hour has the cores to itself.
    let (_w, _, a, _) = lunch_and_two_nodes().await;
    let before = at("2026-11-24 11:59:30");
    assert_eq!(a.renew_leases(before).await.expect("a"), 1);
    assert_eq!(a.sync_due(before).await, 1);
    assert!(!a.sending_ahead(before), "nothing written ahead yet");
    assert_eq!(a.publish_due(before).await.expect("written ahead"), 1);
    assert!(
        !a.sending_ahead(at("2026-11-24 11:59:55")),
        "five seconds before noon a renewal may run"
    );
    assert!(a.sending_ahead(at("2026-11-24 11:59:59.5")));
    let noon = at("2026-11-24 12:00");
    assert!(a.sending_ahead(noon), "due and not sent yet");
    assert_eq!(a.deliver_due(noon).await.expect("sent").delivered, 1);
    assert!(!a.sending_ahead(noon), "sent: renewals go on");
}
