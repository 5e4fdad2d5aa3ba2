//! Graph's JSON as it comes over the wire (events, mailbox settings, errors), and its
//! mapping to domain bookings.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use kalsync_core::{
    Booking, BookingId, BookingTime, FreeBusy, ResponseStatus, Sensitivity, WorkingHours, Zone,
};
use serde::{Deserialize, Serialize};

/// The event properties read from Graph: exactly what SPEC §3.1 needs, never `body`.
pub const EVENT_PROPERTIES: &[&str] = &[
    "id",
    "changeKey",
    "start",
    "end",
    "isAllDay",
    "showAs",
    "sensitivity",
    "isCancelled",
    "responseStatus",
    "categories",
    "type",
    "seriesMasterId",
    "originalStartTimeZone",
];

/// The `$select` value for a read: [`EVENT_PROPERTIES`], plus `subject` and `location`
/// only when the instance needs them.
pub fn select(subject: bool, location: bool) -> String {
    let mut fields: Vec<&str> = EVENT_PROPERTIES.to_vec();
    if subject {
        fields.push("subject");
    }
    if location {
        fields.push("location");
    }
    fields.join(",")
}

/// `dateTimeTimeZone`: a local reading (seven fractional digits) and the zone it is in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DateTimeTimeZone {
    /// e.g. `2026-11-23T11:00:00.0000000`.
    pub date_time: String,
    /// `UTC`, a Windows id or an IANA name.
    pub time_zone: String,
}

impl DateTimeTimeZone {
    /// Graph's format for an instant shown in `zone`: seven fractional digits, no offset.
    pub fn new(t: Timestamp, zone: &Zone, zone_label: &str) -> Self {
        let local = t.to_zoned(zone.tz().clone());
        let ticks = local.subsec_nanosecond() / 100;
        DateTimeTimeZone {
            date_time: format!("{}.{ticks:07}", local.strftime("%Y-%m-%dT%H:%M:%S")),
            time_zone: zone_label.to_owned(),
        }
    }

    fn local(&self) -> Result<DateTime, EventError> {
        self.date_time
            .trim()
            .parse::<DateTime>()
            .map_err(|_| EventError::BadDateTime(self.date_time.clone()))
    }

    fn zone(&self) -> Result<Zone, EventError> {
        Zone::parse_any(&self.time_zone)
            .map_err(|_| EventError::UnknownTimeZone(self.time_zone.clone()))
    }

    /// The instant it names.
    pub fn instant(&self) -> Result<Timestamp, EventError> {
        // Kalsync asks for UTC; skip the zone lookup for it.
        if self.time_zone == "UTC" {
            return self
                .local()?
                .to_zoned(jiff::tz::TimeZone::UTC)
                .map(|z| z.timestamp())
                .map_err(|_| EventError::BadDateTime(self.date_time.clone()));
        }
        let zone = self.zone()?;
        self.local()?
            .to_zoned(zone.tz().clone())
            .map(|z| z.timestamp())
            .map_err(|_| EventError::BadDateTime(self.date_time.clone()))
    }
}

/// `responseStatus`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseStatusJson {
    /// `none`, `organizer`, `tentativelyAccepted`, `accepted`, `declined`, `notResponded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// `location` (only its display name is read).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationJson {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// A Graph event, with the properties Kalsync selects. Other properties are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// ETag.
    #[serde(
        rename = "@odata.etag",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub etag: Option<String>,
    /// Id.
    pub id: String,
    /// Change key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_key: Option<String>,
    /// Subject, when selected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTimeTimeZone>,
    /// End.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTimeTimeZone>,
    /// All-day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_all_day: Option<bool>,
    /// `free`, `tentative`, `busy`, `oof`, `workingElsewhere`, `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_as: Option<String>,
    /// `normal`, `personal`, `private`, `confidential`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<String>,
    /// Cancelled by the organiser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_cancelled: Option<bool>,
    /// The owner's response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<ResponseStatusJson>,
    /// Categories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    /// `singleInstance`, `occurrence`, `exception`, `seriesMaster`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// The series master, for occurrences and exceptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_master_id: Option<String>,
    /// The zone the organiser booked it in (Windows id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_start_time_zone: Option<String>,
    /// Location, when selected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<LocationJson>,
}

