//! `$batch`: up to twenty requests in one — `calendarView`, automatic replies, a person's
//! id, presence actions — each holding its mailbox's slot and answered on its own;
//! each presence action counts against the presence budget on its own (Graph evaluates
//! a batch's requests individually against its limits).

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::admission::admit;
use super::calendar_view::{ViewQuery, view_page};
use super::{base_url, graph_error, json_text};
use crate::Simulator;

#[derive(Deserialize)]
struct BatchRequest {
    requests: Vec<BatchItem>,
}

#[derive(Deserialize)]
struct BatchItem {
    id: String,
    method: String,
    url: String,
    #[serde(default)]
    headers: HashMap<String, String>,
    #[serde(default)]
    body: Option<Value>,
}

/// A presence action's user and action, for `POST /users/{id}/presence/{action}`.
fn presence_action(item: &BatchItem) -> Option<(String, String)> {
    let path = item.url.trim_start_matches('/');
    let parts: Vec<&str> = path.split('?').next()?.split('/').collect();
    match parts.as_slice() {
        ["users", user, "presence", action] if item.method == "POST" => Some((
            percent_encoding::percent_decode_str(user)
                .decode_utf8_lossy()
                .into_owned(),
            (*action).to_owned(),
        )),
        _ => None,
    }
}

/// An answer's status and JSON body, for a batch item.
async fn parts_of(r: Response) -> (u16, Box<RawValue>) {
    let status = r.status().as_u16();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let text = if bytes.is_empty() {
        "null".to_owned()
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let body = RawValue::from_string(text).unwrap_or_else(|_| raw(Value::Null));
    (status, body)
}

pub(super) async fn batch(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(request) = serde_json::from_slice::<BatchRequest>(&body) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid batch payload format.",
        );
    };
    if request.requests.len() > 20 {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid batch payload format: the maximum number of requests is 20.",
        );
    }
    // Each item holds its mailbox for the whole batch, as Graph counts them.
    let entered: Vec<Option<crate::mailbox_slots::InFlight>> = request
        .requests
        .iter()
        .map(|item| sim.enter(&batch_mailbox(&item.url)))
        .collect();
    if let Err(r) = admit(&sim, &headers).await {
        return r;
    }
    sim.shared.stats.batches.fetch_add(1, Ordering::Relaxed);
    let base = base_url(&headers);
    let mut responses = Vec::new();
    for (item, slot) in request.requests.iter().zip(&entered) {
        if let Some((user, action)) = presence_action(item) {
            // Each request in a batch counts against the presence budget on its own, as
            // Graph evaluates them.
            let (status, body) = match super::presence::budget(&sim) {
                Some(throttled) => parts_of(throttled).await,
                None => {
                    sim.shared.stats.requests.fetch_add(1, Ordering::Relaxed);
                    let body = item.body.clone().unwrap_or(Value::Null);
                    parts_of(super::presence::write(&sim, &user, &action, &body)).await
                }
            };
            let headers = if status == 429 {
                json!({"Retry-After": "2", "Content-Type": "application/json"})
            } else {
                json!({"Content-Type": "application/json"})
            };
            responses.push(BatchItemOut {
                id: &item.id,
                status,
                headers,
                body,
            });
            continue;
        }
        if slot.is_none() {
            responses.push(BatchItemOut {
                id: &item.id,
                status: 429,
                headers: json!({"Retry-After": "1", "Content-Type": "application/json"}),
                body: raw(json!({"error": {"code": "ApplicationThrottled", "message": "Application is over its MailboxConcurrency limit."}})),
            });
            continue;
        }
        let (status, headers, body) = batch_item(&sim, &base, item);
        responses.push(BatchItemOut {
            id: &item.id,
            status,
            headers,
            body,
        });
    }
    let mut response = match serde_json::value::to_raw_value(&BatchOut { responses }) {
        Ok(text) => json_text(text),
        Err(e) => graph_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            &e.to_string(),
        ),
    };
    response
        .extensions_mut()
        .insert(std::sync::Arc::new(entered));
    response
}

#[derive(Serialize)]
struct BatchOut<'a> {
    responses: Vec<BatchItemOut<'a>>,
}

#[derive(Serialize)]
struct BatchItemOut<'a> {
    id: &'a str,
    status: u16,
    headers: Value,
    body: Box<RawValue>,
}

