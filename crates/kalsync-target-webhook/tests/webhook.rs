//! The webhook target against a receiver that verifies signatures with the reference
//! `standardwebhooks` crate and answers as a PBX integration might.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use kalsync_engine::{DeliveryError, Envelope, Person, StatusUpdate, Target};
use kalsync_target_webhook::WebhookTarget;
use secrecy::SecretString;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A scripted answer: status and `Retry-After`.
type Answer = (StatusCode, Option<&'static str>);

#[derive(Clone, Default)]
struct Receiver {
    answers: Arc<Mutex<Vec<Answer>>>,
    seen: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let verifier = standardwebhooks::Webhook::new(SECRET).expect("secret");
    if verifier.verify(&body, &headers).is_err() {
        return (StatusCode::UNAUTHORIZED, HeaderMap::new());
    }
    if let Some((code, retry_after)) = r.answers.lock().expect("lock").pop() {
        let mut h = HeaderMap::new();
        if let Some(v) = retry_after {
            h.insert("retry-after", v.parse().expect("header"));
        }
        return (code, h);
    }
    let id = headers["webhook-id"].to_str().expect("id").to_owned();
    let mut seen = r.seen.lock().expect("lock");
    // An idempotent receiver applies a webhook-id once.
    if !seen.iter().any(|(i, _)| *i == id) {
        seen.push((id, serde_json::from_slice(&body).expect("json")));
    }
    (StatusCode::NO_CONTENT, HeaderMap::new())
}

async fn receiver() -> (Receiver, String) {
    let r = Receiver::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, url)
}

fn delivery(sequence: u64) -> (Envelope, StatusUpdate) {
    let now = jiff::Timestamp::now();
    let d = Envelope {
        id: uuid::Uuid::new_v4(),
        sequence,
        attempt: 1,
    };
    let s = StatusUpdate {
        user: Person {
            id: uuid::Uuid::new_v4().to_string(),
            email: "anna@acme.example".into(),
            name: Some("Anna".into()),
            extension: Some("201".into()),
        },
        at: now,
        absence: None,
        upcoming: Vec::new(),
    };
    (d, s)
}

/// The receivers here listen on loopback.
fn loopback() -> kalsync_outbound::OutboundPolicy {
    kalsync_outbound::OutboundPolicy::with_loopback()
}

fn target(url: &str) -> WebhookTarget {
    WebhookTarget::new(
        url,
        &SecretString::from(SECRET),
        Duration::from_secs(5),
        &loopback(),
    )
    .expect("target")
}

#[tokio::test]
async fn signatures_verify_with_the_reference_implementation() {
    let (r, url) = receiver().await;
    let (d, s) = delivery(7);
    target(&url).deliver(&d, &s).await.expect("delivered");
    let seen = r.seen.lock().expect("lock");
    assert_eq!(seen[0].0, d.id.to_string());
    assert_eq!(seen[0].1["type"], "kalsync.status.changed");
    assert_eq!(seen[0].1["data"]["sequence"], 7);
    assert_eq!(seen[0].1["data"]["user"]["extension"], "201");
}

