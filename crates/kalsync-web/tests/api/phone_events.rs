//! "I'm back" and "extend" from the PBX, as an attacker and a broken PBX would try them:
//! only the company's admin makes the secret (shown once); an unsigned, forged, stale,
//! replayed or other company's event changes nothing; a signed one for someone not away,
//! an unknown extension or a bad body says what is wrong.

use jiff::Timestamp;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::{App, graph_instance, lunch_now, spawn_app};

/// Posts `body` to the events endpoint, signed with `secret` (none: unsigned) as event
/// `id` at `at`.
async fn post_event(
    app: &App,
    secret: Option<&str>,
    id: &str,
    at: i64,
    body: &Value,
) -> (StatusCode, Value) {
    let text = body.to_string();
    let mut request = reqwest::Client::new()
        .post(format!("{}/api/v1/pbx/events", app.base))
        .header("content-type", "application/json");
    if let Some(secret) = secret {
        let key = kalsync_target_webhook::signing_key(&SecretString::from(secret.to_owned()))
            .expect("key");
        request = request
            .header("webhook-id", id)
            .header("webhook-timestamp", at.to_string())
            .header(
                "webhook-signature",
                kalsync_target_webhook::signature(&key, id, at, text.as_bytes()),
            );
    }
    let answer = request.body(text).send().await.expect("post");
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn pbx_events_are_taken_only_signed_fresh_once_and_for_the_company() {
    let app = spawn_app().await;
    let admin = app.signed_in("it@acme.example").await;
    let instance = graph_instance(&admin, app.acme).await;
    let (_, anna) = admin
        .post(
            &format!("/api/v1/instances/{instance}/users"),
            json!({"email": "anna@acme.example", "extension": "201"}),
        )
        .await;
    let user: kalsync_store::UserId = anna["id"].as_str().expect("id").parse().expect("id");
    let company = app.acme.to_string();

    // Only the admin makes the secret; it is shown once.
    let reader = app.signed_in("reception@acme.example").await;
    let (status, _) = reader
        .post(
            &format!("/api/v1/companies/{company}/pbx-events/secret"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, made) = admin
        .post(
            &format!("/api/v1/companies/{company}/pbx-events/secret"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let secret = made["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"));
    let (_, view) = reader
        .get(&format!("/api/v1/companies/{company}/pbx-events"))
        .await;
    assert_eq!(view["secret_set"], true);
    assert!(!view.to_string().contains(&secret), "never shown again");
    // Beta's secret, for an event naming Acme.
    let beta = app.signed_in("it@beta.example").await;
    let (_, beta_made) = beta
        .post(
            &format!("/api/v1/companies/{}/pbx-events/secret", app.beta),
            json!({}),
        )
        .await;
    let beta_secret = beta_made["secret"].as_str().expect("secret").to_owned();

    let now = Timestamp::now().as_second();
    let back = json!({"company": company, "type": "back", "extension": "201"});
    // Not away now: nothing to end or extend.
    let (status, answer) = post_event(&app, Some(&secret), "e-0", now, &back).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let extend = json!({"company": company, "type": "extend", "extension": "201", "minutes": 30});
    let (status, answer) = post_event(&app, Some(&secret), "e-00", now, &extend).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not away")),
        "{answer}"
    );

    lunch_now(&app, user).await;
    let unchanged = |app: &App| {
        let store = app.store.clone();
        async move {
            store
                .overrides(user, Timestamp::now())
                .await
                .expect("read")
                .is_empty()
        }
    };
    // Unsigned, forged, stale, another company's secret, an unknown company: refused.
    for (secret, at, body, why) in [
        (None, now, back.clone(), "unsigned"),
        (
            Some("whsec_Zm9yZ2VkLWtleS1mb3JnZWQta2V5LTEyMw=="),
            now,
            back.clone(),
            "forged",
        ),
        (Some(secret.as_str()), now - 600, back.clone(), "stale"),
        (
            Some(beta_secret.as_str()),
            now,
            back.clone(),
            "another company's secret",
        ),
        (
            Some(secret.as_str()),
            now,
            json!({"company": uuid::Uuid::new_v4().to_string(), "type": "back", "extension": "201"}),
            "an unknown company",
        ),
    ] {
        let (status, answer) = post_event(&app, secret, "e-1", at, &body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {answer}");
        assert_eq!(answer["error"]["code"], "bad_signature", "{why}");
        assert!(unchanged(&app).await, "{why}: nothing changed");
    }
    // Thousands of signatures in one header: only the first few are looked at, so the
    // right one at the end does not count (and the work stays small).
    let text = back.to_string();
    let key =
        kalsync_target_webhook::signing_key(&SecretString::from(secret.clone())).expect("key");
    let real = kalsync_target_webhook::signature(&key, "e-many", now, text.as_bytes());
    let answer = reqwest::Client::new()
        .post(format!("{}/api/v1/pbx/events", app.base))
        .header("content-type", "application/json")
        .header("webhook-id", "e-many")
        .header("webhook-timestamp", now.to_string())
        .header(
            "webhook-signature",
            format!("{}{real}", "v1,AAAA ".repeat(5_000)),
        )
        .body(text)
        .send()
        .await
        .expect("post");
    assert!(
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        ]
        .contains(&answer.status()),
        "{}",
        answer.status()
    );
    assert!(unchanged(&app).await);
    // Signed but wrong: a clear answer, nothing changed.
    for (body, status_wanted, why) in [
        (
            json!({"company": company, "type": "back", "extension": "999"}),
            StatusCode::NOT_FOUND,
            "unknown extension",
        ),
        (
            json!({"company": company, "type": "leave", "extension": "201"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown type",
        ),
        (
            json!({"company": company, "type": "extend", "extension": "201"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "extend without minutes",
        ),
        (
            json!({"company": company, "type": "extend", "extension": "201", "until": "2020-01-01T00:00:00Z"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "extend to the past",
        ),
        (
            json!({"company": company, "type": "back", "extension": "201", "evil": 1}),
            StatusCode::BAD_REQUEST,
            "unknown field",
        ),
    ] {
        let (status, answer) = post_event(&app, Some(&secret), "e-2", now, &body).await;
        assert_eq!(status, status_wanted, "{why}: {answer}");
        assert!(unchanged(&app).await, "{why}: nothing changed");
    }
    // Acme's secret cannot name Beta's people: they are not found in Acme.
    let beta_instance = crate::helpers::graph_instance(&beta, app.beta).await;
    let (status, _) = beta
        .post(
            &format!("/api/v1/instances/{beta_instance}/users"),
            json!({"email": "bo@beta.example", "extension": "201"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, answer) = post_event(
        &app,
        Some(&secret),
        "e-2b",
        now,
        &json!({"company": company, "type": "back", "email": "bo@beta.example"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    // A huge body is refused before anything is read.
    let (status, _) = post_event(
        &app,
        Some(&secret),
        "e-3",
        now,
        &json!({"company": company, "type": "back", "extension": "x".repeat(20_000)}),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // Signed and fresh: back, until the lunch's end; audited.
    let (status, done) = post_event(&app, Some(&secret), "e-4", now, &back).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["action"], "back");
    let phone = app
        .store
        .overrides(user, Timestamp::now())
        .await
        .expect("read");
    assert_eq!(phone.len(), 1);
    assert_eq!(
        (phone[0].source, phone[0].status.is_none()),
        (kalsync_core::Source::Phone, true)
    );
    // The same event again: refused, nothing else changed.
    let (status, answer) = post_event(&app, Some(&secret), "e-4", now, &back).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("taken already"))
    );
    let (_, audit) = admin
        .get(&format!("/api/v1/companies/{company}/audit"))
        .await;
    let audit = audit.to_string();
    assert!(
        audit.contains("phone.back") && audit.contains("pbx_events.secret_made"),
        "{audit}"
    );
    assert!(!audit.contains(&secret), "the secret is not audited");

    // A status set a moment ago counts at once (no read has stored it in the timeline):
    // the phone extends it.
    let (status, _) = admin
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/users/{user}/manual-status"),
            Some(json!({"reason": "sick", "until": "PT1H"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = post_event(&app, Some(&secret), "e-4b", now, &extend).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["action"], "extend");
    // The status set by hand (an hour) is what was extended, not the stored lunch (which
    // ends in 50 minutes).
    let until: Timestamp = answer["until"]
        .as_str()
        .expect("until")
        .parse()
        .expect("time");
    assert!(
        until > Timestamp::now() + jiff::SignedDuration::from_mins(85),
        "{answer}"
    );

    // Removed: the PBX's events are refused.
    let (status, _) = admin
        .delete(&format!("/api/v1/companies/{company}/pbx-events/secret"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = post_event(&app, Some(&secret), "e-5", now, &back).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_pbx_page_makes_the_secret_shows_it_once_and_removes_it() {
    use crate::ui::{form_token, page_at, post_form, signed_in_browser};
    let app = spawn_app().await;
    let url = format!("{}/companies/{}/pbx", app.base, app.acme);
    let sv = signed_in_browser(&app, "sv", "it@acme.example").await;
    let page = page_at(&sv, url.clone()).await;
    assert!(
        page.contains("Tillbaka från telefonen") && page.contains("id=\"phone-events-none\""),
        "{page}"
    );
    assert!(
        page.contains("UserEvent(KalsyncBack"),
        "the dialplan is shown: {page}"
    );
    let csrf = form_token(&page);
    let made = post_form(&sv, format!("{url}/events-secret"), &[("csrf", &csrf)]).await;
    assert_eq!(made.status(), StatusCode::OK);
    let made = made.text().await.expect("html");
    let secret = made
        .split("id=\"pbx-events-secret\"")
        .nth(1)
        .and_then(|r| r.split_once('>'))
        .and_then(|(_, r)| r.split('<').next())
        .expect("the secret, once")
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let stored = app
        .store
        .pbx_event_secret(app.acme)
        .await
        .expect("read")
        .expect("made");
    assert_eq!(secrecy::ExposeSecret::expose_secret(&stored.0), secret);
    let again = page_at(&sv, url.clone()).await;
    assert!(!again.contains(&secret), "shown once");
    assert!(again.contains("Hemligheten skapades"), "{again}");
    // A reader sees no section and cannot make one.
    let reader = signed_in_browser(&app, "sv", "reception@acme.example").await;
    let seen = page_at(&reader, url.clone()).await;
    assert!(!seen.contains("phone-events"), "{seen}");
    let refused = post_form(
        &reader,
        format!("{url}/events-secret"),
        &[("csrf", &form_token(&seen))],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let removed = post_form(
        &sv,
        format!("{url}/events-remove"),
        &[("csrf", &form_token(&again))],
    )
    .await;
    assert_eq!(removed.status(), StatusCode::OK);
    assert!(
        app.store
            .pbx_event_secret(app.acme)
            .await
            .expect("read")
            .is_none()
    );
}
