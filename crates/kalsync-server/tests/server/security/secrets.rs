//! Secrets stay secret: a service with every kind of secret — a Graph client secret, an
//! Exchange service account's password, a webhook signing secret, an AMI secret, the
//! operator's app secret, account passwords and API tokens — runs, reads, delivers and
//! answers every API and page, with logs at TRACE. None of them then appears in the log,
//! in any answer, or in clear in the database (SQLite's files, and every row of every
//! PostgreSQL table when `KALSYNC_TEST_POSTGRES_URL` is set).

use std::time::Duration;

use kalsync_graph_sim::{EventSpec, SimConfig, Simulator};
use kalsync_server::Settings;
use kalsync_server::settings::{AccountDecl, Microsoft365Settings, UserDecl};
use serde_json::json;

use super::{
    ADMIN_PASSWORD, AMI_SECRET, EWS_PASSWORD, GRAPH_SECRET, OOF_EXTERNAL, OOF_INTERNAL,
    OPERATOR_APP_SECRET, ROTATED_SECRET, SIM_TENANT, WEBHOOK_KEY,
    acme_with_every_source_and_target, captured,
};
use crate::support::sims::mailbox;
use crate::support::{Launch, Storage, eventually_within};

#[tokio::test]
async fn no_secret_appears_in_logs_answers_or_the_database_in_clear() {
    let sqlite = run_with_every_secret(Storage::sqlite()).await;
    check(&sqlite);
    if let Some(postgres) = Storage::postgres().await {
        let pg = run_with_every_secret(postgres).await;
        check(&pg);
    } else {
        eprintln!("skipped the PostgreSQL half: KALSYNC_TEST_POSTGRES_URL is not set (CI sets it)");
    }
}

/// What one run left behind.
struct Seen {
    backend: &'static str,
    log: String,
    answers: String,
    database: String,
    token: String,
}

fn check(seen: &Seen) {
    // The scans see what they should: the run logged, answered and stored things.
    assert!(
        seen.log.contains("store open"),
        "{}: log captured",
        seen.backend
    );
    assert!(
        seen.answers.contains("anna@acme.example"),
        "{}: answers captured",
        seen.backend
    );
    assert!(
        seen.database.contains("svc-kalsync"),
        "{}: the database dump holds the (not secret) account name",
        seen.backend
    );
    assert!(
        seen.answers.contains("\"source\":\"automatic_replies\""),
        "{}: Anna's automatic replies were read (her timeline has them after the lunch)",
        seen.backend
    );
    for secret in [
        GRAPH_SECRET,
        ROTATED_SECRET,
        EWS_PASSWORD,
        WEBHOOK_KEY,
        AMI_SECRET,
        OPERATOR_APP_SECRET,
        ADMIN_PASSWORD,
        seen.token.as_str(),
        // Automatic replies are read (below), their texts never kept or shown.
        OOF_INTERNAL,
        OOF_EXTERNAL,
    ] {
        for (place, text) in [
            ("the log", &seen.log),
            ("an API or page answer", &seen.answers),
            ("the database", &seen.database),
        ] {
            assert!(
                !text.contains(secret),
                "{}: `{secret}` is in {place}",
                seen.backend
            );
        }
    }
}

