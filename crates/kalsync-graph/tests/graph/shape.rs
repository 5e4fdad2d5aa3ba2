//! The simulator's payloads have the shape of Microsoft's: every field a real sample
//! carries, with the same JSON type, and Graph's seven-digit `dateTime`.

use serde_json::Value;

use crate::helpers::*;

/// Fails when `real` has a key `ours` lacks, or a value of another JSON type (null in a
/// sample matches anything: the sample did not say).
fn assert_shape(path: &str, real: &Value, ours: &Value) {
    match (real, ours) {
        (Value::Object(r), Value::Object(o)) => {
            for (k, rv) in r {
                let ov = o.get(k).unwrap_or_else(|| {
                    panic!("{path}.{k} is missing in the simulator's payload: {ours}")
                });
                assert_shape(&format!("{path}.{k}"), rv, ov);
            }
        }
        (Value::Array(r), Value::Array(o)) => {
            if let (Some(rv), Some(ov)) = (r.first(), o.first()) {
                assert_shape(&format!("{path}[0]"), rv, ov);
            }
        }
        (Value::Null, _) | (_, Value::Null) => {}
        (r, o) => assert_eq!(
            std::mem::discriminant(r),
            std::mem::discriminant(o),
            "{path}: {r} vs {o}"
        ),
    }
}

fn seven_digits(s: &str) -> bool {
    s.len() == 27
        && s.as_bytes()[19] == b'.'
        && s[20..].bytes().all(|b| b.is_ascii_digit())
        && s.parse::<jiff::civil::DateTime>().is_ok()
}

async fn raw(base: &url::Url, token: &str, path: &str, prefer: Option<&str>) -> Value {
    let mut req = reqwest::Client::new()
        .get(base.join(path).expect("url"))
        .bearer_auth(token);
    if let Some(p) = prefer {
        req = req.header("Prefer", p);
    }
    req.send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json")
}

