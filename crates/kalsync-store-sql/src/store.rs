//! The [`Store`] trait on [`SqlStore`]: each method hands over to the module that owns
//! its tables.

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use kalsync_core::{Booking, TenantId, Timeline};
use kalsync_store::{
    Account, AccountId, ApiToken, ApiTokenId, AuditEntry, BookingDiff, Census, Company, CompanyId,
    CompanyTenant, Delivery, DeliveryId, DeliveryState, DirectoryRecord, DirectoryRun, EntraId,
    Grant, Instance, InstanceId, NewAccount, NewApiToken, NewAuditEntry, NewDelivery, NewInstance,
    NewTarget, NewUser, Session, Store, StoreError, SyncSaved, SyncState, SyncWrite, Target,
    TargetId, User, UserId, UserProfile,
};

use crate::SqlStore;

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        self.backend_name()
    }

    async fn create_company(&self, name: &str) -> Result<Company, StoreError> {
        self.insert_company(name).await
    }

    async fn company(&self, company: CompanyId) -> Result<Company, StoreError> {
        self.select_company(company).await
    }

    async fn companies(&self) -> Result<Vec<Company>, StoreError> {
        self.select_companies().await
    }

    async fn delete_company(&self, company: CompanyId) -> Result<(), StoreError> {
        self.remove_company(company).await
    }

    async fn set_readers_set_status(
        &self,
        company: CompanyId,
        allowed: bool,
    ) -> Result<(), StoreError> {
        self.update_readers_set_status(company, allowed).await
    }

    async fn create_instance(&self, new: NewInstance) -> Result<Instance, StoreError> {
        self.insert_instance(new).await
    }

    async fn instance(&self, instance: InstanceId) -> Result<Instance, StoreError> {
        self.select_instance(instance).await
    }

    async fn instances(&self, company: CompanyId) -> Result<Vec<Instance>, StoreError> {
        self.select_instances(company).await
    }

    async fn active_instances(&self) -> Result<Vec<Instance>, StoreError> {
        self.select_active_instances().await
    }

    async fn update_instance(&self, instance: &Instance) -> Result<(), StoreError> {
        self.update_instance_row(instance).await
    }

    async fn delete_instance(&self, instance: InstanceId) -> Result<(), StoreError> {
        self.remove_instance(instance).await
    }

    async fn add_user(&self, new: NewUser) -> Result<User, StoreError> {
        self.insert_user(new).await
    }

    async fn user(&self, user: UserId) -> Result<User, StoreError> {
        self.select_user(user).await
    }

    async fn users(&self, instance: InstanceId) -> Result<Vec<User>, StoreError> {
        self.select_users(instance).await
    }

    async fn held_users(&self, node: &str) -> Result<Vec<User>, StoreError> {
        self.select_held_users(node).await
    }

    async fn set_sync_state(&self, user: UserId, state: &SyncState) -> Result<(), StoreError> {
        self.update_sync_state(user, state).await
    }

    async fn set_sync_key(
        &self,
        user: UserId,
        key: &str,
        value: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        self.update_sync_key(user, key, value).await
    }

    async fn record_sync(
        &self,
        user: UserId,
        when: Timestamp,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.update_last_sync(user, when, error).await
    }

    async fn set_subscription(
        &self,
        user: UserId,
        subscription: Option<&str>,
    ) -> Result<(), StoreError> {
        self.update_subscription(user, subscription).await
    }

    async fn user_by_subscription(&self, subscription: &str) -> Result<Option<User>, StoreError> {
        self.select_user_by_subscription(subscription).await
    }

    async fn set_push_token(&self, user: UserId, token: Option<&str>) -> Result<(), StoreError> {
        self.update_push_token(user, token).await
    }

    async fn user_by_push_token(&self, token: &str) -> Result<Option<User>, StoreError> {
        self.select_user_by_push_token(token).await
    }

    async fn request_sync(&self, user: UserId) -> Result<(), StoreError> {
        self.mark_sync_requested(user).await
    }

    async fn request_syncs(&self, users: &[UserId]) -> Result<(), StoreError> {
        self.mark_syncs_requested(users).await
    }

    async fn request_instance_sync(&self, instance: InstanceId) -> Result<(), StoreError> {
        self.mark_instance_sync_requested(instance).await
    }

    async fn claim_sync_requests(&self, node: &str) -> Result<Vec<UserId>, StoreError> {
        self.take_sync_requests(node).await
    }

    async fn remove_user(&self, user: UserId) -> Result<(), StoreError> {
        self.delete_user(user).await
    }

    async fn set_user_profile(
        &self,
        user: UserId,
        profile: &UserProfile,
    ) -> Result<(), StoreError> {
        self.update_user_profile(user, profile).await
    }

    async fn set_directory(
        &self,
        instance: InstanceId,
        settings: Option<&kalsync_directory::DirectorySettings>,
        password: kalsync_store::DirectorySecret<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.put_directory(instance, settings, password, now).await
    }

    async fn set_override(
        &self,
        user: UserId,
        source: kalsync_core::Source,
        override_: Option<&kalsync_core::Override>,
        set_by: &str,
    ) -> Result<(), StoreError> {
        self.put_override(user, source, override_, set_by).await
    }

    async fn overrides(
        &self,
        user: UserId,
        now: Timestamp,
    ) -> Result<Vec<kalsync_core::Override>, StoreError> {
        self.select_overrides(user, now).await
    }

    async fn set_pbx_event_secret(
        &self,
        company: CompanyId,
        secret: Option<&secrecy::SecretString>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.put_pbx_event_secret(company, secret, now).await
    }

    async fn pbx_event_secret(
        &self,
        company: CompanyId,
    ) -> Result<Option<(secrecy::SecretString, Timestamp)>, StoreError> {
        self.select_pbx_event_secret(company).await
    }

    async fn take_pbx_event(
        &self,
        company: CompanyId,
        event: &str,
        now: Timestamp,
        forget_before: Timestamp,
    ) -> Result<bool, StoreError> {
        self.insert_pbx_event(company, event, now, forget_before)
            .await
    }

    async fn forget_pbx_event(&self, company: CompanyId, event: &str) -> Result<(), StoreError> {
        self.delete_pbx_event(company, event).await
    }

    async fn teams_person(&self, user: UserId) -> Result<kalsync_store::TeamsPerson, StoreError> {
        self.select_teams_person(user).await
    }

    async fn teams_people(
        &self,
        instance: InstanceId,
    ) -> Result<Vec<kalsync_store::TeamsPerson>, StoreError> {
        self.select_teams_people(instance).await
    }

    async fn teams_persons(
        &self,
        users: &[UserId],
    ) -> Result<Vec<kalsync_store::TeamsPerson>, StoreError> {
        self.select_teams_persons(users).await
    }

    async fn put_teams_people(
        &self,
        people: &[kalsync_store::TeamsPerson],
        part: kalsync_store::TeamsPart,
    ) -> Result<(), StoreError> {
        self.upsert_teams_people(people, part).await
    }

    async fn take_budget(
        &self,
        key: &str,
        window: Timestamp,
        n: u32,
        limit: u32,
    ) -> Result<bool, StoreError> {
        self.take_from_budget(key, window, n, limit).await
    }

    async fn set_pbx_directory(
        &self,
        company: CompanyId,
        source: Option<&kalsync_directory::PbxSource>,
        secret: Option<&secrecy::SecretString>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.put_pbx_directory(company, source, secret, now).await
    }

    async fn pbx_directory(
        &self,
        company: CompanyId,
    ) -> Result<Option<kalsync_store::PbxDirectoryRecord>, StoreError> {
        self.select_pbx_directory(company).await
    }

    async fn save_pbx_list(
        &self,
        company: CompanyId,
        fetched_for: Option<&kalsync_directory::PbxSource>,
        outcome: Result<&kalsync_directory::PbxList, &str>,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.write_pbx_list(company, fetched_for, outcome, at).await
    }

    async fn due_pbx_directories(
        &self,
        now: Timestamp,
    ) -> Result<Vec<(CompanyId, Timestamp)>, StoreError> {
        self.select_due_pbx_directories(now).await
    }

    async fn claim_pbx_directory(
        &self,
        company: CompanyId,
        due: Timestamp,
        next: Timestamp,
    ) -> Result<bool, StoreError> {
        self.take_pbx_directory(company, due, next).await
    }

    async fn directory(&self, instance: InstanceId) -> Result<Option<DirectoryRecord>, StoreError> {
        self.select_directory(instance).await
    }

    async fn due_directories(&self, now: Timestamp) -> Result<Vec<DirectoryRecord>, StoreError> {
        self.select_due_directories(now).await
    }

    async fn claim_directory(
        &self,
        instance: InstanceId,
        due: Timestamp,
        next: Timestamp,
    ) -> Result<bool, StoreError> {
        self.take_directory(instance, due, next).await
    }

    async fn save_directory_run(
        &self,
        instance: InstanceId,
        run: &DirectoryRun,
        state: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        self.write_directory_run(instance, run, state).await
    }

    async fn replace_bookings(
        &self,
        user: UserId,
        bookings: &[Booking],
        keep_subjects: bool,
    ) -> Result<BookingDiff, StoreError> {
        self.update_bookings(user, bookings, keep_subjects).await
    }

    async fn save_sync(&self, w: SyncWrite<'_>) -> Result<SyncSaved, StoreError> {
        self.write_sync(w).await
    }

    async fn bookings(&self, user: UserId) -> Result<Vec<Booking>, StoreError> {
        self.select_bookings(user).await
    }

    async fn delete_bookings_ended_before(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        self.remove_bookings_ended_before(cutoff).await
    }

    async fn save_timeline(
        &self,
        user: UserId,
        timeline: &Timeline,
        next_change: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.upsert_timeline(user, timeline, next_change).await
    }

    async fn timeline(&self, user: UserId) -> Result<Option<Timeline>, StoreError> {
        self.select_timeline(user).await
    }

    async fn create_target(&self, new: NewTarget) -> Result<Target, StoreError> {
        self.insert_target(new).await
    }

    async fn target(&self, target: TargetId) -> Result<Target, StoreError> {
        self.select_target(target).await
    }

    async fn targets(&self, company: CompanyId) -> Result<Vec<Target>, StoreError> {
        self.select_targets(company).await
    }

    async fn set_target_active(&self, target: TargetId, active: bool) -> Result<(), StoreError> {
        self.update_target_active(target, active).await
    }

    async fn delete_target(&self, target: TargetId) -> Result<(), StoreError> {
        self.remove_target(target).await
    }

    async fn enqueue(&self, new: NewDelivery) -> Result<Delivery, StoreError> {
        self.insert_delivery(new).await
    }

    async fn due_deliveries(
        &self,
        node: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.select_due_deliveries(node, now, limit).await
    }

    async fn enqueue_many(&self, new: Vec<NewDelivery>) -> Result<Vec<Delivery>, StoreError> {
        self.insert_deliveries(new).await
    }

    async fn mark_delivered_many(
        &self,
        ids: &[DeliveryId],
        when: Timestamp,
    ) -> Result<(), StoreError> {
        self.update_delivered_many(ids, when).await
    }

    async fn held_timelines(
        &self,
        node: &str,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<Vec<(UserId, Result<Timeline, StoreError>)>, StoreError> {
        self.select_held_timelines(node, after, limit).await
    }

    async fn held_last_deliveries(&self, node: &str) -> Result<Vec<Delivery>, StoreError> {
        self.select_held_last_deliveries(node).await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.select_next_due().await
    }

    async fn mark_delivered(
        &self,
        delivery: DeliveryId,
        when: Timestamp,
    ) -> Result<(), StoreError> {
        self.update_delivered(delivery, when).await
    }

    async fn mark_retry(
        &self,
        delivery: DeliveryId,
        next_attempt: Timestamp,
        error: &str,
    ) -> Result<(), StoreError> {
        self.update_retry(delivery, next_attempt, error).await
    }

    async fn withdraw_ahead(
        &self,
        user: UserId,
        target: TargetId,
        from: Timestamp,
    ) -> Result<u64, StoreError> {
        self.supersede_from(user, target, from).await
    }

    async fn mark_dead(&self, delivery: DeliveryId, error: &str) -> Result<(), StoreError> {
        self.update_dead(delivery, error).await
    }

    async fn delivery(&self, delivery: DeliveryId) -> Result<Delivery, StoreError> {
        self.select_delivery(delivery).await
    }

    async fn last_delivery(
        &self,
        user: UserId,
        target: TargetId,
    ) -> Result<Option<Delivery>, StoreError> {
        self.select_last_delivery(user, target).await
    }

    async fn deliveries(
        &self,
        company: CompanyId,
        state: DeliveryState,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.select_deliveries(company, state, limit).await
    }

    async fn outbox_depth(&self) -> Result<u64, StoreError> {
        self.count_pending().await
    }

    async fn audit(&self, entry: NewAuditEntry) -> Result<(), StoreError> {
        self.insert_audit(entry).await
    }

    async fn audit_log(
        &self,
        company: Option<CompanyId>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.select_audit_log(company, limit).await
    }

    async fn create_account(&self, account: NewAccount) -> Result<Account, StoreError> {
        self.insert_account(account).await
    }

    async fn account(&self, account: AccountId) -> Result<Account, StoreError> {
        self.select_account(account).await
    }

    async fn account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        self.select_account_by_email(email).await
    }

    async fn accounts(&self, company: Option<CompanyId>) -> Result<Vec<Account>, StoreError> {
        self.select_accounts(company).await
    }

    async fn set_password(&self, account: AccountId, hash: &str) -> Result<(), StoreError> {
        self.update_password(account, hash).await
    }

    async fn delete_account(&self, account: AccountId) -> Result<(), StoreError> {
        self.remove_account(account).await
    }

    async fn account_by_entra(&self, entra: &EntraId) -> Result<Option<Account>, StoreError> {
        self.select_account_by_entra(entra).await
    }

    async fn link_entra(
        &self,
        account: AccountId,
        entra: Option<&EntraId>,
    ) -> Result<(), StoreError> {
        self.update_entra(account, entra).await
    }

    async fn set_grant(&self, account: AccountId, grant: Grant) -> Result<(), StoreError> {
        self.update_grant(account, grant).await
    }

    async fn claim_tenant(
        &self,
        tenant: &CompanyTenant,
    ) -> Result<(CompanyTenant, bool), StoreError> {
        self.insert_company_tenant(tenant).await
    }

    async fn revoke_access(&self, account: AccountId) -> Result<(), StoreError> {
        self.delete_access(account).await
    }

    async fn company_tenant(&self, tenant: &TenantId) -> Result<Option<CompanyTenant>, StoreError> {
        self.select_company_tenant(tenant).await
    }

    async fn company_tenants(&self, company: CompanyId) -> Result<Vec<CompanyTenant>, StoreError> {
        self.select_company_tenants(company).await
    }

    async fn set_tenant_roles(&self, tenant: &CompanyTenant) -> Result<(), StoreError> {
        self.update_tenant_roles(tenant).await
    }

    async fn release_tenant(
        &self,
        company: CompanyId,
        tenant: &TenantId,
    ) -> Result<(), StoreError> {
        self.delete_company_tenant(company, tenant).await
    }

    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        self.insert_session(session).await
    }

    async fn session(&self, id_hash: &str, now: Timestamp) -> Result<Option<Session>, StoreError> {
        self.select_session(id_hash, now).await
    }

    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        self.remove_session(id_hash).await
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.remove_expired_sessions(now).await
    }

    async fn create_api_token(&self, new: NewApiToken<'_>) -> Result<ApiToken, StoreError> {
        self.insert_api_token(new).await
    }

    async fn use_api_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<ApiToken>, StoreError> {
        self.select_and_touch_token(token_hash, now).await
    }

    async fn api_tokens(&self, company: CompanyId) -> Result<Vec<ApiToken>, StoreError> {
        self.select_api_tokens(company).await
    }

    async fn delete_api_token(
        &self,
        company: CompanyId,
        token: ApiTokenId,
    ) -> Result<(), StoreError> {
        self.remove_api_token(company, token).await
    }

    async fn lease_users(
        &self,
        node: &str,
        now: Timestamp,
        ttl: SignedDuration,
        limit: usize,
    ) -> Result<Vec<UserId>, StoreError> {
        self.take_leases(node, now, ttl, limit).await
    }

    async fn recover_leases(&self, node: &str, now: Timestamp) -> Result<usize, StoreError> {
        SqlStore::recover_leases(self, node, now).await
    }

    async fn release_leases(&self, node: &str) -> Result<(), StoreError> {
        self.delete_leases(node).await
    }

    async fn lease_census(
        &self,
        node: &str,
        now: Timestamp,
        ttl: SignedDuration,
    ) -> Result<Census, StoreError> {
        self.node_census(node, now, ttl).await
    }

    async fn release_users(&self, node: &str, users: &[UserId]) -> Result<(), StoreError> {
        self.delete_user_leases(node, users).await
    }
}
