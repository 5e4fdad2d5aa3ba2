//! The simulated tenant: users, their calendars (single events, series with occurrences
//! and exceptions), and how a `calendarView` expands them.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use jiff::civil::{Date, Time, Weekday};
use jiff::{SignedDuration, Timestamp, ToSpan};
use kalsync_core::Zone;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A mailbox's automatic replies as a test sets them — with their texts, which a
/// reader must never keep.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoRepliesSpec {
    /// `disabled`, `alwaysEnabled` or `scheduled`.
    pub status: String,
    /// When scheduled replies start.
    pub start: Option<Timestamp>,
    /// When they end.
    pub end: Option<Timestamp>,
    /// The reply to colleagues.
    pub internal_message: String,
    /// The reply to others.
    pub external_message: String,
}

/// A user as the control API creates it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// `anna@contoso.se`.
    pub upn: String,
    /// The object id; generated when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// `Anna Berg`.
    #[serde(default)]
    pub display_name: Option<String>,

    /// The mailbox's zone, a Windows id (default `W. Europe Standard Time`).
    #[serde(default = "default_zone")]
    pub time_zone: String,
    /// Outlook working hours: days (`monday` …), `start`, `end` (`08:00`).
    #[serde(default)]
    pub working_hours: Option<WorkingHoursSpec>,
}

fn default_zone() -> String {
    "W. Europe Standard Time".into()
}

/// Outlook working hours of a simulated mailbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkingHoursSpec {
    /// `monday` …
    pub days: Vec<String>,
    /// `08:00`.
    pub start: String,
    /// `17:00`.
    pub end: String,
}

/// A recurrence: daily or weekly, with an end date or a count.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RecurrenceSpec {
    /// `daily` or `weekly`.
    pub pattern: String,
    /// Every n days/weeks.
    #[serde(default = "one")]
    pub interval: u32,
    /// For weekly: `monday` …
    #[serde(default)]
    pub days_of_week: Vec<String>,
    /// Last date (inclusive).
    #[serde(default)]
    pub until: Option<Date>,
    /// Number of occurrences.
    #[serde(default)]
    pub count: Option<u32>,
}

fn one() -> u32 {
    1
}

/// An event as the control API creates it. Times are RFC 3339 instants, or dates for
/// all-day events.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// Subject.
    #[serde(default)]
    pub subject: String,
    /// Body: stored, and returned only when a client asks for it.
    #[serde(default)]
    pub body: String,
    /// Start: `2026-11-23T12:00:00+01:00`, or `2026-11-23` when all-day.
    pub start: String,
    /// End (exclusive date when all-day).
    pub end: String,
    /// All-day.
    #[serde(default)]
    pub all_day: bool,
    /// `free`, `tentative`, `busy`, `oof`, `workingElsewhere`, `unknown`.
    #[serde(default = "busy")]
    pub show_as: String,
    /// `normal`, `personal`, `private`, `confidential`.
    #[serde(default = "normal")]
    pub sensitivity: String,
    /// Cancelled by the organiser.
    #[serde(default)]
    pub is_cancelled: bool,
    /// The owner's response: `organizer`, `accepted`, `tentativelyAccepted`, `declined`,
    /// `notResponded`, `none`.
    #[serde(default = "organizer")]
    pub response: String,
    /// Categories.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Location.
    #[serde(default)]
    pub location: String,
    /// The zone it was booked in (Windows id); the mailbox's when absent.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Makes it a series.
    #[serde(default)]
    pub recurrence: Option<RecurrenceSpec>,
    /// The attendees' addresses (none: an appointment of the owner's own).
    #[serde(default)]
    pub attendees: Vec<String>,
}

impl EventSpec {
    /// A busy, normal event the owner organised, from `start` to `end` (RFC 3339, or
    /// dates for all-day ones).
    pub fn new(subject: &str, start: impl std::fmt::Display, end: impl std::fmt::Display) -> Self {
        EventSpec {
            subject: subject.into(),
            body: String::new(),
            start: start.to_string(),
            end: end.to_string(),
            all_day: false,
            show_as: busy(),
            sensitivity: normal(),
            is_cancelled: false,
            response: organizer(),
            categories: Vec::new(),
            location: String::new(),
            time_zone: None,
            recurrence: None,
            attendees: Vec::new(),
        }
    }
}

fn busy() -> String {
    "busy".into()
}
fn normal() -> String {
    "normal".into()
}
fn organizer() -> String {
    "organizer".into()
}

