//! The connection check against an Exchange set-up: every step passes and the test
//! subscription is removed; an account without impersonation rights, or with a wrong
//! password, is told what to fix.

use crate::support::Launch;
use crate::support::acme;
use crate::support::sims::{EWS_ACCOUNT, anna_at_lunch, ews_config, ews_source};

#[tokio::test]
async fn check_walks_an_exchange_set_up_and_names_what_to_fix() {
    let (calendars, sim_url, _graph, _) = anna_at_lunch().await;
    let ews = kalsync_ews_sim::EwsSim::new(calendars, ews_config());
    let (ews_url, _ews) = kalsync_ews_sim::spawn(ews.clone()).await.expect("ews");
    let mut s = acme::settings(&sim_url);
    s.companies[0].instances[0].source = ews_source(&ews_url, EWS_ACCOUNT, "ntlm", "2016");
    // Not served: no stream subscribes beside the check's own test subscription.
    let app = Launch::new(s).unserved().spawn().await;
    let store = app.store();
    let company = store.companies().await.expect("companies")[0].id;
    let instance = store.instances(company).await.expect("instances")[0].id;
    let outbound = &app.service.connections;
    let run = || kalsync_server::check::check_instance(store, outbound, instance, None);

    let steps = run().await.expect("checked");
    assert_eq!(steps.len(), 4, "{steps:?}");
    assert!(steps.iter().all(|s| s.ok), "{steps:?}");
    assert!(steps[2].detail.contains("1 bookings"), "{steps:?}");
    assert!(
        ews.subscriptions().is_empty(),
        "the test subscription is removed"
    );

    let mut scoped = ews_config();
    scoped.impersonate_all = false;
    ews.set_config(scoped);
    let steps = run().await.expect("checked");
    assert!(steps[0].ok && !steps[1].ok, "{steps:?}");
    assert!(
        steps[1].detail.contains("ApplicationImpersonation"),
        "{steps:?}"
    );

    ews.set_config(kalsync_ews_sim::EwsConfig::new(
        EWS_ACCOUNT,
        "another password",
    ));
    let steps = run().await.expect("checked");
    assert_eq!(steps.len(), 1);
    assert!(
        !steps[0].ok && steps[0].detail.contains("password"),
        "{steps:?}"
    );
    app.stop().await;
}
