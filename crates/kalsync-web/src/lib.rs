//! Kalsync's admin face (SPEC §6): the REST API under `/api/v1` with its OpenAPI
//! description, sign-in and sessions, roles (operator, company admin, reader) and
//! tenant isolation — a company's admin can never see or change another company's
//! data, and it answers 404 as if it did not exist — and the web UI over the same
//! checks. The service mounts [`router`].

pub mod api;
pub mod auth;
pub mod console;
pub mod error;
pub mod ui;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use kalsync_store::{InstanceId, Store};
use secrecy::SecretString;
use serde::Serialize;

pub use error::ApiError;

/// What the handlers share.
#[derive(Clone)]
pub struct WebState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Cookies only over HTTPS (`public_url` is `https:`).
    pub secure_cookies: bool,
    /// Failed sign-ins per address and account.
    pub limit: Arc<auth::SignInLimit>,
    /// Runs an instance's connection check; the service provides it.
    pub checker: Option<Arc<dyn ConnectionCheck>>,
    /// Runs an instance's directory on request; the service provides it.
    pub directories: Option<Arc<dyn DirectoryRunner>>,
    /// Shortens appointments in calendars after "I'm back"; the service provides it.
    pub write_back: Option<Arc<dyn WriteBack>>,
    /// Teams Presence (PBX calls shown in Teams, its figures); the service provides it.
    pub teams: Option<Arc<dyn TeamsPresence>>,
    /// When each instance's directory last ran on request.
    pub(crate) directory_runs: Arc<api::directory::RunTimes>,
    /// The operator's multi-tenant app, for *Connect Microsoft 365*.
    pub microsoft365: Option<Arc<Microsoft365App>>,
    /// Where browsers reach this service (the consent's return address); without it,
    /// the request's own host.
    pub public_url: Option<url::Url>,
    /// Sign-ins with Microsoft under way.
    pub sign_ins: Arc<ui::microsoft::Pending<ui::microsoft::Started>>,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` name the client (for the
    /// sign-in limits); any other peer is the client itself.
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// Open switchboard streams per person.
    pub streams: Arc<auth::Streams>,
    /// The outbound client (the service's policy on addresses), for looking up a
    /// tenant's id.
    pub http: reqwest::Client,
    /// Set when the service stops: long-lived answers (the switchboard's streams) end,
    /// so they never hold a graceful stop up.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
}

impl WebState {
    /// State over `store`.
    pub fn new(store: Arc<dyn Store>, secure_cookies: bool) -> WebState {
        WebState {
            store,
            secure_cookies,
            limit: Arc::default(),
            checker: None,
            directories: None,
            write_back: None,
            teams: None,
            directory_runs: Arc::default(),
            microsoft365: None,
            public_url: None,
            sign_ins: Arc::default(),
            trusted_proxies: Arc::default(),
            streams: Arc::default(),
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
            http: kalsync_outbound::OutboundPolicy::default()
                .http()
                .timeout(std::time::Duration::from_secs(20))
                .build()
                .unwrap_or_default(),
        }
    }

    /// Reaches outside through `http` (the service's outbound policy).
    pub fn with_http(mut self, http: reqwest::Client) -> WebState {
        self.http = http;
        self
    }

    /// Ends the long-lived answers: the service is stopping.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Trusts these reverse proxies to name the client.
    pub fn with_trusted_proxies(mut self, proxies: Vec<ipnet::IpNet>) -> WebState {
        self.trusted_proxies = Arc::new(proxies);
        self
    }

    /// With the service's connection check.
    pub fn with_checker(mut self, checker: Arc<dyn ConnectionCheck>) -> WebState {
        self.checker = Some(checker);
        self
    }

    /// With the service's directory runner (dry runs and runs on request).
    pub fn with_directories(mut self, runner: Arc<dyn DirectoryRunner>) -> WebState {
        self.directories = Some(runner);
        self
    }

    /// With the write-back to calendars after "I'm back".
    pub fn with_write_back(mut self, write_back: Arc<dyn WriteBack>) -> WebState {
        self.write_back = Some(write_back);
        self
    }

    /// With Teams Presence.
    pub fn with_teams(mut self, teams: Arc<dyn TeamsPresence>) -> WebState {
        self.teams = Some(teams);
        self
    }

    /// What the phone's events may set off besides the person's status.
    pub fn phone_hooks(&self) -> api::phone::PhoneHooks {
        api::phone::PhoneHooks {
            write_back: self.write_back.clone(),
            teams: self.teams.clone(),
        }
    }

    /// With the operator's Microsoft 365 app, and the address browsers reach us at.
    pub fn with_microsoft365(
        mut self,
        app: Option<Microsoft365App>,
        public_url: Option<url::Url>,
    ) -> WebState {
        self.microsoft365 = app.map(Arc::new);
        self.public_url = public_url;
        self
    }
}

/// The operator's own multi-tenant Entra ID app: people sign in with it, a company's
/// admin grants it access with the admin-consent redirect, and its instances read
/// calendars with it.
#[derive(Clone)]
pub struct Microsoft365App {
    /// Application (client) id.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: SecretString,
    /// The login host (`https://login.microsoftonline.com/`, another cloud's, the simulator).
    pub login_url: url::Url,
    /// The Graph root when not the global cloud's.
    pub graph_url: Option<String>,
    /// Sign-in with it (keeps Entra ID's signing keys).
    pub entra: kalsync_graph::EntraSignIn,
    /// Who of the operator's own tenant signs in as the operator.
    pub operators: Option<ui::microsoft::OperatorTenant>,
}

