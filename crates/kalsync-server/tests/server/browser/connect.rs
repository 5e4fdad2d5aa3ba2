//! A new company connects Microsoft 365 in the browser: its admin consents at the
//! simulated Entra ID, adds a user, tests the connection, renames the instance (its
//! secret never shown), tries its rules live on a pasted calendar and manages accounts,
//! in Swedish and English; a declined consent says so; the tenant's people sign in with
//! Microsoft by their app role, and an expired token signs nobody in.

use fantoccini::Locator;
use kalsync_graph_sim::{SimConfig, Simulator};
use kalsync_server::Settings;
use kalsync_server::settings::{AccountDecl, CompanyDecl, TargetDecl};

use super::{ONE_BROWSER, PASSWORD, browser, click, fill, shot, sign_in, until_text};
use crate::support::Launch;
use crate::support::sims::mailbox;

/// A lunch tomorrow at noon, as Outlook exports it (short).
fn lunch_tomorrow_ics() -> String {
    let tomorrow = jiff::Zoned::now().date().tomorrow().expect("tomorrow");
    let day = tomorrow.strftime("%Y%m%d");
    format!(
        "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:lunch-1\nDTSTART;TZID=Europe/Stockholm:{day}T120000\nDTEND;TZID=Europe/Stockholm:{day}T130000\nSUMMARY:LUN: Lunch\nEND:VEVENT\nEND:VCALENDAR\n"
    )
}
/// Gamma's simulated Microsoft 365 tenant.
const GAMMA_TENANT: &str = "3c1d2e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5";

fn gamma_person(upn: &str, name: &str, roles: &[&str]) -> kalsync_graph_sim::SimPerson {
    kalsync_graph_sim::SimPerson {
        oid: None,
        upn: upn.into(),
        name: Some(name.into()),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        groups: Vec::new(),
        admin: false,
    }
}

