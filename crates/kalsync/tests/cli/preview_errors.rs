//! Bad input: one clear line naming the file, the place and what was expected; exit 2.

use crate::helpers::*;

fn fails(args: &[&str]) -> String {
    let run = kalsync(args);
    assert_eq!(
        run.code, 2,
        "expected exit 2 for {args:?}; stdout: {} stderr: {}",
        run.stdout, run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(
        run.stderr.trim().lines().count(),
        1,
        "one line: {}",
        run.stderr
    );
    run.stderr
}

#[test]
fn a_bad_rules_file_names_file_line_field_and_expectation() {
    let rules = write_temp(
        "bad-rules.toml",
        "template = \"prefix\"\nshow_subject = true\n\n[working_hours]\nstart = \"8\"\n",
    );
    let e = fails(&[
        "preview",
        "--calendar",
        "examples/anna.ics",
        "--rules",
        &rules.to_string_lossy(),
    ]);
    assert!(
        e.contains("bad-rules.toml:4:1:") || e.contains("bad-rules.toml:5:"),
        "{e}"
    );
    assert!(e.contains("not a time of day (expected HH:MM"), "{e}");

    let rules = write_temp(
        "unknown-reason.toml",
        "[[rules]]\nwhen.show_as = [\"busy\"]\nreason = \"coffee\"\nmode = \"info\"\n",
    );
    let e = fails(&[
        "preview",
        "--calendar",
        "examples/anna.ics",
        "--rules",
        &rules.to_string_lossy(),
    ]);
    assert!(
        e.contains("unknown-reason.toml:3:10: rules[0].reason: unknown reason `coffee`"),
        "{e}"
    );

    let rules = write_temp(
        "bad-status.toml",
        "[[rules]]\nwhen.show_as = [\"bussy\"]\nreason = \"busy\"\nmode = \"info\"\n",
    );
    let e = fails(&[
        "preview",
        "--calendar",
        "examples/anna.ics",
        "--rules",
        &rules.to_string_lossy(),
    ]);
    assert!(
        e.contains("bad-status.toml:2:") && e.contains("bussy"),
        "{e}"
    );
}

#[test]
fn a_file_that_is_not_a_calendar_is_refused() {
    let not = write_temp("notes.ics", "hello\nworld\n");
    let e = fails(&["preview", "--calendar", &not.to_string_lossy()]);
    assert!(e.contains("notes.ics: not an iCalendar file"), "{e}");
    let e = fails(&["preview", "--calendar", "does/not/exist.ics"]);
    assert!(e.contains("does/not/exist.ics: cannot read"), "{e}");
}

#[test]
fn bad_json_bookings_name_line_and_column() {
    let bad = write_temp(
        "bad.json",
        "[\n  {\"id\": \"a\", \"start\": \"2026-11-23T12:00:00Z\", \"end\": \"noon\"}\n]\n",
    );
    let e = fails(&["preview", "--calendar", &bad.to_string_lossy()]);
    assert!(
        e.contains("bad.json: bookings[0] (id `a`): end: `noon` is not an RFC 3339 time"),
        "{e}"
    );
    let broken = write_temp("broken.json", "[\n  {\"id\": \"a\",\n");
    let e = fails(&["preview", "--calendar", &broken.to_string_lossy()]);
    assert!(
        e.contains("broken.json:3:") && e.contains("expected a JSON list of bookings"),
        "{e}"
    );
    let body = write_temp(
        "body.json",
        "[{\"id\": \"a\", \"start\": \"2026-11-23T12:00:00Z\", \"end\": \"2026-11-23T13:00:00Z\", \"body\": \"secret\"}]",
    );
    let e = fails(&["preview", "--calendar", &body.to_string_lossy()]);
    assert!(e.contains("unknown field `body`"), "{e}");
}

#[test]
fn bad_flags_are_refused() {
    let e = fails(&[
        "preview",
        "--calendar",
        "examples/anna.ics",
        "--tz",
        "Mars/Olympus",
    ]);
    assert!(e.contains("--tz: unknown time zone `Mars/Olympus`"), "{e}");
    let e = fails(&[
        "preview",
        "--calendar",
        "examples/anna.ics",
        "--from",
        "tomorrow",
    ]);
    assert!(e.contains("--from: `tomorrow` is not a time"), "{e}");
    let e = fails(&[
        "preview",
        "--calendar",
        "examples/anna.ics",
        "--from",
        "2026-11-24",
        "--to",
        "2026-11-23",
    ]);
    assert!(e.contains("--to must be after --from"), "{e}");
    let run = kalsync(&[
        "preview",
        "--calendar",
        "examples/anna.ics",
        "--template",
        "nope",
    ]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("unknown template `nope`"),
        "{}",
        run.stderr
    );
}
