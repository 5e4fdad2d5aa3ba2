//! A simulated on-premises Exchange for Kalsync's tests, benchmark and demo: EWS
//! (`/EWS/Exchange.asmx`) over the Graph simulator's calendars — the same mailboxes,
//! managed through the same control API (`/_sim/users…`). It checks the service
//! account (Basic), its impersonation rights and per-mailbox delegate rights, answers
//! `FindItem`, `GetItem`, `SyncFolderItems`, `Subscribe` (streaming, push, pull),
//! `GetEvents`, `GetStreamingEvents` and `Unsubscribe` as Exchange does, and injects
//! faults: `ErrorServerBusy` with `BackOffMilliseconds`, latency, dropped streams,
//! expired watermarks. It records whether a client ever asked for a body.

mod http;
mod notify;
mod ntlm;
mod ops;
mod tls;

pub use tls::{certificate, run_tls, spawn_tls};

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kalsync_graph_sim::Simulator;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

/// What a service account may do with a mailbox as its delegate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelegateRights {
    /// Free/busy only: items cannot be read.
    FreeBusy,
    /// Reviewer on the calendar (or FullAccess): items can be read.
    Reviewer,
}

/// IIS's Extended Protection for Authentication on the EWS virtual directory: whether
/// an NTLM sign-in over TLS must carry the channel's binding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtendedProtection {
    /// Not checked (IIS "Off").
    #[default]
    Off,
    /// Checked when the client sends one (IIS "Accept").
    Accept,
    /// Required (IIS "Required").
    Require,
}

/// The HTTP schemes NTLM is taken under: IIS's Windows authentication providers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NtlmSchemes {
    /// `NTLM` only.
    NtlmOnly,
    /// `Negotiate` only (IIS with the Negotiate provider alone): NTLM inside it, raw or
    /// SPNEGO-wrapped; an `NTLM` header is refused.
    NegotiateOnly,
    /// Both, `Negotiate` offered first (IIS's default).
    #[default]
    Both,
}

/// How a CHALLENGE under `Negotiate` is sent back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NegotiateAnswer {
    /// As the client's token came: raw NTLMSSP for raw, a SPNEGO `NegTokenResp` for
    /// SPNEGO (Windows).
    #[default]
    InKind,
    /// Always in a SPNEGO `NegTokenResp`.
    Wrapped,
}

/// The service account and its rights.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EwsConfig {
    /// Account name, as `user`, `DOMAIN\user` or `user@domain`.
    pub username: String,
    /// Password.
    pub password: String,
    /// Accepts Basic authentication.
    #[serde(default = "yes")]
    pub basic: bool,
    /// Accepts NTLM (per connection).
    #[serde(default = "yes")]
    pub ntlm: bool,
    /// Accepts OAuth bearer tokens the Graph simulator's token endpoint issued for this
    /// audience (the resource of the `…/.default` scope, e.g.
    /// `https://outlook.office365.com`), as an app with impersonation rights.
    #[serde(default)]
    pub oauth_audience: Option<String>,
    /// The schemes NTLM is taken under.
    #[serde(default)]
    pub ntlm_schemes: NtlmSchemes,
    /// How a challenge under `Negotiate` is wrapped.
    #[serde(default)]
    pub negotiate_answer: NegotiateAnswer,
    /// Extended Protection for NTLM over TLS.
    #[serde(default)]
    pub extended_protection: ExtendedProtection,
    /// Extended Protection's service name check: an NTLM sign-in must name this SPN
    /// (e.g. `HTTP/mail.corp.example`) in `MsvAvTargetName`; none: not checked.
    #[serde(default)]
    pub spn: Option<String>,
    /// May impersonate every mailbox (the ApplicationImpersonation role)…
    #[serde(default = "yes")]
    pub impersonate_all: bool,
    /// …or only these (lower-case addresses; a management scope).
    #[serde(default)]
    pub impersonate: HashSet<String>,
    /// Delegate rights per mailbox (lower-case address).
    #[serde(default)]
    pub delegate: HashMap<String, DelegateRights>,
}

fn yes() -> bool {
    true
}

