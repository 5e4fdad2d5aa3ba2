//! Microsoft Graph change notifications (SPEC §4.1): one subscription per user on its
//! events, created and renewed well before expiry, recreated after `subscriptionRemoved`,
//! deleted when its user is gone; the endpoint Graph POSTs to, which answers the
//! validation handshake, checks `clientState` on every notification and asks the
//! engine for a re-read of the user.
//!
//! A subscription's id, expiry and `clientState` (sealed) live in the user's sync state,
//! so any node can take notifications and a restart keeps them.
//!
//! A subscription reports changes from when it exists, so every path that makes one —
//! a user's first, one Graph removed (`subscriptionRemoved`), one a renewal found gone —
//! stores it at once (before the next is made) and then reads its user
//! ([`Engine::subscribed`]); a removed one is not read before it is made again. Graph may
//! notify before its `201 Created` for the subscription is even read: each `clientState`
//! names its user under the service's key ([`SecretBox::mint_bound_token`]), so such a
//! notification finds its user on any node without the id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use kalsync_engine::Engine;
use kalsync_graph::notifications::{self, LifecycleEvent, Notification};
use kalsync_graph::{GraphClient, GraphError, NewSubscription};
use kalsync_sources::Connections;
use kalsync_store::{InstanceId, SecretBox, Store, UserId};

/// The sync-state key of a user's Graph subscription (id, expiry, sealed clientState).
const GRAPH_SUBSCRIPTION: &str = "graph_subscription";
/// The sync-state key naming the user's subscription Graph last said it removed: one
/// removed before its maker stored it (its `201 Created` not yet read) is stored all the
/// same, and must not be believed in.
const GRAPH_REMOVED: &str = "graph_subscription_removed";
/// What a `clientState` is minted for ([`SecretBox::mint_bound_token`], or
/// [`SecretBox::mint_token`] before they named their user): each is random, and the
/// endpoint recognises one of its own before it looks anything up.
const CLIENT_STATE: &str = "graph-client-state";
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

/// Subscriptions are asked for this long…
const LIFETIME: SignedDuration = SignedDuration::from_hours(72);
/// …and renewed when less than this is left.
const RENEW_BEFORE: SignedDuration = SignedDuration::from_hours(24);

#[derive(Clone)]
struct Registered {
    user: UserId,
    client_state: SecretString,
    /// The instance whose client keeps the subscription: `None` for one only looked up
    /// to check a notification.
    keeper: Option<(InstanceId, GraphClient)>,
}

/// The subscriptions of this node's Graph instances.
pub struct Subscriptions {
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    secrets: SecretBox,
    connections: Arc<Connections>,
    notification_url: url::Url,
    lifecycle_url: url::Url,
    registry: Mutex<HashMap<String, Registered>>,
    /// Subscriptions Graph asked to reauthorise: renewed on the next pass.
    reauthorize: Mutex<std::collections::HashSet<String>>,
    wake: tokio::sync::Notify,
    /// Refused notification items, logged as one summary now and then.
    refused: crate::logs::Tally,
}

/// What one maintenance pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Maintenance {
    /// New subscriptions.
    pub created: usize,
    /// Renewed.
    pub renewed: usize,
    /// Deleted (user gone).
    pub deleted: usize,
    /// Failed (logged; retried next pass).
    pub failed: usize,
}

impl Subscriptions {
    /// Subscriptions whose notifications come to `public_url`.
    pub fn new(
        store: Arc<dyn Store>,
        engine: Arc<Engine>,
        secrets: SecretBox,
        connections: Arc<Connections>,
        public_url: &url::Url,
    ) -> Result<Arc<Self>, url::ParseError> {
        Ok(Arc::new(Subscriptions {
            store,
            engine,
            secrets,
            connections,
            notification_url: public_url.join("notifications/graph")?,
            lifecycle_url: public_url.join("notifications/graph/lifecycle")?,
            registry: Mutex::new(HashMap::new()),
            reauthorize: Mutex::new(std::collections::HashSet::new()),
            wake: tokio::sync::Notify::new(),
            refused: crate::logs::Tally::new("notification items were refused"),
        }))
    }

