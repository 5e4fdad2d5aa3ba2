//! Realistic calendars for a simulated company: stand-ups with a moved and a dropped
//! occurrence, lunches (some prefixed), customer meetings, working from home, vacations,
//! sick days, private appointments, declined invitations, "Ingen hänvisning" focus time.
//! Deterministic for a seed, so a demo or a benchmark can be rerun.

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{
    EventSpec, OccurrenceChange, RecurrenceSpec, Simulator, SpecError, UserSpec, WorkingHoursSpec,
};

const FIRST: &[&str] = &[
    "Anna", "Bo", "Cecilia", "David", "Eva", "Fredrik", "Greta", "Hassan", "Ingrid", "Johan",
    "Karin", "Lars", "Maria", "Nils", "Olivia", "Per", "Rut", "Sara", "Tomas", "Ulla", "Viktor",
    "Wilma", "Yusuf", "Åsa", "Örjan",
];
const LAST: &[&str] = &[
    "Andersson",
    "Berg",
    "Carlsson",
    "Dahl",
    "Ek",
    "Forsberg",
    "Gustafsson",
    "Holm",
    "Isaksson",
    "Johansson",
    "Karlsson",
    "Lind",
    "Månsson",
    "Nilsson",
    "Olsson",
    "Persson",
    "Qvist",
    "Rask",
    "Sjöberg",
    "Törnqvist",
];
const CUSTOMERS: &[&str] = &[
    "Volvo",
    "Ericsson",
    "Scania",
    "Ikea",
    "Spotify",
    "SKF",
    "Sandvik",
    "Atlas Copco",
];

/// A person of the sample company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The mailbox id.
    pub id: String,
    /// `Anna Berg`.
    pub name: String,
    /// `anna.berg@…`.
    pub upn: String,
}

/// The i-th person's name and address.
pub fn person(i: usize, domain: &str) -> (String, String) {
    let first = FIRST[i % FIRST.len()];
    // i = 25q + r gives (r, (7q + r) mod 20): one pair for each i below 500.
    let last = LAST[(i + 2 * (i / FIRST.len())) % LAST.len()];

    let ascii = |s: &str| s.to_lowercase().replace(['å', 'ä'], "a").replace('ö', "o");
    let suffix = if i < FIRST.len() * LAST.len() {
        String::new()
    } else {
        format!("{}", i / (FIRST.len() * LAST.len()))
    };
    (
        format!("{first} {last}"),
        format!("{}.{}{suffix}@{domain}", ascii(first), ascii(last)),
    )
}

fn at(date: Date, hour: i8, minute: i8) -> String {
    date.to_datetime(Time::constant(hour, minute, 0, 0))
        .to_zoned(TimeZone::get("Europe/Stockholm").unwrap_or(TimeZone::UTC))
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_string()
}

fn timed(subject: &str, date: Date, from: (i8, i8), to: (i8, i8)) -> EventSpec {
    EventSpec {
        body: "Agenda and notes that Kalsync never reads.".into(),
        ..EventSpec::new(subject, at(date, from.0, from.1), at(date, to.0, to.1))
    }
}

fn all_day(subject: &str, first: Date, days: i64, show_as: &str) -> EventSpec {
    EventSpec {
        start: first.to_string(),
        end: first.checked_add(days.days()).unwrap_or(first).to_string(),
        all_day: true,
        show_as: show_as.into(),
        ..timed(subject, first, (0, 0), (0, 0))
    }
}

/// Adds `users` people with `weeks` weeks of bookings from the Monday `monday`.
pub fn populate(
    sim: &Simulator,
    users: usize,
    monday: Date,
    weeks: i64,
    seed: u64,
    domain: &str,
) -> Result<Vec<Person>, SpecError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut people = Vec::with_capacity(users);
    for i in 0..users {
        let (name, upn) = person(i, domain);
        let id = sim.add_user(UserSpec {
            upn: upn.clone(),
            id: None,
            display_name: Some(name.clone()),
            time_zone: "W. Europe Standard Time".into(),
            working_hours: Some(WorkingHoursSpec {
                days: ["monday", "tuesday", "wednesday", "thursday", "friday"]
                    .map(String::from)
                    .to_vec(),
                start: "08:00".into(),
                end: "17:00".into(),
            }),
        })?;
        calendar(sim, &id, &mut rng, monday, weeks)?;
        people.push(Person { id, name, upn });
    }
    Ok(people)
}

fn day(monday: Date, n: i64) -> Date {
    monday.checked_add(n.days()).unwrap_or(monday)
}

