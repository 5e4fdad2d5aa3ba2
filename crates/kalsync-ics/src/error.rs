//! Why a file could not be read at all.

use crate::{MAX_EXPANSION_STEPS, MAX_FILE_BYTES};

/// Why a file could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IcsError {
    /// Its recurrences repeat too often to be expanded ([`MAX_EXPANSION_STEPS`]).
    #[error(
        "{0} repeats too often: more than {MAX_EXPANSION_STEPS} occurrences from its start to the end of the window (Outlook's series repeat daily at most)"
    )]
    TooManyOccurrences(String),
    /// Over [`MAX_FILE_BYTES`].
    #[error("the file is {0} bytes; at most {MAX_FILE_BYTES} are read")]
    TooLarge(usize),
    /// No `BEGIN:VCALENDAR` … `END:VCALENDAR`.
    #[error("not an iCalendar file: {0}")]
    NotICalendar(String),
    /// The default zone is not an IANA name.
    #[error("unknown time zone `{0}`")]
    UnknownZone(String),
}
