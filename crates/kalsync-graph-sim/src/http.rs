//! The simulator's HTTP face: the token endpoint, the Graph routes Kalsync uses, and the
//! control API under `/_sim`.

// Early returns carry finished HTTP answers; boxing them would only add allocations.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use kalsync_core::Zone;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::world::{EventSpec, Instance, OccurrenceChange, SpecError, UserSpec, When};
use crate::{Faults, Simulator, Subscription, graph_time};

/// Answers no sooner than the injected latency after a request arrived, the
/// simulator's own work included: the latency is Graph's response time as a client sees
/// it. Per-mailbox slots travel in the response and are held until then.
async fn pace(
    State(sim): State<Simulator>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = tokio::time::Instant::now();
    let latency = sim.world().faults.latency_ms;
    let response = next.run(request).await;
    tokio::time::sleep_until(started + Duration::from_millis(latency)).await;
    response
}

pub(crate) fn router(sim: Simulator) -> Router {
    let graph = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/v1.0/users/{user}/calendarView", get(calendar_view))
        .route(
            "/v1.0/users/{user}/calendar/calendarView",
            get(calendar_view),
        )
        .route("/v1.0/users/{user}/mailboxSettings", get(mailbox_settings))
        .route("/v1.0/$batch", post(batch))
        .route("/v1.0/subscriptions", post(create_subscription))
        .route(
            "/v1.0/subscriptions/{id}",
            patch(renew_subscription).delete(delete_subscription),
        )
        .layer(axum::middleware::from_fn_with_state(sim.clone(), pace));
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
        .route("/_sim/users", post(control_add_user).get(control_users))
        .route("/_sim/people", post(control_add_person))
        .route("/_sim/users/{user}/events", post(control_create_event))
        .route(
            "/_sim/users/{user}/events/{id}",
            put(control_update_event)
                .delete(control_delete_event)
                .get(control_get_event),
        )
        .route(
            "/_sim/users/{user}/events/{id}/occurrences/{date}",
            put(control_change_occurrence).delete(control_delete_occurrence),
        )
        .route("/_sim/users/{user}/access", put(control_access))
        .route(
            "/_sim/faults",
            get(control_get_faults).put(control_set_faults),
        )
        .route("/_sim/subscriptions", get(control_subscriptions))
        .route(
            "/_sim/subscriptions/{id}/lifecycle/{event}",
            post(control_lifecycle),
        )
        .route("/_sim/stats", get(control_stats))
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

fn spec_error(e: SpecError) -> Response {
    let status = match e {
        SpecError::Invalid(_) => StatusCode::BAD_REQUEST,
        SpecError::NotFound(_) => StatusCode::NOT_FOUND,
        SpecError::Conflict(_) => StatusCode::CONFLICT,
    };
    (status, Json(json!({"error": e.to_string()}))).into_response()
}

/// Latency and the one-shot faults every Graph and token request goes through.
async fn gate(sim: &Simulator) -> Option<Response> {
    let mut world = sim.world();
    let faults = &mut world.faults;
    if faults.drop_connections > 0 {
        faults.drop_connections -= 1;
        // A body that fails after the headers: the client sees the connection cut.
        let broken = futures_util::stream::once(async {
            Err::<Bytes, _>(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "simulated drop",
            ))
        });
        return Some(
            Response::builder()
                .status(StatusCode::OK)
                .body(Body::from_stream(broken))
                .unwrap_or_default(),
        );
    }
    if faults.throttle > 0 {
        faults.throttle -= 1;
        sim.shared.stats.throttled.fetch_add(1, Ordering::Relaxed);
        let mut response = graph_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Please retry again later.",
        );
        let after = format!("{}", faults.retry_after_secs.max(0.0));
        if let Ok(v) = HeaderValue::from_str(&after) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Some(response);
    }
    if faults.server_errors > 0 {
        faults.server_errors -= 1;
        return Some(graph_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "The service is temporarily unavailable.",
        ));
    }
    None
}

/// Checks the bearer token; the caller's client id.
fn authorize(sim: &Simulator, headers: &HeaderMap) -> Result<String, Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token is empty.",
            )
        })?;
    let world = sim.world();
    match world.tokens.get(token) {
        Some((client, expires, _)) if *expires > Timestamp::now() => Ok(client.clone()),
        Some(_) => Err(graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Lifetime validation failed, the token is expired.",
        )),
        None => Err(graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "IDX14100: JWT is not well formed.",
        )),
    }
}

