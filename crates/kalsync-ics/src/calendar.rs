//! Reading one `VCALENDAR`: its events, single ones and series expanded, and the
//! exceptions that replace a series' occurrences (or stand alone when their master is
//! missing).

use calcard::common::timezone::Tz;
use calcard::icalendar::{ICalendar, ICalendarComponentType, ICalendarProperty, ICalendarValue};
use kalsync_core::BookingId;

use crate::booking::emit;
use crate::event::{Event, read_event};
use crate::moment::to_jiff;
use crate::recurrence::{expand, occurrence_key};
use crate::{ImportOptions, Imported, shorten};

pub(crate) fn read_calendar(
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
