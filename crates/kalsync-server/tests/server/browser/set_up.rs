//! A company admin sets Microsoft 365 up in the browser (an instance against the
//! simulator, the tenant given by its domain, a user, the rules); the receptionist's open
//! switchboard shows a booking made in Outlook without a reload; the time bar says why;
//! the language switches; and the admin who tries another company's URLs gets 404.

use fantoccini::Locator;
use kalsync_graph_sim::{EventSpec, SimConfig};
use kalsync_server::Settings;
use kalsync_server::settings::{
    AccountDecl, CompanyDecl, InstanceDecl, SourceDecl, TargetDecl, UserDecl,
};

use super::{
    ONE_BROWSER, PASSWORD, browser, click, fill, shot, sign_in, until_gone_reloading, until_text,
};
use crate::support::Launch;
use crate::support::sims::simulator;

#[tokio::test]
async fn an_admin_sets_up_microsoft_365_and_the_receptionist_sees_a_booking_live() {
    let _one = ONE_BROWSER.lock().await;
    let Some((_driver, c)) = browser().await else {
        return;
    };
    // A simulated Microsoft 365 with Anna (Acme) and Bo (Beta).
    let sim = simulator(
        SimConfig {
            domains: vec!["acme.onmicrosoft.com".into()],
            ..SimConfig::with_secret(ACME_TENANT, "c", "s")
        },
        &["anna@acme.example", "bo@beta.example"],
    );
    let (sim_url, _sim) = kalsync_graph_sim::spawn(sim.clone()).await.expect("sim");
    let graph = SourceDecl::Graph {
        tenant: ACME_TENANT.into(),
        client_id: "c".into(),
        client_secret: "s".to_owned().into(),
        graph_url: Some(format!("{sim_url}v1.0/")),
        login_url: Some(sim_url.to_string()),
    };
    let account = |email: &str, role: &str, company: &str| AccountDecl {
        email: email.into(),
        role: role.into(),
        company: Some(company.into()),
        password: PASSWORD.to_owned().into(),
    };
    let mut settings = Settings {
        companies: vec![
            // Acme starts with nothing: its admin sets it up in the browser.
            CompanyDecl {
                name: "Acme AB".into(),
                targets: vec![TargetDecl::Simulator { name: "pbx".into() }],
                instances: vec![],
            },
            CompanyDecl {
                name: "Beta AB".into(),
                targets: vec![TargetDecl::Simulator { name: "pbx".into() }],
                instances: vec![InstanceDecl {
                    name: "Beta 365".into(),
                    source: graph,
                    settings: None,
                    users: vec![UserDecl::Full {
                        email: "bo@beta.example".into(),
                        name: Some("Bo Berg".into()),
                        extension: Some("301".into()),
                    }],
                    directory: None,
                }],
            },
        ],
        accounts: vec![
            account("it@acme.example", "company_admin", "Acme AB"),
            account("reception@acme.example", "reader", "Acme AB"),
        ],
        // The simulators listen on loopback.
        outbound: kalsync_server::settings::OutboundSettings::loopback(),
        ..Settings::default()
    };
    settings.engine.debounce_ms = 0;
    settings.engine.poll_interval_secs = 2;
    // Anna's booking must come by notification: her mailbox, once subscribed, is polled
    // only every 15 minutes.
    settings.engine.subscribed_poll_interval_secs = Some(900);
    let app = Launch::new(settings).public().spawn().await;
    let base = &app.base;

    // Signed out: the sign-in page, in Swedish (the browser's language).
    c.goto(&format!("{base}/")).await.expect("goto");
    until_text(&c, "Logga in", 5).await;
    shot("sign-in-sv", &c.screenshot().await.expect("png"));
    sign_in(&c, "it@acme.example").await;
    until_text(&c, "Inga instanser ännu.", 5).await;

    // A Microsoft 365 instance against the simulator, then Anna by the form.
    click(&c, Locator::Css("a[href$='/instances/new']")).await;
    until_text(&c, "Klienthemlighet", 5).await;
    // Only the chosen kind's fields show: Exchange's, with its PowerShell, once chosen.
    let shown = async |css: &str| {
        c.find(Locator::Css(css))
            .await
            .expect(css)
            .is_displayed()
            .await
            .expect("displayed")
    };
    assert!(shown("#tenant").await && !shown("#url").await && !shown("#powershell").await);
    click(&c, Locator::Css("input[name=kind][value=ews]")).await;
    assert!(!shown("#tenant").await && shown("#url").await && shown("#powershell").await);
    shot(
        "new-instance-exchange-sv",
        &c.screenshot().await.expect("png"),
    );
    click(&c, Locator::Css("input[name=kind][value=graph]")).await;
    fill(&c, "#name", "Microsoft 365").await;
    // The tenant by its domain, as admins know it: stored as its directory id.
    fill(&c, "#tenant", "acme.onmicrosoft.com").await;
    fill(&c, "#client_id", "c").await;
    fill(&c, "#client_secret", "s").await;
    click(&c, Locator::Css("details summary")).await;
    fill(&c, "#graph_url", &format!("{sim_url}v1.0/")).await;
    fill(&c, "#login_url", sim_url.as_str()).await;
    shot("new-instance-sv", &c.screenshot().await.expect("png"));
    click(
        &c,
        Locator::Css("form[action$='/instances/new'] button[type=submit]"),
    )
    .await;
    until_text(&c, "Användare (0)", 5).await;
    fill(&c, "#new-email", "anna@acme.example").await;
    fill(&c, "#new-name", "Anna Andersson").await;
    fill(&c, "#new-extension", "201").await;
    click(&c, Locator::Css("form[action$='/users'] button")).await;
    until_text(&c, "Användare (1)", 5).await;
    // Read within the engine's refresh of users (10 s): the last read appears.
    let text = until_gone_reloading(&c, "aldrig", 30).await;
    assert!(text.contains("Anna Andersson"), "{text}");
    shot("instance-sv", &c.screenshot().await.expect("png"));
    // The company reads prefixes first (LUN: lunch), then free/busy: saved in the editor.
    // In the form, as in One X: the standard template picked from a list.
    click(&c, Locator::LinkText("Regler och inställningar")).await;
    until_text(&c, "Förhandsgranska", 5).await;
    c.find(Locator::Css("select#template"))
        .await
        .expect("templates")
        .select_by_value("prefix-then-showas")
        .await
        .expect("picked");
    click(&c, Locator::Css("button[value=template]")).await;
    until_text(&c, "Regel 1", 5).await;
    click(&c, Locator::Id("save-rules")).await;
    until_text(&c, "Sparat.", 5).await;
    shot("rules-sv", &c.screenshot().await.expect("png"));
    // The rules file shows what the form saved.
    click(&c, Locator::LinkText("Avancerat: regelfilen")).await;
    until_text(&c, "Förhandsgranska", 5).await;
    let file = c
        .find(Locator::Id("settings"))
        .await
        .expect("the file")
        .prop("value")
        .await
        .expect("value")
        .unwrap_or_default();
    assert!(
        file.contains("from_template = \"prefix-then-showas\""),
        "{file}"
    );
    shot("rules-file-sv", &c.screenshot().await.expect("png"));
    click(&c, Locator::LinkText("Instrumentpanel")).await;
    until_text(&c, "Microsoft 365", 5).await;
    shot("dashboard-sv", &c.screenshot().await.expect("png"));

    // The receptionist lands on the switchboard; it is open when Anna books lunch.
    click(&c, Locator::Css("form[action='/sign-out'] button")).await;
    until_text(&c, "Logga in", 5).await;
    sign_in(&c, "reception@acme.example").await;
    until_text(&c, "Ingen är borta just nu.", 10).await;
    let text = c
        .find(Locator::Css("nav"))
        .await
        .expect("nav")
        .text()
        .await
        .expect("nav text");
    assert!(
        !text.contains("Instrumentpanel"),
        "a receptionist has no technical dashboard: {text}"
    );
    let now = jiff::Timestamp::now();
    sim.create_event(
        "anna@acme.example",
        EventSpec::new(
            "LUN: Lunch",
            now - jiff::SignedDuration::from_mins(1),
            now + jiff::SignedDuration::from_mins(59),
        ),
    )
    .expect("event");
    let text = until_text(&c, "Lunch", 20).await;
    assert!(
        text.contains("Anna Andersson") && text.contains("201"),
        "{text}"
    );
    assert!(
        !text.contains("Bo Berg"),
        "another company's people: {text}"
    );
    // "Åter" is when, not the whole message again.
    let back = c
        .find(Locator::Css("#rows td[data-label='Åter']"))
        .await
        .expect("back column")
        .text()
        .await
        .expect("text");
    assert!(
        back.len() <= 16 && back.chars().filter(|c| *c == '.').count() == 1,
        "the return time alone (today) or with the day: {back}"
    );
    shot("switchboard-sv", &c.screenshot().await.expect("png"));

    // Why is Anna diverted? Her name opens her time bar.
    click(&c, Locator::LinkText("Anna Andersson")).await;
    let text = until_text(&c, "Idag och framåt", 5).await;
    assert!(text.contains("Lunch, åter"), "{text}");
    assert!(
        c.find(Locator::Css(".block.divert")).await.is_ok(),
        "the lunch on the bar"
    );
    shot("user-sv", &c.screenshot().await.expect("png"));

    // In English.
    click(&c, Locator::Css("a.lang")).await;
    until_text(&c, "Today and ahead", 5).await;
    shot("user-en", &c.screenshot().await.expect("png"));
    click(&c, Locator::LinkText("Switchboard")).await;
    let text = until_text(&c, "Lunch", 5).await;
    assert!(text.contains("Anna Andersson"), "{text}");
    shot("switchboard-en", &c.screenshot().await.expect("png"));

    // The admin's pages in English.
    click(&c, Locator::Css("form[action='/sign-out'] button")).await;
    until_text(&c, "Sign in", 5).await;
    sign_in(&c, "it@acme.example").await;
    until_text(&c, "Microsoft 365", 5).await;
    shot("dashboard-en", &c.screenshot().await.expect("png"));
    click(&c, Locator::LinkText("Microsoft 365")).await;
    until_text(&c, "Users (1)", 5).await;
    shot("instance-en", &c.screenshot().await.expect("png"));
    click(&c, Locator::LinkText("Rules and settings")).await;
    until_text(&c, "Preview", 5).await;
    shot("rules-en", &c.screenshot().await.expect("png"));

    // Another company's data is not there for Acme's admin.
    click(&c, Locator::Css("form[action='/sign-out'] button")).await;
    until_text(&c, "Sign in", 5).await;
    shot("sign-in-en", &c.screenshot().await.expect("png"));
    sign_in(&c, "it@acme.example").await;
    let text = until_text(&c, "Dashboard", 5).await;
    assert!(!text.contains("Beta"), "{text}");
    let store = app.store();
    let beta = store
        .companies()
        .await
        .expect("companies")
        .into_iter()
        .find(|c| c.name == "Beta AB")
        .expect("Beta");
    let beta_instance = store.instances(beta.id).await.expect("instances").remove(0);
    let bo = store
        .users(beta_instance.id)
        .await
        .expect("users")
        .remove(0);
    for path in [
        format!("/instances/{}", beta_instance.id),
        format!("/instances/{}/rules", beta_instance.id),
        format!("/users/{}", bo.id),
        format!("/companies/{}/instances/new", beta.id),
        format!("/api/v1/companies/{}", beta.id),
        format!("/api/v1/instances/{}/users", beta_instance.id),
    ] {
        c.goto(&format!("{base}{path}")).await.expect("goto");
        // Pages say so in the page's language; the API in JSON.
        let expected = if path.starts_with("/api/") {
            "not_found"
        } else {
            "Page not found"
        };
        let text = until_text(&c, expected, 5).await;
        assert!(
            !text.contains("Bo Berg") && !text.contains("Beta"),
            "{path}: {text}"
        );
    }
    shot("another-company-404", &c.screenshot().await.expect("png"));

    // Acme lets its receptionists set a status: from the switchboard, Anna is sick, and
    // the PBX says so at once.
    let acme = store
        .companies()
        .await
        .expect("companies")
        .into_iter()
        .find(|c| c.name == "Acme AB")
        .expect("Acme");
    store
        .set_readers_set_status(acme.id, true)
        .await
        .expect("allowed");
    let acme_instance = store.instances(acme.id).await.expect("instances").remove(0);
    let anna = store
        .users(acme_instance.id)
        .await
        .expect("users")
        .into_iter()
        .find(|u| u.email.as_str() == "anna@acme.example")
        .expect("anna");
    c.goto(&format!("{base}/")).await.expect("goto");
    click(&c, Locator::Css("form[action='/sign-out'] button")).await;
    until_text(&c, "Sign in", 5).await;
    sign_in(&c, "reception@acme.example").await;
    until_text(&c, "Status set by hand", 10).await;
    // Back to Swedish.
    click(&c, Locator::Css("a.lang")).await;
    until_text(&c, "Status för hand", 10).await;
    click(&c, Locator::Css("#set-status summary")).await;
    c.find(Locator::Css("#manual-user"))
        .await
        .expect("person")
        .select_by_value(&anna.id.to_string())
        .await
        .expect("Anna");
    shot(
        "switchboard-status-form-sv",
        &c.screenshot().await.expect("png"),
    );
    click(&c, Locator::Css("#set-manual")).await;
    until_text(&c, "Sjuk / VAB", 10).await;
    let pbx = app.pbx().clone();
    let sick = crate::support::eventually(async || {
        pbx.current()
            .get("anna@acme.example")
            .and_then(|r| r.status.absence.as_ref().map(|a| a.reason == "sick"))
            .unwrap_or(false)
    })
    .await;
    assert!(sick, "the receptionist's status reached the PBX");
    shot("switchboard-status-sv", &c.screenshot().await.expect("png"));

    c.close().await.expect("close");
    app.stop().await;
}

/// Acme's (and Beta's) simulated Microsoft 365 tenant.
const ACME_TENANT: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