/// Runs the gate and the token check shared by every Graph route.
async fn admit(sim: &Simulator, headers: &HeaderMap) -> Result<String, Response> {
    if let Some(fault) = gate(sim).await {
        return Err(fault);
    }
    sim.shared.stats.requests.fetch_add(1, Ordering::Relaxed);
    {
        let mut world = sim.world();
        if world.faults.expire_tokens {
            world.faults.expire_tokens = false;
            world.tokens.clear();
        }
    }
    authorize(sim, headers)
}

impl Simulator {
    /// The app registration `client_id`, or the token endpoint's answer that there is
    /// none (AADSTS700016).
    pub(crate) fn app(&self, client_id: &str) -> Result<&crate::SimApp, Response> {
        self.shared
            .config
            .apps
            .iter()
            .find(|a| a.client_id == client_id)
            .ok_or_else(|| {
                aad_error(
                    StatusCode::BAD_REQUEST,
                    "unauthorized_client",
                    700016,
                    &format!(
                        "Application with identifier '{client_id}' was not found in the directory."
                    ),
                )
            })
    }
}

/// An unguessable token for codes and access tokens.
pub(crate) fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

pub(crate) fn aad_error(status: StatusCode, error: &str, code: u32, text: &str) -> Response {
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {text}\r\nTrace ID: {}\r\nCorrelation ID: {}\r\nTimestamp: {}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), Timestamp::now().strftime("%Y-%m-%d %H:%M:%SZ")),
        "error_codes": [code],
        "timestamp": Timestamp::now().strftime("%Y-%m-%d %H:%M:%SZ").to_string(),
        "trace_id": uuid::Uuid::new_v4().to_string(),
        "correlation_id": uuid::Uuid::new_v4().to_string(),
    });
    (status, Json(body)).into_response()
}

async fn token(
    State(sim): State<Simulator>,
    Path(tenant): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The login host is not Graph: it shares the latency (the pacing layer), not
    // Graph's fault counts.
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();

    if form.get("grant_type").map(String::as_str) == Some("authorization_code")
        && matches!(tenant.as_str(), "organizations" | "common")
    {
        return crate::oidc::redeem(&sim, &headers, &form);
    }
    if tenant != sim.shared.config.tenant {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if !form.get("scope").is_some_and(|s| s.ends_with("/.default")) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            "The provided value for the input parameter 'scope' is not valid.",
        );
    }
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    let app = match sim.app(&client_id) {
        Ok(app) => app,
        Err(refused) => return refused,
    };
    if let Some(given) = form.get("client_secret") {
        if app.secret.as_deref() != Some(given.as_str()) {
            return aad_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                "Invalid client secret provided.",
            );
        }
        if app.secret_expired {
            return aad_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000222,
                "The provided client secret keys are expired.",
            );
        }
    } else if let Some(assertion) = form.get("client_assertion") {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        let audience = format!("http://{host}{}", uri.path());
        if let Err(why) = check_assertion(app, assertion, &audience) {
            return aad_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                700027,
                &format!("Client assertion failed signature validation: {why}"),
            );
        }
    } else {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain client_assertion or client_secret.",
        );
    }
    // An admin's consent grants the app its permissions (the token's `roles`); a
    // person's sign-in only makes the app known in the tenant: its tokens carry none.
    let roles: &[&str] = if app.consented || sim.world().consented.contains(&app.client_id) {
        &["Calendars.Read", "MailboxSettings.Read"]
    } else if sim.world().signed_in_apps.contains(&app.client_id) {
        &[]
    } else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            65001,
            "The user or administrator has not consented to use the application.",
        );
    };
    let claims = json!({
        "aud": form.get("scope").and_then(|s| s.strip_suffix("/.default")).unwrap_or_default(),
        "tid": sim.shared.config.tenant,
        "appid": app.client_id,
        "roles": roles,
        "jti": random_token(),
    });
    let token = format!(
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.{}.sim",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let lifetime = sim.shared.config.token_lifetime;
    let expires = Timestamp::now() + lifetime;
    let audience = form
        .get("scope")
        .and_then(|s| s.strip_suffix("/.default"))
        .unwrap_or_default()
        .to_owned();
    sim.world()
        .tokens
        .insert(token.clone(), (client_id, expires, audience));
    sim.shared.stats.tokens.fetch_add(1, Ordering::Relaxed);
    Json(json!({"token_type": "Bearer", "expires_in": lifetime.as_secs(), "ext_expires_in": lifetime.as_secs(), "access_token": token})).into_response()
}

