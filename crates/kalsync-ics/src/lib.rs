//! Reads Outlook-exported iCalendar (`.ics`) files into bookings (SPEC §4.3), for
//! `kalsync preview`.
//!
//! Parsing and time-zone resolution (Windows zone names such as `W. Europe Standard Time`,
//! Outlook's `(UTC+01:00) …` labels, `VTIMEZONE` blocks) are `calcard`'s; recurrence rules
//! are expanded by the `rrule` crate. What is written here is what neither does for
//! Outlook exports: expanding only the requested window (calcard's expansion is bounded by
//! a count, not by time), matching exceptions to occurrences by UID and `RECURRENCE-ID`
//! in local time (Outlook writes an all-day series' `RECURRENCE-ID` as a local midnight
//! with a `TZID`, and gives exceptions a higher `SEQUENCE` than their master), and mapping
//! the `X-MICROSOFT-CDO-*` properties to the domain's free/busy and all-day flags.

use std::str::FromStr;

use calcard::common::PartialDateTime;
use calcard::common::timezone::Tz;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarFrequency,
    ICalendarParameterName, ICalendarProperty, ICalendarRecurrenceRule, ICalendarValue,
    ICalendarWeekday,
};
use calcard::{Entry, Parser};
use chrono::{NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};
use kalsync_core::{
    Booking, BookingId, BookingTime, FreeBusy, ResponseStatus, Sensitivity, Window,
};

/// The largest file read (an export of a busy calendar over years is a few MB).
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;
/// The most occurrences one series yields inside the window.
pub const MAX_OCCURRENCES: u16 = 10_000;
/// The most occurrences all series of a file together are stepped through, inside the
/// window and before it (recurrences are expanded from their first occurrence on): a
/// daily series since 1850 takes 64,000; `FREQ=SECONDLY` from 1970 would take 1.8
/// billion, and is refused instead of read for minutes.
pub const MAX_EXPANSION_STEPS: u32 = 1_000_000;

/// How to read a file.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The zone for floating times and for zones the file names but nobody knows
    /// (an IANA name).
    pub default_zone: String,
    /// Only bookings overlapping this window are returned.
    pub window: Window,
    /// The mailbox owner's address, to read their response from `ORGANIZER`/`ATTENDEE`.
    pub owner: Option<String>,
}

/// What a file gave.
#[derive(Debug, Clone, Default)]
pub struct Imported {
    /// Bookings overlapping the window: single events, occurrences and exceptions.
    pub bookings: Vec<Booking>,
    /// Events or lines that were skipped, one sentence each (never a subject).
    pub warnings: Vec<String>,
    /// Number of `VEVENT`s in the file.
    pub events: usize,
    /// Earliest and latest start of any event or series in the file.
    pub span: Option<(jiff::Timestamp, jiff::Timestamp)>,
    /// Occurrences stepped through so far ([`MAX_EXPANSION_STEPS`]).
    steps: u32,
    /// The series that used up the steps, when one did.
    too_much: Option<String>,
}

/// Why a file could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IcsError {
    /// Its recurrences repeat too often to be expanded ([`MAX_EXPANSION_STEPS`]).
    #[error(
        "{0} repeats too often: more than {MAX_EXPANSION_STEPS} occurrences from its start to the end of the window (Outlook's series repeat daily at most)"
    )]
    TooManyOccurrences(String),
    /// Over [`MAX_FILE_BYTES`].
    #[error("the file is {0} bytes; at most {MAX_FILE_BYTES} are read")]
    TooLarge(usize),
    /// No `BEGIN:VCALENDAR` … `END:VCALENDAR`.
    #[error("not an iCalendar file: {0}")]
    NotICalendar(String),
    /// The default zone is not an IANA name.
    #[error("unknown time zone `{0}`")]
    UnknownZone(String),
}

