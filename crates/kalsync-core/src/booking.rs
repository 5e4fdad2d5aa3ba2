//! Bookings: one calendar item as a source reports it (SPEC §3.1), and nothing more.
//!
//! A booking never carries a body. The subject is optional: sources read it only when a
//! rule or the instance's settings need it.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// The source's id of a booking (EWS `ItemId`, Graph event id, iCalendar UID + recurrence id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BookingId(String);

impl BookingId {
    /// Parses an id: non-empty, at most 1024 bytes, no control characters.
    pub fn parse(id: impl Into<String>) -> Result<Self, BookingError> {
        let id = id.into();
        if id.is_empty() {
            return Err(BookingError::EmptyId);
        }
        if id.len() > 1024 || id.chars().any(char::is_control) {
            return Err(BookingError::InvalidId);
        }
        Ok(Self(id))
    }

    /// The id as the source wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BookingId {
    type Error = BookingError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<BookingId> for String {
    fn from(value: BookingId) -> Self {
        value.0
    }
}

impl fmt::Display for BookingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Free/busy status ("show as") of a booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreeBusy {
    /// Free: the booking does not block the user's time.
    Free,
    /// Tentative.
    Tentative,
    /// Busy.
    Busy,
    /// Out of office (`OOF`).
    #[serde(alias = "out_of_office")]
    Oof,
    /// Working elsewhere.
    #[serde(alias = "workingElsewhere")]
    WorkingElsewhere,
    /// The source did not say (Graph `unknown`, EWS `NoData`).
    Unknown,
}

impl FreeBusy {
    /// Every status, in a stable order.
    pub const ALL: [FreeBusy; 6] = [
        FreeBusy::Free,
        FreeBusy::Tentative,
        FreeBusy::Busy,
        FreeBusy::Oof,
        FreeBusy::WorkingElsewhere,
        FreeBusy::Unknown,
    ];

    /// The name used in rules files and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FreeBusy::Free => "free",
            FreeBusy::Tentative => "tentative",
            FreeBusy::Busy => "busy",
            FreeBusy::Oof => "oof",
            FreeBusy::WorkingElsewhere => "working_elsewhere",
            FreeBusy::Unknown => "unknown",
        }
    }
}

impl FromStr for FreeBusy {
    type Err = BookingError;

    /// Accepts the spellings of every source: EWS (`OOF`, `WorkingElsewhere`, `NoData`),
    /// Graph (`oof`, `workingElsewhere`, `unknown`), iCalendar's
    /// `X-MICROSOFT-CDO-BUSYSTATUS` and this crate's own snake case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let folded: String = s
            .trim()
            .chars()
            .filter(|c| *c != '_' && *c != '-' && *c != ' ')
            .flat_map(char::to_lowercase)
            .collect();
        Ok(match folded.as_str() {
            "free" => FreeBusy::Free,
            "tentative" => FreeBusy::Tentative,
            "busy" => FreeBusy::Busy,
            "oof" | "outofoffice" | "away" => FreeBusy::Oof,
            "workingelsewhere" => FreeBusy::WorkingElsewhere,
            "unknown" | "nodata" => FreeBusy::Unknown,
            _ => return Err(BookingError::UnknownFreeBusy(s.to_owned())),
        })
    }
}

/// Sensitivity of a booking.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// Normal (iCalendar `PUBLIC`).
    #[default]
    Normal,
    /// Personal.
    Personal,
    /// Private: never synced unless the instance says `private = "anonymous"`.
    Private,
    /// Confidential: treated as private.
    Confidential,
}

impl Sensitivity {
    /// Whether SPEC §3.2's private rule applies.
    pub fn is_private(self) -> bool {
        matches!(self, Sensitivity::Private | Sensitivity::Confidential)
    }
}

impl FromStr for Sensitivity {
    type Err = BookingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "normal" | "public" | "" => Sensitivity::Normal,
            "personal" => Sensitivity::Personal,
            "private" => Sensitivity::Private,
            "confidential" => Sensitivity::Confidential,
            _ => return Err(BookingError::UnknownSensitivity(s.to_owned())),
        })
    }
}

/// The mailbox owner's response to the booking.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ResponseStatus {
    /// The source did not say (a plain appointment, or an export without attendees).
    #[default]
    None,
    /// The owner organised the meeting.
    Organizer,
    /// Accepted.
    Accepted,
    /// Tentatively accepted.
    Tentative,
    /// Declined.
    Declined,
    /// Not responded yet.
    NotResponded,
}

impl FromStr for ResponseStatus {
    type Err = BookingError;