fn check_assertion(app: &crate::SimApp, assertion: &str, audience: &str) -> Result<(), String> {
    let cert = app
        .certificate
        .as_ref()
        .ok_or("the app has no certificate")?;
    let header = jsonwebtoken::decode_header(assertion).map_err(|e| e.to_string())?;
    if header.x5t_s256.as_deref() != Some(cert.thumbprint_s256.as_str()) {
        return Err("x5t#S256 does not match the uploaded certificate".into());
    }
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(cert.public_key_pem.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[app.client_id.as_str()]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    let data =
        jsonwebtoken::decode::<Value>(assertion, &key, &validation).map_err(|e| e.to_string())?;
    if data.claims.get("sub").and_then(Value::as_str) != Some(app.client_id.as_str()) {
        return Err("sub is not the client id".into());
    }
    Ok(())
}

#[derive(Deserialize)]
struct ViewQuery {
    #[serde(rename = "startDateTime")]
    start: Option<String>,
    #[serde(rename = "endDateTime")]
    end: Option<String>,
    #[serde(rename = "$select")]
    select: Option<String>,
    #[serde(rename = "$top")]
    top: Option<String>,
    #[serde(rename = "$skiptoken")]
    skiptoken: Option<String>,
}

/// The zone a client asked for with `Prefer: outlook.timezone="…"`; UTC without one.
fn preferred_zone(prefer: Option<&str>) -> Result<(Zone, String), String> {
    let Some(prefer) = prefer else {
        return Ok((Zone::parse("UTC").map_err(|e| e.to_string())?, "UTC".into()));
    };
    let name = prefer
        .split(',')
        .find_map(|p| p.trim().strip_prefix("outlook.timezone="))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .unwrap_or_else(|| "UTC".into());
    let zone = Zone::parse_any(&name).map_err(|_| {
        format!("An invalid time zone '{name}' was specified in the Prefer header.")
    })?;
    Ok((zone, name))
}

/// A calendarView page, or an error response. Shared by the route and `$batch`.
fn view_page(
    sim: &Simulator,
    base: &str,
    user_key: &str,
    query: &ViewQuery,
    prefer: Option<&str>,
) -> Result<Box<RawValue>, Response> {
    let (start, end) = match (&query.start, &query.end) {
        (Some(s), Some(e)) => (s, e),
        _ => {
            return Err(graph_error(
                StatusCode::BAD_REQUEST,
                "ErrorInvalidParameter",
                "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
            ));
        }
    };
    let parse = |t: &str| {
        t.parse::<Timestamp>()
            .or_else(|_| {
                t.parse::<jiff::civil::DateTime>().map(|d| {
                    d.to_zoned(jiff::tz::TimeZone::UTC)
                        .map(|z| z.timestamp())
                        .unwrap_or(Timestamp::UNIX_EPOCH)
                })
            })
            .map_err(|_| {
                graph_error(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidParameter",
                    &format!(
                        "The value '{t}' of parameter 'StartDateTime/EndDateTime' is invalid."
                    ),
                )
            })
    };
    let (from, to) = (parse(start)?, parse(end)?);
    let (zone, zone_label) = preferred_zone(prefer)
        .map_err(|m| graph_error(StatusCode::BAD_REQUEST, "ErrorTimeZoneNotSupported", &m))?;
    let top = match query.top.as_deref() {
        None => sim.shared.config.default_page_size,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                graph_error(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidParameter",
                    "Invalid $top value.",
                )
            })?,
    };
    let skip = match &query.skiptoken {
        None => 0,
        Some(t) => URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.strip_prefix("skip:")
                    .and_then(|n| n.parse::<usize>().ok())
            })
            .ok_or_else(|| {
                graph_error(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidParameter",
                    "Invalid skip token.",
                )
            })?,
    };
    let select: Option<Vec<String>> = query
        .select
        .as_ref()
        .map(|s| s.split(',').map(|f| f.trim().to_owned()).collect());

    let world = sim.world();
    let user = world.directory.user(user_key).map_err(|_| {
        graph_error(
            StatusCode::NOT_FOUND,
            "ErrorInvalidUser",
            &format!("The requested user '{user_key}' is invalid."),
        )
    })?;
    if user.denied {
        return Err(graph_error(
            StatusCode::FORBIDDEN,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        ));
    }
    let mut instances: Vec<Instance<'_>> = user
        .events
        .values()
        .flat_map(|e| e.instances(from, to))
        .collect();
    instances.sort_by_key(|i| (i.when.span(&i.master.zone).0, i.id.clone()));
    let total = instances.len();
    let value: Vec<EventOut<'_>> = instances
        .iter()
        .skip(skip)
        .take(top)
        .map(|i| render(i, &zone, &zone_label, select.as_deref()))
        .collect();
    let bodies = value.iter().filter(|v| v.body.is_some()).count();
    sim.shared
        .stats
        .bodies_served
        .fetch_add(bodies as u64, Ordering::Relaxed);
    let mut page = PageOut {
        context: format!("{base}/v1.0/$metadata#users('{}')/calendarView", user.id),
        next_link: None,
        value,
    };
    if skip + top < total {
        let mut next = format!(
            "{base}/v1.0/users/{}/calendarView?startDateTime={}&endDateTime={}&$top={top}&$skiptoken={}",
            url::form_urlencoded::byte_serialize(user_key.as_bytes()).collect::<String>(),
            url::form_urlencoded::byte_serialize(start.as_bytes()).collect::<String>(),
            url::form_urlencoded::byte_serialize(end.as_bytes()).collect::<String>(),
            URL_SAFE_NO_PAD.encode(format!("skip:{}", skip + top)),
        );
        if let Some(s) = &query.select {
            next.push_str("&$select=");
            next.push_str(&url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>());
        }
        page.next_link = Some(next);
    }
    serde_json::value::to_raw_value(&page).map_err(|e| {
        graph_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            &e.to_string(),
        )
    })
}

