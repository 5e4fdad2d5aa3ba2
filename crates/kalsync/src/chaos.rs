//! `kalsync chaos`: the convergence harness. It runs `kalsync serve` as a child process
//! against a simulated Microsoft 365 and a simulated Exchange (EWS) with a webhook PBX,
//! drives a seeded random workload of calendar changes while injecting faults — Graph
//! 429/5xx/resets, lost and duplicated notifications, removed subscriptions, expired
//! tokens, Exchange busy answers, dropped streams and expired watermarks, PBX outages, and
//! the service killed with SIGKILL and started again — then lets it settle and compares
//! each user with an independent oracle: the timeline the core crate computes straight
//! from the simulators' own calendars (not through Graph or EWS), against the service's
//! timeline and the status the PBX shows. It reports divergences, lost deliveries and
//! duplicates; any of them makes the run fail.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use jiff::{SignedDuration, Timestamp};
use kalsync_core::{
    Booking, BookingId, BookingTime, FreeBusy, InstanceSettings, ResponseStatus, Sensitivity,
    Timeline, Window, Zone, build_timeline,
};
use kalsync_ews_sim::{EwsConfig, EwsFaults, EwsSim};
use kalsync_graph_sim::calendar::Occurrence;
use kalsync_graph_sim::{
    EventSpec, Faults, OccurrenceChange, RecurrenceSpec, SimConfig, Simulator, UserSpec,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// The rules every chaos instance runs (the oracle parses the same text).
const RULES: &str = "template = \"prefix-then-showas\"\nuser_choice = \"any\"\ndays_ahead = 7\n";
const SIGNING_SECRET: &str = "whsec_Y2hhb3Mtc2lnbmluZy1zZWNyZXQtMjAyNg==";
const OPERATOR: &str = "chaos@operator.example";
const OPERATOR_PASSWORD: &str = "chaos-operator-password";
const EWS_ACCOUNT: &str = "CHAOS\\svc-kalsync";
const EWS_PASSWORD: &str = "chaos-exchange-password";

/// `kalsync chaos`.
#[derive(Debug, clap::Args)]
pub(crate) struct ChaosArgs {
    /// Mailboxes: half on the simulated Microsoft 365, half on the simulated Exchange.
    #[arg(long, default_value_t = 20)]
    users: usize,
    /// Calendar changes to make.
    #[arg(long, default_value_t = 300)]
    changes: usize,
    /// Changes per second.
    #[arg(long, default_value_t = 40.0)]
    rate: f64,
    /// Times the service is killed with SIGKILL and started again.
    #[arg(long, default_value_t = 2)]
    kills: usize,
    /// A fault after roughly this share of the changes (0 to 1).
    #[arg(long, default_value_t = 0.08)]
    fault_rate: f64,
    /// The random seed; a fresh one when left out. It is printed either way.
    #[arg(long)]
    seed: Option<u64>,
    /// Longest wait for the service to settle after the last change, seconds.
    #[arg(long, default_value_t = 180)]
    settle_secs: u64,
    /// Print the report as JSON (one line) instead of text.
    #[arg(long)]
    json: bool,
}

/// What a run found.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Report {
    seed: u64,
    users: usize,
    changes: usize,
    changes_by_kind: BTreeMap<&'static str, u32>,
    faults_by_kind: BTreeMap<&'static str, u32>,
    /// Users whose service timeline or PBX status differs from the oracle's.
    divergences: usize,
    /// Deliveries the service counts as delivered that the PBX never got, and any left
    /// undelivered or dead at the end.
    lost_deliveries: usize,
    /// Statuses the PBX applied twice: the same user and sequence under two deliveries.
    duplicates: usize,
    /// Redeliveries of one delivery the PBX recognised by its id and ignored.
    redeliveries_ignored: u64,
    statuses_received: usize,
    /// Users compared with the oracle in the last round (all of them, or the run fails).
    users_compared: usize,
    seconds_to_settle: f64,
    seconds_in_all: f64,
    /// The first few differences, for a reader.
    examples: Vec<String>,
}

impl Report {
    fn passed(&self) -> bool {
        self.divergences == 0
            && self.lost_deliveries == 0
            && self.duplicates == 0
            && self.users_compared == self.users
    }
}

/// Runs `kalsync chaos`; fails when the run did not converge.
pub(crate) fn chaos(args: &ChaosArgs) -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start: {e}"))?;
    let report = runtime.block_on(run(args))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
    } else {
        print_report(&report);
    }
    if report.passed() {
        Ok(())
    } else {
        Err(format!(
            "did not converge: {} divergences, {} lost deliveries, {} duplicates (seed {})",
            report.divergences, report.lost_deliveries, report.duplicates, report.seed
        ))
    }
}

