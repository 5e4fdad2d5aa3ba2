//! Microsoft 365 for a company: *Connect Microsoft 365* records the tenant its admin
//! consented for and makes an instance that passes its check (a member who is no admin,
//! a stripped consent, a forged code, a round trip carried to another browser and another
//! company's admin make nothing); then the tenant's people sign in with Microsoft by
//! their app role. A tenant given by its domain is stored as its directory id.

use kalsync_graph_sim::{SimConfig, Simulator};
use kalsync_server::settings::{CompanyDecl, TargetDecl};

use crate::support::acme::{self, ANNA};
use crate::support::sims::mailbox;
use crate::support::{TestApp, client, spawn_app};

/// The link with `id` in a page, as an absolute URL against the page's own.
fn link(page_url: &reqwest::Url, html: &str, id: &str) -> reqwest::Url {
    let href = html
        .split(&format!("id=\"{id}\" href=\""))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no link #{id} in {html}"))
        .replace("&amp;", "&");
    page_url.join(&href).expect("link")
}

/// The link the simulated Entra ID's account picker shows for `upn`.
fn pick(page_url: &reqwest::Url, html: &str, upn: &str) -> reqwest::Url {
    let href = html
        .split(&format!("data-upn=\"{upn}\" href=\""))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no account {upn} in {html}"))
        .replace("&amp;", "&");
    page_url.join(&href).expect("link")
}

/// Starts *Connect Microsoft 365*, signs in at the simulated Entra ID as `upn` and
/// follows on to the consent page: its address and HTML.
async fn consent_prompt(
    http: &reqwest::Client,
    connect: &str,
    csrf: &str,
    upn: &str,
) -> (reqwest::Url, String) {
    let picker = http
        .post(connect)
        .form(&[("csrf", csrf), ("name", "Microsoft 365")])
        .send()
        .await
        .expect("to Entra ID");
    let picker_url = picker.url().clone();
    let html = picker.text().await.expect("html");
    assert!(
        picker_url.path().ends_with("/oauth2/v2.0/authorize"),
        "{picker_url}: {html}"
    );
    let prompt = http
        .get(pick(&picker_url, &html, upn))
        .send()
        .await
        .expect("signed in");
    let url = prompt.url().clone();
    (url, prompt.text().await.expect("html"))
}

/// Lisa's object id in the simulated tenant.
const LISA: &str = "1f0e2d3c-4b5a-4697-8a8b-9c0d1e2f3a4b";

/// The simulated tenant of the connect tests.
const CONNECTED_TENANT: &str = "6e9b7d1c-3f2a-4c5d-8e7f-0a1b2c3d4e5f";

fn person(upn: &str, roles: &[&str]) -> kalsync_graph_sim::SimPerson {
    kalsync_graph_sim::SimPerson {
        oid: None,
        upn: upn.into(),
        name: None,
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        groups: Vec::new(),
        admin: false,
    }
}

/// Signs in with Microsoft as `upn` on a fresh browser: the client (signed in or not)
/// and the last page's address and text.
async fn microsoft_sign_in(app: &TestApp, upn: &str) -> (reqwest::Client, reqwest::Url, String) {
    let http = client();
    let picker = http
        .get(app.url("/sign-in/microsoft"))
        .send()
        .await
        .expect("to Entra ID");
    let picker_url = picker.url().clone();
    let html = picker.text().await.expect("html");
    let back = http
        .get(pick(&picker_url, &html, upn))
        .send()
        .await
        .expect("back");
    let url = back.url().clone();
    let text = back.text().await.expect("html");
    (http, url, text)
}