/// What is wrong with one event Graph sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// No or a bad id.
    #[error("the event has no usable id")]
    BadId,
    /// Not an event object at all (a field of the wrong type, or missing `id`).
    #[error("not an event: {0}")]
    NotAnEvent(String),
    /// Start or end missing.
    #[error("the event has no {0}")]
    Missing(&'static str),
    /// A date-time that is not `YYYY-MM-DDTHH:MM:SS[.fffffff]`.
    #[error("`{0}` is not a Graph dateTime")]
    BadDateTime(String),
    /// A zone neither IANA nor Windows knows.
    #[error("unknown time zone `{0}`")]
    UnknownTimeZone(String),
    /// A `showAs` value this version does not know.
    #[error("unknown showAs `{0}`")]
    UnknownShowAs(String),
    /// A `sensitivity` value this version does not know.
    #[error("unknown sensitivity `{0}`")]
    UnknownSensitivity(String),
    /// A response value this version does not know.
    #[error("unknown response `{0}`")]
    UnknownResponse(String),
    /// End before start.
    #[error("the event ends before it starts")]
    EndBeforeStart,
}

impl Event {
    /// The booking this event is. All-day events keep their calendar dates in the
    /// mailbox's zone: a midnight reading is taken as it stands, anything else (Graph
    /// shifts all-day events into the zone a client asked for) is read back in the
    /// event's own zone, else the mailbox's.
    pub fn to_booking(&self, mailbox_zone: &Zone) -> Result<Booking, EventError> {
        self.clone().into_booking(mailbox_zone).map_err(|(_, e)| e)
    }

    /// [`Event::to_booking`], taking the event apart instead of copying it; a refused
    /// event gives its id back with the error.
    pub fn into_booking(self, mailbox_zone: &Zone) -> Result<Booking, (String, EventError)> {
        // Everything that can fail is checked on borrowed fields first, so the id is
        // still at hand to name the event when it is refused.
        let checked = (|| {
            let start = self.start.as_ref().ok_or(EventError::Missing("start"))?;
            let end = self.end.as_ref().ok_or(EventError::Missing("end"))?;
            let time = if self.is_all_day.unwrap_or(false) {
                let own_zone = self
                    .original_start_time_zone
                    .as_deref()
                    .and_then(|z| Zone::parse_any(z).ok())
                    .unwrap_or_else(|| mailbox_zone.clone());
                let date_of = |d: &DateTimeTimeZone| -> Result<Date, EventError> {
                    let local = d.local()?;
                    if local.time() == jiff::civil::Time::midnight() {
                        Ok(local.date())
                    } else {
                        Ok(d.instant()?.to_zoned(own_zone.tz().clone()).date())
                    }
                };
                BookingTime::all_day(date_of(start)?, date_of(end)?)
                    .map_err(|_| EventError::EndBeforeStart)?
            } else {
                BookingTime::timed(start.instant()?, end.instant()?)
                    .map_err(|_| EventError::EndBeforeStart)?
            };
            let free_busy = match self.show_as.as_deref() {
                None => FreeBusy::Busy,
                Some(s) => s
                    .parse()
                    .map_err(|_| EventError::UnknownShowAs(s.to_owned()))?,
            };
            let sensitivity = match self.sensitivity.as_deref() {
                None => Sensitivity::Normal,
                Some(s) => s
                    .parse()
                    .map_err(|_| EventError::UnknownSensitivity(s.to_owned()))?,
            };
            let response = match self
                .response_status
                .as_ref()
                .and_then(|r| r.response.as_deref())
            {
                None => ResponseStatus::None,
                Some(r) => r
                    .parse()
                    .map_err(|_| EventError::UnknownResponse(r.to_owned()))?,
            };
            Ok((time, free_busy, sensitivity, response))
        })();
        let (time, free_busy, sensitivity, response) = match checked {
            Ok(c) => c,
            Err(e) => return Err((self.id, e)),
        };
        let id = match BookingId::parse(self.id) {
            Ok(id) => id,
            Err(_) => return Err((String::new(), EventError::BadId)),
        };
        let mut booking = Booking::new(id, time);
        booking.series_id = self.series_master_id.and_then(|s| BookingId::parse(s).ok());
        booking.change_key = self.change_key;
        booking.time_zone = self.original_start_time_zone;
        booking.free_busy = free_busy;
        booking.sensitivity = sensitivity;
        booking.cancelled = self.is_cancelled.unwrap_or(false);
        booking.response = response;
        booking.categories = self.categories.unwrap_or_default();
        booking.subject = self.subject;
        booking.location = self
            .location
            .and_then(|l| l.display_name)
            .filter(|l| !l.is_empty());
        Ok(booking)
    }
}

/// A collection page: `value` and the OData annotations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// `@odata.context`.
    #[serde(
        rename = "@odata.context",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub context: Option<String>,
    /// `@odata.nextLink`: the next page.
    #[serde(
        rename = "@odata.nextLink",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub next_link: Option<String>,
    /// `@odata.deltaLink`.
    #[serde(
        rename = "@odata.deltaLink",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub delta_link: Option<String>,
    /// The items.
    pub value: Vec<T>,
}

