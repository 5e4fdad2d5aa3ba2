//! Companies, their instances (one integration with one source each) and the users an
//! instance syncs.

use jiff::Timestamp;
use kalsync_core::{EmailAddress, Extension, InstanceSettings};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{CompanyId, InstanceId, SourceConfig, UserId};

/// A customer of the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Company {
    /// Id.
    pub id: CompanyId,
    /// Name.
    pub name: String,
    /// Created.
    pub created: Timestamp,
    /// Whether its readers (receptionists) may set a person's status by hand.
    pub readers_set_status: bool,
}

/// An instance to create.
#[derive(Debug, Clone)]
pub struct NewInstance {
    /// Its company.
    pub company: CompanyId,
    /// Name.
    pub name: String,
    /// Source.
    pub source: SourceConfig,
    /// Settings and rules.
    pub settings: InstanceSettings,
}

/// One integration with one source.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Id.
    pub id: InstanceId,
    /// Its company.
    pub company: CompanyId,
    /// Name.
    pub name: String,
    /// Source, secrets open.
    pub source: SourceConfig,
    /// Settings and rules.
    pub settings: InstanceSettings,
    /// Whether it syncs.
    pub active: bool,
    /// Created.
    pub created: Timestamp,
}

/// The source's sync state of one mailbox (watermark, delta link, subscription id and
/// expiry): opaque to the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SyncState(pub Value);

/// A user to add.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The instance.
    pub instance: InstanceId,
    /// The mailbox.
    pub email: EmailAddress,
    /// Display name.
    pub display_name: Option<String>,
    /// PBX extension.
    pub extension: Option<Extension>,
}

/// A synced user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// The instance.
    pub instance: InstanceId,
    /// The mailbox.
    pub email: EmailAddress,
    /// Display name.
    pub display_name: Option<String>,
    /// PBX extension.
    pub extension: Option<Extension>,
    /// The source's sync state.
    pub sync_state: SyncState,
    /// Last sync.
    pub last_sync: Option<Timestamp>,
    /// Its error, if it failed.
    pub last_error: Option<String>,
    /// How many reads of it were written ([`crate::SyncWrite::revision`]).
    pub sync_revision: u64,
    /// Department (from the directory).
    pub department: Option<String>,
    /// The directory's id for them when the directory added or took them over; none:
    /// added by hand.
    pub directory_key: Option<String>,
    /// When the directory first saw them gone (their grace period runs from here).
    pub leaving_since: Option<Timestamp>,
    /// Added.
    pub created: Timestamp,
}

/// The nodes sharing the users, as one node sees them when it renews its leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Census {
    /// Nodes seen within the lease time, the one asking included.
    pub nodes: usize,
    /// Users in all (what the nodes share).
    pub users: usize,
    /// When the first other node's leases run out unless it renews them (its last sign
    /// of life and the lease time): a node that stopped is taken over then.
    pub next_expiry: Option<Timestamp>,
}

impl Census {
    /// A node's fair share: the users divided among the nodes, at most `most`.
    pub fn share(&self, most: usize) -> usize {
        self.users.div_ceil(self.nodes.max(1)).min(most)
    }
}
