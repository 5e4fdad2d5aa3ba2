//! The directory function (*Katalog Synk*): an instance's users are the members of
//! directory groups. This crate owns the settings, the mapping of a person to a user,
//! the plan a sync makes and the [`Directory`] trait the Entra ID and LDAP readers
//! implement; it does no I/O itself.

mod app;
mod ldap;
mod mapping;
mod pbx;
mod plan;
mod settings;

pub use app::EntraApp;
pub use ldap::{LdapServer, MAX_CA_PEM};
pub use mapping::{ExtensionRule, Member, Person, Problem, Transform, map};
pub use pbx::{
    MAX_PBX_BYTES, MAX_PBX_ENTRIES, MAX_PBX_EVERY, MIN_PBX_EVERY, PbxAuth, PbxEntry, PbxList,
    PbxSource,
};
pub use plan::{
    Current, Field, Gone, HOLD_ABOVE, Held, PersonProblem, Plan, Removal, Update, plan, plan_with,
};
pub use settings::{
    DirectoryKind, DirectorySettings, GroupRef, MAX_EVERY, MAX_GRACE, MAX_GROUPS, MIN_EVERY,
    ManualUsers,
};

/// The most people one read may hold; a larger directory is refused, not truncated.
pub const MAX_PEOPLE: usize = 200_000;

/// A directory's complete read: every member (nested groups included; disabled accounts
/// with `enabled = false`), and the state the next read starts from.
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    /// The people.
    pub people: Vec<Person>,
    /// What the next read starts from (delta links, known members); opaque here.
    pub state: serde_json::Value,
    /// Requests this read made.
    pub requests: u32,
    /// Whether it read everything again (no state, or the state had expired).
    pub full: bool,
}

/// Why a read failed. Nothing is changed by a failed read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// A group does not exist, or was deleted.
    #[error("group {0} does not exist or was deleted")]
    GroupNotFound(String),
    /// The app or account may not read it.
    #[error("not allowed to read the directory: {0}")]
    Permission(String),
    /// Signing in failed.
    #[error("signing in to the directory failed: {0}")]
    SignIn(String),
    /// The server cannot be reached.
    #[error("the directory cannot be reached: {0}")]
    Unreachable(String),
    /// Its certificate is not trusted.
    #[error("the directory's certificate is not trusted: {0}")]
    Certificate(String),
    /// Told to wait.
    #[error("the directory asks to wait {0} s")]
    Throttled(u64),
    /// More people than a read may hold.
    #[error("more than {MAX_PEOPLE} people")]
    TooLarge,
    /// An answer that is not what the protocol says.
    #[error("the directory answered unexpectedly: {0}")]
    Protocol(String),
}

impl DirectoryError {
    /// A stable code for the error (the UI's texts and the metrics' label).
    pub fn code(&self) -> &'static str {
        match self {
            DirectoryError::GroupNotFound(_) => "group_not_found",
            DirectoryError::Permission(_) => "permission",
            DirectoryError::SignIn(_) => "sign_in",
            DirectoryError::Unreachable(_) => "unreachable",
            DirectoryError::Certificate(_) => "certificate",
            DirectoryError::Throttled(_) => "throttled",
            DirectoryError::TooLarge => "too_large",
            DirectoryError::Protocol(_) => "protocol",
        }
    }
}

/// A directory: reads the members of groups.
#[async_trait::async_trait]
pub trait Directory: Send + Sync {
    /// Every member of `groups`, nested groups included, with the mapping's
    /// `attributes` (and no others), starting from `state` (the previous read's, or
    /// `null` for a full read). Complete, or an error.
    async fn read(
        &self,
        groups: &[GroupRef],
        attributes: &[String],
        state: serde_json::Value,
    ) -> Result<Read, DirectoryError>;
}
