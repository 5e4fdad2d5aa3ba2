//! Sources and targets a company admin points at this machine or a private network are
//! refused before anything is sent (`docs/THREAT_MODEL.md`, T5): with no `[outbound]
//! allow`, an Exchange, a Graph and login host, a webhook and an AMI manager on loopback
//! get no connection, and the connection check says why.

use std::time::Duration;

use kalsync_server::Settings;
use kalsync_server::settings::UserDecl;

use super::{acme_with_every_source_and_target, captured};
use crate::support::Launch;

#[tokio::test]
async fn sources_and_targets_on_local_addresses_are_refused_without_the_operators_allow_list() {
    captured();
    let internal = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("an internal service");
    let port = internal.local_addr().expect("addr").port();
    let local = format!("http://127.0.0.1:{port}/");
    let user = || UserDecl::Email("anna@acme.example".into());
    let mut settings = Settings {
        companies: vec![acme_with_every_source_and_target(
            &format!("{local}hook"),
            port,
            &local,
            &format!("{local}EWS/Exchange.asmx"),
            user(),
        )],
        ..Settings::default()
    };
    settings.engine.debounce_ms = 0;
    settings.engine.poll_interval_secs = 1;
    // The service runs, reads and delivers for a while: nothing reaches the listener.
    let app = Launch::new(settings.clone()).spawn().await;
    let reached = tokio::time::timeout(Duration::from_secs(3), internal.accept()).await;
    assert!(reached.is_err(), "a request reached an internal address");
    app.stop().await;

    // The connection check names the refusal for each source.
    let app = Launch::new(settings).unserved().spawn().await;
    let store = app.store();
    let company = store.companies().await.expect("companies")[0].id;
    for instance in store.instances(company).await.expect("instances") {
        let steps = kalsync_server::check::check_instance(
            store,
            &app.service.connections,
            instance.id,
            Some("anna@acme.example"),
        )
        .await;
        let text = format!("{steps:?}");
        assert!(
            text.contains("local or private network"),
            "{}: {text}",
            instance.name
        );
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(200), internal.accept())
            .await
            .is_err(),
        "the check reached an internal address"
    );
    app.stop().await;
}
