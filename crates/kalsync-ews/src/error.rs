//! What can go wrong talking EWS, typed so the engine can tell a retry from a fix the
//! Exchange admin must make.

use std::time::Duration;

/// An EWS failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EwsError {
    /// The answer is not a SOAP document we accept: not XML, a DTD (entity expansion
    /// is never allowed), an HTML page from a proxy, or a shape EWS does not send.
    #[error("ews: unreadable answer: {0}")]
    Malformed(String),
    /// Exchange refused the service account (HTTP 401).
    #[error("ews: {0}")]
    Unauthorized(String),
    /// The server could not be reached, or answered with an HTTP error.
    #[error("ews: {0}")]
    Transport(String),
    /// The answer is larger than the cap.
    #[error("ews: the answer is over {limit} bytes")]
    TooLarge {
        /// The cap.
        limit: usize,
    },
    /// A SOAP fault (e.g. `ErrorSchemaValidation`, `ErrorServerBusy`).
    #[error("ews: fault {code}: {message}")]
    Fault {
        /// The EWS response code when the fault carries one, else the SOAP fault code.
        code: String,
        /// The fault string.
        message: String,
        /// `BackOffMilliseconds`, when the server asked for a pause.
        back_off: Option<Duration>,
    },
    /// A response message with `ResponseClass="Error"`.
    #[error("ews: {code}: {message}")]
    Response {
        /// The `ResponseCode`, e.g. `ErrorImpersonateUserDenied`.
        code: String,
        /// The `MessageText`.
        message: String,
        /// `BackOffMilliseconds` from the `MessageXml`, when present.
        back_off: Option<Duration>,
    },
}

impl EwsError {
    /// The EWS response code, when the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            EwsError::Fault { code, .. } | EwsError::Response { code, .. } => Some(code),
            _ => None,
        }
    }

    /// How long the server asked us to wait (`ErrorServerBusy`).
    pub fn back_off(&self) -> Option<Duration> {
        match self {
            EwsError::Fault { back_off, .. } | EwsError::Response { back_off, .. } => *back_off,
            _ => None,
        }
    }

    /// Whether the server is throttling us (`ErrorServerBusy`, too many connections or
    /// objects): wait and try again.
    pub fn is_throttling(&self) -> bool {
        matches!(
            self.code(),
            Some(
                "ErrorServerBusy"
                    | "ErrorExceededConnectionCount"
                    | "ErrorTooManyObjectsOpened"
                    | "ErrorExceededSubscriptionCount"
            )
        )
    }
}
