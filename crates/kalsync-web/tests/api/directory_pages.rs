//! The instance's directory tab (Katalog Synk): a refused setting comes back with what
//! was typed and why, in the page's language; a saved one shows; a reader sees no form;
//! another company's admin gets 404 and another site's form is refused.

use reqwest::StatusCode;

use crate::helpers::{graph_instance, spawn_app};
use crate::ui::{form_token, page_at, post_form, signed_in_browser};

#[tokio::test]
async fn the_directory_tab_keeps_what_was_typed_and_is_only_for_its_company() {
    let app = spawn_app().await;
    let admin = app.signed_in("it@acme.example").await;
    let id = graph_instance(&admin, app.acme).await;
    let sv = signed_in_browser(&app, "sv", "it@acme.example").await;
    let url = format!("{}/instances/{id}/directory", app.base);
    let page = page_at(&sv, url.clone()).await;
    assert!(
        page.contains("Katalogen bestämmer") && page.contains("id=\"directory-form\""),
        "{page}"
    );
    let csrf = form_token(&page);

    // A pattern without a capture group: refused, in Swedish, the typed values kept.
    let refused = post_form(
        &sv,
        &url,
        &[
            ("csrf", csrf.as_str()),
            ("groups", "sales\r\nsupport"),
            ("attribute", "businessPhones"),
            ("cut", "pattern"),
            ("pattern", "\\d+"),
            ("every", "1h"),
            ("grace", "7d"),
            ("manual", "keep"),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused = refused.text().await.expect("html");
    assert!(refused.contains("fångstgrupp"), "{refused}");
    assert!(
        refused.contains("sales\r\nsupport") || refused.contains("sales\nsupport"),
        "{refused}"
    );
    assert!(refused.contains("value=\"\\d+\""), "{refused}");
    assert!(
        app.store
            .directory(id.parse().expect("id"))
            .await
            .expect("read")
            .is_none()
    );

    // Saved: shown as saved, due at once.
    let saved = post_form(
        &sv,
        &url,
        &[
            ("csrf", csrf.as_str()),
            ("groups", "sales"),
            ("attribute", "businessPhones"),
            ("cut", "last"),
            ("digits", "3"),
            ("every", "1h"),
            ("grace", "7d"),
            ("manual", "keep"),
        ],
    )
    .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let saved = saved.text().await.expect("html");
    assert!(
        saved.contains("Sparat.") && saved.contains(">sales"),
        "{saved}"
    );
    let record = app
        .store
        .directory(id.parse().expect("id"))
        .await
        .expect("read")
        .expect("saved");
    assert_eq!(record.settings.every, jiff::SignedDuration::from_hours(1));
    assert!(!record.settings.enabled, "dry runs until turned on");

    // Removals held back: confirmed only where the directory is on (confirming does
    // not turn it on).
    let held = kalsync_store::DirectoryRun {
        at: Some(jiff::Timestamp::now()),
        held: Some((8, 10)),
        members: 2,
        ..kalsync_store::DirectoryRun::default()
    };
    let instance_id: kalsync_store::InstanceId = id.parse().expect("id");
    app.store
        .save_directory_run(instance_id, &held, None)
        .await
        .expect("run");
    let off = page_at(&sv, url.clone()).await;
    assert!(
        off.contains("hålls kvar") && !off.contains("confirm-removals"),
        "{off}"
    );
    let mut on = record.settings.clone();
    on.enabled = true;
    app.store
        .set_directory(
            instance_id,
            Some(&on),
            kalsync_store::DirectorySecret::Clear,
            jiff::Timestamp::now(),
        )
        .await
        .expect("on");
    app.store
        .save_directory_run(instance_id, &held, None)
        .await
        .expect("run");
    let on_page = page_at(&sv, url.clone()).await;
    assert!(on_page.contains("id=\"confirm-removals\""), "{on_page}");

    // A reader sees the tab without its forms; another company's admin does not see it.
    let reader = signed_in_browser(&app, "sv", "reception@acme.example").await;
    let seen = page_at(&reader, url.clone()).await;
    assert!(
        seen.contains("Katalogen bestämmer") && !seen.contains("directory-form"),
        "{seen}"
    );
    let beta = signed_in_browser(&app, "en", "it@beta.example").await;
    assert_eq!(
        beta.get(&url).send().await.expect("get").status(),
        StatusCode::NOT_FOUND
    );
    let beta_csrf = form_token(&page_at(&beta, format!("{}/", app.base)).await);
    for path in ["", "/run", "/remove"] {
        let answer = post_form(
            &beta,
            format!("{url}{path}"),
            &[
                ("csrf", beta_csrf.as_str()),
                ("groups", "x"),
                ("mode", "dry_run"),
                ("confirm", "yes"),
            ],
        )
        .await;
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // A form from another site changes nothing.
    let forged = sv
        .post(&url)
        .header("origin", "https://evil.example")
        .form(&[("csrf", csrf.as_str()), ("groups", "evil")])
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.store
            .directory(id.parse().expect("id"))
            .await
            .expect("read")
            .expect("there")
            .settings
            .groups[0]
            .as_str(),
        "sales"
    );
}

#[tokio::test]
async fn an_active_directory_is_set_on_the_tab_and_its_password_never_shown() {
    let app = spawn_app().await;
    let admin = app.signed_in("it@acme.example").await;
    let id = graph_instance(&admin, app.acme).await;
    let sv = signed_in_browser(&app, "sv", "it@acme.example").await;
    let url = format!("{}/instances/{id}/directory", app.base);
    let page = page_at(&sv, url.clone()).await;
    assert!(page.contains("Active Directory (LDAP)"), "{page}");
    let csrf = form_token(&page);
    let form = |password: &'static str, server: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("kind", "ldap".to_owned()),
            ("url", server.to_owned()),
            ("base", "DC=acme,DC=example".to_owned()),
            ("bind_dn", "kalsync@acme.example".to_owned()),
            ("password", password.to_owned()),
            ("groups", "CN=Sälj,OU=Grupper,DC=acme,DC=example".to_owned()),
            ("attribute", "ipPhone".to_owned()),
            ("cut", "whole".to_owned()),
            ("every", "1h".to_owned()),
            ("grace", "0s".to_owned()),
            ("manual", "keep".to_owned()),
        ]
    };
    let post = |fields: Vec<(&'static str, String)>| posted(&sv, &url, fields);
    // No password yet: refused in Swedish, what was typed kept.
    let (status, refused) = post(form("", "ldaps://dc1.acme.example")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.contains("tjänstekontots lösenord"), "{refused}");
    assert!(
        refused.contains("value=\"ldaps://dc1.acme.example\""),
        "{refused}"
    );
    // Plain LDAP without TLS is not a choice: an address of another scheme is refused.
    let (status, refused) = post(form("Hemligt-123", "http://dc1.acme.example")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.contains("ldaps://server"), "{refused}");
    assert!(
        !refused.contains("Hemligt-123"),
        "a password is never echoed"
    );
    // Saved with it: the page says one is stored and never shows it.
    let (status, saved) = post(form("Hemligt-123", "ldaps://dc1.acme.example")).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert!(saved.contains("Ett lösenord är sparat"), "{saved}");
    assert!(!saved.contains("Hemligt-123"), "{saved}");
    let record = app
        .store
        .directory(id.parse().expect("id"))
        .await
        .expect("read")
        .expect("saved");
    assert!(record.password.is_some());
    assert_eq!(
        record.settings.ldap.as_ref().map(|l| l.host()),
        Some("dc1.acme.example")
    );
    // Kept for the same server; another server asks for it again.
    let (status, _) = post(form("", "ldaps://dc1.acme.example")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, refused) = post(form("", "ldaps://elsewhere.example")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    // The API shows whether a password is set, never the password.
    let (status, view) = admin
        .get(&format!("/api/v1/instances/{id}/directory"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["password_set"], true);
    assert!(!view.to_string().contains("Hemligt"), "{view}");
}

#[tokio::test]
async fn an_exchange_instance_picks_active_directory_or_an_entra_app_of_its_own() {
    let app = spawn_app().await;
    let admin = app.signed_in("it@acme.example").await;
    let (status, made) = admin
        .post(
            &format!("/api/v1/companies/{}/instances", app.acme),
            serde_json::json!({"name": "Exchange", "source": {"kind": "ews", "url": "https://mail.acme.example/EWS/Exchange.asmx",
                "username": "ACME\\svc", "password": "ews-pw"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = made["id"].as_str().expect("id").to_owned();
    let sv = signed_in_browser(&app, "sv", "it@acme.example").await;
    let url = format!("{}/instances/{id}/directory", app.base);
    let page = page_at(&sv, url.clone()).await;
    // Active Directory is chosen first; Entra ID with an app of its own is offered.
    assert!(
        page.contains("<option value=\"ldap\" selected>") && page.contains("id=\"entra-app\""),
        "{page}"
    );
    let csrf = form_token(&page);
    let entra = |secret: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("kind", "entra".to_owned()),
            ("tenant", "acme.onmicrosoft.com".to_owned()),
            ("client_id", "6a9c-11".to_owned()),
            ("client_secret", secret.to_owned()),
            ("groups", "sales-group-id".to_owned()),
            ("every", "1h".to_owned()),
            ("grace", "0s".to_owned()),
            ("manual", "keep".to_owned()),
        ]
    };
    let post = |fields: Vec<(&'static str, String)>| posted(&sv, &url, fields);
    // Without the app's secret: asked for, in Swedish.
    let (status, refused) = post(entra("")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.contains("Klienthemlighet: ange appens klienthemlighet"),
        "{refused}"
    );
    assert!(
        refused.contains("value=\"acme.onmicrosoft.com\""),
        "{refused}"
    );
    // With it: saved, never shown.
    let (status, saved) = post(entra("app-s3cret")).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert!(
        saved.contains("Sparat.") && !saved.contains("app-s3cret"),
        "{saved}"
    );
    assert!(
        saved.contains("<option value=\"entra\" selected>"),
        "{saved}"
    );
    let record = app
        .store
        .directory(id.parse().expect("id"))
        .await
        .expect("read")
        .expect("saved");
    assert_eq!(
        record.settings.entra_app.as_ref().map(|a| a.tenant()),
        Some("acme.onmicrosoft.com")
    );
    assert!(record.password.is_some());
}

/// Posts `fields` to the tab: the status and the page answered.
async fn posted(
    client: &reqwest::Client,
    url: &str,
    fields: Vec<(&'static str, String)>,
) -> (StatusCode, String) {
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer = post_form(client, url, &fields).await;
    (answer.status(), answer.text().await.expect("html"))
}
