//! The sample calendar shipped with the repository, as the README runs it.

use crate::helpers::*;

fn anna(args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec![
        "--calendar",
        "examples/anna.ics",
        "--owner",
        "anna@example.se",
    ];
    all.extend_from_slice(args);
    preview_json(&all)
}

fn summary(a: &[serde_json::Value]) -> Vec<String> {
    a.iter()
        .map(|x| {
            format!(
                "{} {} {}–{} {}",
                field(x, "reason"),
                field(x, "mode"),
                &field(x, "start")[5..16],
                &field(x, "end")[11..16],
                field(x, "message_en")
            )
        })
        .collect()
}

#[test]
fn annas_week_under_prefix_then_showas() {
    let a = anna(&[
        "--rules",
        "examples/rules/prefix-then-showas.toml",
        "--from",
        "2026-11-26",
        "--to",
        "2026-12-05",
    ]);
    assert_eq!(
        summary(&a),
        [
            // The Thursday stand-up moved to 09:30; the declined seminar at 08:00 and the
            // private doctor's appointment at 15:00 do not show.
            "meeting divert 11-26T09:30–09:45 Meeting, back 09:45",
            "lunch divert 11-26T12:00–13:00 Lunch, back 13:00",
            // Friday: no stand-up (EXDATE), focus time carries "Ingen hänvisning".
            "lunch divert 11-27T12:00–13:00 Lunch, back 13:00",
            "gone_for_the_day divert 11-27T15:00–16:00 Gone for the day, back Monday 30 November 08:00",
            "vacation divert 11-30T00:00–00:00 Vacation, back Monday 7 December 08:00",
        ]
    );
    assert_eq!(
        field(&a[4], "message_sv"),
        "Semester, åter måndag 7 december 08.00"
    );
}

#[test]
fn the_lunch_on_customer_day_returns_after_the_meeting() {
    let a = anna(&[
        "--rules",
        "examples/rules/prefix-then-showas.toml",
        "--from",
        "2026-11-24T11:00",
        "--to",
        "2026-11-24T17:00",
    ]);
    assert_eq!(
        summary(&a),
        [
            "lunch divert 11-24T12:00–13:00 Lunch, back 14:30",
            "meeting divert 11-24T13:00–14:30 Meeting, back 14:30",
        ]
    );
    assert_eq!(field(&a[0], "message_sv"), "Lunch, åter 14.30");
}

#[test]
fn absences_overlapping_the_period_are_reported_whole() {
    // The vacation runs Monday to Friday; a period on Wednesday still shows all of it.
    let a = anna(&[
        "--template",
        "prefix",
        "--from",
        "2026-12-02T10:00",
        "--to",
        "2026-12-02T11:00",
    ]);
    assert_eq!(a.len(), 1);
    assert_eq!(field(&a[0], "start"), "2026-11-30T00:00:00+01:00");
    assert_eq!(field(&a[0], "end"), "2026-12-05T00:00:00+01:00");
}

#[test]
fn the_table_speaks_swedish_when_asked() {
    let run = kalsync(&[
        "preview",
        "--calendar",
        "examples/anna.ics",
        "--template",
        "showas-info",
        "--from",
        "2026-11-23",
        "--to",
        "2026-11-24",
        "--lang",
        "sv",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("START"), "{}", run.stdout);
    assert!(
        run.stdout.contains("Upptagen, åter 13.00"),
        "{}",
        run.stdout
    );
}

#[test]
fn json_bookings_are_accepted_as_a_calendar() {
    let bookings = write_temp(
        "bookings.json",
        r#"[
  {"id": "dst", "start": "2026-03-29", "end": "2026-03-30", "all_day": true, "free_busy": "oof"},
  {"id": "lunch", "start": "2026-03-30T12:00:00+02:00", "end": "2026-03-30T13:00:00+02:00", "subject": "LUN: pizza"}
]"#,
    );
    let a = preview_json(&[
        "--calendar",
        &bookings.to_string_lossy(),
        "--template",
        "prefix-then-showas",
        "--from",
        "2026-03-29",
        "--to",
        "2026-03-31",
    ]);
    // The day clocks go forward: from +01:00 midnight to +02:00 midnight, 23 hours.
    assert_eq!(field(&a[0], "start"), "2026-03-29T00:00:00+01:00");
    assert_eq!(field(&a[0], "end"), "2026-03-30T00:00:00+02:00");
    assert_eq!(field(&a[0], "returns_at"), "2026-03-30T08:00:00+02:00");
    assert_eq!(field(&a[1], "message_sv"), "Lunch, åter 13.00");
}