/// `workingHours` of `mailboxSettings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkingHoursJson {
    /// `monday` …
    #[serde(default)]
    pub days_of_week: Vec<String>,
    /// `08:00:00.0000000`.
    pub start_time: String,
    /// `17:00:00.0000000`.
    pub end_time: String,
    /// `{ "name": "W. Europe Standard Time" }` or a custom zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<serde_json::Value>,
}

/// `mailboxSettings` (the parts Kalsync reads).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailboxSettingsJson {
    /// `@odata.context`.
    #[serde(
        rename = "@odata.context",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub context: Option<String>,
    /// The mailbox's zone (Windows id or IANA name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Outlook working hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_hours: Option<WorkingHoursJson>,
}

/// A mailbox's own zone and working hours, as far as they can be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxSettings {
    /// The mailbox's zone, when it is a zone CLDR or IANA knows.
    pub zone: Option<Zone>,
    /// Outlook working hours, when set and readable.
    pub working_hours: Option<WorkingHours>,
    /// The zone the working hours are in (Outlook keeps it apart from the mailbox's).
    pub working_hours_zone: Option<Zone>,
}

impl MailboxSettingsJson {
    /// What can be used of it. A custom zone (a bias and rules, no name) is not a zone
    /// Kalsync can compute DST with, so the instance's zone stands in for it.
    pub fn read(&self) -> MailboxSettings {
        let zone = self
            .time_zone
            .as_deref()
            .and_then(|z| Zone::parse_any(z).ok());
        let working_hours = self.working_hours.as_ref().and_then(|wh| {
            let days = wh
                .days_of_week
                .iter()
                .map(|d| WorkingHours::parse_day(d))
                .collect::<Result<Vec<_>, _>>()
                .ok()?;
            let time = |t: &str| WorkingHours::parse_time(t.get(..5).unwrap_or(t)).ok();
            WorkingHours::new(days, time(&wh.start_time)?, time(&wh.end_time)?).ok()
        });
        let working_hours_zone = self
            .working_hours
            .as_ref()
            .and_then(|wh| wh.time_zone.as_ref())
            .and_then(|tz| tz.get("name"))
            .and_then(|n| n.as_str())
            .and_then(|n| Zone::parse_any(n).ok());
        MailboxSettings {
            zone,
            working_hours,
            working_hours_zone,
        }
    }
}

impl MailboxSettings {
    /// The instance's settings for this mailbox: its working hours, read in their own
    /// zone (Outlook keeps it apart from the mailbox's), and its zone.
    pub fn apply<'a>(
        &self,
        settings: &'a kalsync_core::InstanceSettings,
    ) -> std::borrow::Cow<'a, kalsync_core::InstanceSettings> {
        let zone = self.working_hours_zone.as_ref().or(self.zone.as_ref());
        settings.for_mailbox(zone, self.working_hours.as_ref())
    }
}

/// `automaticRepliesSetting`: its status and schedule only. The reply texts
/// (`internalReplyMessage`, `externalReplyMessage`) are not fields: the parser passes
/// over them and nothing keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutomaticRepliesJson {
    /// `disabled`, `alwaysEnabled` or `scheduled`.
    pub status: String,
    /// When scheduled replies start.
    #[serde(default)]
    pub scheduled_start_date_time: Option<DateTimeTimeZone>,
    /// When they end.
    #[serde(default)]
    pub scheduled_end_date_time: Option<DateTimeTimeZone>,
}

impl AutomaticRepliesJson {
    /// What the setting says, or why it cannot be read (a schedule without times, or
    /// ending before it starts).
    pub fn read(&self) -> Result<kalsync_core::AutomaticReplies, String> {
        use kalsync_core::AutomaticReplies;
        match self.status.as_str() {
            "disabled" => Ok(AutomaticReplies::Off),
            "alwaysEnabled" => Ok(AutomaticReplies::Always),
            "scheduled" => {
                let (Some(start), Some(end)) = (
                    &self.scheduled_start_date_time,
                    &self.scheduled_end_date_time,
                ) else {
                    return Err("scheduled automatic replies without a start and an end".into());
                };
                let start = start.instant().map_err(|e| e.to_string())?;
                let end = end.instant().map_err(|e| e.to_string())?;
                AutomaticReplies::scheduled(start, end)
            }
            other => Err(format!("automatic replies with status `{other}`")),
        }
    }
}

/// A `$batch` answer.

#[derive(Debug, Serialize, Deserialize)]
pub struct BatchResponse {
    /// One per request, in any order.
    pub responses: Vec<BatchItem>,
}

/// One answer inside a `$batch`.
#[derive(Debug, Serialize, Deserialize)]
pub struct BatchItem {
    /// The request's id.
    pub id: String,
    /// HTTP status.
    pub status: u16,
    /// Headers (`Retry-After` for throttled items).
    #[serde(default)]
    pub headers: std::collections::HashMap<String, String>,
    /// Body, kept as text until it is known what it is.
    #[serde(default)]
    pub body: Option<Box<serde_json::value::RawValue>>,
}

