//! The service as tests start it: `run(settings, listener, shutdown)` on port 0 with a
//! fresh SQLite file, a Graph simulator as the source and the PBX simulator as target.

use std::time::Duration;

use kalsync_graph_sim::{EventSpec, SimConfig, Simulator, UserSpec};
use kalsync_server::settings::{CompanyDecl, InstanceDecl, SourceDecl, TargetDecl, UserDecl};
use kalsync_server::{Service, Settings};

async fn settings(sim_url: &url::Url, dir: &std::path::Path) -> Settings {
    let table: toml::Table = toml::from_str("template = \"prefix\"").expect("settings");
    let mut s = Settings {
        database_url: format!("sqlite:{}", dir.join("k.db").display()),
        master_key_file: dir.join("k.key"),
        companies: vec![CompanyDecl {
            name: "Acme".into(),
            targets: vec![TargetDecl::Simulator { name: "pbx".into() }],
            instances: vec![InstanceDecl {
                name: "M365".into(),
                source: SourceDecl::Graph {
                    tenant: "t".into(),
                    client_id: "c".into(),
                    client_secret: "s".to_owned().into(),
                    graph_url: Some(format!("{sim_url}v1.0/")),
                    login_url: Some(sim_url.to_string()),
                },
                settings: Some(table),
                users: vec![UserDecl::Full {
                    email: "anna@acme.example".into(),
                    name: Some("Anna".into()),
                    extension: Some("201".into()),
                }],
            }],
        }],
        // The simulators listen on loopback.
        outbound: kalsync_server::settings::OutboundSettings::loopback(),
        ..Settings::default()
    };
    s.engine.poll_interval_secs = 1;
    s.engine.debounce_ms = 0;
    s.accounts = vec![kalsync_server::settings::AccountDecl {
        email: OPERATOR.into(),
        role: "operator".into(),
        company: None,
        password: OPERATOR_PASSWORD.to_owned().into(),
    }];
    s
}

const ACME_ADMIN_PASSWORD: &str = "ett-långt-lösenord";

/// Acme's company admin, for tests that add it.
fn acme_admin() -> kalsync_server::settings::AccountDecl {
    kalsync_server::settings::AccountDecl {
        email: "it@acme.example".into(),
        role: "company_admin".into(),
        company: Some("Acme".into()),
        password: ACME_ADMIN_PASSWORD.to_owned().into(),
    }
}

/// The operator account every test service has.
const OPERATOR: &str = "ops@operator.example";
const OPERATOR_PASSWORD: &str = "operatörens-lösenord";

/// A Graph simulator with one mailbox, Anna's.
fn simulator_with_anna() -> Simulator {
    let sim = Simulator::new(SimConfig::with_secret("t", "c", "s"));
    sim.add_user(UserSpec {
        upn: "anna@acme.example".into(),
        id: None,
        display_name: None,
        time_zone: "W. Europe Standard Time".into(),
        working_hours: None,
    })
    .expect("user");
    sim
}

/// Anna's simulator with a lunch in force now (it began five minutes ago; whole seconds),
/// served on a loopback port; and when the lunch ends.
async fn anna_at_lunch() -> (
    Simulator,
    url::Url,
    kalsync_graph_sim::SimHandle,
    jiff::Timestamp,
) {
    let sim = simulator_with_anna();
    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).expect("now");
    sim.create_event(
        "anna@acme.example",
        EventSpec::new(
            "LUN: Lunch",
            now - jiff::SignedDuration::from_mins(5),
            now + jiff::SignedDuration::from_mins(55),
        ),
    )
    .expect("event");
    let (url, handle) = kalsync_graph_sim::spawn(sim.clone()).await.expect("sim");
    (sim, url, handle, now + jiff::SignedDuration::from_mins(55))
}

/// An EWS instance on the simulator at `base`, impersonating, password `Sommar2026!`.
fn ews_source(base: &url::Url, username: &str, auth: &str, version: &str) -> SourceDecl {
    SourceDecl::Ews {
        url: format!("{base}EWS/Exchange.asmx"),
        username: username.into(),
        password: "Sommar2026!".to_owned().into(),
        auth: kalsync_core::exchange::SignIn::parse(auth).expect("a sign-in"),
        version: kalsync_core::exchange::Version::parse(version).expect("a version"),
        access: kalsync_core::exchange::Access::Impersonation,
        options: Default::default(),
        ca_file: None,
    }
}

/// Anna's mailbox served over Graph and over EWS (account `CORP\svc-kalsync`,
/// password `Sommar2026!`).
struct Exchange {
    calendars: Simulator,
    sim_url: url::Url,
    ews: kalsync_ews_sim::EwsSim,
    ews_url: url::Url,
    _servers: (kalsync_graph_sim::SimHandle, kalsync_ews_sim::EwsHandle),
}