/// A change to one occurrence of a series.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OccurrenceChange {
    /// New start (RFC 3339).
    #[serde(default)]
    pub start: Option<String>,
    /// New end.
    #[serde(default)]
    pub end: Option<String>,
    /// New subject.
    #[serde(default)]
    pub subject: Option<String>,
    /// New free/busy.
    #[serde(default)]
    pub show_as: Option<String>,
    /// Cancelled by the organiser (still shown, `isCancelled`).
    #[serde(default)]
    pub is_cancelled: Option<bool>,
}

/// What is wrong with a control-API request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Bad field.
    #[error("{0}")]
    Invalid(String),
    /// No such user/event.
    #[error("{0} not found")]
    NotFound(String),
    /// Already there.
    #[error("{0} already exists")]
    Conflict(String),
}

/// When an event happens, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    Timed { start: Timestamp, end: Timestamp },
    AllDay { first: Date, end: Date },
}

#[derive(Debug, Clone)]
pub(crate) struct StoredEvent {
    pub(crate) id: String,
    pub(crate) spec: EventSpec,
    pub(crate) when: When,
    pub(crate) zone_name: String,
    pub(crate) zone: Zone,
    pub(crate) change_key: u64,
    /// Per occurrence date: `None` deleted, `Some(change)` an exception.
    pub(crate) exceptions: BTreeMap<Date, Option<OccurrenceChange>>,
}

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) upn: String,
    pub(crate) display_name: String,
    pub(crate) time_zone: String,
    pub(crate) working_hours: Option<WorkingHoursSpec>,
    pub(crate) events: BTreeMap<String, StoredEvent>,
    pub(crate) denied: bool,
    pub(crate) automatic_replies: AutoRepliesSpec,
    pub(crate) presence: crate::presence::PresenceState,
}

/// One event as a `calendarView` shows it.
#[derive(Debug, Clone)]
pub(crate) struct Instance<'a> {
    pub(crate) id: String,
    pub(crate) master: &'a StoredEvent,
    pub(crate) kind: &'static str,
    pub(crate) when: When,
    pub(crate) subject: &'a str,
    pub(crate) show_as: &'a str,
    pub(crate) is_cancelled: bool,
    pub(crate) change_key: u64,
}

/// The users of the tenant.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    pub(crate) users: HashMap<String, User>,
    /// Lower-case UPN → id.
    pub(crate) by_upn: HashMap<String, String>,
    pub(crate) next_change: u64,
}

/// The id of a series' occurrence on `date`: the master's id and the date, as Graph's
/// occurrence ids also embed their master's. Cheap, because every read makes them.
pub(crate) fn occurrence_id(master: &str, date: Date) -> String {
    format!(
        "{master}BAAAA{:04}{:02}{:02}",
        date.year(),
        date.month(),
        date.day()
    )
}

/// A Graph-looking id, stable for the same seed.
pub(crate) fn graph_id(seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    format!("AAMkA{}", URL_SAFE.encode(&digest[..24]))
}

fn parse_day(name: &str) -> Result<Weekday, SpecError> {
    kalsync_core::WorkingHours::parse_day(name).map_err(SpecError::Invalid)
}

