//! `kalsync preview`: a calendar file and a rules file in, the timeline out — so an admin
//! can try rules on a real calendar before an instance uses them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use kalsync_core::{
    Absence, Booking, InstanceSettings, Lang, Template, Window, Zone, build_timeline,
};
use serde::Serialize;

/// Arguments of `kalsync preview`.
#[derive(Debug, Args)]
pub(crate) struct PreviewArgs {
    /// An Outlook-exported `.ics` file, or a JSON list of bookings.
    #[arg(long, value_name = "FILE")]
    calendar: PathBuf,
    /// A rules file (TOML), as instances use.
    #[arg(long, value_name = "RULES.toml", conflicts_with = "template")]
    rules: Option<PathBuf>,
    /// A built-in template instead of a rules file: showas-info, showas-divert, prefix or
    /// prefix-then-showas.
    #[arg(long, value_name = "NAME", value_parser = parse_template)]
    template: Option<Template>,
    /// Start of the period shown: a date, a local date and time, or an RFC 3339 time
    /// [default: now − 1 day].
    #[arg(long, value_name = "T")]
    from: Option<String>,
    /// End of the period shown [default: now + the rules' days_ahead].
    #[arg(long, value_name = "T")]
    to: Option<String>,
    /// The IANA time zone for working hours, all-day bookings and output [default: the
    /// rules' time_zone, Europe/Stockholm].
    #[arg(long, value_name = "ZONE")]
    tz: Option<String>,
    /// The mailbox owner's address, to read their response to invitations.
    #[arg(long, value_name = "EMAIL")]
    owner: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Language of the table's messages.
    #[arg(long, value_enum, default_value_t = Language::En)]
    lang: Language,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Language {
    Sv,
    En,
}

fn parse_template(s: &str) -> Result<Template, String> {
    s.parse()
}

/// A failure, already worded as the one line the user sees.
type Failure = String;

fn read(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))
}

/// Runs the command.
pub(crate) fn run(args: &PreviewArgs) -> Result<(), Failure> {
    let mut settings = match (&args.rules, args.template) {
        (Some(path), _) => {
            let text = read(path)?;
            InstanceSettings::from_toml(&text)
                .map_err(|e| e.located(&path.display().to_string(), &text))?
        }
        (None, Some(template)) => InstanceSettings::with_template(template),
        (None, None) => InstanceSettings::default(),
    };
    if let Some(tz) = &args.tz {
        settings.time_zone = Zone::parse(tz).map_err(|e| format!("--tz: {e}"))?;
    }
    let tz = settings.time_zone.tz().clone();
    let now = Timestamp::now();
    let from = match &args.from {
        Some(text) => settings
            .time_zone
            .parse_instant(text)
            .map_err(|e| format!("--from: {e}"))?,
        None => now - SignedDuration::from_hours(24),
    };
    let to = match &args.to {
        Some(text) => settings
            .time_zone
            .parse_instant(text)
            .map_err(|e| format!("--to: {e}"))?,
        None => from + SignedDuration::from_hours(24 * (i64::from(settings.days_ahead) + 1)),
    };
    if to <= from {
        return Err("--to must be after --from".into());
    }

    // Bookings a little outside the period still shape it: a chain that runs on, or an
    // absence that began before it and is shown whole.
    let margin = SignedDuration::from_hours(24 * 31);
    let wide = Window {
        start: from - margin,
        end: to + margin,
    };
    let text = read(&args.calendar)?;
    let calendar_name = args.calendar.display().to_string();
    let (bookings, events, span) = if looks_like_json(&text) {
        let bookings = read_json_bookings(&calendar_name, &text)?;
        let n = bookings.len();
        (bookings, n, None)
    } else {
        let imported = kalsync_ics::import(
            &text,
            &kalsync_ics::ImportOptions {
                default_zone: settings.time_zone.name().to_owned(),
                window: wide,
                owner: args.owner.clone(),
            },
        )
        .map_err(|e| format!("{calendar_name}: {e}"))?;
        for warning in &imported.warnings {
            eprintln!("warning: {calendar_name}: {warning}");
        }
        (imported.bookings, imported.events, imported.span)
    };

    let timeline = build_timeline(&bookings, &settings, wide);
    let shown: Vec<&Absence> = timeline.overlapping(from, to).collect();
    match args.format {
        Format::Json => println!("{}", to_json(&shown, &settings, &tz)),
        Format::Table => print!("{}", to_table(&shown, &settings, &tz, args.lang)),
    }
    if shown.is_empty() {
        let mut hint = format!(
            "no absences between {} and {} ({} events in the file",
            local(from, &tz, "%Y-%m-%d %H:%M"),
            local(to, &tz, "%Y-%m-%d %H:%M"),
            events
        );
        if let Some((first, last)) = span {
            let _ = write!(
                hint,
                ", starting between {} and {}; try --from {}",
                local(first, &tz, "%Y-%m-%d"),
                local(last, &tz, "%Y-%m-%d"),
                local(first, &tz, "%Y-%m-%d")
            );
        }
        hint.push(')');
        eprintln!("note: {hint}");
    }
    Ok(())
}

