//! `mailboxSettings`: a user's time zone and working hours.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::admission::admit;
use super::{base_url, graph_error};
use crate::Simulator;

pub(super) async fn mailbox_settings(
    State(sim): State<Simulator>,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = admit(&sim, &headers).await {
        return r;
    }
    let world = sim.world();
    let Ok(u) = world.directory.user(&user) else {
        return graph_error(
            StatusCode::NOT_FOUND,
            "ErrorInvalidUser",
            &format!("The requested user '{user}' is invalid."),
        );
    };
    let mut body = json!({
        "@odata.context": format!("{}/v1.0/$metadata#users('{}')/mailboxSettings", base_url(&headers), u.id),
        "timeZone": u.time_zone,
    });
    if let Some(wh) = &u.working_hours {
        body["workingHours"] = json!({
            "daysOfWeek": wh.days,
            "startTime": format!("{}:00.0000000", wh.start),
            "endTime": format!("{}:00.0000000", wh.end),
            "timeZone": {"name": u.time_zone},
        });
    }
    Json(body).into_response()
}
