//! The audit log's entries.

use jiff::Timestamp;
use serde_json::Value;

use super::CompanyId;

/// An audit entry to append.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    /// The company it concerns, if one.
    pub company: Option<CompanyId>,
    /// Who: an admin's name, `system`, a token's name.
    pub actor: String,
    /// What, e.g. `user.added`.
    pub action: String,
    /// Details; ids rather than e-mail addresses, so nothing outlives a removed user.
    pub detail: Value,
}

/// An audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When.
    pub at: Timestamp,
    /// The company it concerns.
    pub company: Option<CompanyId>,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// Details.
    pub detail: Value,
}