async fn token(base: &url::Url) -> String {
    let answer: Value = reqwest::Client::new()
        .post(
            base.join(&format!("{TENANT}/oauth2/v2.0/token"))
                .expect("url"),
        )
        .form(&[
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    assert_shape(
        "token",
        &serde_json::from_str(&fixture("token_client_credentials_response.json")).expect("fixture"),
        &answer,
    );
    answer["access_token"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn calendar_view_events_have_the_fields_and_formats_of_real_ones() {
    if !crate::helpers::have_fixtures() {
        return;
    }
    let s = default_simulator().await;
    let u = user(&s.sim, "anna@contoso.example");
    let mut spec = event("Orientation", "2026-11-23 10:00", "2026-11-23 12:00");
    spec.response = "accepted".into();
    s.sim.create_event(&u, spec).expect("event");
    let token = token(&s.base).await;
    let page = raw(&s.base, &token, &format!("v1.0/users/{u}/calendarView?startDateTime=2026-11-23T00:00:00Z&endDateTime=2026-11-24T00:00:00Z"), Some("outlook.timezone=\"Pacific Standard Time\"")).await;
    let ours = &page["value"][0];
    for sample in [
        "calendarView_response_user-list-calendarview.json",
        "events_list_response.json",
    ] {
        let real: Value = serde_json::from_str(&fixture(sample)).expect("fixture");
        let mut real_event = real["value"][0].clone();
        // Samples select fields the simulator has no use for (attendees); compare the rest.
        for unused in ["attendees", "locations", "organizer"] {
            real_event.as_object_mut().map(|o| o.remove(unused));
        }
        assert_shape(sample, &real_event, ours);
    }
    assert!(
        seven_digits(ours["start"]["dateTime"].as_str().expect("dateTime")),
        "{ours}"
    );
    assert_eq!(ours["start"]["timeZone"], "Pacific Standard Time");
    assert_eq!(ours["start"]["dateTime"], "2026-11-23T01:00:00.0000000");
    assert!(
        page["@odata.context"]
            .as_str()
            .is_some_and(|c| c.contains("$metadata#"))
    );
}

#[tokio::test]
async fn select_narrows_the_event_and_pages_carry_next_links() {
    if !crate::helpers::have_fixtures() {
        return;
    }
    let s = default_simulator().await;
    let u = user(&s.sim, "bo@contoso.example");
    for day in 23..=27 {
        for hour in [9, 11, 14] {
            s.sim
                .create_event(
                    &u,
                    event(
                        "Möte",
                        &format!("2026-11-{day} {hour:02}:00"),
                        &format!("2026-11-{day} {hour:02}:30"),
                    ),
                )
                .expect("event");
        }
    }
    let token = token(&s.base).await;
    let page = raw(&s.base, &token, &format!("v1.0/users/{u}/calendarView?startDateTime=2026-11-23T00:00:00Z&endDateTime=2026-11-30T00:00:00Z&$select=start,end,showAs"), None).await;
    let first = page["value"][0].as_object().expect("event");
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["@odata.etag", "end", "id", "showAs", "start"]);
    assert_eq!(
        page["value"].as_array().map(Vec::len),
        Some(10),
        "Graph's default page is 10"
    );
    let next = page["@odata.nextLink"].as_str().expect("nextLink");
    let real: Value =
        serde_json::from_str(&fixture("delta_calendarView_initial_page1_nextLink.json"))
            .expect("fixture");
    assert!(
        real["@odata.nextLink"]
            .as_str()
            .is_some_and(|l| l.contains("$skiptoken="))
            && next.contains("$skiptoken=")
    );
    assert!(next.contains("$select="), "the select carries over: {next}");
    assert_eq!(s.sim.stats().bodies_served, 0);
}

#[tokio::test]
async fn errors_batches_and_subscriptions_look_like_graphs() {
    if !crate::helpers::have_fixtures() {
        return;
    }
    let s = default_simulator().await;
    let u = user(&s.sim, "cia@contoso.example");
    let token = token(&s.base).await;
    let http = reqwest::Client::new();

    s.sim.set_faults(kalsync_graph_sim::Faults {
        throttle: 1,
        retry_after_secs: 2.128,
        ..Default::default()
    });
    let answer = http.get(s.base.join(&format!("v1.0/users/{u}/calendarView?startDateTime=2026-11-23T00:00:00Z&endDateTime=2026-11-24T00:00:00Z")).expect("url")).bearer_auth(&token).send().await.expect("answer");
    assert_eq!(answer.status(), 429);
    assert_eq!(answer.headers()["retry-after"], "2.128");
    let body: Value = answer.json().await.expect("json");
    assert_shape(
        "429",
        &serde_json::from_str(&fixture("error_429_TooManyRequests.json")).expect("fixture"),
        &body,
    );

    let batch: Value = http
        .post(s.base.join("v1.0/$batch").expect("url"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"requests": [
            {"id": "1", "method": "GET", "url": format!("/users/{u}/calendarView?startDateTime=2026-11-23T00:00:00Z&endDateTime=2026-11-24T00:00:00Z")},
            {"id": "2", "method": "GET", "url": "/users/nobody@contoso.example/calendarView?startDateTime=2026-11-23T00:00:00Z&endDateTime=2026-11-24T00:00:00Z"}
        ]}))
        .send()
        .await
        .expect("batch")
        .json()
        .await
        .expect("json");
    let real: Value =
        serde_json::from_str(&fixture("batch_response.json").replace("\"...\"", "\"x\""))
            .expect("fixture");
    let mut real_item = real["responses"][2].clone();
    real_item.as_object_mut().map(|o| o.remove("body"));
    assert_shape(
        "batch",
        &serde_json::json!({"responses": [real_item]}),
        &batch,
    );
    assert_eq!(batch["responses"][1]["status"], 404);

    // A subscription's answer, after the validation handshake.
    let receiver = crate::notifications_e2e::Receiver::start().await;
    let created: Value = http
        .post(s.base.join("v1.0/subscriptions").expect("url"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "changeType": "created,updated,deleted",
            "notificationUrl": receiver.url.as_str(),
            "lifecycleNotificationUrl": receiver.url.as_str(),
            "resource": format!("/users/{u}/events"),
            "expirationDateTime": (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(48)).to_string(),
            "clientState": "secretClientValue",
        }))
        .send()
        .await
        .expect("subscription")
        .json()
        .await
        .expect("json");
    assert_shape(
        "subscription",
        &serde_json::from_str(&fixture("subscription_create_response.json")).expect("fixture"),
        &created,
    );
    assert!(seven_digits(
        created["expirationDateTime"]
            .as_str()
            .expect("expiry")
            .trim_end_matches('Z')
    ));

    // The change notification the subscription brings.
    s.sim
        .create_event(&u, event("Ny", "2026-11-24 09:00", "2026-11-24 10:00"))
        .expect("event");
    let raw_notification = receiver.next_raw().await;
    let real: Value = serde_json::from_str(&fixture("notification_webhook_created_message.json"))
        .expect("fixture");
    assert_shape("notification", &real, &raw_notification);
    assert_eq!(
        raw_notification["value"][0]["resourceData"]["@odata.type"],
        "#Microsoft.Graph.Event"
    );

    s.sim
        .lifecycle(created["id"].as_str().expect("id"), "missed")
        .expect("lifecycle");
    let lifecycle = receiver.next_raw().await;
    assert_shape(
        "lifecycle",
        &serde_json::from_str(&fixture("lifecycle_missed.json")).expect("fixture"),
        &lifecycle,
    );
}