async fn exchange_with_anna() -> Exchange {
    let calendars = simulator_with_anna();
    let (sim_url, graph) = kalsync_graph_sim::spawn(calendars.clone())
        .await
        .expect("sim");
    let ews = kalsync_ews_sim::EwsSim::new(
        calendars.clone(),
        kalsync_ews_sim::EwsConfig::new("CORP\\svc-kalsync", "Sommar2026!"),
    );
    let (ews_url, server) = kalsync_ews_sim::spawn(ews.clone()).await.expect("ews");
    Exchange {
        calendars,
        sim_url,
        ews,
        ews_url,
        _servers: (graph, server),
    }
}

/// A fresh folder for one test's database and key, named after the test.
fn test_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

/// Waits (at most five seconds) until `check` holds; whether it did.
async fn eventually(check: impl Fn() -> bool) -> bool {
    eventually_within(Duration::from_secs(5), check).await
}

/// Waits (at most `limit`) until `check` holds; whether it did.
async fn eventually_within(limit: Duration, check: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

/// A lunch in Anna's calendar from a minute ago for an hour, booked now.
fn book_lunch_now(calendars: &Simulator) {
    let now = jiff::Timestamp::now();
    calendars
        .create_event(
            "anna@acme.example",
            EventSpec::new(
                "LUN: Lunch",
                now - jiff::SignedDuration::from_mins(1),
                now + jiff::SignedDuration::from_mins(59),
            ),
        )
        .expect("event");
}

/// A service serving on a loopback port until stopped.
struct Running {
    base: String,
    pbx: kalsync_pbx_sim::PbxSimulator,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), kalsync_server::ServerError>>,
    dir: std::path::PathBuf,
}

impl Running {
    async fn start(settings: Settings, dir: std::path::PathBuf) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Running::on(listener, settings, dir).await
    }

    async fn on(
        listener: tokio::net::TcpListener,
        settings: Settings,
        dir: std::path::PathBuf,
    ) -> Running {
        let service = Service::start(settings).await.expect("starts");
        // Without a simulator target (a SIP or webhook one) the PBX stays empty.
        let pbx = service.pbx.clone().unwrap_or_default();
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(service.serve(listener, async move {
            let _ = stopped.await;
        }));
        Running {
            base,
            pbx,
            stop,
            task,
            dir,
        }
    }

    /// The operator's overview page, fetched signed in until `done` holds (at most ten
    /// seconds).
    async fn page_until(&self, done: impl Fn(&str) -> bool) -> String {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .expect("client");
        let signed_in = http
            .post(format!("{}/api/v1/session", self.base))
            .json(&serde_json::json!({"email": OPERATOR, "password": OPERATOR_PASSWORD}))
            .send()
            .await
            .expect("sign in");
        assert!(signed_in.status().is_success(), "{}", signed_in.status());
        let mut page = String::new();
        for _ in 0..100 {
            page = http
                .get(format!("{}/overview", self.base))
                .send()
                .await
                .expect("page")
                .text()
                .await
                .expect("html");
            if done(&page) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        page
    }

    /// Acme's admin ([`acme_admin`]) signed in through the API: the client and `me`.
    async fn signed_in_as_acme_admin(&self) -> (reqwest::Client, serde_json::Value) {
        self.signed_in_as("it@acme.example", ACME_ADMIN_PASSWORD)
            .await
    }

    /// A company's instances, as `http` sees them.
    async fn instances_of(&self, http: &reqwest::Client, company: &str) -> serde_json::Value {
        http.get(format!(
            "{}/api/v1/companies/{company}/instances",
            self.base
        ))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json")
    }

    /// A client signed in with `email` and `password`, and who it is (`/api/v1/me`).
    async fn signed_in_as(
        &self,
        email: &str,
        password: &str,
    ) -> (reqwest::Client, serde_json::Value) {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .expect("client");
        let me: serde_json::Value = http
            .post(format!("{}/api/v1/session", self.base))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .expect("sign in")
            .json()
            .await
            .expect("json");
        (http, me)
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("stops")
            .expect("task")
            .expect("clean stop");
        let _ = std::fs::remove_dir_all(self.dir);
    }
}

#[tokio::test]
async fn a_booking_in_the_source_reaches_the_pbx_and_the_endpoints_answer() {
    let dir = test_dir("kalsync-service");
    let (sim, sim_url, _sim, _) = anna_at_lunch().await;
    let running = Running::start(settings(&sim_url, &dir).await, dir).await;
    let (base, pbx) = (running.base.clone(), running.pbx.clone());

    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .expect("health")
            .text()
            .await
            .expect("text"),
        "ok"
    );
    assert_eq!(
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .expect("ready")
            .status(),
        200
    );
    // The lunch in force reaches the PBX.
    let mut waited = 0;
    while pbx.received() == 0 && waited < 50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    let current = pbx.current();
    let anna = current.get("anna@acme.example").expect("a status for Anna");
    assert_eq!(
        anna.status.absence.as_ref().map(|a| a.reason.as_str()),
        Some("lunch")
    );
    assert_eq!(anna.status.user.extension.as_deref(), Some("201"));
    let page = running.page_until(|_| true).await;
    assert!(
        page.contains("anna@acme.example") && page.contains("Lunch, back"),
        "{page}"
    );
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("kalsync_deliveries_total{outcome=\"delivered\"} 1"),
        "{metrics}"
    );

    // The booking is deleted in Outlook: the next poll clears the status.
    let event_id = sim
        .event_ids("anna@acme.example")
        .expect("events")
        .into_iter()
        .next()
        .expect("one event");
    sim.delete_event("anna@acme.example", &event_id)
        .expect("delete");
    let mut waited = 0;
    while pbx.received() < 2 && waited < 50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(pbx.history("anna@acme.example").len(), 2);
    assert!(
        pbx.current()["anna@acme.example"].status.absence.is_none(),
        "cleared"
    );
    running.stop().await;
}

