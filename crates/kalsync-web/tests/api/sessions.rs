//! Signing in and out: cookie flags, CSRF, the rate limit, uniform refusals, API tokens.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, spawn_app};

#[tokio::test]
async fn a_session_is_a_strict_http_only_cookie_and_changes_need_its_csrf_token() {
    let app = spawn_app().await;
    let anonymous = app.anonymous();
    let (status, body) = anonymous.get("/api/v1/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthenticated");

    // The cookie's flags.
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/session", app.base))
        .json(&json!({"email": "IT@acme.example", "password": PASSWORD}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a cookie")
        .to_owned();
    assert!(cookie.starts_with("kalsync_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");

    let admin = app.signed_in("it@acme.example").await;
    let (status, me) = admin.get("/api/v1/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["role"], "company_admin");
    assert_eq!(me["company"], app.acme.to_string());
    assert_eq!(me["csrf"].as_str(), admin.csrf.as_deref());

    // Without the token a change is refused, with it allowed.
    let mut forged = app.signed_in("it@acme.example").await;
    forged.csrf = Some("wrong".into());
    let (status, body) = forged
        .post(
            &format!("/api/v1/companies/{}/tokens", app.acme),
            json!({"name": "console"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("CSRF")
    );
    let (status, _) = admin
        .post(
            &format!("/api/v1/companies/{}/tokens", app.acme),
            json!({"name": "console"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Signing out ends the session on the server, not only in the browser.
    let (status, _) = admin.delete("/api/v1/session").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(admin.get("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_passwords_are_refused_alike_and_paused_after_five() {
    let app = spawn_app().await;
    let c = app.anonymous();
    let (unknown_status, unknown) = c
        .post(
            "/api/v1/session",
            json!({"email": "nobody@acme.example", "password": "whatever-at-all"}),
        )
        .await;
    let (wrong_status, wrong) = c
        .post(
            "/api/v1/session",
            json!({"email": "it@beta.example", "password": "whatever-at-all"}),
        )
        .await;
    assert_eq!(unknown_status, StatusCode::FORBIDDEN);
    assert_eq!(wrong_status, StatusCode::FORBIDDEN);
    assert_eq!(
        unknown, wrong,
        "an unknown account looks like a wrong password"
    );
    for _ in 0..4 {
        c.post(
            "/api/v1/session",
            json!({"email": "it@beta.example", "password": "whatever-at-all"}),
        )
        .await;
    }
    // Paused now, even with the right password.
    let (status, body) = c
        .post(
            "/api/v1/session",
            json!({"email": "it@beta.example", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "too_many_requests");
    // Someone else at the same address (behind one proxy: everyone) still signs in.
    let (status, body) = c
        .post(
            "/api/v1/session",
            json!({"email": "it@acme.example", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn api_tokens_act_for_their_company_and_role_until_revoked() {
    let app = spawn_app().await;
    let admin = app.signed_in("it@acme.example").await;
    let (status, made) = admin
        .post(
            &format!("/api/v1/companies/{}/tokens", app.acme),
            json!({"name": "reception console"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(made["role"], "reader");
    let secret = made["token"].as_str().expect("shown once").to_owned();
    assert!(secret.starts_with("kst_"));
    let (_, listed) = admin
        .get(&format!("/api/v1/companies/{}/tokens", app.acme))
        .await;
    assert!(listed[0].get("token").is_none(), "never shown again");

    let console = app.with_token(&secret);
    let (status, me) = console.get("/api/v1/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["actor"], "token:reception console");
    assert_eq!(console.get("/api/v1/directory").await.0, StatusCode::OK);
    // A reader token may not change anything (and needs no CSRF token to be told so).
    let (status, _) = console
        .post(
            &format!("/api/v1/companies/{}/instances", app.acme),
            json!({"name": "x", "source": {"kind": "graph", "tenant": crate::helpers::TENANT, "client_id": "c", "client_secret": "s"}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Another company's data does not exist for it.
    let (status, _) = console
        .get(&format!("/api/v1/companies/{}", app.beta))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let id = made["id"].as_str().expect("id");
    let (status, _) = admin
        .delete(&format!("/api/v1/companies/{}/tokens/{id}", app.acme))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(console.get("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.with_token("kst_made-up").get("/api/v1/me").await.0,
        StatusCode::UNAUTHORIZED
    );

    // A token expires (90 days unless asked otherwise, a year at most)…
    let expires: jiff::Timestamp = made["expires"]
        .as_str()
        .expect("expires")
        .parse()
        .expect("a time");
    let days = expires.duration_since(jiff::Timestamp::now()).as_hours() / 24;
    assert!((89..=90).contains(&days), "{days}");
    let (status, body) = admin
        .post(
            &format!("/api/v1/companies/{}/tokens", app.acme),
            json!({"name": "forever", "expires_in_days": 10_000}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "expires_in_days");
    // …is made only by a person, not by another token…
    let (status, _) = app
        .with_token(&secret_of_new_token(&admin, &app, "company_admin").await)
        .post(
            &format!("/api/v1/companies/{}/tokens", app.acme),
            json!({"name": "child"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // …and goes with the account that made it.
    let accounts = format!("/api/v1/companies/{}/accounts", app.acme);
    let (status, colleague) = admin
        .post(&accounts, json!({"email": "it2@acme.example", "role": "company_admin", "password": "kollegans-lösen-2026"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{colleague}");
    let theirs = app
        .signed_in_with("it2@acme.example", "kollegans-lösen-2026")
        .await;
    let kept = app.with_token(&secret_of_new_token(&theirs, &app, "reader").await);
    assert_eq!(kept.get("/api/v1/me").await.0, StatusCode::OK);
    let (status, _) = admin
        .delete(&format!(
            "{accounts}/{}",
            colleague["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(kept.get("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
}

/// A new API token of Acme's with `role`, made by `by`: its secret.
async fn secret_of_new_token(
    by: &crate::helpers::Client,
    app: &crate::helpers::App,
    role: &str,
) -> String {
    let (status, made) = by
        .post(
            &format!("/api/v1/companies/{}/tokens", app.acme),
            json!({"name": format!("{role} console"), "role": role}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    made["token"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn the_openapi_description_is_served_and_names_every_route() {
    let app = spawn_app().await;
    let (status, doc) = app.anonymous().get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let paths = doc["paths"].as_object().expect("paths");
    for p in [
        "/api/v1/session",
        "/api/v1/companies/{company}/instances",
        "/api/v1/instances/{instance}/users/import",
        "/api/v1/users/{user}/status",
        "/api/v1/directory",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}

#[tokio::test]
async fn a_company_admin_manages_its_accounts_and_everyone_their_password() {
    let app = spawn_app().await;
    let admin = app.signed_in("it@acme.example").await;
    let accounts = format!("/api/v1/companies/{}/accounts", app.acme);
    let (status, made) = admin
        .post(&accounts, json!({"email": "Vaxel@acme.example", "role": "reader", "password": "växeln-2026-lösen"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["email"], "vaxel@acme.example");
    assert!(made.get("password").is_none() && !made.to_string().contains("argon2"));
    for (body, field) in [
        (
            json!({"email": "x", "role": "reader", "password": "långt-nog-lösen"}),
            "email",
        ),
        (
            json!({"email": "y@acme.example", "role": "operator", "password": "långt-nog-lösen"}),
            "role",
        ),
        (
            json!({"email": "y@acme.example", "role": "reader", "password": "kort"}),
            "password",
        ),
    ] {
        let (status, answer) = admin.post(&accounts, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"]["field"], field);
    }
    let (status, _) = admin
        .post(&accounts, json!({"email": "vaxel@acme.example", "role": "reader", "password": "växeln-2026-lösen"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // The new account signs in; a reader may not manage accounts.
    let reader = app.anonymous();
    let (status, _) = reader
        .post(
            "/api/v1/session",
            json!({"email": "vaxel@acme.example", "password": "växeln-2026-lösen"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let reader = app.signed_in("reception@acme.example").await;
    assert_eq!(reader.get(&accounts).await.0, StatusCode::FORBIDDEN);
    // Beta's admin cannot see or remove Acme's accounts.
    let beta = app.signed_in("it@beta.example").await;
    assert_eq!(beta.get(&accounts).await.0, StatusCode::NOT_FOUND);
    let id = made["id"].as_str().expect("id");
    assert_eq!(
        beta.delete(&format!("/api/v1/companies/{}/accounts/{id}", app.beta))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // A password change needs the current one and ends other sessions.
    let other_session = app.signed_in("it@acme.example").await;
    let (status, answer) = admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/me/password",
            Some(json!({"current": "wrong-password", "new": "ett-nytt-lösenord"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["error"]["field"], "current");
    let (status, _) = admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/me/password",
            Some(json!({"current": PASSWORD, "new": "ett-nytt-lösenord"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        other_session.get("/api/v1/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = app
        .anonymous()
        .post(
            "/api/v1/session",
            json!({"email": "it@acme.example", "password": "ett-nytt-lösenord"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Removing an account; not one's own.
    let admin = app
        .signed_in_with("it@acme.example", "ett-nytt-lösenord")
        .await;
    assert_eq!(
        admin.delete(&format!("{accounts}/{id}")).await.0,
        StatusCode::NO_CONTENT
    );
    let own = app
        .store
        .account_by_email("it@acme.example")
        .await
        .expect("get")
        .expect("there");
    assert_eq!(
        admin.delete(&format!("{accounts}/{}", own.id)).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn adding_accounts_cannot_list_another_companys_people() {
    let app = spawn_app().await;
    let beta = app.signed_in("it@beta.example").await;
    let accounts = format!("/api/v1/companies/{}/accounts", app.beta);
    let add =
        |email: &str| json!({"email": email, "role": "reader", "password": "ett-långt-lösenord"});
    // Taken in Acme or taken in Beta: the same answer, naming nobody's company.
    let (in_acme, acme_answer) = beta.post(&accounts, add("it@acme.example")).await;
    let (in_beta, beta_answer) = beta.post(&accounts, add("it@beta.example")).await;
    assert_eq!(
        (in_acme, in_beta),
        (StatusCode::CONFLICT, StatusCode::CONFLICT)
    );
    let said = |answer: &serde_json::Value, email: &str| {
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .replace(email, "…")
    };
    assert_eq!(
        said(&acme_answer, "it@acme.example"),
        said(&beta_answer, "it@beta.example")
    );
    // Trying more taken e-mails pauses adding, even of a free one, and the operator
    // finds every try in the audit log.
    for _ in 0..3 {
        beta.post(&accounts, add("reception@acme.example")).await;
    }
    let (paused, answer) = beta.post(&accounts, add("free@beta.example")).await;
    assert_eq!(paused, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    let log = app.store.audit_log(Some(app.beta), 50).await.expect("log");
    assert_eq!(
        log.iter()
            .filter(|e| e.action == "account.email_taken")
            .count(),
        5
    );
    // Acme adds as before.
    let acme = app.signed_in("it@acme.example").await;
    let (status, _) = acme
        .post(
            &format!("/api/v1/companies/{}/accounts", app.acme),
            add("ny@acme.example"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}
