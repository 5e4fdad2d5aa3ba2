//! From bookings to a timeline (SPEC §3.2–§3.7): filter, classify (user's choice, then
//! rules), resolve overlaps, chain return times, apply working hours, write messages —
//! and the other sources of absence beside bookings (a status set by hand, the phone,
//! Outlook's automatic replies), in one order of precedence.

use std::cmp::Ordering;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::booking::{Booking, BookingId, BookingTime, FreeBusy, ResponseStatus};
use crate::message::{Lang, announcement};
use crate::reason::{AVAILABLE, GONE_FOR_THE_DAY, Mode, ReasonCode, Separator};
use crate::rules::{Facts, classify};
use crate::settings::{InstanceSettings, PrivatePolicy, UserChoice};
use crate::working_hours::Zone;

/// The categories that keep a booking off the PBX when users may steer bookings.
pub const NO_DIVERSION_CATEGORIES: [&str; 2] = ["Ingen hänvisning", "No diversion"];

/// The span of time a timeline is computed for; bookings not overlapping it are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Inclusive start.
    pub start: Timestamp,
    /// Exclusive end.
    pub end: Timestamp,
}

impl Window {
    /// The sync window of SPEC §3.2: `[now − 1 day, now + days_ahead days]`.
    pub fn sync(now: Timestamp, days_ahead: u16) -> Window {
        let day = SignedDuration::from_hours(24);
        Window {
            start: now.checked_sub(day).unwrap_or(now),
            end: now.checked_add(day * i32::from(days_ahead)).unwrap_or(now),
        }
    }

    /// Whether `[start, end)` overlaps the window.
    pub fn overlaps(&self, start: Timestamp, end: Timestamp) -> bool {
        start < self.end && end > self.start
    }
}

/// Why a booking does not affect the PBX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ignored {
    /// Cancelled by the organiser.
    Cancelled,
    /// Declined by the owner (and the instance ignores declined invitations).
    Declined,
    /// Private or confidential (and the instance never syncs those).
    Private,
    /// No rule matched.
    NoRuleMatched,
    /// The user chose "Ingen hänvisning" / "No diversion", or *available*.
    UserOptedOut,
    /// Zero length, or outside the window.
    OutsideWindow,
}

/// How one booking is classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// Reason.
    pub reason: ReasonCode,
    /// Mode.
    pub mode: Mode,
    /// Whether the user's own choice decided (not a rule).
    pub user_choice: bool,
    /// The rule that matched, by index.
    pub rule: Option<usize>,
    /// The subject to show, only where settings allow.
    pub subject: Option<String>,
}

/// The decision on one booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// It does not affect the PBX.
    Ignored(Ignored),
    /// It becomes (part of) an absence.
    Classified(Classification),
}

/// Where an absence comes from, in the order of precedence: an earlier one wins over a
/// later one wherever both are in force (within bookings, the user's own choice wins
/// over the rules, then SPEC §3.5).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A status set by hand (an admin, the receptionist, the person).
    Manual,
    /// From the phone: "I'm back" (available until the booking's end) or "extend".
    Phone,
    /// A booking in the calendar.
    #[default]
    Booking,
    /// Teams: a call, a meeting, "do not disturb" (read from Teams presence). It beats
    /// a booking shown for information; a booking's divert beats it unless the
    /// instance's `[teams] above_diverts` says otherwise.
    Teams,
    /// Outlook's automatic replies (out of office).
    AutomaticReplies,
}

impl Source {
    /// `manual`, `phone`, `booking`, `teams` or `automatic_replies`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Manual => "manual",
            Source::Phone => "phone",
            Source::Booking => "booking",
            Source::Teams => "teams",
            Source::AutomaticReplies => "automatic_replies",
        }
    }

    fn is_booking(&self) -> bool {
        *self == Source::Booking
    }
}

/// An absence (or, with no status, an explicit "available") from a source other than the
/// calendar: it takes part in the timeline by its [`Source`]'s precedence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    /// Its source (not [`Source::Booking`]: bookings come as bookings).
    pub source: Source,
    /// A stable id (what set it), for a total order and the "why".
    pub id: String,
    /// When it starts.
    pub start: Timestamp,
    /// When it ends; none: until cleared (open-ended — no return time is told).
    pub end: Option<Timestamp>,
    /// The status; none: available (it hides whatever is below it).
    pub status: Option<(ReasonCode, Mode)>,
}