/// A JSON list of bookings: syntax errors by line and column, bad bookings by index and id.
fn read_json_bookings(name: &str, text: &str) -> Result<Vec<Booking>, Failure> {
    let values: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|e| {
        let message = e.to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m);
        format!(
            "{name}:{}:{}: {message} (expected a JSON list of bookings)",
            e.line(),
            e.column()
        )
    })?;
    values
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let id = value
                .get("id")
                .and_then(|v| v.as_str())
                .map(|id| format!(" (id `{id}`)"))
                .unwrap_or_default();
            serde_json::from_value(value).map_err(|e| format!("{name}: bookings[{i}]{id}: {e}"))
        })
        .collect()
}

fn looks_like_json(text: &str) -> bool {
    matches!(text.trim_start().chars().next(), Some('[' | '{'))
}

fn local(t: Timestamp, tz: &TimeZone, format: &str) -> String {
    t.to_zoned(tz.clone()).strftime(format).to_string()
}

fn rfc3339(t: Timestamp, tz: &TimeZone) -> String {
    local(t, tz, "%Y-%m-%dT%H:%M:%S%:z")
}

#[derive(Serialize)]
struct JsonAbsence<'a> {
    reason: &'a str,
    label_sv: &'a str,
    label_en: &'a str,
    mode: &'a str,
    start: String,
    end: String,
    returns_at: String,
    message_sv: String,
    message_en: String,
    bookings: Vec<&'a str>,
    user_choice: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
}

fn to_json(absences: &[&Absence], settings: &InstanceSettings, tz: &TimeZone) -> String {
    #[derive(Serialize)]
    struct Out<'a> {
        absences: Vec<JsonAbsence<'a>>,
    }
    let out = Out {
        absences: absences
            .iter()
            .map(|a| JsonAbsence {
                reason: a.reason.as_str(),
                label_sv: a.label(settings, Lang::Sv),
                label_en: a.label(settings, Lang::En),
                mode: a.mode.as_str(),
                start: rfc3339(a.start, tz),
                end: rfc3339(a.end, tz),
                returns_at: rfc3339(a.returns_at, tz),
                message_sv: a.message(settings, tz, Lang::Sv),
                message_en: a.message(settings, tz, Lang::En),
                bookings: a.bookings.iter().map(|b| b.as_str()).collect(),
                user_choice: a.user_choice,
                subject: a.subject.as_deref(),
            })
            .collect(),
    };
    serde_json::to_string_pretty(&out).unwrap_or_default()
}

fn to_table(
    absences: &[&Absence],
    settings: &InstanceSettings,
    tz: &TimeZone,
    lang: Language,
) -> String {
    let mut rows = vec![[
        "START".to_owned(),
        "END".to_owned(),
        "REASON".to_owned(),
        "MODE".to_owned(),
        "RETURNS".to_owned(),
        "MESSAGE".to_owned(),
    ]];
    for a in absences {
        let message = a.message(
            settings,
            tz,
            match lang {
                Language::Sv => Lang::Sv,
                Language::En => Lang::En,
            },
        );
        let message = match a.subject.as_deref() {
            Some(s) => format!("{message} — {s}"),
            None => message,
        };
        rows.push([
            local(a.start, tz, "%a %Y-%m-%d %H:%M"),
            local(a.end, tz, "%a %Y-%m-%d %H:%M"),
            a.reason.to_string(),
            a.mode.as_str().to_owned(),
            local(a.returns_at, tz, "%a %Y-%m-%d %H:%M"),
            message,
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c == 5 {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