/// Reads an iCalendar text.
pub fn import(text: &str, options: &ImportOptions) -> Result<Imported, IcsError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(IcsError::TooLarge(text.len()));
    }
    let default_tz = chrono_tz::Tz::from_str(&options.default_zone)
        .map(Tz::Tz)
        .map_err(|_| IcsError::UnknownZone(options.default_zone.clone()))?;
    let mut out = Imported::default();
    let mut calendars = Vec::new();
    let mut parser = Parser::new(text);
    loop {
        match parser.entry() {
            Entry::ICalendar(cal) => calendars.push(cal),
            Entry::Eof => break,
            Entry::InvalidLine(line) => out.warnings.push(format!(
                "skipped a line that is not iCalendar: {}",
                shorten(&line)
            )),
            Entry::VCard(_) => out.warnings.push("skipped a vCard".into()),
            Entry::UnexpectedComponentEnd { expected, found } => out.warnings.push(format!(
                "skipped END:{} where END:{} was expected",
                found.as_str(),
                expected.as_str()
            )),
            Entry::UnterminatedComponent(name) => {
                out.warnings
                    .push(format!("the file ends inside BEGIN:{name}"));
                break;
            }
            Entry::TooManyComponents => {
                return Err(IcsError::NotICalendar("too many components".into()));
            }
            _ => out
                .warnings
                .push("skipped a block that is not iCalendar".into()),
        }
    }
    // The parser closes what a cut-off file left open; say so, the rest may be missing.
    let count = |marker: &str| {
        text.lines()
            .filter(|l| l.trim().eq_ignore_ascii_case(marker))
            .count()
    };
    if !calendars.is_empty() && count("END:VCALENDAR") < count("BEGIN:VCALENDAR") {
        out.warnings
            .push("the file ends without END:VCALENDAR: it may be cut off".into());
    }
    if calendars.is_empty() {
        return Err(IcsError::NotICalendar(
            "no BEGIN:VCALENDAR … END:VCALENDAR block found".into(),
        ));
    }
    for (index, calendar) in calendars.iter().enumerate() {
        read_calendar(calendar, index, default_tz, options, &mut out);
        if let Some(series) = out.too_much.take() {
            return Err(IcsError::TooManyOccurrences(series));
        }
    }
    out.bookings.sort_by(|a, b| a.id.cmp(&b.id));
    let mut seen = std::collections::HashSet::new();
    out.warnings.retain(|w| seen.insert(w.clone()));
    Ok(out)
}

fn shorten(text: &str) -> String {
    let mut s: String = text.chars().take(60).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

/// A point in time as the file wrote it, resolved.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// A `VALUE=DATE`.
    Date(NaiveDate),
    /// A time: its local wall-clock reading in `tz`, and the zone.
    Local(NaiveDateTime, Tz),
}

impl Moment {
    fn instant(&self) -> Option<chrono::DateTime<Utc>> {
        match *self {
            Moment::Date(d) => Some(d.and_hms_opt(0, 0, 0)?.and_utc()),
            Moment::Local(naive, tz) => local_to_utc(naive, tz),
        }
    }

