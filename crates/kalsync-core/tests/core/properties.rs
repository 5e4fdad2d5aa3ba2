//! Properties of every timeline: no overlaps, inside its bookings, merged, order-free.

use jiff::{SignedDuration, Timestamp};
use kalsync_core::timeline::interval;
use kalsync_core::{
    Absence, Booking, BookingId, BookingTime, FreeBusy, InstanceSettings, ResponseStatus,
    Sensitivity, Template, UserChoice, Window, build_timeline,
};
use proptest::prelude::*;

use crate::helpers::{at, tz};

/// Start slot, length, all-day, free/busy, subject, category, private, declined, cancelled.
type Spec = (u32, u32, bool, usize, usize, usize, bool, bool, bool);

fn booking_strategy() -> impl Strategy<Value = Spec> {
    (
        0u32..(4 * 24 * 4), // start slot of 15 minutes over four days
        1u32..(12 * 4),     // length in slots
        prop::bool::weighted(0.15),
        0usize..6,                  // free/busy
        0usize..6,                  // subject
        0usize..4,                  // category
        prop::bool::weighted(0.1),  // private
        prop::bool::weighted(0.1),  // declined
        prop::bool::weighted(0.05), // cancelled
    )
}

const SUBJECTS: [Option<&str>; 6] = [
    None,
    Some("LUN: lunch"),
    Some("lun; pizza"),
    Some("MOT: kund"),
    Some("SEM: ledig"),
    Some("Planering"),
];
const CATEGORIES: [Option<&str>; 4] = [
    None,
    Some("Semester"),
    Some("Ingen hänvisning"),
    Some("Kund"),
];

fn make(spec: &[Spec]) -> Vec<Booking> {
    let base = at("2026-11-23 00:00");
    spec.iter()
        .enumerate()
        .map(
            |(i, &(slot, len, all_day, fb, subject, category, private, declined, cancelled))| {
                let time = if all_day {
                    let first = base
                        .to_zoned(tz())
                        .date()
                        .checked_add(jiff::Span::new().days(i64::from(slot % 4)))
                        .expect("date");
                    let end = first
                        .checked_add(jiff::Span::new().days(i64::from(1 + len % 3)))
                        .expect("date");
                    BookingTime::all_day(first, end).expect("all day")
                } else {
                    let start = base + SignedDuration::from_mins(i64::from(slot) * 15);
                    BookingTime::timed(
                        start,
                        start + SignedDuration::from_mins(i64::from(len) * 15),
                    )
                    .expect("timed")
                };
                let mut b = Booking::new(BookingId::parse(format!("b{i}")).expect("id"), time);
                b.free_busy = FreeBusy::ALL[fb];
                b.subject = SUBJECTS[subject].map(str::to_owned);
                b.categories = CATEGORIES[category]
                    .map(str::to_owned)
                    .into_iter()
                    .collect();
                if private {
                    b.sensitivity = Sensitivity::Private;
                }
                if declined {
                    b.response = ResponseStatus::Declined;
                }
                b.cancelled = cancelled;
                b
            },
        )
        .collect()
}

fn settings_strategy() -> impl Strategy<Value = InstanceSettings> {
    (0usize..4, prop::bool::ANY, prop::bool::ANY, 0i64..3).prop_map(|(t, choice, chain, gap)| {
        let mut s = InstanceSettings::with_template(Template::ALL[t]);
        s.user_choice = if choice {
            UserChoice::Any
        } else {
            UserChoice::Off
        };
        s.chain_return_time = chain;
        s.merge_gap = SignedDuration::from_mins(gap * 15);
        s.private = kalsync_core::PrivatePolicy::Anonymous;
        s
    })
}

fn window() -> Window {
    Window {
        start: at("2026-11-20 00:00"),
        end: at("2026-12-10 00:00"),
    }
}

/// Merges adjacent absences with the same reason and mode, as SPEC §3.5 asks.
fn merge(absences: &[Absence]) -> Vec<(String, String, Timestamp, Timestamp)> {
    let mut out: Vec<(String, String, Timestamp, Timestamp)> = Vec::new();
    for a in absences {
        let key = (a.reason.to_string(), a.mode.as_str().to_owned());
        match out.last_mut() {
            Some(last) if last.3 == a.start && (last.0.clone(), last.1.clone()) == key => {
                last.3 = a.end
            }
            _ => out.push((key.0, key.1, a.start, a.end)),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn absences_never_overlap_and_are_ordered(spec in prop::collection::vec(booking_strategy(), 0..25), s in settings_strategy()) {
        let t = build_timeline(&make(&spec), &s, window());
        for a in &t.absences {
            prop_assert!(a.start < a.end);
            prop_assert!(a.returns_at >= a.end, "return {} before end {}", a.returns_at, a.end);
        }
        for pair in t.absences.windows(2) {
            prop_assert!(pair[0].end <= pair[1].start, "{:?} overlaps {:?}", pair[0], pair[1]);
        }
    }

    #[test]
    fn each_absence_lies_inside_the_union_of_its_bookings(spec in prop::collection::vec(booking_strategy(), 0..25), s in settings_strategy()) {
        let bookings = make(&spec);
        let t = build_timeline(&bookings, &s, window());
        for a in &t.absences {
            let mut covers: Vec<(Timestamp, Timestamp)> = a.bookings.iter().map(|id| {
                let b = bookings.iter().find(|b| &b.id == id).expect("booking exists");
                interval(&b.time, &tz()).expect("interval")
            }).collect();
            covers.sort();
            let mut reached = a.start;
            for (s, e) in covers {
                if s <= reached { reached = reached.max(e); }
            }
            prop_assert!(reached >= a.end, "{:?} not covered by its bookings", a);
        }
    }

    #[test]
    fn merging_the_result_again_changes_nothing(spec in prop::collection::vec(booking_strategy(), 0..25), s in settings_strategy()) {
        let t = build_timeline(&make(&spec), &s, window());
        let merged = merge(&t.absences);
        prop_assert_eq!(merged.len(), t.absences.len());
        let again = build_timeline(&make(&spec), &s, window());
        prop_assert_eq!(again, t);
    }

    #[test]
    fn the_result_does_not_depend_on_input_order(spec in prop::collection::vec(booking_strategy(), 0..25), s in settings_strategy(), seed in any::<u64>()) {
        let bookings = make(&spec);
        let mut shuffled = bookings.clone();
        // A deterministic Fisher–Yates shuffle driven by the seed.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            let j = usize::try_from(state % (i as u64 + 1)).expect("index");
            shuffled.swap(i, j);
        }
        prop_assert_eq!(build_timeline(&shuffled, &s, window()), build_timeline(&bookings, &s, window()));
    }
}
