//! Properties of every timeline: no overlaps, inside its bookings, merged, order-free.

use jiff::{SignedDuration, Timestamp};
use kalsync_core::timeline::interval;
use kalsync_core::{
    Absence, Booking, BookingId, BookingTime, FreeBusy, InstanceSettings, Mode, Override,
    ReasonCode, ResponseStatus, Sensitivity, Source, Template, UserChoice, Window, build_timeline,
    build_timeline_with,
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

/// Source, start slot, length in slots (0: until cleared), status (0: available).
type OverrideSpec = (usize, u32, u32, usize);

fn override_strategy() -> impl Strategy<Value = OverrideSpec> {
    (0usize..3, 0u32..(4 * 24 * 4), 0u32..(24 * 4), 0usize..4)
}

const OVERRIDE_SOURCES: [Source; 3] = [Source::Manual, Source::Phone, Source::AutomaticReplies];
const OVERRIDE_STATUS: [Option<(&str, Mode)>; 4] = [
    None,
    Some(("sick", Mode::Divert)),
    Some(("out_of_office", Mode::Info)),
    Some(("meeting", Mode::Divert)),
];

fn overrides(spec: &[OverrideSpec]) -> Vec<Override> {
    let base = at("2026-11-23 00:00");
    spec.iter()
        .enumerate()
        .map(|(i, &(source, slot, len, status))| {
            let start = base + SignedDuration::from_mins(15 * i64::from(slot));
            Override {
                source: OVERRIDE_SOURCES[source],
                id: format!("o{i}"),
                start,
                end: (len > 0).then(|| start + SignedDuration::from_mins(15 * i64::from(len))),
                status: OVERRIDE_STATUS[status]
                    .map(|(r, m)| (ReasonCode::parse(r).expect("code"), m)),
            }
        })
        .collect()
}

/// Every quarter of an hour over the four days the specs fall in.
fn moments() -> impl Iterator<Item = Timestamp> {
    let base = at("2026-11-23 00:00");
    (0..(6 * 24 * 4)).map(move |q| base + SignedDuration::from_mins(15 * q + 7))
}

/// What is in force at `t`: reason and mode, or none.
fn in_force(t: &kalsync_core::Timeline, at: Timestamp) -> Option<(String, Mode)> {
    t.at(at).map(|a| (a.reason.to_string(), a.mode))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_highest_source_in_force_decides_and_what_is_below_shows_when_it_ends(
        spec in prop::collection::vec(booking_strategy(), 0..15),
        over in prop::collection::vec(override_strategy(), 0..4),
        s in settings_strategy(),
    ) {
        let bookings = make(&spec);
        let extra = overrides(&over);
        let plain = build_timeline(&bookings, &s, window());
        let t = build_timeline_with(&bookings, &extra, &s, window());
        for pair in t.absences.windows(2) {
            prop_assert!(pair[0].end <= pair[1].start, "{:?} overlaps {:?}", pair[0], pair[1]);
        }
        for m in moments() {
            let live: Vec<&Override> = extra
                .iter()
                .filter(|o| o.start <= m && o.end.is_none_or(|e| m < e))
                .collect();
            // The override of the highest source in force (ties: as the sweep orders them).
            let top = live.iter().map(|o| o.source).min();
            let booked = in_force(&plain, m);
            match top {
                // No override: the bookings alone.
                None => prop_assert_eq!(in_force(&t, m), booked.clone(), "at {}", m),
                Some(Source::AutomaticReplies) if booked.is_some() => {
                    prop_assert_eq!(in_force(&t, m), booked.clone(), "bookings win over automatic replies at {}", m)
                }
                Some(top) => {
                    let candidates: Vec<Option<(String, Mode)>> = live
                        .iter()
                        .filter(|o| o.source == top)
                        .map(|o| o.status.as_ref().map(|(r, md)| (r.to_string(), *md)))
                        .collect();
                    let got = in_force(&t, m);
                    prop_assert!(candidates.contains(&got), "at {}: {:?} is none of {:?}", m, got, candidates);
                    if let Some(a) = t.at(m) {
                        prop_assert_eq!(a.source, top);
                    }
                }
            }
        }
    }

    #[test]
    fn overrides_in_any_order_give_one_timeline(
        spec in prop::collection::vec(booking_strategy(), 0..10),
        over in prop::collection::vec(override_strategy(), 0..5),
        s in settings_strategy(),
    ) {
        let bookings = make(&spec);
        let extra = overrides(&over);
        let mut reversed = extra.clone();
        reversed.reverse();
        prop_assert_eq!(
            build_timeline_with(&bookings, &extra, &s, window()),
            build_timeline_with(&bookings, &reversed, &s, window())
        );
    }
}

#[test]
fn a_manual_status_wins_and_an_open_one_tells_no_return_time() {
    let s = InstanceSettings::default();
    let lunch = Override {
        source: Source::Phone,
        id: "back".into(),
        start: at("2026-11-23 12:20"),
        end: Some(at("2026-11-23 13:00")),
        status: None,
    };
    let sick = Override {
        source: Source::Manual,
        id: "reception".into(),
        start: at("2026-11-23 12:40"),
        end: None,
        status: Some((ReasonCode::parse("sick").expect("code"), Mode::Divert)),
    };
    let ooo = Override {
        source: Source::AutomaticReplies,
        id: "oof".into(),
        start: at("2026-11-23 08:00"),
        end: Some(at("2026-11-23 17:00")),
        status: Some((
            ReasonCode::parse("out_of_office").expect("code"),
            Mode::Info,
        )),
    };
    let t = build_timeline_with(&[], &[lunch, sick, ooo], &s, window());
    let seen: Vec<(String, Source, bool)> = t
        .absences
        .iter()
        .map(|a| (a.reason.to_string(), a.source, a.open_ended))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("out_of_office".into(), Source::AutomaticReplies, false),
            ("sick".into(), Source::Manual, true),
        ],
        "{t:?}"
    );
    // The phone's "back" hid the automatic replies from 12:20 until sick took over.
    assert_eq!(t.absences[0].end, at("2026-11-23 12:20"));
    assert_eq!(t.absences[1].start, at("2026-11-23 12:40"));
    assert_eq!(
        t.message(&t.absences[1], &s, kalsync_core::Lang::Sv),
        "Sjuk / VAB",
        "until cleared: no return time"
    );
    assert!(
        t.message(&t.absences[0], &s, kalsync_core::Lang::Sv)
            .contains("åter")
    );
}