    /// The instance's Graph client (its one connection's); EWS instances are polled
    /// or streamed instead.
    fn client(&self, instance: &kalsync_store::Instance) -> Option<GraphClient> {
        self.connections.of(instance).ok()?.graph().cloned()
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<String, Registered>> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The subscriptions this node knows.
    pub fn known(&self) -> usize {
        self.registry().len()
    }

    /// One pass: every user of every active Graph instance gets a subscription, ones
    /// close to expiry are renewed, those of removed users deleted.
    pub async fn maintain(&self, now: Timestamp) -> Maintenance {
        let mut done = Maintenance::default();
        let Ok(instances) = self.store.active_instances().await else {
            return done;
        };
        let mut alive: HashMap<String, ()> = HashMap::new();
        // Subscriptions of users other nodes hold: not this node's to delete.
        let mut elsewhere = std::collections::HashSet::new();
        let mut unlisted = std::collections::HashSet::new();
        for instance in instances {
            let Some(client) = self.client(&instance) else {
                continue;
            };
            let Ok(users) = self.store.users(instance.id).await else {
                // Not listed this pass: its subscriptions are kept as they are.
                unlisted.insert(instance.id);
                continue;
            };
            for user in users {
                // Each node keeps the subscriptions of the users it holds.
                if !self.engine.holds(user.id) {
                    if let Some(id) = user
                        .sync_state
                        .0
                        .get(GRAPH_SUBSCRIPTION)
                        .and_then(|s| s.get("id"))
                        .and_then(|v| v.as_str())
                    {
                        elsewhere.insert(id.to_owned());
                    }
                    continue;
                }
                let state = user.sync_state.0.get(GRAPH_SUBSCRIPTION).cloned();
                let removed = user
                    .sync_state
                    .0
                    .get(GRAPH_REMOVED)
                    .and_then(|v| v.as_str());
                let id = state
                    .as_ref()
                    .and_then(|s| s.get("id"))
                    .and_then(|v| v.as_str())
                    .filter(|id| Some(*id) != removed)
                    .map(str::to_owned);
                let expires = state
                    .as_ref()
                    .and_then(|s| s.get("expires"))
                    .and_then(|v| v.as_str())
                    .and_then(|t| t.parse::<Timestamp>().ok());
                // A clientState this key did not mint (made before they were minted, or
                // under another master key) cannot pass the endpoint's first check: the
                // subscription is made anew.
                let sealed = state
                    .as_ref()
                    .and_then(|s| s.get("client_state"))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
                    .filter(|sealed| {
                        self.secrets
                            .open(sealed)
                            .is_ok_and(|c| self.is_ours(c.expose_secret()))
                    });
                let result = match (id, expires, sealed) {
                    (Some(id), Some(expires), Some(sealed)) => {
                        let Ok(client_state) = self.secrets.open(&sealed) else {
                            done.failed += 1;
                            continue;
                        };
                        self.registry().insert(
                            id.clone(),
                            Registered {
                                user: user.id,
                                client_state,
                                keeper: Some((instance.id, client.clone())),
                            },
                        );
                        alive.insert(id.clone(), ());
                        self.engine.notified(user.id, true);
                        let asked = self
                            .reauthorize
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&id);
                        if expires.duration_since(now) > RENEW_BEFORE && !asked {
                            continue;
                        }
                        match client.renew_subscription(&id, now + LIFETIME).await {
                            Ok(s) => {
                                done.renewed += 1;
                                self.remember(
                                    user.id,
                                    &s.id,
                                    s.expires().unwrap_or(now + LIFETIME),
                                    &sealed,
                                )
                                .await
                            }
                            Err(GraphError::NotFound(_)) => {
                                self.create(
                                    (instance.id, &client),
                                    user.id,
                                    &user.email.to_string(),
                                    now,
                                    &mut done,
                                    &mut alive,
                                )
                                .await
                            }
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    _ => {
                        self.create(
                            (instance.id, &client),
                            user.id,
                            &user.email.to_string(),
                            now,
                            &mut done,
                            &mut alive,
                        )
                        .await
                    }
                };
                if let Err(e) = result {
                    done.failed += 1;
                    tracing::warn!(user = %user.id, instance = %instance.id, error = %e, "cannot subscribe to the mailbox; it is polled meanwhile");
                    // Without a subscription: read now, polled until one is made.
                    self.engine.notified(user.id, false);
                    self.engine.mark_dirty(user.id, Timestamp::now());
                }
            }
        }
        // Judged once every instance is listed: subscriptions of users who are gone (or
        // of instances no longer active) are deleted with their instance's client; those
        // of users another node took (a lease moved) are only forgotten here — the
        // holder uses them.
        let gone: Vec<(String, Option<GraphClient>)> = self
            .registry()
            .iter()
            .filter(|(id, r)| {
                !alive.contains_key(*id)
                    && !r
                        .keeper
                        .as_ref()
                        .is_some_and(|(instance, _)| unlisted.contains(instance))
            })
            .map(|(id, r)| (id.clone(), r.keeper.as_ref().map(|(_, c)| c.clone())))
            .collect();
        for (id, client) in gone {
            if !elsewhere.contains(&id)
                && let Some(client) = client
                && client.delete_subscription(&id).await.is_ok()
            {
                done.deleted += 1;
            }
            self.registry().remove(&id);
        }
        done
    }

    async fn create(
        &self,
        (instance, client): (InstanceId, &GraphClient),
        user: UserId,
        mailbox: &str,
        now: Timestamp,
        done: &mut Maintenance,
        alive: &mut HashMap<String, ()>,
    ) -> Result<(), String> {
        let client_state = SecretString::from(
            self.secrets
                .mint_bound_token(CLIENT_STATE, user.0.as_bytes()),
        );
        let created = client
            .create_subscription(&NewSubscription {
                user: mailbox.to_owned(),
                notification_url: self.notification_url.clone(),
                lifecycle_url: Some(self.lifecycle_url.clone()),
                client_state: client_state.clone(),
                expires: now + LIFETIME,
            })
            .await
            .map_err(|e| e.to_string())?;
        let sealed = self.secrets.seal(&client_state);
        self.registry().insert(
            created.id.clone(),
            Registered {
                user,
                client_state,
                keeper: Some((instance, client.clone())),
            },
        );
        alive.insert(created.id.clone(), ());
        done.created += 1;
        // Stored before the next subscription is made, then the user read: what changed
        // before the subscription existed is in the read.
        self.remember(
            user,
            &created.id,
            created.expires().unwrap_or(now + LIFETIME),
            &sealed,
        )
        .await?;
        self.engine.subscribed(user, Timestamp::now()).await;
        Ok(())
    }

    /// Whether a `clientState` is one this service minted.
    fn is_ours(&self, client_state: &str) -> bool {
        self.secrets.is_minted(CLIENT_STATE, client_state)
            || self
                .secrets
                .bound_subject(CLIENT_STATE, client_state)
                .is_some()
    }

    /// The user a `clientState` names, if it is one this service minted naming one.
    fn named_by(&self, client_state: &str) -> Option<Registered> {
        let subject = self.secrets.bound_subject(CLIENT_STATE, client_state)?;
        Some(Registered {
            user: UserId(uuid::Uuid::from_bytes(subject)),
            client_state: SecretString::from(client_state.to_owned()),
            keeper: None,
        })
    }

    async fn remember(
        &self,
        user: UserId,
        id: &str,
        expires: Timestamp,
        sealed_state: &str,
    ) -> Result<(), String> {
        self.store
            .set_subscription(user, Some(id))
            .await
            .map_err(|e| e.to_string())?;
        let state = json!({"id": id, "expires": expires.to_string(), "client_state": sealed_state});
        self.store
            .set_sync_key(user, GRAPH_SUBSCRIPTION, Some(&state))
            .await
            .map_err(|e| e.to_string())
    }

    /// Forgets a subscription Graph removed, here and in the store (when the store
    /// still names it), and wakes the pass that makes it again. The user is told it was
    /// removed: its maker may not have stored it yet (Graph can remove a subscription
    /// before its `201 Created` is read), and stores it after.
    async fn forget(&self, subscription: &str, user: UserId) {
        self.registry().remove(subscription);
        if let Err(e) = self
            .store
            .set_sync_key(user, GRAPH_REMOVED, Some(&json!(subscription)))
            .await
        {
            tracing::warn!(user = %user, error = %e, "cannot record a removed subscription; it is made again when it is renewed");
        }
        if let Ok(Some(user)) = self.store.user_by_subscription(subscription).await {
            let _ = self
                .store
                .set_sync_key(user.id, GRAPH_SUBSCRIPTION, None)
                .await;
            let _ = self.store.set_subscription(user.id, None).await;
        }
        self.wake.notify_one();
    }

    /// A subscription another node made: its user and `clientState` from the store.
    async fn look_up(&self, subscription: &str) -> Option<Registered> {
        let user = self.store.user_by_subscription(subscription).await.ok()??;
        let sealed = user
            .sync_state
            .0
            .get(GRAPH_SUBSCRIPTION)?
            .get("client_state")?
            .as_str()?
            .to_owned();
        let client_state = self.secrets.open(&sealed).ok()?;
        Some(Registered {
            user: user.id,
            client_state,
            keeper: None,
        })
    }

    /// Handles one POST from Graph. It may name users another node holds: their
    /// `clientState` comes from the store, and the holder is asked to read.
    ///
    /// What anyone on the internet can send here costs little: an item whose
    /// `clientState` this service did not mint is refused before any look-up, each
    /// subscription is looked up once per POST, and refusals are counted into one log
    /// line now and then, never a line per item.
    pub async fn receive(&self, query: Option<&str>, body: &[u8]) -> Response {
        let mut known: HashMap<String, Registered> = HashMap::new();
        if notifications::validation_token(query).is_none()
            && let Ok(batch) = notifications::parse(body)
        {
            let ours: std::collections::BTreeMap<&str, &str> = batch
                .notifications
                .iter()
                .filter_map(|n| Some((n.subscription_id(), n.client_state()?)))
                .filter(|(_, c)| self.is_ours(c))
                .collect();
            for (id, client_state) in ours {
                let entry = self.registry().get(id).cloned();
                let entry = match entry {
                    Some(e) => Some(e),
                    None => match self.look_up(id).await {
                        Some(e) => Some(e),
                        // Not stored (yet): a subscription being made, its 201 not read
                        // — its clientState names the user.
                        None => self.named_by(client_state),
                    },
                };
                if let Some(e) = entry {
                    known.insert(id.to_owned(), e);
                }
            }
        }
        let reception = notifications::receive(query, body, |id| {
            known
                .get(id)
                .map(|r| r.client_state.expose_secret().to_owned())
        });
        if !reception.rejected.is_empty() {
            self.refused
                .count(reception.rejected.len(), &reception.rejected[0]);
        }
        let now = Timestamp::now();
        let mut asked = std::collections::HashSet::new();
        for n in &reception.accepted {
            let Some(user) = known.get(n.subscription_id()).map(|r| r.user) else {
                continue;
            };
            tracing::debug!(
                subscription = n.subscription_id(),
                user = %user,
                held = self.engine.holds(user),
                lifecycle = matches!(n, Notification::Lifecycle { .. }),
                "graph notification"
            );
            if let Notification::Lifecycle {
                event: LifecycleEvent::SubscriptionRemoved,
                subscription_id,
                ..
            } = n
            {
                // Forgotten in the store by whichever node hears it; the holder makes it
                // again at its next pass and reads the user after — a read now, before
                // the new subscription, could miss a change.
                self.forget(subscription_id, user).await;
                if self.engine.holds(user) {
                    self.engine.notified(user, false);
                } else if asked.insert(user)
                    && let Err(e) = self.store.request_sync(user).await
                {
                    tracing::warn!(user = %user, error = %e, "cannot pass a notification on to the node that holds the user");
                }
                continue;
            }
            if !self.engine.holds(user) {
                if asked.insert(user)
                    && let Err(e) = self.store.request_sync(user).await
                {
                    tracing::warn!(user = %user, error = %e, "cannot pass a notification on to the node that holds the user");
                }
                continue;
            }
            match n {
                Notification::Change { .. }
                | Notification::Lifecycle {
                    event: LifecycleEvent::Missed,
                    ..
                } => self.engine.mark_dirty(user, now),
                Notification::Lifecycle {
                    event: LifecycleEvent::SubscriptionRemoved,
                    ..
                } => {}
                Notification::Lifecycle {
                    event: LifecycleEvent::ReauthorizationRequired,
                    subscription_id,
                    ..
                } => {
                    // Renewing reauthorises; the pass it wakes does it.
                    self.reauthorize
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(subscription_id.clone());
                    self.wake.notify_one();
                }
            }
        }
        let status = StatusCode::from_u16(reception.status).unwrap_or(StatusCode::BAD_REQUEST);
        (
            status,
            [("content-type", "text/plain; charset=utf-8")],
            reception.body,
        )
            .into_response()
    }

    /// Keeps subscriptions alive until `stop` is cancelled: a pass at start, then every
    /// minute (a subscription another node heard removed is made again by then) or when
    /// a lifecycle event asks.
    pub async fn run(self: Arc<Self>, stop: kalsync_engine::CancellationToken) {
        let mut held = self.engine.held_changes();
        loop {
            let pass = self.maintain(Timestamp::now()).await;
            if pass != Maintenance::default() {
                tracing::info!(
                    created = pass.created,
                    renewed = pass.renewed,
                    deleted = pass.deleted,
                    failed = pass.failed,
                    "subscriptions maintained"
                );
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.wake.notified() => {}
                _ = held.changed() => {}
                () = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
            }
        }
    }
}

/// The endpoint's handler.
pub(crate) async fn endpoint(
    State(service): State<crate::Service>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    match &service.subscriptions {
        Some(s) => s.receive(query.as_deref(), &body).await,
        None => (
            StatusCode::NOT_FOUND,
            "notifications are off: no public_url is set",
        )
            .into_response(),
    }
}
