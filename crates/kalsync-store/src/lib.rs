//! Kalsync's storage: the [`Store`] trait every database implements, the records it
//! keeps, and secrets sealed before they reach a row (SPEC §6).
//!
//! What is kept: companies, instances (settings, sealed credentials), users (e-mail,
//! extension, the source's sync state), bookings (only SPEC §3.1 fields; the subject only
//! where the instance lets titles be shown), each user's timeline, the outbox of
//! deliveries to PBX targets, an audit log, and node leases. Removing a user or an
//! instance deletes everything of it.

pub mod crypto;
mod records;

use async_trait::async_trait;
use jiff::Timestamp;
use kalsync_core::{Booking, TenantId, Timeline};

pub use crypto::{CryptoError, SecretBox};
pub use records::*;

/// What went wrong in the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No such record.
    #[error("{0} not found")]
    NotFound(String),
    /// A unique value is taken (e.g. the e-mail in the instance).
    #[error("{0} already exists")]
    Conflict(String),
    /// A stored row could not be read back (corrupted or from a newer version).
    #[error("stored {what} cannot be read: {message}")]
    Corrupt {
        /// Which record.
        what: String,
        /// Why.
        message: String,
    },
    /// A sealed secret could not be opened.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The database failed.
    #[error("database: {0}")]
    Database(String),
    /// The caller asked for something the store cannot hold.
    #[error("invalid: {0}")]
    Invalid(String),
    /// A read was not written: another read of the user was written since it began.
    #[error(
        "another read of the user was written since this one began (now at revision {revision})"
    )]
    Overtaken {
        /// The user's revision now.
        revision: u64,
    },
}

/// What one read of a user's calendar leaves in the store.
#[derive(Debug, Clone, Copy)]
pub struct SyncWrite<'a> {
    /// Whose.
    pub user: UserId,
    /// The bookings read (they replace the stored ones).
    pub bookings: &'a [Booking],
    /// Whether subjects and locations may be stored.
    pub keep_subjects: bool,
    /// The timeline built from them.
    pub timeline: &'a Timeline,
    /// When it next changes the user's status.
    pub next_change: Option<Timestamp>,
    /// When the read was.
    pub at: Timestamp,
    /// A note for the admin (e.g. bookings that could not be read).
    pub note: Option<&'a str>,
    /// The user's [`User::sync_revision`] when the read began: written only if it is
    /// still that, else [`StoreError::Overtaken`] — so a read that ran while another
    /// node took the user over and read it later cannot put older bookings back.
    pub revision: u64,
}

/// What writing a read did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncSaved {
    /// The bookings it changed.
    pub diff: BookingDiff,
    /// The user's revision now (the next read begins from it).
    pub revision: u64,
}

/// A booking diff: what a re-read changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookingDiff {
    /// New bookings.
    pub added: usize,
    /// Bookings whose stored form changed.
    pub changed: usize,
    /// Bookings no longer there.
    pub removed: usize,
}

impl BookingDiff {
    /// Whether anything changed.
    pub fn is_empty(&self) -> bool {
        self.added == 0 && self.changed == 0 && self.removed == 0
    }
}

