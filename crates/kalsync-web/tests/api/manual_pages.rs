//! A status set by hand on the person page: an admin sets and clears it (stored as the
//! person's manual override, audited); a bad one is refused in the page's language; a
//! reader sees no form; another company's admin gets 404; the API refuses bad input.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{graph_instance, spawn_app};
use crate::ui::{form_token, page_at, post_form, signed_in_browser};

#[tokio::test]
async fn an_admin_sets_and_clears_a_status_by_hand_on_the_person_page() {
    let app = spawn_app().await;
    let admin = app.signed_in("it@acme.example").await;
    let instance = graph_instance(&admin, app.acme).await;
    let (status, anna) = admin
        .post(
            &format!("/api/v1/instances/{instance}/users"),
            json!({"email": "anna@acme.example"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{anna}");
    let id = anna["id"].as_str().expect("id").to_owned();
    let user: kalsync_store::UserId = id.parse().expect("id");
    let sv = signed_in_browser(&app, "sv", "it@acme.example").await;
    let url = format!("{}/users/{id}", app.base);
    let page = page_at(&sv, url.clone()).await;
    assert!(
        page.contains("Status för hand") && page.contains("id=\"manual-status\""),
        "{page}"
    );
    let csrf = form_token(&page);

    // A reason the instance does not have: refused, in Swedish, nothing stored.
    let refused = post_form(
        &sv,
        format!("{url}/manual-status"),
        &[
            ("csrf", &csrf),
            ("reason", "rymden"),
            ("mode", "divert"),
            ("until", ""),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused = refused.text().await.expect("html");
    assert!(
        refused.contains("Statusen gick inte att sätta"),
        "{refused}"
    );
    let now = jiff::Timestamp::now();
    assert!(
        app.store
            .overrides(user, now)
            .await
            .expect("read")
            .is_empty()
    );

    // Sick for two hours: stored as manual, audited.
    let set = post_form(
        &sv,
        format!("{url}/manual-status"),
        &[
            ("csrf", &csrf),
            ("reason", "sick"),
            ("mode", "divert"),
            ("until", "PT2H"),
        ],
    )
    .await;
    assert_eq!(set.status(), StatusCode::OK, "followed to the page");
    let got = app.store.overrides(user, now).await.expect("read");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].source, kalsync_core::Source::Manual);
    assert!(
        got[0]
            .end
            .is_some_and(|e| e > now + jiff::SignedDuration::from_mins(110))
    );
    assert_eq!(got[0].id, "it@acme.example", "who set it");
    let (_, audit) = admin
        .get(&format!("/api/v1/companies/{}/audit", app.acme))
        .await;
    assert!(audit.to_string().contains("status.set"), "{audit}");

    // Cleared.
    let cleared = post_form(
        &sv,
        format!("{url}/manual-status/clear"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(cleared.status(), StatusCode::OK);
    assert!(
        app.store
            .overrides(user, now)
            .await
            .expect("read")
            .is_empty()
    );

    // The API: bad input named.
    for (body, field) in [
        (json!({"reason": "sick", "until": "PT0S"}), "until"),
        (json!({"reason": "sick", "until": "P400D"}), "until"),
        (json!({"reason": ""}), "reason"),
    ] {
        let (status, answer) = admin
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/users/{id}/manual-status"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}");
    }

    // A reader sees the person but not the form, and may not set one; another
    // company's admin does not see the person at all.
    let reader = signed_in_browser(&app, "sv", "reception@acme.example").await;
    let seen = page_at(&reader, url.clone()).await;
    assert!(!seen.contains("manual-status"), "{seen}");
    let reader_api = app.signed_in("reception@acme.example").await;
    let (status, _) = reader_api
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/users/{id}/manual-status"),
            Some(json!({"reason": "sick"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let beta = signed_in_browser(&app, "en", "it@beta.example").await;
    assert_eq!(
        beta.get(&url).send().await.expect("get").status(),
        StatusCode::NOT_FOUND
    );
}
