//! The cases of SPEC §3, one test each, in the words of the customers' guides.

use jiff::SignedDuration;
use kalsync_core::{
    FreeBusy, InstanceSettings, Mode, PrivatePolicy, ReasonCode, ResponseStatus, Sensitivity,
    Template, UserChoice,
};

use crate::helpers::*;

fn settings(template: Template) -> InstanceSettings {
    InstanceSettings::with_template(template)
}

#[test]
fn all_day_booking_on_the_spring_dst_day_lasts_23_hours() {
    // 2026-03-29 is the last Sunday of March: clocks go forward in Stockholm.
    let b = [all_day(
        "oof",
        "2026-03-29",
        "2026-03-30",
        FreeBusy::Oof,
        None,
    )];
    let t = timeline(&b, &settings(Template::ShowasInfo));
    let a = &t.absences[0];
    assert_eq!(
        a.end.duration_since(a.start),
        SignedDuration::from_hours(23)
    );
    assert_eq!(
        lines(&b, &settings(Template::ShowasInfo)),
        [
            "out_of_office/info Sun 2026-03-29 00:00 → Mon 2026-03-30 00:00 back Mon 2026-03-30 08:00"
        ]
    );
}

#[test]
fn all_day_booking_on_the_autumn_dst_day_lasts_25_hours() {
    // 2026-10-25 is the last Sunday of October: clocks go back.
    let b = [all_day(
        "oof",
        "2026-10-25",
        "2026-10-26",
        FreeBusy::Oof,
        None,
    )];
    let t = timeline(&b, &settings(Template::ShowasInfo));
    let a = &t.absences[0];
    assert_eq!(
        a.end.duration_since(a.start),
        SignedDuration::from_hours(25)
    );
    assert_eq!(a.returns_at, at("2026-10-26 08:00"));
}

#[test]
fn a_week_of_vacation_ending_on_friday_returns_monday_morning() {
    let b = [all_day(
        "sem",
        "2026-11-23",
        "2026-11-28",
        FreeBusy::Oof,
        Some("SEM: Kreta"),
    )];
    let s = settings(Template::Prefix);
    assert_eq!(
        lines(&b, &s),
        ["vacation/divert Mon 2026-11-23 00:00 → Sat 2026-11-28 00:00 back Mon 2026-11-30 08:00"]
    );
    let m = &messages(&b, &s)[0];
    assert_eq!(m.0, "Semester, åter måndag 30 november 08.00");
    assert_eq!(m.1, "Vacation, back Monday 30 November 08:00");
}

#[test]
fn lunch_then_meeting_chains_the_return_time() {
    let b = [
        timed(
            "lunch",
            "2026-11-23 12:00",
            "2026-11-23 13:00",
            FreeBusy::Busy,
            Some("LUN: lunch"),
        ),
        timed(
            "meeting",
            "2026-11-23 13:00",
            "2026-11-23 14:00",
            FreeBusy::Busy,
            Some("Volvo"),
        ),
    ];
    let s = settings(Template::PrefixThenShowas);
    assert_eq!(
        lines(&b, &s),
        [
            "lunch/divert Mon 2026-11-23 12:00 → Mon 2026-11-23 13:00 back Mon 2026-11-23 14:00",
            "meeting/divert Mon 2026-11-23 13:00 → Mon 2026-11-23 14:00 back Mon 2026-11-23 14:00",
        ]
    );
    let m = messages(&b, &s);
    assert_eq!(m[0].0, "Lunch, åter 14.00");
    assert_eq!(m[0].1, "Lunch, back 14:00");
    assert_eq!(m[1].1, "Meeting, back 14:00");

    let mut unchained = s.clone();
    unchained.chain_return_time = false;
    assert_eq!(
        timeline(&b, &unchained).absences[0].returns_at,
        at("2026-11-23 13:00")
    );
}

#[test]
fn a_gap_within_merge_gap_still_chains() {
    let b = [
        timed(
            "lunch",
            "2026-11-23 12:00",
            "2026-11-23 13:00",
            FreeBusy::Busy,
            Some("LUN: lunch"),
        ),
        timed(
            "meeting",
            "2026-11-23 13:15",
            "2026-11-23 14:00",
            FreeBusy::Busy,
            None,
        ),
    ];
    let mut s = settings(Template::PrefixThenShowas);
    assert_eq!(
        timeline(&b, &s).absences[0].returns_at,
        at("2026-11-23 13:00")
    );
    s.merge_gap = SignedDuration::from_mins(15);
    assert_eq!(
        timeline(&b, &s).absences[0].returns_at,
        at("2026-11-23 14:00")
    );
}

