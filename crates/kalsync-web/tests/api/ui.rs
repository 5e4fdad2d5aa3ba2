//! The web UI as a browser without JavaScript sees it: redirects to the sign-in page,
//! the form's errors in the viewer's language, the dashboard, the switchboard and its
//! event stream, the language switch, CSRF and origin checks on forms.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, graph_instance, lunch_now, spawn_app};

fn browser(language: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::ACCEPT_LANGUAGE,
        reqwest::header::HeaderValue::from_str(language).expect("header"),
    );
    reqwest::Client::builder()
        .cookie_store(true)
        .default_headers(headers)
        .build()
        .expect("client")
}

#[tokio::test]
async fn pages_sign_in_show_who_is_away_in_both_languages_and_sign_out() {
    let app = spawn_app().await;
    // Anna of Acme at lunch; Bo of Beta too (Acme's people must not see him).
    let acme_admin = app.signed_in("it@acme.example").await;
    let instance = graph_instance(&acme_admin, app.acme).await;
    let (_, anna) = acme_admin
        .post(&format!("/api/v1/instances/{instance}/users"), json!({"email": "anna@acme.example", "display_name": "Anna Andersson", "extension": "201"}))
        .await;
    lunch_now(
        &app,
        anna["id"].as_str().expect("id").parse().expect("uuid"),
    )
    .await;
    let beta_admin = app.signed_in("it@beta.example").await;
    let beta_instance = graph_instance(&beta_admin, app.beta).await;
    let (_, bo) = beta_admin
        .post(
            &format!("/api/v1/instances/{beta_instance}/users"),
            json!({"email": "bo@beta.example", "display_name": "Bo Berg"}),
        )
        .await;
    lunch_now(&app, bo["id"].as_str().expect("id").parse().expect("uuid")).await;

    // Not signed in: the sign-in page, in Swedish by default.
    let sv = browser("sv-SE,sv;q=0.9");
    let page = sv.get(format!("{}/", app.base)).send().await.expect("get");
    assert!(page.url().path().ends_with("/sign-in"), "{}", page.url());
    let html = page.text().await.expect("html");
    assert!(
        html.contains("<html lang=\"sv\">") && html.contains("Logga in"),
        "{html}"
    );

    // A wrong password: the form again, with the error in Swedish.
    let wrong = sv
        .post(format!("{}/sign-in", app.base))
        .form(&[
            ("email", "reception@acme.example"),
            ("password", "fel-lösenord-här"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let html = wrong.text().await.expect("html");
    assert!(html.contains("Fel e-post eller lösenord."), "{html}");
    assert!(
        html.contains("value=\"reception@acme.example\""),
        "the e-mail is kept"
    );

    // A form from another site is refused.
    let forged = sv
        .post(format!("{}/sign-in", app.base))
        .header("origin", "https://evil.example")
        .form(&[("email", "reception@acme.example"), ("password", PASSWORD)])
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    // The receptionist signs in: the dashboard, then the switchboard with Anna only.
    let signed_in = sv
        .post(format!("{}/sign-in", app.base))
        .form(&[("email", "reception@acme.example"), ("password", PASSWORD)])
        .send()
        .await
        .expect("post");
    assert_eq!(signed_in.url().path(), "/");
    let html = signed_in.text().await.expect("html");
    assert!(
        html.contains("Instrumentpanel") && html.contains("Microsoft 365"),
        "{html}"
    );
    assert!(
        !html.contains("Beta AB"),
        "another company's instance: {html}"
    );
    let html = sv
        .get(format!("{}/switchboard", app.base))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert!(
        html.contains("Anna Andersson") && html.contains("Lunch, åter"),
        "{html}"
    );
    assert!(html.contains("201"));
    assert!(!html.contains("Bo Berg"), "{html}");
    let filtered = sv
        .get(format!("{}/switchboard?q=nobody", app.base))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert!(filtered.contains("Ingen är borta just nu."), "{filtered}");

    // The live stream's first event carries the rows.
    let mut events = sv
        .get(format!("{}/switchboard/events", app.base))
        .send()
        .await
        .expect("events");
    assert_eq!(
        events
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let mut seen = String::new();
    while !seen.contains("\n\n") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), events.chunk())
            .await
            .expect("in time")
            .expect("chunk")
            .expect("more");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.starts_with("event: rows"), "{seen}");
    assert!(seen.contains("Anna Andersson"), "{seen}");
    drop(events);

    // Switched to English: the same page in English, remembered.
    let switched = sv
        .get(format!("{}/lang?to=en&back=/switchboard", app.base))
        .send()
        .await
        .expect("switch");
    assert_eq!(switched.url().path(), "/switchboard");
    let html = switched.text().await.expect("html");
    assert!(
        html.contains("<html lang=\"en\">") && html.contains("Lunch, back"),
        "{html}"
    );
    assert!(html.contains("Switchboard") && html.contains("Sign out"));
    let outside = sv
        .get(format!("{}/lang?to=en&back=//evil.example/", app.base))
        .send()
        .await
        .expect("switch");
    assert_eq!(outside.url().path(), "/", "never away from this site");

    // Signing out needs the form's token.
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the sign-out form's token")
        .to_owned();
    let refused = sv
        .post(format!("{}/sign-out", app.base))
        .form(&[("csrf", "wrong")])
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let out = sv
        .post(format!("{}/sign-out", app.base))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert!(out.url().path().ends_with("/sign-in"));
    let again = sv
        .get(format!("{}/switchboard", app.base))
        .send()
        .await
        .expect("get");
    assert!(again.url().path().ends_with("/sign-in"), "signed out");

    // An English browser gets English from the start.
    let en = browser("en-GB,en;q=0.9");
    let html = en
        .get(format!("{}/sign-in", app.base))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert!(
        html.contains("<html lang=\"en\">") && html.contains("Sign in"),
        "{html}"
    );
}
