//! A Microsoft Graph simulator good enough for Kalsync's demo, tests and benchmarks: a
//! token endpoint, users with calendars, `calendarView` with `$select`, paging and
//! `outlook.timezone`, `$batch`, subscriptions that validate and really POST change and
//! lifecycle notifications, injectable faults, and a small control API (`/_sim/…`).
//!
//! Its payloads have the shape of Microsoft's (field names, `@odata.*` annotations,
//! seven-digit fractional `dateTime` with `timeZone`).

pub mod calendar;
mod consent;
mod http;
mod oidc;
pub use oidc::{BadIdToken, SimPerson};

pub use http::control_router;
pub mod sample;
mod world;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub use world::{
    EventSpec, OccurrenceChange, RecurrenceSpec, SpecError, UserSpec, WorkingHoursSpec,
};

use world::Directory;

/// An app registration the simulated tenant knows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimApp {
    /// Application (client) id.
    pub client_id: String,
    /// Its client secret, if it has one.
    #[serde(default)]
    pub secret: Option<String>,
    /// Its certificate: the RSA public key (PEM) and the SHA-256 thumbprint (base64url).
    #[serde(default)]
    pub certificate: Option<SimCertificate>,
    /// Whether an admin consented (otherwise tokens are refused with AADSTS65001).
    #[serde(default = "yes")]
    pub consented: bool,
    /// Whether its secret has expired (AADSTS7000222).
    #[serde(default)]
    pub secret_expired: bool,
}

fn yes() -> bool {
    true
}

/// A certificate credential.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimCertificate {
    /// RSA public key, PEM (`BEGIN PUBLIC KEY`).
    pub public_key_pem: String,
    /// `x5t#S256` the assertion must carry.
    pub thumbprint_s256: String,
}

/// How the simulator starts.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The tenant id.
    pub tenant: String,
    /// App registrations.
    pub apps: Vec<SimApp>,
    /// `$top` when a client gives none (Graph's is 10).
    pub default_page_size: usize,
    /// Lifetime of issued tokens.
    pub token_lifetime: Duration,
    /// The tenant's domains (its OpenID metadata answers to them too).
    pub domains: Vec<String>,
    /// People who can sign in (more through `POST /_sim/people`).
    pub people: Vec<SimPerson>,
}

impl SimConfig {
    /// One tenant with one app using `client_id`/`secret`.
    pub fn with_secret(tenant: &str, client_id: &str, secret: &str) -> Self {
        SimConfig {
            tenant: tenant.into(),
            apps: vec![SimApp {
                client_id: client_id.into(),
                secret: Some(secret.into()),
                certificate: None,
                consented: true,
                secret_expired: false,
            }],
            default_page_size: 10,
            token_lifetime: Duration::from_secs(3599),
            domains: Vec::new(),
            people: Vec::new(),
        }
    }
}

/// Faults to inject; counts apply to the next Graph requests (not the control API).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Graph's response time in milliseconds: every Graph and token request is answered
    /// no sooner than this after it arrived, the simulator's own work included.
    pub latency_ms: u64,

    /// The next n requests get `429 Too Many Requests`.
    pub throttle: u32,
    /// Their `Retry-After`, seconds (fractions allowed, as Graph sends).
    pub retry_after_secs: f64,
    /// The next n requests get `503 Service Unavailable`.
    pub server_errors: u32,
    /// The next n requests are cut off mid-answer.
    pub drop_connections: u32,
    /// Invalidate every token issued so far (once).
    pub expire_tokens: bool,
    /// Drop the next n change notifications instead of sending them.
    pub lose_notifications: u32,
    /// Send the next n change notifications twice (Graph delivers at least once).
    pub duplicate_notifications: u32,
    /// Sign-in `id_token`s are issued wrong this way until cleared.
    pub bad_id_token: Option<BadIdToken>,
}

/// Counters a test or benchmark reads.
#[derive(Debug, Default)]
pub struct Stats {
    /// Graph requests served (token endpoint excluded).
    pub requests: AtomicU64,
    /// `$batch` requests.
    pub batches: AtomicU64,
    /// Throttled answers.
    pub throttled: AtomicU64,
    /// Tokens issued.
    pub tokens: AtomicU64,
    /// Notifications delivered (2xx from the receiver).
    pub notifications_sent: AtomicU64,
    /// Notifications given up on or lost on purpose.
    pub notifications_lost: AtomicU64,
    /// Events served with their `body` (a client that never asks keeps this at 0).
    pub bodies_served: AtomicU64,
    /// Requests refused because a mailbox already had four in progress.
    pub mailbox_concurrency_refused: AtomicU64,
    /// The most requests seen in progress against one mailbox.
    pub max_mailbox_concurrency: AtomicU64,
}