/// One resolved absence: what decides it. Its labels and announcements follow from the
/// instance's catalogue and the timeline's zone ([`Absence::label`],
/// [`Absence::message`]), so a service holding many timelines keeps no texts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Absence {
    /// Reason code.
    pub reason: ReasonCode,
    /// Mode.
    pub mode: Mode,
    /// Start.
    pub start: Timestamp,
    /// End.
    pub end: Timestamp,
    /// The *åter-tid*.
    pub returns_at: Timestamp,
    /// The bookings it came from (empty once a service has stored the timeline: which
    /// bookings they were can be worked out again from the stored bookings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bookings: Vec<BookingId>,
    /// Whether the user's own choice decided it.
    pub user_choice: bool,
    /// Subject, only where settings allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Where it comes from.
    #[serde(default, skip_serializing_if = "Source::is_booking")]
    pub source: Source,
    /// Whether it lasts until cleared (no return time is known or told).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open_ended: bool,
}

impl Absence {
    /// The reason's label in `lang` from the instance's catalogue; the code itself for a
    /// reason the catalogue no longer has.
    pub fn label<'a>(&'a self, settings: &'a InstanceSettings, lang: Lang) -> &'a str {
        settings
            .reasons
            .get(&self.reason)
            .map_or(self.reason.as_str(), |r| match lang {
                Lang::Sv => r.label_sv.as_str(),
                Lang::En => r.label_en.as_str(),
            })
    }

    /// The announcement in `lang` ("Lunch, back 13:00"), with the clock of `zone`; an
    /// open-ended absence tells no return time.
    pub fn message(&self, settings: &InstanceSettings, zone: &TimeZone, lang: Lang) -> String {
        if self.open_ended {
            return self.label(settings, lang).to_owned();
        }
        announcement(
            lang,
            self.label(settings, lang),
            self.start,
            self.returns_at,
            zone,
        )
    }
}

/// A user's absences, in time order, never overlapping, and the zone their return times
/// are told in (the mailbox's when it has one, else the instance's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    /// The zone.
    #[serde(default = "Zone::stockholm")]
    pub zone: Zone,
    /// The absences.
    pub absences: Vec<Absence>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            zone: Zone::stockholm(),
            absences: Vec::new(),
        }
    }
}

impl Timeline {
    /// The announcement of `absence` in `lang`, told in this timeline's zone.
    pub fn message(&self, absence: &Absence, settings: &InstanceSettings, lang: Lang) -> String {
        absence.message(settings, self.zone.tz(), lang)
    }

    /// The same timeline without the booking ids (what a service stores and holds).
    pub fn without_bookings(mut self) -> Timeline {
        for a in &mut self.absences {
            a.bookings = Vec::new();
        }
        self
    }

    /// This (stored) timeline as it stands with `overrides`: the absences it had from
    /// the calendar are kept as they were and the other sources are laid over them
    /// again — for when the calendar cannot be read, or has not been read since an
    /// override changed.
    pub fn with_overrides(
        &self,
        overrides: &[Override],
        settings: &InstanceSettings,
        window: Window,
    ) -> Timeline {
        let kept = self
            .absences
            .iter()
            .filter(|a| a.source == Source::Booking)
            .enumerate()
            .map(|(i, a)| Override {
                source: Source::Booking,
                id: format!("kept-{i}"),
                start: a.start,
                end: Some(a.end),
                status: Some((a.reason.clone(), a.mode)),
            });
        let all: Vec<Override> = overrides.iter().cloned().chain(kept).collect();
        build_timeline_with(&[], &all, settings, window).without_bookings()
    }

    /// The absence active at `t`.
    pub fn at(&self, t: Timestamp) -> Option<&Absence> {
        self.absences.iter().find(|a| a.start <= t && t < a.end)
    }

    /// Absences overlapping `[from, to)`, each whole.
    pub fn overlapping(&self, from: Timestamp, to: Timestamp) -> impl Iterator<Item = &Absence> {
        self.absences
            .iter()
            .filter(move |a| a.start < to && a.end > from)
    }
}

/// The instant interval of a booking: all-day bookings run from local midnight to local
/// midnight in `tz` (23 or 25 hours on DST days).
pub fn interval(time: &BookingTime, tz: &TimeZone) -> Option<(Timestamp, Timestamp)> {
    match *time {
        BookingTime::Timed { start, end } => Some((start, end)),
        BookingTime::AllDay { first, end } => {
            let start = first.to_zoned(tz.clone()).ok()?.start_of_day().ok()?;
            let end = end.to_zoned(tz.clone()).ok()?.start_of_day().ok()?;
            Some((start.timestamp(), end.timestamp()))
        }
    }
}

