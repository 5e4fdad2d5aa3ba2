//! Several nodes on one PostgreSQL database, as an operator scales out: started at the
//! same moment, each applies the settings file, and the companies, instances, targets,
//! users and accounts it declares are made once; a node that lost a user leaves that
//! user's subscription to the node that took it.

use crate::support::Storage;
use crate::support::acme;

#[tokio::test]
async fn three_nodes_started_at_once_apply_the_settings_file_once() {
    let Some(storage) = Storage::postgres().await else {
        println!("skipped: KALSYNC_TEST_POSTGRES_URL is not set");
        return;
    };
    let sim_url = url::Url::parse("http://127.0.0.1:9/").expect("url");
    let settings = |node: &str| {
        let mut s = acme::settings(&sim_url);
        s.node = Some(node.into());
        s.database_url = storage.database_url();
        s.master_key_file = storage.key_file();
        s
    };
    let (a, b, c) = tokio::join!(
        kalsync_server::Service::start(settings("node-a")),
        kalsync_server::Service::start(settings("node-b")),
        kalsync_server::Service::start(settings("node-c")),
    );
    let a = a.expect("node a starts");
    b.expect("node b starts");
    c.expect("node c starts");
    let companies = a.store.companies().await.expect("companies");
    assert_eq!(companies.len(), 1, "one Acme: {companies:?}");
    let acme = companies[0].id;
    assert_eq!(a.store.instances(acme).await.expect("instances").len(), 1);
    assert_eq!(a.store.targets(acme).await.expect("targets").len(), 1);
    let instance = a.store.instances(acme).await.expect("instances")[0].id;
    assert_eq!(a.store.users(instance).await.expect("users").len(), 1);
    assert!(
        a.store
            .account_by_email(acme::OPERATOR)
            .await
            .expect("account")
            .is_some()
    );
    storage.remove().await;
}

#[tokio::test]
async fn a_node_that_lost_a_user_leaves_its_graph_subscription_to_the_new_holder() {
    let Some(storage) = Storage::postgres().await else {
        println!("skipped: KALSYNC_TEST_POSTGRES_URL is not set");
        return;
    };
    let sim = crate::support::sims::simulator_with_anna();
    let (sim_url, _sim) = kalsync_graph_sim::spawn(sim.clone()).await.expect("sim");
    let settings = |node: &str| {
        let mut s = acme::settings(&sim_url);
        s.engine.poll_interval_secs = 3600;
        s.node = Some(node.into());
        s.database_url = storage.database_url();
        s.master_key_file = storage.key_file();
        s
    };
    // Node a serves (public, subscribed); node b only runs its steps.
    let mut sa = settings("node-a");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    sa.public_url = Some(
        url::Url::parse(&format!("http://{}/", listener.local_addr().expect("addr"))).expect("url"),
    );
    let node_a = kalsync_server::Service::start(sa).await.expect("node a");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(node_a.clone().serve(listener, async move {
        let _ = stopped.await;
    }));
    assert!(
        crate::support::eventually(async || sim.subscriptions().len() == 1).await,
        "node a subscribed Anna"
    );
    let node_b = kalsync_server::Service::start(settings("node-b"))
        .await
        .expect("node b");

    // Anna's lease moves to node b while node a lives on (its lease let go, as a clock
    // step or a stall does).
    let now = jiff::Timestamp::now();
    node_a
        .store
        .release_leases("node-a")
        .await
        .expect("release");
    assert_eq!(node_b.engine.renew_leases(now).await.expect("b takes"), 1);
    assert_eq!(node_a.engine.renew_leases(now).await.expect("a lost"), 0);

    // Node a's next pass forgets the subscription; it must not delete it at Graph,
    // where node b's notifications come from.
    node_a
        .subscriptions
        .as_ref()
        .expect("subscriptions")
        .maintain(now)
        .await;
    assert_eq!(
        sim.subscriptions().len(),
        1,
        "the subscription node b relies on is still there"
    );
    let _ = stop.send(());
    let _ = serving.await;
    storage.remove().await;
}
