//! The control API's handlers (`/_sim/…`): users, people, events and occurrences,
//! access, faults, subscriptions' lifecycle and stats.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::world::{EventSpec, OccurrenceChange, SpecError, UserSpec};
use crate::{Faults, Simulator, graph_time};

fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": e.to_string()})),
        )
            .into_response()
    })
}

fn spec_error(e: SpecError) -> Response {
    let status = match e {
        SpecError::Invalid(_) => StatusCode::BAD_REQUEST,
        SpecError::NotFound(_) => StatusCode::NOT_FOUND,
        SpecError::Conflict(_) => StatusCode::CONFLICT,
    };
    (status, Json(json!({"error": e.to_string()}))).into_response()
}
pub(super) async fn add_user(State(sim): State<Simulator>, body: Bytes) -> Response {
    let spec: UserSpec = match parse_json(&body) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let upn = spec.upn.clone();
    match sim.add_user(spec) {
        Ok(id) => (StatusCode::CREATED, Json(json!({"id": id, "upn": upn}))).into_response(),
        Err(e) => spec_error(e),
    }
}

pub(super) async fn add_person(State(sim): State<Simulator>, body: Bytes) -> Response {
    let person: crate::SimPerson = match parse_json(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let oid = sim.add_person(person);
    (StatusCode::CREATED, Json(json!({ "oid": oid }))).into_response()
}

pub(super) async fn users(State(sim): State<Simulator>) -> Response {
    let users: Vec<Value> = sim
        .users()
        .into_iter()
        .map(|p| json!({"id": p.id, "upn": p.upn, "displayName": p.name}))
        .collect();
    Json(users).into_response()
}

pub(super) async fn create_event(
    State(sim): State<Simulator>,
    Path(user): Path<String>,
    body: Bytes,
) -> Response {
    let spec: EventSpec = match parse_json(&body) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match sim.create_event(&user, spec) {
        Ok(id) => (StatusCode::CREATED, Json(json!({"id": id}))).into_response(),
        Err(e) => spec_error(e),
    }
}

pub(super) async fn update_event(
    State(sim): State<Simulator>,
    Path((user, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let spec: EventSpec = match parse_json(&body) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match sim.update_event(&user, &id, spec) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => spec_error(e),
    }
}

pub(super) async fn get_event(
    State(sim): State<Simulator>,
    Path((user, id)): Path<(String, String)>,
) -> Response {
    match sim.event(&user, &id) {
        Ok(spec) => Json(spec).into_response(),
        Err(e) => spec_error(e),
    }
}

pub(super) async fn delete_event(
    State(sim): State<Simulator>,
    Path((user, id)): Path<(String, String)>,
) -> Response {
    match sim.delete_event(&user, &id) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => spec_error(e),
    }
}

fn occurrence_date(text: &str) -> Result<jiff::civil::Date, Response> {
    text.parse()
        .map_err(|_| spec_error(SpecError::Invalid(format!("`{text}` is not a date"))))
}

pub(super) async fn change_occurrence(
    State(sim): State<Simulator>,
    Path((user, id, date)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let date = match occurrence_date(&date) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let change: OccurrenceChange = match parse_json(&body) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match sim.change_occurrence(&user, &id, date, Some(change)) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => spec_error(e),
    }
}

pub(super) async fn delete_occurrence(
    State(sim): State<Simulator>,
    Path((user, id, date)): Path<(String, String, String)>,
) -> Response {
    let date = match occurrence_date(&date) {
        Ok(d) => d,
        Err(r) => return r,
    };
    match sim.change_occurrence(&user, &id, date, None) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => spec_error(e),
    }
}

pub(super) async fn access(
    State(sim): State<Simulator>,
    Path(user): Path<String>,
    body: Bytes,
) -> Response {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Access {
        allowed: bool,
    }
    let access: Access = match parse_json(&body) {
        Ok(a) => a,
        Err(r) => return r,
    };
    match sim.set_access(&user, access.allowed) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => spec_error(e),
    }
}

pub(super) async fn get_faults(State(sim): State<Simulator>) -> Response {
    Json(sim.faults()).into_response()
}

pub(super) async fn set_faults(State(sim): State<Simulator>, body: Bytes) -> Response {
    let faults: Faults = match parse_json(&body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    sim.set_faults(faults);
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn subscriptions(State(sim): State<Simulator>) -> Response {
    let subs: Vec<Value> = sim
        .subscriptions()
        .into_iter()
        .map(|(id, user, expires)| json!({"id": id, "user": user, "expirationDateTime": graph_time(expires)}))
        .collect();
    Json(subs).into_response()
}

pub(super) async fn lifecycle(
    State(sim): State<Simulator>,
    Path((id, event)): Path<(String, String)>,
) -> Response {
    match sim.lifecycle(&id, &event) {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => spec_error(e),
    }
}

pub(super) async fn stats(State(sim): State<Simulator>) -> Response {
    Json(sim.stats()).into_response()
}

pub(super) async fn add_group(State(sim): State<Simulator>, body: Bytes) -> Response {
    let spec: crate::GroupSpec = match parse_json(&body) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match sim.add_group(spec) {
        Ok(id) => (StatusCode::CREATED, Json(json!({"id": id}))).into_response(),
        Err(e) => spec_error(e),
    }
}

pub(super) async fn delete_group(
    State(sim): State<Simulator>,
    Path(group): Path<String>,
) -> Response {
    match sim.delete_group(&group) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => spec_error(e),
    }
}

pub(super) async fn add_member(
    State(sim): State<Simulator>,
    Path((group, member)): Path<(String, String)>,
) -> Response {
    match sim.change_member(&group, &member, true) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => spec_error(e),
    }
}

pub(super) async fn remove_member(
    State(sim): State<Simulator>,
    Path((group, member)): Path<(String, String)>,
) -> Response {
    match sim.change_member(&group, &member, false) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => spec_error(e),
    }
}

pub(super) async fn set_profile(
    State(sim): State<Simulator>,
    Path(user): Path<String>,
    body: Bytes,
) -> Response {
    let profile: crate::Profile = match parse_json(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match sim.set_profile(&user, profile) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => spec_error(e),
    }
}

pub(super) async fn delete_directory_user(
    State(sim): State<Simulator>,
    Path(user): Path<String>,
) -> Response {
    match sim.delete_directory_user(&user) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => spec_error(e),
    }
}

pub(super) async fn expire_deltas(State(sim): State<Simulator>) -> Response {
    sim.expire_directory_deltas();
    StatusCode::NO_CONTENT.into_response()
}
