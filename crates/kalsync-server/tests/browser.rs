//! The admin UI in a real headless Chromium, driven over WebDriver (chromedriver): a
//! company admin signs in, creates a Microsoft 365 instance against the simulator and
//! adds a user; the receptionist's open switchboard shows a booking made in Outlook
//! without a reload; the time bar says why; the language switches; and the admin who
//! tries another company's URLs gets 404. Screenshots of each page in both languages are kept
//! under `target/screenshots/` of the checkout. Without chromedriver the test says it
//! is skipped — except under CI, where `.ci/run` installs it and its absence fails.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use kalsync_graph_sim::{EventSpec, SimConfig, Simulator};
use kalsync_server::Settings;
use kalsync_server::settings::{
    AccountDecl, CompanyDecl, InstanceDecl, SourceDecl, TargetDecl, UserDecl,
};

const PASSWORD: &str = "receptionens-lösenord";

/// chromedriver on a free port, stopped when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromedriver() -> Option<String> {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(str::to_owned)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A headless Chromium session.
async fn browser() -> Option<(Driver, Client)> {
    let Some(path) = chromedriver() else {
        assert!(
            std::env::var("CI").is_err(),
            "chromedriver is missing; .ci/run installs chromium-driver"
        );
        eprintln!(
            "skipped: chromedriver is not installed (apt-get install chromium chromium-driver)"
        );
        return None;
    };
    let port = free_port();
    // The browser keeps the machine's own clock even when the service's is shifted
    // (scripts/time-sweep preloads libfaketime into the test): Chromium under a faked
    // clock stalls, and a browser whose clock differs from the server's is what people
    // have anyway.
    let child = Command::new(path)
        .env_remove("LD_PRELOAD")
        .env_remove("FAKETIME")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver(child);
    // fantoccini's TLS stack finds two crypto providers in this workspace; the talk to
    // chromedriver is plain HTTP on loopback anyway.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900", "--lang=sv-SE"],
            "prefs": {"intl.accept_languages": "sv-SE,sv"},
        }),
    );
    // chromedriver takes a moment to listen.
    for _ in 0..50 {
        if let Ok(client) = ClientBuilder::rustls()
            .expect("tls")
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            return Some((driver, client));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer");
}

/// Where screenshots go: `target/screenshots/` of the checkout.
fn shot(name: &str, png: &[u8]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot");
}

