//! Targets end to end: a webhook that cannot be reached gives up into dead letters the
//! overview shows, without holding the PBX simulator up; a SIP target publishes to a
//! real Kamailio, whose watcher (the receptionist's phone) is notified.

use kalsync_server::settings::TargetDecl;

use crate::support::acme::{self, ANNA};
use crate::support::sims::anna_at_lunch;
use crate::support::spawn_app;

#[path = "../../../kalsync-target-sip/tests/support/kamailio.rs"]
mod kamailio;

#[tokio::test]
async fn a_target_that_cannot_be_reached_shows_its_dead_letters_on_the_page() {
    let (_, sim_url, _sim, _) = anna_at_lunch().await;
    // A port nothing listens on: every attempt is refused.
    let closed_url = format!("http://127.0.0.1:{}/hook", kalsync_testkit::free_port());
    let mut s = acme::settings(&sim_url);
    s.engine.max_attempts = 1;
    s.companies[0].targets.push(TargetDecl::Webhook {
        name: "switchboard-hook".into(),
        url: closed_url,
        signing_secret: "whsec_c2VjcmV0LXNpZ25pbmcta2V5".to_owned().into(),
        batch: false,
    });
    let app = spawn_app(s).await;
    // The statuses given up on are listed per company, with the target they were for.
    let dead_table = "<table class=\"dead stack\">";
    let page = app.overview_until(|p| p.contains(dead_table)).await;
    assert!(page.contains(dead_table), "{page}");
    assert!(
        page.contains("switchboard-hook <small class=\"muted\">(webhook)</small>"),
        "{page}"
    );
    let dead_row = page
        .split("<tr>")
        .find(|l| l.contains("Lunch, back") && l.contains("switchboard-hook"))
        .unwrap_or_else(|| panic!("a dead letter for Anna's lunch: {page}"));
    assert!(dead_row.contains("Anna"), "{dead_row}");
    // The other target is not held up by the broken one.
    assert_eq!(
        app.pbx().current()[ANNA]
            .status
            .absence
            .as_ref()
            .map(|a| a.reason.as_str()),
        Some("lunch")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_booking_in_outlook_becomes_a_notify_on_the_receptionists_phone() {
    let Some(server) = kamailio::start().await else {
        return;
    };
    // The receptionist's phone watches Anna's extension before anything is published.
    let phone = kamailio::Watcher::subscribe(server.port, "201").await;
    phone.notify_where(|_| true).await;

    let (_, sim_url, _sim, lunch_ends) = anna_at_lunch().await;
    let mut s = acme::settings(&sim_url);
    s.companies[0].targets = vec![TargetDecl::Sip {
        name: "kamailio".into(),
        // Over TLS, the server's certificate checked against the CA file.
        proxy: format!("sips:127.0.0.1:{}", server.tls_port),
        domain: kamailio::DOMAIN.into(),
        username: "kalsync".into(),
        password: kamailio::PASSWORD.to_owned().into(),
        ca_file: Some(server.ca_file()),
    }];
    let app = spawn_app(s).await;

    let body = phone.notify_where(|b| b.contains("meal")).await;
    assert!(
        body.contains("away"),
        "{body}\nkamailio's log:\n{}",
        server.log()
    );
    assert!(
        body.contains(&format!("until=\"{lunch_ends}\"")),
        "until the lunch ends at {lunch_ends}: {body}"
    );
    assert!(
        body.contains("Lunch, back"),
        "the return time in English: {body}"
    );
    assert!(body.contains("Lunch, åter"), "and in Swedish: {body}");
    let transports = server.publish_transports();
    assert!(
        !transports.is_empty() && transports.iter().all(|(t, _)| t == "tls"),
        "published over TLS only: {transports:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_status_written_ahead_of_its_time_is_not_counted_as_queued_for_the_pbx() {
    let (_, sim_url, _sim, _) = anna_at_lunch().await;
    let app = spawn_app(acme::settings(&sim_url)).await;
    // Anna's lunch reaches the PBX: nothing is waiting any more.
    assert!(crate::support::eventually(async || app.pbx().current().contains_key(ANNA)).await);
    let (company, instance) = app.first_instance().await;
    let users = app.store().users(instance.id).await.expect("users");
    let anna = users
        .iter()
        .find(|u| u.email.as_str() == ANNA)
        .expect("Anna");
    let target = app.store().targets(company.id).await.expect("targets")[0].id;
    // A status the engine writes 30 s before its transition, due then.
    let due = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(25);
    app.store()
        .enqueue_many(vec![kalsync_store::NewDelivery {
            user: anna.id,
            target,
            payload: serde_json::json!({}),
            due,
            ahead: true,
        }])
        .await
        .expect("written ahead");
    // The dashboard and the instance's page, as its operator sees them.
    let (http, _) = app
        .signed_in_as(acme::OPERATOR, acme::OPERATOR_PASSWORD)
        .await;
    let dashboard = app.page_in_english(&http, "/").await;
    let on_dashboard = dashboard
        .split("data-label=\"Queued for the PBX\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .map(str::trim);
    assert_eq!(on_dashboard, Some("0"), "{dashboard}");
    let overview = app
        .page_in_english(&http, &format!("/instances/{}/overview", instance.id))
        .await;
    let on_instance = overview
        .split("<dt>Queued for the PBX</dt>")
        .nth(1)
        .and_then(|rest| rest.strip_prefix("<dd>"))
        .and_then(|rest| rest.split('<').next());
    assert_eq!(
        on_instance,
        Some("0"),
        "a status due in 25 s is not waiting for the PBX yet"
    );
    app.stop().await;
}