#[tokio::test]
async fn with_a_public_url_changes_arrive_by_notification_not_by_polling() {
    let dir = test_dir("kalsync-service-notify");
    let sim = simulator_with_anna();
    let (sim_url, _sim) = kalsync_graph_sim::spawn(sim.clone()).await.expect("sim");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/", listener.local_addr().expect("addr"));
    let mut s = settings(&sim_url, &dir).await;
    s.engine.poll_interval_secs = 3600;
    s.public_url = Some(url::Url::parse(&base).expect("url"));
    let service = Service::start(s).await.expect("starts");
    let pbx = service.pbx.clone().expect("a simulator target");
    let subscriptions = service.subscriptions.clone().expect("subscriptions on");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(service.serve(listener, async move {
        let _ = stopped.await;
    }));

    let wait_for = |what: &'static str, check: Box<dyn Fn() -> bool + Send>| async move {
        assert!(eventually(check).await, "timed out waiting for {what}");
    };
    let s2 = sim.clone();
    wait_for(
        "a subscription",
        Box::new(move || s2.subscriptions().len() == 1),
    )
    .await;
    assert_eq!(subscriptions.known(), 1);

    // A booking in force now: only the notification can bring it in an hour-long poll.
    let started = std::time::Instant::now();
    book_lunch_now(&sim);
    let p = pbx.clone();
    wait_for("the lunch at the PBX", Box::new(move || p.received() == 1)).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "arrived by notification in {:?}",
        started.elapsed()
    );

    // Graph removes the subscription: a new one is made.
    let old = sim.subscriptions()[0].0.clone();
    sim.lifecycle(&old, "subscriptionRemoved")
        .expect("lifecycle");
    let s3 = sim.clone();
    wait_for(
        "a new subscription",
        Box::new(move || s3.subscriptions().len() == 1 && s3.subscriptions()[0].0 != old),
    )
    .await;

    // A forged notification is refused.
    let forged = serde_json::json!({"value": [{"subscriptionId": sim.subscriptions()[0].0, "clientState": "guess", "changeType": "created", "resource": "Users/x/Events/y"}]});
    let answer = reqwest::Client::new()
        .post(format!("{base}notifications/graph"))
        .json(&forged)
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 403);

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(15), running)
        .await
        .expect("stops")
        .expect("task")
        .expect("clean stop");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_target_that_cannot_be_reached_shows_its_dead_letters_on_the_page() {
    let dir = test_dir("kalsync-dead");
    let (_, sim_url, _sim, _) = anna_at_lunch().await;
    // A port nothing listens on: every attempt is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_url = format!("http://{}/hook", closed.local_addr().expect("addr"));
    drop(closed);
    let mut s = settings(&sim_url, &dir).await;
    s.engine.max_attempts = 1;
    s.companies[0].targets.push(TargetDecl::Webhook {
        name: "switchboard-hook".into(),
        url: closed_url,
        signing_secret: "whsec_c2VjcmV0LXNpZ25pbmcta2V5".to_owned().into(),
    });
    let running = Running::start(s, dir).await;
    let page = running
        .page_until(|p| p.contains("Deliveries given up"))
        .await;
    assert!(page.contains("Deliveries given up"), "{page}");
    assert!(page.contains("switchboard-hook (webhook)"), "{page}");
    let dead_row = page
        .lines()
        .find(|l| l.contains("Lunch, back") && l.contains("switchboard-hook"))
        .unwrap_or_else(|| panic!("a dead letter for Anna's lunch: {page}"));
    assert!(dead_row.contains("anna@acme.example"), "{dead_row}");
    // The other target is not held up by the broken one.
    assert_eq!(
        running.pbx.current()["anna@acme.example"]
            .status
            .absence
            .as_ref()
            .map(|a| a.reason.as_str()),
        Some("lunch")
    );
    running.stop().await;
}

#[path = "../../kalsync-target-sip/tests/support/kamailio.rs"]
mod kamailio;

