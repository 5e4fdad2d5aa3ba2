//! `mailboxSettings`: a user's time zone and working hours, and their automatic replies
//! (`automaticRepliesSetting`, alone or in a `$batch`).

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

/// A user's `automaticRepliesSetting` as Graph answers it (texts and all), or the
/// error status, code and message.
pub(super) fn automatic_replies_body(
    sim: &Simulator,
    base: &str,
    user: &str,
) -> Result<serde_json::Value, (StatusCode, &'static str, String)> {
    let world = sim.world();
    let u = world.directory.user(user).map_err(|_| {
        (
            StatusCode::NOT_FOUND,
            "ErrorInvalidUser",
            format!("The requested user '{user}' is invalid."),
        )
    })?;
    if u.denied {
        return Err((
            StatusCode::FORBIDDEN,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.".into(),
        ));
    }
    let a = &u.automatic_replies;
    let at = |t: Option<jiff::Timestamp>| {
        let t = t.unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        json!({"dateTime": t.strftime("%Y-%m-%dT%H:%M:%S.0000000").to_string(), "timeZone": "UTC"})
    };
    Ok(json!({
        "@odata.context": format!("{base}/v1.0/$metadata#users('{}')/mailboxSettings/automaticRepliesSetting", u.id),
        "status": a.status,
        "externalAudience": "all",
        "scheduledStartDateTime": at(a.start),
        "scheduledEndDateTime": at(a.end),
        "internalReplyMessage": a.internal_message,
        "externalReplyMessage": a.external_message,
    }))
}

pub(super) async fn automatic_replies(
    State(sim): State<Simulator>,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = admit(&sim, &headers).await {
        return r;
    }
    match automatic_replies_body(&sim, &base_url(&headers), &user) {
        Ok(body) => Json(body).into_response(),
        Err((status, code, message)) => graph_error(status, code, &message),
    }
}