/// Runs the service with every kind of secret on `storage`, asks every API and page,
/// stops it and reads its database; `storage` is then removed.
async fn run_with_every_secret(storage: Storage) -> Seen {
    let log = captured();

    let calendars = Simulator::new(SimConfig::with_secret(SIM_TENANT, "c", GRAPH_SECRET));
    calendars
        .add_user(mailbox("anna@acme.example"))
        .expect("user");
    let now = jiff::Timestamp::now();
    calendars
        .create_event(
            "anna@acme.example",
            EventSpec::new(
                "LUN: Lunch",
                now - jiff::SignedDuration::from_mins(5),
                now + jiff::SignedDuration::from_mins(55),
            ),
        )
        .expect("event");
    calendars
        .set_automatic_replies(
            "anna@acme.example",
            kalsync_graph_sim::AutoRepliesSpec {
                status: "scheduled".into(),
                start: Some(now - jiff::SignedDuration::from_mins(10)),
                end: Some(now + jiff::SignedDuration::from_hours(3)),
                internal_message: OOF_INTERNAL.into(),
                external_message: OOF_EXTERNAL.into(),
            },
        )
        .expect("automatic replies");
    let (sim_url, _graph) = kalsync_graph_sim::spawn(calendars.clone())
        .await
        .expect("sim");
    let ews = kalsync_ews_sim::EwsSim::new(
        calendars.clone(),
        kalsync_ews_sim::EwsConfig::new("CORP\\svc-kalsync", EWS_PASSWORD),
    );
    let (ews_url, _ews) = kalsync_ews_sim::spawn(ews).await.expect("ews");
    let backend = storage.backend();
    let user = || UserDecl::Full {
        email: "anna@acme.example".into(),
        name: Some("Anna".into()),
        extension: Some("201".into()),
    };
    let mut settings = Settings {
        companies: vec![acme_with_every_source_and_target(
            &format!("http://127.0.0.1:{}/hook", kalsync_testkit::free_port()),
            kalsync_testkit::free_port(),
            sim_url.as_ref(),
            &format!("{ews_url}EWS/Exchange.asmx"),
            user(),
        )],
        accounts: vec![AccountDecl {
            email: "it@acme.example".into(),
            role: "company_admin".into(),
            company: Some("Acme".into()),
            password: ADMIN_PASSWORD.to_owned().into(),
        }],
        microsoft365: Some(Microsoft365Settings {
            client_id: "operator-app".into(),
            client_secret: OPERATOR_APP_SECRET.to_owned().into(),
            login_url: Some(sim_url.clone()),
            graph_url: None,
            operator_tenant: None,
            operator_roles: vec!["Kalsync.Operator".into()],
        }),
        // The simulators listen on loopback.
        outbound: kalsync_server::settings::OutboundSettings::loopback(),
        ..Settings::default()
    };
    settings.engine.debounce_ms = 0;
    settings.engine.poll_interval_secs = 1;
    let app = Launch::new(settings).public().on(storage).spawn().await;
    let base = app.base.clone();

    let http = app.http.clone();
    let mut answers = String::new();
    let mut me = serde_json::Value::Null;
    eventually_within(Duration::from_secs(10), async || {
        if let Ok(r) = http
            .post(format!("{base}/api/v1/session"))
            .json(&json!({"email": "it@acme.example", "password": ADMIN_PASSWORD}))
            .send()
            .await
            && r.status().is_success()
        {
            me = r.json().await.expect("me");
            return true;
        }
        false
    })
    .await;
    let csrf = me["csrf"].as_str().expect("signed in").to_owned();
    let company = me["company"].as_str().expect("company").to_owned();
    let get = |path: String| {
        let http = http.clone();
        let base = base.clone();
        async move {
            http.get(format!("{base}{path}"))
                .send()
                .await
                .expect("get")
                .text()
                .await
                .expect("text")
        }
    };
    // The token is shown once, in its creation's answer: that answer is not scanned.
    let made: serde_json::Value = http
        .post(format!("{base}/api/v1/companies/{company}/tokens"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "console"}))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let token = made["token"].as_str().expect("token").to_owned();
    let instances: serde_json::Value =
        serde_json::from_str(&get(format!("/api/v1/companies/{company}/instances")).await)
            .expect("instances");
    let graph_instance = instances
        .as_array()
        .and_then(|l| l.iter().find(|i| i["source"]["kind"] == "graph"))
        .expect("graph")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // Anna's lunch is read and served (her mailbox was read with the secret).
    let users: serde_json::Value =
        serde_json::from_str(&get(format!("/api/v1/instances/{graph_instance}/users")).await)
            .expect("users");
    let anna = users[0]["id"].as_str().expect("anna").to_owned();
    let lunch = eventually_within(Duration::from_secs(10), async || {
        get(format!("/api/v1/users/{anna}/status"))
            .await
            .contains("lunch")
    })
    .await;
    assert!(lunch, "Anna's lunch was read");
    // A new secret in a change is stored, and not echoed back.
    let changed = http
        .patch(format!("{base}/api/v1/instances/{graph_instance}"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"source": {"kind": "graph", "tenant": SIM_TENANT, "client_id": "c", "client_secret": ROTATED_SECRET,
            "graph_url": format!("{sim_url}v1.0/"), "login_url": sim_url.to_string()}}))
        .send()
        .await
        .expect("patch");
    assert!(changed.status().is_success(), "the secret was rotated");
    answers.push_str(&changed.text().await.expect("text"));
    for path in [
        "/api/v1/me".to_owned(),
        "/api/v1/companies".to_owned(),
        format!("/api/v1/companies/{company}"),
        format!("/api/v1/companies/{company}/instances"),
        format!("/api/v1/companies/{company}/tokens"),
        format!("/api/v1/companies/{company}/accounts"),
        format!("/api/v1/companies/{company}/audit"),
        format!("/api/v1/companies/{company}/deliveries"),
        format!("/api/v1/companies/{company}/deliveries?state=dead"),
        format!("/api/v1/instances/{graph_instance}"),
        format!("/api/v1/instances/{graph_instance}/users"),
        format!("/api/v1/users/{anna}/status"),
        "/api/v1/directory?all=true".to_owned(),
        "/api/v1/openapi.json".to_owned(),
        "/".to_owned(),
        "/switchboard".to_owned(),
        format!("/instances/{graph_instance}"),
        format!("/instances/{graph_instance}/settings"),
        format!("/instances/{graph_instance}/rules"),
        format!("/users/{anna}"),
        format!("/companies/{company}/accounts"),
        format!("/companies/{company}/instances/new"),
        "/account".to_owned(),
        "/metrics".to_owned(),
    ] {
        answers.push_str(&get(path).await);
    }
    // The token works, and its use is not echoed.
    answers.push_str(
        &http
            .get(format!("{base}/api/v1/directory"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("token use")
            .text()
            .await
            .expect("text"),
    );
    // A wrong password's refusal says nothing of the right one.
    answers.push_str(
        &reqwest::Client::new()
            .post(format!("{base}/api/v1/session"))
            .json(&json!({"email": "it@acme.example", "password": "wrong-password-00"}))
            .send()
            .await
            .expect("refused")
            .text()
            .await
            .expect("text"),
    );

    let storage = app.halt().await;
    let database = storage.contents().await;
    storage.remove().await;
    Seen {
        backend,
        log: log.text(),
        answers,
        database,
        token,
    }
}
