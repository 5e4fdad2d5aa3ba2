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

mod booking;
mod calendar;
mod error;
mod event;
mod moment;
mod recurrence;

use std::str::FromStr;

use calcard::common::timezone::Tz;
use calcard::{Entry, Parser};
use kalsync_core::{Booking, Window};

pub use error::IcsError;

use calendar::read_calendar;

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
    pub(crate) steps: u32,
    /// The series that used up the steps, when one did.
    pub(crate) too_much: Option<String>,
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

pub(crate) fn shorten(text: &str) -> String {
    let mut s: String = text.chars().take(60).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use kalsync_core::{BookingTime, FreeBusy, ResponseStatus, Sensitivity};

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