    fn local(&self) -> NaiveDateTime {
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

fn to_jiff(t: chrono::DateTime<Utc>) -> Option<jiff::Timestamp> {
    jiff::Timestamp::new(
        t.timestamp(),
        i32::try_from(t.timestamp_subsec_nanos()).ok()?,
    )
    .ok()
}

fn to_jiff_date(d: NaiveDate) -> Option<jiff::civil::Date> {
    use chrono::Datelike;
    jiff::civil::Date::new(
        i16::try_from(d.year()).ok()?,
        i8::try_from(d.month()).ok()?,
        i8::try_from(d.day()).ok()?,
    )
    .ok()
}

/// One `VEVENT`, read.
struct Event {
    id_base: String,
    uid: Option<String>,
    label: String,
    start: Moment,
    end: Option<Moment>,
    duration: Option<TimeDelta>,
    all_day: bool,
    rule: Option<ICalendarRecurrenceRule>,
    exdates: Vec<Moment>,
    rdates: Vec<Moment>,
    recurrence_id: Option<Moment>,
    template: Booking,
}

fn read_calendar(
    calendar: &ICalendar,
    calendar_index: usize,
    default_tz: Tz,
    options: &ImportOptions,
    out: &mut Imported,
) {
    let resolver = calendar.build_tz_resolver().with_default(default_tz);
    let cancelled_by_method = calendar.components.iter().any(|c| {
        c.component_type == ICalendarComponentType::VCalendar
            && c.property(&ICalendarProperty::Method)
                .and_then(|e| e.values.first())
                .and_then(ICalendarValue::as_text)
                .is_some_and(|m| m.eq_ignore_ascii_case("CANCEL"))
    });
    let mut events = Vec::new();
    for (index, component) in calendar.components.iter().enumerate() {
        if component.component_type != ICalendarComponentType::VEvent {
            continue;
        }
        out.events += 1;
        let id_base = component
            .uid()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("event-{calendar_index}-{index}"));
        let label = format!("event `{}`", shorten(&id_base));
        match read_event(
            component,
            id_base,
            label.clone(),
            &resolver,
            default_tz,
            options,
            cancelled_by_method,
            out,
        ) {
            Ok(event) => {
                if let Some(t) = event.start.instant().and_then(to_jiff) {
                    out.span = Some(match out.span {
                        Some((a, b)) => (a.min(t), b.max(t)),
                        None => (t, t),
                    });
                }
                events.push(event);
            }
            Err(message) => out.warnings.push(format!("{label} skipped: {message}")),
        }
    }

    let (exceptions, others): (Vec<Event>, Vec<Event>) = events
        .into_iter()
        .partition(|e| e.recurrence_id.is_some() && e.rule.is_none());
    for event in &others {
        match &event.rule {
            None => emit(
                event,
                &event.id_base,
                event.start,
                event.end,
                None,
                options,
                out,
            ),
            Some(rule) => expand(event, rule, &exceptions, options, out),
        }
    }
    // Exceptions replace their occurrence; those whose master is missing stand alone.
    for exception in &exceptions {
        let series = exception
            .uid
            .as_ref()
            .and_then(|u| BookingId::parse(u.clone()).ok());
        let rid = exception
            .recurrence_id
            .map(|r| occurrence_key(&r, exception.all_day));
        let id = format!("{}/{}", exception.id_base, rid.unwrap_or_default());
        emit(
            exception,
            &id,
            exception.start,
            exception.end,
            series,
            options,
            out,
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn read_event(
    c: &ICalendarComponent,
    id_base: String,
    label: String,
    resolver: &calcard::icalendar::timezone::TzResolver<&str>,
    default_tz: Tz,
    options: &ImportOptions,
    cancelled_by_method: bool,
    out: &mut Imported,
) -> Result<Event, String> {
    let mut warn_zone = |name: &str| {
        out.warnings.push(format!(
            "{label}: unknown time zone `{}`, read in {}",
            shorten(name),
            options.default_zone
        ));
    };
    let mut moment = |entry: &ICalendarEntry| -> Option<Moment> {
        let ICalendarValue::PartialDateTime(p) = entry.values.first()? else {
            return None;
        };
        read_moment(p, entry.tz_id(), resolver, default_tz, &mut warn_zone)
    };
    let start_entry = c.property(&ICalendarProperty::Dtstart);
    let rid_entry = c.property(&ICalendarProperty::RecurrenceId);
    let start = match (start_entry, rid_entry) {
        (Some(e), _) => moment(e).ok_or("DTSTART is not a date or time")?,
        (None, Some(e)) => moment(e).ok_or("RECURRENCE-ID is not a date or time")?,
        (None, None) => return Err("it has no DTSTART".into()),
    };
    let end = match c.property(&ICalendarProperty::Dtend) {
        Some(e) => Some(moment(e).ok_or("DTEND is not a date or time")?),
        None => None,
    };
    let recurrence_id = rid_entry.and_then(&mut moment);
    let mut exdates = Vec::new();
    let mut rdates = Vec::new();
    for (prop, list) in [
        (ICalendarProperty::Exdate, &mut exdates),
        (ICalendarProperty::Rdate, &mut rdates),
    ] {
        for entry in c.properties(&prop) {
            for value in &entry.values {
                if let ICalendarValue::PartialDateTime(p) = value {
                    if let Some(m) =
                        read_moment(p, entry.tz_id(), resolver, default_tz, &mut |_| {})
                    {
                        list.push(m);
                    }
                }
            }
        }
    }
    let duration = c
        .property(&ICalendarProperty::Duration)
        .and_then(|e| e.values.first())
        .and_then(|v| match v {
            ICalendarValue::Duration(d) => d.to_time_delta(),
            _ => None,
        });
    let rule = c
        .property(&ICalendarProperty::Rrule)
        .and_then(|e| e.values.first())
        .and_then(|v| match v {
            ICalendarValue::RecurrenceRule(r) => Some((**r).clone()),
            _ => None,
        });
    let text = |prop: ICalendarProperty| {
        c.property(&prop)
            .and_then(|e| e.values.first())
            .and_then(ICalendarValue::as_text)
            .map(str::to_owned)
    };
    let other = |name: &str| {
        c.entries.iter().find_map(|e| match &e.name {
            ICalendarProperty::Other(n) if n.eq_ignore_ascii_case(name) => e
                .values
                .first()
                .and_then(ICalendarValue::as_text)
                .map(str::to_owned),
            _ => None,
        })
    };
    let status = text(ICalendarProperty::Status)
        .unwrap_or_default()
        .to_ascii_uppercase();
    let free_busy = match other("X-MICROSOFT-CDO-BUSYSTATUS").map(|s| s.parse::<FreeBusy>()) {
        Some(Ok(fb)) => fb,
        Some(Err(e)) => return Err(e.to_string()),
        None if text(ICalendarProperty::Transp)
            .is_some_and(|t| t.eq_ignore_ascii_case("TRANSPARENT")) =>
        {
            FreeBusy::Free
        }
        None if status == "TENTATIVE" => FreeBusy::Tentative,
        None => FreeBusy::Busy,
    };
    let sensitivity = text(ICalendarProperty::Class)
        .map(|s| s.parse::<Sensitivity>().unwrap_or(Sensitivity::Private))
        .unwrap_or_default();
    let all_day_flag =
        other("X-MICROSOFT-CDO-ALLDAYEVENT").is_some_and(|v| v.eq_ignore_ascii_case("TRUE"));
    let midnight =
        |m: &Moment| matches!(m, Moment::Date(_)) || m.local().time() == chrono::NaiveTime::MIN;
    let all_day = matches!(start, Moment::Date(_))
        || (all_day_flag && midnight(&start) && end.as_ref().is_none_or(midnight));
    let categories = c
        .properties(&ICalendarProperty::Categories)
        .flat_map(|e| e.values.iter().filter_map(ICalendarValue::as_text))
        .flat_map(|t| t.split(','))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();

    let mut template = Booking::new(
        BookingId::parse(id_base.clone()).map_err(|e| e.to_string())?,
        BookingTime::timed(jiff::Timestamp::UNIX_EPOCH, jiff::Timestamp::UNIX_EPOCH)
            .map_err(|e| e.to_string())?,
    );
    template.time_zone = start_entry
        .and_then(ICalendarEntry::tz_id)
        .map(str::to_owned);
    template.free_busy = free_busy;
    template.sensitivity = sensitivity;
    template.categories = categories;
    template.cancelled = status == "CANCELLED" || cancelled_by_method;
    template.response = response(c, options.owner.as_deref());
    template.subject = text(ICalendarProperty::Summary);
    template.location = text(ICalendarProperty::Location).filter(|l| !l.is_empty());

    Ok(Event {
        uid: c.uid().map(str::to_owned),
        id_base,
        label,
        start,
        end,
        duration,
        all_day,
        rule,
        exdates,
        rdates,
        recurrence_id,
        template,
    })
}

fn read_moment(
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

/// The owner's response: `ORGANIZER` is the owner, or the owner's `ATTENDEE;PARTSTAT=…`.
fn response(c: &ICalendarComponent, owner: Option<&str>) -> ResponseStatus {
    let Some(owner) = owner else {
        return ResponseStatus::None;
    };
    let is_owner = |e: &ICalendarEntry| {
        e.values
            .first()
            .and_then(ICalendarValue::as_text)
            .map(|v| {
                v.trim()
                    .trim_start_matches("mailto:")
                    .trim_start_matches("MAILTO:")
            })
            .is_some_and(|v| v.eq_ignore_ascii_case(owner))
    };
    if c.property(&ICalendarProperty::Organizer)
        .is_some_and(is_owner)
    {
        return ResponseStatus::Organizer;
    }
    c.properties(&ICalendarProperty::Attendee)
        .find(|e| is_owner(e))
        .and_then(|e| {
            e.params
                .iter()
                .find(|p| p.name == ICalendarParameterName::Partstat)
                .and_then(|p| p.value.as_text())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(ResponseStatus::NotResponded)
}

/// The key an occurrence and its exception share: the local date for all-day series, the
/// UTC instant otherwise.
fn occurrence_key(m: &Moment, all_day: bool) -> String {
    if all_day {
        m.local().format("%Y%m%d").to_string()
    } else {
        m.instant()
            .map(|t| t.format("%Y%m%dT%H%M%SZ").to_string())
            .unwrap_or_default()
    }
}

fn emit(
    event: &Event,
    id: &str,
    start: Moment,
    end: Option<Moment>,
    series: Option<BookingId>,
    options: &ImportOptions,
    out: &mut Imported,
) {
    let time = if event.all_day {
        let first = start.local().date();
        let end = match end {
            Some(e) if e.local().date() > first => e.local().date(),
            _ => first.succ_opt().unwrap_or(first),
        };
        to_jiff_date(first)
            .zip(to_jiff_date(end))
            .and_then(|(a, b)| BookingTime::all_day(a, b).ok())
    } else {
        let from = start.instant();
        let to = match (end, event.duration) {
            (Some(e), _) => e.instant(),
            (None, Some(d)) => from.map(|f| f + d),
            (None, None) => from,
        };
        from.and_then(to_jiff)
            .zip(to.and_then(to_jiff))
            .and_then(|(a, b)| BookingTime::timed(a, b).ok())
    };
    let Some(time) = time else {
        out.warnings
            .push(format!("{} skipped: it ends before it starts", event.label));
        return;
    };
    let tz = jiff::tz::TimeZone::get(&options.default_zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let Some((a, b)) = kalsync_core::timeline::interval(&time, &tz) else {
        return;
    };
    if !options.window.overlaps(a, b) {
        return;
    }
    let Ok(id) = BookingId::parse(id.to_owned()) else {
        return;
    };
    let mut booking = event.template.clone();
    booking.id = id;
    booking.series_id = series;
    booking.time = time;
    out.bookings.push(booking);
}

/// Expands a series inside the window, leaving out `EXDATE`s and the occurrences its
/// exceptions replace.
fn expand(
    event: &Event,
    rule: &ICalendarRecurrenceRule,
    exceptions: &[Event],
    options: &ImportOptions,
    out: &mut Imported,
) {
    let series_tz = match event.start {
        Moment::Local(_, tz) => Some(tz),
        Moment::Date(_) => None,
    };
    // Recurrence rules are defined on local wall-clock time; expanding the local reading
    // as if it were UTC and converting each occurrence afterwards keeps 09:00 at 09:00
    // across DST changes.
    let as_utc = |n: NaiveDateTime| rrule::Tz::UTC.from_utc_datetime(&n);
    let local_of = |m: &Moment| -> NaiveDateTime {
        match (m, series_tz) {
            (Moment::Local(n, tz), Some(series)) if tz != &series => m
                .instant()
                .map(|t| t.with_timezone(&series).naive_local())
                .unwrap_or(*n),
            _ => m.local(),
        }
    };
    let dt_start = as_utc(event.start.local());
    let until = rule.until.as_ref().and_then(|u| {
        let r = u.to_date_time()?;
        let naive = if !u.has_time() {
            r.date_time.date().and_hms_opt(23, 59, 59)?
        } else if let (Some(offset), Some(series)) = (r.offset, series_tz) {
            offset
                .from_local_datetime(&r.date_time)
                .single()?
                .with_timezone(&series)
                .naive_local()
        } else {
            r.date_time
        };
        Some(as_utc(naive))
    });
    let built = match build_rule(rule, until).validate(dt_start) {
        Ok(r) => r,
        Err(e) => {
            out.warnings.push(format!(
                "{} skipped: its RRULE is not valid: {e}",
                event.label
            ));
            return;
        }
    };
    let length = match (event.end, event.duration) {
        (Some(e), _) => e.local() - event.start.local(),
        (None, Some(d)) => d,
        (None, None) if event.all_day => TimeDelta::days(1),
        (None, None) => TimeDelta::zero(),
    };
    let margin = TimeDelta::days(2);
    let window_local = |t: jiff::Timestamp| {
        chrono::DateTime::<Utc>::from_timestamp(t.as_second(), 0).map(|d| d.naive_utc())
    };
    let (Some(from), Some(to)) = (
        window_local(options.window.start),
        window_local(options.window.end),
    ) else {
        return;
    };
    if out.too_much.is_some() {
        return;
    }
    // rrule steps through every occurrence from the series' start, those before the
    // window too: the steps are counted against the file's budget, and the ones inside
    // the window kept.
    let after = as_utc(from - length.max(TimeDelta::zero()) - margin);
    let mut set = rrule::RRuleSet::new(dt_start)
        .rrule(built)
        .before(as_utc(to + margin));
    for r in &event.rdates {
        set = set.rdate(as_utc(local_of(r)));
    }
    let budget = MAX_EXPANSION_STEPS.saturating_sub(out.steps);
    let walked = set.all(u16::try_from(budget).unwrap_or(u16::MAX));
    out.steps = out
        .steps
        .saturating_add(u32::try_from(walked.dates.len()).unwrap_or(u32::MAX));
    let reached_window = walked.dates.last().is_some_and(|d| *d >= after);
    if walked.limited && (out.steps >= MAX_EXPANSION_STEPS || !reached_window) {
        out.too_much = Some(event.label.clone());
        return;
    }
    // Cut short inside the window (by the step budget), or more than a series may
    // yield there: the rest is left out, with a warning.
    let mut result = walked;
    result.dates.retain(|d| *d >= after);
    if result.dates.len() > usize::from(MAX_OCCURRENCES) {
        result.dates.truncate(usize::from(MAX_OCCURRENCES));
        result.limited = true;
    }
    if result.limited {
        out.warnings.push(format!(
            "{}: more occurrences than are read (at most {MAX_OCCURRENCES} in the window); the rest are left out",
            event.label
        ));
    }
    // An EXDATE written as a date removes that day's occurrence whatever its time.
    let excluded: Vec<(NaiveDateTime, bool)> = event
        .exdates
        .iter()
        .map(|m| (local_of(m), event.all_day || matches!(m, Moment::Date(_))))
        .collect();
    let series_id = BookingId::parse(event.id_base.clone()).ok();
    for occurrence in result.dates {
        let local = occurrence.naive_utc();
        let is_excluded = excluded.iter().any(|(x, by_date)| {
            if *by_date {
                x.date() == local.date()
            } else {
                *x == local
            }
        });
        if is_excluded {
            continue;
        }
        let start = match series_tz {
            Some(tz) => Moment::Local(local, tz),
            None => Moment::Date(local.date()),
        };
        let key = occurrence_key(&start, event.all_day);
        let replaced = exceptions.iter().any(|x| {
            x.uid == event.uid
                && x.recurrence_id
                    .is_some_and(|rid| occurrence_key(&rid, event.all_day) == key)
        });
        if replaced {
            continue;
        }
        // Each occurrence lasts as long as the first, in wall-clock time.
        let end = match start {
            Moment::Local(n, tz) => Moment::Local(n + length, tz),
            Moment::Date(d) => {
                Moment::Date((d.and_hms_opt(0, 0, 0).unwrap_or_default() + length).date())
            }
        };
        let id = format!("{}/{key}", event.id_base);
        emit(
            event,
            &id,
            start,
            Some(end),
            series_id.clone(),
            options,
            out,
        );
    }
}

fn weekday(w: ICalendarWeekday) -> chrono::Weekday {
    match w {
        ICalendarWeekday::Monday => chrono::Weekday::Mon,
        ICalendarWeekday::Tuesday => chrono::Weekday::Tue,
        ICalendarWeekday::Wednesday => chrono::Weekday::Wed,
        ICalendarWeekday::Thursday => chrono::Weekday::Thu,
        ICalendarWeekday::Friday => chrono::Weekday::Fri,
        ICalendarWeekday::Saturday => chrono::Weekday::Sat,
        ICalendarWeekday::Sunday => chrono::Weekday::Sun,
    }
}

/// calcard's leniently parsed rule (it takes Outlook's `BYDAY=MO, TU`) as an `rrule` rule.
fn build_rule(
    r: &ICalendarRecurrenceRule,
    until: Option<chrono::DateTime<rrule::Tz>>,
) -> rrule::RRule<rrule::Unvalidated> {
    use rrule::{Frequency, NWeekday};
    let freq = match r.freq {
        ICalendarFrequency::Yearly => Frequency::Yearly,
        ICalendarFrequency::Monthly => Frequency::Monthly,
        ICalendarFrequency::Weekly => Frequency::Weekly,
        ICalendarFrequency::Daily => Frequency::Daily,
        ICalendarFrequency::Hourly => Frequency::Hourly,
        ICalendarFrequency::Minutely => Frequency::Minutely,
        ICalendarFrequency::Secondly => Frequency::Secondly,
    };
    let mut rule = rrule::RRule::new(freq).interval(r.interval.unwrap_or(1).max(1));
    if let Some(count) = r.count {
        rule = rule.count(count);
    }
    if let Some(until) = until {
        rule = rule.until(until);
    }
    if let Some(wkst) = r.wkst {
        rule = rule.week_start(weekday(wkst));
    }
    if !r.byday.is_empty() {
        rule = rule.by_weekday(
            r.byday
                .iter()
                .map(|d| match d.ordwk {
                    Some(n) => NWeekday::Nth(n, weekday(d.weekday)),
                    None => NWeekday::Every(weekday(d.weekday)),
                })
                .collect(),
        );
    }
    if !r.bymonth.is_empty() {
        let months: Vec<chrono::Month> = r
            .bymonth
            .iter()
            .filter_map(|m| chrono::Month::try_from(m.month()).ok())
            .collect();
        rule = rule.by_month(&months);
    }
    if !r.bymonthday.is_empty() {
        rule = rule.by_month_day(r.bymonthday.clone());
    }
    if !r.byyearday.is_empty() {
        rule = rule.by_year_day(r.byyearday.clone());
    }
    if !r.byweekno.is_empty() {
        rule = rule.by_week_no(r.byweekno.clone());
    }
    if !r.bysetpos.is_empty() {
        rule = rule.by_set_pos(r.bysetpos.clone());
    }
    if !r.byhour.is_empty() {
        rule = rule.by_hour(r.byhour.clone());
    }
    if !r.byminute.is_empty() {
        rule = rule.by_minute(r.byminute.clone());
    }
    if !r.bysecond.is_empty() {
        rule = rule.by_second(r.bysecond.clone());
    }
    rule
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stockholm(s: &str) -> jiff::Timestamp {
        kalsync_core::Zone::stockholm()
            .parse_instant(s)
            .expect("time")
    }

    fn options(owner: Option<&str>) -> ImportOptions {
        ImportOptions {
            default_zone: "Europe/Stockholm".into(),
            window: Window {
                start: stockholm("2026-01-01 00:00"),
                end: stockholm("2027-01-01 00:00"),
            },
            owner: owner.map(str::to_owned),
        }
    }

    fn calendar(events: &str) -> String {
        format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\n\
             BEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n\
             RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\n\
             DTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n\
             RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n{events}END:VCALENDAR\r\n"
        )
    }

    fn read(events: &str) -> Imported {
        import(&calendar(events), &options(Some("anna@example.se"))).expect("imports")
    }

    fn starts(imported: &Imported) -> Vec<jiff::Timestamp> {
        let mut s: Vec<_> = imported
            .bookings
            .iter()
            .filter_map(|b| match b.time {
                BookingTime::Timed { start, .. } => Some(start),
                BookingTime::AllDay { .. } => None,
            })
            .collect();
        s.sort();
        s
    }

    #[test]
    fn outlook_properties_become_booking_fields() {
        let i = read(
            "BEGIN:VEVENT\r\nUID:a\r\nSUMMARY:Läkare\r\nDESCRIPTION:secret body\r\nCLASS:PRIVATE\r\n\
             DTSTART;TZID=W. Europe Standard Time:20261126T150000\r\n\
             DTEND;TZID=W. Europe Standard Time:20261126T160000\r\n\
             CATEGORIES:Kund,Semester\r\nX-MICROSOFT-CDO-BUSYSTATUS:OOF\r\n\
             ORGANIZER:mailto:bo@example.se\r\nATTENDEE;PARTSTAT=TENTATIVE:mailto:Anna@Example.se\r\n\
             END:VEVENT\r\n",
        );
        let b = &i.bookings[0];
        assert_eq!(b.free_busy, FreeBusy::Oof);
        assert_eq!(b.sensitivity, Sensitivity::Private);
        assert_eq!(b.categories, ["Kund", "Semester"]);
        assert_eq!(b.response, ResponseStatus::Tentative);
        assert_eq!(b.subject.as_deref(), Some("Läkare"));
        assert_eq!(b.time_zone.as_deref(), Some("W. Europe Standard Time"));
        assert_eq!(
            b.time,
            BookingTime::Timed {
                start: stockholm("2026-11-26 15:00"),
                end: stockholm("2026-11-26 16:00")
            }
        );
        assert!(
            !format!("{b:?}").contains("secret body"),
            "the body is never read"
        );
    }

    #[test]
    fn free_busy_falls_back_to_transp_and_status() {
        let i = read(
            "BEGIN:VEVENT\r\nUID:t\r\nDTSTART:20261123T080000Z\r\nDTEND:20261123T090000Z\r\nTRANSP:TRANSPARENT\r\nEND:VEVENT\r\n\
             BEGIN:VEVENT\r\nUID:u\r\nDTSTART:20261123T080000Z\r\nDTEND:20261123T090000Z\r\nSTATUS:TENTATIVE\r\nEND:VEVENT\r\n\
             BEGIN:VEVENT\r\nUID:v\r\nDTSTART:20261123T080000Z\r\nDTEND:20261123T090000Z\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\n",
        );
        let by_id = |id: &str| {
            i.bookings
                .iter()
                .find(|b| b.id.as_str() == id)
                .expect("booking")
        };
        assert_eq!(by_id("t").free_busy, FreeBusy::Free);
        assert_eq!(by_id("u").free_busy, FreeBusy::Tentative);
        assert!(by_id("v").cancelled);
        assert_eq!(by_id("v").response, ResponseStatus::NotResponded);
    }

    #[test]
    fn all_day_flag_with_local_midnights_gives_dates() {
        let i = read(
            "BEGIN:VEVENT\r\nUID:d\r\nDTSTART;TZID=W. Europe Standard Time:20261130T000000\r\n\
             DTEND;TZID=W. Europe Standard Time:20261205T000000\r\nX-MICROSOFT-CDO-ALLDAYEVENT:TRUE\r\nEND:VEVENT\r\n\
             BEGIN:VEVENT\r\nUID:e\r\nDTSTART;VALUE=DATE:20261208\r\nEND:VEVENT\r\n",
        );
        let date = |s: &str| s.parse::<jiff::civil::Date>().expect("date");
        assert_eq!(
            i.bookings[0].time,
            BookingTime::AllDay {
                first: date("2026-11-30"),
                end: date("2026-12-05")
            }
        );
        assert_eq!(
            i.bookings[1].time,
            BookingTime::AllDay {
                first: date("2026-12-08"),
                end: date("2026-12-09")
            }
        );
    }

    #[test]
    fn a_weekly_series_keeps_its_local_time_across_the_dst_change() {
        let i = read(
            "BEGIN:VEVENT\r\nUID:w\r\nDTSTART;TZID=W. Europe Standard Time:20260316T090000\r\n\
             DTEND;TZID=W. Europe Standard Time:20260316T093000\r\nRRULE:FREQ=WEEKLY;COUNT=3;BYDAY=MO\r\nEND:VEVENT\r\n",
        );
        assert_eq!(
            starts(&i),
            [
                stockholm("2026-03-16 09:00"),
                stockholm("2026-03-23 09:00"),
                stockholm("2026-03-30 09:00")
            ]
        );
        assert!(
            i.bookings
                .iter()
                .all(|b| b.series_id.as_ref().is_some_and(|s| s.as_str() == "w"))
        );
    }

    #[test]
    fn exceptions_move_or_cancel_their_occurrence_and_exdates_remove_it() {
        let i = read(
            "BEGIN:VEVENT\r\nUID:s\r\nSEQUENCE:0\r\nDTSTART;TZID=W. Europe Standard Time:20261123T090000\r\n\
             DTEND;TZID=W. Europe Standard Time:20261123T091500\r\nRRULE:FREQ=DAILY;COUNT=5\r\n\
             EXDATE;VALUE=DATE:20261127\r\nEND:VEVENT\r\n\
             BEGIN:VEVENT\r\nUID:s\r\nSEQUENCE:2\r\nRECURRENCE-ID:20261124T080000Z\r\n\
             DTSTART;TZID=W. Europe Standard Time:20261124T100000\r\n\
             DTEND;TZID=W. Europe Standard Time:20261124T101500\r\nEND:VEVENT\r\n\
             BEGIN:VEVENT\r\nUID:s\r\nRECURRENCE-ID;TZID=W. Europe Standard Time:20261125T090000\r\n\
             DTSTART;TZID=W. Europe Standard Time:20261125T090000\r\n\
             DTEND;TZID=W. Europe Standard Time:20261125T091500\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\n",
        );
        let live: Vec<_> = i.bookings.iter().filter(|b| !b.cancelled).collect();
        let mut times: Vec<_> = live
            .iter()
            .map(|b| match b.time {
                BookingTime::Timed { start, .. } => start,
                BookingTime::AllDay { .. } => jiff::Timestamp::UNIX_EPOCH,
            })
            .collect();
        times.sort();
        assert_eq!(
            times,
            [
                stockholm("2026-11-23 09:00"),
                stockholm("2026-11-24 10:00"),
                stockholm("2026-11-26 09:00")
            ]
        );
        let cancelled: Vec<_> = i.bookings.iter().filter(|b| b.cancelled).collect();
        assert_eq!(cancelled.len(), 1);
        assert_eq!(
            cancelled[0].series_id.as_ref().map(|s| s.as_str()),
            Some("s")
        );
    }

    #[test]
    fn an_infinite_series_is_expanded_only_inside_the_window() {
        let text = calendar(
            "BEGIN:VEVENT\r\nUID:forever\r\nDTSTART:20090101T120000Z\r\nDTEND:20090101T130000Z\r\nRRULE:FREQ=DAILY\r\nEND:VEVENT\r\n",
        );
        let mut o = options(None);
        o.window = Window {
            start: stockholm("2026-11-23 00:00"),
            end: stockholm("2026-11-30 00:00"),
        };
        let i = import(&text, &o).expect("imports");
        assert_eq!(i.bookings.len(), 7);
        assert!(i.warnings.is_empty(), "{:?}", i.warnings);
    }

    #[test]
    fn a_series_too_dense_to_reach_the_window_is_refused_quickly() {
        let mut o = options(None);
        o.window = Window {
            start: stockholm("2026-11-23 00:00"),
            end: stockholm("2026-11-30 00:00"),
        };
        let started = std::time::Instant::now();
        let refused = import(
            &calendar(
                "BEGIN:VEVENT\r\nUID:bomb\r\nDTSTART:19700101T000000Z\r\nDTEND:19700101T000001Z\r\nRRULE:FREQ=SECONDLY\r\nEND:VEVENT\r\n",
            ),
            &o,
        );
        assert!(
            matches!(&refused, Err(IcsError::TooManyOccurrences(series)) if series.contains("bomb")),
            "{refused:?}"
        );
        // Many such series share one budget: the file is refused after the first.
        let many: String = (0..200)
            .map(|i| format!("BEGIN:VEVENT\r\nUID:b{i}\r\nDTSTART:20260101T000000Z\r\nDTEND:20260101T000001Z\r\nRRULE:FREQ=MINUTELY\r\nEND:VEVENT\r\n"))
            .collect();
        assert!(matches!(
            import(&calendar(&many), &o),
            Err(IcsError::TooManyOccurrences(_))
        ));
        // Reported here, not timed: a debug build takes well under a second for both.
        eprintln!("refused in {:?}", started.elapsed());
        // A daily series since 1900 still reaches the window.
        let old = import(
            &calendar(
                "BEGIN:VEVENT\r\nUID:old\r\nDTSTART:19000101T120000Z\r\nDTEND:19000101T130000Z\r\nRRULE:FREQ=DAILY\r\nEND:VEVENT\r\n",
            ),
            &o,
        )
        .expect("imports");
        assert_eq!(old.bookings.len(), 7);
    }

    #[test]
    fn method_cancel_cancels_every_event_and_missing_uids_get_ids() {
        let text = "BEGIN:VCALENDAR\r\nMETHOD:CANCEL\r\nBEGIN:VEVENT\r\nDTSTART:20261123T080000Z\r\nDTEND:20261123T090000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let i = import(text, &options(None)).expect("imports");
        assert!(i.bookings[0].cancelled);
        assert!(i.bookings[0].id.as_str().starts_with("event-0-"));
    }

    #[test]
    fn broken_input_is_refused_or_warned_about_never_a_panic() {
        assert!(matches!(
            import("hello", &options(None)),
            Err(IcsError::NotICalendar(_))
        ));
        assert!(matches!(
            import("", &options(None)),
            Err(IcsError::NotICalendar(_))
        ));
        let mut o = options(None);
        o.default_zone = "Nowhere/Atlantis".into();
        assert!(matches!(
            import(&calendar(""), &o),
            Err(IcsError::UnknownZone(_))
        ));
        let i = import(
            &calendar("BEGIN:VEVENT\r\nUID:x\r\nDTSTART:garbage\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:y\r\nSUMMARY:no start\r\nEND:VEVENT\r\n"),
            &options(None),
        )
        .expect("imports");
        assert!(i.bookings.is_empty());
        assert_eq!(i.warnings.len(), 2, "{:?}", i.warnings);
        let truncated = import(
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:z\r\nDTSTART:20261123T080000Z\r\n",
            &options(None),
        );
        let truncated = truncated.expect("what is there is read");
        assert!(
            truncated.warnings[0].contains("cut off"),
            "{:?}",
            truncated.warnings
        );
        let backwards = import(
            &calendar("BEGIN:VEVENT\r\nUID:b\r\nDTSTART:20261123T090000Z\r\nDTEND:20261123T080000Z\r\nEND:VEVENT\r\n"),
            &options(None),
        )
        .expect("imports");
        assert!(backwards.bookings.is_empty());
        assert!(
            backwards.warnings[0].contains("ends before it starts"),
            "{:?}",
            backwards.warnings
        );
    }
}