#[tokio::test]
async fn a_booking_in_outlook_becomes_a_notify_on_the_receptionists_phone() {
    let Some(server) = kamailio::start().await else {
        return;
    };
    // The receptionist's phone watches Anna's extension before anything is published.
    let phone = kamailio::Watcher::subscribe(server.port, "201").await;
    phone.notify_where(|_| true).await;

    let dir = test_dir("kalsync-sip-e2e");
    let (_, sim_url, _sim, lunch_ends) = anna_at_lunch().await;
    let mut s = settings(&sim_url, &dir).await;
    s.companies[0].targets = vec![TargetDecl::Sip {
        name: "kamailio".into(),
        proxy: format!("sip:127.0.0.1:{}", server.port),
        domain: kamailio::DOMAIN.into(),
        username: "kalsync".into(),
        password: kamailio::PASSWORD.to_owned().into(),
    }];
    let running = Running::start(s, dir).await;

    let body = phone.notify_where(|b| b.contains("meal")).await;
    assert!(
        body.contains("away"),
        "{body}\nkamailio's log:\n{}",
        server.log()
    );
    assert!(
        body.contains(&format!("until=\"{lunch_ends}\"")),
        "until the lunch ends at {lunch_ends}: {body}"
    );
    assert!(
        body.contains("Lunch, back"),
        "the return time in English: {body}"
    );
    assert!(body.contains("Lunch, åter"), "and in Swedish: {body}");
    running.stop().await;
}

#[tokio::test]
async fn a_booking_on_an_exchange_server_reaches_the_pbx_over_ews() {
    let dir = test_dir("kalsync-ews");
    let (calendars, sim_url, _graph, _) = anna_at_lunch().await;
    let ews = kalsync_ews_sim::EwsSim::new(
        calendars,
        kalsync_ews_sim::EwsConfig::new("CORP\\svc-kalsync", "Sommar2026!"),
    );
    let (ews_url, _ews) = kalsync_ews_sim::spawn(ews.clone()).await.expect("ews");
    let mut s = settings(&sim_url, &dir).await;
    s.companies[0].instances[0].source =
        ews_source(&ews_url, "svc-kalsync@corp.example", "basic", "2010");
    let running = Running::start(s, dir).await;
    let page = running.page_until(|p| p.contains("Lunch, back")).await;
    assert!(
        page.contains("anna@acme.example") && page.contains("Lunch, back"),
        "{page}"
    );
    let anna = running.pbx.current()["anna@acme.example"].clone();
    assert_eq!(
        anna.status.absence.as_ref().map(|a| a.reason.as_str()),
        Some("lunch")
    );
    assert_eq!(ews.stats().body_requested, 0);
    assert!(ews.stats().requests >= 2, "FindItem and GetItem");
    running.stop().await;
}

#[tokio::test]
async fn a_change_on_exchange_arrives_by_a_streaming_notification_not_by_polling() {
    let dir = test_dir("kalsync-ews-stream");
    let Exchange {
        calendars,
        sim_url,
        ews,
        ews_url,
        _servers,
    } = exchange_with_anna().await;
    // Bo's mailbox lives on another back end than Anna's: one group must reach both.
    calendars
        .add_user(UserSpec {
            upn: "bo@acme.example".into(),
            id: None,
            display_name: None,
            time_zone: "W. Europe Standard Time".into(),
            working_hours: None,
        })
        .expect("bo");
    let mut s = settings(&sim_url, &dir).await;
    s.engine.poll_interval_secs = 3600;
    s.companies[0].instances[0].source = ews_source(&ews_url, "CORP\\svc-kalsync", "ntlm", "2016");
    s.companies[0].instances[0].users.push(UserDecl::Full {
        email: "bo@acme.example".into(),
        name: Some("Bo".into()),
        extension: Some("202".into()),
    });
    let running = Running::start(s, dir).await;
    // Read once, and subscribed.
    for _ in 0..100 {
        if ews.subscriptions().len() == 2
            && running.page_until(|_| true).await.contains("Available")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ews.subscriptions().len(), 2, "two streaming subscriptions");
    assert!(ews.subscriptions().iter().all(|s| s.2 == "streaming"));

    // A lunch booked now: only the stream can bring it within an hour-long poll.
    let started = std::time::Instant::now();
    book_lunch_now(&calendars);
    eventually(|| running.pbx.received() > 0).await;
    assert_eq!(running.pbx.received(), 1, "the lunch reached the PBX");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "by notification, in {:?}",
        started.elapsed()
    );
    assert!(ews.stats().streamed_events >= 1);
    assert_eq!(
        ews.stats().misrouted,
        0,
        "the group's connection reached both"
    );
    assert_eq!(ews.stats().body_requested, 0);
    running.stop().await;
}

