//! Recurrence: expanding a series' `RRULE` and `RDATE`s inside the window (with the
//! file's step budget), leaving out `EXDATE`s and the occurrences exceptions replace,
//! and the key an occurrence and its exception share.

use calcard::icalendar::{ICalendarFrequency, ICalendarRecurrenceRule, ICalendarWeekday};
use chrono::{NaiveDateTime, TimeDelta, TimeZone, Utc};
use kalsync_core::BookingId;

use crate::booking::emit;
use crate::event::Event;
use crate::moment::Moment;
use crate::{ImportOptions, Imported, MAX_EXPANSION_STEPS, MAX_OCCURRENCES};

/// The key an occurrence and its exception share: the local date for all-day series, the
/// UTC instant otherwise.
pub(crate) fn occurrence_key(m: &Moment, all_day: bool) -> String {
    if all_day {
        m.local().format("%Y%m%d").to_string()
    } else {
        m.instant()
            .map(|t| t.format("%Y%m%dT%H%M%SZ").to_string())
            .unwrap_or_default()
    }
}

/// Expands a series inside the window, leaving out `EXDATE`s and the occurrences its
/// exceptions replace.
pub(crate) fn expand(
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