/// Decides what one booking means (SPEC §3.2–§3.4), before overlaps are resolved.
pub fn decide(
    booking: &Booking,
    settings: &InstanceSettings,
    duration: SignedDuration,
) -> Decision {
    if booking.cancelled {
        return Decision::Ignored(Ignored::Cancelled);
    }
    if settings.ignore_declined && booking.response == ResponseStatus::Declined {
        return Decision::Ignored(Ignored::Declined);
    }
    let private = booking.sensitivity.is_private();
    if private && settings.private == PrivatePolicy::Skip {
        return Decision::Ignored(Ignored::Private);
    }
    // An anonymous private booking shows only that the user is busy.
    let (free_busy, subject, categories): (FreeBusy, Option<&str>, &[String]) = if private {
        let status = match booking.free_busy {
            FreeBusy::Free | FreeBusy::Tentative => booking.free_busy,
            _ => FreeBusy::Busy,
        };
        (status, None, &[])
    } else {
        (
            booking.free_busy,
            booking.subject.as_deref(),
            &booking.categories,
        )
    };

    let show = |allowed: bool, text: Option<String>| {
        text.map(|t| t.trim().to_owned())
            .filter(|t| allowed && settings.subjects_allowed() && !t.is_empty())
    };

    match user_choice(subject, categories, settings) {
        Some(Choice::OptOut) => return Decision::Ignored(Ignored::UserOptedOut),
        Some(Choice::Reason { reason, mode, rest }) => {
            if reason.as_str() == AVAILABLE {
                return Decision::Ignored(Ignored::UserOptedOut);
            }
            return Decision::Classified(Classification {
                reason,
                mode,
                user_choice: true,
                rule: None,
                subject: show(true, rest),
            });
        }
        None => {}
    }

    let facts = Facts {
        free_busy,
        subject,
        categories,
        all_day: booking.time.is_all_day(),
        duration,
        response: booking.response,
    };
    match classify(&settings.rules, &facts) {
        Some(v) if v.reason.as_str() == AVAILABLE => Decision::Ignored(Ignored::NoRuleMatched),
        Some(v) => Decision::Classified(Classification {
            reason: v.reason,
            mode: v.mode,
            user_choice: false,
            rule: Some(v.rule),
            subject: show(v.show_subject, v.stripped_subject),
        }),
        None => Decision::Ignored(Ignored::NoRuleMatched),
    }
}

enum Choice {
    OptOut,
    Reason {
        reason: ReasonCode,
        mode: Mode,
        rest: Option<String>,
    },
}

/// The user's own choice (SPEC §3.4): a subject prefix, then a category.
fn user_choice(
    subject: Option<&str>,
    categories: &[String],
    settings: &InstanceSettings,
) -> Option<Choice> {
    if settings.user_choice == UserChoice::Off {
        return None;
    }
    let opted_out = categories.iter().any(|c| {
        NO_DIVERSION_CATEGORIES
            .iter()
            .any(|n| n.to_lowercase() == c.trim().to_lowercase())
    });
    if opted_out {
        return Some(Choice::OptOut);
    }
    let allowed = |code: &ReasonCode| match settings.user_choice {
        UserChoice::Restricted => {
            code.as_str() == AVAILABLE || settings.allowed_reasons.contains(code)
        }
        _ => true,
    };
    if let Some((reason, sep, rest)) = subject.and_then(|s| settings.reasons.by_subject_prefix(s)) {
        if allowed(&reason.code) {
            let mode = match sep {
                Separator::Colon => Mode::Divert,
                Separator::Semicolon => Mode::Info,
            };
            return Some(Choice::Reason {
                reason: reason.code.clone(),
                mode,
                rest: Some(rest.to_owned()),
            });
        }
    }
    categories
        .iter()
        .filter_map(|c| settings.reasons.by_category(c))
        .find(|r| allowed(&r.code))
        .map(|r| Choice::Reason {
            reason: r.code.clone(),
            mode: Mode::Divert,
            rest: subject.map(str::to_owned),
        })
}