/// A snapshot of [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// See [`Stats::requests`].
    pub requests: u64,
    /// See [`Stats::batches`].
    pub batches: u64,
    /// See [`Stats::throttled`].
    pub throttled: u64,
    /// See [`Stats::tokens`].
    pub tokens: u64,
    /// See [`Stats::notifications_sent`].
    pub notifications_sent: u64,
    /// See [`Stats::notifications_lost`].
    pub notifications_lost: u64,
    /// See [`Stats::bodies_served`].
    pub bodies_served: u64,
    /// See [`Stats::mailbox_concurrency_refused`].
    pub mailbox_concurrency_refused: u64,
    /// See [`Stats::max_mailbox_concurrency`].
    pub max_mailbox_concurrency: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) resource: String,
    pub(crate) change_type: String,
    pub(crate) notification_url: String,
    pub(crate) lifecycle_url: Option<String>,
    pub(crate) client_state: Option<String>,
    pub(crate) expires: Timestamp,
    pub(crate) client_id: String,
}

/// One POST to a subscriber.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) url: String,
    pub(crate) body: serde_json::Value,
}

pub(crate) struct World {
    pub(crate) directory: Directory,
    /// Issued tokens: the app, expiry, audience (the scope's resource).
    pub(crate) tokens: HashMap<String, (String, Timestamp, String)>,
    pub(crate) subscriptions: HashMap<String, Subscription>,
    pub(crate) faults: Faults,
    /// Apps an admin consented to through the admin-consent page.
    pub(crate) consented: std::collections::HashSet<String>,
    /// People who can sign in.
    pub(crate) people: Vec<SimPerson>,
    /// Apps someone signed in to (known in the tenant, without permissions unless
    /// consented).
    pub(crate) signed_in_apps: std::collections::HashSet<String>,
    /// Sign-in codes not yet redeemed.
    pub(crate) codes: HashMap<String, oidc::IssuedCode>,
}

pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    pub(crate) world: Mutex<World>,
    pub(crate) stats: Stats,
    pub(crate) outbox: mpsc::UnboundedSender<Delivery>,
    pub(crate) http: reqwest::Client,
    /// Requests in progress per mailbox id.
    pub(crate) in_flight: Mutex<HashMap<String, u32>>,
    /// Every calendar change, for other protocols' notifications.
    pub(crate) changes: tokio::sync::broadcast::Sender<calendar::CalendarChange>,
}

/// Graph allows this many concurrent requests per mailbox; more get `429`.
pub const MAILBOX_CONCURRENCY: u32 = 4;

/// A request in progress against one mailbox; leaves when dropped.
pub(crate) struct InFlight {
    shared: Arc<Shared>,
    key: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut map = self
            .shared
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// The simulator. Cheap to clone; every clone is the same tenant.
#[derive(Clone)]
pub struct Simulator {
    pub(crate) shared: Arc<Shared>,
}

/// How notifications are sent: Graph allows a receiver three seconds.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(3);

impl Simulator {
    /// A simulator with no users. Must be called inside a Tokio runtime: it starts the
    /// task that delivers notifications.
    pub fn new(config: SimConfig) -> Self {
        let (outbox, inbox) = mpsc::unbounded_channel();
        let http = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            .build()
            .unwrap_or_default();
        let shared = Arc::new(Shared {
            config,
            world: Mutex::new(World {
                directory: Directory::default(),
                tokens: HashMap::new(),
                subscriptions: HashMap::new(),
                faults: Faults::default(),
                consented: Default::default(),
                people: Vec::new(),
                codes: HashMap::new(),
                signed_in_apps: Default::default(),
            }),
            stats: Stats::default(),
            outbox,
            http,
            in_flight: Mutex::new(HashMap::new()),
            changes: tokio::sync::broadcast::channel(4096).0,
        });
        tokio::spawn(deliver(Arc::downgrade(&shared), inbox));
        let sim = Simulator { shared };
        for person in sim.shared.config.people.clone() {
            sim.add_person(person);
        }
        sim
    }

