//! An instance's own pages: its settings (name, on/off, source with the secret kept,
//! removal only when confirmed), the connection check from the API and the page, the
//! user search, the rules editor's live preview, and *Connect Microsoft 365* refusing
//! answers it did not ask for.

use std::sync::{Arc, Mutex};

use kalsync_store::{GraphCredential, InstanceId, SourceConfig};
use kalsync_web::{CheckStep, ConnectionCheck, Hook};
use reqwest::StatusCode;
use secrecy::ExposeSecret as _;
use serde_json::json;

use crate::helpers::{graph_instance, spawn_app, spawn_app_with};
use crate::ui::{form_token, page_at, post_form, signed_in_browser};

/// A checker that records what it was asked and answers a failed read: the web layer's
/// part is tested here; the real check against the simulators in the service's tests.
#[derive(Default)]
struct Recorded(Mutex<Vec<(InstanceId, Option<String>)>>);

impl ConnectionCheck for Recorded {
    fn check<'a>(
        &'a self,
        instance: InstanceId,
        mailbox: Option<&'a str>,
    ) -> Hook<'a, Result<Vec<CheckStep>, String>> {
        Box::pin(async move {
            self.0
                .lock()
                .expect("lock")
                .push((instance, mailbox.map(str::to_owned)));
            Ok(vec![
                CheckStep {
                    name: "sign in".into(),
                    ok: true,
                    detail: "the app's credentials give a token".into(),
                },
                CheckStep {
                    name: "read the calendar".into(),
                    ok: false,
                    detail: "ErrorAccessDenied from https://mail.corp.example/EWS/Exchange.asmx (10.1.2.3:443): give the account Reviewer".into(),
                },
            ])
        })
    }
}

fn secret_of(source: &SourceConfig) -> String {
    match source {
        SourceConfig::Graph {
            credential: GraphCredential::Secret(s),
            ..
        } => s.expose_secret().to_owned(),
        other => panic!("not a Graph secret: {}", other.kind()),
    }
}