#[test]
fn working_from_home_all_day_interrupted_by_a_divert_meeting() {
    let b = [
        all_day(
            "wfh",
            "2026-11-24",
            "2026-11-25",
            FreeBusy::WorkingElsewhere,
            None,
        ),
        timed(
            "meeting",
            "2026-11-24 10:00",
            "2026-11-24 11:00",
            FreeBusy::Busy,
            None,
        ),
    ];
    assert_eq!(
        lines(&b, &settings(Template::ShowasDivert)),
        [
            "working_from_home/info Tue 2026-11-24 00:00 → Tue 2026-11-24 10:00 back Wed 2026-11-25 08:00",
            "meeting/divert Tue 2026-11-24 10:00 → Tue 2026-11-24 11:00 back Tue 2026-11-24 11:00",
            "working_from_home/info Tue 2026-11-24 11:00 → Wed 2026-11-25 00:00 back Wed 2026-11-25 08:00",
        ]
    );
    let t = timeline(&b, &settings(Template::ShowasDivert));
    let m = messages(&b, &settings(Template::ShowasDivert));
    assert_eq!(m[1].0, "Möte, åter 11.00");
    assert_eq!(
        m[0].1,
        "Working from home, back Wednesday 25 November 08:00"
    );
    assert_eq!(t.absences[2].bookings[0].as_str(), "wfh");
}

#[test]
fn out_of_office_all_day_with_a_divert_meeting_inside() {
    // OOF is information (the standard template); a prefixed meeting diverts.
    let mut s = InstanceSettings::default();
    s.rules = Template::Prefix
        .rules(&s.reasons)
        .into_iter()
        .chain(Template::ShowasInfo.rules(&s.reasons))
        .collect();
    let b = [
        all_day(
            "oof",
            "2026-11-24",
            "2026-11-25",
            FreeBusy::Oof,
            Some("Konferens"),
        ),
        timed(
            "kund",
            "2026-11-24 10:00",
            "2026-11-24 11:00",
            FreeBusy::Busy,
            Some("MOT: Volvo"),
        ),
    ];
    assert_eq!(
        lines(&b, &s),
        [
            "out_of_office/info Tue 2026-11-24 00:00 → Tue 2026-11-24 10:00 back Wed 2026-11-25 08:00",
            "meeting/divert Tue 2026-11-24 10:00 → Tue 2026-11-24 11:00 back Tue 2026-11-24 11:00",
            "out_of_office/info Tue 2026-11-24 11:00 → Wed 2026-11-25 00:00 back Wed 2026-11-25 08:00",
        ]
    );
    // Both divert: the higher ranked reason wins throughout and the run ends at midnight.
    let b = [
        all_day("oof", "2026-11-24", "2026-11-25", FreeBusy::Oof, None),
        timed(
            "kund",
            "2026-11-24 10:00",
            "2026-11-24 11:00",
            FreeBusy::Busy,
            None,
        ),
    ];
    assert_eq!(
        lines(&b, &settings(Template::ShowasDivert)),
        [
            "out_of_office/divert Tue 2026-11-24 00:00 → Wed 2026-11-25 00:00 back Wed 2026-11-25 08:00"
        ]
    );
}

#[test]
fn private_bookings_are_skipped_or_anonymised() {
    let mut oof = all_day(
        "p1",
        "2026-11-24",
        "2026-11-25",
        FreeBusy::Oof,
        Some("SEM: Läkare"),
    );
    oof.sensitivity = Sensitivity::Private;
    let mut free = timed(
        "p2",
        "2026-11-25 09:00",
        "2026-11-25 10:00",
        FreeBusy::Free,
        Some("Privat"),
    );
    free.sensitivity = Sensitivity::Confidential;
    let b = [oof, free];

    let mut s = settings(Template::PrefixThenShowas);
    s.show_subject = true;
    assert!(
        timeline(&b, &s).absences.is_empty(),
        "private bookings are never synced by default"
    );

    s.private = PrivatePolicy::Anonymous;
    let t = timeline(&b, &s);
    assert_eq!(t.absences.len(), 1, "a free private booking stays free");
    let a = &t.absences[0];
    // The prefix is not read and OOF is shown only as busy: nothing private leaks.
    assert_eq!(a.reason.as_str(), "meeting");
    assert_eq!(a.subject, None);
    let m = &messages(&b, &s)[0];
    assert!(!m.1.contains("Läkare") && !m.0.contains("Semester"));

    let mut info = settings(Template::ShowasInfo);
    info.private = PrivatePolicy::Anonymous;
    assert_eq!(timeline(&b, &info).absences[0].reason.as_str(), "busy");
}

