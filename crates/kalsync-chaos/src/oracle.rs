//! The oracle and the comparison: the timeline the core crate builds straight from a
//! simulator's own calendar records — read with the core's own parsing of show-as,
//! sensitivity and response, so the oracle cannot read a value otherwise than the
//! product — set against the service's timeline and what the PBX shows.

use jiff::{SignedDuration, Timestamp};
use kalsync_core::{
    Booking, BookingId, BookingTime, InstanceSettings, Timeline, Window, Zone, build_timeline,
};
use kalsync_graph_sim::calendar::Occurrence;

use crate::pbx::{Newest, Shown};
use crate::workload::Mailbox;

/// A calendar item as the domain sees it, from the simulator's own record; none when
/// the core cannot read it (as the service's readers refuse such an item).
fn booking(o: &Occurrence) -> Option<Booking> {
    let time = if o.all_day {
        let zone = Zone::parse_any(&o.time_zone).ok()?;
        BookingTime::all_day(
            o.start.to_zoned(zone.tz().clone()).date(),
            o.end.to_zoned(zone.tz().clone()).date(),
        )
        .ok()?
    } else {
        BookingTime::timed(o.start, o.end).ok()?
    };
    let mut b = Booking::new(BookingId::parse(o.id.clone()).ok()?, time);
    b.series_id = o.series.clone().and_then(|s| BookingId::parse(s).ok());
    b.free_busy = o.show_as.parse().ok()?;
    b.sensitivity = o.sensitivity.parse().ok()?;
    b.categories = o.categories.clone();
    b.cancelled = o.is_cancelled;
    b.response = o.response.parse().ok()?;
    b.subject = Some(o.subject.clone());
    Some(b)
}

/// The timeline a mailbox should have at `now`; none when its calendar cannot be read.
pub(crate) fn oracle(
    mailbox: &Mailbox,
    settings: &InstanceSettings,
    now: Timestamp,
) -> Option<Timeline> {
    let window = Window::sync(now, settings.days_ahead);
    let items = mailbox
        .calendars
        .occurrences(&mailbox.email, window.start, window.end)
        .ok()?;
    let bookings: Vec<Booking> = items.iter().filter_map(booking).collect();
    Some(build_timeline(&bookings, settings, window))
}

/// An absence as both sides describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    reason: String,
    mode: String,
    start: Timestamp,
    end: Timestamp,
    returns_at: Timestamp,
}

fn expected(timeline: &Timeline, from: Timestamp, to: Timestamp) -> Vec<Seen> {
    timeline
        .overlapping(from, to)
        .map(|a| Seen {
            reason: a.reason.to_string(),
            mode: a.mode.as_str().to_owned(),
            start: a.start,
            end: a.end,
            returns_at: a.returns_at,
        })
        .collect()
}

/// The timeline in the admin API's answer for a user's status.
fn served(status: &serde_json::Value, from: Timestamp, to: Timestamp) -> Vec<Seen> {
    status["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| {
            Some(Seen {
                reason: a["reason"].as_str()?.to_owned(),
                mode: a["mode"].as_str()?.to_owned(),
                start: a["start"].as_str()?.parse().ok()?,
                end: a["end"].as_str()?.parse().ok()?,
                returns_at: a["returns_at"].as_str()?.parse().ok()?,
            })
        })
        .filter(|a| a.start < to && a.end > from)
        .collect()
}

/// Where one user differs from the oracle at `now`, if anywhere: `truth` is the
/// oracle's timeline, `status` the admin API's answer, `pbx` what the PBX got.
pub(crate) fn difference(
    email: &str,
    truth: &Timeline,
    status: &serde_json::Value,
    pbx: Option<&Newest>,
    now: Timestamp,
    days_ahead: u16,
) -> Option<String> {
    // The horizon stops two days short of the window's end, where the service's window
    // (taken at its last read) and the oracle's (taken now) may cut differently.
    let to = now + SignedDuration::from_hours(24 * i64::from(days_ahead.saturating_sub(2)));
    let from = now + SignedDuration::from_secs(5);
    let want = expected(truth, from, to);
    let got = served(status, from, to);
    // Return times past the horizon depend on what lies beyond it.
    let cut = |v: Vec<Seen>| -> Vec<Seen> {
        v.into_iter()
            .map(|mut a| {
                if a.returns_at > to {
                    a.returns_at = to;
                }
                a
            })
            .collect()
    };
    let (want, got) = (cut(want), cut(got));
    if want != got {
        return Some(format!(
            "{email}: timeline differs\n      oracle  {want:?}\n      service {got:?}"
        ));
    }
    // The PBX shows what is in force now, unless a change is due within seconds.
    let edge = |t: Timestamp| t.duration_since(now).abs() < SignedDuration::from_secs(5);
    if truth.absences.iter().any(|a| edge(a.start) || edge(a.end)) {
        return None;
    }
    let now_truth = truth.at(now).map(|a| Shown {
        reason: a.reason.to_string(),
        mode: a.mode,
        until: a.end,
        returns_at: a.returns_at,
    });
    let shown = pbx.and_then(|(_, s)| s.clone());
    let comparable = |s: &Option<Shown>| {
        s.as_ref().map(|s| {
            (
                s.reason.clone(),
                s.mode,
                s.until.min(to),
                s.returns_at.min(to),
            )
        })
    };
    if comparable(&now_truth) != comparable(&shown) && (now_truth.is_some() || pbx.is_some()) {
        return Some(format!(
            "{email}: the PBX shows {shown:?}, the oracle {now_truth:?}"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use kalsync_core::{FreeBusy, ResponseStatus, Sensitivity};

    use crate::workload::SHOW_AS;

    /// Every value the workload writes reads as the old hand-made mapping read it: the
    /// oracle leaves none of the workload's bookings out.
    #[test]
    fn the_core_reads_every_value_the_workload_writes() {
        let show_as: Vec<FreeBusy> = SHOW_AS.iter().filter_map(|s| s.parse().ok()).collect();
        assert_eq!(
            show_as,
            [
                FreeBusy::Busy,
                FreeBusy::Busy,
                FreeBusy::Oof,
                FreeBusy::Free,
                FreeBusy::Tentative,
                FreeBusy::WorkingElsewhere
            ]
        );
        for (text, want) in [
            ("normal", Sensitivity::Normal),
            ("private", Sensitivity::Private),
        ] {
            assert_eq!(text.parse::<Sensitivity>(), Ok(want), "{text}");
        }
        for (text, want) in [
            ("organizer", ResponseStatus::Organizer),
            ("accepted", ResponseStatus::Accepted),
            ("declined", ResponseStatus::Declined),
        ] {
            assert_eq!(text.parse::<ResponseStatus>(), Ok(want), "{text}");
        }
    }
}