/// Graph's default properties when no `$select` is given (body included, as Graph does).
const DEFAULT_PROPERTIES: &[&str] = &[
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "originalStartTimeZone",
    "originalEndTimeZone",
    "iCalUId",
    "reminderMinutesBeforeStart",
    "isReminderOn",
    "hasAttachments",
    "subject",
    "bodyPreview",
    "importance",
    "sensitivity",
    "isAllDay",
    "isCancelled",
    "isOrganizer",
    "responseRequested",
    "seriesMasterId",
    "showAs",
    "type",
    "webLink",
    "responseStatus",
    "body",
    "start",
    "end",
    "location",
    "organizer",
];

/// `dateTimeTimeZone` as Graph writes it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DateTimeOut<'a> {
    date_time: String,
    time_zone: &'a str,
}

/// An event on the wire; only the selected properties are filled in.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct EventOut<'a> {
    #[serde(rename = "@odata.etag")]
    etag: String,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_modified_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    change_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    categories: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_start_time_zone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_end_time_zone: Option<&'a str>,
    #[serde(rename = "iCalUId", skip_serializing_if = "Option::is_none")]
    ical_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reminder_minutes_before_start: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_reminder_on: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    has_attachments: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_preview: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    importance: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sensitivity: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_all_day: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_cancelled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_organizer: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_requested: Option<bool>,
    /// `Some(None)` writes `null`, as Graph does for single events.
    #[serde(skip_serializing_if = "Option::is_none")]
    series_master_id: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    show_as: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    web_link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_status: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<DateTimeOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<DateTimeOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    organizer: Option<Value>,
}

