//! A company's PBX directory fetched from the PBX, end to end: a bearer token or a
//! Standard Webhooks signature (checked with the reference `standardwebhooks` crate) on
//! the GET; a refused or broken fetch keeps the list before it and says why; and Katalog
//! Synk adds only people the PBX knows.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use kalsync_graph_sim::{GroupSpec, UserSpec};
use serde_json::{Value, json};

use crate::support::acme::{self, ADMIN, ADMIN_PASSWORD, ANNA};
use crate::support::sims::anna_at_lunch;
use crate::support::spawn_app;

const TOKEN: &str = "pbx-t0ken-123";
const SIGNING: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The PBX: its subscriptions, and how it answers (`None`: as it should).
#[derive(Clone)]
struct Pbx {
    list: Arc<Mutex<Value>>,
    broken: Arc<Mutex<Option<StatusCode>>>,
}

async fn bearer(State(pbx): State<Pbx>, headers: HeaderMap) -> (StatusCode, String) {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return (StatusCode::UNAUTHORIZED, String::new());
    }
    answer(&pbx)
}

async fn signed(State(pbx): State<Pbx>, headers: HeaderMap) -> (StatusCode, String) {
    let verifier = standardwebhooks::Webhook::new(SIGNING).expect("secret");
    if verifier.verify(b"", &headers).is_err() {
        return (StatusCode::UNAUTHORIZED, String::new());
    }
    answer(&pbx)
}

fn answer(pbx: &Pbx) -> (StatusCode, String) {
    if let Some(code) = *pbx.broken.lock().expect("lock") {
        return (code, "{".into());
    }
    (StatusCode::OK, pbx.list.lock().expect("lock").to_string())
}

async fn pbx_server(list: Value) -> (Pbx, String) {
    let pbx = Pbx {
        list: Arc::new(Mutex::new(list)),
        broken: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/subs", axum::routing::get(bearer))
        .route("/signed", axum::routing::get(signed))
        .with_state(pbx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (pbx, url)
}

#[tokio::test]
async fn a_fetched_pbx_directory_decides_who_the_directory_adds() {
    let (pbx, pbx_url) = pbx_server(json!({"subscriptions": [
        {"email": ANNA, "extension": "201", "name": "Anna"},
        {"email": "dora@acme.example", "extension": "204"},
    ]}))
    .await;
    let (sim, sim_url, _graph, _) = anna_at_lunch().await;
    for (upn, name) in [
        ("bo@acme.example", "Bo Berg"),
        ("dora@acme.example", "Dora Ny"),
    ] {
        sim.add_user(UserSpec {
            upn: upn.into(),
            id: None,
            display_name: Some(name.into()),
            time_zone: "W. Europe Standard Time".into(),
            working_hours: None,
        })
        .expect("user");
    }
    sim.add_group(GroupSpec {
        id: Some("sales".into()),
        name: "Sales".into(),
        members: vec![
            ANNA.into(),
            "bo@acme.example".into(),
            "dora@acme.example".into(),
        ],
    })
    .expect("group");
    let mut settings = acme::settings(&sim_url);
    settings.accounts.push(acme::admin());
    let app = spawn_app(settings).await;
    let store = app.store();
    let (company, instance) = app.first_instance().await;
    let admin = app.session(ADMIN, ADMIN_PASSWORD).await;
    let directory = app.url(&format!("/api/v1/companies/{}/pbx-directory", company.id));
    let fetch = format!("{directory}/fetch");
    use reqwest::Method;

    // A bearer token: fetched on request.
    let (status, body) = admin
        .send(
            Method::PUT,
            &directory,
            Some(json!({
                "source": {"kind": "url", "url": format!("{pbx_url}/subs"), "auth": "bearer"},
                "secret": TOKEN,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = admin.send(Method::POST, &fetch, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["count"].as_u64(), &body["last_error"]),
        (Some(2), &Value::Null),
        "{body}"
    );

    // A wrong token, then a broken PBX: the list is kept, and the view says why.
    let (status, _) = admin
        .send(
            Method::PUT,
            &directory,
            Some(json!({
                "source": {"kind": "url", "url": format!("{pbx_url}/subs"), "auth": "bearer"},
                "secret": "not-it",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = admin.send(Method::POST, &fetch, None).await;
    assert_eq!(body["count"], 2, "{body}");
    assert!(
        body["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("401")),
        "{body}"
    );
    let (status, _) = admin.send(Method::PUT, &directory, Some(json!({
        "source": {"kind": "url", "url": format!("{pbx_url}/signed"), "auth": "standard_webhooks"},
        "secret": SIGNING,
    }))).await;
    assert_eq!(status, StatusCode::OK);
    *pbx.broken.lock().expect("lock") = Some(StatusCode::OK);
    let (_, body) = admin.send(Method::POST, &fetch, None).await;
    assert_eq!(body["count"], 2, "{body}");
    assert!(
        body["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("JSON")),
        "{body}"
    );
    // Signed as Standard Webhooks sign: fetched.
    *pbx.broken.lock().expect("lock") = None;
    let (_, body) = admin.send(Method::POST, &fetch, None).await;
    assert_eq!(
        (body["count"].as_u64(), &body["last_error"]),
        (Some(2), &Value::Null),
        "{body}"
    );

    // An address given as an IP the operator's policy does not allow (the private
    // network): not reached, and the list is kept.
    let (status, _) = admin
        .send(
            Method::PUT,
            &directory,
            Some(json!({
                "source": {"kind": "url", "url": "https://10.0.0.5/subs", "auth": "bearer"},
                "secret": TOKEN,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = admin.send(Method::POST, &fetch, None).await;
    assert_eq!(body["count"], 2, "{body}");
    assert!(
        body["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("not one the service may reach")),
        "{body}"
    );

    // Katalog Synk: Sales has Anna, Bo and Dora; the PBX knows Anna and Dora. Dora is
    // added with the PBX's extension; Bo is not, and the run says why.
    let (status, body) = admin
        .send(
            Method::PUT,
            &app.url(&format!("/api/v1/instances/{}/directory", instance.id)),
            Some(json!({
                "kind": "entra", "groups": ["sales"], "enabled": true,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, run) = admin
        .send(
            Method::POST,
            &app.url(&format!("/api/v1/instances/{}/directory/run", instance.id)),
            Some(json!({"mode": "now"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert!(run.to_string().contains("not_in_pbx"), "{run}");
    let users = store.users(instance.id).await.expect("users");
    let mut seen: Vec<(String, Option<String>)> = users
        .iter()
        .map(|u| {
            (
                u.email.to_string(),
                u.extension.as_ref().map(|x| x.to_string()),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (ANNA.to_owned(), Some("201".to_owned())),
            ("dora@acme.example".to_owned(), Some("204".to_owned())),
        ]
    );
}
