//! Every real Outlook/Exchange export in the shared fixtures: none may crash, each gives
//! a plausible timeline, and where the file makes the answer clear it is checked.

use crate::helpers::*;

#[test]
fn every_fixture_previews_without_crashing() {
    if !crate::helpers::have_fixtures() {
        return;
    }
    let rules = everything_rules();
    let mut files = 0;
    for entry in std::fs::read_dir(ics_fixtures()).expect("fixtures") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "ics") {
            continue;
        }
        files += 1;
        let p = path.to_string_lossy().into_owned();
        for format in ["json", "table"] {
            let run = kalsync(&[
                "preview",
                "--calendar",
                &p,
                "--rules",
                &rules.to_string_lossy(),
                "--from",
                "2000-01-01",
                "--to",
                "2030-01-01",
                "--format",
                format,
            ]);
            assert_eq!(run.code, 0, "{p}: {}", run.stderr);
            assert!(!run.stderr.contains("panicked"), "{p}: {}", run.stderr);
        }
        let absences = preview_json(&[
            "--calendar",
            &p,
            "--rules",
            &rules.to_string_lossy(),
            "--from",
            "2000-01-01",
            "--to",
            "2030-01-01",
        ]);
        assert!(!absences.is_empty(), "{p} gave no absence at all");
        for a in &absences {
            assert!(field(a, "start") < field(a, "end"), "{p}: {a}");
            assert!(field(a, "end") <= field(a, "returns_at"), "{p}: {a}");
        }
    }
    assert!(
        files >= 20,
        "expected the 20 shared .ics fixtures, found {files}"
    );
}

fn one(file: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let path = ics_fixtures().join(file).to_string_lossy().into_owned();
    let mut all = vec!["--calendar", path.as_str()];
    all.extend_from_slice(args);
    preview_json(&all)
}

#[test]
fn windows_zone_names_are_converted_to_the_instance_zone() {
    if !crate::helpers::have_fixtures() {
        return;
    }
    // Pacific Standard Time 14:00–16:00 on 9 April 2019 (PDT, UTC−7) is 23:00–01:00 in Stockholm.
    let a = one(
        "graphdocs_attachment-get_exchange2010_event_mime.ics",
        &[
            "--template",
            "showas-info",
            "--from",
            "2019-04-09",
            "--to",
            "2019-04-11",
        ],
    );
    assert_eq!(a.len(), 1);
    assert_eq!(field(&a[0], "start"), "2019-04-09T23:00:00+02:00");
    assert_eq!(field(&a[0], "end"), "2019-04-10T01:00:00+02:00");
    assert_eq!(field(&a[0], "reason"), "busy");
    // The Outlook 16 export in W. Europe Standard Time reads unchanged in Stockholm.
    let a = one(
        "calcard_045_outlook16_publish_weurope.ics",
        &[
            "--template",
            "showas-divert",
            "--from",
            "2021-05-27",
            "--to",
            "2021-05-28",
        ],
    );
    assert_eq!(field(&a[0], "start"), "2021-05-27T10:30:00+02:00");
    assert_eq!(field(&a[0], "message_sv"), "Möte, åter 12.00");
}

#[test]
fn a_weekday_series_in_sydney_lands_on_the_evening_before_in_stockholm() {
    if !crate::helpers::have_fixtures() {
        return;
    }
    // 09:30 Mon–Fri in Canberra/Melbourne/Sydney (UTC+11 in March) is 23:30 the day before.
    let a = one(
        "ical4j_Standup_outlook11_recurring.ics",
        &[
            "--template",
            "showas-info",
            "--from",
            "2009-03-16",
            "--to",
            "2009-03-23",
            "--tz",
            "Europe/Stockholm",
        ],
    );
    let starts: Vec<&str> = a.iter().map(|x| field(x, "start")).collect();
    assert_eq!(
        starts,
        [
            "2009-03-16T23:30:00+01:00",
            "2009-03-17T23:30:00+01:00",
            "2009-03-18T23:30:00+01:00",
            "2009-03-19T23:30:00+01:00",
            "2009-03-22T23:30:00+01:00",
        ]
    );
}

