//! `calendarView`: the time window, `$select`, paging and `outlook.timezone`, and the
//! events in Graph's wire shape. The route and `$batch` share one page builder.

use std::sync::atomic::Ordering;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use kalsync_core::Zone;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::admission::admit;
use super::{base_url, graph_error, json_text};
use crate::world::{Instance, When};
use crate::{Simulator, graph_time};

#[derive(Deserialize)]
pub(super) struct ViewQuery {
    #[serde(rename = "startDateTime")]
    pub(super) start: Option<String>,
    #[serde(rename = "endDateTime")]
    pub(super) end: Option<String>,
    #[serde(rename = "$select")]
    pub(super) select: Option<String>,
    #[serde(rename = "$top")]
    pub(super) top: Option<String>,
    #[serde(rename = "$skiptoken")]
    pub(super) skiptoken: Option<String>,
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
pub(super) fn view_page(
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

pub(super) async fn calendar_view(
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
