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

#[tokio::test]
async fn a_receptionist_sets_a_status_from_the_switchboard_once_the_company_allows_it() {
    let app = spawn_app().await;
    let admin = app.signed_in("it@acme.example").await;
    let instance = graph_instance(&admin, app.acme).await;
    let (_, anna) = admin
        .post(
            &format!("/api/v1/instances/{instance}/users"),
            json!({"email": "anna@acme.example", "display_name": "Anna Andersson", "extension": "201"}),
        )
        .await;
    let id = anna["id"].as_str().expect("id").to_owned();
    let user: kalsync_store::UserId = id.parse().expect("id");
    let board = format!("{}/switchboard", app.base);

    // Not yet allowed: no panel, and the form is refused.
    let reader = signed_in_browser(&app, "sv", "reception@acme.example").await;
    let page = page_at(&reader, board.clone()).await;
    assert!(!page.contains("id=\"set-status\""), "{page}");
    let csrf = form_token(&page);
    let fields = |csrf: &str, user: &str, reason: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("user".to_owned(), user.to_owned()),
            ("reason".to_owned(), reason.to_owned()),
            ("mode".to_owned(), "divert".to_owned()),
            ("until".to_owned(), "PT1H".to_owned()),
        ]
    };
    let refused = reader
        .post(format!("{board}/status"))
        .header("origin", &app.base)
        .form(&fields(&csrf, &id, "sick"))
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let now = jiff::Timestamp::now();
    assert!(
        app.store
            .overrides(user, now)
            .await
            .expect("read")
            .is_empty()
    );

    // A reader cannot allow itself; the admin can (audited), on the accounts page.
    let reader_api = app.signed_in("reception@acme.example").await;
    let (status, _) = reader_api
        .send(
            reqwest::Method::PATCH,
            &format!("/api/v1/companies/{}", app.acme),
            Some(json!({"readers_set_status": true})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let sv_admin = signed_in_browser(&app, "sv", "it@acme.example").await;
    let accounts = page_at(
        &sv_admin,
        format!("{}/companies/{}/accounts", app.base, app.acme),
    )
    .await;
    assert!(accounts.contains("Receptionister"), "{accounts}");
    let saved = post_form(
        &sv_admin,
        format!("{}/companies/{}/accounts/readers", app.base, app.acme),
        &[
            ("csrf", &form_token(&accounts)),
            ("readers_set_status", "1"),
        ],
    )
    .await;
    assert_eq!(saved.status(), StatusCode::OK);
    assert!(
        app.store
            .company(app.acme)
            .await
            .expect("company")
            .readers_set_status
    );
    // Another company's admin cannot change Acme's setting.
    let beta = app.signed_in("it@beta.example").await;
    let (status, _) = beta
        .send(
            reqwest::Method::PATCH,
            &format!("/api/v1/companies/{}", app.acme),
            Some(json!({"readers_set_status": false})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Now the panel lists Anna; a reason the instance lacks is refused in Swedish and
    // changes nothing; "sick" is stored as manual and audited with the reader's name.
    let page = page_at(&reader, board.clone()).await;
    assert!(
        page.contains("id=\"set-status\"") && page.contains("Anna Andersson · 201"),
        "{page}"
    );
    let csrf = form_token(&page);
    let bad = reader
        .post(format!("{board}/status"))
        .header("origin", &app.base)
        .form(&fields(&csrf, &id, "rymden"))
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.text()
            .await
            .expect("html")
            .contains("Statusen gick inte att sätta")
    );
    assert!(
        app.store
            .overrides(user, now)
            .await
            .expect("read")
            .is_empty()
    );
    let set = reader
        .post(format!("{board}/status"))
        .header("origin", &app.base)
        .form(&fields(&csrf, &id, "sick"))
        .send()
        .await
        .expect("post");
    assert_eq!(set.status(), StatusCode::OK, "followed to the switchboard");
    let got = app.store.overrides(user, now).await.expect("read");
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].status.as_ref().map(|(r, _)| r.as_str()),
        Some("sick")
    );
    let (_, audit) = admin
        .get(&format!("/api/v1/companies/{}/audit", app.acme))
        .await;
    let audit = audit.to_string();
    assert!(
        audit.contains("company.readers_set_status") && audit.contains("reception@acme.example"),
        "{audit}"
    );
    // The reader clears it through the API too; another company's user is not found.
    let (status, _) = reader_api
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/users/{id}/manual-status"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = beta
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/users/{id}/manual-status"),
            Some(json!({"reason": "sick"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_person_signed_in_with_microsoft_sets_their_own_status_and_no_one_elses() {
    let app = spawn_app().await;
    let admin = app.signed_in("it@acme.example").await;
    let instance = graph_instance(&admin, app.acme).await;
    let mut ids = Vec::new();
    for email in ["anna@acme.example", "bo@acme.example"] {
        let (_, user) = admin
            .post(
                &format!("/api/v1/instances/{instance}/users"),
                json!({"email": email}),
            )
            .await;
        ids.push(user["id"].as_str().expect("id").to_owned());
    }
    // Anna's reader account: the same e-mail, but only linked to her Microsoft sign-in
    // does it make her the person.
    let hash = kalsync_web::auth::hash_password(crate::helpers::PASSWORD.into())
        .await
        .expect("hash");
    let account = app
        .store
        .create_account(kalsync_store::NewAccount {
            email: "anna@acme.example".into(),
            display_name: Some("Anna".into()),
            grant: kalsync_store::Grant::company(kalsync_store::Role::Reader, app.acme)
                .expect("grant"),
            password_hash: hash,
            entra: None,
        })
        .await
        .expect("account");
    let anna = app.signed_in("anna@acme.example").await;
    let put = |id: &str| format!("/api/v1/users/{id}/manual-status");
    let (status, _) = anna
        .send(
            reqwest::Method::PUT,
            &put(&ids[0]),
            Some(json!({"reason": "sick"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "not linked: a reader like any"
    );
    let link = |tenant: &str| kalsync_store::EntraId {
        tenant: kalsync_core::TenantId::parse(tenant).expect("tenant"),
        object: "0b6f2f5e-1c1d-4d55-9a57-4f9c2e0a7c11".into(),
    };
    // Linked to a tenant Acme never proved it owns (someone's own): a reader like any.
    app.store
        .link_entra(account.id, Some(&link(crate::helpers::TENANT_2)))
        .await
        .expect("linked");
    let anna = app.signed_in("anna@acme.example").await;
    let (status, _) = anna
        .send(
            reqwest::Method::PUT,
            &put(&ids[0]),
            Some(json!({"reason": "sick"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another tenant's sign-in");
    // Acme's own tenant: her own status.
    app.store
        .claim_tenant(&kalsync_store::CompanyTenant::with_default_roles(
            kalsync_core::TenantId::parse(crate::helpers::TENANT).expect("tenant"),
            app.acme,
            jiff::Timestamp::now(),
        ))
        .await
        .expect("claimed");
    app.store
        .link_entra(account.id, Some(&link(crate::helpers::TENANT)))
        .await
        .expect("linked");
    let anna = app.signed_in("anna@acme.example").await;
    let (status, answer) = anna
        .send(
            reqwest::Method::PUT,
            &put(&ids[0]),
            Some(json!({"reason": "sick", "until": "PT1H"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "her own: {answer}");
    let (status, _) = anna
        .send(
            reqwest::Method::PUT,
            &put(&ids[1]),
            Some(json!({"reason": "sick"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not Bo's");
    let (status, _) = anna
        .send(reqwest::Method::DELETE, &put(&ids[0]), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}
