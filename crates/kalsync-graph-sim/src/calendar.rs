//! The simulated organisation's calendars as any protocol serves them: occurrences in a
//! window, one item by id, and a feed of changes. The Graph endpoints are one way of
//! serving them; the EWS simulator is another, over the very same mailboxes.

use jiff::Timestamp;

use crate::Simulator;
use crate::world::{SpecError, When};

/// One item as a calendar view shows it (a single event, or one occurrence of a series).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// Its id.
    pub id: String,
    /// The series' id, for an occurrence or exception.
    pub series: Option<String>,
    /// `singleInstance`, `occurrence` or `exception`.
    pub kind: &'static str,
    /// Start.
    pub start: Timestamp,
    /// End.
    pub end: Timestamp,
    /// All-day (start and end are local midnights in `time_zone`).
    pub all_day: bool,
    /// The zone it was booked in (Windows id, or the mailbox's).
    pub time_zone: String,
    /// Subject.
    pub subject: String,
    /// `free`, `tentative`, `busy`, `oof`, `workingElsewhere`, `unknown`.
    pub show_as: String,
    /// `normal`, `personal`, `private`, `confidential`.
    pub sensitivity: String,
    /// Cancelled by the organiser.
    pub is_cancelled: bool,
    /// The owner's response, Graph's words.
    pub response: String,
    /// Categories.
    pub categories: Vec<String>,
    /// Location.
    pub location: String,
    /// Changes whenever the item does.
    pub change_key: u64,
    /// Whether it has attendees (a meeting rather than an appointment).
    pub is_meeting: bool,
}

/// A change to a mailbox's calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarChange {
    /// The mailbox's user id.
    pub user: String,
    /// The item (an event, or an occurrence of a series).
    pub item: String,
    /// `created`, `updated` or `deleted`.
    pub kind: String,
    /// When it was made (a subscription made later does not report it).
    pub at: jiff::Timestamp,
}

impl Simulator {
    /// The items of `user`'s calendar overlapping `[from, to)`, in start order.
    pub fn occurrences(
        &self,
        user: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Occurrence>, SpecError> {
        let world = self.world();
        let u = world.directory.user(user)?;
        let mut out: Vec<Occurrence> = u
            .events
            .values()
            .flat_map(|event| {
                event.instances(from, to).into_iter().map(move |i| {
                    let (start, end) = i.when.span(&event.zone);
                    Occurrence {
                        series: (i.kind != "singleInstance").then(|| event.id.clone()),
                        id: i.id,
                        kind: i.kind,
                        start,
                        end,
                        all_day: matches!(i.when, When::AllDay { .. }),
                        time_zone: event.zone_name.clone(),
                        subject: i.subject.to_owned(),
                        show_as: i.show_as.to_owned(),
                        sensitivity: event.spec.sensitivity.clone(),
                        is_cancelled: i.is_cancelled,
                        response: event.spec.response.clone(),
                        categories: event.spec.categories.clone(),
                        location: event.spec.location.clone(),
                        change_key: i.change_key,
                        is_meeting: !event.spec.attendees.is_empty(),
                    }
                })
            })
            .collect();
        out.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        Ok(out)
    }

    /// From the first start to the last end of `user`'s events as booked (a series by
    /// its first occurrence); `None` for an empty calendar. Lets a protocol that
    /// serves "every item" (EWS folder sync) pick a window from the calendar itself,
    /// whatever the machine's date.
    pub fn calendar_span(&self, user: &str) -> Result<Option<(Timestamp, Timestamp)>, SpecError> {
        let world = self.world();
        let u = world.directory.user(user)?;
        Ok(u.events
            .values()
            .map(|event| event.when.span(&event.zone))
            .reduce(|(s1, e1), (s2, e2)| (s1.min(s2), e1.max(e2))))
    }

    /// One item by id: a single event, or an occurrence within `[from, to)`.
    pub fn occurrence(
        &self,
        user: &str,
        id: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Occurrence, SpecError> {
        self.occurrences(user, from, to)?
            .into_iter()
            .find(|o| o.id == id)
            .ok_or_else(|| SpecError::NotFound(format!("item `{id}`")))
    }

    /// Changes to any calendar from now on.
    pub fn watch(&self) -> tokio::sync::broadcast::Receiver<CalendarChange> {
        self.shared.changes.subscribe()
    }

    /// The user id and e-mail of a mailbox named by either.
    pub fn mailbox(&self, user: &str) -> Result<(String, String), SpecError> {
        let world = self.world();
        let u = world.directory.user(user)?;
        Ok((u.id.clone(), u.upn.clone()))
    }
}
