//! Sources as the engine sees them: something that reads a mailbox's window. The
//! adapters (Microsoft Graph, EWS) live in `kalsync-sources` and are wired in by the
//! server.

use std::time::Duration;

use async_trait::async_trait;
use kalsync_core::{
    AutomaticReplies, Booking, BookingId, EmailAddress, Window, WorkingHours, Zone,
};

/// A mailbox's own zone and working hours, where the source knows them.
#[derive(Debug, Clone, Default)]
pub struct Mailbox {
    /// Zone of its working hours (or of the mailbox).
    pub zone: Option<Zone>,
    /// Outlook working hours.
    pub working_hours: Option<WorkingHours>,
}

/// One read of a mailbox's window.
#[derive(Debug, Clone, Default)]
pub struct SourceRead {
    /// The bookings.
    pub bookings: Vec<Booking>,
    /// Items that could not be read: (id, why).
    pub rejected: Vec<(String, String)>,
    /// The mailbox's settings, when known.
    pub mailbox: Mailbox,
}

/// Why a read failed, kept apart so the engine can wait, retry or report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// Throttled; try after this.
    #[error("throttled; retry after {} ms", retry_after.as_millis())]
    Throttled {
        /// How long.
        retry_after: Duration,
    },
    /// The mailbox does not exist.
    #[error("mailbox not found: {0}")]
    NotFound(String),
    /// No right to read it.
    #[error("access denied: {0}")]
    Forbidden(String),
    /// Credentials refused: the admin must act.
    #[error("credentials: {0}")]
    Credentials(String),
    /// Anything else; may pass.
    #[error("{0}")]
    Failed(String),
}

/// Reads bookings of mailboxes of one instance.
#[async_trait]
pub trait Source: Send + Sync {
    /// Reads a mailbox's window. Subjects only when `subjects`.
    async fn read(
        &self,
        mailbox: &EmailAddress,
        window: Window,
        subjects: bool,
    ) -> Result<SourceRead, SourceError>;

    /// A cheap look at whether anything in the mailbox's calendar changed since
    /// `cursor` (a token this source gave before; none: prime one). `None`: the source
    /// cannot tell, so a poll reads the window.
    async fn changes(
        &self,
        _mailbox: &EmailAddress,
        _cursor: Option<&str>,
    ) -> Result<Option<Changes>, SourceError> {
        Ok(None)
    }

    /// Shortens the appointment `booking` in `mailbox` to end at `end` (write-back after
    /// "I'm back") — only one the person organised, with no other attendees: a meeting
    /// is left as it is, and so said.
    async fn shorten(
        &self,
        _mailbox: &EmailAddress,
        _booking: &BookingId,
        _end: jiff::Timestamp,
    ) -> Result<Shortened, SourceError> {
        Err(SourceError::Failed(
            "this source does not write to calendars".into(),
        ))
    }

    /// The mailboxes' automatic replies (out of office), one answer each, in order.
    /// Their texts are dropped as they are parsed. A source that cannot read them
    /// answers each with `Failed`.
    async fn automatic_replies(
        &self,
        mailboxes: &[EmailAddress],
    ) -> Vec<Result<AutomaticReplies, SourceError>> {
        mailboxes
            .iter()
            .map(|_| {
                Err(SourceError::Failed(
                    "this source does not read automatic replies".into(),
                ))
            })
            .collect()
    }
}

/// What a write-back did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shortened {
    /// The appointment now ends then.
    Done,
    /// Left as it is, and why (a meeting with attendees, one the person did not
    /// organise).
    LeftAlone(String),
}

impl Shortened {
    /// Done, unless a protocol said why it left the appointment alone.
    pub fn unless(left_alone: Option<&str>) -> Shortened {
        left_alone.map_or(Shortened::Done, |why| Shortened::LeftAlone(why.into()))
    }
}

/// What a cheap look for changes found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Something changed (always, when no cursor was given).
    pub any: bool,
    /// The cursor to keep for the next look.
    pub cursor: String,
}