/// A classified booking's interval, or an override's.
#[derive(Debug, Clone)]
struct Item {
    start: Timestamp,
    end: Timestamp,
    id: BookingId,
    class: Classification,
    rank: usize,
    source: Source,
    /// Where its source stands, highest first ([`level`]).
    level: u8,
    /// An override that says "available": it hides what is below it.
    available: bool,
    /// An override until cleared.
    open_ended: bool,
}

impl Item {
    fn duration(&self) -> SignedDuration {
        self.end.duration_since(self.start)
    }

    /// The source, then SPEC §3.5: the user's choice, then divert, then reason rank, then the later start,
    /// then the shorter interval; ids and codes only make the order total.
    fn priority(&self, other: &Item) -> Ordering {
        // The higher source wins.
        other
            .level
            .cmp(&self.level)
            .then_with(|| teams_against_booking(self, other))
            .then(self.class.user_choice.cmp(&other.class.user_choice))
            .then((self.class.mode == Mode::Divert).cmp(&(other.class.mode == Mode::Divert)))
            .then(other.rank.cmp(&self.rank))
            .then(self.start.cmp(&other.start))
            .then(other.duration().cmp(&self.duration()))
            .then(other.id.cmp(&self.id))
            .then(other.class.reason.cmp(&self.class.reason))
    }
}

/// Builds a user's timeline over `window` (SPEC §3).
pub fn build_timeline(
    bookings: &[Booking],
    settings: &InstanceSettings,
    window: Window,
) -> Timeline {
    build_timeline_with(bookings, &[], settings, window)
}

/// Builds a user's timeline over `window` from bookings and the other sources'
/// `overrides`, in the order of precedence of [`Source`]: wherever one is in force it
/// decides, and where it ends what is below it shows again.
pub fn build_timeline_with(
    bookings: &[Booking],
    overrides: &[Override],
    settings: &InstanceSettings,
    window: Window,
) -> Timeline {
    let tz = settings.time_zone.tz();
    let mut items: Vec<Item> = bookings
        .iter()
        .filter_map(|b| {
            let (start, end) = interval(&b.time, tz)?;
            if start >= end || !window.overlaps(start, end) {
                return None;
            }
            match decide(b, settings, end.duration_since(start)) {
                Decision::Classified(class) => Some(Item {
                    start,
                    end,
                    id: b.id.clone(),
                    rank: settings.rank_of(&class.reason),
                    level: level(Source::Booking, settings),
                    class,
                    source: Source::Booking,
                    available: false,
                    open_ended: false,
                }),
                Decision::Ignored(_) => None,
            }
        })
        .collect();
    items.extend(
        overrides
            .iter()
            .filter_map(|o| override_item(o, settings, window)),
    );
    // A stable order makes the result independent of the input's order.
    items.sort_by(|a, b| {
        (a.start, a.end, &a.id, &a.class.reason, a.class.mode).cmp(&(
            b.start,
            b.end,
            &b.id,
            &b.class.reason,
            b.class.mode,
        ))
    });
    let run_end = run_ends(&items, settings.merge_gap);

    // Sweep over every boundary; each elementary piece goes to its highest priority item.
    let mut bounds: Vec<Timestamp> = items.iter().flat_map(|i| [i.start, i.end]).collect();
    bounds.sort();
    bounds.dedup();
    let mut pieces: Vec<(Timestamp, Timestamp, usize)> = Vec::new();
    let mut active: Vec<usize> = Vec::new();
    let mut next = 0;
    for pair in bounds.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        while next < items.len() && items[next].start <= a {
            active.push(next);
            next += 1;
        }
        active.retain(|&i| items[i].end > a);
        if let Some(&winner) = active
            .iter()
            .max_by(|&&x, &&y| items[x].priority(&items[y]))
            .filter(|&&w| !items[w].available)
        {
            pieces.push((a, b, winner));
        }
    }

    let mut absences: Vec<(Absence, Timestamp)> = Vec::new();
    for (start, end, winner) in pieces {
        let item = &items[winner];
        let returns = if settings.chain_return_time {
            run_end[winner]
        } else {
            item.end
        };
        if let Some((last, last_return)) = absences.last_mut() {
            if last.end == start
                && last.reason == item.class.reason
                && last.mode == item.class.mode
                && last.source == item.source
            {
                last.end = end;
                *last_return = (*last_return).max(returns);
                if !last.bookings.contains(&item.id) {
                    last.bookings.push(item.id.clone());
                }
                last.user_choice |= item.class.user_choice;
                last.open_ended |= item.open_ended;
                continue;
            }
        }
        absences.push((
            Absence {
                reason: item.class.reason.clone(),
                mode: item.class.mode,
                start,
                end,
                returns_at: returns,
                bookings: vec![item.id.clone()],
                user_choice: item.class.user_choice,
                subject: item.class.subject.clone(),
                source: item.source,
                open_ended: item.open_ended,
            },
            returns,
        ));
    }

    let wh = &settings.working_hours;
    let absences = absences
        .into_iter()
        .map(|(mut a, returns)| {
            a.returns_at = if a.open_ended {
                // Until cleared: no return time is known (the end is the window's).
                a.end
            } else if a.reason.as_str() == GONE_FOR_THE_DAY {
                let next_morning = wh.next_period_start_after(a.start, tz);
                if next_morning >= a.end {
                    next_morning
                } else {
                    wh.next_working_instant(a.end, tz)
                }
            } else {
                wh.next_working_instant(returns, tz)
            };
            a
        })
        .collect();
    Timeline {
        zone: settings.time_zone.clone(),
        absences,
    }
}

