//! Several nodes on one PostgreSQL database, as an operator scales out: started at the
//! same moment, each applies the settings file, and the companies, instances, targets,
//! users and accounts it declares are made once.

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