/// Graph's error body: `{"error": {"code", "message", "innerError"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The error inside [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// e.g. `TooManyRequests`, `ErrorAccessDenied`.
    pub code: String,
    /// Human text.
    #[serde(default)]
    pub message: String,
    /// Request id and date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner_error: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stockholm() -> Zone {
        Zone::parse("Europe/Stockholm").expect("zone")
    }

    fn dt(date_time: &str, time_zone: &str) -> Option<DateTimeTimeZone> {
        Some(DateTimeTimeZone {
            date_time: date_time.into(),
            time_zone: time_zone.into(),
        })
    }

    #[test]
    fn select_never_asks_for_the_body() {
        for (s, l) in [(false, false), (true, true)] {
            let fields = select(s, l);
            assert!(
                !fields.split(',').any(|f| f == "body" || f == "bodyPreview"),
                "{fields}"
            );
        }
        assert!(!select(false, false).contains("subject"));
        assert!(select(true, false).contains("subject"));
    }

    #[test]
    fn timed_events_read_in_any_zone_graph_names() {
        let e = Event {
            id: "AAMk=".into(),
            start: dt("2017-04-21T10:00:00.0000000", "Pacific Standard Time"),
            end: dt("2017-04-21T12:00:00.0000000", "Pacific Standard Time"),
            show_as: Some("workingElsewhere".into()),
            response_status: Some(ResponseStatusJson {
                response: Some("tentativelyAccepted".into()),
                time: None,
            }),
            ..Event::default()
        };
        let b = e.to_booking(&stockholm()).expect("booking");
        assert_eq!(
            b.time,
            BookingTime::Timed {
                start: "2017-04-21T17:00:00Z".parse().expect("t"),
                end: "2017-04-21T19:00:00Z".parse().expect("t"),
            }
        );
        assert_eq!(b.free_busy, FreeBusy::WorkingElsewhere);
        assert_eq!(b.response, ResponseStatus::Tentative);
    }

    #[test]
    fn all_day_events_keep_their_dates_whether_or_not_graph_shifted_them() {
        let shifted = Event {
            id: "a".into(),
            is_all_day: Some(true),
            start: dt("2026-11-29T23:00:00.0000000", "UTC"),
            end: dt("2026-12-04T23:00:00.0000000", "UTC"),
            original_start_time_zone: Some("W. Europe Standard Time".into()),
            ..Event::default()
        };
        let floating = Event {
            start: dt("2026-11-30T00:00:00.0000000", "UTC"),
            end: dt("2026-12-05T00:00:00.0000000", "UTC"),
            ..shifted.clone()
        };
        let expected = BookingTime::AllDay {
            first: "2026-11-30".parse().expect("d"),
            end: "2026-12-05".parse().expect("d"),
        };
        assert_eq!(shifted.to_booking(&stockholm()).expect("b").time, expected);
        assert_eq!(floating.to_booking(&stockholm()).expect("b").time, expected);
    }

    #[test]
    fn unknown_values_are_typed_errors() {
        let base = Event {
            id: "a".into(),
            start: dt("2026-11-23T10:00:00.0000000", "UTC"),
            end: dt("2026-11-23T11:00:00.0000000", "UTC"),
            ..Event::default()
        };
        let e = Event {
            show_as: Some("sleeping".into()),
            ..base.clone()
        };
        assert_eq!(
            e.to_booking(&stockholm()),
            Err(EventError::UnknownShowAs("sleeping".into()))
        );
        let e = Event {
            start: None,
            ..base.clone()
        };
        assert_eq!(
            e.to_booking(&stockholm()),
            Err(EventError::Missing("start"))
        );
        let e = Event {
            start: dt("yesterday", "UTC"),
            ..base.clone()
        };
        assert!(matches!(
            e.to_booking(&stockholm()),
            Err(EventError::BadDateTime(_))
        ));
        let e = Event {
            end: dt("2026-11-23T11:00:00.0000000", "Mars Standard Time"),
            ..base.clone()
        };
        assert!(matches!(
            e.to_booking(&stockholm()),
            Err(EventError::UnknownTimeZone(_))
        ));
        let e = Event {
            end: dt("2026-11-23T09:00:00.0000000", "UTC"),
            ..base
        };
        assert_eq!(e.to_booking(&stockholm()), Err(EventError::EndBeforeStart));
    }

    #[test]
    fn date_times_are_written_with_seven_fractional_digits() {
        let t: Timestamp = "2026-11-23T11:00:00Z".parse().expect("t");
        let d = DateTimeTimeZone::new(t, &Zone::parse("UTC").expect("utc"), "UTC");
        assert_eq!(d.date_time, "2026-11-23T11:00:00.0000000");
        assert_eq!(d.instant(), Ok(t));
    }
}
