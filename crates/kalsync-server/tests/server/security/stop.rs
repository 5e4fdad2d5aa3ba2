//! Nothing a client holds open delays a stop (`docs/THREAT_MODEL.md`, T8): a
//! receptionist's live switchboard ends when the service is told to stop.

use std::time::Duration;

use kalsync_server::Settings;
use kalsync_server::settings::AccountDecl;
use serde_json::json;

use super::{ADMIN_PASSWORD, captured};
use crate::support::{eventually_within, spawn_app};

#[tokio::test]
async fn an_open_switchboard_stream_does_not_hold_a_stop_up() {
    captured();
    let settings = Settings {
        accounts: vec![AccountDecl {
            email: "operator@example.se".into(),
            role: "operator".into(),
            company: None,
            password: ADMIN_PASSWORD.to_owned().into(),
        }],
        ..Settings::default()
    };
    let app = spawn_app(settings).await;
    let http = app.http.clone();
    let signed_in = eventually_within(Duration::from_secs(10), async || {
        http.post(app.url("/api/v1/session"))
            .json(&json!({"email": "operator@example.se", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert!(signed_in, "the service answers");
    let stream = http
        .get(app.url("/switchboard/events"))
        .send()
        .await
        .expect("the stream");
    assert_eq!(stream.status(), reqwest::StatusCode::OK);
    assert!(
        app.stop_within(Duration::from_secs(8)).await,
        "the stop waited for the open stream"
    );
    drop(stream);
}
