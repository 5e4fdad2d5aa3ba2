//! Several nodes on one database: a user belongs to one node at a time, a stopped node's
//! users move on within the lease time, and a read request reaches the holder.

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

    // Node a stops without a word; after the lease time node b holds the user.
    let later = now + jiff::SignedDuration::from_millis(500);
    assert_eq!(b.renew_leases(later).await.expect("b"), 1);
    assert!(b.holds(w.anna.id));
    assert_eq!(a.renew_leases(later).await.expect("a"), 0, "a lost it");
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