impl EwsConfig {
    /// An account that may impersonate everyone.
    pub fn new(username: &str, password: &str) -> Self {
        EwsConfig {
            username: username.into(),
            password: password.into(),
            basic: true,
            ntlm: true,
            oauth_audience: None,
            ntlm_schemes: NtlmSchemes::Both,
            negotiate_answer: NegotiateAnswer::InKind,
            extended_protection: ExtendedProtection::Off,
            spn: None,
            impersonate_all: true,
            impersonate: HashSet::new(),
            delegate: HashMap::new(),
        }
    }
}

/// Faults to inject, each counted down as it is used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EwsFaults {
    /// The next this many requests get `ErrorServerBusy`.
    pub server_busy: u32,
    /// The `BackOffMilliseconds` they carry (none when 0).
    pub back_off_ms: u64,
    /// Every answer takes at least this long.
    pub latency_ms: u64,
    /// The next this many streaming connections are cut without a closing status.
    pub drop_streams: u32,
    /// The next this many watermarks or sync states presented are refused as expired.
    pub expire_watermarks: u32,
    /// Streaming connections close (status `Closed`, the answer ended cleanly) after
    /// this many milliseconds instead of their `ConnectionTimeout` (0: their timeout).
    pub close_streams_after_ms: u64,
}

