//! Teams Presence end to end on the Graph simulator (at scale: `tests/teams_scale.rs`): a lunch becomes Anna's Teams status
//! message until its end and is cleared when it goes; a message she wrote herself is
//! never touched; a Teams call turns her PBX status busy within the poll interval and
//! back; a PBX call (a signed event, an AMI state) shows as `Busy/InACall` in Teams and
//! never comes back to the PBX; only documented presence pairs are ever sent.

use std::time::Duration;

use kalsync_server::settings::{TargetDecl, TeamsLanguage};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::acme::{self, ANNA};
use crate::support::sims::{anna_at_lunch, simulator_with_anna};
use crate::support::{TestApp, eventually, eventually_within, spawn_app};

/// Acme with a `teams` target beside its PBX, and the instance's rules.
fn with_teams(sim_url: &url::Url, presence: bool, rules: &str) -> kalsync_server::Settings {
    let mut settings = acme::settings(sim_url);
    settings.companies[0].targets.push(TargetDecl::Teams {
        name: "teams".into(),
        presence,
        language: TeamsLanguage::Sv,
    });
    settings.companies[0].instances[0].settings =
        Some(toml::from_str(&format!("template = \"prefix\"\n{rules}")).expect("rules"));
    settings.accounts.push(acme::admin());
    settings
}

/// What the PBX simulator shows for Anna: reason and source.
fn pbx_shows(app: &TestApp) -> Option<(String, kalsync_core::Source)> {
    app.pbx()
        .current()
        .get(ANNA)
        .and_then(|r| r.status.absence.clone())
        .map(|a| (a.reason, a.source))
}

/// Whether every status was delivered to every target.
async fn outbox_empty(app: &TestApp) -> bool {
    app.store().outbox_depth().await.is_ok_and(|n| n == 0)
}

#[tokio::test]
async fn a_lunch_is_anna_s_teams_status_message_until_it_ends_and_its_end_clears_it() {
    let (sim, sim_url, _graph, lunch_end) = anna_at_lunch().await;
    let app = spawn_app(with_teams(&sim_url, false, "")).await;
    // The announcement the PBX got ("Lunch, åter 13.00"; after working hours, the next
    // morning's).
    assert!(eventually(async || pbx_shows(&app).is_some()).await);
    let expected = app
        .pbx()
        .current()
        .get(ANNA)
        .and_then(|r| r.status.absence.clone())
        .map(|a| a.message_sv)
        .expect("shown");
    assert!(expected.starts_with("Lunch, åter "), "{expected}");
    assert!(
        eventually(async || sim.status_message(ANNA).ok().flatten()
            == Some((expected.clone(), Some(lunch_end))))
        .await,
        "Teams shows {:?}, not {expected:?} until {lunch_end}",
        sim.status_message(ANNA)
    );
    assert_eq!(
        pbx_shows(&app).map(|(r, _)| r),
        Some("lunch".to_owned()),
        "the PBX shows it too"
    );
    // The lunch is cancelled: the message Kalsync set goes at once.
    let lunch = sim.event_ids(ANNA).expect("events");
    sim.delete_event(ANNA, &lunch[0]).expect("deleted");
    assert!(
        eventually_within(Duration::from_secs(10), async || sim
            .presence(ANNA)
            .is_ok_and(|(_, _, message)| message.is_none()))
        .await,
        "cleared: {:?}",
        sim.status_message(ANNA)
    );
    assert_eq!(sim.presence_refused_pairs(), 0);
}

#[tokio::test]
async fn a_message_anna_wrote_herself_is_never_overwritten_or_cleared() {
    let (sim, sim_url, _graph, _) = anna_at_lunch().await;
    sim.set_own_status_message(ANNA, "På kundbesök i Kista")
        .expect("own");
    let app = spawn_app(with_teams(&sim_url, false, "")).await;
    assert!(eventually(async || pbx_shows(&app).is_some()).await);
    // The lunch reached every target; Teams kept her words.
    assert!(eventually(async || outbox_empty(&app).await).await);
    let own = || sim.presence(ANNA).ok().and_then(|(_, _, m)| m);
    assert_eq!(own().as_deref(), Some("På kundbesök i Kista"));
    let lunch = sim.event_ids(ANNA).expect("events");
    sim.delete_event(ANNA, &lunch[0]).expect("deleted");
    assert!(eventually_within(Duration::from_secs(10), async || pbx_shows(&app).is_none()).await);
    assert!(eventually(async || outbox_empty(&app).await).await);
    assert_eq!(own().as_deref(), Some("På kundbesök i Kista"));
}

