//! The compact form in which the engine holds each user's timeline in memory: times as
//! milliseconds, reason codes interned, no texts (labels and announcements are written
//! when a status goes out), the zone only where it is not the instance's. A node holding
//! 100,000 users keeps about fifty bytes per absence.

use std::collections::HashMap;

use jiff::Timestamp;
use kalsync_core::{Absence, Mode, ReasonCode, Timeline, Zone};

/// Reason codes by number: a node meets a handful of distinct codes, held once each.
#[derive(Debug, Default)]
pub(crate) struct Reasons {
    codes: Vec<ReasonCode>,
    index: HashMap<ReasonCode, u32>,
}

impl Reasons {
    fn intern(&mut self, code: &ReasonCode) -> u32 {
        if let Some(&i) = self.index.get(code) {
            return i;
        }
        let i = u32::try_from(self.codes.len()).unwrap_or(u32::MAX);
        self.codes.push(code.clone());
        self.index.insert(code.clone(), i);
        i
    }

    fn code(&self, i: u32) -> Option<&ReasonCode> {
        self.codes.get(usize::try_from(i).ok()?)
    }
}

/// One absence, packed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    start: i64,
    end: i64,
    returns_at: i64,
    subject: Option<Box<str>>,
    reason: u32,
    divert: bool,
    user_choice: bool,
    // In the padding after the flags: no footprint of its own.
    source: kalsync_core::Source,
    open_ended: bool,
}

fn instant(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// A held user's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The timeline's zone where it differs from the instance's.
    zone: Option<Zone>,
    slots: Box<[Slot]>,
}

impl Plan {
    /// Packs a timeline; `instance_zone` is the zone its instance tells time in.
    pub(crate) fn pack(timeline: &Timeline, instance_zone: &Zone, reasons: &mut Reasons) -> Plan {
        Plan {
            zone: (timeline.zone != *instance_zone).then(|| timeline.zone.clone()),
            slots: timeline
                .absences
                .iter()
                .map(|a| Slot {
                    start: a.start.as_millisecond(),
                    end: a.end.as_millisecond(),
                    returns_at: a.returns_at.as_millisecond(),
                    subject: a.subject.as_deref().map(Box::from),
                    reason: reasons.intern(&a.reason),
                    divert: a.mode == Mode::Divert,
                    user_choice: a.user_choice,
                    source: a.source,
                    open_ended: a.open_ended,
                })
                .collect(),
        }
    }

    /// When the status next changes after `t`: the next absence start or end.
    pub(crate) fn next_transition(&self, t: Timestamp) -> Option<Timestamp> {
        let t = t.as_millisecond();
        self.slots
            .iter()
            .flat_map(|s| [s.start, s.end])
            .find(|&x| x > t)
            .map(instant)
    }

    /// The last transition at or before `now`, if one comes after `since`; else `since`.
    /// A transition due at `since` but sent late (the clock jumped, the node was busy)
    /// goes out as the state in force, not as a replay of the states in between.
    pub(crate) fn caught_up(&self, since: Timestamp, now: Timestamp) -> Timestamp {
        let (from, to) = (since.as_millisecond(), now.as_millisecond());
        self.slots
            .iter()
            .flat_map(|s| [s.start, s.end])
            .filter(|&x| x > from && x <= to)
            .max()
            .map_or(since, instant)
    }

