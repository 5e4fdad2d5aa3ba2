//! An instance's directory (*Katalog Synk*) as stored: its settings, what the next read
//! starts from, when it runs next, and what the last run did.

use jiff::Timestamp;
use kalsync_directory::DirectorySettings;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::InstanceId;

/// An instance's directory.
#[derive(Debug, Clone)]
pub struct DirectoryRecord {
    /// The instance.
    pub instance: InstanceId,
    /// Its settings.
    pub settings: DirectorySettings,
    /// An LDAP directory's account password (sealed at rest; not in the due list).
    pub password: Option<SecretString>,
    /// What the next read starts from (the reader's own; `null` for a full read).
    pub state: serde_json::Value,
    /// When the next run is due.
    pub next_run: Timestamp,
    /// The last run, when there was one.
    pub last: Option<DirectoryRun>,
}

/// What one run of a directory did (or, as a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryRun {
    /// When it ran.
    pub at: Option<Timestamp>,
    /// Whether its changes were made (`false`: a dry run).
    pub applied: bool,
    /// Members read.
    pub members: usize,
    /// Users added, changed, starting their grace period, and removed.
    pub added: usize,
    /// Users whose attributes changed.
    pub updated: usize,
    /// Users whose grace period started.
    pub leaving: usize,
    /// Users removed with their data.
    pub removed: usize,
    /// Removals held back for an admin's confirmation, and of how many.
    pub held: Option<(usize, usize)>,
    /// People left out (or left as they are) and why: the first ones.
    pub problems: Vec<kalsync_directory::PersonProblem>,
    /// How many people had problems in all.
    pub problem_count: usize,
    /// Requests the read made, and whether it read everything.
    pub requests: u32,
    /// Whether it read everything again.
    pub full: bool,
    /// The error that stopped it (nothing was changed), with its code.
    pub error: Option<(String, String)>,
}

/// A user's directory fields, as a sync writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    /// Display name.
    pub display_name: Option<String>,
    /// PBX extension.
    pub extension: Option<kalsync_core::Extension>,
    /// Department.
    pub department: Option<String>,
    /// The directory's id for them; none: added by hand.
    pub directory_key: Option<String>,
    /// When they were first seen gone from the directory.
    pub leaving_since: Option<Timestamp>,
}

/// What saving a directory's settings does with its stored password.
#[derive(Debug, Clone, Copy)]
pub enum DirectorySecret<'a> {
    /// Keeps it while the stored settings are still these (the ones the caller judged
    /// the password may go on with); when another save came between, it is removed and
    /// must be given again — never kept for settings it was not judged for.
    Keep(&'a DirectorySettings),
    /// Stores this one (sealed).
    Set(&'a SecretString),
    /// Removes it.
    Clear,
}

/// A company's PBX directory (who has a subscription on its PBX), as stored.
#[derive(Debug, Clone)]
pub struct PbxDirectoryRecord {
    /// The company.
    pub company: super::CompanyId,
    /// Where the list comes from.
    pub source: kalsync_directory::PbxSource,
    /// A fetched list's bearer token or signing secret (sealed at rest; always stored
    /// with the address it was given for).
    pub secret: Option<SecretString>,
    /// The subscriptions.
    pub list: kalsync_directory::PbxList,
    /// When the list last changed (uploaded or fetched).
    pub updated: Option<Timestamp>,
    /// When it was last fetched or tried.
    pub last_try: Option<Timestamp>,
    /// Why the last fetch failed (the list before it is kept).
    pub last_error: Option<String>,
    /// When the next fetch is due (a fetched list only).
    pub next_fetch: Option<Timestamp>,
}
