//! The Graph source's errors: what went wrong, kept apart so the engine can react to
//! throttling, missing mailboxes and lost permissions differently.

use std::time::Duration;

use crate::auth::TokenError;

/// A failed Graph call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// No token could be had: the admin must fix something in Entra ID.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Still throttled after the retry budget (429/503/504 with `Retry-After`).
    #[error("Microsoft Graph is throttling; retry after {} ms", retry_after.as_millis())]
    Throttled {
        /// How long Graph asked to wait.
        retry_after: Duration,
    },
    /// The mailbox or item does not exist (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// The app may not read this mailbox (403, e.g. an application access policy).
    #[error("access denied: {0}")]
    Forbidden(String),
    /// Graph refused the token (401) even after a fresh one.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Graph answered with another error status.
    #[error("Graph answered {status} {code}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Graph's error code.
        code: String,
        /// Graph's message.
        message: String,
    },
    /// Graph's answer was not what the protocol promises.
    #[error("unexpected answer from Graph: {0}")]
    Malformed(String),
    /// The answer was larger than the cap.
    #[error("Graph's answer exceeds {limit} bytes")]
    TooLarge {
        /// The cap.
        limit: usize,
    },
    /// A paging link pointed somewhere else than the configured Graph endpoint.
    #[error("refusing to follow a link to another host: {0}")]
    ForeignLink(String),
    /// Network or TLS failure, or a timeout.
    #[error("cannot reach Microsoft Graph: {0}")]
    Transport(String),
}

impl GraphError {
    /// Whether trying again later may succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            GraphError::Throttled { .. } | GraphError::Transport(_)
        ) || matches!(self, GraphError::Status { status, .. } if *status >= 500)
    }
}
