//! A status set by hand, end to end: an admin sets Anna "sick" while her calendar says
//! lunch — the PBX shows sick at once (no poll waited for), the "why" says manual, the
//! audit log has it; cleared, the lunch shows again. Bad input changes nothing.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::acme::{self, ADMIN, ADMIN_PASSWORD, ANNA};
use crate::support::sims::anna_at_lunch;
use crate::support::{eventually, spawn_app};

fn shown(pbx: &kalsync_pbx_sim::PbxSimulator) -> Option<String> {
    pbx.current().get(ANNA).and_then(|r| {
        r.status
            .absence
            .as_ref()
            .map(|a| a.reason.as_str().to_owned())
    })
}

#[tokio::test]
async fn a_status_set_by_hand_wins_over_the_calendar_until_cleared() {
    let (_sim, sim_url, _graph, _) = anna_at_lunch().await;
    let mut settings = acme::settings(&sim_url);
    // Polled only hourly: what changes came from the status set by hand.
    settings.engine.poll_interval_secs = 3600;
    settings.accounts.push(acme::admin());
    let app = spawn_app(settings).await;
    let pbx = app.pbx().clone();
    eventually(async || shown(&pbx).as_deref() == Some("lunch")).await;
    let store = app.store();
    let company = store.companies().await.expect("companies").remove(0);
    let instance = store
        .instances(company.id)
        .await
        .expect("instances")
        .remove(0);
    let anna = store
        .users(instance.id)
        .await
        .expect("users")
        .into_iter()
        .find(|u| u.email.as_str() == ANNA)
        .expect("anna");
    let admin = app.session(ADMIN, ADMIN_PASSWORD).await;
    let url = format!("/api/v1/users/{}/manual-status", anna.id);
    let put = |body: Value| admin.send(reqwest::Method::PUT, &url, Some(body));
    // Bad input: named, nothing changed.
    for (body, field) in [
        (json!({"reason": "holiday-in-space"}), "reason"),
        (json!({"reason": "sick", "mode": "loud"}), "mode"),
        (json!({"reason": "sick", "until": "yesterday"}), "until"),
        (
            json!({"reason": "sick", "until": "2020-01-01T00:00:00Z"}),
            "until",
        ),
    ] {
        let (status, answer) = put(body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
    assert!(
        store
            .overrides(anna.id, jiff::Timestamp::now())
            .await
            .expect("read")
            .is_empty()
    );

    // Sick until cleared: the PBX shows it within a second or two.
    let set_at = Instant::now();
    let (status, answer) = put(json!({"reason": "sick"})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["until"], Value::Null);
    eventually(async || shown(&pbx).as_deref() == Some("sick")).await;
    assert!(
        set_at.elapsed() < Duration::from_secs(5),
        "{:?}",
        set_at.elapsed()
    );
    let (_, status) = admin
        .send(
            reqwest::Method::GET,
            &format!("/api/v1/users/{}/status", anna.id),
            None,
        )
        .await;
    assert_eq!(status["now"]["reason"], "sick", "{status}");
    assert_eq!(status["now"]["source"], "manual", "{status}");
    assert_eq!(status["now"]["open_ended"], true, "{status}");
    // The why names every source with a say: the status set by hand over the lunch.
    assert_eq!(
        status["now"]["sources"],
        json!(["manual", "booking"]),
        "{status}"
    );
    assert_eq!(
        status["now"]["message_sv"], "Sjuk / VAB",
        "no return time: {status}"
    );
    // The person page says why: set by hand.
    let page = admin
        .http
        .get(app.url(&format!("/users/{}", anna.id)))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        page.contains("Set by hand") || page.contains("Satt för hand"),
        "{page}"
    );
    assert!(
        page.contains("wins over: The calendar") || page.contains("går före: Kalendern"),
        "{page}"
    );

    // Cleared: the calendar's lunch again.
    let (cleared, _) = admin.send(reqwest::Method::DELETE, &url, None).await;
    assert_eq!(cleared, StatusCode::NO_CONTENT);
    eventually(async || shown(&pbx).as_deref() == Some("lunch")).await;
    let (_, audit) = admin
        .send(
            reqwest::Method::GET,
            &format!("/api/v1/companies/{}/audit", company.id),
            None,
        )
        .await;
    let text = audit.to_string();
    assert!(
        text.contains("status.set") && text.contains("status.cleared"),
        "{text}"
    );
}
