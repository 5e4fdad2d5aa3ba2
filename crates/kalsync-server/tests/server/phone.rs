//! "I'm back" and "extend" from the phone, end to end: Anna is at lunch (Graph
//! simulator → PBX simulator); her PBX signs "extend 30 minutes" (the return time moves)
//! and then "back" (the PBX is cleared at once, no poll waited for) with the company's
//! secret — signed by the reference Standard Webhooks crate, not ours.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::acme::{self, ADMIN, ADMIN_PASSWORD, ANNA};
use crate::support::sims::anna_at_lunch;
use crate::support::{eventually, spawn_app};

/// Posts a PBX event signed with `secret` by the reference crate.
async fn signed(base: &str, secret: &str, id: &str, body: &Value) -> (StatusCode, Value) {
    let text = body.to_string();
    let now = jiff::Timestamp::now().as_second();
    let signature = standardwebhooks::Webhook::new(secret)
        .expect("secret")
        .sign(id, now, text.as_bytes())
        .expect("signed");
    let answer = reqwest::Client::new()
        .post(format!("{base}/api/v1/pbx/events"))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", signature)
        .body(text)
        .send()
        .await
        .expect("post");
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_phone_extends_and_ends_an_absence_at_once() {
    let (_sim, sim_url, _graph, lunch_end) = anna_at_lunch().await;
    let mut settings = acme::settings(&sim_url);
    // Polled only hourly: what changes came from the phone.
    settings.engine.poll_interval_secs = 3600;
    settings.accounts.push(acme::admin());
    let app = spawn_app(settings).await;
    let pbx = app.pbx().clone();
    let shown = move || {
        pbx.current()
            .get(ANNA)
            .and_then(|r| r.status.absence.clone())
    };
    eventually(async || shown().is_some_and(|a| a.reason.as_str() == "lunch")).await;
    let (company, _) = app.first_instance().await;
    let admin = app.session(ADMIN, ADMIN_PASSWORD).await;
    let (status, made) = admin
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/companies/{}/pbx-events/secret", company.id),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let secret = made["secret"].as_str().expect("secret").to_owned();
    let base = app.url("");
    let base = base.trim_end_matches('/');

    // Extend by 30 minutes: the return time moves to the lunch's end + 30.
    let extend =
        json!({"company": company.id, "type": "extend", "extension": "201", "minutes": 30});
    let (status, done) = signed(base, &secret, "evt-extend", &extend).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let later = lunch_end + jiff::SignedDuration::from_mins(30);
    eventually(async || shown().is_some_and(|a| a.until == later && a.returns_at >= later)).await;

    // Back: the PBX is cleared within a second.
    let back = json!({"company": company.id, "type": "back", "email": ANNA});
    let sent = Instant::now();
    let (status, done) = signed(base, &secret, "evt-back", &back).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    eventually(async || shown().is_none()).await;
    let took = sent.elapsed();
    println!("back reached the PBX in {took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // Replayed: refused; the status stays.
    let (status, _) = signed(base, &secret, "evt-back", &back).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, now) = admin
        .send(
            reqwest::Method::GET,
            &format!(
                "/api/v1/users/{}/status",
                done["user"].as_str().expect("user")
            ),
            None,
        )
        .await;
    assert!(now["now"].is_null(), "{now}");
}