#[tokio::test]
async fn settings_rename_switch_off_keep_the_secret_and_removal_needs_a_confirmation() {
    let app = spawn_app().await;
    let admin = app.signed_in("it@acme.example").await;
    let id = graph_instance(&admin, app.acme).await;
    let sv = signed_in_browser(&app, "sv", "it@acme.example").await;
    let url = format!("{}/instances/{id}/settings", app.base);
    let page = page_at(&sv, url.clone()).await;
    assert!(
        page.contains("value=\"Microsoft 365\"")
            && page.contains(&format!("value=\"{}\"", crate::helpers::TENANT)),
        "{page}"
    );
    assert!(!page.contains("s3cret"), "a secret is never shown");
    // The overview: its health at a glance, in Swedish.
    let overview = page_at(&sv, format!("{}/instances/{id}/overview", app.base)).await;
    assert!(
        overview.contains("id=\"health\"")
            && overview.contains("Översikt")
            && overview.contains("Inga: växeln har fått allt."),
        "{overview}"
    );
    // The connection tab says what the instance may read and how to withdraw it.
    assert!(
        page.contains("Calendars.Read")
            && page.contains("Företagsprogram → programmet → Egenskaper → Ta bort")
            && page.contains("inte läst än"),
        "{page}"
    );
    let csrf = form_token(&page);

    // Renamed and switched off; the secret left empty is kept.
    // Another tenant needs the secret again: it would go somewhere new.
    let moved = post_form(
        &sv,
        &url,
        &[
            ("csrf", csrf.as_str()),
            ("name", "Acme M365"),
            ("tenant", crate::helpers::TENANT_2),
            ("client_id", "c"),
            ("client_secret", ""),
        ],
    )
    .await;
    assert_eq!(moved.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let saved = post_form(
        &sv,
        &url,
        &[
            ("csrf", csrf.as_str()),
            ("name", "Acme M365"),
            ("tenant", crate::helpers::TENANT),
            ("client_id", "c"),
            ("client_secret", ""),
        ],
    )
    .await;
    assert_eq!(saved.status(), StatusCode::OK);
    assert!(saved.text().await.expect("html").contains("Sparat"));
    let stored = app
        .store
        .instance(id.parse().expect("id"))
        .await
        .expect("instance");
    assert_eq!(stored.name, "Acme M365");
    assert!(!stored.active);
    assert_eq!(secret_of(&stored.source), "s3cret");
    assert!(
        matches!(&stored.source, SourceConfig::Graph { tenant, .. } if tenant == crate::helpers::TENANT)
    );

    // A bad address is named and nothing changes.
    let bad = post_form(
        &sv,
        &url,
        &[
            ("csrf", csrf.as_str()),
            ("name", "Other"),
            ("active", "on"),
            ("tenant", crate::helpers::TENANT_2),
            ("client_id", "c"),
            ("graph_url", "not an address"),
        ],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await.expect("html");
    assert!(
        html.contains("Graph-adress:") && !html.contains("source.graph_url"),
        "the field by its Swedish name: {html}"
    );
    let unchanged = app
        .store
        .instance(id.parse().expect("id"))
        .await
        .expect("instance");
    assert_eq!(unchanged.name, "Acme M365");

    // Readers and other companies do not reach the page.
    let reader = signed_in_browser(&app, "sv", "reception@acme.example").await;
    assert_eq!(
        reader.get(&url).send().await.expect("get").status(),
        StatusCode::FORBIDDEN
    );
    let beta = signed_in_browser(&app, "sv", "it@beta.example").await;
    assert_eq!(
        beta.get(&url).send().await.expect("get").status(),
        StatusCode::NOT_FOUND
    );

    // Removal first asks, saying what goes with it, and changes nothing; confirmed, the
    // instance is gone.
    let remove = format!("{}/instances/{id}/remove", app.base);
    let asked = post_form(&sv, &remove, &[("csrf", csrf.as_str())]).await;
    assert_eq!(asked.status(), StatusCode::OK);
    let asked = asked.text().await.expect("html");
    assert!(
        asked.contains("id=\"confirm\"") && asked.contains("Ta bort Acme M365 (0 användare)?"),
        "{asked}"
    );
    assert_eq!(app.store.instances(app.acme).await.expect("list").len(), 1);
    let ticked = post_form(&sv, &remove, &[("csrf", csrf.as_str()), ("confirm", "on")]).await;
    assert_eq!(ticked.status(), StatusCode::OK, "only `yes` confirms");
    assert_eq!(app.store.instances(app.acme).await.expect("list").len(), 1);
    let removed = post_form(&sv, &remove, &[("csrf", csrf.as_str()), ("confirm", "yes")]).await;
    assert_eq!(removed.url().path(), "/");
    assert!(
        app.store
            .instances(app.acme)
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn the_connection_check_runs_from_the_api_and_the_instance_page() {
    // Without the service's checker the API says so.
    let bare = spawn_app().await;
    let admin = bare.signed_in("it@acme.example").await;
    let id = graph_instance(&admin, bare.acme).await;
    let (status, body) = admin
        .post(
            &format!("/api/v1/instances/{id}/check"),
            json!({"mailbox": "anna@acme.example"}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");

    let checker = Arc::new(Recorded::default());
    let given = checker.clone();
    let app = spawn_app_with(move |state| state.with_checker(given)).await;
    let admin = app.signed_in("it@acme.example").await;
    let id = graph_instance(&admin, app.acme).await;
    let check = format!("/api/v1/instances/{id}/check");

    // No users and no mailbox, or a malformed one: the field is named.
    let (status, body) = admin.post(&check, json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "mailbox");
    let (status, body) = admin.post(&check, json!({"mailbox": "anna"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = admin.post(&check, json!({"mailbx": "a@b.se"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an unknown field");
    assert!(checker.0.lock().expect("lock").is_empty());

    let (status, body) = admin
        .post(&check, json!({"mailbox": "Anna@Acme.example"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ok"], false);
    assert_eq!(body["steps"][1]["name"], "read the calendar");
    // What failed and what to do, not where: addresses are for the operator and the log.
    let detail = body["steps"][1]["detail"].as_str().expect("detail");
    assert!(
        detail.contains("give the account Reviewer")
            && !detail.contains("10.1.2.3")
            && !detail.contains("mail.corp.example"),
        "{detail}"
    );
    assert_eq!(
        checker.0.lock().expect("lock")[0].1.as_deref(),
        Some("anna@acme.example")
    );

    // Readers may not sign in with the stored credentials; another company sees nothing.
    let reader = app.signed_in("reception@acme.example").await;
    assert_eq!(
        reader
            .post(&check, json!({"mailbox": "a@acme.example"}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let beta = app.signed_in("it@beta.example").await;
    assert_eq!(
        beta.post(&check, json!({"mailbox": "a@acme.example"}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // The page shows each step and what to fix.
    let en = signed_in_browser(&app, "en", "it@acme.example").await;
    let page = page_at(&en, format!("{}/instances/{id}", app.base)).await;
    assert!(page.contains("Test the connection"), "{page}");
    let answered = post_form(
        &en,
        format!("{}/instances/{id}/check", app.base),
        &[
            ("csrf", form_token(&page).as_str()),
            ("mailbox", "anna@acme.example"),
        ],
    )
    .await
    .text()
    .await
    .expect("html");
    assert!(
        answered.contains("The connection needs fixing")
            && answered.contains("The calendar is read")
            && answered.contains("give the account Reviewer"),
        "{answered}"
    );
    let (_, audit) = admin
        .get(&format!("/api/v1/companies/{}/audit", app.acme))
        .await;
    assert!(audit.to_string().contains("instance.checked"), "{audit}");

    // An instance made with a test mailbox is tested at once: the new instance's page
    // says what to fix before anyone is added.
    let new = page_at(
        &en,
        format!("{}/companies/{}/instances/new", app.base, app.acme),
    )
    .await;
    assert!(new.contains("name=\"mailbox\""), "{new}");
    let made = post_form(
        &en,
        format!("{}/companies/{}/instances/new", app.base, app.acme),
        &[
            ("csrf", form_token(&new).as_str()),
            ("kind", "graph"),
            ("name", "Tested at once"),
            ("tenant", crate::helpers::TENANT_2),
            ("client_id", "c"),
            ("client_secret", "s3cret"),
            ("mailbox", "bo@acme.example"),
        ],
    )
    .await
    .text()
    .await
    .expect("html");
    assert!(
        made.contains("Tested at once") && made.contains("The connection needs fixing"),
        "{made}"
    );
    assert_eq!(
        checker
            .0
            .lock()
            .expect("lock")
            .last()
            .and_then(|c| c.1.clone()),
        Some("bo@acme.example".to_owned())
    );
}

#[tokio::test]
async fn the_instance_page_searches_users_and_the_rules_preview_answers_while_typing() {
    let app = spawn_app().await;
    let admin = app.signed_in("it@acme.example").await;
    let id = graph_instance(&admin, app.acme).await;
    for (email, name, ext) in [
        ("anna@acme.example", "Anna Andersson", "201"),
        ("bertil@acme.example", "Bertil Berg", "202"),
    ] {
        let (status, body) = admin
            .post(
                &format!("/api/v1/instances/{id}/users"),
                json!({"email": email, "display_name": name, "extension": ext}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let sv = signed_in_browser(&app, "sv", "reception@acme.example").await;
    let found = page_at(&sv, format!("{}/instances/{id}?q=ANNA", app.base)).await;
    assert!(
        found.contains("anna@acme.example") && !found.contains("bertil@acme.example"),
        "{found}"
    );
    assert!(found.contains("Visar 1 av 2"), "{found}");
    let by_extension = page_at(&sv, format!("{}/instances/{id}?q=202", app.base)).await;
    assert!(
        by_extension.contains("bertil@acme.example") && !by_extension.contains("anna@acme.example")
    );
    assert!(
        !found.contains("Testa anslutningen"),
        "a reader gets no check form"
    );

    // The live preview answers with the part under the form only.
    let editor = page_at(&sv, format!("{}/instances/{id}/rules?view=file", app.base)).await;
    assert!(editor.contains("id=\"live\""), "{editor}");
    let csrf = form_token(&editor);
    let preview = format!("{}/instances/{id}/rules/preview", app.base);
    let ics = crate::ui::lunch_tomorrow_ics();
    let answer = post_form(
        &sv,
        &preview,
        &[
            ("csrf", csrf.as_str()),
            ("settings", "template = \"prefix\"\n"),
            ("calendar", ics.as_str()),
            ("action", "preview"),
        ],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let fragment = answer.text().await.expect("html");
    assert!(
        fragment.contains("id=\"preview\"") && !fragment.contains("<html"),
        "{fragment}"
    );
    let wrong = post_form(
        &sv,
        &preview,
        &[
            ("csrf", csrf.as_str()),
            ("settings", "template = \"prefix\"\nfoo = 1\n"),
            ("calendar", ics.as_str()),
            ("action", "preview"),
        ],
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.text().await.expect("html").contains(":2:"));
    let forged = post_form(
        &sv,
        &preview,
        &[
            ("csrf", "forged"),
            ("settings", ""),
            ("calendar", ""),
            ("action", "preview"),
        ],
    )
    .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn connect_microsoft_365_refuses_answers_it_did_not_ask_for() {
    let app = spawn_app().await;
    let sv = signed_in_browser(&app, "sv", "it@acme.example").await;
    // Without an operator app there is no connect button, and starting one is refused.
    let page = page_at(
        &sv,
        format!("{}/companies/{}/instances/new", app.base, app.acme),
    )
    .await;
    assert!(!page.contains("connect-microsoft365"), "{page}");
    let refused = sv
        .post(format!(
            "{}/companies/{}/connect-microsoft365",
            app.base, app.acme
        ))
        .form(&[("csrf", form_token(&page).as_str()), ("name", "M365")])
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);

    // A redirect with a state nobody issued creates nothing.
    let forged = reqwest::get(format!(
        "{}/auth/microsoft/callback?code=x&state=guessed",
        app.base
    ))
    .await
    .expect("get");
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    assert!(
        app.store
            .instances(app.acme)
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn a_stored_secret_never_goes_to_an_address_it_was_not_given_for() {
    let app = spawn_app().await;
    let admin = app.signed_in("it@acme.example").await;
    let id = graph_instance(&admin, app.acme).await;
    let path = format!("/api/v1/instances/{id}");
    // Another login host, app, tenant or Graph address needs the secret again.
    for source in [
        json!({"kind": "graph", "tenant": crate::helpers::TENANT, "client_id": "c", "login_url": "https://login.evil.example/"}),
        json!({"kind": "graph", "tenant": crate::helpers::TENANT, "client_id": "other-app"}),
        json!({"kind": "graph", "tenant": crate::helpers::TENANT_2, "client_id": "c"}),
        json!({"kind": "graph", "tenant": crate::helpers::TENANT, "client_id": "c", "graph_url": "https://graph.evil.example/v1.0/"}),
    ] {
        let (status, body) = admin
            .send(
                reqwest::Method::PATCH,
                &path,
                Some(json!({"source": source})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["field"], "source.client_secret", "{body}");
    }
    let stored = app
        .store
        .instance(id.parse().expect("id"))
        .await
        .expect("there");
    assert_eq!(secret_of(&stored.source), "s3cret");

    // The same for an Exchange password: a new address or account needs it again.
    let (status, made) = admin
        .post(
            &format!("/api/v1/companies/{}/instances", app.acme),
            json!({"name": "Exchange", "source": {"kind": "ews", "url": "https://mail.acme.example/EWS/Exchange.asmx",
                "username": "ACME\\svc", "password": "ews-pw", "options": {"max_concurrency": 4}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let ews = format!("/api/v1/instances/{}", made["id"].as_str().expect("id"));
    let (status, body) = admin
        .send(
            reqwest::Method::PATCH,
            &ews,
            Some(json!({"source": {"kind": "ews", "url": "http://mail.evil.example/EWS/Exchange.asmx", "username": "ACME\\svc"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "source.password", "{body}");
    // So does another OAuth tenant, login host or scope, or another trusted CA.
    for options in [
        json!({"tenant": crate::helpers::TENANT_2}),
        json!({"login_url": "https://login.evil.example/"}),
        json!({"scope": "https://evil.example/.default"}),
        json!({"ca_pem": "-----BEGIN CERTIFICATE-----"}),
    ] {
        let (status, body) = admin
            .send(
                reqwest::Method::PATCH,
                &ews,
                Some(json!({"source": {"kind": "ews", "url": "https://mail.acme.example/EWS/Exchange.asmx",
                    "username": "ACME\\svc", "options": options}})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{options}: {body}"
        );
        assert_eq!(body["error"]["field"], "source.password", "{body}");
    }
    // Unchanged address and account: the password and the options left out are kept.
    let (status, body) = admin
        .send(
            reqwest::Method::PATCH,
            &ews,
            Some(json!({"source": {"kind": "ews", "url": "https://mail.acme.example/EWS/Exchange.asmx", "username": "ACME\\svc", "version": "2019"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["source"]["max_concurrency"], 4, "{body}");
}

#[tokio::test]
async fn connect_refuses_a_tenant_another_company_has_and_keeps_the_operator_apps_tenant() {
    let operator_app = kalsync_web::Microsoft365App::new(
        reqwest::Client::new(),
        "operator-app",
        "operator-secret".to_owned().into(),
        url::Url::parse("https://login.example/").expect("url"),
        None,
    );
    let app = spawn_app_with(move |state| state.with_microsoft365(Some(operator_app), None)).await;
    // Beta has an instance in tenant `t`.
    let beta = app.signed_in("it@beta.example").await;
    graph_instance(&beta, app.beta).await;
    // Acme's admin starts a consent, then forges the answer with Beta's tenant.
    let sv = signed_in_browser(&app, "sv", "it@acme.example").await;
    let page = page_at(
        &sv,
        format!("{}/companies/{}/instances/new", app.base, app.acme),
    )
    .await;
    assert!(page.contains("connect-microsoft365"), "{page}");
    let no_redirects = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    no_redirects
        .post(format!("{}/sign-in", app.base))
        .form(&[
            ("email", "it@acme.example"),
            ("password", crate::helpers::PASSWORD),
        ])
        .send()
        .await
        .expect("sign in");
    let started = no_redirects
        .post(format!(
            "{}/companies/{}/connect-microsoft365",
            app.base, app.acme
        ))
        .form(&[
            (
                "csrf",
                form_token(
                    &page_at(
                        &no_redirects,
                        format!("{}/companies/{}/instances/new", app.base, app.acme),
                    )
                    .await,
                )
                .as_str(),
            ),
            ("name", "Stolen"),
        ])
        .send()
        .await
        .expect("post");
    let to = url::Url::parse(
        started
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .expect("to Entra ID"),
    )
    .expect("url");
    // The admin signs in and consents in one round trip.
    assert!(
        to.as_str()
            .starts_with("https://login.example/organizations/oauth2/v2.0/authorize"),
        "{to}"
    );
    for pair in [
        ("response_type", "code"),
        ("code_challenge_method", "S256"),
        (
            "scope",
            "openid profile email https://graph.microsoft.com/.default",
        ),
        ("prompt", "consent"),
    ] {
        assert!(
            to.query_pairs().any(|(k, v)| k == pair.0 && v == pair.1),
            "{pair:?} in {to}"
        );
    }
    let state = to
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    // A forged answer naming Beta's tenant, with the sign-in's state but from another
    // browser and without a code Entra ID issued, is no consent: nothing is created.
    for forged in [
        format!(
            "{}/connect/microsoft365/callback?admin_consent=True&tenant={}&state={state}",
            app.base,
            crate::helpers::TENANT
        ),
        format!(
            "{}/auth/microsoft/callback?admin_consent=True&tenant={}&code=x&state={state}",
            app.base,
            crate::helpers::TENANT
        ),
    ] {
        let answer = reqwest::get(&forged).await.expect("callback");
        assert!(
            answer.status().is_client_error(),
            "{forged}: {}",
            answer.status()
        );
    }
    assert!(
        app.store
            .instances(app.acme)
            .await
            .expect("list")
            .is_empty()
    );

    // The operator's app is not typed in: only Connect makes its instances (a company
    // could otherwise hold a tenant it does not administer against the one that does),
    // nor does an instance of a company's own app become one.
    let admin = app.signed_in("it@acme.example").await;
    let typed = json!({"kind": "graph", "tenant": crate::helpers::TENANT_2, "client_id": "operator-app", "client_secret": "operator-secret"});
    let (status, body) = admin
        .post(
            &format!("/api/v1/companies/{}/instances", app.acme),
            json!({"name": "M365", "source": typed}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "source.client_id", "{body}");
    let own = graph_instance(&admin, app.acme).await;
    let (status, body) = admin
        .send(
            reqwest::Method::PATCH,
            &format!("/api/v1/instances/{own}"),
            Some(json!({"source": typed})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // An instance of the operator's app (Connect made it) keeps its tenant.
    let made = app
        .store
        .create_instance(kalsync_store::NewInstance {
            company: app.acme,
            name: "M365".into(),
            source: SourceConfig::Graph {
                tenant: crate::helpers::TENANT_2.into(),
                client_id: "operator-app".into(),
                credential: GraphCredential::Secret("operator-secret".to_owned().into()),
                graph_url: None,
                login_url: Some("https://login.example/".into()),
            },
            settings: Default::default(),
        })
        .await
        .expect("made");
    let made = json!({"id": made.id.to_string()});
    let (status, body) = admin
        .send(
            reqwest::Method::PATCH,
            &format!("/api/v1/instances/{}", made["id"].as_str().expect("id")),
            Some(json!({"source": {"kind": "graph", "tenant": crate::helpers::TENANT, "client_id": "operator-app", "client_secret": "mine"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "source.tenant", "{body}");
    // …and its addresses, even with a secret of the admin's own.
    for source in [
        json!({"kind": "graph", "tenant": crate::helpers::TENANT_2, "client_id": "operator-app", "graph_url": "https://graph.evil.example/v1.0/"}),
        json!({"kind": "graph", "tenant": crate::helpers::TENANT_2, "client_id": "operator-app", "login_url": "https://login.evil.example/", "client_secret": "mine"}),
    ] {
        let (status, body) = admin
            .send(
                reqwest::Method::PATCH,
                &format!("/api/v1/instances/{}", made["id"].as_str().expect("id")),
                Some(json!({"source": source})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{source}: {body}");
    }

    // The language switch only returns to a path here, whatever hides in it.
    let back = no_redirects
        .get(format!("{}/lang?to=en&back=/%09/evil.example", app.base))
        .send()
        .await
        .expect("lang");
    assert_eq!(
        back.headers().get("location").and_then(|l| l.to_str().ok()),
        Some("/")
    );
}

/// An Exchange that cannot reach the service is pulled: the form's option is stored,
/// shown again on the connection tab, and turned off there without losing the options
/// the settings file set.
#[tokio::test]
async fn the_exchange_pull_option_is_set_in_the_form_and_other_options_stay() {
    let app = spawn_app().await;
    let sv = signed_in_browser(&app, "sv", "it@acme.example").await;
    let new = format!("{}/companies/{}/instances/new?kind=ews", app.base, app.acme);
    let page = page_at(&sv, new.clone()).await;
    assert!(page.contains("name=\"pull\""), "{page}");
    let csrf = form_token(&page);
    let made = post_form(
        &sv,
        format!("{}/companies/{}/instances/new", app.base, app.acme),
        &[
            ("csrf", csrf.as_str()),
            ("kind", "ews"),
            ("name", "Exchange 2010"),
            ("url", "https://mail.acme.example/EWS/Exchange.asmx"),
            ("username", "ACME\\svc-kalsync"),
            ("password", "pw"),
            ("auth", "ntlm"),
            ("version", "2010"),
            ("access", "impersonation"),
            ("pull", "on"),
        ],
    )
    .await;
    assert!(
        made.url().path().starts_with("/instances/"),
        "{}",
        made.url()
    );
    let id: kalsync_store::InstanceId = made
        .url()
        .path()
        .trim_start_matches("/instances/")
        .parse()
        .expect("id");
    let options = |i: &kalsync_store::Instance| match &i.source {
        kalsync_store::SourceConfig::Ews { options, .. } => options.clone(),
        other => panic!("an Exchange instance: {other:?}"),
    };
    let mut stored = app.store.instance(id).await.expect("instance");
    assert!(options(&stored).pull, "pulled");
    // The settings file set another option meanwhile.
    if let kalsync_store::SourceConfig::Ews { options, .. } = &mut stored.source {
        options.max_concurrency = Some(4);
    }
    app.store.update_instance(&stored).await.expect("update");
    let url = format!("{}/instances/{id}/settings", app.base);
    let page = page_at(&sv, url.clone()).await;
    assert!(
        page.contains("id=\"pull\" type=\"checkbox\" name=\"pull\" value=\"on\" checked"),
        "{page}"
    );
    let saved = post_form(
        &sv,
        &url,
        &[
            ("csrf", csrf.as_str()),
            ("name", "Exchange 2010"),
            ("active", "on"),
            ("url", "https://mail.acme.example/EWS/Exchange.asmx"),
            ("username", "ACME\\svc-kalsync"),
            ("auth", "ntlm"),
            ("version", "2010"),
            ("access", "impersonation"),
        ],
    )
    .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let after = options(&app.store.instance(id).await.expect("instance"));
    assert!(!after.pull, "the option turned off");
    assert_eq!(after.max_concurrency, Some(4), "the file's option kept");
}

#[tokio::test]
async fn the_new_instance_powershell_follows_the_version_access_and_account_chosen() {
    let app = spawn_app().await;
    let admin = signed_in_browser(&app, "en", "it@acme.example").await;
    let script = |company: String, query: &str| {
        format!(
            "{}/companies/{company}/instances/new/powershell?{query}",
            app.base
        )
    };
    let acme = app.acme.to_string();
    let answer = admin
        .get(script(
            acme.clone(),
            "version=2010&access=delegate&username=CORP%5Csvc-cal",
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(answer.status(), StatusCode::OK);
    let text = answer.text().await.expect("text");
    assert!(
        text.contains("svc-cal") && !text.contains("ApplicationImpersonation"),
        "{text}"
    );
    let impersonation = admin
        .get(script(acme.clone(), "version=2016&access=impersonation"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert!(
        impersonation.contains("ApplicationImpersonation") && impersonation.contains("svc-kalsync"),
        "{impersonation}"
    );
    // A version that is not one: why, not a script.
    let bad = admin
        .get(script(acme.clone(), "version=1999"))
        .send()
        .await
        .expect("get");
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Only for those who may make the company's instances.
    let reader = signed_in_browser(&app, "en", "reception@acme.example").await;
    let status = reader
        .get(script(acme.clone(), "version=2016"))
        .send()
        .await
        .expect("get")
        .status();
    assert_eq!(status, StatusCode::FORBIDDEN);
    let beta = signed_in_browser(&app, "en", "it@beta.example").await;
    let status = beta
        .get(script(acme, "version=2016"))
        .send()
        .await
        .expect("get")
        .status();
    assert_eq!(status, StatusCode::NOT_FOUND);
}