    /// The audience a bearer token was issued for (the resource of its
    /// `…/.default` scope), if it was issued here and has not expired; else why not, as
    /// Entra's tokens are refused.
    pub fn token_audience(&self, token: &str) -> Result<String, &'static str> {
        match self.world().tokens.get(token) {
            Some((_, expires, audience)) if *expires > Timestamp::now() => Ok(audience.clone()),
            Some(_) => Err("Lifetime validation failed, the token is expired."),
            None => Err("IDX14100: JWT is not well formed."),
        }
    }

    pub(crate) fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.shared.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Enters a request against a mailbox, or `None` when four are already in progress.
    pub(crate) fn enter(&self, mailbox: &str) -> Option<InFlight> {
        let key = {
            let world = self.world();
            world
                .directory
                .resolve(mailbox)
                .map(str::to_owned)
                .unwrap_or_else(|| mailbox.to_ascii_lowercase())
        };
        let mut map = self
            .shared
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let n = map.entry(key.clone()).or_insert(0);
        if *n >= MAILBOX_CONCURRENCY {
            self.shared
                .stats
                .mailbox_concurrency_refused
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *n += 1;
        self.shared
            .stats
            .max_mailbox_concurrency
            .fetch_max(u64::from(*n), Ordering::Relaxed);
        Some(InFlight {
            shared: self.shared.clone(),
            key,
        })
    }

    /// The tenant id.
    pub fn tenant(&self) -> &str {
        &self.shared.config.tenant
    }

    /// Adds a user; returns its id.
    pub fn add_user(&self, spec: UserSpec) -> Result<String, SpecError> {
        self.world().directory.add_user(spec).map(|(id, _)| id)
    }

    /// Users, by UPN.
    pub fn users(&self) -> Vec<sample::Person> {
        let world = self.world();
        let mut users: Vec<_> = world
            .directory
            .users
            .values()
            .map(|u| sample::Person {
                id: u.id.clone(),
                name: u.display_name.clone(),
                upn: u.upn.clone(),
            })
            .collect();
        users.sort_by(|a, b| a.upn.cmp(&b.upn));
        users
    }

    /// Lets a mailbox be read, or answers 403 `ErrorAccessDenied` for it.
    pub fn set_access(&self, user: &str, allowed: bool) -> Result<(), SpecError> {
        self.world().directory.user_mut(user)?.denied = !allowed;
        Ok(())
    }

    /// Creates an event; subscribers get a `created` notification. Returns its id.
    pub fn create_event(&self, user: &str, spec: EventSpec) -> Result<String, SpecError> {
        let (user_id, id) = self.world().directory.put_event(user, None, spec)?;
        self.notify(&user_id, &id, "created");
        Ok(id)
    }

    /// Replaces an event; subscribers get `updated`.
    pub fn update_event(&self, user: &str, id: &str, spec: EventSpec) -> Result<(), SpecError> {
        let user_id = {
            let mut world = self.world();
            if !world.directory.user(user)?.events.contains_key(id) {
                return Err(SpecError::NotFound(format!("event `{id}`")));
            }
            world
                .directory
                .put_event(user, Some(id.to_owned()), spec)?
                .0
        };
        self.notify(&user_id, id, "updated");
        Ok(())
    }

    /// The event's spec as stored.
    pub fn event(&self, user: &str, id: &str) -> Result<EventSpec, SpecError> {
        let world = self.world();
        let u = world.directory.user(user)?;
        u.events
            .get(id)
            .map(|e| e.spec.clone())
            .ok_or_else(|| SpecError::NotFound(format!("event `{id}`")))
    }

    /// The ids of a user's events (series masters and single events).
    pub fn event_ids(&self, user: &str) -> Result<Vec<String>, SpecError> {
        Ok(self
            .world()
            .directory
            .user(user)?
            .events
            .keys()
            .cloned()
            .collect())
    }

    /// Deletes an event; subscribers get `deleted`.
    pub fn delete_event(&self, user: &str, id: &str) -> Result<(), SpecError> {
        let user_id = {
            let mut world = self.world();
            let u = world.directory.user_mut(user)?;
            u.events
                .remove(id)
                .ok_or_else(|| SpecError::NotFound(format!("event `{id}`")))?;
            u.id.clone()
        };
        self.notify(&user_id, id, "deleted");
        Ok(())
    }

    /// Changes (`Some`) or deletes (`None`) one occurrence of a series, by its date.
    pub fn change_occurrence(
        &self,
        user: &str,
        series: &str,
        date: jiff::civil::Date,
        change: Option<OccurrenceChange>,
    ) -> Result<(), SpecError> {
        if let Some(c) = &change {
            for (field, value) in [("start", &c.start), ("end", &c.end)] {
                if let Some(v) = value {
                    if v.parse::<Timestamp>().is_err() && v.parse::<jiff::civil::Date>().is_err() {
                        return Err(SpecError::Invalid(format!(
                            "{field} `{v}` is not a time or date"
                        )));
                    }
                }
            }
        }
        let (user_id, occurrence_id) = {
            let mut world = self.world();
            let key = world.directory.change_key();
            let u = world.directory.user_mut(user)?;
            let event = u
                .events
                .get_mut(series)
                .ok_or_else(|| SpecError::NotFound(format!("event `{series}`")))?;
            if event.spec.recurrence.is_none() {
                return Err(SpecError::Invalid(format!(
                    "event `{series}` is not a series"
                )));
            }
            event.exceptions.insert(date, change);
            event.change_key = key;
            (u.id.clone(), world::occurrence_id(series, date))
        };
        self.notify(&user_id, &occurrence_id, "updated");
        Ok(())
    }

    /// Replaces the faults.
    pub fn set_faults(&self, faults: Faults) {
        self.world().faults = faults;
    }

    /// The faults still pending.
    pub fn faults(&self) -> Faults {
        self.world().faults.clone()
    }

    /// Counters.
    pub fn stats(&self) -> StatsSnapshot {
        let s = &self.shared.stats;
        StatsSnapshot {
            requests: s.requests.load(Ordering::Relaxed),
            batches: s.batches.load(Ordering::Relaxed),
            throttled: s.throttled.load(Ordering::Relaxed),
            tokens: s.tokens.load(Ordering::Relaxed),
            notifications_sent: s.notifications_sent.load(Ordering::Relaxed),
            notifications_lost: s.notifications_lost.load(Ordering::Relaxed),
            bodies_served: s.bodies_served.load(Ordering::Relaxed),
            mailbox_concurrency_refused: s.mailbox_concurrency_refused.load(Ordering::Relaxed),
            max_mailbox_concurrency: s.max_mailbox_concurrency.load(Ordering::Relaxed),
        }
    }

    /// Live subscriptions: (id, mailbox id, expiry).
    pub fn subscriptions(&self) -> Vec<(String, String, Timestamp)> {
        let world = self.world();
        let mut subs: Vec<_> = world
            .subscriptions
            .values()
            .map(|s| (s.id.clone(), s.user_id.clone(), s.expires))
            .collect();
        subs.sort();
        subs
    }

    /// Sends a lifecycle notification for a subscription; `subscriptionRemoved` also
    /// removes it, as Graph does.
    pub fn lifecycle(&self, subscription: &str, event: &str) -> Result<(), SpecError> {
        if !matches!(
            event,
            "reauthorizationRequired" | "subscriptionRemoved" | "missed"
        ) {
            return Err(SpecError::Invalid(format!(
                "lifecycle event `{event}` (expected reauthorizationRequired, subscriptionRemoved or missed)"
            )));
        }
        let mut world = self.world();
        let sub = world
            .subscriptions
            .get(subscription)
            .cloned()
            .ok_or_else(|| SpecError::NotFound(format!("subscription `{subscription}`")))?;
        if event == "subscriptionRemoved" {
            world.subscriptions.remove(subscription);
        }
        drop(world);
        let body = serde_json::json!({"value": [{
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": graph_time(sub.expires),
            "tenantId": self.shared.config.tenant,
            "clientState": sub.client_state,
            "lifecycleEvent": event,
        }]});
        let url = sub.lifecycle_url.unwrap_or(sub.notification_url);
        let _ = self.shared.outbox.send(Delivery { url, body });
        Ok(())
    }

    /// Queues change notifications for every live subscription on the user's events.
    fn notify(&self, user_id: &str, event_id: &str, change: &str) {
        let _ = self.shared.changes.send(calendar::CalendarChange {
            user: user_id.to_owned(),
            item: event_id.to_owned(),
            kind: change.to_owned(),
        });
        let now = Timestamp::now();
        let mut world = self.world();
        let subs: Vec<Subscription> = world
            .subscriptions
            .values()
            .filter(|s| {
                s.user_id == user_id
                    && s.expires > now
                    && s.change_type.split(',').any(|c| c.trim() == change)
            })
            .cloned()
            .collect();
        for sub in subs {
            if world.faults.lose_notifications > 0 {
                world.faults.lose_notifications -= 1;
                self.shared
                    .stats
                    .notifications_lost
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let resource = format!("Users/{user_id}/Events/{event_id}");
            let body = serde_json::json!({"value": [{
                "id": world::graph_id(&format!("notification/{}/{}", sub.id, now.as_nanosecond()))[5..18].to_owned(),
                "subscriptionId": sub.id,
                "subscriptionExpirationDateTime": graph_time(sub.expires),
                "changeType": change,
                "resource": resource,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Event",
                    "@odata.id": resource,
                    "@odata.etag": format!("W/\"{}\"", world::graph_id(&format!("{event_id}/{}", now.as_nanosecond()))),
                    "id": event_id,
                },
                "clientState": sub.client_state,
                "tenantId": self.shared.config.tenant,
            }]});
            if world.faults.duplicate_notifications > 0 {
                world.faults.duplicate_notifications -= 1;
                let _ = self.shared.outbox.send(Delivery {
                    url: sub.notification_url.clone(),
                    body: body.clone(),
                });
            }
            let _ = self.shared.outbox.send(Delivery {
                url: sub.notification_url,
                body,
            });
        }
    }
}

/// Graph's instant format with seven fractional digits and `Z`.
pub(crate) fn graph_time(t: Timestamp) -> String {
    let z = t.to_zoned(jiff::tz::TimeZone::UTC);
    format!(
        "{}.{:07}Z",
        z.strftime("%Y-%m-%dT%H:%M:%S"),
        z.subsec_nanosecond() / 100
    )
}

/// Delivers queued notifications, each on its own task, retrying a failed one three
/// times with back-off before giving up (Graph retries for hours; a test has no hours).
async fn deliver(shared: std::sync::Weak<Shared>, mut inbox: mpsc::UnboundedReceiver<Delivery>) {
    while let Some(delivery) = inbox.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            for attempt in 0..4u32 {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt * attempt)))
                        .await;
                }
                let sent = shared
                    .http
                    .post(&delivery.url)
                    .json(&delivery.body)
                    .send()
                    .await;
                if sent.is_ok_and(|r| r.status().is_success()) {
                    shared
                        .stats
                        .notifications_sent
                        .fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            shared
                .stats
                .notifications_lost
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(url = %delivery.url, "simulator gave up delivering a notification");
        });
    }
}