fn print_report(r: &Report) {
    println!(
        "chaos: seed {} · {} users · {} changes · {:.1} s in all, settled {:.1} s after the last change",
        r.seed, r.users, r.changes, r.seconds_in_all, r.seconds_to_settle
    );
    let kinds = |m: &BTreeMap<&str, u32>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("  changes      {}", kinds(&r.changes_by_kind));
    println!("  faults       {}", kinds(&r.faults_by_kind));
    println!(
        "  PBX          {} statuses applied, {} redeliveries recognised and ignored",
        r.statuses_received, r.redeliveries_ignored
    );
    println!(
        "  divergences  {}\n  lost         {}\n  duplicates   {}",
        r.divergences, r.lost_deliveries, r.duplicates
    );
    for e in &r.examples {
        println!("  · {e}");
    }
}

// ---------------------------------------------------------------------------------
// The PBX: a webhook receiver that applies each delivery once.

#[derive(Debug, Clone, PartialEq, Eq)]
struct Shown {
    reason: String,
    mode: String,
    until: Timestamp,
    returns_at: Timestamp,
}

#[derive(Default)]
struct PbxBook {
    /// Applied deliveries: id → (user, sequence).
    applied: HashMap<String, (String, u64)>,
    /// (user, sequence) pairs applied.
    pairs: HashSet<(String, u64)>,
    /// Per user: the newest sequence and what it shows.
    shown: HashMap<String, (u64, Option<Shown>)>,
    redeliveries: u64,
    twice: usize,
}

