//! The simulator's HTTP face: the route tables of the token endpoint, the Graph routes
//! Kalsync uses and the control API under `/_sim`, and the answers they share.

// Early returns carry finished HTTP answers; boxing them would only add allocations.
#![allow(clippy::result_large_err)]

mod admission;
mod batch;
mod calendar_view;
mod control;
mod directory;
mod events;
mod mailbox_settings;
mod presence;
mod subscriptions;
mod token;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use axum::{Json, Router};
use jiff::Timestamp;
use serde_json::json;
use serde_json::value::RawValue;

use crate::Simulator;

pub(crate) use token::{aad_error, random_token};

/// Everything the simulator serves: the login host and Graph (paced by the injected
/// latency), the consent and sign-in pages, and the control API.
pub(crate) fn router(sim: Simulator) -> Router {
    let graph = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token::token))
        .route(
            "/v1.0/users/{user}/calendarView",
            get(calendar_view::calendar_view),
        )
        .route(
            "/v1.0/users/{user}/calendar/calendarView",
            get(calendar_view::calendar_view),
        )
        .route(
            "/v1.0/users/{user}/mailboxSettings",
            get(mailbox_settings::mailbox_settings),
        )
        .route(
            "/v1.0/users/{user}/mailboxSettings/automaticRepliesSetting",
            get(mailbox_settings::automatic_replies),
        )
        .route(
            "/v1.0/users/{user}/events/{id}",
            get(events::get_event).patch(events::patch_event),
        )
        .route("/v1.0/users/{user}/presence", get(presence::get_presence))
        .route(
            "/v1.0/users/{user}/presence/{action}",
            post(presence::action),
        )
        .route(
            "/v1.0/communications/getPresencesByUserId",
            post(presence::presences_by_user_id),
        )
        .route("/v1.0/$batch", post(batch::batch))
        .route(
            "/v1.0/groups/{group}/transitiveMembers",
            get(directory::transitive_members),
        )
        .route("/v1.0/groups/delta", get(directory::groups_delta))
        .route("/v1.0/users/delta", get(directory::users_delta))
        .route(
            "/v1.0/subscriptions",
            post(subscriptions::create_subscription),
        )
        .route(
            "/v1.0/subscriptions/{id}",
            patch(subscriptions::renew_subscription).delete(subscriptions::delete_subscription),
        )
        .layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            admission::pace,
        ));
    Router::new()
        .merge(graph)
        .merge(crate::consent::router())
        .merge(crate::oidc::router())
        .with_state(sim.clone())
        .merge(control_router(sim))
}

/// The control API alone (users, events, faults, stats): what another protocol's
/// simulator over the same calendars serves beside its own endpoints.
pub fn control_router(sim: Simulator) -> Router {
    Router::new()
        .route("/_sim/users", post(control::add_user).get(control::users))
        .route("/_sim/people", post(control::add_person))
        .route("/_sim/users/{user}/events", post(control::create_event))
        .route(
            "/_sim/users/{user}/events/{id}",
            put(control::update_event)
                .delete(control::delete_event)
                .get(control::get_event),
        )
        .route(
            "/_sim/users/{user}/events/{id}/occurrences/{date}",
            put(control::change_occurrence).delete(control::delete_occurrence),
        )
        .route("/_sim/users/{user}/access", put(control::access))
        .route("/_sim/users/{user}/profile", put(control::set_profile))
        .route(
            "/_sim/users/{user}/directory",
            delete(control::delete_directory_user),
        )
        .route("/_sim/groups", post(control::add_group))
        .route("/_sim/groups/{group}", delete(control::delete_group))
        .route(
            "/_sim/groups/{group}/members/{member}",
            put(control::add_member).delete(control::remove_member),
        )
        .route(
            "/_sim/directory/expire-deltas",
            post(control::expire_deltas),
        )
        .route(
            "/_sim/faults",
            get(control::get_faults).put(control::set_faults),
        )
        .route("/_sim/subscriptions", get(control::subscriptions))
        .route(
            "/_sim/subscriptions/{id}/lifecycle/{event}",
            post(control::lifecycle),
        )
        .route("/_sim/stats", get(control::stats))
        .route(
            "/_sim/health",
            delete(|| async { StatusCode::METHOD_NOT_ALLOWED }).get(|| async { "ok" }),
        )
        .with_state(sim)
}

/// Graph's error JSON.
fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {
        "code": code,
        "message": message,
        "innerError": {
            "code": status.as_u16().to_string(),
            "date": Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S").to_string(),
            "message": message,
            "request-id": uuid::Uuid::new_v4().to_string(),
            "requestId": uuid::Uuid::new_v4().to_string(),
            "client-request-id": uuid::Uuid::new_v4().to_string(),
            "status": status.as_u16().to_string(),
        }
    }});
    (status, Json(body)).into_response()
}

/// A JSON answer from text already serialized.
fn json_text(raw: Box<RawValue>) -> Response {
    let text: Box<str> = raw.into();
    ([(header::CONTENT_TYPE, "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8")], String::from(text)).into_response()
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}