#[tokio::test]
async fn connect_microsoft_365_records_the_tenant_and_the_new_instance_passes_its_check() {
    let mut config = SimConfig::with_secret(CONNECTED_TENANT, "c", "s");
    // The operator's multi-tenant app: no admin has consented yet.
    config.apps.push(kalsync_graph_sim::SimApp {
        client_id: "kalsync-operator".into(),
        secret: Some("operator-secret".into()),
        certificate: None,
        consented: false,
        secret_expired: false,
    });
    config.people = vec![
        // The directory admin, who consents.
        kalsync_graph_sim::SimPerson {
            admin: true,
            ..person("it@acme.example", &[])
        },
        person("lisa@acme.example", &["Kalsync.Reader"]).with_oid(LISA),
        person("guest@acme.example", &[]),
        // Someone of the tenant who named themselves as the operator's account.
        person(acme::OPERATOR, &["Kalsync.Admin"]),
    ];
    let calendars = Simulator::new(config);
    calendars.add_user(mailbox(ANNA)).expect("user");
    let (sim_url, _graph) = kalsync_graph_sim::spawn(calendars.clone())
        .await
        .expect("sim");
    let mut s = acme::settings(&sim_url);
    s.microsoft365 = Some(kalsync_server::settings::Microsoft365Settings {
        client_id: "kalsync-operator".into(),
        client_secret: "operator-secret".to_owned().into(),
        login_url: Some(sim_url.clone()),
        graph_url: Some(format!("{sim_url}v1.0/")),
        operator_tenant: None,
        operator_roles: vec!["Kalsync.Operator".into()],
    });
    s.accounts.push(acme::admin());
    // Beta, whose admin is also a directory admin of Acme's tenant.
    s.companies.push(CompanyDecl {
        name: "Beta".into(),
        targets: vec![TargetDecl::Simulator { name: "pbx".into() }],
        instances: Vec::new(),
    });
    s.accounts.push(kalsync_server::settings::AccountDecl {
        email: "it@beta.example".into(),
        role: "company_admin".into(),
        company: Some("Beta".into()),
        password: acme::ADMIN_PASSWORD.to_owned().into(),
    });
    let app = spawn_app(s).await;
    let (http, me) = app.signed_in_as(acme::ADMIN, acme::ADMIN_PASSWORD).await;
    let csrf = me["csrf"].as_str().expect("csrf").to_owned();
    let company = me["company"].as_str().expect("company").to_owned();
    let connect = app.url(&format!("/companies/{company}/connect-microsoft365"));
    let new_page = http
        .get(app.url(&format!("/companies/{company}/instances/new")))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(new_page.contains("connect-microsoft365"), "{new_page}");

    // Before any tenant is the company's, nobody of it signs in with Microsoft.
    let (_, _, refused) = microsoft_sign_in(&app, "lisa@acme.example").await;
    assert!(
        refused.contains("no access") || refused.contains("ingen åtkomst"),
        "{refused}"
    );

    // Someone of the tenant who is no directory admin cannot consent: nothing made.
    let lisa_tries = consent_prompt(&http, &connect, &csrf, "lisa@acme.example").await;
    assert!(
        lisa_tries.0.path() == "/auth/microsoft/callback" && lisa_tries.1.contains("AADSTS90094"),
        "{}: {}",
        lisa_tries.0,
        lisa_tries.1
    );

    // Nor by leaving the consent out of the request: her sign-in makes the app known in
    // the tenant, but its tokens there carry no permission.
    let picker = http
        .post(&connect)
        .form(&[("csrf", csrf.as_str()), ("name", "Stripped")])
        .send()
        .await
        .expect("to Entra ID");
    let mut stripped = picker.url().clone();
    let pairs: Vec<(String, String)> = stripped
        .query_pairs()
        .filter(|(k, _)| k != "prompt")
        .map(|(k, v)| match &*k {
            "scope" => (k.into_owned(), "openid profile email".to_owned()),
            _ => (k.into_owned(), v.into_owned()),
        })
        .collect();
    stripped.query_pairs_mut().clear().extend_pairs(pairs);
    let html = http
        .get(stripped.clone())
        .send()
        .await
        .expect("picker")
        .text()
        .await
        .expect("html");
    let back = http
        .get(pick(&stripped, &html, "lisa@acme.example"))
        .send()
        .await
        .expect("back");
    assert_eq!(back.status(), reqwest::StatusCode::FORBIDDEN);
    assert!(back.text().await.expect("html").contains("not-consented"));

    // The admin signs in and is asked for consent, then declines: nothing is created.
    let (prompt_url, html) = consent_prompt(&http, &connect, &csrf, "it@acme.example").await;
    assert!(
        prompt_url.path().ends_with("/oauth2/v2.0/authorize/answer")
            && html.contains("Permissions requested")
            && html.contains("kalsync-operator"),
        "{prompt_url}: {html}"
    );
    let declined = http
        .get(link(&prompt_url, &html, "cancel"))
        .send()
        .await
        .expect("back");
    let declined_url = declined.url().clone();
    let declined = format!("{declined_url} {}", declined.text().await.expect("html"));
    assert!(declined.contains("access_denied"), "{declined}");

    // A made-up code with a real state (this browser's own round trip) is no consent.
    let picker = http
        .post(&connect)
        .form(&[("csrf", csrf.as_str()), ("name", "Forged")])
        .send()
        .await
        .expect("to Entra ID");
    let state = picker
        .url()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    let forged = http
        .get(app.url(&format!("/auth/microsoft/callback?code=made-up&state={state}&admin_consent=True&tenant=84bd8158-6d4d-4958-8b9f-9d6445542f95")))
        .send()
        .await
        .expect("forged");
    assert_eq!(forged.status(), reqwest::StatusCode::FORBIDDEN);

    // A round trip started in one browser and carried to another (a link sent to
    // someone else, who signs in there) finishes nothing.
    let picker = http
        .post(&connect)
        .form(&[("csrf", csrf.as_str()), ("name", "Carried")])
        .send()
        .await
        .expect("to Entra ID");
    let picker_url = picker.url().clone();
    let html = picker.text().await.expect("html");
    let elsewhere = client();
    let asked = elsewhere
        .get(pick(&picker_url, &html, "it@acme.example"))
        .send()
        .await
        .expect("carried");
    let asked_url = asked.url().clone();
    let asked = asked.text().await.expect("html");
    let carried = elsewhere
        .get(link(&asked_url, &asked, "accept"))
        .send()
        .await
        .expect("accepted");
    assert_eq!(carried.status(), reqwest::StatusCode::BAD_REQUEST);
    assert!(carried.url().path().starts_with("/auth/microsoft/callback"));

    // Accepted: the callback records the proven tenant and makes the instance.
    let (prompt_url, html) = consent_prompt(&http, &connect, &csrf, "it@acme.example").await;
    let back = http
        .get(link(&prompt_url, &html, "accept"))
        .send()
        .await
        .expect("back");
    let callback_url = back.url().clone();
    let connected = back.text().await.expect("html");
    assert!(
        callback_url.path() == "/auth/microsoft/callback"
            && connected.contains(&format!("<code>{CONNECTED_TENANT}</code>")),
        "{callback_url}: {connected}"
    );
    let instance = link(&callback_url, &connected, "continue");
    let id = instance.path().trim_start_matches("/instances/").to_owned();
    let instances = app.instances_of(&http, &company).await;
    let made = instances
        .as_array()
        .expect("list")
        .iter()
        .find(|i| i["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} in {instances}"));
    assert_eq!(made["source"]["tenant"], CONNECTED_TENANT, "{made}");
    assert_eq!(made["source"]["client_id"], "kalsync-operator", "{made}");
    assert_eq!(
        instances.as_array().map(Vec::len),
        Some(2),
        "only one was made"
    );

    // The tenant is Acme's now: Beta's admin, a directory admin there too, cannot
    // connect it to Beta.
    let (beta, beta_me) = app
        .signed_in_as("it@beta.example", acme::ADMIN_PASSWORD)
        .await;
    let beta_company = beta_me["company"].as_str().expect("company").to_owned();
    let (prompt_url, html) = consent_prompt(
        &beta,
        &app.url(&format!("/companies/{beta_company}/connect-microsoft365")),
        beta_me["csrf"].as_str().expect("csrf"),
        "it@acme.example",
    )
    .await;
    let taken = beta
        .get(link(&prompt_url, &html, "accept"))
        .send()
        .await
        .expect("back");
    assert_eq!(taken.status(), reqwest::StatusCode::CONFLICT);
    assert!(taken.text().await.expect("html").contains("tenant-taken"));
    let beta_instances = app.instances_of(&beta, &beta_company).await;
    assert_eq!(
        beta_instances.as_array().map(Vec::len),
        Some(0),
        "{beta_instances}"
    );

    // Now the tenant's people sign in by their app role: Lisa reads Acme; a guest
    // without a role is told whom to ask.
    let (lisa, _, page) = microsoft_sign_in(&app, "lisa@acme.example").await;
    assert!(
        page.contains("signed-in") || page.contains("Acme"),
        "{page}"
    );
    let (_, me) = app.who_am_i(&lisa).await;
    assert_eq!(me["role"], "reader", "{me}");
    assert_eq!(me["company"], company.as_str(), "{me}");
    assert_eq!(me["actor"], "lisa@acme.example", "{me}");
    // Her role taken away in Entra ID: her next sign-in is refused, and the session she
    // still had ends with it.
    calendars.add_person(person("lisa@acme.example", &[]).with_oid(LISA));
    let (_, _, refused) = microsoft_sign_in(&app, "lisa@acme.example").await;
    assert!(refused.contains("Kalsync.Reader"), "{refused}");
    assert_eq!(
        app.who_am_i(&lisa).await.0,
        reqwest::StatusCode::UNAUTHORIZED
    );
    calendars.add_person(person("lisa@acme.example", &["Kalsync.Reader"]).with_oid(LISA));
    let (_, _, refused) = microsoft_sign_in(&app, "guest@acme.example").await;
    assert!(refused.contains("Kalsync.Reader"), "{refused}");
    // A name is not an identity: the person calling themselves the operator's e-mail
    // is not signed in as the operator (nor gets an account of that name).
    let (pretender, _, refused) = microsoft_sign_in(&app, acme::OPERATOR).await;
    assert!(
        refused.contains("finns redan") && refused.contains(acme::OPERATOR),
        "{refused}"
    );
    assert_eq!(
        app.who_am_i(&pretender).await.0,
        reqwest::StatusCode::UNAUTHORIZED
    );

    // The admin, who signs in with a password, links their Microsoft account on My
    // account; from then on Microsoft signs them in as that account, with its own role.
    let picker = http
        .post(app.url("/account/microsoft"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("to Entra ID");
    let picker_url = picker.url().clone();
    let html = picker.text().await.expect("html");
    let linked = http
        .get(pick(&picker_url, &html, "it@acme.example"))
        .send()
        .await
        .expect("linked");
    assert!(linked.text().await.expect("html").contains("id=\"linked\""));
    let (admin_ms, _, _) = microsoft_sign_in(&app, "it@acme.example").await;
    let (_, me) = app.who_am_i(&admin_ms).await;
    assert_eq!(
        (me["actor"].as_str(), me["role"].as_str()),
        (Some("it@acme.example"), Some("company_admin")),
        "{me}"
    );

    // A wrong token is refused however the rest looks.
    let mut faults = calendars.faults();
    faults.bad_id_token = Some(kalsync_graph_sim::BadIdToken::ForeignKey);
    calendars.set_faults(faults.clone());
    let (forged, _, page) = microsoft_sign_in(&app, "lisa@acme.example").await;
    assert!(page.contains("signature"), "{page}");
    assert_eq!(
        app.who_am_i(&forged).await.0,
        reqwest::StatusCode::UNAUTHORIZED
    );
    faults.bad_id_token = None;
    calendars.set_faults(faults);

    // The same answer again is refused: each consent is used once.
    let replay = http.get(callback_url.clone()).send().await.expect("replay");
    assert_eq!(replay.status(), reqwest::StatusCode::BAD_REQUEST);

    // The instance signs in with the operator's app and reads Anna's calendar.
    let check: serde_json::Value = http
        .post(app.url(&format!("/api/v1/instances/{id}/check")))
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({"mailbox": "anna@acme.example"}))
        .send()
        .await
        .expect("check")
        .json()
        .await
        .expect("json");
    assert_eq!(check["ok"], true, "{check}");
    app.stop().await;
}

#[tokio::test]
async fn a_tenant_given_by_its_domain_is_stored_as_its_directory_id() {
    let calendars = Simulator::new(SimConfig {
        domains: vec!["acme.onmicrosoft.com".into()],
        ..SimConfig::with_secret(CONNECTED_TENANT, "c", "s")
    });
    let (sim_url, _graph) = kalsync_graph_sim::spawn(calendars.clone())
        .await
        .expect("sim");
    let mut s = acme::settings(&sim_url);
    s.accounts.push(acme::admin());
    let app = spawn_app(s).await;
    let (http, me) = app.signed_in_as(acme::ADMIN, acme::ADMIN_PASSWORD).await;
    let csrf = me["csrf"].as_str().expect("csrf").to_owned();
    let company = me["company"].as_str().expect("company").to_owned();
    let create = |tenant: &str| {
        http.post(app.url(&format!("/api/v1/companies/{company}/instances")))
            .header("x-csrf-token", &csrf)
            .json(
                &serde_json::json!({"name": format!("M365 {tenant}"), "source": {
            "kind": "graph", "tenant": tenant, "client_id": "c", "client_secret": "s",
            "graph_url": format!("{sim_url}v1.0/"), "login_url": sim_url.to_string()}}),
            )
            .send()
    };
    let made: serde_json::Value = create("Acme.OnMicrosoft.com")
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    assert_eq!(made["source"]["tenant"], CONNECTED_TENANT, "{made}");
    for unknown in ["fabrikam.onmicrosoft.com", "t", "//127.0.0.1:9/x"] {
        let refused = create(unknown).await.expect("create");
        assert_eq!(refused.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
        let body: serde_json::Value = refused.json().await.expect("json");
        assert_eq!(body["error"]["field"], "source.tenant", "{body}");
    }
    app.stop().await;
}