fn render<'a>(
    i: &'a Instance<'a>,
    zone: &Zone,
    zone_label: &'a str,
    select: Option<&[String]>,
) -> EventOut<'a> {
    let e = i.master;
    let want = |field: &str| match select {
        Some(fields) => fields.iter().any(|f| f == field),
        None => DEFAULT_PROPERTIES.contains(&field),
    };
    let dt = |t: Timestamp| {
        let z = t.to_zoned(zone.tz().clone());
        DateTimeOut {
            date_time: format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}",
                z.year(),
                z.month(),
                z.day(),
                z.hour(),
                z.minute(),
                z.second(),
                z.subsec_nanosecond() / 100
            ),
            time_zone: zone_label,
        }
    };
    let (start, end) = i.when.span(&e.zone);
    // A new change key and etag for every change, like Graph's (base64 of the change
    // counter and a piece of the id).
    let change_key = || {
        let mut bytes = i.change_key.to_be_bytes().to_vec();
        bytes.extend(i.id.bytes().rev().take(8));
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let mut out = EventOut {
        etag: format!("W/\"{}\"", change_key()),
        id: &i.id,
        ..EventOut::default()
    };
    let some = |field: &str| want(field).then_some(());
    out.created_date_time = some("createdDateTime").map(|_| graph_time(Timestamp::UNIX_EPOCH));
    out.last_modified_date_time =
        some("lastModifiedDateTime").map(|_| graph_time(Timestamp::now()));
    out.change_key = some("changeKey").map(|_| change_key());
    out.categories = some("categories").map(|_| e.spec.categories.as_slice());
    out.original_start_time_zone = some("originalStartTimeZone").map(|_| e.zone_name.as_str());
    out.original_end_time_zone = some("originalEndTimeZone").map(|_| e.zone_name.as_str());
    out.ical_uid = some("iCalUId").map(|_| {
        format!(
            "040000008200E00074C5B7101A82E008{}",
            &crate::world::graph_id(&e.id)[5..25]
        )
    });
    out.reminder_minutes_before_start = some("reminderMinutesBeforeStart").map(|_| 15);
    out.is_reminder_on = some("isReminderOn").map(|_| true);
    out.has_attachments = some("hasAttachments").map(|_| false);
    out.subject = some("subject").map(|_| i.subject);
    out.body_preview = some("bodyPreview").map(|_| e.spec.body.chars().take(255).collect());
    out.importance = some("importance").map(|_| "normal");
    out.sensitivity = some("sensitivity").map(|_| e.spec.sensitivity.as_str());
    out.is_all_day = some("isAllDay").map(|_| matches!(i.when, When::AllDay { .. }));
    out.is_cancelled = some("isCancelled").map(|_| i.is_cancelled);
    out.is_organizer = some("isOrganizer").map(|_| e.spec.response == "organizer");
    out.response_requested = some("responseRequested").map(|_| true);
    out.series_master_id =
        some("seriesMasterId").map(|_| (i.kind != "singleInstance").then_some(e.id.as_str()));
    out.show_as = some("showAs").map(|_| i.show_as);
    out.kind = some("type").map(|_| i.kind);
    out.web_link = some("webLink").map(|_| {
        format!(
            "https://outlook.office365.com/owa/?itemid={}&exvsurl=1&path=/calendar/item",
            i.id
        )
    });
    out.response_status = some("responseStatus")
        .map(|_| json!({"response": e.spec.response, "time": "0001-01-01T00:00:00Z"}));
    out.body = some("body").map(|_| json!({"contentType": "html", "content": format!("<html><body>{}</body></html>", e.spec.body)}));
    out.start = some("start").map(|_| dt(start));
    out.end = some("end").map(|_| dt(end));
    out.location = some("location").map(|_| json!({"displayName": e.spec.location, "locationType": "default", "uniqueId": e.spec.location, "uniqueIdType": "private"}));
    out.organizer = some("organizer").map(
        |_| json!({"emailAddress": {"name": "Organizer", "address": "organizer@contoso.example"}}),
    );
    out
}

/// A calendarView page on the wire.
#[derive(Serialize)]
struct PageOut<'a> {
    #[serde(rename = "@odata.context")]
    context: String,
    #[serde(rename = "@odata.nextLink", skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
    value: Vec<EventOut<'a>>,
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

async fn calendar_view(
    State(sim): State<Simulator>,
    Path(user): Path<String>,
    Query(query): Query<ViewQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(in_flight) = sim.enter(&user) else {
        return mailbox_busy();
    };
    if let Err(r) = admit(&sim, &headers).await {
        return r;
    }
    let prefer = headers.get("prefer").and_then(|v| v.to_str().ok());
    let mut response = match view_page(&sim, &base_url(&headers), &user, &query, prefer) {
        Ok(page) => json_text(page),
        Err(r) => r,
    };
    response
        .extensions_mut()
        .insert(std::sync::Arc::new(in_flight));
    response
}

