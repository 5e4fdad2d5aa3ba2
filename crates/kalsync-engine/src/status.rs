//! What a PBX target receives: a user's status at a transition (SPEC §5) — reason,
//! labels, mode, since, until, return time, messages — and the upcoming timeline.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use kalsync_core::{Absence, InstanceSettings, Lang, Mode, Timeline};
use kalsync_store::User;
use serde::{Deserialize, Serialize};

/// Who the status is for, as the PBX knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Kalsync's user id.
    pub id: String,
    /// The mailbox.
    pub email: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// PBX extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

/// An absence as targets see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbsenceStatus {
    /// Reason code.
    pub reason: String,
    /// Swedish label.
    pub label_sv: String,
    /// English label.
    pub label_en: String,
    /// `info` or `divert`.
    pub mode: Mode,
    /// Since.
    pub since: Timestamp,
    /// Until (the absence's end).
    pub until: Timestamp,
    /// The return time.
    pub returns_at: Timestamp,
    /// Swedish announcement.
    pub message_sv: String,
    /// English announcement.
    pub message_en: String,
    /// The subject, only where the instance shows titles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Where it comes from: `booking`, `manual`, `phone`, `teams`, `automatic_replies`.
    #[serde(default)]
    pub source: kalsync_core::Source,
}

impl AbsenceStatus {
    /// An absence with its labels and announcements written out by the instance's
    /// catalogue, with the clock of `zone`.
    pub fn new(a: &Absence, settings: &InstanceSettings, zone: &TimeZone) -> Self {
        AbsenceStatus {
            reason: a.reason.to_string(),
            label_sv: a.label(settings, Lang::Sv).to_owned(),
            label_en: a.label(settings, Lang::En).to_owned(),
            mode: a.mode,
            since: a.start,
            until: a.end,
            returns_at: a.returns_at,
            message_sv: a.message(settings, zone, Lang::Sv),
            message_en: a.message(settings, zone, Lang::En),
            subject: a.subject.clone(),
            source: a.source,
        }
    }
}

/// A user's status at one instant, with what comes next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusUpdate {
    /// Whose.
    pub user: Person,
    /// The instant this status begins (the transition).
    pub at: Timestamp,
    /// The absence in force, or `None`: available.
    pub absence: Option<AbsenceStatus>,
    /// The next absences (at most five), for targets that show a timeline.
    pub upcoming: Vec<AbsenceStatus>,
}

/// What a PBX shows of a status: the absence's reason, mode and times (its messages
/// follow from them), without the upcoming list. Two statuses with the same key need
/// not both be sent. The engine compares keys before it writes the texts out, so it
/// makes them from the timeline's absence ([`StatusKey::of`]) as well as from a sent
/// status ([`StatusUpdate::key`]): both through [`StatusKey::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusKey {
    reason: String,
    mode: Mode,
    since: Timestamp,
    until: Timestamp,
    returns_at: Timestamp,
}

impl StatusKey {
    /// The key of these shown parts.
    pub fn new(
        reason: &str,
        mode: Mode,
        since: Timestamp,
        until: Timestamp,
        returns_at: Timestamp,
    ) -> StatusKey {
        StatusKey {
            reason: reason.to_owned(),
            mode,
            since,
            until,
            returns_at,
        }
    }

    /// The key of an absence in a timeline.
    pub fn of(a: &Absence) -> StatusKey {
        StatusKey::new(a.reason.as_str(), a.mode, a.start, a.end, a.returns_at)
    }
}

/// How many upcoming absences go with a status.
pub const UPCOMING: usize = 5;

impl StatusUpdate {
    /// The status of `user` at `t` by `timeline`, its texts by the instance's settings.
    pub fn at(
        user: &User,
        timeline: &Timeline,
        settings: &InstanceSettings,
        t: Timestamp,
    ) -> StatusUpdate {
        let zone = timeline.zone.tz();
        StatusUpdate {
            user: Person {
                id: user.id.to_string(),
                email: user.email.to_string(),
                name: user.display_name.clone(),
                extension: user.extension.as_ref().map(ToString::to_string),
            },
            at: t,
            absence: timeline
                .at(t)
                .map(|a| AbsenceStatus::new(a, settings, zone)),
            upcoming: timeline
                .absences
                .iter()
                .filter(|a| a.start > t)
                .take(UPCOMING)
                .map(|a| AbsenceStatus::new(a, settings, zone))
                .collect(),
        }
    }

    /// What a PBX shows ([`StatusKey`]); `None`: available.
    pub fn key(&self) -> Option<StatusKey> {
        self.absence
            .as_ref()
            .map(|a| StatusKey::new(&a.reason, a.mode, a.since, a.until, a.returns_at))
    }
}
