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