async fn mailbox_settings(
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
}

async fn batch(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
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
    let entered: Vec<Option<crate::InFlight>> = request
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

/// Graph's answer to a fifth concurrent request against one mailbox.
fn mailbox_busy() -> Response {
    let mut response = graph_error(
        StatusCode::TOO_MANY_REQUESTS,
        "ApplicationThrottled",
        "Application is over its MailboxConcurrency limit.",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
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
    if item.method != "GET" || parts.len() != 3 || parts[0] != "users" || parts[2] != "calendarView"
    {
        return (
            400,
            json_headers,
            raw(
                json!({"error": {"code": "BadRequest", "message": "The simulator batches only GET /users/{id}/calendarView."}}),
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionRequest {
    change_type: String,
    notification_url: String,
    #[serde(default)]
    lifecycle_notification_url: Option<String>,
    resource: String,
    expiration_date_time: String,
    #[serde(default)]
    client_state: Option<String>,
}

/// Graph's handshake: POST `url?validationToken=…`; the answer must be 200 with the
/// token as plain text within ten seconds.
async fn validate_endpoint(sim: &Simulator, url: &str) -> Result<(), String> {
    let token = format!(
        "Validation: Testing client application reachability for subscription Request-Id: {}",
        uuid::Uuid::new_v4()
    );
    let mut target = url::Url::parse(url).map_err(|_| format!("'{url}' is not a URL"))?;
    target
        .query_pairs_mut()
        .append_pair("validationToken", &token);
    let answer = sim
        .shared
        .http
        .post(target)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| format!("Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request. ({})", e.without_url()))?;
    if !answer.status().is_success() {
        return Err(format!(
            "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request. (answered {})",
            answer.status()
        ));
    }
    let body = answer.text().await.unwrap_or_default();
    if body != token {
        return Err("Subscription validation request failed. Response must exactly match validationToken query parameter.".into());
    }
    Ok(())
}

async fn create_subscription(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let client_id = match admit(&sim, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let request: SubscriptionRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                &format!("Invalid subscription payload: {e}"),
            );
        }
    };
    let now = Timestamp::now();
    let Ok(expires) = request.expiration_date_time.parse::<Timestamp>() else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "expirationDateTime is not a valid date.",
        );
    };
    if expires <= now || expires > now + jiff::SignedDuration::from_mins(10_080) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "Subscription expiration can only be 10070 minutes in the future.",
        );
    }
    if request.client_state.as_ref().is_some_and(|c| c.len() > 128) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "clientState is limited to 128 characters.",
        );
    }
    let resource = request.resource.trim_start_matches('/').to_owned();
    let parts: Vec<&str> = resource.split('/').collect();
    if parts.len() != 3
        || !parts[0].eq_ignore_ascii_case("users")
        || !parts[2].eq_ignore_ascii_case("events")
    {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "The simulator takes subscriptions on /users/{id}/events.",
        );
    }
    let user_id = match sim.world().directory.user(parts[1]) {
        Ok(u) if !u.denied => u.id.clone(),
        Ok(_) => {
            return graph_error(
                StatusCode::FORBIDDEN,
                "ExtensionError",
                "Operation: Create; Exception: [Status Code: Forbidden; Reason: Access is denied.]",
            );
        }
        Err(_) => {
            return graph_error(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                "Resource not found for the segment 'users'.",
            );
        }
    };
    for url in
        std::iter::once(&request.notification_url).chain(request.lifecycle_notification_url.iter())
    {
        if let Err(why) = validate_endpoint(&sim, url).await {
            return graph_error(StatusCode::BAD_REQUEST, "ValidationError", &why);
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    let subscription = Subscription {
        id: id.clone(),
        user_id,
        resource: request.resource.clone(),
        change_type: request.change_type.clone(),
        notification_url: request.notification_url.clone(),
        lifecycle_url: request.lifecycle_notification_url.clone(),
        client_state: request.client_state.clone(),
        expires,
        client_id,
    };
    let body = subscription_json(&base_url(&headers), &subscription);
    sim.world().subscriptions.insert(id, subscription);
    (StatusCode::CREATED, Json(body)).into_response()
}

fn subscription_json(base: &str, s: &Subscription) -> Value {
    json!({
        "@odata.context": format!("{base}/v1.0/$metadata#subscriptions/$entity"),
        "id": s.id,
        "resource": s.resource,
        "applicationId": s.client_id,
        "changeType": s.change_type,
        "clientState": s.client_state,
        "notificationUrl": s.notification_url,
        "notificationQueryOptions": null,
        "lifecycleNotificationUrl": s.lifecycle_url,
        "expirationDateTime": graph_time(s.expires),
        "creatorId": uuid::Uuid::new_v4().to_string(),
        "includeResourceData": null,
        "latestSupportedTlsVersion": "v1_2",
        "encryptionCertificate": null,
        "encryptionCertificateId": null,
        "notificationUrlAppId": null,
        "notificationContentType": "application/json",
    })
}

async fn renew_subscription(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = admit(&sim, &headers).await {
        return r;
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Renew {
        expiration_date_time: String,
    }
    let Ok(renew) = serde_json::from_slice::<Renew>(&body) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "expirationDateTime is required.",
        );
    };
    let Ok(expires) = renew.expiration_date_time.parse::<Timestamp>() else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "expirationDateTime is not a valid date.",
        );
    };
    if expires > Timestamp::now() + jiff::SignedDuration::from_mins(10_080) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "Subscription expiration can only be 10070 minutes in the future.",
        );
    }
    let mut world = sim.world();
    let Some(sub) = world.subscriptions.get_mut(&id) else {
        return graph_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!("The object was not found. subscription '{id}'"),
        );
    };
    sub.expires = expires;
    let body = subscription_json(&base_url(&headers), sub);
    Json(body).into_response()
}