#[tokio::test]
async fn a_wrong_secret_fails_verification() {
    let (r, url) = receiver().await;
    let other = WebhookTarget::new(
        &url,
        &SecretString::from("whsec_c29tZW90aGVyc2VjcmV0a2V5MTIzNDU2"),
        Duration::from_secs(5),
        &loopback(),
    )
    .expect("target");
    let (d, s) = delivery(1);
    assert!(
        matches!(other.deliver(&d, &s).await, Err(DeliveryError::Rejected(m)) if m.contains("401"))
    );
    assert!(r.seen.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn answers_map_to_retry_gone_and_rejected() {
    let (r, url) = receiver().await;
    let t = target(&url);
    let (d, s) = delivery(1);
    r.answers
        .lock()
        .expect("lock")
        .push((StatusCode::SERVICE_UNAVAILABLE, Some("12")));
    match t.deliver(&d, &s).await {
        Err(DeliveryError::Retry { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(12)))
        }
        other => panic!("{other:?}"),
    }
    r.answers
        .lock()
        .expect("lock")
        .push((StatusCode::TOO_MANY_REQUESTS, None));
    assert!(matches!(
        t.deliver(&d, &s).await,
        Err(DeliveryError::Retry {
            retry_after: None,
            ..
        })
    ));
    r.answers
        .lock()
        .expect("lock")
        .push((StatusCode::GONE, None));
    assert!(matches!(
        t.deliver(&d, &s).await,
        Err(DeliveryError::Gone(_))
    ));
    r.answers
        .lock()
        .expect("lock")
        .push((StatusCode::BAD_REQUEST, None));
    assert!(matches!(
        t.deliver(&d, &s).await,
        Err(DeliveryError::Rejected(_))
    ));
    // The retry of the same delivery carries the same id: applied once.
    t.deliver(&d, &s).await.expect("delivered");
    t.deliver(&d, &s).await.expect("delivered again");
    assert_eq!(r.seen.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_retried_and_bad_configuration_refused() {
    let t = target("http://127.0.0.1:9/hook");
    let (d, s) = delivery(1);
    assert!(matches!(
        t.deliver(&d, &s).await,
        Err(DeliveryError::Retry { .. })
    ));
    assert!(
        WebhookTarget::new(
            "ftp://x",
            &SecretString::from(SECRET),
            Duration::from_secs(1),
            &loopback(),
        )
        .is_err()
    );
    assert!(
        WebhookTarget::new(
            "https://x.example",
            &SecretString::from("whsec_!!"),
            Duration::from_secs(1),
            &loopback(),
        )
        .is_err()
    );
    assert!(
        WebhookTarget::new(
            "https://x.example",
            &SecretString::from("whsec_c2hvcnQ="),
            Duration::from_secs(1),
            &loopback(),
        )
        .is_err()
    );
}

#[test]
fn verify_takes_what_the_reference_crate_signs_and_nothing_else() {
    let signer = standardwebhooks::Webhook::new(SECRET).expect("secret");
    let key =
        kalsync_target_webhook::signing_key(&SecretString::from(SECRET.to_owned())).expect("key");
    let body = br#"{"type":"back","extension":"201"}"#;
    let ts = 1_764_000_000;
    let sig = signer.sign("evt_1", ts, body).expect("signed");
    let verify =
        |id: &str, t: i64, b: &[u8], h: &str| kalsync_target_webhook::verify(&key, id, t, b, h);
    assert!(verify("evt_1", ts, body, &sig));
    // Several signatures (a secret being rotated): any one that matches.
    assert!(verify("evt_1", ts, body, &format!("v1,AAAA {sig}")));
    assert!(!verify("evt_2", ts, body, &sig), "another id");
    assert!(!verify("evt_1", ts + 1, body, &sig), "another time");
    assert!(
        !verify("evt_1", ts, br#"{"type":"extend"}"#, &sig),
        "another body"
    );
    assert!(!verify("evt_1", ts, body, ""), "unsigned");
    assert!(
        !verify("evt_1", ts, body, &sig.replace("v1,", "v2,")),
        "another version"
    );
    assert!(!verify("evt_1", ts, body, "v1,not base64!"), "garbage");
    let other = kalsync_target_webhook::signing_key(&SecretString::from(
        "whsec_b3RoZXItc2VjcmV0LWtleS0xMjM0NTY3OA==".to_owned(),
    ))
    .expect("key");
    assert!(
        !kalsync_target_webhook::verify(&other, "evt_1", ts, body, &sig),
        "another key"
    );
}

#[tokio::test]
async fn a_batch_is_one_signed_post_with_each_status_its_own_id() {
    let (r, url) = receiver().await;
    let single = target(&url);
    assert_eq!(single.batch_size(), 1, "one at a time unless asked");
    let batched = target(&url).batched(true);
    assert_eq!(batched.batch_size(), kalsync_target_webhook::BATCH);
    let items: Vec<(Envelope, StatusUpdate)> = (1..=3).map(delivery).collect();
    batched.deliver_batch(&items).await.expect("delivered");
    {
        let seen = r.seen.lock().expect("lock");
        assert_eq!(seen.len(), 1, "one POST");
        let (id, body) = &seen[0];
        assert!(id.starts_with("batch_"), "{id}");
        assert_eq!(body["type"], "kalsync.status.batch");
        let statuses = body["data"]["statuses"].as_array().expect("statuses");
        assert_eq!(statuses.len(), 3);
        for ((envelope, _), sent) in items.iter().zip(statuses) {
            assert_eq!(sent["delivery_id"], envelope.id.to_string());
            assert_eq!(sent["sequence"], envelope.sequence);
            assert_eq!(sent["user"]["extension"], "201");
        }
    }
    // The same deliveries again (a retry of the whole batch): the same webhook-id, in
    // any order.
    let mut again = items.clone();
    again.reverse();
    batched.deliver_batch(&again).await.expect("again");
    assert_eq!(r.seen.lock().expect("lock").len(), 1, "recognised as one");
    // A refusal or a failure is the whole batch's.
    r.answers
        .lock()
        .expect("lock")
        .push((StatusCode::SERVICE_UNAVAILABLE, Some("3")));
    assert!(matches!(
        batched.deliver_batch(&items[..2]).await,
        Err(DeliveryError::Retry { .. })
    ));
}
