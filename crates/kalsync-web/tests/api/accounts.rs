//! Accounts: the operator's own through the API, a company's on its page, and one's own
//! password on the account page.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, spawn_app};
use crate::ui::{browser, form_token, page_at, post_form, signed_in_browser};

#[tokio::test]
async fn the_operator_manages_its_own_accounts_and_nobody_else_may() {
    let app = spawn_app().await;
    let ops = app.signed_in("ops@operator.example").await;
    let (status, made) = ops
        .post(
            "/api/v1/operators",
            json!({"email": "second@operator.example", "password": "ett-långt-lösenord"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["role"], "operator");
    let (_, list) = ops.get("/api/v1/operators").await;
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    let (status, body) = ops
        .post(
            "/api/v1/operators",
            json!({"email": "second@operator.example", "password": "ett-långt-lösenord"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = ops
        .post(
            "/api/v1/operators",
            json!({"email": "third@operator.example", "password": "kort"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "password");

    // Company roles may not; a company account is not an operator's to remove here.
    let admin = app.signed_in("it@acme.example").await;
    assert_eq!(
        admin.get("/api/v1/operators").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        admin
            .post(
                "/api/v1/operators",
                json!({"email": "me@acme.example", "password": "ett-långt-lösenord"})
            )
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (_, me) = admin.get("/api/v1/me").await;
    let (_, accounts) = ops
        .get(&format!("/api/v1/companies/{}/accounts", app.acme))
        .await;
    let acme_admin = accounts
        .as_array()
        .and_then(|a| a.iter().find(|x| x["email"] == me["actor"]))
        .expect("listed")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        ops.delete(&format!("/api/v1/operators/{acme_admin}"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, own) = ops.get("/api/v1/me").await;
    let own_id = list
        .as_array()
        .and_then(|a| a.iter().find(|x| x["email"] == own["actor"]))
        .expect("own")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        ops.delete(&format!("/api/v1/operators/{own_id}")).await.0,
        StatusCode::FORBIDDEN
    );
    let second = made["id"].as_str().expect("id");
    assert_eq!(
        ops.delete(&format!("/api/v1/operators/{second}")).await.0,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_company_admin_adds_and_removes_accounts_on_the_companys_page() {
    let app = spawn_app().await;
    let sv = signed_in_browser(&app, "sv", "it@acme.example").await;
    let url = format!("{}/companies/{}/accounts", app.base, app.acme);
    let page = page_at(&sv, url.clone()).await;
    assert!(
        page.contains("it@acme.example") && page.contains("reception@acme.example"),
        "{page}"
    );
    assert!(!page.contains("it@beta.example"), "{page}");
    let csrf = form_token(&page);
    let short = post_form(
        &sv,
        &url,
        &[
            ("csrf", csrf.as_str()),
            ("email", "vakt@acme.example"),
            ("role", "reader"),
            ("password", "kort"),
        ],
    )
    .await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.text().await.expect("html").contains("password"));
    let added = post_form(
        &sv,
        &url,
        &[
            ("csrf", csrf.as_str()),
            ("email", "Vakt@Acme.example"),
            ("role", "reader"),
            ("password", "ett-långt-lösenord"),
        ],
    )
    .await
    .text()
    .await
    .expect("html");
    assert!(
        added.contains("Kontot är skapat: vakt@acme.example"),
        "{added}"
    );
    // The new reader signs in and reads, and may not reach the accounts page.
    let vakt = browser("sv");
    vakt.post(format!("{}/sign-in", app.base))
        .form(&[
            ("email", "vakt@acme.example"),
            ("password", "ett-långt-lösenord"),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(
        vakt.get(&url).send().await.expect("get").status(),
        StatusCode::FORBIDDEN
    );
    let beta = signed_in_browser(&app, "sv", "it@beta.example").await;
    assert_eq!(
        beta.get(&url).send().await.expect("get").status(),
        StatusCode::NOT_FOUND
    );
    // Removed: the form on its row.
    let id = app
        .store
        .account_by_email("vakt@acme.example")
        .await
        .expect("store")
        .expect("vakt")
        .id;
    assert!(added.contains(&format!("/accounts/{id}/remove")), "{added}");
    let asked = post_form(
        &sv,
        format!("{url}/{id}/remove"),
        &[("csrf", csrf.as_str())],
    )
    .await
    .text()
    .await
    .expect("html");
    assert!(
        asked.contains("Ta bort vakt@acme.example") && asked.contains("Det går inte att ångra."),
        "asked first: {asked}"
    );
    let removed = post_form(
        &sv,
        format!("{url}/{id}/remove"),
        &[("csrf", csrf.as_str()), ("confirm", "yes")],
    )
    .await
    .text()
    .await
    .expect("html");
    assert!(!removed.contains("vakt@acme.example"), "{removed}");
    assert!(
        vakt.get(format!("{}/", app.base))
            .send()
            .await
            .expect("get")
            .url()
            .path()
            == "/sign-in",
        "the removed account's session ended"
    );
}

#[tokio::test]
async fn the_account_page_changes_the_password_and_ends_every_session() {
    let app = spawn_app().await;
    let en = signed_in_browser(&app, "en", "reception@acme.example").await;
    let page = page_at(&en, format!("{}/account", app.base)).await;
    assert!(page.contains("Change password"), "{page}");
    let csrf = form_token(&page);
    let url = format!("{}/account/password", app.base);
    let post = |current: &'static str, new: &'static str, repeat: &'static str| {
        en.post(&url)
            .form(&[
                ("csrf", csrf.as_str()),
                ("current", current),
                ("new", new),
                ("repeat", repeat),
            ])
            .send()
    };
    let differ = post(PASSWORD, "nytt-lösenord-2027", "nytt-lösenord-2028")
        .await
        .expect("post");
    assert_eq!(differ.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        differ
            .text()
            .await
            .expect("html")
            .contains("The two new passwords differ.")
    );
    let wrong = post(
        "fel-lösenord-123",
        "nytt-lösenord-2027",
        "nytt-lösenord-2027",
    )
    .await
    .expect("post");
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        wrong
            .text()
            .await
            .expect("html")
            .contains("not the current password")
    );
    let done = post(PASSWORD, "nytt-lösenord-2027", "nytt-lösenord-2027")
        .await
        .expect("post")
        .text()
        .await
        .expect("html");
    assert!(done.contains("password-changed"), "{done}");
    assert_eq!(
        en.get(format!("{}/", app.base))
            .send()
            .await
            .expect("get")
            .url()
            .path(),
        "/sign-in"
    );
    let again = app
        .signed_in_with("reception@acme.example", "nytt-lösenord-2027")
        .await;
    assert_eq!(again.get("/api/v1/me").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_company_admin_sets_who_of_its_own_tenant_signs_in_as_what_and_of_no_other() {
    use kalsync_core::TenantId;
    use kalsync_store::CompanyTenant;

    let app = spawn_app().await;
    let now = jiff::Timestamp::now();
    let acme_tenant = TenantId::parse(crate::helpers::TENANT).expect("tenant");
    let beta_tenant = TenantId::parse(crate::helpers::TENANT_2).expect("tenant");
    for (tenant, company) in [(&acme_tenant, app.acme), (&beta_tenant, app.beta)] {
        app.store
            .claim_tenant(&CompanyTenant::with_default_roles(
                tenant.clone(),
                company,
                now,
            ))
            .await
            .expect("claim");
    }
    let sv = signed_in_browser(&app, "sv", "it@acme.example").await;
    let url = format!("{}/companies/{}/accounts", app.base, app.acme);
    let csrf = form_token(&page_at(&sv, url.clone()).await);
    let save = |tenant: &str, admins: &str| {
        let form = [
            ("csrf".to_owned(), csrf.clone()),
            ("tenant".to_owned(), tenant.to_owned()),
            ("admins".to_owned(), admins.to_owned()),
            ("readers".to_owned(), "Kalsync.Reader".to_owned()),
        ];
        let sv = sv.clone();
        let to = format!("{url}/microsoft");
        async move {
            let form: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            post_form(&sv, &to, &form).await
        }
    };
    let saved = save(
        crate::helpers::TENANT,
        "Kalsync.Admin\n5d2b0a1e-1111-4222-8333-944455556666",
    )
    .await;
    assert_eq!(saved.status(), StatusCode::OK);
    assert!(saved.text().await.expect("html").contains("roles-saved"));
    let kept = app
        .store
        .company_tenant(&acme_tenant)
        .await
        .expect("get")
        .expect("there");
    assert_eq!(
        kept.admins,
        vec![
            "Kalsync.Admin".to_owned(),
            "5d2b0a1e-1111-4222-8333-944455556666".to_owned()
        ]
    );
    // Another company's tenant is not there for Acme's admin.
    let other = save(crate::helpers::TENANT_2, "Everyone").await;
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    let beta = app
        .store
        .company_tenant(&beta_tenant)
        .await
        .expect("get")
        .expect("there");
    assert_eq!(beta.admins, vec!["Kalsync.Admin".to_owned()]);
    // A role value is one line of text.
    let bad = save(crate::helpers::TENANT, &format!("a{}b", '\u{1b}')).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A reader changes nothing.
    let reader = signed_in_browser(&app, "sv", "reception@acme.example").await;
    let answer = post_form(
        &reader,
        &format!("{url}/microsoft"),
        &[
            ("csrf", "x"),
            ("tenant", crate::helpers::TENANT),
            ("admins", "Everyone"),
            ("readers", ""),
        ],
    )
    .await;
    assert!(answer.status().is_client_error(), "{}", answer.status());
    assert_eq!(
        app.store
            .company_tenant(&acme_tenant)
            .await
            .expect("get")
            .expect("there")
            .admins
            .len(),
        2
    );
}
