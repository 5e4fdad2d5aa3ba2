//! The workload: the mailboxes of two organisations, the bookings everyone starts with,
//! and the seeded random calendar changes — bookings created, moved, resized, deleted,
//! series and their exceptions, private toggles, declines, cancellations, categories.

use jiff::{SignedDuration, Timestamp};
use kalsync_graph_sim::{EventSpec, OccurrenceChange, RecurrenceSpec, Simulator, UserSpec};
use rand::Rng;
use rand::rngs::StdRng;

use crate::report::Tally;

/// How a mailbox reaches the service, and so how its changes are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Reach {
    /// Microsoft 365: Graph change notifications.
    Graph,
    /// Exchange 2016 with impersonation: streaming subscriptions.
    Streaming,
    /// Exchange 2007 with impersonation: push subscriptions to the public URL.
    Push,
    /// Exchange 2007 that cannot reach the service: pull subscriptions.
    Pull,
    /// Exchange 2016 with delegate access: polled with `SyncFolderItems`.
    Delegate,
}

impl Reach {
    /// Every way, in the order the instances are declared.
    pub(crate) const ALL: [Reach; 5] = [
        Reach::Graph,
        Reach::Streaming,
        Reach::Push,
        Reach::Pull,
        Reach::Delegate,
    ];

    /// How the report names it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Reach::Graph => "Graph",
            Reach::Streaming => "EWS streaming",
            Reach::Push => "EWS push (2007)",
            Reach::Pull => "EWS pull (2007)",
            Reach::Delegate => "EWS delegate",
        }
    }

    /// Mailbox `i`'s way: four in ten on Graph, three streaming, one each pushed,
    /// pulled and delegated.
    fn of(i: usize) -> Reach {
        match i % 10 {
            0 | 2 | 4 | 7 => Reach::Graph,
            1 | 3 | 5 => Reach::Streaming,
            6 => Reach::Push,
            8 => Reach::Pull,
            _ => Reach::Delegate,
        }
    }
}

/// A mailbox and the simulator that keeps its calendar.
#[derive(Clone)]
pub(crate) struct Mailbox {
    pub(crate) email: String,
    pub(crate) calendars: Simulator,
    pub(crate) reach: Reach,
}

/// Everyone's mailboxes: those on Graph on Microsoft 365, the rest on the
/// organisation's own Exchange (2016 streaming and delegate, 2007 push and pull).
pub(crate) struct Company {
    pub(crate) mailboxes: Vec<Mailbox>,
}

impl Company {
    /// `users` mailboxes, added to the simulators they live on.
    pub(crate) fn new(
        users: usize,
        graph: &Simulator,
        exchange: &Simulator,
    ) -> Result<Company, String> {
        let mut company = Company {
            mailboxes: Vec::new(),
        };
        for i in 0..users {
            let reach = Reach::of(i);
            let (email, calendars) = match reach {
                Reach::Graph => (format!("g{i:04}@graph.chaos.example"), graph.clone()),
                _ => (format!("e{i:04}@ews.chaos.example"), exchange.clone()),
            };
            calendars
                .add_user(user_spec(&email))
                .map_err(|e| e.to_string())?;
            company.mailboxes.push(Mailbox {
                email,
                calendars,
                reach,
            });
        }
        Ok(company)
    }

    /// The mailboxes reached one way.
    pub(crate) fn reached(&self, reach: Reach) -> Vec<String> {
        self.mailboxes
            .iter()
            .filter(|m| m.reach == reach)
            .map(|m| m.email.clone())
            .collect()
    }

    /// Everyone starts with a few bookings, counted as `initial`.
    pub(crate) fn book_initial(&self, rng: &mut StdRng, now: Timestamp, changes: &mut Tally) {
        for m in &self.mailboxes {
            for _ in 0..3 {
                if m.calendars
                    .create_event(&m.email, random_event(rng, now))
                    .is_ok()
                {
                    *changes.entry("initial").or_default() += 1;
                }
            }
        }
    }
}

/// A mailbox in Stockholm's zone.
fn user_spec(email: &str) -> UserSpec {
    UserSpec {
        upn: email.into(),
        id: None,
        display_name: None,
        time_zone: "W. Europe Standard Time".into(),
        working_hours: None,
    }
}

/// Subject prefixes, some of them a user's choice of reason.
const PREFIXES: [&str; 9] = [
    "LUN: ", "MOT: ", "SEM: ", "SJK: ", "UPP: ", "HEM: ", "", "", "Möte ",
];
/// Show-as values in Graph's words, `busy` twice as likely.
pub(crate) const SHOW_AS: [&str; 6] = [
    "busy",
    "busy",
    "oof",
    "free",
    "tentative",
    "workingElsewhere",
];
/// Categories, some of them named like a reason.
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

/// A random booking near now or in the days ahead.
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
pub(crate) fn change(rng: &mut StdRng, mailbox: &Mailbox, now: Timestamp) -> &'static str {
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