#[test]
fn semicolon_prefix_makes_the_booking_information_only() {
    let colon = [timed(
        "a",
        "2026-11-23 12:00",
        "2026-11-23 13:00",
        FreeBusy::Busy,
        Some("LUN: pizza"),
    )];
    let semi = [timed(
        "a",
        "2026-11-23 12:00",
        "2026-11-23 13:00",
        FreeBusy::Busy,
        Some("LUN; pizza"),
    )];
    let s = settings(Template::Prefix);
    assert_eq!(timeline(&colon, &s).absences[0].mode, Mode::Divert);
    assert_eq!(timeline(&semi, &s).absences[0].mode, Mode::Info);
    assert_eq!(timeline(&semi, &s).absences[0].reason.as_str(), "lunch");

    // A rule whose own mode is info stays info with either form.
    let mut info_rules = s.clone();
    for r in &mut info_rules.rules {
        r.mode = Mode::Info;
    }
    assert_eq!(timeline(&colon, &info_rules).absences[0].mode, Mode::Info);
}

#[test]
fn users_choose_by_prefix_or_category_when_the_instance_allows_it() {
    let lunch = timed(
        "a",
        "2026-11-23 12:00",
        "2026-11-23 13:00",
        FreeBusy::Free,
        Some("lun; pizza"),
    );
    let mut semester = all_day(
        "b",
        "2026-11-24",
        "2026-11-25",
        FreeBusy::Busy,
        Some("Kreta"),
    );
    semester.categories = vec!["Semester".into()];
    let mut no_div = timed(
        "c",
        "2026-11-25 09:00",
        "2026-11-25 10:00",
        FreeBusy::Oof,
        None,
    );
    no_div.categories = vec!["ingen hänvisning".into()];
    let b = [lunch, semester, no_div];

    // Off: the standard template only sees free/busy.
    let mut s = settings(Template::ShowasInfo);
    assert_eq!(
        lines(&b, &s),
        [
            "busy/info Tue 2026-11-24 00:00 → Wed 2026-11-25 00:00 back Wed 2026-11-25 08:00",
            "out_of_office/info Wed 2026-11-25 09:00 → Wed 2026-11-25 10:00 back Wed 2026-11-25 10:00",
        ]
    );

    s.user_choice = UserChoice::Any;
    assert_eq!(
        lines(&b, &s),
        [
            "lunch/info Mon 2026-11-23 12:00 → Mon 2026-11-23 13:00 back Mon 2026-11-23 13:00",
            "vacation/divert Tue 2026-11-24 00:00 → Wed 2026-11-25 00:00 back Wed 2026-11-25 08:00",
        ]
    );
    let t = timeline(&b, &s);
    assert!(t.absences.iter().all(|a| a.user_choice));

    s.user_choice = UserChoice::Restricted;
    s.allowed_reasons = vec![ReasonCode::parse("lunch").expect("code")];
    assert_eq!(
        lines(&b, &s),
        [
            "lunch/info Mon 2026-11-23 12:00 → Mon 2026-11-23 13:00 back Mon 2026-11-23 13:00",
            "busy/info Tue 2026-11-24 00:00 → Wed 2026-11-25 00:00 back Wed 2026-11-25 08:00",
        ]
    );
}

#[test]
fn the_users_choice_beats_a_rule_even_when_the_rule_diverts() {
    let b = [
        all_day("oof", "2026-11-24", "2026-11-25", FreeBusy::Oof, None),
        timed(
            "lunch",
            "2026-11-24 12:00",
            "2026-11-24 13:00",
            FreeBusy::Busy,
            Some("LUN; med Bo"),
        ),
    ];
    let mut s = settings(Template::ShowasDivert);
    s.user_choice = UserChoice::Any;
    let l = lines(&b, &s);
    assert_eq!(
        l[1],
        "lunch/info Tue 2026-11-24 12:00 → Tue 2026-11-24 13:00 back Tue 2026-11-24 13:00"
    );
    assert_eq!(l.len(), 3);
}

#[test]
fn declined_invitations_are_ignored_unless_the_setting_says_otherwise() {
    let mut b = timed(
        "inv",
        "2026-11-23 09:00",
        "2026-11-23 10:00",
        FreeBusy::Busy,
        None,
    );
    b.response = ResponseStatus::Declined;
    let b = [b];
    let mut s = settings(Template::ShowasInfo);
    assert!(timeline(&b, &s).absences.is_empty());
    s.ignore_declined = false;
    assert_eq!(timeline(&b, &s).absences.len(), 1);
}

