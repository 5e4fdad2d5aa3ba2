//! Points in time as a file wrote them, resolved: dates, and wall-clock times in the
//! zone their `TZID` names (or the default zone), and their conversions to instants and
//! to `jiff`'s types.

use calcard::common::PartialDateTime;
use calcard::common::timezone::Tz;
use chrono::{NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};

/// A point in time as the file wrote it, resolved.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Moment {
    /// A `VALUE=DATE`.
    Date(NaiveDate),
    /// A time: its local wall-clock reading in `tz`, and the zone.
    Local(NaiveDateTime, Tz),
}

impl Moment {
    pub(crate) fn instant(&self) -> Option<chrono::DateTime<Utc>> {
        match *self {
            Moment::Date(d) => Some(d.and_hms_opt(0, 0, 0)?.and_utc()),
            Moment::Local(naive, tz) => local_to_utc(naive, tz),
        }
    }

    pub(crate) fn local(&self) -> NaiveDateTime {
        match *self {
            Moment::Date(d) => d.and_hms_opt(0, 0, 0).unwrap_or_default(),
            Moment::Local(naive, _) => naive,
        }
    }
}

/// A wall-clock time in a zone as an instant: the earlier of two in a repeated hour, and
/// an hour later inside a skipped one (what Outlook shows).
fn local_to_utc(naive: NaiveDateTime, tz: Tz) -> Option<chrono::DateTime<Utc>> {
    use chrono::LocalResult;
    let resolve = |n: NaiveDateTime| match tz.from_local_datetime(&n) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.with_timezone(&Utc)),
        LocalResult::None => None,
    };
    resolve(naive).or_else(|| resolve(naive + TimeDelta::hours(1)))
}

pub(crate) fn to_jiff(t: chrono::DateTime<Utc>) -> Option<jiff::Timestamp> {
    jiff::Timestamp::new(
        t.timestamp(),
        i32::try_from(t.timestamp_subsec_nanos()).ok()?,
    )
    .ok()
}

pub(crate) fn to_jiff_date(d: NaiveDate) -> Option<jiff::civil::Date> {
    use chrono::Datelike;
    jiff::civil::Date::new(
        i16::try_from(d.year()).ok()?,
        i8::try_from(d.month()).ok()?,
        i8::try_from(d.day()).ok()?,
    )
    .ok()
}

pub(crate) fn read_moment(
    p: &PartialDateTime,
    tz_id: Option<&str>,
    resolver: &calcard::icalendar::timezone::TzResolver<&str>,
    default_tz: Tz,
    warn_zone: &mut dyn FnMut(&str),
) -> Option<Moment> {
    let result = p.to_date_time()?;
    if !p.has_time() {
        return Some(Moment::Date(result.date_time.date()));
    }
    if let Some(tz) = result.tz() {
        return Some(Moment::Local(result.date_time, tz));
    }
    let tz = match tz_id.filter(|t| !t.trim().is_empty()) {
        // Outlook writes `TZID= 1` against a `TZID: 1` block: try the name as written,
        // then trimmed.
        Some(name) => match resolver
            .resolve(name)
            .or_else(|| resolver.resolve(name.trim()))
        {
            Some(tz) if !tz.is_floating() => tz,
            _ => {
                warn_zone(name);
                default_tz
            }
        },
        None => default_tz,
    };
    Some(Moment::Local(result.date_time, tz))
}