/// Serves the simulator on `listener` until `shutdown` completes.
pub async fn run(
    sim: Simulator,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(http::router(sim), listener, shutdown).await
}

/// Serves a simulator's router on `listener` until `shutdown` completes; handlers may
/// ask for the peer's address (`ConnectInfo<SocketAddr>`).
pub async fn serve_router(
    router: axum::Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Starts the simulator on a free loopback port in the background; returns its base
/// URL and a handle that stops it when dropped.
pub async fn spawn(sim: Simulator) -> std::io::Result<(url::Url, SimHandle)> {
    spawn_router(http::router(sim)).await
}

/// Serves a simulator's router on a free loopback port in the background.
pub async fn spawn_router(router: axum::Router) -> std::io::Result<(url::Url, SimHandle)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_router(router, listener, async move {
        let _ = stopped.await;
    }));
    let url = url::Url::parse(&format!("http://{addr}/")).map_err(std::io::Error::other)?;
    Ok((
        url,
        SimHandle {
            stop: Some(stop),
            task,
        },
    ))
}

/// Stops a spawned simulator when dropped.
pub struct SimHandle {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl SimHandle {
    /// A handle for a server task spawned elsewhere: dropping it aborts the task.
    pub fn from_task(task: tokio::task::JoinHandle<std::io::Result<()>>) -> SimHandle {
        SimHandle { stop: None, task }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}