#[tokio::test]
async fn check_walks_an_exchange_set_up_and_names_what_to_fix() {
    let dir = test_dir("kalsync-check");
    let (calendars, sim_url, _graph, _) = anna_at_lunch().await;
    let ews = kalsync_ews_sim::EwsSim::new(
        calendars,
        kalsync_ews_sim::EwsConfig::new("CORP\\svc-kalsync", "Sommar2026!"),
    );
    let (ews_url, _ews) = kalsync_ews_sim::spawn(ews.clone()).await.expect("ews");
    let mut s = settings(&sim_url, &dir).await;
    s.companies[0].instances[0].source = ews_source(&ews_url, "CORP\\svc-kalsync", "ntlm", "2016");
    let service = Service::start(s).await.expect("starts");
    let store = service.store.clone();
    let company = store.companies().await.expect("companies")[0].id;
    let instance = store.instances(company).await.expect("instances")[0].id;
    let outbound = service.connections.clone();
    let run = || kalsync_server::check::check_instance(store.as_ref(), &outbound, instance, None);

    let steps = run().await.expect("checked");
    assert_eq!(steps.len(), 4, "{steps:?}");
    assert!(steps.iter().all(|s| s.ok), "{steps:?}");
    assert!(steps[2].detail.contains("1 bookings"), "{steps:?}");
    assert!(
        ews.subscriptions().is_empty(),
        "the test subscription is removed"
    );

    let mut scoped = kalsync_ews_sim::EwsConfig::new("CORP\\svc-kalsync", "Sommar2026!");
    scoped.impersonate_all = false;
    ews.set_config(scoped);
    let steps = run().await.expect("checked");
    assert!(steps[0].ok && !steps[1].ok, "{steps:?}");
    assert!(
        steps[1].detail.contains("ApplicationImpersonation"),
        "{steps:?}"
    );

    ews.set_config(kalsync_ews_sim::EwsConfig::new(
        "CORP\\svc-kalsync",
        "another password",
    ));
    let steps = run().await.expect("checked");
    assert_eq!(steps.len(), 1);
    assert!(
        !steps[0].ok && steps[0].detail.contains("password"),
        "{steps:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn exchange_2007_pushes_changes_to_the_service() {
    let dir = test_dir("kalsync-ews-push");
    let Exchange {
        calendars,
        sim_url,
        ews,
        ews_url,
        _servers,
    } = exchange_with_anna().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/", listener.local_addr().expect("addr"));
    let mut s = settings(&sim_url, &dir).await;
    s.engine.poll_interval_secs = 3600;
    s.public_url = Some(url::Url::parse(&base).expect("url"));
    s.companies[0].instances[0].source = ews_source(&ews_url, "CORP\\svc-kalsync", "basic", "2007");
    let running = Running::on(listener, s, dir).await;
    eventually(|| ews.subscriptions().len() == 1).await;
    assert_eq!(ews.subscriptions().len(), 1, "one push subscription");
    assert_eq!(ews.subscriptions()[0].2, "push");

    let started = std::time::Instant::now();
    book_lunch_now(&calendars);
    eventually(|| running.pbx.received() > 0).await;
    assert_eq!(running.pbx.received(), 1, "the lunch reached the PBX");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "pushed, in {:?}",
        started.elapsed()
    );
    assert!(ews.stats().notifications_pushed >= 1);

    // A push for a subscription the service does not know is told to stop.
    let stray = reqwest::Client::new()
        .post(format!("{base}notifications/ews/unknown-token"))
        .body("<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body/></s:Envelope>")
        .send()
        .await
        .expect("answer")
        .text()
        .await
        .expect("text");
    assert_eq!(
        kalsync_ews::response::notification_result(&stray),
        Ok(false),
        "{stray}"
    );
    running.stop().await;
}