    /// Accepts EWS (`Organizer`, `Accept`, `Tentative`, `Decline`, `NoResponseReceived`,
    /// `Unknown`), Graph (`organizer`, `accepted`, `tentativelyAccepted`, `declined`,
    /// `notResponded`, `none`) and iCalendar `PARTSTAT` spellings.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let folded: String = s
            .trim()
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect();
        Ok(match folded.as_str() {
            "none" | "unknown" | "" => ResponseStatus::None,
            "organizer" | "organiser" => ResponseStatus::Organizer,
            "accept" | "accepted" => ResponseStatus::Accepted,
            "tentative" | "tentativelyaccepted" => ResponseStatus::Tentative,
            "decline" | "declined" => ResponseStatus::Declined,
            "notresponded" | "noresponsereceived" | "needsaction" => ResponseStatus::NotResponded,
            _ => return Err(BookingError::UnknownResponse(s.to_owned())),
        })
    }
}

/// When a booking takes place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BookingTime {
    /// A timed booking `[start, end)`.
    Timed {
        /// Start instant.
        start: Timestamp,
        /// End instant (not before `start`).
        end: Timestamp,
    },
    /// An all-day booking covering the calendar dates `[first, end)`, taken in the
    /// mailbox's time zone — never shifted by UTC arithmetic.
    AllDay {
        /// First date covered.
        first: Date,
        /// The day after the last date covered.
        end: Date,
    },
}

impl BookingTime {
    /// A timed booking; `end` must not be before `start`.
    pub fn timed(start: Timestamp, end: Timestamp) -> Result<Self, BookingError> {
        if end < start {
            return Err(BookingError::EndBeforeStart);
        }
        Ok(BookingTime::Timed { start, end })
    }

    /// An all-day booking over `[first, end)`; `end` must be after `first`.
    pub fn all_day(first: Date, end: Date) -> Result<Self, BookingError> {
        if end <= first {
            return Err(BookingError::EndBeforeStart);
        }
        Ok(BookingTime::AllDay { first, end })
    }

    /// Whether this is an all-day booking.
    pub fn is_all_day(&self) -> bool {
        matches!(self, BookingTime::AllDay { .. })
    }
}

/// One calendar item (a single event, or one occurrence or exception of a series).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "wire::BookingJson", into = "wire::BookingJson")]
pub struct Booking {
    /// The source's item id.
    pub id: BookingId,
    /// The series master's id (*Parent ItemID*) for occurrences and exceptions.
    pub series_id: Option<BookingId>,
    /// The source's change key, when it has one.
    pub change_key: Option<String>,
    /// When it takes place.
    pub time: BookingTime,
    /// The time zone the organiser booked it in, as the source named it (informational).
    pub time_zone: Option<String>,
    /// Free/busy status.
    pub free_busy: FreeBusy,
    /// Sensitivity.
    pub sensitivity: Sensitivity,
    /// Outlook categories.
    pub categories: Vec<String>,
    /// Whether the organiser cancelled it.
    pub cancelled: bool,
    /// The owner's response.
    pub response: ResponseStatus,
    /// Subject, only when it was read (a rule needs it, or titles are shown).
    pub subject: Option<String>,
    /// Location, only when it is shown.
    pub location: Option<String>,
}

impl Booking {
    /// A busy, normal, accepted-by-default booking with the given id and time: the
    /// starting point that sources and tests fill in.
    pub fn new(id: BookingId, time: BookingTime) -> Self {
        Booking {
            id,
            series_id: None,
            change_key: None,
            time,
            time_zone: None,
            free_busy: FreeBusy::Busy,
            sensitivity: Sensitivity::Normal,
            categories: Vec::new(),
            cancelled: false,
            response: ResponseStatus::None,
            subject: None,
            location: None,
        }
    }
}

/// What is wrong with a booking a source handed over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookingError {
    /// The id was empty.
    #[error("the booking id is empty")]
    EmptyId,
    /// The id was too long or had control characters.
    #[error("the booking id is longer than 1024 bytes or has control characters")]
    InvalidId,
    /// End before start.
    #[error("the booking ends before it starts")]
    EndBeforeStart,
    /// Unknown free/busy status.
    #[error(
        "unknown free/busy status `{0}` (expected free, tentative, busy, oof, working_elsewhere or unknown)"
    )]
    UnknownFreeBusy(String),
    /// Unknown sensitivity.
    #[error("unknown sensitivity `{0}` (expected normal, personal, private or confidential)")]
    UnknownSensitivity(String),
    /// Unknown response status.
    #[error(
        "unknown response status `{0}` (expected none, organizer, accepted, tentative, declined or not_responded)"
    )]
    UnknownResponse(String),
    /// A time that could not be read.
    #[error("{field}: {message}")]
    Time {
        /// Which field.
        field: &'static str,
        /// What was expected.
        message: String,
    },
}

