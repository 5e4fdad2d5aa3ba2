//! The presence endpoints as Graph answers them: `setStatusMessage`, `setPresence`
//! (only the documented availability/activity pairs, 5 minutes to 4 hours),
//! `clearPresence` (404 without the session), `GET …/presence` and
//! `getPresencesByUserId` (650 ids at most), every one counted against the tenant's
//! presence budget (429 with `Retry-After` past it).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::admission::admit;
use super::graph_error;
use crate::Simulator;
use crate::presence::Session;

/// The pairs `setPresence` accepts.
const PAIRS: [(&str, &str); 5] = [
    ("Available", "Available"),
    ("Busy", "InACall"),
    ("Busy", "InAConferenceCall"),
    ("Away", "Away"),
    ("DoNotDisturb", "Presenting"),
];

fn bad(message: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, "BadRequest", message)
}

/// Admission, then the presence budget: a response when the request stops here.
pub(super) async fn gate(sim: &Simulator, headers: &HeaderMap) -> Option<Response> {
    if let Err(r) = admit(sim, headers).await {
        return Some(r);
    }
    budget(sim)
}

/// The presence budget alone (a `$batch` was admitted already): a 429 past it.
pub(super) fn budget(sim: &Simulator) -> Option<Response> {
    let taken = sim.world().presence_budget.take(Timestamp::now());
    if let Err(wait) = taken {
        sim.shared
            .stats
            .throttled
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut r = graph_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many presence requests for this application in this tenant.",
        );
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Some(r);
    }
    None
}

/// Runs `change` on `user`'s presence: its answer, or 404 for someone not there.
fn on_user(
    sim: &Simulator,
    user: &str,
    change: impl FnOnce(&mut crate::presence::PresenceState) -> Response,
) -> Response {
    let mut world = sim.world();
    match world.directory.user_mut(user) {
        Ok(u) => change(&mut u.presence),
        Err(_) => unknown(user),
    }
}

fn unknown(user: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "ErrorInvalidUser",
        &format!("The requested user '{user}' is invalid."),
    )
}

/// `POST /users/{user}/presence/{action}`: admission, the budget, then [`write`].
pub(super) async fn action(
    State(sim): State<Simulator>,
    Path((user, action)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = gate(&sim, &headers).await {
        return r;
    }
    write(&sim, &user, &action, &body)
}

/// One presence action (`setStatusMessage`, `setPresence`, `clearPresence`) on `user`
/// (by object id only, as Graph wants), answered as Graph does: for a request of its
/// own or an item of a `$batch`.
pub(super) fn write(sim: &Simulator, user: &str, action: &str, body: &Value) -> Response {
    if user.contains('@') {
        return bad("The user id must be the user's object id (a GUID).");
    }
    match action {
        "setStatusMessage" => status_message_op(sim, user, body),
        "setPresence" => set_presence_op(sim, user, body),
        "clearPresence" => clear_presence_op(sim, user, body),
        _ => graph_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "No such presence action.",
        ),
    }
}

fn status_message_op(sim: &Simulator, user: &str, body: &Value) -> Response {
    let message = &body["statusMessage"]["message"];
    let (Some(content), Some("text")) =
        (message["content"].as_str(), message["contentType"].as_str())
    else {
        return bad("statusMessage.message needs content and contentType text.");
    };
    let expiry = match &body["statusMessage"]["expiryDateTime"] {
        Value::Null => None,
        e => {
            let parsed = e["dateTime"]
                .as_str()
                .zip(e["timeZone"].as_str())
                .and_then(|(d, z)| {
                    let zone = kalsync_core::Zone::parse_any(z).ok()?;
                    d.parse::<jiff::civil::DateTime>()
                        .ok()?
                        .to_zoned(zone.tz().clone())
                        .ok()
                })
                .map(|z| z.timestamp());
            match parsed {
                Some(t) => Some(t),
                None => return bad("expiryDateTime is not a dateTimeTimeZone."),
            }
        }
    };
    on_user(sim, user, |p| {
        p.message = (!content.is_empty()).then(|| (content.to_owned(), expiry));
        StatusCode::OK.into_response()
    })
}

fn set_presence_op(sim: &Simulator, user: &str, body: &Value) -> Response {
    let (Some(session), Some(availability), Some(activity)) = (
        body["sessionId"].as_str(),
        body["availability"].as_str(),
        body["activity"].as_str(),
    ) else {
        return bad("sessionId, availability and activity are required.");
    };
    if !PAIRS.contains(&(availability, activity)) {
        sim.world().presence_budget.refused_pairs += 1;
        return bad(&format!(
            "The presence {availability}/{activity} is not supported for setPresence."
        ));
    }
    let lasting = match body["expirationDuration"].as_str() {
        None => SignedDuration::from_mins(5),
        Some(text) => match text.parse::<SignedDuration>() {
            Ok(d) if d >= SignedDuration::from_mins(5) && d <= SignedDuration::from_hours(4) => d,
            _ => return bad("expirationDuration must be from PT5M to PT4H."),
        },
    };
    on_user(sim, user, |p| {
        p.sessions.insert(
            session.to_owned(),
            Session {
                availability: availability.into(),
                activity: activity.into(),
                until: Timestamp::now() + lasting,
            },
        );
        StatusCode::OK.into_response()
    })
}

fn clear_presence_op(sim: &Simulator, user: &str, body: &Value) -> Response {
    let Some(session) = body["sessionId"].as_str() else {
        return bad("sessionId is required.");
    };
    on_user(sim, user, |p| match p.sessions.remove(session) {
        Some(s) if s.until > Timestamp::now() => StatusCode::OK.into_response(),
        _ => graph_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "The presence session does not exist.",
        ),
    })
}

/// A person's presence as Graph writes it (another user's message without its times).
fn presence_json(sim: &Simulator, user: &str) -> Option<Value> {
    let world = sim.world();
    let u = world.directory.user(user).ok()?;
    let now = Timestamp::now();
    let (availability, activity) = u.presence.aggregate(now);
    let mut out = json!({
        "id": u.id,
        "availability": availability,
        "activity": activity,
        "outOfOfficeSettings": {"message": null, "isOutOfOffice": false},
    });
    if let Some((message, _)) = u.presence.message_at(now) {
        out["statusMessage"] = json!({"message": {"content": message, "contentType": "text"}});
    }
    Some(out)
}

pub(super) async fn get_presence(
    State(sim): State<Simulator>,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = gate(&sim, &headers).await {
        return r;
    }
    match presence_json(&sim, &user) {
        Some(p) => Json(p).into_response(),
        None => unknown(&user),
    }
}

pub(super) async fn presences_by_user_id(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = gate(&sim, &headers).await {
        return r;
    }
    let Some(ids) = body["ids"].as_array() else {
        return bad("ids is required.");
    };
    if ids.len() > 650 {
        return bad("A maximum of 650 user IDs are supported per request.");
    }
    let value: Vec<Value> = ids
        .iter()
        .filter_map(Value::as_str)
        .filter(|id| !id.contains('@'))
        .filter_map(|id| presence_json(&sim, id))
        .collect();
    Json(json!({ "value": value })).into_response()
}