/// Waits (at most `secs`) until the page's text contains `text`.
async fn until_text(c: &Client, text: &str, secs: u64) -> String {
    let mut body = String::new();
    for _ in 0..secs * 10 {
        // While a page loads its old body goes stale: look again.
        if let Ok(element) = c.find(Locator::Css("body")).await {
            if let Ok(t) = element.text().await {
                body = t;
            }
        }
        if body.contains(text) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("`{text}` never appeared: {body}");
}

/// Types `text` into the field `css`.
async fn fill(c: &Client, css: &str, text: &str) {
    let field = c.find(Locator::Css(css)).await.expect(css);
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

/// Clicks what `locator` finds.
async fn click(c: &Client, locator: Locator<'_>) {
    c.find(locator)
        .await
        .expect("to click")
        .click()
        .await
        .expect("click");
}

/// Signs in through the form (the page must show it).
async fn sign_in(c: &Client, email: &str) {
    fill(c, "#email", email).await;
    fill(c, "#password", PASSWORD).await;
    click(c, Locator::Css("form[action='/sign-in'] button")).await;
}

/// Reloads until the page's text no longer contains `text` (at most `secs`).
async fn until_gone_reloading(c: &Client, text: &str, secs: u64) -> String {
    let mut body = String::new();
    for _ in 0..secs {
        if let Ok(element) = c.find(Locator::Css("body")).await {
            if let Ok(t) = element.text().await {
                body = t;
                if !body.contains(text) {
                    return body;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        c.refresh().await.expect("reload");
    }
    panic!("`{text}` stayed: {body}");
}

/// One Chromium at a time: two on two cores make each other's waits flaky.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn an_admin_sets_up_microsoft_365_and_the_receptionist_sees_a_booking_live() {
    let _one = ONE_BROWSER.lock().await;
    let Some((_driver, c)) = browser().await else {
        return;
    };
    // A simulated Microsoft 365 with Anna (Acme) and Bo (Beta).
    let sim = support::simulator(
        SimConfig {
            domains: vec!["acme.onmicrosoft.com".into()],
            ..SimConfig::with_secret(ACME_TENANT, "c", "s")
        },
        &["anna@acme.example", "bo@beta.example"],
    );
    let (sim_url, _sim) = kalsync_graph_sim::spawn(sim.clone()).await.expect("sim");
    let dir = support::folder("kalsync-browser");
    let (listener, base) = support::listener().await;
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
        database_url: format!("sqlite:{}", dir.join("k.db").display()),
        master_key_file: dir.join("k.key"),
        public_url: url::Url::parse(&format!("{base}/")).ok(),
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
    let served = support::Served::start(settings, listener, dir.clone());

    // Signed out: the sign-in page, in Swedish (the browser's language).
    c.goto(&format!("{base}/")).await.expect("goto");
    until_text(&c, "Logga in", 5).await;
    shot("sign-in-sv", &c.screenshot().await.expect("png"));
    sign_in(&c, "it@acme.example").await;
    until_text(&c, "Inga instanser ännu.", 5).await;

    // A Microsoft 365 instance against the simulator, then Anna by the form.
    click(&c, Locator::Css("a[href$='/instances/new']")).await;
    until_text(&c, "Klienthemlighet", 5).await;
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
    click(&c, Locator::LinkText("Regler och inställningar")).await;
    until_text(&c, "Förhandsgranska", 5).await;
    fill(&c, "#settings", "template = \"prefix-then-showas\"\n").await;
    click(&c, Locator::Css("button[value=save]")).await;
    until_text(&c, "Sparat.", 5).await;
    shot("rules-sv", &c.screenshot().await.expect("png"));

    // The receptionist's switchboard is open when Anna books lunch in Outlook.
    click(&c, Locator::Css("form[action='/sign-out'] button")).await;
    until_text(&c, "Logga in", 5).await;
    sign_in(&c, "reception@acme.example").await;
    until_text(&c, "Instrumentpanel", 5).await;
    click(&c, Locator::LinkText("Telefonist")).await;
    until_text(&c, "Ingen är borta just nu.", 10).await;
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
    let text = until_text(&c, "Lunch, åter", 20).await;
    assert!(
        text.contains("Anna Andersson") && text.contains("201"),
        "{text}"
    );
    assert!(
        !text.contains("Bo Berg"),
        "another company's people: {text}"
    );
    shot("switchboard-sv", &c.screenshot().await.expect("png"));

    // Why is Anna diverted? Her time bar, from the dashboard.
    click(&c, Locator::LinkText("Instrumentpanel")).await;
    until_text(&c, "Microsoft 365", 5).await;
    shot("dashboard-sv", &c.screenshot().await.expect("png"));
    click(&c, Locator::LinkText("Microsoft 365")).await;
    until_text(&c, "Användare (1)", 5).await;
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
    let text = until_text(&c, "Lunch, back", 5).await;
    assert!(text.contains("Anna Andersson"), "{text}");
    shot("switchboard-en", &c.screenshot().await.expect("png"));
    click(&c, Locator::LinkText("Dashboard")).await;
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
    let store = kalsync_store_sql::SqlStore::connect(
        &kalsync_store_sql::DatabaseUrl::new(format!("sqlite:{}", dir.join("k.db").display())),
        kalsync_store::SecretBox::from_key_file(&dir.join("k.key")).expect("key"),
    )
    .await
    .expect("store");
    let beta = kalsync_store::Store::companies(&store)
        .await
        .expect("companies")
        .into_iter()
        .find(|c| c.name == "Beta AB")
        .expect("Beta");
    let beta_instance = kalsync_store::Store::instances(&store, beta.id)
        .await
        .expect("instances")
        .remove(0);
    let bo = kalsync_store::Store::users(&store, beta_instance.id)
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
        let text = until_text(&c, "not_found", 5).await;
        assert!(
            !text.contains("Bo Berg") && !text.contains("Beta"),
            "{path}: {text}"
        );
    }
    shot("another-company-404", &c.screenshot().await.expect("png"));

    c.close().await.expect("close");
    served.stop().await;
}

/// A lunch tomorrow at noon, as Outlook exports it (short).
fn lunch_tomorrow_ics() -> String {
    let tomorrow = jiff::Zoned::now().date().tomorrow().expect("tomorrow");
    let day = tomorrow.strftime("%Y%m%d");
    format!(
        "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:lunch-1\nDTSTART;TZID=Europe/Stockholm:{day}T120000\nDTEND;TZID=Europe/Stockholm:{day}T130000\nSUMMARY:LUN: Lunch\nEND:VEVENT\nEND:VCALENDAR\n"
    )
}

/// Acme's (and Beta's) simulated Microsoft 365 tenant.
const ACME_TENANT: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";

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
    sim.add_user(support::mailbox("anna@gamma.example"))
        .expect("user");
    let (sim_url, _sim) = kalsync_graph_sim::spawn(sim.clone()).await.expect("sim");
    let dir = support::folder("kalsync-browser-connect");
    let (listener, base) = support::listener().await;
    let mut settings = Settings {
        database_url: format!("sqlite:{}", dir.join("k.db").display()),
        master_key_file: dir.join("k.key"),
        public_url: url::Url::parse(&format!("{base}/")).ok(),
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
    let served = support::Served::start(settings, listener, dir.clone());

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
    fill(&c, "#settings", "template = \"prefix\"\n").await;
    fill(&c, "#calendar", &lunch_tomorrow_ics()).await;

    let text = until_text(&c, "Lunch, åter", 5).await;
    assert!(
        c.find(Locator::Css("#live #preview")).await.is_ok(),
        "{text}"
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
    served.stop().await;
}
