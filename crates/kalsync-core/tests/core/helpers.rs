//! Builders for bookings in Stockholm time and a readable rendering of timelines.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use kalsync_core::{
    Booking, BookingId, BookingTime, FreeBusy, InstanceSettings, Timeline, Window, build_timeline,
};

pub(crate) fn tz() -> TimeZone {
    TimeZone::get("Europe/Stockholm").expect("zone")
}

pub(crate) use kalsync_testkit::at;

pub(crate) fn timed(
    id: &str,
    from: &str,
    to: &str,
    free_busy: FreeBusy,
    subject: Option<&str>,
) -> Booking {
    let mut b = Booking::new(
        BookingId::parse(id).expect("id"),
        BookingTime::timed(at(from), at(to)).expect("time"),
    );
    b.free_busy = free_busy;
    b.subject = subject.map(str::to_owned);
    b
}

pub(crate) fn all_day(
    id: &str,
    first: &str,
    end: &str,
    free_busy: FreeBusy,
    subject: Option<&str>,
) -> Booking {
    let mut b = Booking::new(
        BookingId::parse(id).expect("id"),
        BookingTime::all_day(
            first.parse::<Date>().expect("date"),
            end.parse::<Date>().expect("date"),
        )
        .expect("time"),
    );
    b.free_busy = free_busy;
    b.subject = subject.map(str::to_owned);
    b
}

pub(crate) fn wide() -> Window {
    Window {
        start: at("2026-01-01 00:00"),
        end: at("2027-12-31 00:00"),
    }
}

pub(crate) fn timeline(bookings: &[Booking], settings: &InstanceSettings) -> Timeline {
    build_timeline(bookings, settings, wide())
}

/// The announcements of every absence: `[(Swedish, English)]`.
pub(crate) fn messages(bookings: &[Booking], settings: &InstanceSettings) -> Vec<(String, String)> {
    let t = timeline(bookings, settings);
    t.absences
        .iter()
        .map(|a| {
            (
                t.message(a, settings, kalsync_core::Lang::Sv),
                t.message(a, settings, kalsync_core::Lang::En),
            )
        })
        .collect()
}

fn local(t: Timestamp) -> String {
    t.to_zoned(tz()).strftime("%a %Y-%m-%d %H:%M").to_string()
}

/// One line per absence: `reason/mode Mon 2026-11-23 12:00 → Mon 2026-11-23 13:00 back …`.
pub(crate) fn lines(bookings: &[Booking], settings: &InstanceSettings) -> Vec<String> {
    timeline(bookings, settings)
        .absences
        .iter()
        .map(|a| {
            format!(
                "{}/{} {} → {} back {}",
                a.reason,
                a.mode.as_str(),
                local(a.start),
                local(a.end),
                local(a.returns_at)
            )
        })
        .collect()
}
