//! One event by id: `GET` (its organiser flag and attendees) and `PATCH` of its end —
//! what a client writing back to a calendar needs; a changed event notifies
//! `updated`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::admission::admit;
use super::graph_error;
use crate::Simulator;

/// 403 for a mailbox the app may not reach (see [`Simulator::set_access`]).
fn denied(sim: &Simulator, user: &str) -> Option<Response> {
    let world = sim.world();
    world
        .directory
        .user(user)
        .ok()
        .filter(|u| u.denied)
        .map(|_| {
            graph_error(
                StatusCode::FORBIDDEN,
                "ErrorAccessDenied",
                "Access is denied. Check credentials and try again.",
            )
        })
}

fn missing(id: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "ErrorItemNotFound",
        &format!("The specified object was not found in the store. ({id})"),
    )
}

pub(super) async fn get_event(
    State(sim): State<Simulator>,
    Path((user, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = admit(&sim, &headers).await {
        return r;
    }
    if let Some(r) = denied(&sim, &user) {
        return r;
    }
    let Ok(spec) = sim.event(&user, &id) else {
        return missing(&id);
    };
    let attendees: Vec<Value> = spec
        .attendees
        .iter()
        .map(|a| json!({"type": "required", "emailAddress": {"address": a, "name": a}}))
        .collect();
    Json(json!({
        "id": id,
        "subject": spec.subject,
        "isOrganizer": spec.response == "organizer",
        "attendees": attendees,
        "start": {"dateTime": spec.start, "timeZone": "UTC"},
        "end": {"dateTime": spec.end, "timeZone": "UTC"},
    }))
    .into_response()
}

pub(super) async fn patch_event(
    State(sim): State<Simulator>,
    Path((user, id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(r) = admit(&sim, &headers).await {
        return r;
    }
    if let Some(r) = denied(&sim, &user) {
        return r;
    }
    let Ok(mut spec) = sim.event(&user, &id) else {
        return missing(&id);
    };
    // Only the end, given in UTC, is taken (what a write-back sends).
    let end = body["end"]["dateTime"]
        .as_str()
        .zip(body["end"]["timeZone"].as_str());
    let Some((local, "UTC")) = end else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRequest",
            "The simulator takes only an end in UTC.",
        );
    };
    let Ok(at) = local
        .parse::<jiff::civil::DateTime>()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC))
    else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRequest",
            "The end is not a date and time.",
        );
    };
    spec.end = at.timestamp().to_string();
    match sim.update_event(&user, &id, spec) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => graph_error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRequest",
            &e.to_string(),
        ),
    }
}