#[test]
fn exdates_remove_their_occurrences() {
    if !crate::helpers::have_fixtures() {
        return;
    }
    // Tue/Thu/Fri/Sun 12:00 Pacific; 21 and 23 July 2020 are excluded, 24 July is not.
    let rules = everything_rules();
    let a = one(
        "nodeical_ms_timezones.ics",
        &[
            "--rules",
            &rules.to_string_lossy(),
            "--from",
            "2020-07-20",
            "--to",
            "2020-07-27",
        ],
    );
    let days: Vec<&str> = a.iter().map(|x| &field(x, "start")[..10]).collect();
    assert_eq!(days, ["2020-07-24", "2020-07-26"], "{a:?}");
    assert_eq!(field(&a[0], "start"), "2020-07-24T21:00:00+02:00");
}

#[test]
fn a_moved_all_day_occurrence_replaces_the_original() {
    if !crate::helpers::have_fixtures() {
        return;
    }
    // Weekly Tue/Thu all-day series; the Thursday 26 February occurrence moved to Friday 27.
    let rules = everything_rules();
    for file in [
        "nodeical_exchange_whole_day_moved_recurrence.ics",
        "nodeical_exchange_whole_day_moved_recurrence_offset_tz.ics",
    ] {
        let a = one(
            file,
            &[
                "--rules",
                &rules.to_string_lossy(),
                "--from",
                "2026-02-16",
                "--to",
                "2026-03-07",
            ],
        );
        let days: Vec<&str> = a.iter().map(|x| &field(x, "start")[..10]).collect();
        assert_eq!(
            days,
            [
                "2026-02-19",
                "2026-02-24",
                "2026-02-27",
                "2026-03-03",
                "2026-03-05"
            ],
            "{file}"
        );
        assert!(
            a.iter().all(|x| field(x, "end")[11..].starts_with("00:00")),
            "all-day: {a:?}"
        );
        let moved = &a[2]["bookings"][0];
        assert!(
            moved.as_str().is_some_and(|id| id.ends_with("/20260226")),
            "{moved}"
        );
    }
}

#[test]
fn an_export_flagged_invalid_still_yields_its_event() {
    if !crate::helpers::have_fixtures() {
        return;
    }
    // "Microsoft CDO for Microsoft Exchange" with an empty CLASS: 22:30–00:00 Pacific (PDT).
    let a = one(
        "ical4j_tmeher_cdo_exchange_INVALID.ics",
        &[
            "--template",
            "showas-info",
            "--from",
            "2004-10-12",
            "--to",
            "2004-10-13",
        ],
    );
    assert_eq!(field(&a[0], "start"), "2004-10-12T07:30:00+02:00");
    assert_eq!(field(&a[0], "end"), "2004-10-12T09:00:00+02:00");
}

#[test]
fn broken_lines_and_unknown_zones_are_warned_about_not_fatal() {
    if !crate::helpers::have_fixtures() {
        return;
    }
    let path = ics_fixtures().join("nodeical_ms_timezones.ics");
    let run = kalsync(&[
        "preview",
        "--calendar",
        &path.to_string_lossy(),
        "--from",
        "2020-01-01",
        "--to",
        "2021-01-01",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("DTSTART is not a date or time"),
        "{}",
        run.stderr
    );
    let path = ics_fixtures().join("nodeical_bad_ms_tz.ics");
    let run = kalsync(&[
        "preview",
        "--calendar",
        &path.to_string_lossy(),
        "--from",
        "2020-01-01",
        "--to",
        "2021-01-01",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("unknown time zone `Customized Time Zone`, read in Europe/Stockholm"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("Customized Time Zone").count(),
        1,
        "warned once: {}",
        run.stderr
    );
}
