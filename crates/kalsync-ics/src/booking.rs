//! One occurrence of an event as a booking: its dates or instants, kept only when it
//! overlaps the window.

use kalsync_core::{BookingId, BookingTime};

use crate::event::Event;
use crate::moment::{Moment, to_jiff, to_jiff_date};
use crate::{ImportOptions, Imported};

pub(crate) fn emit(
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
