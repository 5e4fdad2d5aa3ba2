//! Reading one `VEVENT`: its times, recurrence rule and dates, and the Outlook
//! properties (`X-MICROSOFT-CDO-*`, `CLASS`, `CATEGORIES`, the owner's response) mapped
//! to the fields of a booking.

use calcard::common::timezone::Tz;
use calcard::icalendar::{
    ICalendarComponent, ICalendarEntry, ICalendarParameterName, ICalendarProperty,
    ICalendarRecurrenceRule, ICalendarValue,
};
use chrono::TimeDelta;
use kalsync_core::{Booking, BookingId, BookingTime, FreeBusy, ResponseStatus, Sensitivity};

use crate::moment::{Moment, read_moment};
use crate::{ImportOptions, Imported, shorten};

/// One `VEVENT`, read.
pub(crate) struct Event {
    pub(crate) id_base: String,
    pub(crate) uid: Option<String>,
    pub(crate) label: String,
    pub(crate) start: Moment,
    pub(crate) end: Option<Moment>,
    pub(crate) duration: Option<TimeDelta>,
    pub(crate) all_day: bool,
    pub(crate) rule: Option<ICalendarRecurrenceRule>,
    pub(crate) exdates: Vec<Moment>,
    pub(crate) rdates: Vec<Moment>,
    pub(crate) recurrence_id: Option<Moment>,
    pub(crate) template: Booking,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn read_event(
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