async fn delete_subscription(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = admit(&sim, &headers).await {
        return r;
    }
    match sim.world().subscriptions.remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => graph_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!("The object was not found. subscription '{id}'"),
        ),
    }
}

fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": e.to_string()})),
        )
            .into_response()
    })
}

async fn control_add_user(State(sim): State<Simulator>, body: Bytes) -> Response {
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

async fn control_add_person(State(sim): State<Simulator>, body: Bytes) -> Response {
    let person: crate::SimPerson = match parse_json(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let oid = sim.add_person(person);
    (StatusCode::CREATED, Json(json!({ "oid": oid }))).into_response()
}

async fn control_users(State(sim): State<Simulator>) -> Response {
    let users: Vec<Value> = sim
        .users()
        .into_iter()
        .map(|p| json!({"id": p.id, "upn": p.upn, "displayName": p.name}))
        .collect();
    Json(users).into_response()
}

async fn control_create_event(
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

async fn control_update_event(
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

async fn control_get_event(
    State(sim): State<Simulator>,
    Path((user, id)): Path<(String, String)>,
) -> Response {
    match sim.event(&user, &id) {
        Ok(spec) => Json(spec).into_response(),
        Err(e) => spec_error(e),
    }
}

async fn control_delete_event(
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

async fn control_change_occurrence(
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

async fn control_delete_occurrence(
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

async fn control_access(
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

async fn control_get_faults(State(sim): State<Simulator>) -> Response {
    Json(sim.faults()).into_response()
}

async fn control_set_faults(State(sim): State<Simulator>, body: Bytes) -> Response {
    let faults: Faults = match parse_json(&body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    sim.set_faults(faults);
    StatusCode::NO_CONTENT.into_response()
}

async fn control_subscriptions(State(sim): State<Simulator>) -> Response {
    let subs: Vec<Value> = sim
        .subscriptions()
        .into_iter()
        .map(|(id, user, expires)| json!({"id": id, "user": user, "expirationDateTime": graph_time(expires)}))
        .collect();
    Json(subs).into_response()
}

async fn control_lifecycle(
    State(sim): State<Simulator>,
    Path((id, event)): Path<(String, String)>,
) -> Response {
    match sim.lifecycle(&id, &event) {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => spec_error(e),
    }
}

async fn control_stats(State(sim): State<Simulator>) -> Response {
    Json(sim.stats()).into_response()
}
