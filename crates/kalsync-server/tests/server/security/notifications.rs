//! Hostile notifications: oversized, malformed and forged Graph notifications, EWS pushes
//! for no subscription of ours (one an entity bomb, one a Graph subscription id), a flood
//! of unknown ids carrying a forged log line, and more items than Graph batches are all
//! refused; none causes a read or a log line of its own, and the service still answers.

use std::time::Duration;

use kalsync_graph_sim::{SimConfig, Simulator};
use kalsync_server::Settings;
use kalsync_server::settings::{CompanyDecl, InstanceDecl, SourceDecl, TargetDecl, UserDecl};
use serde_json::json;

use super::{SIM_TENANT, captured};
use crate::support::sims::mailbox;
use crate::support::{Launch, eventually_within, settled};

#[tokio::test]
async fn hostile_notifications_are_refused_and_change_nothing() {
    captured();
    let calendars = Simulator::new(SimConfig::with_secret(SIM_TENANT, "c", "s"));
    calendars
        .add_user(mailbox("anna@acme.example"))
        .expect("user");
    let (sim_url, _graph) = kalsync_graph_sim::spawn(calendars.clone())
        .await
        .expect("sim");
    let mut settings = Settings {
        companies: vec![CompanyDecl {
            name: "Acme".into(),
            targets: vec![TargetDecl::Simulator { name: "pbx".into() }],
            instances: vec![InstanceDecl {
                name: "M365".into(),
                source: SourceDecl::Graph {
                    tenant: SIM_TENANT.into(),
                    client_id: "c".into(),
                    client_secret: "s".to_owned().into(),
                    graph_url: Some(format!("{sim_url}v1.0/")),
                    login_url: Some(sim_url.to_string()),
                },
                settings: None,
                users: vec![UserDecl::Email("anna@acme.example".into())],
                directory: None,
            }],
        }],
        // The simulators listen on loopback.
        outbound: kalsync_server::settings::OutboundSettings::loopback(),
        ..Settings::default()
    };
    // Any read a hostile notification caused would come at once.
    settings.engine.debounce_ms = 0;
    let app = Launch::new(settings).public().spawn().await;
    let base = &app.base;
    eventually_within(Duration::from_secs(10), async || {
        !calendars.subscriptions().is_empty()
    })
    .await;
    let subscription = calendars.subscriptions()[0].0.clone();
    // The first reads are over before counting.
    let reads = settled(Duration::from_millis(500), || calendars.stats().requests).await;
    let http = &app.http;
    let post = |path: &str, body: Vec<u8>, kind: &str| {
        http.post(format!("{base}{path}"))
            .header("content-type", kind)
            .body(body)
            .send()
    };

    // Oversized: refused before it is read.
    let huge = post(
        "/notifications/graph",
        vec![b' '; 3 * 1024 * 1024],
        "application/json",
    )
    .await
    .expect("answer");
    assert_eq!(huge.status(), 413);
    // Malformed, or the right subscription with a guessed clientState: refused.
    let malformed = post(
        "/notifications/graph",
        b"{\"value\": [".to_vec(),
        "application/json",
    )
    .await
    .expect("answer");
    assert!(
        malformed.status().is_client_error(),
        "{}",
        malformed.status()
    );
    let forged = json!({"value": [{"subscriptionId": subscription, "clientState": "guess",
        "changeType": "updated", "resource": "Users/x/Events/y", "tenantId": "t"}]});
    let answer = post(
        "/notifications/graph",
        forged.to_string().into_bytes(),
        "application/json",
    )
    .await
    .expect("answer");
    assert_eq!(answer.status(), 403);
    // An EWS push for no subscription of ours, carrying an entity bomb: told to stop.
    let bomb = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\"><!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>&lol3;</s:Body></s:Envelope>";
    let pushed = post("/notifications/ews/guessed-token", bomb.into(), "text/xml")
        .await
        .expect("answer")
        .text()
        .await
        .expect("text");
    assert!(pushed.contains("Unsubscribe"), "{pushed}");
    // A Graph subscription id posted as an EWS push token names nobody.
    let crossed = post(
        &format!("/notifications/ews/{subscription}"),
        b"<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"/>".to_vec(),
        "text/xml",
    )
    .await
    .expect("answer")
    .text()
    .await
    .expect("text");
    assert!(crossed.contains("Unsubscribe"), "{crossed}");
    // A flood of unknown subscriptions, one of them carrying a forged log line: refused
    // without a look-up or a log line each, and the forged line never starts a line.
    let forged_line = "2026-12-02T00:00:00.000000Z  WARN kalsync: FORGED by a notification";
    let mut flood: Vec<serde_json::Value> = (0..999)
        .map(|i| {
            json!({"subscriptionId": format!("flood-{i}"), "clientState": "guess",
            "changeType": "updated", "resource": "Users/x/Events/y"})
        })
        .collect();
    flood.push(
        json!({"subscriptionId": format!("x\n{forged_line}\u{1b}[31m"),
        "clientState": format!("y\n{forged_line}"), "changeType": "updated", "resource": "r"}),
    );
    let answer = post(
        "/notifications/graph",
        json!({"value": flood}).to_string().into_bytes(),
        "application/json",
    )
    .await
    .expect("answer");
    assert_eq!(answer.status(), 403);
    let too_many: Vec<serde_json::Value> = (0..1001)
        .map(|_| {
            json!({"subscriptionId": subscription, "clientState": "guess",
            "changeType": "updated", "resource": "r"})
        })
        .collect();
    let answer = post(
        "/notifications/graph",
        json!({"value": too_many}).to_string().into_bytes(),
        "application/json",
    )
    .await
    .expect("answer");
    assert_eq!(answer.status(), 413, "more items than Graph ever batches");
    let log = captured().text();
    assert!(
        !log.lines().any(|l| l.starts_with(forged_line)),
        "a field from outside started a line of its own"
    );
    assert!(!log.contains('\u{1b}'), "no escape byte reaches the log");
    assert!(
        log.lines().filter(|l| l.contains("flood-")).count() <= 1,
        "a thousand refused items are one summary line at most"
    );
    // The validation handshake echoes only plain text.
    let echo = http
        .post(format!(
            "{base}/notifications/graph?validationToken=%3Cscript%3Ealert(1)%3C%2Fscript%3E"
        ))
        .send()
        .await
        .expect("answer");
    let kind = echo
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(kind.starts_with("text/plain"), "{kind}");

    // Nothing was read because of them, and the service still answers.
    // A wall-clock second: such a read would go to the simulator over a real socket,
    // which a paused clock would not wait for.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(calendars.stats().requests, reads);
    let health = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("health");
    assert!(health.status().is_success());
    app.stop().await;
}