#[test]
fn a_cancelled_occurrence_inside_a_series_leaves_a_gap() {
    let series = kalsync_core::BookingId::parse("standup").expect("id");
    let mut b: Vec<_> = ["23", "24", "25"]
        .iter()
        .map(|d| {
            let mut o = timed(
                &format!("standup-{d}"),
                &format!("2026-11-{d} 09:00"),
                &format!("2026-11-{d} 09:15"),
                FreeBusy::Busy,
                None,
            );
            o.series_id = Some(series.clone());
            o
        })
        .collect();
    b[1].cancelled = true;
    let l = lines(&b, &settings(Template::ShowasInfo));
    assert_eq!(
        l,
        [
            "busy/info Mon 2026-11-23 09:00 → Mon 2026-11-23 09:15 back Mon 2026-11-23 09:15",
            "busy/info Wed 2026-11-25 09:00 → Wed 2026-11-25 09:15 back Wed 2026-11-25 09:15",
        ]
    );
}

#[test]
fn return_times_outside_working_hours_move_to_the_next_working_period() {
    // 2026-11-27 is a Friday.
    let b = [timed(
        "m",
        "2026-11-27 15:00",
        "2026-11-27 17:00",
        FreeBusy::Busy,
        None,
    )];
    assert_eq!(
        lines(&b, &settings(Template::ShowasDivert)),
        ["meeting/divert Fri 2026-11-27 15:00 → Fri 2026-11-27 17:00 back Mon 2026-11-30 08:00"]
    );
    assert_eq!(
        messages(&b, &settings(Template::ShowasDivert))[0].0,
        "Möte, åter måndag 30 november 08.00"
    );
}

#[test]
fn gone_for_the_day_returns_the_next_working_morning() {
    let b = [timed(
        "slu",
        "2026-11-24 15:00",
        "2026-11-24 16:00",
        FreeBusy::Busy,
        Some("SLU: tandläkare"),
    )];
    assert_eq!(
        lines(&b, &settings(Template::Prefix)),
        [
            "gone_for_the_day/divert Tue 2026-11-24 15:00 → Tue 2026-11-24 16:00 back Wed 2026-11-25 08:00"
        ]
    );
}

#[test]
fn later_and_shorter_bookings_win_among_equals() {
    let b = [
        timed(
            "long",
            "2026-11-23 09:00",
            "2026-11-23 12:00",
            FreeBusy::Busy,
            Some("MOT: workshop"),
        ),
        timed(
            "short",
            "2026-11-23 10:00",
            "2026-11-23 10:30",
            FreeBusy::Busy,
            Some("MOT: call"),
        ),
    ];
    let t = timeline(&b, &settings(Template::Prefix));
    // Same reason and mode: one absence, made of both bookings.
    assert_eq!(t.absences.len(), 1);
    assert_eq!(t.absences[0].bookings.len(), 2);
    // Rank beats start: vacation over a meeting that started later.
    let b = [
        timed(
            "sem",
            "2026-11-23 08:00",
            "2026-11-23 17:00",
            FreeBusy::Oof,
            Some("SEM: ledig"),
        ),
        timed(
            "mot",
            "2026-11-23 10:00",
            "2026-11-23 11:00",
            FreeBusy::Busy,
            Some("MOT: x"),
        ),
    ];
    assert_eq!(
        lines(&b, &settings(Template::Prefix)),
        ["vacation/divert Mon 2026-11-23 08:00 → Mon 2026-11-23 17:00 back Tue 2026-11-24 08:00"]
    );
}

#[test]
fn subjects_appear_only_where_settings_allow() {
    let b = [timed(
        "m",
        "2026-11-23 10:00",
        "2026-11-23 11:00",
        FreeBusy::Busy,
        Some("MOT: Volvo"),
    )];
    let mut s = settings(Template::Prefix);
    assert_eq!(
        timeline(&b, &s).absences[0].subject,
        None,
        "show_subject is off by default"
    );
    s.show_subject = true;
    assert_eq!(
        timeline(&b, &s).absences[0].subject.as_deref(),
        Some("Volvo")
    );
    s.hide_titles = true;
    let t = timeline(&b, &s);
    assert_eq!(t.absences[0].subject, None);
    let everything = format!("{t:?}");
    assert!(!everything.contains("Volvo"), "{everything}");
}

#[test]
fn bookings_outside_the_window_are_dropped() {
    let b = [
        timed(
            "old",
            "2026-11-01 10:00",
            "2026-11-01 11:00",
            FreeBusy::Busy,
            None,
        ),
        timed(
            "now",
            "2026-11-23 10:00",
            "2026-11-23 11:00",
            FreeBusy::Busy,
            None,
        ),
        timed(
            "far",
            "2026-12-31 10:00",
            "2026-12-31 11:00",
            FreeBusy::Busy,
            None,
        ),
    ];
    let window = kalsync_core::Window::sync(at("2026-11-22 12:00"), 14);
    let t = kalsync_core::build_timeline(&b, &InstanceSettings::default(), window);
    assert_eq!(t.absences.len(), 1);
    assert_eq!(t.absences[0].bookings[0].as_str(), "now");
}