/// An override as an item of the sweep, clipped to `window`; none when it does not
/// overlap it or is empty.
fn override_item(o: &Override, settings: &InstanceSettings, window: Window) -> Option<Item> {
    let end = o.end.unwrap_or(window.end).min(window.end);
    let start = o.start.max(window.start);
    if start >= end {
        return None;
    }
    let (reason, mode, available) = match &o.status {
        Some((reason, mode)) => (reason.clone(), *mode, false),
        None => (ReasonCode::parse(AVAILABLE).ok()?, Mode::Info, true),
    };
    Some(Item {
        start,
        end,
        id: BookingId::parse(format!("{}:{}", o.source.as_str(), o.id)).ok()?,
        rank: settings.rank_of(&reason),
        class: Classification {
            reason,
            mode,
            user_choice: false,
            rule: None,
            subject: None,
        },
        source: o.source,
        level: level(o.source, settings),
        available,
        open_ended: o.end.is_none(),
    })
}

/// Where an item of `source` stands (0 highest): a status set by hand, the phone,
/// bookings and Teams, automatic replies — Teams above bookings where `[teams]
/// above_diverts` says so. Between Teams and a booking of the same level,
/// [`teams_against_booking`] decides.
fn level(source: Source, settings: &InstanceSettings) -> u8 {
    match source {
        Source::Manual => 0,
        Source::Phone => 1,
        Source::Teams if settings.teams.above_diverts => 2,
        Source::Booking | Source::Teams => 3,
        Source::AutomaticReplies => 4,
    }
}

/// Teams against a booking: a booking's divert, or the person's own choice, wins; Teams
/// wins over any other booking shown for information (the person is in a call or a
/// meeting now). Teams thus sits just above those bookings, so the order stays total
/// (the user's choice beats a divert, which beats Teams, which beats the rest).
fn teams_against_booking(a: &Item, b: &Item) -> Ordering {
    let strong = |i: &Item| i.class.mode == Mode::Divert || i.class.user_choice;
    match (a.source, b.source) {
        (Source::Teams, Source::Booking) if strong(b) => Ordering::Less,
        (Source::Teams, Source::Booking) => Ordering::Greater,
        (Source::Booking, Source::Teams) if strong(a) => Ordering::Greater,
        (Source::Booking, Source::Teams) => Ordering::Less,
        _ => Ordering::Equal,
    }
}

/// For each item, the end of its run: items of the same mode that overlap or follow each
/// other within `gap` (SPEC §3.6).
fn run_ends(items: &[Item], gap: SignedDuration) -> Vec<Timestamp> {
    let mut ends = vec![Timestamp::UNIX_EPOCH; items.len()];
    for mode in [Mode::Info, Mode::Divert] {
        // `items` is sorted by start.
        let members: Vec<usize> = (0..items.len())
            .filter(|&i| items[i].class.mode == mode)
            .collect();
        let mut run: Vec<usize> = Vec::new();
        let mut run_end = Timestamp::MIN;
        for i in members {
            let joins = items[i].start <= run_end.checked_add(gap).unwrap_or(run_end);
            if !joins {
                for &m in &run {
                    ends[m] = run_end;
                }
                run.clear();
                run_end = Timestamp::MIN;
            }
            run.push(i);
            run_end = run_end.max(items[i].end);
        }
        for &m in &run {
            ends[m] = run_end;
        }
    }
    ends
}