impl Directory {
    pub(crate) fn resolve(&self, key: &str) -> Option<&str> {
        if self.users.contains_key(key) {
            return self.users.get(key).map(|u| u.id.as_str());
        }
        self.by_upn
            .get(&key.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub(crate) fn user(&self, key: &str) -> Result<&User, SpecError> {
        let id = self
            .resolve(key)
            .ok_or_else(|| SpecError::NotFound(format!("user `{key}`")))?;
        self.users
            .get(id)
            .ok_or_else(|| SpecError::NotFound(format!("user `{key}`")))
    }

    pub(crate) fn user_mut(&mut self, key: &str) -> Result<&mut User, SpecError> {
        let id = self
            .resolve(key)
            .ok_or_else(|| SpecError::NotFound(format!("user `{key}`")))?
            .to_owned();
        self.users
            .get_mut(&id)
            .ok_or_else(|| SpecError::NotFound(format!("user `{key}`")))
    }

    pub(crate) fn add_user(&mut self, spec: UserSpec) -> Result<(String, String), SpecError> {
        let upn = spec.upn.trim().to_owned();
        if !upn.contains('@') || upn.len() > 256 {
            return Err(SpecError::Invalid(format!("upn `{upn}` is not an address")));
        }
        if self.by_upn.contains_key(&upn.to_ascii_lowercase()) {
            return Err(SpecError::Conflict(format!("user `{upn}`")));
        }
        Zone::parse_any(&spec.time_zone).map_err(SpecError::Invalid)?;
        if let Some(wh) = &spec.working_hours {
            for d in &wh.days {
                parse_day(d)?;
            }
        }
        let id = spec.id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        self.by_upn.insert(upn.to_ascii_lowercase(), id.clone());
        self.users.insert(
            id.clone(),
            User {
                id: id.clone(),
                upn: upn.clone(),
                display_name: spec.display_name.unwrap_or_else(|| upn.clone()),

                time_zone: spec.time_zone,
                working_hours: spec.working_hours,
                events: BTreeMap::new(),
                denied: false,
                automatic_replies: AutoRepliesSpec {
                    status: "disabled".into(),
                    ..AutoRepliesSpec::default()
                },
                presence: Default::default(),
            },
        );
        Ok((id, upn))
    }

    pub(crate) fn change_key(&mut self) -> u64 {
        self.next_change += 1;
        self.next_change
    }

    /// Validates a spec against the user's zone and stores it under `id`.
    pub(crate) fn put_event(
        &mut self,
        user: &str,
        id: Option<String>,
        spec: EventSpec,
    ) -> Result<(String, String), SpecError> {
        let change_key = self.change_key();
        let user = self.user_mut(user)?;
        let given = spec
            .time_zone
            .clone()
            .unwrap_or_else(|| user.time_zone.clone());
        let zone = Zone::parse_any(&given).map_err(SpecError::Invalid)?;
        // Graph names the organiser's zone by its Windows id, whatever the client wrote.
        let zone_name = kalsync_core::WindowsZone::parse(&given)
            .or_else(|_| kalsync_core::WindowsZone::from_zone(&zone).ok_or(()))
            .map(|w| w.id().to_owned())
            .unwrap_or(given);

        let when = resolve_when(&spec)?;
        for (field, value, allowed) in [
            (
                "show_as",
                &spec.show_as,
                &[
                    "free",
                    "tentative",
                    "busy",
                    "oof",
                    "workingElsewhere",
                    "unknown",
                ][..],
            ),
            (
                "sensitivity",
                &spec.sensitivity,
                &["normal", "personal", "private", "confidential"][..],
            ),
            (
                "response",
                &spec.response,
                &[
                    "none",
                    "organizer",
                    "tentativelyAccepted",
                    "accepted",
                    "declined",
                    "notResponded",
                ][..],
            ),
        ] {
            if !allowed.contains(&value.as_str()) {
                return Err(SpecError::Invalid(format!(
                    "{field} `{value}` (expected one of {})",
                    allowed.join(", ")
                )));
            }
        }
        if let Some(r) = &spec.recurrence {
            if !matches!(r.pattern.as_str(), "daily" | "weekly") || r.interval == 0 {
                return Err(SpecError::Invalid(
                    "recurrence: pattern daily or weekly, interval ≥ 1".into(),
                ));
            }
            for d in &r.days_of_week {
                parse_day(d)?;
            }
        }
        let id = id.unwrap_or_else(|| graph_id(&uuid::Uuid::new_v4().to_string()));
        let previous = user.events.remove(&id);
        user.events.insert(
            id.clone(),
            StoredEvent {
                id: id.clone(),
                spec,
                when,
                zone_name,
                zone,
                change_key,
                exceptions: previous.map(|p| p.exceptions).unwrap_or_default(),
            },
        );
        Ok((user.id.clone(), id))
    }
}

fn instant(field: &str, text: &str) -> Result<Timestamp, SpecError> {
    text.parse()
        .map_err(|_| SpecError::Invalid(format!("{field} `{text}` is not an RFC 3339 time")))
}

fn resolve_when(spec: &EventSpec) -> Result<When, SpecError> {
    if spec.all_day {
        let date = |f: &str, t: &str| {
            t.parse::<Date>()
                .map_err(|_| SpecError::Invalid(format!("{f} `{t}` is not a date")))
        };
        let (first, end) = (date("start", &spec.start)?, date("end", &spec.end)?);
        if end <= first {
            return Err(SpecError::Invalid("end must be after start".into()));
        }
        Ok(When::AllDay { first, end })
    } else {
        let (start, end) = (instant("start", &spec.start)?, instant("end", &spec.end)?);
        if end < start {
            return Err(SpecError::Invalid("end must not be before start".into()));
        }
        Ok(When::Timed { start, end })
    }
}

impl When {
    /// The instants it covers, all-day read in `zone`.
    pub(crate) fn span(&self, zone: &Zone) -> (Timestamp, Timestamp) {
        match *self {
            When::Timed { start, end } => (start, end),
            When::AllDay { first, end } => {
                let at = |d: Date| {
                    d.to_zoned(zone.tz().clone())
                        .map(|z| z.timestamp())
                        .unwrap_or(Timestamp::UNIX_EPOCH)
                };
                (at(first), at(end))
            }
        }
    }
}

impl StoredEvent {
    /// Every instance overlapping `[from, to)`.
    pub(crate) fn instances(&self, from: Timestamp, to: Timestamp) -> Vec<Instance<'_>> {
        let Some(rule) = &self.spec.recurrence else {
            let (s, e) = self.when.span(&self.zone);
            return if s < to && e > from || (s == e && s >= from && s < to) {
                vec![self.instance(self.id.clone(), "singleInstance", self.when, None)]
            } else {
                Vec::new()
            };
        };
        let tz = self.zone.tz().clone();
        let (first_date, local_start, length, all_day_days) = match self.when {
            When::Timed { start, end } => {
                let z = start.to_zoned(tz.clone());
                (z.date(), z.time(), end.duration_since(start), 0)
            }
            When::AllDay { first, end } => (
                first,
                Time::midnight(),
                SignedDuration::ZERO,
                first.until(end).map(|s| s.get_days()).unwrap_or(1),
            ),
        };
        let days: Vec<Weekday> = rule
            .days_of_week
            .iter()
            .filter_map(|d| parse_day(d).ok())
            .collect();
        let last = to.to_zoned(tz.clone()).date();
        let mut out = Vec::new();
        let mut date = first_date;
        let mut produced = 0u32;
        let mut steps = 0u32;
        while date <= last && steps < 200_000 {
            steps += 1;
            if rule.until.is_some_and(|u| date > u) || rule.count.is_some_and(|c| produced >= c) {
                break;
            }
            let matches = match rule.pattern.as_str() {
                "daily" => first_date
                    .until(date)
                    .is_ok_and(|s| i64::from(s.get_days()) % i64::from(rule.interval) == 0),
                _ => {
                    let weekday_ok = if days.is_empty() {
                        date.weekday() == first_date.weekday()
                    } else {
                        days.contains(&date.weekday())
                    };
                    weekday_ok && weeks_between(first_date, date) % i64::from(rule.interval) == 0
                }
            };
            if matches {
                produced += 1;
                let when = if let When::AllDay { .. } = self.when {
                    When::AllDay {
                        first: date,
                        end: date.checked_add(all_day_days.days()).unwrap_or(date),
                    }
                } else {
                    let start = date
                        .to_datetime(local_start)
                        .to_zoned(tz.clone())
                        .map(|z| z.timestamp())
                        .unwrap_or(Timestamp::UNIX_EPOCH);
                    When::Timed {
                        start,
                        end: start + length,
                    }
                };
                let id = occurrence_id(&self.id, date);
                let instance = match self.exceptions.get(&date) {
                    Some(None) => None,
                    Some(Some(change)) => Some(self.instance(id, "exception", when, Some(change))),
                    None => Some(self.instance(id, "occurrence", when, None)),
                };
                if let Some(i) = instance {
                    let (s, e) = i.when.span(&self.zone);
                    if s < to && e > from {
                        out.push(i);
                    }
                }
            }
            date = match date.checked_add(1.day()) {
                Ok(d) => d,
                Err(_) => break,
            };
        }
        out
    }

    fn instance<'a>(
        &'a self,
        id: String,
        kind: &'static str,
        when: When,
        change: Option<&'a OccurrenceChange>,
    ) -> Instance<'a> {
        let mut i = Instance {
            id,
            master: self,
            kind,
            when,
            subject: &self.spec.subject,
            show_as: &self.spec.show_as,
            is_cancelled: self.spec.is_cancelled,
            change_key: self.change_key,
        };
        if let Some(change) = change {
            // A moved occurrence; all-day series are moved by date through start/end too.
            if let (Some(s), Some(e)) = (&change.start, &change.end) {
                if let (Ok(s), Ok(e)) = (s.parse::<Timestamp>(), e.parse::<Timestamp>()) {
                    i.when = When::Timed { start: s, end: e };
                } else if let (Ok(s), Ok(e)) = (s.parse::<Date>(), e.parse::<Date>()) {
                    i.when = When::AllDay { first: s, end: e };
                }
            }
            if let Some(s) = &change.subject {
                i.subject = s;
            }
            if let Some(s) = &change.show_as {
                i.show_as = s;
            }
            if let Some(c) = change.is_cancelled {
                i.is_cancelled = c;
            }
        }
        i
    }
}

/// The Monday of `d`'s week.
fn monday_of(d: Date) -> Date {
    d.checked_sub(i64::from(d.weekday().to_monday_zero_offset()).days())
        .unwrap_or(d)
}

/// Whole weeks from `first`'s week to `d`'s week.
fn weeks_between(first: Date, d: Date) -> i64 {
    monday_of(first)
        .until(monday_of(d))
        .map(|s| i64::from(s.get_days()) / 7)
        .unwrap_or(0)
}