#[tokio::test]
async fn a_new_company_connects_microsoft_365_tests_the_connection_and_tries_its_rules() {
    let _one = ONE_BROWSER.lock().await;
    let Some((_driver, c)) = browser().await else {
        return;
    };
    // The operator's multi-tenant app in a simulated tenant nobody has consented in yet.
    let mut config = SimConfig::with_secret(GAMMA_TENANT, "c", "s");
    // Gamma's people in Entra ID: the admin, a receptionist with the reader app role,
    // and someone without a role.
    config.people = vec![
        kalsync_graph_sim::SimPerson {
            admin: true,
            ..gamma_person("it@gamma.example", "Ida Tell", &[])
        },
        gamma_person("lisa@gamma.example", "Lisa Reception", &["Kalsync.Reader"]),
        gamma_person("guest@gamma.example", "Gäst", &[]),
    ];
    config.apps.push(kalsync_graph_sim::SimApp {
        client_id: "kalsync-operator".into(),
        secret: Some("operator-secret".into()),
        certificate: None,
        consented: false,
        secret_expired: false,
    });
    let sim = Simulator::new(config);
    sim.add_user(mailbox("anna@gamma.example")).expect("user");
    let (sim_url, _sim) = kalsync_graph_sim::spawn(sim.clone()).await.expect("sim");
    let mut settings = Settings {
        companies: vec![CompanyDecl {
            name: "Gamma AB".into(),
            targets: vec![TargetDecl::Simulator { name: "pbx".into() }],
            instances: vec![],
        }],
        accounts: vec![AccountDecl {
            email: "it@gamma.example".into(),
            role: "company_admin".into(),
            company: Some("Gamma AB".into()),
            password: PASSWORD.to_owned().into(),
        }],
        microsoft365: Some(kalsync_server::settings::Microsoft365Settings {
            client_id: "kalsync-operator".into(),
            client_secret: "operator-secret".to_owned().into(),
            login_url: Some(sim_url.clone()),
            graph_url: Some(format!("{sim_url}v1.0/")),
            operator_tenant: None,
            operator_roles: vec!["Kalsync.Operator".into()],
        }),
        // The simulators listen on loopback.
        outbound: kalsync_server::settings::OutboundSettings::loopback(),
        ..Settings::default()
    };
    settings.engine.debounce_ms = 0;
    let app = Launch::new(settings).public().spawn().await;
    let base = &app.base;

    c.goto(&format!("{base}/")).await.expect("goto");
    until_text(&c, "Logga in", 5).await;
    sign_in(&c, "it@gamma.example").await;
    until_text(&c, "Inga instanser ännu.", 5).await;
    click(&c, Locator::Css("a[href$='/instances/new']")).await;
    until_text(&c, "Anslut Microsoft 365", 5).await;
    fill(&c, "#connect-name", "Gamma 365").await;
    shot("connect-sv", &c.screenshot().await.expect("png"));
    click(&c, Locator::Css("#connect button")).await;
    // The admin signs in at Entra ID (the simulator's)…
    until_text(&c, "Pick an account", 5).await;
    shot(
        "sign-in-simulated-entra",
        &c.screenshot().await.expect("png"),
    );
    click(&c, Locator::Css("a.account[data-upn='it@gamma.example']")).await;
    // …and, a directory admin, consents for the organisation, and comes back.
    until_text(&c, "Permissions requested", 5).await;
    shot(
        "consent-simulated-entra",
        &c.screenshot().await.expect("png"),
    );
    click(&c, Locator::Id("accept")).await;
    let text = until_text(&c, "Microsoft 365 är anslutet", 5).await;
    assert!(text.contains(GAMMA_TENANT), "{text}");
    shot("connected-sv", &c.screenshot().await.expect("png"));
    // The page moves on to the instance by itself, signed in.
    until_text(&c, "Användare (0)", 5).await;
    fill(&c, "#new-email", "anna@gamma.example").await;
    fill(&c, "#new-name", "Anna Gran").await;
    click(&c, Locator::Css("form[action$='/users'] button")).await;
    until_text(&c, "Användare (1)", 5).await;
    click(&c, Locator::Css("#check button")).await;
    let text = until_text(&c, "Anslutningen fungerar", 20).await;
    assert!(
        text.contains("Inloggning") && text.contains("Kalendern läses"),
        "{text}"
    );
    shot("check-sv", &c.screenshot().await.expect("png"));

    // Settings: renamed; the secret is never shown.
    click(&c, Locator::LinkText("Anslutning och namn")).await;
    until_text(&c, "Instansen är på", 5).await;
    assert!(!c.source().await.expect("html").contains("operator-secret"));
    fill(&c, "#name", "Gamma Microsoft 365").await;
    click(&c, Locator::Css("#settings button[type=submit]")).await;
    until_text(&c, "Sparat", 5).await;
    shot("settings-sv", &c.screenshot().await.expect("png"));

    // The rules editor answers while the admin pastes a calendar: no button pressed.
    click(
        &c,
        Locator::Css("a[href^='/instances/']:not([href$='/settings'])"),
    )
    .await;
    until_text(&c, "Användare (1)", 5).await;
    click(&c, Locator::LinkText("Regler och inställningar")).await;
    until_text(&c, "Förhandsgranska", 5).await;
    c.find(Locator::Css("select#template"))
        .await
        .expect("templates")
        .select_by_value("prefix")
        .await
        .expect("picked");
    click(&c, Locator::Css("button[value=template]")).await;
    until_text(&c, "Regel 1", 5).await;
    fill(&c, "#calendar", &lunch_tomorrow_ics()).await;
    let text = until_text(&c, "Lunch, åter", 5).await;
    assert!(
        c.find(Locator::Css("#live #preview td.divert"))
            .await
            .is_ok(),
        "{text}"
    );
    // The form changed — users' own choices off, the rules' outcome information — and
    // the preview follows, no button pressed.
    c.find(Locator::Css("select[name=user_choice]"))
        .await
        .expect("user choice")
        .select_by_value("off")
        .await
        .expect("off");
    for select in c
        .find_all(Locator::Css("fieldset.rule select[name$='.mode']"))
        .await
        .expect("modes")
    {
        select.select_by_value("info").await.expect("info");
    }
    let followed = crate::support::polling(
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(5),
        async || c.find(Locator::Css("#live #preview td.info")).await.is_ok(),
    )
    .await;
    let live = c
        .find(Locator::Id("live"))
        .await
        .expect("live")
        .text()
        .await
        .unwrap_or_default();
    assert!(
        followed,
        "the preview shows the lunch as information: {live}"
    );
    shot("rules-live-sv", &c.screenshot().await.expect("png"));

    // The company's accounts and one's own, before the language changes.
    click(&c, Locator::LinkText("Instrumentpanel")).await;
    click(&c, Locator::Css("a[href$='/accounts']")).await;
    until_text(&c, "Lägg till konto", 5).await;
    fill(&c, "#email", "reception@gamma.example").await;
    fill(&c, "#password", "receptionens-första").await;
    click(&c, Locator::Css("#add-account button")).await;
    until_text(&c, "Kontot är skapat: reception@gamma.example", 5).await;
    shot("accounts-sv", &c.screenshot().await.expect("png"));
    click(&c, Locator::LinkText("it@gamma.example")).await;
    until_text(&c, "Byt lösenord", 5).await;
    shot("account-sv", &c.screenshot().await.expect("png"));

    // The same pages in English.
    click(&c, Locator::Css("a.lang")).await;
    until_text(&c, "Change password", 5).await;
    c.goto(&format!("{base}/")).await.expect("goto");
    until_text(&c, "Subscriptions", 5).await;
    click(&c, Locator::LinkText("Gamma Microsoft 365")).await;
    until_text(&c, "Users (1)", 5).await;
    click(&c, Locator::Css("#check button")).await;
    until_text(&c, "The connection works", 20).await;
    shot("check-en", &c.screenshot().await.expect("png"));
    click(&c, Locator::LinkText("Connection and name")).await;
    until_text(&c, "The instance is on", 5).await;
    shot("settings-en", &c.screenshot().await.expect("png"));
    let new = c
        .find(Locator::Css("header"))
        .await
        .expect("header")
        .text()
        .await
        .expect("text");
    assert!(new.contains("it@gamma.example"), "{new}");
    click(
        &c,
        Locator::Css("a[href^='/instances/']:not([href$='/settings'])"),
    )
    .await;
    until_text(&c, "Users (1)", 5).await;
    click(&c, Locator::LinkText("Rules and settings")).await;
    until_text(&c, "Preview", 5).await;
    shot("rules-form-en", &c.screenshot().await.expect("png"));
    click(&c, Locator::LinkText("Advanced: the rules file")).await;
    until_text(&c, "Preview", 5).await;
    fill(&c, "#settings", "template = \"prefix\"\n").await;
    fill(&c, "#calendar", &lunch_tomorrow_ics()).await;
    until_text(&c, "Lunch, back", 5).await;
    shot("rules-live-en", &c.screenshot().await.expect("png"));
    click(&c, Locator::LinkText("it@gamma.example")).await;
    until_text(&c, "Change password", 5).await;
    shot("account-en", &c.screenshot().await.expect("png"));
    click(&c, Locator::LinkText("Dashboard")).await;
    click(&c, Locator::Css("a[href$='/accounts']")).await;
    until_text(&c, "Reader (e.g. reception)", 5).await;
    shot("accounts-en", &c.screenshot().await.expect("png"));
    click(&c, Locator::LinkText("Dashboard")).await;
    click(&c, Locator::Css("a[href$='/instances/new']")).await;
    until_text(&c, "Connect Microsoft 365", 5).await;
    shot("connect-en", &c.screenshot().await.expect("png"));
    // A second tenant connection, declined this time: said in English.
    fill(&c, "#connect-name", "Gamma test").await;
    click(&c, Locator::Css("#connect button")).await;
    until_text(&c, "Pick an account", 5).await;
    click(&c, Locator::Css("a.account[data-upn='it@gamma.example']")).await;
    until_text(&c, "Permissions requested", 5).await;
    click(&c, Locator::Id("cancel")).await;
    let text = until_text(&c, "Microsoft 365 was not connected", 5).await;
    assert!(text.contains("access_denied"), "{text}");
    shot("connect-declined-en", &c.screenshot().await.expect("png"));

    // The connected tenant's people sign in with Microsoft by their app role.
    c.goto(&format!("{base}/")).await.expect("goto");
    until_text(&c, "Subscriptions", 5).await;
    click(&c, Locator::Css("a[href$='/accounts']")).await;
    until_text(&c, "Sign-in with Microsoft", 5).await;
    shot("accounts-microsoft-en", &c.screenshot().await.expect("png"));
    click(&c, Locator::Css("form[action='/sign-out'] button")).await;
    until_text(&c, "Sign in with Microsoft", 5).await;
    shot("sign-in-en", &c.screenshot().await.expect("png"));
    click(&c, Locator::Id("sign-in-microsoft")).await;
    until_text(&c, "Pick an account", 5).await;
    click(&c, Locator::Css("a.account[data-upn='lisa@gamma.example']")).await;
    let text = until_text(&c, "lisa@gamma.example", 5).await;
    assert!(text.contains("Switchboard"), "{text}");
    shot(
        "signed-in-microsoft-en",
        &c.screenshot().await.expect("png"),
    );
    // Someone of the tenant without a role is told whom to ask.
    click(&c, Locator::Css("form[action='/sign-out'] button")).await;
    until_text(&c, "Sign in with Microsoft", 5).await;
    click(&c, Locator::Id("sign-in-microsoft")).await;
    until_text(&c, "Pick an account", 5).await;
    click(
        &c,
        Locator::Css("a.account[data-upn='guest@gamma.example']"),
    )
    .await;
    until_text(&c, "has no access to Kalsync", 5).await;
    shot(
        "microsoft-no-access-en",
        &c.screenshot().await.expect("png"),
    );
    // An expired token (or one signed with a foreign key, or for another app) signs
    // nobody in.
    let mut faults = sim.faults();
    faults.bad_id_token = Some(kalsync_graph_sim::BadIdToken::Expired);
    sim.set_faults(faults);
    c.goto(&format!("{base}/sign-in/microsoft"))
        .await
        .expect("goto");
    until_text(&c, "Pick an account", 5).await;
    click(&c, Locator::Css("a.account[data-upn='lisa@gamma.example']")).await;
    let text = until_text(&c, "Signing in with Microsoft failed", 5).await;
    assert!(text.contains("expired"), "{text}");
    shot("microsoft-expired-en", &c.screenshot().await.expect("png"));
    c.goto(&format!("{base}/")).await.expect("goto");
    until_text(&c, "Sign in with Microsoft", 5).await;

    c.close().await.expect("close");
    app.stop().await;
}