    /// The absence in force at `t` and the next `upcoming` ones, unpacked as a timeline
    /// in `instance_zone` unless the plan has its own.
    pub(crate) fn around(
        &self,
        t: Timestamp,
        upcoming: usize,
        instance_zone: &Zone,
        reasons: &Reasons,
    ) -> Timeline {
        let t = t.as_millisecond();
        let absences = self
            .slots
            .iter()
            .filter(|s| s.end > t)
            .take(upcoming + 1)
            .filter_map(|s| {
                Some(Absence {
                    reason: reasons.code(s.reason)?.clone(),
                    mode: if s.divert { Mode::Divert } else { Mode::Info },
                    start: instant(s.start),
                    end: instant(s.end),
                    returns_at: instant(s.returns_at),
                    bookings: Vec::new(),
                    user_choice: s.user_choice,
                    subject: s.subject.as_deref().map(String::from),
                    source: s.source,
                    open_ended: s.open_ended,
                })
            })
            .collect();
        Timeline {
            zone: self.zone.clone().unwrap_or_else(|| instance_zone.clone()),
            absences,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kalsync_core::{BookingId, InstanceSettings};

    fn absence(reason: &str, mode: Mode, from: &str, to: &str) -> Absence {
        Absence {
            reason: ReasonCode::parse(reason).expect("code"),
            mode,
            start: from.parse().expect("start"),
            end: to.parse().expect("end"),
            returns_at: to.parse().expect("returns"),
            bookings: vec![BookingId::parse("b").expect("id")],
            user_choice: mode == Mode::Divert,
            subject: (reason == "lunch").then(|| "LUN: Lunch".into()),
            source: kalsync_core::Source::Booking,
            open_ended: false,
        }
    }

    #[test]
    fn packs_and_unpacks_what_a_status_needs() {
        let stockholm = Zone::stockholm();
        let mut reasons = Reasons::default();
        let timeline = Timeline {
            zone: stockholm.clone(),
            absences: vec![
                absence(
                    "meeting",
                    Mode::Info,
                    "2026-11-23T08:00:00Z",
                    "2026-11-23T09:00:00Z",
                ),
                absence(
                    "lunch",
                    Mode::Divert,
                    "2026-11-23T11:00:00Z",
                    "2026-11-23T12:00:00Z",
                ),
                absence(
                    "meeting",
                    Mode::Info,
                    "2026-11-23T13:00:00Z",
                    "2026-11-23T14:30:00Z",
                ),
            ],
        };
        let plan = Plan::pack(&timeline, &stockholm, &mut reasons);
        assert_eq!(reasons.codes.len(), 2, "codes are held once");
        let all = plan.around(
            "2026-11-23T00:00:00Z".parse().expect("t"),
            10,
            &stockholm,
            &reasons,
        );
        let stored = timeline.clone().without_bookings();
        assert_eq!(all, stored);

        let lunch: Timestamp = "2026-11-23T11:30:00Z".parse().expect("t");
        let around = plan.around(lunch, 1, &stockholm, &reasons);
        assert_eq!(around.absences, stored.absences[1..]);
        assert_eq!(
            plan.next_transition(lunch),
            Some("2026-11-23T12:00:00Z".parse().expect("t"))
        );
        assert_eq!(
            plan.next_transition("2026-11-23T14:30:00Z".parse().expect("t")),
            None
        );
        let noon: Timestamp = "2026-11-23T11:00:00Z".parse().expect("t");
        assert_eq!(plan.caught_up(noon, noon), noon, "on time");
        assert_eq!(
            plan.caught_up(noon, "2026-11-23T13:10:00Z".parse().expect("t")),
            "2026-11-23T13:00:00Z".parse::<Timestamp>().expect("t"),
            "late: the last transition passed"
        );
        let settings = InstanceSettings::default();
        assert_eq!(
            around.message(&around.absences[0], &settings, kalsync_core::Lang::En),
            "Lunch, back 13:00"
        );
    }

    #[test]
    fn keeps_a_mailbox_zone_of_its_own() {
        let stockholm = Zone::stockholm();
        let sydney = Zone::parse("Australia/Sydney").expect("zone");
        let mut reasons = Reasons::default();
        let timeline = Timeline {
            zone: sydney.clone(),
            absences: Vec::new(),
        };
        let plan = Plan::pack(&timeline, &stockholm, &mut reasons);
        let t: Timestamp = "2026-11-23T00:00:00Z".parse().expect("t");
        assert_eq!(plan.around(t, 5, &stockholm, &reasons).zone, sydney);
        let local = Plan::pack(&Timeline::default(), &stockholm, &mut reasons);
        assert!(local.zone.is_none());
        assert_eq!(local.around(t, 5, &stockholm, &reasons).zone, stockholm);
    }
}