#[tokio::test]
async fn after_a_restart_exchange_2007_resumes_from_the_kept_watermark() {
    let dir = test_dir("kalsync-ews-resume");
    let Exchange {
        calendars,
        sim_url,
        ews,
        ews_url,
        _servers,
    } = exchange_with_anna().await;
    let start = |dir: std::path::PathBuf| {
        let (sim_url, ews_url) = (sim_url.clone(), ews_url.clone());
        async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let base = format!("http://{}/", listener.local_addr().expect("addr"));
            let mut s = settings(&sim_url, &dir).await;
            s.engine.poll_interval_secs = 3600;
            s.public_url = Some(url::Url::parse(&base).expect("url"));
            s.companies[0].instances[0].source =
                ews_source(&ews_url, "CORP\\svc-kalsync", "basic", "2007");
            // Stopping removes only this folder; the database stays for the restart.
            Running::on(listener, s, dir.join("run")).await
        }
    };

    let first = start(dir.clone()).await;
    assert!(
        eventually(|| ews.subscriptions().len() == 1).await,
        "subscribed"
    );
    // A change tomorrow: pushed, and its watermark kept.
    let tomorrow = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24);
    calendars
        .create_event(
            "anna@acme.example",
            EventSpec::new(
                "Möte",
                tomorrow,
                tomorrow + jiff::SignedDuration::from_hours(1),
            ),
        )
        .expect("event");
    assert!(
        eventually(|| ews.stats().notifications_pushed >= 1).await,
        "pushed"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    first.stop().await;

    // While the service is down, Anna books a lunch in force now.
    book_lunch_now(&calendars);

    // Restarted: the mailbox was read recently, so only the resumed subscription can
    // bring the lunch before the hour-long poll.
    let second = start(dir.clone()).await;
    eventually(|| second.pbx.received() > 0).await;
    let current = second.pbx.current();
    assert_eq!(
        current
            .get("anna@acme.example")
            .and_then(|s| s.status.absence.as_ref())
            .map(|a| a.reason.clone())
            .as_deref(),
        Some("lunch"),
        "the change made while down arrived"
    );
    second.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn without_a_public_url_exchange_2007_is_pulled() {
    let dir = test_dir("kalsync-ews-pull");
    let Exchange {
        calendars,
        sim_url,
        ews,
        ews_url,
        _servers,
    } = exchange_with_anna().await;
    let mut s = settings(&sim_url, &dir).await;
    s.engine.poll_interval_secs = 3600;
    s.companies[0].instances[0].source = ews_source(&ews_url, "CORP\\svc-kalsync", "ntlm", "2007");
    let running = Running::start(s, dir).await;
    assert!(
        eventually(|| ews.subscriptions().len() == 1).await,
        "subscribed"
    );
    assert_eq!(ews.subscriptions()[0].2, "pull");

    book_lunch_now(&calendars);
    // Pulled every ten seconds.
    eventually_within(Duration::from_secs(15), || running.pbx.received() > 0).await;
    assert_eq!(
        running.pbx.received(),
        1,
        "the lunch reached the PBX by pulling"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_delegate_instance_polls_with_sync_folder_items_and_reads_only_on_change() {
    let dir = test_dir("kalsync-ews-poll");
    let Exchange {
        calendars,
        sim_url,
        ews,
        ews_url,
        _servers,
    } = exchange_with_anna().await;
    let mut config = kalsync_ews_sim::EwsConfig::new("CORP\\svc-kalsync", "Sommar2026!");
    config.impersonate_all = false;
    config.delegate.insert(
        "anna@acme.example".into(),
        kalsync_ews_sim::DelegateRights::Reviewer,
    );
    ews.set_config(config);
    let mut s = settings(&sim_url, &dir).await;
    let mut source = ews_source(&ews_url, "CORP\\svc-kalsync", "ntlm", "2013");
    if let SourceDecl::Ews { access, .. } = &mut source {
        *access = kalsync_core::exchange::Access::Delegate;
    }
    s.companies[0].instances[0].source = source;
    let running = Running::start(s, dir).await;
    // The first read, then polls: the first primes the sync state (and reads once
    // more); later ones find nothing changed.
    assert!(
        eventually_within(Duration::from_secs(10), || ews.stats().sync_folder_items
            >= 4)
        .await,
        "{:?}",
        ews.stats()
    );
    let reads = ews.stats().find_item;
    assert!(
        eventually_within(Duration::from_secs(10), || ews.stats().sync_folder_items
            >= 7)
        .await
    );
    assert_eq!(
        ews.stats().find_item,
        reads,
        "no window read while nothing changed"
    );
    assert_eq!(running.pbx.received(), 0);

    // A sync state Exchange forgot: primed afresh and the window read, then quiet again.
    ews.set_faults(kalsync_ews_sim::EwsFaults {
        expire_watermarks: 1,
        ..Default::default()
    });
    assert!(
        eventually_within(Duration::from_secs(10), || ews.stats().find_item > reads).await,
        "a forgotten state reads the window"
    );
    let reads = ews.stats().find_item;
    let looks = ews.stats().sync_folder_items;
    assert!(
        eventually_within(Duration::from_secs(10), || ews.stats().sync_folder_items
            >= looks + 2)
        .await
    );
    assert_eq!(ews.stats().find_item, reads);

    book_lunch_now(&calendars);
    assert!(eventually(|| running.pbx.received() > 0).await);
    assert!(ews.stats().find_item > reads, "the change was read");
    let anna = running.pbx.current()["anna@acme.example"].clone();
    assert_eq!(
        anna.status.absence.as_ref().map(|a| a.reason.as_str()),
        Some("lunch")
    );
    assert_eq!(ews.stats().body_requested, 0);
    running.stop().await;
}

#[tokio::test]
async fn an_exchange_instance_signs_in_with_oauth_tokens_from_entra() {
    let dir = test_dir("kalsync-ews-oauth");
    let Exchange {
        calendars,
        sim_url,
        ews,
        ews_url,
        _servers,
    } = exchange_with_anna().await;
    // The app's tokens are for the Exchange host; the account has no password at all.
    let mut config = kalsync_ews_sim::EwsConfig::new("CORP\\svc-kalsync", "unused");
    config.basic = false;
    config.ntlm = false;
    config.oauth_audience = Some("http://127.0.0.1".into());
    ews.set_config(config);
    book_lunch_now(&calendars);
    let mut s = settings(&sim_url, &dir).await;
    s.companies[0].instances[0].source = SourceDecl::Ews {
        url: format!("{ews_url}EWS/Exchange.asmx"),
        username: "c".into(),
        password: "s".to_owned().into(),
        auth: kalsync_core::exchange::SignIn::OAuth,
        version: kalsync_core::exchange::Version::Exchange2013Sp1,
        access: kalsync_core::exchange::Access::Impersonation,
        options: kalsync_store::EwsOptions {
            tenant: Some("t".into()),
            login_url: Some(sim_url.to_string()),
            max_concurrency: Some(4),
            ..Default::default()
        },
        ca_file: None,
    };
    let running = Running::start(s, dir).await;
    assert!(
        eventually(|| running.pbx.received() > 0).await,
        "{:?}",
        ews.stats()
    );
    let anna = running.pbx.current()["anna@acme.example"].clone();
    assert_eq!(
        anna.status.absence.as_ref().map(|a| a.reason.as_str()),
        Some("lunch")
    );
    assert_eq!(ews.stats().unauthorized, 0);
    assert!(
        calendars.stats().tokens >= 1,
        "a token from the Entra endpoint"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_declared_admin_signs_in_and_the_directory_shows_who_is_away() {
    let dir = test_dir("kalsync-api");
    let (_calendars, sim_url, _graph, _) = anna_at_lunch().await;
    let mut s = settings(&sim_url, &dir).await;
    s.accounts.push(acme_admin());
    let running = Running::start(s, dir).await;
    running.page_until(|p| p.contains("Lunch, back")).await;
    let (http, me) = running.signed_in_as_acme_admin().await;
    assert_eq!(me["role"], "company_admin", "{me}");
    let directory: serde_json::Value = http
        .get(format!("{}/api/v1/directory", running.base))
        .send()
        .await
        .expect("directory")
        .json()
        .await
        .expect("json");
    assert_eq!(directory[0]["email"], "anna@acme.example", "{directory}");
    assert_eq!(directory[0]["absence"]["reason"], "lunch");
    assert!(
        directory[0]["absence"]["message_sv"]
            .as_str()
            .unwrap_or("")
            .starts_with("Lunch, åter"),
        "{directory}"
    );
    // Without signing in: nothing.
    let anonymous = reqwest::get(format!("{}/api/v1/directory", running.base))
        .await
        .expect("get");
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);
    running.stop().await;
}

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

/// Who `client` is signed in as: the status of `/api/v1/me` and its answer.
async fn who_am_i(
    client: &reqwest::Client,
    base: &str,
) -> (reqwest::StatusCode, serde_json::Value) {
    let answer = client
        .get(format!("{base}/api/v1/me"))
        .send()
        .await
        .expect("me");
    let status = answer.status();
    (status, answer.json().await.unwrap_or_default())
}

/// Signs in with Microsoft as `upn` on a fresh browser: the client (signed in or not)
/// and the last page's address and text.
async fn microsoft_sign_in(base: &str, upn: &str) -> (reqwest::Client, reqwest::Url, String) {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let picker = http
        .get(format!("{base}/sign-in/microsoft"))
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
    let dir = test_dir("kalsync-connect");
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
        person(OPERATOR, &["Kalsync.Admin"]),
    ];
    let calendars = Simulator::new(config);
    calendars
        .add_user(UserSpec {
            upn: "anna@acme.example".into(),
            id: None,
            display_name: None,
            time_zone: "W. Europe Standard Time".into(),
            working_hours: None,
        })
        .expect("user");
    let (sim_url, _graph) = kalsync_graph_sim::spawn(calendars.clone())
        .await
        .expect("sim");
    let mut s = settings(&sim_url, &dir).await;
    s.microsoft365 = Some(kalsync_server::settings::Microsoft365Settings {
        client_id: "kalsync-operator".into(),
        client_secret: "operator-secret".to_owned().into(),
        login_url: Some(sim_url.clone()),
        graph_url: Some(format!("{sim_url}v1.0/")),
        operator_tenant: None,
        operator_roles: vec!["Kalsync.Operator".into()],
    });
    s.accounts.push(acme_admin());
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
        password: ACME_ADMIN_PASSWORD.to_owned().into(),
    });
    let running = Running::start(s, dir).await;
    let (http, me) = running.signed_in_as_acme_admin().await;
    let csrf = me["csrf"].as_str().expect("csrf").to_owned();
    let company = me["company"].as_str().expect("company").to_owned();
    let connect = format!("{}/companies/{company}/connect-microsoft365", running.base);
    let new_page = http
        .get(format!(
            "{}/companies/{company}/instances/new",
            running.base
        ))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(new_page.contains("connect-microsoft365"), "{new_page}");

    // Before any tenant is the company's, nobody of it signs in with Microsoft.
    let (_, _, refused) = microsoft_sign_in(&running.base, "lisa@acme.example").await;
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
        .get(format!(
            "{}/auth/microsoft/callback?code=made-up&state={state}&admin_consent=True&tenant=84bd8158-6d4d-4958-8b9f-9d6445542f95",
            running.base
        ))
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
    let elsewhere = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
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
    let instances = running.instances_of(&http, &company).await;
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
    let (beta, beta_me) = running
        .signed_in_as("it@beta.example", ACME_ADMIN_PASSWORD)
        .await;
    let beta_company = beta_me["company"].as_str().expect("company").to_owned();
    let (prompt_url, html) = consent_prompt(
        &beta,
        &format!(
            "{}/companies/{beta_company}/connect-microsoft365",
            running.base
        ),
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
    let beta_instances = running.instances_of(&beta, &beta_company).await;
    assert_eq!(
        beta_instances.as_array().map(Vec::len),
        Some(0),
        "{beta_instances}"
    );

    // Now the tenant's people sign in by their app role: Lisa reads Acme; a guest
    // without a role is told whom to ask.
    let (lisa, _, page) = microsoft_sign_in(&running.base, "lisa@acme.example").await;
    assert!(
        page.contains("signed-in") || page.contains("Acme"),
        "{page}"
    );
    let (_, me) = who_am_i(&lisa, &running.base).await;
    assert_eq!(me["role"], "reader", "{me}");
    assert_eq!(me["company"], company.as_str(), "{me}");
    assert_eq!(me["actor"], "lisa@acme.example", "{me}");
    // Her role taken away in Entra ID: her next sign-in is refused, and the session she
    // still had ends with it.
    calendars.add_person(person("lisa@acme.example", &[]).with_oid(LISA));
    let (_, _, refused) = microsoft_sign_in(&running.base, "lisa@acme.example").await;
    assert!(refused.contains("Kalsync.Reader"), "{refused}");
    assert_eq!(
        who_am_i(&lisa, &running.base).await.0,
        reqwest::StatusCode::UNAUTHORIZED
    );
    calendars.add_person(person("lisa@acme.example", &["Kalsync.Reader"]).with_oid(LISA));
    let (_, _, refused) = microsoft_sign_in(&running.base, "guest@acme.example").await;
    assert!(refused.contains("Kalsync.Reader"), "{refused}");
    // A name is not an identity: the person calling themselves the operator's e-mail
    // is not signed in as the operator (nor gets an account of that name).
    let (pretender, _, refused) = microsoft_sign_in(&running.base, OPERATOR).await;
    assert!(
        refused.contains("finns redan") && refused.contains(OPERATOR),
        "{refused}"
    );
    assert_eq!(
        who_am_i(&pretender, &running.base).await.0,
        reqwest::StatusCode::UNAUTHORIZED
    );

    // The admin, who signs in with a password, links their Microsoft account on My
    // account; from then on Microsoft signs them in as that account, with its own role.
    let picker = http
        .post(format!("{}/account/microsoft", running.base))
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
    let (admin_ms, _, _) = microsoft_sign_in(&running.base, "it@acme.example").await;
    let (_, me) = who_am_i(&admin_ms, &running.base).await;
    assert_eq!(
        (me["actor"].as_str(), me["role"].as_str()),
        (Some("it@acme.example"), Some("company_admin")),
        "{me}"
    );

    // A wrong token is refused however the rest looks.
    let mut faults = calendars.faults();
    faults.bad_id_token = Some(kalsync_graph_sim::BadIdToken::ForeignKey);
    calendars.set_faults(faults.clone());
    let (forged, _, page) = microsoft_sign_in(&running.base, "lisa@acme.example").await;
    assert!(page.contains("signature"), "{page}");
    assert_eq!(
        who_am_i(&forged, &running.base).await.0,
        reqwest::StatusCode::UNAUTHORIZED
    );
    faults.bad_id_token = None;
    calendars.set_faults(faults);

    // The same answer again is refused: each consent is used once.
    let replay = http.get(callback_url.clone()).send().await.expect("replay");
    assert_eq!(replay.status(), reqwest::StatusCode::BAD_REQUEST);

    // The instance signs in with the operator's app and reads Anna's calendar.
    let check: serde_json::Value = http
        .post(format!("{}/api/v1/instances/{id}/check", running.base))
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({"mailbox": "anna@acme.example"}))
        .send()
        .await
        .expect("check")
        .json()
        .await
        .expect("json");
    assert_eq!(check["ok"], true, "{check}");
    running.stop().await;
}

#[tokio::test]
async fn a_tenant_given_by_its_domain_is_stored_as_its_directory_id() {
    let dir = test_dir("kalsync-tenant-domain");
    let calendars = Simulator::new(SimConfig {
        domains: vec!["acme.onmicrosoft.com".into()],
        ..SimConfig::with_secret(CONNECTED_TENANT, "c", "s")
    });
    let (sim_url, _graph) = kalsync_graph_sim::spawn(calendars.clone())
        .await
        .expect("sim");
    let mut s = settings(&sim_url, &dir).await;
    s.accounts.push(acme_admin());
    let running = Running::start(s, dir).await;
    let (http, me) = running.signed_in_as_acme_admin().await;
    let csrf = me["csrf"].as_str().expect("csrf").to_owned();
    let company = me["company"].as_str().expect("company").to_owned();
    let create = |tenant: &str| {
        http.post(format!(
            "{}/api/v1/companies/{company}/instances",
            running.base
        ))
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
    running.stop().await;
}