impl Microsoft365App {
    /// The app `client_id` at `login_url`, reached through `http` (the service's
    /// outbound client).
    pub fn new(
        http: reqwest::Client,
        client_id: &str,
        client_secret: SecretString,
        login_url: url::Url,
        graph_url: Option<String>,
    ) -> Microsoft365App {
        Microsoft365App {
            entra: kalsync_graph::EntraSignIn::new(
                http,
                login_url.clone(),
                client_id,
                client_secret.clone(),
            ),
            client_id: client_id.to_owned(),
            client_secret,
            login_url,
            graph_url,
            operators: None,
        }
    }

    /// With the operator's own staff signing in from `tenant` with one of `roles`.
    pub fn with_operators(mut self, tenant: kalsync_core::TenantId, roles: Vec<String>) -> Self {
        self.operators = Some(ui::microsoft::OperatorTenant { tenant, roles });
        self
    }
}

/// One step of a connection check, as `kalsync check` prints it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckStep {
    /// What was checked (`sign in`, `mailbox`, `read`, `subscribe`).
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was seen, or exactly what to fix.
    pub detail: String,
}

/// A boxed future, for the service's hooks.
pub type Hook<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An instance's set-up verified against its source; the service implements it, since
/// only it knows the sources.
pub trait ConnectionCheck: Send + Sync {
    /// Checks `instance` with `mailbox` (its first user when none): the steps, or why
    /// the check could not start.
    fn check<'a>(
        &'a self,
        instance: InstanceId,
        mailbox: Option<&'a str>,
    ) -> Hook<'a, Result<Vec<CheckStep>, String>>;
}

/// How a directory run asked for goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryMode {
    /// Applied when the directory is turned on, as on schedule.
    Now,
    /// Shown, never applied.
    DryRun,
    /// Applied, the removals held back included (an admin confirmed them).
    Confirmed,
}

/// Shortens, in a person's calendar, the appointments an absence came from, after
/// "I'm back" on an instance that writes back; the service implements it, since only it
/// knows the sources. It reports what it did itself (log and audit).
pub trait WriteBack: Send + Sync {
    /// Shortens `bookings` of `user` (of `instance`) to end at `end`.
    fn shorten(
        &self,
        instance: kalsync_store::Instance,
        user: kalsync_store::User,
        bookings: Vec<kalsync_core::BookingId>,
        end: jiff::Timestamp,
    ) -> Hook<'_, ()>;
}

/// Teams Presence as the web needs it; the service implements it, since only it knows
/// Teams.
pub trait TeamsPresence: Send + Sync {
    /// Shows `user`'s PBX call in Teams (`Busy/InACall`) from its start (`started`) at
    /// `now` to its end: whether Teams shows calls for the company at all, or why it
    /// could not be shown.
    fn call(
        &self,
        user: kalsync_store::User,
        started: bool,
        now: jiff::Timestamp,
    ) -> Hook<'_, Result<bool, String>>;

    /// A tenant's presence requests on this node: sent, waited for, throttled.
    fn figures(&self, tenant: &str) -> TeamsFigures;
}

/// A tenant's Teams presence requests on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TeamsFigures {
    /// Requests sent.
    pub requests: u64,
    /// Times one waited for the tenant's budget.
    pub waits: u64,
    /// Times Graph throttled it anyway.
    pub throttled: u64,
    /// When Graph last did.
    pub last_throttled: Option<jiff::Timestamp>,
}

/// Runs an instance's directory; the service implements it, since only it knows the
/// directories' protocols.
pub trait DirectoryRunner: Send + Sync {
    /// Runs `instance`'s directory: what the run did, or why it could not start.
    fn run(
        &self,
        instance: InstanceId,
        mode: DirectoryMode,
    ) -> Hook<'_, Result<kalsync_store::DirectoryRun, String>>;

    /// Fetches `company`'s PBX directory now and stores it: how many subscriptions it
    /// has, or why it could not be fetched (the list before it is kept).
    fn fetch_pbx(&self, company: kalsync_store::CompanyId) -> Hook<'_, Result<usize, String>>;
}

/// Requests larger than this are refused (a CSV import of 10,000 users fits).
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// The API and its description.
pub fn router(state: WebState) -> axum::Router {
    api::router()
        .merge(ui::router())
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}