#[test]
fn automatic_replies_ending_friday_afternoon_return_monday_morning() {
    // 2026-11-27 is a Friday; working hours 08:00–17:00 on weekdays (the default).
    let s = InstanceSettings::default();
    let replies =
        kalsync_core::AutomaticReplies::scheduled(at("2026-11-25 08:00"), at("2026-11-27 17:00"))
            .expect("period")
            .as_override(&s.automatic_replies, at("2026-11-24 09:00"), None)
            .expect("ahead");
    let t = build_timeline_with(
        &[],
        &[replies],
        &s,
        Window {
            start: at("2026-11-23 00:00"),
            end: at("2026-12-07 00:00"),
        },
    );
    assert_eq!(t.absences.len(), 1, "{t:?}");
    let a = &t.absences[0];
    assert_eq!(
        (a.source, a.reason.as_str(), a.mode),
        (Source::AutomaticReplies, "out_of_office", Mode::Info)
    );
    assert_eq!(a.returns_at, at("2026-11-30 08:00"), "Monday 08:00");
    assert_eq!(
        t.message(a, &s, kalsync_core::Lang::Sv),
        "Ej på kontoret, åter måndag 30 november 08.00"
    );
}

#[test]
fn a_teams_call_beats_a_booking_shown_for_information_but_not_its_divert() {
    use crate::helpers::timed;
    let call = Override {
        source: Source::Teams,
        id: "presence".into(),
        start: at("2026-11-23 12:10"),
        end: None,
        status: Some((ReasonCode::parse("busy").expect("code"), Mode::Info)),
    };
    let shown = |bookings: &[Booking], s: &InstanceSettings| -> Vec<(String, Source)> {
        build_timeline_with(bookings, std::slice::from_ref(&call), s, window())
            .absences
            .iter()
            .filter(|a| a.start < at("2026-11-23 13:00") && a.end > at("2026-11-23 12:00"))
            .map(|a| (a.reason.to_string(), a.source))
            .collect()
    };
    // A busy booking shown for information: the call is what the PBX shows from 12:10.
    let s = InstanceSettings::default();
    let lunch = timed(
        "lunch",
        "2026-11-23 12:00",
        "2026-11-23 13:00",
        FreeBusy::Busy,
        Some("lunch"),
    );
    let sources: Vec<Source> = shown(std::slice::from_ref(&lunch), &s)
        .into_iter()
        .map(|(_, source)| source)
        .collect();
    assert_eq!(sources, vec![Source::Booking, Source::Teams]);
    // Out of office diverts (showas OOF in the diverting template): the booking wins…
    let diverting = InstanceSettings::with_template(Template::ShowasDivert);
    let away = timed(
        "away",
        "2026-11-23 12:00",
        "2026-11-23 13:00",
        FreeBusy::Oof,
        None,
    );
    let got = shown(std::slice::from_ref(&away), &diverting);
    assert!(
        got.iter().all(|(_, source)| *source == Source::Booking),
        "{got:?}"
    );
    // …unless the instance puts Teams above diverts.
    let mut above = diverting.clone();
    above.teams.above_diverts = true;
    let got = shown(std::slice::from_ref(&away), &above);
    assert_eq!(got.last(), Some(&("busy".into(), Source::Teams)), "{got:?}");
    // And Teams beats automatic replies.
    let ooo = Override {
        source: Source::AutomaticReplies,
        id: "oof".into(),
        start: at("2026-11-23 08:00"),
        end: Some(at("2026-11-23 17:00")),
        status: Some((
            ReasonCode::parse("out_of_office").expect("code"),
            Mode::Info,
        )),
    };
    let t = build_timeline_with(&[], &[call.clone(), ooo], &s, window());
    assert_eq!(
        t.at(at("2026-11-23 12:30")).map(|a| a.source),
        Some(Source::Teams)
    );
}