#[derive(Clone, Default)]
struct Pbx {
    book: Arc<Mutex<PbxBook>>,
    /// While set, the PBX answers 503.
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl Pbx {
    fn book(&self) -> std::sync::MutexGuard<'_, PbxBook> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn shown_of(v: &serde_json::Value) -> Option<Shown> {
    let a = v.as_object()?;
    Some(Shown {
        reason: a.get("reason")?.as_str()?.to_owned(),
        mode: a.get("mode")?.as_str()?.to_owned(),
        until: a.get("until")?.as_str()?.parse().ok()?,
        returns_at: a.get("returns_at")?.as_str()?.parse().ok()?,
    })
}

async fn receive(State(pbx): State<Pbx>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let Ok(verifier) = standardwebhooks::Webhook::new(SIGNING_SECRET) else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    if verifier.verify(&body, &headers).is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    if pbx.down.load(std::sync::atomic::Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let id = headers
        .get("webhook-id")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (Some(user), Some(sequence)) = (
        v["data"]["user"]["email"]
            .as_str()
            .map(str::to_ascii_lowercase),
        v["data"]["sequence"].as_u64(),
    ) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut book = pbx.book();
    if book.applied.contains_key(&id) {
        book.redeliveries += 1;
        return StatusCode::NO_CONTENT;
    }
    if !book.pairs.insert((user.clone(), sequence)) {
        book.twice += 1;
    }
    book.applied.insert(id, (user.clone(), sequence));
    let absence = shown_of(&v["data"]["absence"]);
    let newest = book.shown.get(&user).map(|(s, _)| *s);
    if newest.is_none_or(|s| sequence > s) {
        book.shown.insert(user, (sequence, absence));
    }
    StatusCode::NO_CONTENT
}

// ---------------------------------------------------------------------------------
// The service as a child process.

struct Node {
    child: Child,
}

/// libfaketime, which steps the child's wall clock from a file (Debian's `faketime`).
const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// The child's wall clock: an offset in a file libfaketime reads at every call.
struct Clock {
    file: std::path::PathBuf,
    offset: std::cell::Cell<i64>,
}

impl Clock {
    /// Sets the service's wall clock `seconds` off the true time; the step it made
    /// (new offset less the old one).
    fn set(&self, seconds: i64) -> i64 {
        let _ = std::fs::write(&self.file, format!("{seconds:+}\n"));
        seconds - self.offset.replace(seconds)
    }
}

/// How a clock step is counted.
fn step_kind(step: i64) -> Option<&'static str> {
    match step {
        0 => None,
        s if s > 0 => Some("clock stepped forward"),
        _ => Some("clock stepped back"),
    }
}

impl Node {
    fn start(
        config: &std::path::Path,
        port: u16,
        log: &std::path::Path,
        clock_file: Option<&std::path::Path>,
    ) -> Result<Node, String> {
        use std::io::{BufRead, BufReader};
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .args([
                "serve",
                "--config",
                &config.to_string_lossy(),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .env("RUST_LOG", "warn")
            .envs(clock_file.into_iter().flat_map(|file| {
                [
                    ("LD_PRELOAD", FAKETIME.into()),
                    ("FAKETIME_TIMESTAMP_FILE", file.display().to_string()),
                    ("FAKETIME_NO_CACHE", "1".into()),
                    // Only the wall clock steps; timers keep their own time.
                    ("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()),
                ]
            }))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("kalsync serve: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        match lines.next() {
            Some(Ok(first)) if first.starts_with("Kalsync on") => {}
            other => {
                let _ = child.kill();
                return Err(format!("kalsync serve did not start: {other:?}"));
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Ok(Node { child })
    }
}

/// Dropping the node kills it with SIGKILL: no shutdown, no flush.
impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------
// The mailboxes and the workload.

#[derive(Clone)]
struct Mailbox {
    email: String,
    calendars: Simulator,
}

fn user_spec(email: &str) -> UserSpec {
    UserSpec {
        upn: email.into(),
        id: None,
        display_name: None,
        time_zone: "W. Europe Standard Time".into(),
        working_hours: None,
    }
}

const PREFIXES: [&str; 9] = [
    "LUN: ", "MOT: ", "SEM: ", "SJK: ", "UPP: ", "HEM: ", "", "", "Möte ",
];
const SHOW_AS: [&str; 6] = [
    "busy",
    "busy",
    "oof",
    "free",
    "tentative",
    "workingElsewhere",
];
const CATEGORIES: [&str; 4] = ["Lunch", "Semester", "Kundmöte", "Blå kategori"];

/// A whole minute near now, or further ahead: transitions happen during the run too.
fn random_start(rng: &mut StdRng, now: Timestamp) -> Timestamp {
    let minute = Timestamp::from_second(now.as_second() - now.as_second() % 60).unwrap_or(now);
    let minutes = if rng.random_bool(0.4) {
        rng.random_range(-90..20)
    } else {
        rng.random_range(-120..(6 * 24 * 60))
    };
    minute + SignedDuration::from_mins(minutes)
}

fn random_event(rng: &mut StdRng, now: Timestamp) -> EventSpec {
    let subject = format!(
        "{}{}",
        PREFIXES[rng.random_range(0..PREFIXES.len())],
        ["Avstämning", "Lunch", "Kund", "Ledig", "Fokus"][rng.random_range(0..5)]
    );
    let mut spec = if rng.random_bool(0.12) {
        // All-day, one to three days.
        let first = random_start(rng, now)
            .to_zoned(
                jiff::tz::TimeZone::get("Europe/Stockholm").unwrap_or(jiff::tz::TimeZone::UTC),
            )
            .date();
        let days = rng.random_range(1..4);
        let mut e = EventSpec::new(
            &subject,
            first,
            first
                .checked_add(jiff::Span::new().days(days))
                .unwrap_or(first),
        );
        e.all_day = true;
        e
    } else {
        let start = random_start(rng, now);
        let length = if rng.random_bool(0.08) {
            // Multi-day.
            SignedDuration::from_hours(rng.random_range(24..72))
        } else {
            SignedDuration::from_mins(rng.random_range(1..=12) * 15)
        };
        EventSpec::new(&subject, start, start + length)
    };
    spec.show_as = SHOW_AS[rng.random_range(0..SHOW_AS.len())].into();
    if rng.random_bool(0.2) {
        spec.categories = vec![CATEGORIES[rng.random_range(0..CATEGORIES.len())].into()];
    }
    if rng.random_bool(0.1) {
        spec.sensitivity = "private".into();
    }
    if rng.random_bool(0.1) {
        spec.response = "accepted".into();
    }
    spec
}

/// Makes one random change; its kind.
fn change(rng: &mut StdRng, mailbox: &Mailbox, now: Timestamp) -> &'static str {
    let sim = &mailbox.calendars;
    let user = mailbox.email.as_str();
    let ids = sim.event_ids(user).unwrap_or_default();
    let pick = |rng: &mut StdRng| ids.get(rng.random_range(0..ids.len().max(1))).cloned();
    let roll = rng.random_range(0..100);
    let existing = if ids.is_empty() { None } else { pick(rng) };
    let spec_of = |id: &str| sim.event(user, id).ok();
    let result = match (roll, existing) {
        (0..30, _) | (_, None) => {
            if rng.random_bool(0.15) {
                let mut series = random_event(rng, now);
                series.all_day = false;
                let start: Timestamp = random_start(rng, now);
                series.start = start.to_string();
                series.end =
                    (start + SignedDuration::from_mins(rng.random_range(1..=4) * 15)).to_string();
                series.recurrence = Some(RecurrenceSpec {
                    pattern: if rng.random_bool(0.5) {
                        "daily"
                    } else {
                        "weekly"
                    }
                    .into(),
                    interval: 1,
                    days_of_week: Vec::new(),
                    until: None,
                    count: Some(rng.random_range(2..6)),
                });
                return match sim.create_event(user, series) {
                    Ok(_) => "create series",
                    Err(_) => "refused",
                };
            }
            sim.create_event(user, random_event(rng, now))
                .map(|_| "create")
        }
        (30..45, Some(id)) => match spec_of(&id) {
            Some(mut spec) if !spec.all_day => {
                let shift = SignedDuration::from_mins(rng.random_range(-6..7) * 15);
                let moved = |t: &str| {
                    t.parse::<Timestamp>()
                        .map(|t| (t + shift).to_string())
                        .unwrap_or_else(|_| t.to_owned())
                };
                spec.start = moved(&spec.start);
                spec.end = moved(&spec.end);
                sim.update_event(user, &id, spec).map(|()| "move")
            }
            _ => sim.delete_event(user, &id).map(|()| "delete"),
        },
        (45..55, Some(id)) => match spec_of(&id) {
            Some(mut spec) if !spec.all_day => {
                let grow = SignedDuration::from_mins(rng.random_range(-2..5) * 15);
                let start = spec.start.parse::<Timestamp>().unwrap_or(now);
                let end = spec.end.parse::<Timestamp>().unwrap_or(now) + grow;
                spec.end = end.max(start + SignedDuration::from_mins(5)).to_string();
                sim.update_event(user, &id, spec).map(|()| "resize")
            }
            _ => sim.delete_event(user, &id).map(|()| "delete"),
        },
        (55..68, Some(id)) => sim.delete_event(user, &id).map(|()| "delete"),
        (68..76, Some(id)) => match spec_of(&id) {
            Some(spec) if spec.recurrence.is_some() => {
                // One occurrence moved, cancelled or removed: an exception.
                let first = spec.start.parse::<Timestamp>().unwrap_or(now).to_zoned(
                    jiff::tz::TimeZone::get("Europe/Stockholm").unwrap_or(jiff::tz::TimeZone::UTC),
                );
                let step = if spec
                    .recurrence
                    .as_ref()
                    .is_some_and(|r| r.pattern == "weekly")
                {
                    7
                } else {
                    1
                };
                let nth = rng.random_range(0..2);
                let day = first
                    .date()
                    .checked_add(jiff::Span::new().days(nth * step))
                    .unwrap_or(first.date());
                let change = match rng.random_range(0..3) {
                    0 => None,
                    1 => Some(OccurrenceChange {
                        start: None,
                        end: None,
                        subject: Some("SEM: Ledig".into()),
                        show_as: Some("oof".into()),
                        is_cancelled: None,
                    }),
                    _ => Some(OccurrenceChange {
                        start: None,
                        end: None,
                        subject: None,
                        show_as: None,
                        is_cancelled: Some(true),
                    }),
                };
                sim.change_occurrence(user, &id, day, change)
                    .map(|()| "occurrence exception")
            }
            Some(mut spec) => {
                spec.subject = format!(
                    "{}{}",
                    PREFIXES[rng.random_range(0..PREFIXES.len())],
                    "Ändrad"
                );
                sim.update_event(user, &id, spec).map(|()| "edit")
            }
            None => Ok("refused"),
        },
        (76..82, Some(id)) => match spec_of(&id) {
            Some(mut spec) => {
                spec.sensitivity = if spec.sensitivity == "private" {
                    "normal".into()
                } else {
                    "private".into()
                };
                sim.update_event(user, &id, spec).map(|()| "private toggle")
            }
            None => Ok("refused"),
        },
        (82..88, Some(id)) => match spec_of(&id) {
            Some(mut spec) => {
                spec.response = "declined".into();
                sim.update_event(user, &id, spec).map(|()| "decline")
            }
            None => Ok("refused"),
        },
        (88..93, Some(id)) => match spec_of(&id) {
            Some(mut spec) => {
                spec.is_cancelled = true;
                sim.update_event(user, &id, spec).map(|()| "cancel")
            }
            None => Ok("refused"),
        },
        (_, Some(id)) => match spec_of(&id) {
            Some(mut spec) if spec.recurrence.is_some() => {
                // The whole series edited.
                spec.subject = "MOT: Serien flyttad".into();
                spec.show_as = "busy".into();
                sim.update_event(user, &id, spec).map(|()| "series edit")
            }
            Some(mut spec) => {
                spec.categories = vec![CATEGORIES[rng.random_range(0..CATEGORIES.len())].into()];
                sim.update_event(user, &id, spec).map(|()| "category")
            }
            None => Ok("refused"),
        },
    };
    result.unwrap_or("refused")
}

// ---------------------------------------------------------------------------------
// The oracle: the simulator's ground truth through the core crate.

fn free_busy(show_as: &str) -> FreeBusy {
    match show_as {
        "free" => FreeBusy::Free,
        "tentative" => FreeBusy::Tentative,
        "busy" => FreeBusy::Busy,
        "oof" => FreeBusy::Oof,
        "workingElsewhere" => FreeBusy::WorkingElsewhere,
        _ => FreeBusy::Unknown,
    }
}

fn sensitivity(s: &str) -> Sensitivity {
    match s {
        "personal" => Sensitivity::Personal,
        "private" => Sensitivity::Private,
        "confidential" => Sensitivity::Confidential,
        _ => Sensitivity::Normal,
    }
}

fn response(r: &str) -> ResponseStatus {
    match r {
        "organizer" => ResponseStatus::Organizer,
        "accepted" => ResponseStatus::Accepted,
        "tentativelyAccepted" => ResponseStatus::Tentative,
        "declined" => ResponseStatus::Declined,
        "notResponded" => ResponseStatus::NotResponded,
        _ => ResponseStatus::None,
    }
}

/// A calendar item as the domain sees it, mapped here from the simulator's own record.
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
    b.free_busy = free_busy(&o.show_as);
    b.sensitivity = sensitivity(&o.sensitivity);
    b.categories = o.categories.clone();
    b.cancelled = o.is_cancelled;
    b.response = response(&o.response);
    b.subject = Some(o.subject.clone());
    Some(b)
}

fn oracle(mailbox: &Mailbox, settings: &InstanceSettings, now: Timestamp) -> Option<Timeline> {
    let window = Window::sync(now, settings.days_ahead);
    let items = mailbox
        .calendars
        .occurrences(&mailbox.email, window.start, window.end)
        .ok()?;
    let bookings: Vec<Booking> = items.iter().filter_map(booking).collect();
    Some(build_timeline(&bookings, settings, window))
}

// ---------------------------------------------------------------------------------
// Comparing.

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

/// Where one user differs from the oracle at `now`, if anywhere.
fn difference(
    email: &str,
    truth: &Timeline,
    status: &serde_json::Value,
    pbx: Option<&(u64, Option<Shown>)>,
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
        mode: a.mode.as_str().to_owned(),
        until: a.end,
        returns_at: a.returns_at,
    });
    let shown = pbx.and_then(|(_, s)| s.clone());
    let comparable = |s: &Option<Shown>| {
        s.as_ref().map(|s| {
            (
                s.reason.clone(),
                s.mode.clone(),
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

// ---------------------------------------------------------------------------------
// The run.

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn sign_in(base: &str) -> Result<Api, String> {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let answer = http
            .post(format!("{base}/api/v1/session"))
            .json(&serde_json::json!({"email": OPERATOR, "password": OPERATOR_PASSWORD}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !answer.status().is_success() {
            return Err(format!("sign-in answered {}", answer.status()));
        }
        Ok(Api {
            http,
            base: base.to_owned(),
        })
    }

    async fn get(&self, path: &str) -> Result<serde_json::Value, String> {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())
    }

    /// Every user's id by mailbox.
    async fn users(&self) -> Result<HashMap<String, String>, String> {
        let mut ids = HashMap::new();
        for company in self
            .get("/api/v1/companies")
            .await?
            .as_array()
            .into_iter()
            .flatten()
        {
            let c = company["id"].as_str().unwrap_or_default();
            for instance in self
                .get(&format!("/api/v1/companies/{c}/instances"))
                .await?
                .as_array()
                .into_iter()
                .flatten()
            {
                let i = instance["id"].as_str().unwrap_or_default();
                for u in self
                    .get(&format!("/api/v1/instances/{i}/users"))
                    .await?
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    if let (Some(email), Some(id)) = (u["email"].as_str(), u["id"].as_str()) {
                        ids.insert(email.to_ascii_lowercase(), id.to_owned());
                    }
                }
            }
        }
        Ok(ids)
    }
}

fn config_text(
    dir: &std::path::Path,
    port: u16,
    pbx_url: &str,
    graph_url: &url::Url,
    ews_url: &url::Url,
    graph_users: &[String],
    ews_users: &[String],
) -> String {
    let list = |users: &[String]| {
        users
            .iter()
            .enumerate()
            .map(|(i, u)| format!("{{ email = \"{u}\", extension = \"{}\" }}", 1000 + i))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rules: String = RULES.lines().map(|l| format!("{l}\n")).collect();
    format!(
        r#"database_url = "sqlite:{db}"
master_key_file = "{key}"
public_url = "http://127.0.0.1:{port}/"

# The simulators and the webhook PBX listen on loopback.
[outbound]
allow = ["127.0.0.0/8", "::1/128"]

[engine]
poll_interval_secs = 5
debounce_ms = 200
max_attempts = 100000

[[accounts]]
email = "{OPERATOR}"
role = "operator"
password = "{OPERATOR_PASSWORD}"

[[companies]]
name = "Chaos AB"

[[companies.targets]]
kind = "webhook"
name = "pbx"
url = "{pbx_url}"
signing_secret = "{SIGNING_SECRET}"

[[companies.instances]]
name = "Microsoft 365"
source = {{ kind = "graph", tenant = "chaos", client_id = "chaos-app", client_secret = "chaos-secret", graph_url = "{graph_url}v1.0/", login_url = "{graph_url}" }}
users = [{graph}]
[companies.instances.settings]
{rules}
[[companies.instances]]
name = "Exchange"
source = {{ kind = "ews", url = "{ews_url}EWS/Exchange.asmx", username = "{account}", password = "{EWS_PASSWORD}", auth = "ntlm", version = "2016", access = "impersonation" }}
users = [{ews}]
[companies.instances.settings]
{rules}"#,
        db = dir.join("chaos.db").display(),
        key = dir.join("chaos.key").display(),
        graph = list(graph_users),
        ews = list(ews_users),
        account = EWS_ACCOUNT.replace('\\', "\\\\"),
    )
}

async fn run(args: &ChaosArgs) -> Result<Report, String> {
    let started = Instant::now();
    let seed = args.seed.unwrap_or_else(rand::random);
    eprintln!(
        "chaos: seed {seed} (to repeat: kalsync chaos --seed {seed} --users {} --changes {} --rate {} --kills {} --fault-rate {} --settle-secs {})",
        args.users, args.changes, args.rate, args.kills, args.fault_rate, args.settle_secs
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let settings = InstanceSettings::from_toml(RULES).map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("kalsync-chaos-{}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;

    // Two organisations: one on Microsoft 365, one on its own Exchange.
    let graph = Simulator::new(SimConfig::with_secret("chaos", "chaos-app", "chaos-secret"));
    let exchange = Simulator::new(SimConfig::with_secret("chaos", "chaos-app", "chaos-secret"));
    let on_graph = args.users.div_ceil(2);
    let mut mailboxes = Vec::new();
    let mut graph_users = Vec::new();
    let mut ews_users = Vec::new();
    for i in 0..args.users {
        let (email, calendars) = if i < on_graph {
            (format!("g{i:04}@graph.chaos.example"), graph.clone())
        } else {
            (format!("e{i:04}@ews.chaos.example"), exchange.clone())
        };
        calendars
            .add_user(user_spec(&email))
            .map_err(|e| e.to_string())?;
        if i < on_graph {
            graph_users.push(email.clone());
        } else {
            ews_users.push(email.clone());
        }
        mailboxes.push(Mailbox { email, calendars });
    }
    let now = Timestamp::now();
    // Everyone starts with a few bookings.
    let mut changes_by_kind: BTreeMap<&'static str, u32> = BTreeMap::new();
    for m in &mailboxes {
        for _ in 0..3 {
            if m.calendars
                .create_event(&m.email, random_event(&mut rng, now))
                .is_ok()
            {
                *changes_by_kind.entry("initial").or_default() += 1;
            }
        }
    }
    let (graph_url, _graph_server) = kalsync_graph_sim::spawn(graph.clone())
        .await
        .map_err(|e| e.to_string())?;
    let ews = EwsSim::new(exchange.clone(), EwsConfig::new(EWS_ACCOUNT, EWS_PASSWORD));
    let (ews_url, _ews_server) = kalsync_ews_sim::spawn(ews.clone())
        .await
        .map_err(|e| e.to_string())?;
    let pbx = Pbx::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(pbx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let pbx_url = format!(
        "http://{}/hook",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let pbx_server = tokio::spawn(async move { axum::serve(listener, app).await });

    let port = free_port()?;
    let config = dir.join("kalsync.toml");
    std::fs::write(
        &config,
        config_text(
            &dir,
            port,
            &pbx_url,
            &graph_url,
            &ews_url,
            &graph_users,
            &ews_users,
        ),
    )
    .map_err(|e| e.to_string())?;
    let log = dir.join("service.log");
    let base = format!("http://127.0.0.1:{port}");
    // The wall clock steps only where libfaketime is installed; the report says so.
    let clock = std::path::Path::new(FAKETIME).exists().then(|| Clock {
        file: dir.join("clock"),
        offset: std::cell::Cell::new(0),
    });
    if let Some(c) = &clock {
        c.set(0);
    } else {
        eprintln!("chaos: no clock steps: {FAKETIME} is missing (apt-get install faketime)");
    }
    let clock_file = clock.as_ref().map(|c| c.file.clone());
    let start = |config: std::path::PathBuf, log: std::path::PathBuf| {
        let clock_file = clock_file.clone();
        tokio::task::spawn_blocking(move || Node::start(&config, port, &log, clock_file.as_deref()))
    };
    let mut node = Some(
        start(config.clone(), log.clone())
            .await
            .map_err(|e| e.to_string())??,
    );

    // The workload, with faults along the way.
    let mut faults_by_kind: BTreeMap<&'static str, u32> = BTreeMap::new();
    let kill_at: HashSet<usize> = (1..=args.kills)
        .map(|k| k * args.changes / (args.kills + 1))
        .collect();
    let pause = Duration::from_secs_f64(1.0 / args.rate.max(0.1));
    for i in 0..args.changes {
        tokio::time::sleep(pause).await;
        let now = Timestamp::now();
        let m = &mailboxes[rng.random_range(0..mailboxes.len())];
        *changes_by_kind.entry(change(&mut rng, m, now)).or_default() += 1;
        if kill_at.contains(&i) {
            if let Some(n) = node.take() {
                drop(n);
            }
            *faults_by_kind.entry("SIGKILL and restart").or_default() += 1;
            tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await;
            node = Some(
                start(config.clone(), log.clone())
                    .await
                    .map_err(|e| e.to_string())??,
            );
            continue;
        }
        if !rng.random_bool(args.fault_rate.clamp(0.0, 1.0)) {
            continue;
        }
        let n = rng.random_range(1..4);
        let kind = match rng.random_range(0..14) {
            13 => {
                // The clock stays within two minutes of the truth, so a webhook's
                // signature stays within the receiver's five-minute tolerance.
                let offset = rng.random_range(30..120) * if rng.random_bool(0.5) { 1 } else { -1 };
                let Some(kind) = clock.as_ref().and_then(|c| step_kind(c.set(offset))) else {
                    continue;
                };
                kind
            }
            0 => {
                let mut f = graph.faults();
                f.throttle += n;
                f.retry_after_secs = 1.0;
                graph.set_faults(f);
                "Graph 429 with Retry-After"
            }
            1 => {
                let mut f = graph.faults();
                f.server_errors += n;
                graph.set_faults(f);
                "Graph 503"
            }
            2 => {
                let mut f = graph.faults();
                f.drop_connections += n;
                graph.set_faults(f);
                "Graph connection reset"
            }
            3 => {
                let mut f = graph.faults();
                f.lose_notifications += n;
                graph.set_faults(f);
                "notification lost"
            }
            4 => {
                let mut f = graph.faults();
                f.duplicate_notifications += n;
                graph.set_faults(f);
                "notification duplicated"
            }
            5 => {
                let mut f = graph.faults();
                f.expire_tokens = true;
                graph.set_faults(f);
                "tokens expired"
            }
            6 | 7 => {
                // Drawn before looking, so the seed alone decides what comes next.
                let (pick, event) = (
                    rng.random::<u32>() as usize,
                    ["subscriptionRemoved", "missed", "reauthorizationRequired"]
                        [rng.random_range(0..3)],
                );
                let subscriptions = graph.subscriptions();
                let Some((id, _, _)) = subscriptions.get(pick % subscriptions.len().max(1)) else {
                    continue;
                };
                if graph.lifecycle(id, event).is_err() {
                    continue;
                }
                match event {
                    "subscriptionRemoved" => "subscription removed",
                    "missed" => "notifications missed (lifecycle)",
                    _ => "reauthorization required",
                }
            }
            8 => {
                let mut f = ews.faults();
                f.server_busy += n;
                f.back_off_ms = 500;
                ews.set_faults(f);
                "Exchange busy with back-off"
            }
            9 => {
                let mut f = ews.faults();
                f.drop_streams += 1;
                ews.set_faults(f);
                "Exchange stream dropped"
            }
            10 => {
                let mut f = ews.faults();
                f.expire_watermarks += n;
                ews.set_faults(f);
                "Exchange watermark or sync state expired"
            }
            _ => {
                pbx.down.store(true, std::sync::atomic::Ordering::SeqCst);
                let back = pbx.down.clone();
                let outage = Duration::from_millis(rng.random_range(500..3000));
                tokio::spawn(async move {
                    tokio::time::sleep(outage).await;
                    back.store(false, std::sync::atomic::Ordering::SeqCst);
                });
                "PBX outage"
            }
        };
        *faults_by_kind.entry(kind).or_default() += 1;
    }

    // Quiesce: the faults stop (the clock is set right: one more step), the service
    // catches up.
    if let Some(kind) = clock.as_ref().and_then(|c| step_kind(c.set(0))) {
        *faults_by_kind.entry(kind).or_default() += 1;
    }
    graph.set_faults(Faults::default());
    ews.set_faults(EwsFaults::default());
    let workload_done = Instant::now();
    let deadline = workload_done + Duration::from_secs(args.settle_secs);
    tokio::time::sleep(Duration::from_secs(3)).await;
    pbx.down.store(false, std::sync::atomic::Ordering::SeqCst);
    let api = loop {
        match Api::sign_in(&base).await {
            Ok(api) => break api,
            Err(e) if Instant::now() > deadline => return Err(format!("the service: {e}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    let ids = api.users().await?;
    let mut previous: Option<HashSet<String>> = None;
    let mut examples: Vec<(String, String)>;
    let mut diverged: HashSet<String>;
    let mut compared;
    loop {
        diverged = HashSet::new();
        examples = Vec::new();
        compared = 0;
        for m in &mailboxes {
            let Some(id) = ids.get(&m.email) else {
                diverged.insert(m.email.clone());
                examples.push((
                    m.email.clone(),
                    format!("{}: not a user of the service", m.email),
                ));
                continue;
            };
            let status = api.get(&format!("/api/v1/users/{id}/status")).await?;
            let now = Timestamp::now();
            let Some(truth) = oracle(m, &settings, now) else {
                diverged.insert(m.email.clone());
                examples.push((
                    m.email.clone(),
                    format!("{}: the oracle cannot read its calendar", m.email),
                ));
                continue;
            };
            compared += 1;
            let shown = pbx.book().shown.get(&m.email).cloned();
            if let Some(d) = difference(
                &m.email,
                &truth,
                &status,
                shown.as_ref(),
                now,
                settings.days_ahead,
            ) {
                diverged.insert(m.email.clone());
                examples.push((m.email.clone(), d));
            }
        }
        // Settled when nobody differs. At the deadline, a difference counts when it
        // lasted the last two rounds (one round may fall on a transition's instant);
        // there are always two rounds before it is judged.
        if diverged.is_empty() {
            break;
        }
        if Instant::now() > deadline
            && let Some(before) = &previous
        {
            diverged = diverged.intersection(before).cloned().collect();
            examples.retain(|(user, _)| diverged.contains(user));
            break;
        }
        previous = Some(diverged);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    examples.truncate(5);
    let settled = workload_done.elapsed();

    // Deliveries: what the service counts as delivered, the PBX must have applied; none
    // may be dead, or pending past its time. The service stops first, so the store and
    // the PBX are read at rest.
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let Some(n) = node.take() {
        drop(n);
    }
    let store = kalsync_store_sql::SqlStore::connect(
        &kalsync_store_sql::DatabaseUrl::new(format!("sqlite:{}", dir.join("chaos.db").display())),
        kalsync_store::SecretBox::from_key_file(&dir.join("chaos.key"))
            .map_err(|e| e.to_string())?,
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut lost = 0;
    {
        use kalsync_store::{DeliveryState, Store as _};
        let applied: HashSet<String> = pbx.book().applied.keys().cloned().collect();
        for company in store.companies().await.map_err(|e| e.to_string())? {
            for d in store
                .deliveries(company.id, DeliveryState::Delivered, usize::MAX >> 1)
                .await
                .map_err(|e| e.to_string())?
            {
                if !applied.contains(&d.id.to_string()) {
                    lost += 1;
                }
            }
            lost += store
                .deliveries(company.id, DeliveryState::Dead, usize::MAX >> 1)
                .await
                .map_err(|e| e.to_string())?
                .len();
            // A transition due in the last seconds is pending by design.
            lost += store
                .deliveries(company.id, DeliveryState::Pending, usize::MAX >> 1)
                .await
                .map_err(|e| e.to_string())?
                .iter()
                .filter(|d| d.due <= Timestamp::now() - SignedDuration::from_secs(10))
                .count();
        }
    }
    pbx_server.abort();
    let book = pbx.book();
    let report = Report {
        seed,
        users: args.users,
        changes: args.changes,
        changes_by_kind,
        faults_by_kind,
        divergences: diverged.len(),
        lost_deliveries: lost,
        duplicates: book.twice,
        redeliveries_ignored: book.redeliveries,
        statuses_received: book.applied.len(),
        seconds_to_settle: settled.as_secs_f64(),
        seconds_in_all: started.elapsed().as_secs_f64(),
        users_compared: compared,
        examples: examples.into_iter().map(|(_, d)| d).collect(),
    };
    drop(book);
    if report.passed() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!(
            "chaos: the service's log and database are kept in {}",
            dir.display()
        );
    }
    Ok(report)
}