/// Counters a test reads.
#[derive(Debug, Default)]
struct Stats {
    requests: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    unauthorized: AtomicU64,
    body_requested: AtomicU64,
    server_busy: AtomicU64,
    notifications_pushed: AtomicU64,
    streamed_events: AtomicU64,
    ntlm_sign_ins: AtomicU64,
    ntlm_challenges: AtomicU64,
    find_item: AtomicU64,
    sync_folder_items: AtomicU64,
    misrouted: AtomicU64,
    without_user_agent: AtomicU64,
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EwsStats {
    /// EWS requests answered.
    pub requests: u64,
    /// The most requests in progress at once (streaming connections included).
    pub max_in_flight: u64,
    /// Refused for credentials.
    pub unauthorized: u64,
    /// Requests whose shape would have returned a body (must stay 0).
    pub body_requested: u64,
    /// `ErrorServerBusy` answers.
    pub server_busy: u64,
    /// Push notifications delivered.
    pub notifications_pushed: u64,
    /// Events sent down streaming connections.
    pub streamed_events: u64,
    /// Connections signed in with NTLM.
    pub ntlm_sign_ins: u64,
    /// NTLM handshakes begun: CHALLENGEs sent, under either scheme.
    pub ntlm_challenges: u64,
    /// `FindItem` requests (window reads).
    pub find_item: u64,
    /// `SyncFolderItems` requests (change checks).
    pub sync_folder_items: u64,
    /// Requests that did not say they come from Kalsync (`User-Agent: Kalsync/…`): an
    /// Exchange that allow-lists applications by User-Agent would refuse them.
    pub without_user_agent: u64,
    /// Subscriptions a streaming connection reached on the wrong back end (no affinity).
    pub misrouted: u64,
}

struct Shared {
    graph: Simulator,
    config: Mutex<EwsConfig>,
    faults: Mutex<EwsFaults>,
    stats: Stats,
    subscriptions: Mutex<notify::Registry>,
    /// Ends every open streaming connection at once (subscriptions forgotten).
    cut: Arc<tokio::sync::Notify>,
    /// Runs when the next `Subscribe` (of the kind named, or any) arrives, before its
    /// subscription exists.
    before_subscribe: Mutex<Option<SubscribeHook>>,
    http: reqwest::Client,
    /// NTLM state per client connection.
    ntlm: Mutex<HashMap<std::net::SocketAddr, http::Connection>>,
    /// Served over TLS: the `tls-server-end-point` token of its certificate.
    channel: Mutex<Option<Vec<u8>>>,
}

/// What runs before the next `Subscribe` (of the kind named, or any).
type SubscribeHook = (Option<&'static str>, Box<dyn FnOnce() + Send>);

/// The simulator; cheap to clone.
#[derive(Clone)]
pub struct EwsSim {
    shared: Arc<Shared>,
}

impl EwsSim {
    /// An EWS front to `graph`'s calendars for `config`'s account. Must be called in a
    /// Tokio runtime: it starts the task that turns calendar changes into notifications.
    pub fn new(graph: Simulator, config: EwsConfig) -> EwsSim {
        let shared = Arc::new(Shared {
            graph,
            config: Mutex::new(config),
            faults: Mutex::new(EwsFaults::default()),
            stats: Stats::default(),
            subscriptions: Mutex::new(notify::Registry::default()),
            cut: Arc::new(tokio::sync::Notify::new()),
            before_subscribe: Mutex::new(None),
            ntlm: Mutex::new(HashMap::new()),
            channel: Mutex::new(None),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        });
        let sim = EwsSim { shared };
        notify::start(&sim);
        sim
    }

    /// The calendars it serves.
    pub fn graph(&self) -> &Simulator {
        &self.shared.graph
    }

    /// Replaces the account and its rights.
    pub fn set_config(&self, config: EwsConfig) {
        *lock(&self.shared.config) = config;
    }

    /// The account and its rights.
    pub fn config(&self) -> EwsConfig {
        lock(&self.shared.config).clone()
    }

    /// Replaces the faults.
    pub fn set_faults(&self, faults: EwsFaults) {
        *lock(&self.shared.faults) = faults;
    }

    /// The faults still pending.
    pub fn faults(&self) -> EwsFaults {
        lock(&self.shared.faults).clone()
    }

    /// Counters.
    pub fn stats(&self) -> EwsStats {
        let s = &self.shared.stats;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EwsStats {
            requests: get(&s.requests),
            max_in_flight: get(&s.max_in_flight),
            unauthorized: get(&s.unauthorized),
            body_requested: get(&s.body_requested),
            server_busy: get(&s.server_busy),
            notifications_pushed: get(&s.notifications_pushed),
            streamed_events: get(&s.streamed_events),
            ntlm_sign_ins: get(&s.ntlm_sign_ins),
            ntlm_challenges: get(&s.ntlm_challenges),
            find_item: get(&s.find_item),
            sync_folder_items: get(&s.sync_folder_items),
            without_user_agent: get(&s.without_user_agent),
            misrouted: get(&s.misrouted),
        }
    }

    /// The live subscriptions: id, mailbox, kind.
    pub fn subscriptions(&self) -> Vec<(String, String, &'static str)> {
        lock(&self.shared.subscriptions).list()
    }

    /// Exchange forgets every subscription, as a restarted or failed-over mailbox server
    /// does: open streams are cut (no closing status), later `GetStreamingEvents` and
    /// `GetEvents` answer `ErrorSubscriptionNotFound`, pushes stop without a word. The
    /// mailboxes' events stay, so a watermark still resumes. How many were forgotten.
    pub fn forget_subscriptions(&self) -> usize {
        let forgotten = lock(&self.shared.subscriptions).clear();
        self.shared.cut.notify_waiters();
        forgotten
    }

    /// Runs `f` when the next `Subscribe` arrives, before its subscription exists: a
    /// change `f` makes is in no subscription made by that request — what a client that
    /// read the mailbox before subscribing would miss.
    pub fn before_next_subscribe(&self, f: impl FnOnce() + Send + 'static) {
        *lock(&self.shared.before_subscribe) = Some((None, Box::new(f)));
    }

    /// As [`EwsSim::before_next_subscribe`], for the next `Subscribe` of one kind only:
    /// `streaming`, `push` or `pull`.
    pub fn before_next_subscribe_of(&self, kind: &'static str, f: impl FnOnce() + Send + 'static) {
        *lock(&self.shared.before_subscribe) = Some((Some(kind), Box::new(f)));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Serves the simulator on `listener` until `shutdown` completes.
pub async fn run(
    sim: EwsSim,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    kalsync_graph_sim::serve_router(http::router(sim), listener, shutdown).await
}

/// Stops a spawned simulator when dropped.
pub type EwsHandle = kalsync_graph_sim::SimHandle;

/// Starts the simulator on a free loopback port; its base URL (the EWS endpoint is
/// `EWS/Exchange.asmx` below it) and a handle that stops it when dropped.
pub async fn spawn(sim: EwsSim) -> std::io::Result<(url::Url, EwsHandle)> {
    kalsync_graph_sim::spawn_router(http::router(sim)).await
}