/// A small JSON value as raw text (error bodies inside a batch).
fn raw(value: Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(&value).unwrap_or_else(|_| {
        RawValue::from_string("null".to_owned()).unwrap_or_else(|_| unreachable!("null is JSON"))
    })
}

/// The mailbox a batch item's URL names (`/users/{id}/…`).
fn batch_mailbox(url: &str) -> String {
    let path = url
        .trim_start_matches('/')
        .split('?')
        .next()
        .unwrap_or_default();
    let mut parts = path.split('/');
    match (parts.next(), parts.next()) {
        (Some(users), Some(user)) if users.eq_ignore_ascii_case("users") => {
            percent_encoding::percent_decode_str(user)
                .decode_utf8_lossy()
                .into_owned()
        }
        _ => String::new(),
    }
}
fn batch_item(sim: &Simulator, base: &str, item: &BatchItem) -> (u16, Value, Box<RawValue>) {
    let json_headers = json!({"Content-Type": "application/json"});
    {
        let mut world = sim.world();
        if world.faults.throttle > 0 {
            world.faults.throttle -= 1;
            sim.shared.stats.throttled.fetch_add(1, Ordering::Relaxed);
            let after = format!("{}", world.faults.retry_after_secs.max(0.0));
            return (
                429,
                json!({"Retry-After": after, "Content-Type": "application/json"}),
                raw(
                    json!({"error": {"code": "TooManyRequests", "message": "Please retry again later."}}),
                ),
            );
        }
    }
    let url = item.url.trim_start_matches('/');
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let parts: Vec<&str> = path.split('/').collect();
    if item.method == "GET"
        && parts.len() == 4
        && parts[0] == "users"
        && parts[2] == "mailboxSettings"
        && parts[3] == "automaticRepliesSetting"
    {
        let user = percent_encoding::percent_decode_str(parts[1]).decode_utf8_lossy();
        sim.shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        return match super::mailbox_settings::automatic_replies_body(sim, base, &user) {
            Ok(body) => (200, json_headers, raw(body)),
            Err((status, code, message)) => (
                status.as_u16(),
                json_headers,
                raw(json!({"error": {"code": code, "message": message}})),
            ),
        };
    }
    if item.method == "GET" && parts.len() == 2 && parts[0] == "users" {
        // A person by id or mail: their id (what Kalsync asks for).
        let user = percent_encoding::percent_decode_str(parts[1]).decode_utf8_lossy();
        sim.shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        let world = sim.world();
        return match world.directory.user(&user) {
            Ok(u) => (200, json_headers, raw(json!({"id": u.id}))),
            Err(_) => (
                404,
                json_headers,
                raw(
                    json!({"error": {"code": "Request_ResourceNotFound", "message": format!("Resource '{user}' does not exist or one of its queried reference-property objects are not present.")}}),
                ),
            ),
        };
    }
    if item.method != "GET" || parts.len() != 3 || parts[0] != "users" || parts[2] != "calendarView"
    {
        return (
            400,
            json_headers,
            raw(
                json!({"error": {"code": "BadRequest", "message": "The simulator batches only GET /users/{id}/calendarView and /users/{id}/mailboxSettings/automaticRepliesSetting."}}),
            ),
        );
    }
    let user = percent_encoding::percent_decode_str(parts[1])
        .decode_utf8_lossy()
        .into_owned();
    let pairs: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let view = ViewQuery {
        start: pairs.get("startDateTime").cloned(),
        end: pairs.get("endDateTime").cloned(),
        select: pairs.get("$select").cloned(),
        top: pairs.get("$top").cloned(),
        skiptoken: pairs.get("$skiptoken").cloned(),
    };
    let prefer = item
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("prefer"))
        .map(|(_, v)| v.as_str());
    sim.shared.stats.requests.fetch_add(1, Ordering::Relaxed);
    match view_page(sim, base, &user, &view, prefer) {
        Ok(page) => (
            200,
            json!({"Content-Type": "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"}),
            page,
        ),
        Err(response) => {
            let status = response.status().as_u16();
            (
                status,
                json_headers,
                raw(json!({"error": {"code": "Error", "message": format!("status {status}")}})),
            )
        }
    }
}