#[tokio::test]
async fn a_teams_call_makes_the_pbx_busy_within_the_poll_and_its_end_clears_it() {
    let sim = simulator_with_anna();
    let (sim_url, _graph) = kalsync_graph_sim::spawn(sim.clone()).await.expect("sim");
    let app = spawn_app(with_teams(
        &sim_url,
        true,
        "[teams]\nread = true\npoll_seconds = 10\n",
    ))
    .await;
    // Teams reads her as offline first: nothing on the PBX.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pbx_shows(&app), None);
    sim.set_client_presence(ANNA, Some(("Busy", "InACall")))
        .expect("call");
    let started = std::time::Instant::now();
    assert!(
        eventually_within(Duration::from_secs(13), async || pbx_shows(&app)
            == Some(("busy".into(), kalsync_core::Source::Teams)))
        .await,
        "the PBX shows {:?}",
        pbx_shows(&app)
    );
    println!("Teams → PBX in {:?}", started.elapsed());
    // What came from Teams does not go back to Teams: no message, no session of ours.
    assert_eq!(sim.status_message(ANNA).expect("anna"), None);
    assert_eq!(
        sim.presence(ANNA).expect("anna").1,
        "InACall",
        "her own client's call, nothing else"
    );
    sim.set_client_presence(ANNA, Some(("Available", "Available")))
        .expect("hung up");
    assert!(
        eventually_within(Duration::from_secs(13), async || pbx_shows(&app).is_none()).await,
        "cleared: {:?}",
        pbx_shows(&app)
    );
    // A meeting in Teams is a meeting on the PBX.
    sim.set_client_presence(ANNA, Some(("Busy", "InAMeeting")))
        .expect("meeting");
    assert!(
        eventually_within(Duration::from_secs(13), async || pbx_shows(&app)
            .is_some_and(|(r, _)| r == "meeting"))
        .await
    );
    assert_eq!(sim.presence_refused_pairs(), 0);
}

#[tokio::test]
async fn a_pbx_call_shows_in_teams_and_never_comes_back_to_the_pbx() {
    let sim = simulator_with_anna();
    let (sim_url, _graph) = kalsync_graph_sim::spawn(sim.clone()).await.expect("sim");
    let (port, tell) = crate::phone::fake_manager().await;
    let mut settings = with_teams(&sim_url, true, "[teams]\nread = true\npoll_seconds = 10\n");
    settings.companies[0].targets.push(TargetDecl::Ami {
        name: "asterisk".into(),
        host: "127.0.0.1".into(),
        port,
        username: "kalsync".into(),
        secret: "manager-s3cret".to_owned().into(),
        announcement: "7799".into(),
    });
    let app = spawn_app(settings).await;
    let (company, secret, _) = crate::phone::pbx_secret(&app).await;
    let base = app.url("");
    let base = base.trim_end_matches('/');
    let in_teams = || {
        sim.presence(ANNA)
            .map(|(a, b, _)| format!("{a}/{b}"))
            .unwrap_or_default()
    };

    // A signed call_started: Teams shows the call.
    let call = json!({"company": company.id, "type": "call_started", "extension": "201"});
    let (status, done) = crate::phone::signed(base, &secret, "evt-call-1", &call).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["teams"], true, "{done}");
    assert_eq!(in_teams(), "Busy/InACall");
    // Two polls later the PBX still shows nothing: the call it knows is not echoed.
    tokio::time::sleep(Duration::from_secs(21)).await;
    assert_eq!(pbx_shows(&app), None, "no loop back to the PBX");
    let (status, done) = crate::phone::signed(
        base,
        &secret,
        "evt-call-2",
        &json!({"company": company.id, "type": "call_ended", "email": ANNA}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(in_teams(), "Offline/Offline", "the session is gone");

    // The same from Asterisk's device states over AMI (ringing says nothing; the
    // second in-use state is the same call).
    tell.send(
        "Event: ExtensionStatus\r\nExten: 201\r\nStatus: 8\r\n\r\n\
         Event: ExtensionStatus\r\nExten: 201\r\nStatus: 1\r\n\r\n\
         Event: DeviceStateChange\r\nDevice: PJSIP/201\r\nState: INUSE\r\n\r\n"
            .into(),
    )
    .await
    .expect("told");
    assert!(
        eventually(async || in_teams() == "Busy/InACall").await,
        "{}",
        in_teams()
    );
    tell.send("Event: DeviceStateChange\r\nDevice: PJSIP/201\r\nState: NOT_INUSE\r\n\r\n".into())
        .await
        .expect("told");
    assert!(
        eventually(async || in_teams() == "Offline/Offline").await,
        "{}",
        in_teams()
    );
    assert_eq!(pbx_shows(&app), None);
    assert_eq!(sim.presence_refused_pairs(), 0);
}
