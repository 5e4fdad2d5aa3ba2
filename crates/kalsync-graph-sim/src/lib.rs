//! A Microsoft Graph simulator good enough for Kalsync's demo, tests and benchmarks: a
//! token endpoint, users with calendars, `calendarView` with `$select`, paging and
//! `outlook.timezone`, `$batch`, subscriptions that validate and really POST change and
//! lifecycle notifications, injectable faults, and a small control API (`/_sim/…`).
//!
//! Its payloads have the shape of Microsoft's (field names, `@odata.*` annotations,
//! seven-digit fractional `dateTime` with `timeZone`).
//!
//! This file holds the simulator's shared state and its calendar-editing API; the
//! modules hold the rest.

pub mod calendar;
mod config;
mod consent;
mod groups;
mod http;
mod mailbox_slots;
mod notify;
mod oidc;
pub mod presence;
pub mod sample;
mod serve;
mod stats;
mod world;

pub use config::{Faults, SimApp, SimCertificate, SimConfig};
pub use groups::{GroupSpec, Profile};
pub use http::control_router;
pub use mailbox_slots::MAILBOX_CONCURRENCY;
pub use oidc::{BadIdToken, SimPerson};
pub use serve::{SimHandle, run, serve_router, spawn, spawn_router};
pub use stats::{Stats, StatsSnapshot};
pub use world::{
    AutoRepliesSpec, EventSpec, OccurrenceChange, RecurrenceSpec, SpecError, UserSpec,
    WorkingHoursSpec,
};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use tokio::sync::mpsc;

use notify::{DELIVERY_TIMEOUT, Delivery, Subscription, deliver};
use world::Directory;

pub(crate) struct World {
    pub(crate) directory: Directory,
    /// Groups, directory attributes and their change log.
    pub(crate) groups: groups::Groups,
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
    /// The tenant's presence requests per 30 seconds.
    pub(crate) presence_budget: presence::PresenceBudget,
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
    /// What runs around the next subscription's creation.
    pub(crate) hooks: Mutex<notify::Hooks>,
}

/// A lock, whether or not a holder panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The simulator. Cheap to clone; every clone is the same tenant.
#[derive(Clone)]
pub struct Simulator {
    pub(crate) shared: Arc<Shared>,
}

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
                groups: groups::Groups::default(),
                tokens: HashMap::new(),
                subscriptions: HashMap::new(),
                faults: Faults::default(),
                consented: Default::default(),
                people: Vec::new(),
                codes: HashMap::new(),
                signed_in_apps: Default::default(),
                presence_budget: Default::default(),
            }),
            stats: Stats::default(),
            outbox,
            http,
            in_flight: Mutex::new(HashMap::new()),
            changes: tokio::sync::broadcast::channel(4096).0,
            hooks: Mutex::new(notify::Hooks::default()),
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
        lock(&self.shared.world)
    }

    /// The tenant id.
    pub fn tenant(&self) -> &str {
        &self.shared.config.tenant
    }

    /// Adds a user; returns its id.
    pub fn add_user(&self, spec: UserSpec) -> Result<String, SpecError> {
        self.world().directory.add_user(spec).map(|(id, _)| id)
    }

    /// Adds a group (members by UPN or id, nested groups as `group:<id>`); its id.
    pub fn add_group(&self, spec: GroupSpec) -> Result<String, SpecError> {
        let world = &mut *self.world();
        world.groups.add_group(&world.directory, spec)
    }

    /// Adds (`true`) or removes a group's member (a UPN, an id or `group:<id>`).
    pub fn change_member(&self, group: &str, member: &str, add: bool) -> Result<(), SpecError> {
        let world = &mut *self.world();
        world
            .groups
            .change_member(&world.directory, group, member, add)
    }

    /// Deletes a group.
    pub fn delete_group(&self, group: &str) -> Result<(), SpecError> {
        self.world().groups.delete_group(group)
    }

    /// Sets a user's directory attributes (mail, phones, department, enabled …).
    pub fn set_profile(&self, user: &str, profile: Profile) -> Result<(), SpecError> {
        let world = &mut *self.world();
        world.groups.set_profile(&world.directory, user, profile)
    }

    /// Deletes a user from the directory (their mailbox stays for calendar reads).
    pub fn delete_directory_user(&self, user: &str) -> Result<(), SpecError> {
        let world = &mut *self.world();
        world.groups.delete_user(&world.directory, user)
    }

    /// Expires every directory delta token issued so far (`syncStateNotFound`).
    pub fn expire_directory_deltas(&self) {
        let mut world = self.world();
        let head = world.groups.head();
        world.groups.expired_before = Some(head);
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

    /// Sets a mailbox's automatic replies (there are no notifications for them, as in
    /// Graph).
    pub fn set_automatic_replies(
        &self,
        user: &str,
        spec: AutoRepliesSpec,
    ) -> Result<(), SpecError> {
        if !["disabled", "alwaysEnabled", "scheduled"].contains(&spec.status.as_str()) {
            return Err(SpecError::Invalid(format!("status `{}`", spec.status)));
        }
        self.world().directory.user_mut(user)?.automatic_replies = spec;
        Ok(())
    }

    /// A mailbox's automatic replies as set.
    pub fn automatic_replies(&self, user: &str) -> Result<AutoRepliesSpec, SpecError> {
        Ok(self.world().directory.user(user)?.automatic_replies.clone())
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