/// The JSON shape of a booking (`kalsync preview` input, API): flat, with
/// `"all_day": true` and plain dates for all-day bookings.
mod wire {
    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct BookingJson {
        id: BookingId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        series_id: Option<BookingId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        change_key: Option<String>,
        start: String,
        end: String,
        #[serde(default)]
        all_day: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time_zone: Option<String>,
        #[serde(default = "busy")]
        free_busy: FreeBusy,
        #[serde(default)]
        sensitivity: Sensitivity,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        categories: Vec<String>,
        #[serde(default)]
        cancelled: bool,
        #[serde(default)]
        response: ResponseStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<String>,
    }

    fn busy() -> FreeBusy {
        FreeBusy::Busy
    }

    fn instant(field: &'static str, text: &str) -> Result<Timestamp, BookingError> {
        text.parse::<Timestamp>().map_err(|_| BookingError::Time {
            field,
            message: format!(
                "`{text}` is not an RFC 3339 time with an offset (e.g. 2026-11-23T12:00:00+01:00)"
            ),
        })
    }

    fn date(field: &'static str, text: &str) -> Result<Date, BookingError> {
        text.parse::<Date>().map_err(|_| BookingError::Time {
            field,
            message: format!(
                "`{text}` is not a date (e.g. 2026-11-23); all-day bookings take plain dates"
            ),
        })
    }

    impl TryFrom<BookingJson> for Booking {
        type Error = BookingError;
        fn try_from(raw: BookingJson) -> Result<Self, Self::Error> {
            let time = if raw.all_day {
                BookingTime::all_day(date("start", &raw.start)?, date("end", &raw.end)?)?
            } else {
                BookingTime::timed(instant("start", &raw.start)?, instant("end", &raw.end)?)?
            };
            Ok(Booking {
                id: raw.id,
                series_id: raw.series_id,
                change_key: raw.change_key,
                time,
                time_zone: raw.time_zone,
                free_busy: raw.free_busy,
                sensitivity: raw.sensitivity,
                categories: raw.categories,
                cancelled: raw.cancelled,
                response: raw.response,
                subject: raw.subject,
                location: raw.location,
            })
        }
    }

    impl From<Booking> for BookingJson {
        fn from(b: Booking) -> Self {
            let (start, end, all_day) = match b.time {
                BookingTime::Timed { start, end } => (start.to_string(), end.to_string(), false),
                BookingTime::AllDay { first, end } => (first.to_string(), end.to_string(), true),
            };
            BookingJson {
                id: b.id,
                series_id: b.series_id,
                change_key: b.change_key,
                start,
                end,
                all_day,
                time_zone: b.time_zone,
                free_busy: b.free_busy,
                sensitivity: b.sensitivity,
                categories: b.categories,
                cancelled: b.cancelled,
                response: b.response,
                subject: b.subject,
                location: b.location,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_busy_accepts_every_source_spelling() {
        for (text, want) in [
            ("OOF", FreeBusy::Oof),
            ("oof", FreeBusy::Oof),
            ("WorkingElsewhere", FreeBusy::WorkingElsewhere),
            ("workingElsewhere", FreeBusy::WorkingElsewhere),
            ("WORKINGELSEWHERE", FreeBusy::WorkingElsewhere),
            ("NoData", FreeBusy::Unknown),
            ("TENTATIVE", FreeBusy::Tentative),
        ] {
            assert_eq!(text.parse::<FreeBusy>(), Ok(want), "{text}");
        }
        assert!("sleeping".parse::<FreeBusy>().is_err());
    }

    #[test]
    fn json_round_trip_and_errors() {
        let json = r#"[{"id":"a","start":"2026-11-23T12:00:00+01:00","end":"2026-11-23T13:00:00+01:00","subject":"LUN: lunch"},
                       {"id":"b","start":"2026-11-24","end":"2026-11-25","all_day":true,"free_busy":"oof"}]"#;
        let bookings: Vec<Booking> = serde_json::from_str(json).expect("valid");
        assert_eq!(bookings.len(), 2);
        assert!(bookings[1].time.is_all_day());
        let again: Vec<Booking> =
            serde_json::from_str(&serde_json::to_string(&bookings).expect("ser")).expect("de");
        assert_eq!(again, bookings);

        let bad =
            r#"[{"id":"a","start":"2026-11-23T13:00:00+01:00","end":"2026-11-23T12:00:00+01:00"}]"#;
        let err = serde_json::from_str::<Vec<Booking>>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ends before it starts"), "{err}");
        let unknown = r#"[{"id":"a","start":"2026-11-23T12:00:00Z","end":"2026-11-23T13:00:00Z","body":"x"}]"#;
        let err = serde_json::from_str::<Vec<Booking>>(unknown)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `body`"), "{err}");
    }
}
