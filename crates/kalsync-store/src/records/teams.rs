//! What Kalsync knows of a person in Teams: their object id, the status message and the
//! presence session it set for them (so it clears only what it set), whether a PBX call
//! holds a session, and their presence as last read.

use jiff::Timestamp;

use super::UserId;

/// A person as Kalsync sees them in Teams.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TeamsPerson {
    /// The person.
    pub user: UserId,
    /// Their Entra object id (presence is asked for by it).
    pub object_id: Option<String>,
    /// The status message Kalsync set, while it believes it is still there.
    pub message: Option<String>,
    /// When that message expires.
    pub message_until: Option<Timestamp>,
    /// The app presence session Kalsync holds for an absence (`Away/Away`,
    /// `DoNotDisturb/Presenting`), as `availability/activity`.
    pub session: Option<String>,
    /// Until when that session should last (the absence's end).
    pub session_until: Option<Timestamp>,
    /// When it was last set (Graph ends a session after four hours at most: it is
    /// renewed before).
    pub session_set: Option<Timestamp>,
    /// Until when a PBX call holds the session `Busy/InACall` (renewed while it lasts).
    pub call_until: Option<Timestamp>,
    /// Their presence as last read: `availability/activity`.
    pub presence: Option<String>,
    /// When it was read.
    pub read_at: Option<Timestamp>,
}

/// Which part of a [`TeamsPerson`] a writer owns: each writes only its own columns (and
/// the object id, when it found one), so concurrent writers never undo each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamsPart {
    /// The status message and the absence's session (the `teams` target).
    Message,
    /// The presence as read (the poll).
    Presence,
    /// The PBX call's session (`call_until`, `session_set`).
    Call,
    /// A renewed session (`session_set`).
    Renewal,
    /// Only the object id.
    ObjectId,
}