fn calendar(
    sim: &Simulator,
    user: &str,
    rng: &mut StdRng,
    monday: Date,
    weeks: i64,
) -> Result<(), SpecError> {
    let weekdays = ["monday", "tuesday", "wednesday", "thursday", "friday"]
        .map(String::from)
        .to_vec();
    // The team's stand-up: a series, one occurrence moved, one dropped.
    let mut standup = timed("Stand-up", monday, (9, 0), (9, 15));
    standup.response = "accepted".into();
    standup.recurrence = Some(RecurrenceSpec {
        pattern: "weekly".into(),
        interval: 1,
        days_of_week: weekdays.clone(),
        until: None,
        count: None,
    });
    let series = sim.create_event(user, standup)?;
    let thursday = day(monday, 3);
    sim.change_occurrence(
        user,
        &series,
        thursday,
        Some(OccurrenceChange {
            start: Some(at(thursday, 9, 30)),
            end: Some(at(thursday, 9, 45)),
            subject: None,
            show_as: None,
            is_cancelled: None,
        }),
    )?;
    sim.change_occurrence(user, &series, day(monday, 4), None)?;

    // Lunch: most book it every day with the prefix, the rest now and then.
    if rng.random_bool(0.6) {
        let mut lunch = timed("LUN: Lunch", monday, (12, 0), (13, 0));
        lunch.recurrence = Some(RecurrenceSpec {
            pattern: "weekly".into(),
            interval: 1,
            days_of_week: weekdays.clone(),
            until: None,
            count: None,
        });
        sim.create_event(user, lunch)?;
    } else {
        for d in 0..weeks * 7 {
            if d % 7 < 5 && rng.random_bool(0.4) {
                sim.create_event(user, timed("Lunch", day(monday, d), (11, 30), (12, 15)))?;
            }
        }
    }

    for week in 0..weeks {
        let w = week * 7;
        // Customer meetings, some prefixed, some categorised.
        for _ in 0..rng.random_range(1..=3) {
            let d = day(monday, w + rng.random_range(0..5));
            let hour = rng.random_range(13..16);
            let customer = CUSTOMERS[rng.random_range(0..CUSTOMERS.len())];
            let subject = if rng.random_bool(0.5) {
                format!("MOT: Kundmöte {customer}")
            } else {
                format!("Kundmöte {customer}")
            };
            let mut m = timed(&subject, d, (hour, 0), (hour + 1, 30));
            if rng.random_bool(0.4) {
                m.categories = vec!["Kund".into()];
            }
            m.location = format!("{customer}, Göteborg");
            sim.create_event(user, m)?;
        }
        // Internal meetings, some tentative, some declined.
        for _ in 0..rng.random_range(1..=3) {
            let d = day(monday, w + rng.random_range(0..5));
            let hour = rng.random_range(10..12);
            let mut m = timed("Planering", d, (hour, 0), (hour, 45));
            m.response = "accepted".into();
            if rng.random_bool(0.2) {
                m.show_as = "tentative".into();
                m.response = "tentativelyAccepted".into();
            } else if rng.random_bool(0.2) {
                m.response = "declined".into();
            }
            sim.create_event(user, m)?;
        }
        if rng.random_bool(0.35) {
            sim.create_event(
                user,
                all_day(
                    "Jobbar hemifrån",
                    day(monday, w + rng.random_range(0..5)),
                    1,
                    "workingElsewhere",
                ),
            )?;
        }
        if rng.random_bool(0.3) {
            let mut p = timed(
                if rng.random_bool(0.5) {
                    "Läkare"
                } else {
                    "Tandläkare"
                },
                day(monday, w + rng.random_range(0..5)),
                (14, 0),
                (15, 0),
            );
            p.sensitivity = "private".into();
            sim.create_event(user, p)?;
        }
        if rng.random_bool(0.15) {
            let mut focus = timed(
                "Fokustid",
                day(monday, w + rng.random_range(0..5)),
                (8, 0),
                (10, 0),
            );
            focus.categories = vec!["Ingen hänvisning".into()];
            sim.create_event(user, focus)?;
        }
        if rng.random_bool(0.1) {
            sim.create_event(
                user,
                timed(
                    "SLU: Hämtar barn",
                    day(monday, w + rng.random_range(0..5)),
                    (15, 30),
                    (16, 0),
                ),
            )?;
        }
    }
    if rng.random_bool(0.1) {
        sim.create_event(
            user,
            all_day(
                "SEM: Semester",
                day(monday, rng.random_range(0..weeks * 7 - 5)),
                rng.random_range(3..=5),
                "oof",
            ),
        )?;
    } else if rng.random_bool(0.05) {
        let mut sick = all_day("SJU: Sjuk", day(monday, rng.random_range(0..5)), 1, "oof");
        sick.categories = vec!["Sjuk / VAB".into()];
        sim.create_event(user, sick)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..20_000 {
            assert!(seen.insert(person(i, "x.example").1), "{i}");
        }
        assert_eq!(
            person(0, "x.example"),
            ("Anna Andersson".into(), "anna.andersson@x.example".into())
        );
        assert_eq!(person(23, "x.example").1, "asa.dahl@x.example");
    }
}