/// The storage every database implements. One conformance suite runs against each.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which database this is, for logs.
    fn backend(&self) -> &'static str;

    // Companies.
    /// Creates a company.
    async fn create_company(&self, name: &str) -> Result<Company, StoreError>;
    /// A company.
    async fn company(&self, id: CompanyId) -> Result<Company, StoreError>;
    /// All companies, by name.
    async fn companies(&self) -> Result<Vec<Company>, StoreError>;
    /// Deletes a company and everything of it.
    async fn delete_company(&self, id: CompanyId) -> Result<(), StoreError>;
    /// Lets (or stops) a company's readers set a person's status by hand.
    async fn set_readers_set_status(&self, id: CompanyId, allowed: bool) -> Result<(), StoreError>;

    // Instances.
    /// Creates an instance.
    async fn create_instance(&self, new: NewInstance) -> Result<Instance, StoreError>;
    /// An instance.
    async fn instance(&self, id: InstanceId) -> Result<Instance, StoreError>;
    /// A company's instances.
    async fn instances(&self, company: CompanyId) -> Result<Vec<Instance>, StoreError>;
    /// Every active instance.
    async fn active_instances(&self) -> Result<Vec<Instance>, StoreError>;
    /// Replaces an instance's name, settings, source and active flag.
    async fn update_instance(&self, instance: &Instance) -> Result<(), StoreError>;
    /// Deletes an instance and everything of it.
    async fn delete_instance(&self, id: InstanceId) -> Result<(), StoreError>;

    // Users.
    /// Adds a user; the e-mail is unique in the instance.
    async fn add_user(&self, new: NewUser) -> Result<User, StoreError>;
    /// A user.
    async fn user(&self, id: UserId) -> Result<User, StoreError>;
    /// An instance's users, by e-mail.
    async fn users(&self, instance: InstanceId) -> Result<Vec<User>, StoreError>;
    /// The users `node` holds a lease on, of every instance, in no order.
    async fn held_users(&self, node: &str) -> Result<Vec<User>, StoreError>;
    /// Replaces the source's sync state of a user (watermark, delta link, subscription).
    async fn set_sync_state(&self, user: UserId, state: &SyncState) -> Result<(), StoreError>;
    /// Sets (`Some`) or removes (`None`) one key of a user's sync state, leaving the
    /// others as they are: the engine's cursor and a subscription's watermark are kept
    /// by different tasks. `key` is a plain name (letters, digits, `_`).
    async fn set_sync_key(
        &self,
        user: UserId,
        key: &str,
        value: Option<&serde_json::Value>,
    ) -> Result<(), StoreError>;
    /// Records the outcome of a sync.
    async fn record_sync(
        &self,
        user: UserId,
        at: Timestamp,
        error: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Records the source's change subscription of a user (or none), to find the user
    /// when a notification for it lands on any node.
    async fn set_subscription(
        &self,
        user: UserId,
        subscription: Option<&str>,
    ) -> Result<(), StoreError>;
    /// The user a change subscription belongs to.
    async fn user_by_subscription(&self, subscription: &str) -> Result<Option<User>, StoreError>;
    /// Sets or clears the secret token in a user's EWS push address
    /// (`/notifications/ews/{token}`), kept apart from Graph subscription ids.
    async fn set_push_token(&self, user: UserId, token: Option<&str>) -> Result<(), StoreError>;
    /// The user whose EWS push address carries `token`.
    async fn user_by_push_token(&self, token: &str) -> Result<Option<User>, StoreError>;
    /// Asks whichever node holds the user to read it again.
    async fn request_sync(&self, user: UserId) -> Result<(), StoreError>;
    /// [`Store::request_sync`] for many users at once (users gone are passed over).
    async fn request_syncs(&self, users: &[UserId]) -> Result<(), StoreError>;
    /// Asks the nodes holding the instance's users to read each again (its rules or
    /// source changed): one request per user, however many nodes hold them.
    async fn request_instance_sync(&self, instance: InstanceId) -> Result<(), StoreError>;
    /// Takes the read requests for the users `node` holds.
    async fn claim_sync_requests(&self, node: &str) -> Result<Vec<UserId>, StoreError>;
    /// Removes a user and everything of it, the e-mail included.
    async fn remove_user(&self, id: UserId) -> Result<(), StoreError>;
    /// Writes a user's directory fields (name, extension, department, the directory's
    /// id for them, their grace period).
    async fn set_user_profile(&self, id: UserId, profile: &UserProfile) -> Result<(), StoreError>;

    // Directories (Katalog Synk).
    /// Sets an instance's directory (due at once), or removes it (`None`: its users
    /// stay, as if added by hand). Its state is kept while the settings change.
    async fn set_directory(
        &self,
        instance: InstanceId,
        settings: Option<&kalsync_directory::DirectorySettings>,
        password: DirectorySecret<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// An instance's directory.
    async fn directory(&self, instance: InstanceId) -> Result<Option<DirectoryRecord>, StoreError>;
    /// The directories due at `now`, of active instances, without their state.
    async fn due_directories(&self, now: Timestamp) -> Result<Vec<DirectoryRecord>, StoreError>;
    /// Takes a due directory for one run: moves its next run from `due` to `next`;
    /// `false` when another node took it first.
    async fn claim_directory(
        &self,
        instance: InstanceId,
        due: Timestamp,
        next: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Stores what a run did, and the state the next read starts from (unchanged when
    /// `state` is none).
    async fn save_directory_run(
        &self,
        instance: InstanceId,
        run: &DirectoryRun,
        state: Option<&serde_json::Value>,
    ) -> Result<(), StoreError>;

    // Overrides: absences from other sources than bookings.
    /// Sets `user`'s override from `override_.source` (replacing the one that source
    /// had), or clears that source's (`None` with the source given in `source`), saying
    /// who did it. The user is read again at once, so the timeline takes it up.
    async fn set_override(
        &self,
        user: UserId,
        source: kalsync_core::Source,
        override_: Option<&kalsync_core::Override>,
        set_by: &str,
    ) -> Result<(), StoreError>;
    /// `user`'s overrides in force at or after `now` (ended ones are left out).
    async fn overrides(
        &self,
        user: UserId,
        now: Timestamp,
    ) -> Result<Vec<kalsync_core::Override>, StoreError>;

    // Teams presence.
    /// What Kalsync knows of `user` in Teams (a default record when nothing yet).
    async fn teams_person(&self, user: UserId) -> Result<TeamsPerson, StoreError>;
    /// What Kalsync knows of each of `users` in Teams, in their order (a default record
    /// for whom nothing yet).
    async fn teams_persons(&self, users: &[UserId]) -> Result<Vec<TeamsPerson>, StoreError>;
    /// Every person of `instance` Kalsync knows something of in Teams.
    async fn teams_people(&self, instance: InstanceId) -> Result<Vec<TeamsPerson>, StoreError>;
    /// Keeps `part` of what Kalsync knows of these people in Teams (and each one's
    /// object id when given), in one transaction; people no longer there are passed
    /// over.
    async fn put_teams_people(
        &self,
        people: &[TeamsPerson],
        part: TeamsPart,
    ) -> Result<(), StoreError>;
    /// Takes `n` requests from the budget `key` for the window starting at `window`, at
    /// most `limit` in it across every node: whether they were granted (all or none).
    /// Windows ended a minute before `window` are forgotten.
    async fn take_budget(
        &self,
        key: &str,
        window: Timestamp,
        n: u32,
        limit: u32,
    ) -> Result<bool, StoreError>;

    // PBX events ("I'm back", "extend" from the phone).
    /// Sets (or, `None`, removes) the secret a company's PBX signs its events with.
    async fn set_pbx_event_secret(
        &self,
        company: CompanyId,
        secret: Option<&secrecy::SecretString>,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// The secret a company's PBX signs its events with, and when it was made.
    async fn pbx_event_secret(
        &self,
        company: CompanyId,
    ) -> Result<Option<(secrecy::SecretString, Timestamp)>, StoreError>;
    /// Takes a company's PBX event by its id: `false` when one with that id was taken
    /// already (a replay). Ids older than `forget_before` are forgotten.
    async fn take_pbx_event(
        &self,
        company: CompanyId,
        event: &str,
        now: Timestamp,
        forget_before: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Forgets a company's PBX event id (one taken, then refused: the sender's retry is
    /// taken again).
    async fn forget_pbx_event(&self, company: CompanyId, event: &str) -> Result<(), StoreError>;

    // PBX directories (who may be added).
    /// Sets a company's PBX directory source and the secret that goes with it (stored
    /// together: a secret is never kept for another address), keeping its list; a
    /// fetched one is due at once. `None` removes it, list and all.
    async fn set_pbx_directory(
        &self,
        company: CompanyId,
        source: Option<&kalsync_directory::PbxSource>,
        secret: Option<&secrecy::SecretString>,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// A company's PBX directory.
    async fn pbx_directory(
        &self,
        company: CompanyId,
    ) -> Result<Option<PbxDirectoryRecord>, StoreError>;
    /// Stores a new list (`Ok`) or why it could not be had (`Err`: the list is kept) —
    /// with `fetched_for`, only while the source is still that one (`false` when it
    /// changed meanwhile: nothing is written).
    async fn save_pbx_list(
        &self,
        company: CompanyId,
        fetched_for: Option<&kalsync_directory::PbxSource>,
        outcome: Result<&kalsync_directory::PbxList, &str>,
        at: Timestamp,
    ) -> Result<bool, StoreError>;
    /// The companies whose fetched PBX directory is due at `now`, with when it was due.
    async fn due_pbx_directories(
        &self,
        now: Timestamp,
    ) -> Result<Vec<(CompanyId, Timestamp)>, StoreError>;
    /// Takes a due fetch: moves its next fetch from `due` to `next`; `false` when
    /// another node took it first.
    async fn claim_pbx_directory(
        &self,
        company: CompanyId,
        due: Timestamp,
        next: Timestamp,
    ) -> Result<bool, StoreError>;

    // Bookings.
    /// Replaces a user's stored bookings with `bookings` and says what changed. Without
    /// `keep_subjects` (the instance shows no titles) subjects and locations are dropped
    /// before anything is written.
    async fn replace_bookings(
        &self,
        user: UserId,
        bookings: &[Booking],
        keep_subjects: bool,
    ) -> Result<BookingDiff, StoreError>;
    /// A user's stored bookings.
    async fn bookings(&self, user: UserId) -> Result<Vec<Booking>, StoreError>;
    /// Deletes bookings that ended before `cutoff`; how many.
    async fn delete_bookings_ended_before(&self, cutoff: Timestamp) -> Result<u64, StoreError>;

    /// Stores a read at once, or nothing: bookings replaced as
    /// [`Store::replace_bookings`] does, the timeline saved, the sync recorded and the
    /// revision counted — only while the user's revision is still the one the read
    /// began from ([`StoreError::Overtaken`] otherwise).
    async fn save_sync(&self, write: SyncWrite<'_>) -> Result<SyncSaved, StoreError>;

    // Timelines.
    /// Stores a user's timeline and when it next changes.
    async fn save_timeline(
        &self,
        user: UserId,
        timeline: &Timeline,
        next_change: Option<Timestamp>,
    ) -> Result<(), StoreError>;
    /// A user's stored timeline.
    async fn timeline(&self, user: UserId) -> Result<Option<Timeline>, StoreError>;

    // Targets.
    /// Creates a PBX target for a company.
    async fn create_target(&self, new: NewTarget) -> Result<Target, StoreError>;
    /// A target.
    async fn target(&self, id: TargetId) -> Result<Target, StoreError>;
    /// A company's targets.
    async fn targets(&self, company: CompanyId) -> Result<Vec<Target>, StoreError>;
    /// Turns a target on or off (410 Gone turns a webhook off).
    async fn set_target_active(&self, id: TargetId, active: bool) -> Result<(), StoreError>;
    /// Deletes a target and its deliveries.
    async fn delete_target(&self, id: TargetId) -> Result<(), StoreError>;

    // Outbox.
    /// Writes a delivery before it is sent, with the next sequence number of its user and
    /// target. Pending older deliveries of the same user and target are superseded: only
    /// the latest state goes out. Its first attempt is due at its `due` time.
    async fn enqueue(&self, new: NewDelivery) -> Result<Delivery, StoreError>;
    /// Pending deliveries due at `now` of the users `node` holds, oldest first, at most
    /// `limit`.
    async fn due_deliveries(
        &self,
        node: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// [`Store::enqueue`] for many deliveries at once (one transaction), in order.
    async fn enqueue_many(&self, new: Vec<NewDelivery>) -> Result<Vec<Delivery>, StoreError>;
    /// Marks many deliveries delivered at once.
    async fn mark_delivered_many(
        &self,
        ids: &[DeliveryId],
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// The stored timelines of the users `node` holds.
    /// In pages of at most `limit`, by user id after `after`, so a node with many users
    /// never holds every stored timeline's text at once. A row that cannot be read comes
    /// back as its error, for that user alone.
    async fn held_timelines(
        &self,
        node: &str,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<Vec<(UserId, Result<Timeline, StoreError>)>, StoreError>;
    /// The latest delivery of each user and target, for the users `node` holds.
    async fn held_last_deliveries(&self, node: &str) -> Result<Vec<Delivery>, StoreError>;
    /// When the next pending delivery is due.
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError>;
    /// Marks a delivery delivered.
    async fn mark_delivered(&self, id: DeliveryId, at: Timestamp) -> Result<(), StoreError>;
    /// Records a failed attempt and when to try again.
    async fn mark_retry(
        &self,
        id: DeliveryId,
        next_attempt: Timestamp,
        error: &str,
    ) -> Result<(), StoreError>;
    /// Gives up on a delivery: a dead letter.
    async fn mark_dead(&self, id: DeliveryId, error: &str) -> Result<(), StoreError>;
    /// Withdraws what is pending for a user and target due at or after `from` (a
    /// status written ahead of its time that no longer holds); how many.
    async fn withdraw_ahead(
        &self,
        user: UserId,
        target: TargetId,
        from: Timestamp,
    ) -> Result<u64, StoreError>;
    /// A delivery.
    async fn delivery(&self, id: DeliveryId) -> Result<Delivery, StoreError>;
    /// The latest delivery written for a user and target (any state).
    async fn last_delivery(
        &self,
        user: UserId,
        target: TargetId,
    ) -> Result<Option<Delivery>, StoreError>;

    /// A company's deliveries in a state, newest first.
    async fn deliveries(
        &self,
        company: CompanyId,
        state: DeliveryState,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Pending deliveries in all.
    async fn outbox_depth(&self) -> Result<u64, StoreError>;

    // Audit.
    /// Appends to the audit log.
    async fn audit(&self, entry: NewAuditEntry) -> Result<(), StoreError>;
    /// A company's audit log, newest first.
    async fn audit_log(
        &self,
        company: Option<CompanyId>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError>;

    // Accounts, sessions and API tokens (admin UI and REST API).
    /// Creates an account; the e-mail is unique (`Conflict`).
    async fn create_account(&self, account: NewAccount) -> Result<Account, StoreError>;
    /// One account.
    async fn account(&self, account: AccountId) -> Result<Account, StoreError>;
    /// The account signing in with `email` (any case).
    async fn account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError>;
    /// A company's accounts (`None`: the operator's).
    async fn accounts(&self, company: Option<CompanyId>) -> Result<Vec<Account>, StoreError>;
    /// Replaces an account's password hash and ends its sessions.
    async fn set_password(&self, account: AccountId, hash: &str) -> Result<(), StoreError>;
    /// Removes an account and its sessions.
    async fn delete_account(&self, account: AccountId) -> Result<(), StoreError>;
    /// The account the Microsoft person `entra` signs in as.
    async fn account_by_entra(&self, entra: &EntraId) -> Result<Option<Account>, StoreError>;
    /// Links an account to a Microsoft person (`None`: unlinks); a person signs in as
    /// one account at most (`Conflict`).
    async fn link_entra(
        &self,
        account: AccountId,
        entra: Option<&EntraId>,
    ) -> Result<(), StoreError>;
    /// Changes what an account may do; its sessions end when the grant changes.
    async fn set_grant(&self, account: AccountId, grant: Grant) -> Result<(), StoreError>;
    /// Records that `tenant.company` proved it owns `tenant.tenant`: the tenant as kept,
    /// and whether this claim made it the company's. A tenant already the company's is
    /// kept as it is; another company's is a `Conflict`.
    async fn claim_tenant(
        &self,
        tenant: &CompanyTenant,
    ) -> Result<(CompanyTenant, bool), StoreError>;
    /// Ends an account's sessions and revokes its API tokens (its access was taken
    /// away where it came from).
    async fn revoke_access(&self, account: AccountId) -> Result<(), StoreError>;
    /// The company that proved it owns `tenant`, if one did.
    async fn company_tenant(&self, tenant: &TenantId) -> Result<Option<CompanyTenant>, StoreError>;
    /// The tenants a company proved it owns.
    async fn company_tenants(&self, company: CompanyId) -> Result<Vec<CompanyTenant>, StoreError>;
    /// Changes who of a company's tenant signs in as what.
    async fn set_tenant_roles(&self, tenant: &CompanyTenant) -> Result<(), StoreError>;
    /// Gives a tenant up (its people no longer sign in through it).
    async fn release_tenant(&self, company: CompanyId, tenant: &TenantId)
    -> Result<(), StoreError>;
    /// Starts a session.
    async fn create_session(&self, session: &Session) -> Result<(), StoreError>;
    /// A session that has not expired by `now`.
    async fn session(&self, id_hash: &str, now: Timestamp) -> Result<Option<Session>, StoreError>;
    /// Ends a session (signing out).
    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError>;
    /// Forgets sessions expired by `now`; how many.
    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64, StoreError>;
    /// Creates an API token for a company.
    async fn create_api_token(&self, new: NewApiToken<'_>) -> Result<ApiToken, StoreError>;
    /// The token with this hash, unless it expired by `now`; its last use set to `now`.
    async fn use_api_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<ApiToken>, StoreError>;
    /// A company's API tokens.
    async fn api_tokens(&self, company: CompanyId) -> Result<Vec<ApiToken>, StoreError>;
    /// Revokes a company's API token.
    async fn delete_api_token(
        &self,
        company: CompanyId,
        token: ApiTokenId,
    ) -> Result<(), StoreError>;

    // Leases (several nodes).
    /// Takes up to `limit` users nobody holds (or whose lease expired by `now`) and
    /// renews this node's own until `now + ttl`; returns every user this node holds now.
    /// A lease that expired was never released: its node stopped without handing over
    /// the changes it was told of, so its users are asked to be read (as
    /// [`Store::request_sync`] does) by whoever takes them.
    async fn lease_users(
        &self,
        node: &str,
        now: Timestamp,
        ttl: jiff::SignedDuration,
        limit: usize,
    ) -> Result<Vec<UserId>, StoreError>;
    /// A node starting: the leases its name still holds were never released (it stopped
    /// without a clean shutdown), so their users are asked to be read and the leases
    /// given up. Returns how many users were asked.
    async fn recover_leases(&self, node: &str, now: Timestamp) -> Result<usize, StoreError>;
    /// Gives up this node's leases and its place among the nodes (clean shutdown).
    async fn release_leases(&self, node: &str) -> Result<(), StoreError>;
    /// Records that `node` is alive at `now` and counts the nodes seen within `ttl`
    /// and the users they share, so each node holds its fair share.
    async fn lease_census(
        &self,
        node: &str,
        now: Timestamp,
        ttl: jiff::SignedDuration,
    ) -> Result<Census, StoreError>;
    /// Gives up some of this node's users (more nodes share them now): free for another
    /// node to take, as at a clean shutdown. Another node's leases are untouched.
    async fn release_users(&self, node: &str, users: &[UserId]) -> Result<(), StoreError>;
}

/// The hasher of configuration fingerprints: keyed at random once per process, so a
/// fingerprint (a digest over secrets too) says nothing outside the process it was
/// made in.
pub(crate) fn fingerprint_hasher() -> std::hash::DefaultHasher {
    use std::hash::BuildHasher as _;
    static KEYS: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
    KEYS.get_or_init(std::hash::RandomState::new).build_hasher()
}
