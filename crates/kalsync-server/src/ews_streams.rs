//! EWS change notifications (SPEC §4.2): each user this node holds on an EWS instance
//! with impersonation and Exchange 2010 SP1 or later gets a streaming subscription.
//! Subscriptions are grouped — at most 200 on one connection. A group is anchored at its
//! first mailbox: each of its `Subscribe`s and its `GetStreamingEvents` carry that
//! `X-AnchorMailbox` and `X-PreferServerAffinity`, and the connection the
//! `X-BackEndOverrideCookie` the first `Subscribe` got, so all of a group's subscriptions
//! live on the back end its connection reaches. A user keeps its group; each group's
//! `GetStreamingEvents` is held open and opened again when Exchange closes it. A change
//! asks the engine to read its user again; a connection that breaks is reopened after a
//! pause and its users are read (their subscriptions still collect what happened).
//!
//! Every path that makes a subscription — the first, one Exchange lost
//! (`ErrorSubscriptionNotFound`, a mailbox server restarted), a group dissolved, a user
//! taken over from another node, `ErrorInvalidWatermark` — subscribes first and reads
//! after ([`Engine::subscribed`]): a subscription reports changes from when it exists,
//! so a change between a read and a new subscription would be in neither. A lost
//! subscription wakes the maintenance at once rather than at its next pass.
//!
//! Exchange 2007 and 2010 before SP1 have no streaming: with a public URL, their users
//! get push subscriptions instead. Exchange POSTs `SendNotification` to
//! `/notifications/ews/<token>`, where the random token names the user (stored as the
//! user's subscription, so any node can answer) and the last watermark is kept in the
//! user's sync state, so a subscription made again resumes where the last one stopped
//! (Exchange replays what happened since: no read is owed). An unknown token is answered
//! `Unsubscribe`. Exchange never says it forgot a push subscription; it only stops its
//! status pushes, every [`STATUS_MINUTES`]: one not heard from for three of them is made
//! again. Without a public URL (or where the instance says Exchange cannot reach the
//! service) pull subscriptions are asked every ten seconds. Delegate access cannot
//! subscribe: those instances are polled.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use jiff::Timestamp;
use kalsync_engine::Engine;
use kalsync_ews::request::{self, Subscription};
use kalsync_ews::{Affinity, EwsClient, response};
use kalsync_store::{InstanceId, SourceConfig, Store, UserId};

/// Subscriptions per connection (Exchange's limit for a group).
const GROUP: usize = 200;
/// How often pull subscriptions are asked for events.
const PULL_EVERY: Duration = Duration::from_secs(10);
/// How long one `GetStreamingEvents` is held (minutes; Exchange allows 1–30).
const CONNECTION_MINUTES: u32 = 30;
/// How often Exchange pushes a status to a push subscription (minutes; EWS allows 1–1440).
/// A subscription not heard from for three of them is taken as lost and made again.
pub(crate) const STATUS_MINUTES: u32 = 1;

/// One user's subscription.
#[derive(Debug, Clone)]
struct Subscribed {
    mailbox: String,
    id: String,
    /// For a pull subscription: the watermark to ask `GetEvents` from.
    pull_from: Option<String>,
    /// A push subscription: when it was made, by the monotonic clock (Exchange is heard
    /// from after that; a step of the wall clock must not put it in the future).
    pushed_since: Option<Instant>,
}

#[derive(Default)]
struct Instance {
    /// The instance's client, for pulling.
    client: Option<EwsClient>,
    subscriptions: BTreeMap<UserId, Subscribed>,
    groups: Vec<Group>,
}

/// A streaming group: its subscriptions live on its anchor's back end.
struct Group {
    /// The user whose mailbox anchors the group.
    anchor_user: UserId,
    affinity: Affinity,
    members: std::collections::BTreeSet<UserId>,
    /// The connection's task, and the membership it was started with.
    task: Option<(tokio::task::JoinHandle<()>, Vec<UserId>)>,
}

impl Group {
    fn stop(&mut self) {
        if let Some((task, _)) = self.task.take() {
            task.abort();
        }
    }
}

/// The streaming subscriptions of this node's EWS instances.
pub struct EwsStreams {
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    /// Mints the push addresses' tokens.
    secrets: kalsync_store::SecretBox,
    /// Each instance's one connection.
    connections: Arc<kalsync_sources::Connections>,
    /// Where Exchange can reach this service (push subscriptions).
    public_url: Option<url::Url>,
    instances: Mutex<HashMap<InstanceId, Instance>>,
    /// Subscription id → user, for the group tasks.
    owners: Arc<Mutex<HashMap<String, UserId>>>,
    /// A stream found subscriptions lost: the maintenance makes them again at once.
    wake: Arc<tokio::sync::Notify>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl EwsStreams {
    /// Streams for `engine`'s EWS users.
    pub fn new(
        store: Arc<dyn Store>,
        engine: Arc<Engine>,
        secrets: kalsync_store::SecretBox,
        connections: Arc<kalsync_sources::Connections>,
        public_url: Option<url::Url>,
    ) -> Arc<EwsStreams> {
        Arc::new(EwsStreams {
            store,
            engine,
            secrets,
            connections,
            public_url,
            instances: Mutex::new(HashMap::new()),
            owners: Arc::new(Mutex::new(HashMap::new())),
            wake: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// The live subscriptions.
    pub fn known(&self) -> usize {
        lock(&self.owners).len()
    }

    /// One pass: subscribe the held users that have none, forget those no longer held,
    /// and (re)start each instance's group connections when their members changed.
    pub async fn maintain(&self) -> usize {
        let Ok(instances) = self.store.active_instances().await else {
            return 0;
        };
        // This pass reads every active instance: the connections of instances removed
        // or switched off are closed here.
        let active: Vec<InstanceId> = instances.iter().map(|i| i.id).collect();
        self.connections.retain(&active);
        let mut made = 0;
        for instance in instances {
            let SourceConfig::Ews { options, .. } = &instance.source else {
                continue;
            };
            let pull = options.pull;
            let Some(client) = self
                .connections
                .of(&instance)
                .ok()
                .and_then(|c| c.ews().cloned())
            else {
                continue;
            };
            let settings = client.settings();
            if settings.access != kalsync_ews::Access::Impersonation {
                continue;
            }
            if !settings.version.has_streaming() {
                lock(&self.instances).entry(instance.id).or_default().client = Some(client.clone());
                made += self.push_or_pull(instance.id, &client, pull).await;
                continue;
            }
            let Ok(users) = self.store.users(instance.id).await else {
                continue;
            };
            let held: Vec<_> = users
                .into_iter()
                .filter(|u| self.engine.holds(u.id))
                .collect();
            let held_ids: Vec<UserId> = held.iter().map(|u| u.id).collect();
            self.prune(instance.id, &held_ids);
            let missing: Vec<_> = {
                let map = lock(&self.instances);
                let known = map.get(&instance.id);
                held.iter()
                    .filter(|u| known.is_none_or(|i| !i.subscriptions.contains_key(&u.id)))
                    .cloned()
                    .collect()
            };
            for user in missing {
                let mailbox = user.email.to_string();
                // A group with room, or a new one anchored here.
                let (index, mut affinity) = {
                    let mut map = lock(&self.instances);
                    let entry = map.entry(instance.id).or_default();
                    match entry.groups.iter().position(|g| g.members.len() < GROUP) {
                        Some(i) => (i, entry.groups[i].affinity.clone()),
                        None => {
                            entry.groups.push(Group {
                                anchor_user: user.id,
                                affinity: Affinity::new(&mailbox),
                                members: Default::default(),
                                task: None,
                            });
                            (entry.groups.len() - 1, Affinity::new(&mailbox))
                        }
                    }
                };
                match client.subscribe_streaming(&mailbox, &mut affinity).await {
                    Ok(id) => {
                        lock(&self.owners).insert(id.clone(), user.id);
                        self.record(instance.id, user.id, mailbox, id, None, None);
                        if crate::broken::read_before_subscribe() {
                            self.engine.notified(user.id, true);
                        } else {
                            self.engine.subscribed(user.id, Timestamp::now()).await;
                        }
                        let mut map = lock(&self.instances);
                        if let Some(g) = map
                            .get_mut(&instance.id)
                            .and_then(|i| i.groups.get_mut(index))
                        {
                            g.affinity.cookie = g.affinity.cookie.take().or(affinity.cookie);
                            g.members.insert(user.id);
                        }
                        made += 1;
                    }
                    Err(e) => {
                        tracing::warn!(user = %user.id, error = %e, "an EWS streaming subscription could not be made; the mailbox is polled");
                        self.unsubscribed(user.id);
                    }
                }
            }
            self.regroup(instance.id, &client);
        }
        made
    }

    /// A user left without a subscription: read now (whatever happened since the last
    /// one is read) and polled until a subscription is made again.
    fn unsubscribed(&self, user: UserId) {
        self.engine.notified(user, false);
        self.engine.mark_dirty(user, Timestamp::now());
    }

    /// Remembers a user's subscription.
    fn record(
        &self,
        instance: InstanceId,
        user: UserId,
        mailbox: String,
        id: String,
        pull_from: Option<String>,
        pushed_since: Option<Instant>,
    ) {
        lock(&self.instances)
            .entry(instance)
            .or_default()
            .subscriptions
            .insert(
                user,
                Subscribed {
                    mailbox,
                    id,
                    pull_from,
                    pushed_since,
                },
            );
    }

    /// Push subscriptions (with a public URL Exchange can reach) or pull subscriptions
    /// (without, or with `pull`) for the held users of a pre-streaming instance that
    /// have none on this node, resuming from each user's last watermark.
    async fn push_or_pull(&self, instance: InstanceId, client: &EwsClient, pull: bool) -> usize {
        let Ok(users) = self.store.users(instance).await else {
            return 0;
        };
        let mut made = 0;
        let (now, at) = (Timestamp::now(), Instant::now());
        for user in users.into_iter().filter(|u| self.engine.holds(u.id)) {
            let known = lock(&self.instances)
                .get(&instance)
                .and_then(|i| i.subscriptions.get(&user.id).cloned());
            if let Some(known) = known {
                if !push_silent(&known, &user, now, at) {
                    continue;
                }
                // Exchange stopped its status pushes: it forgot the subscription (a
                // restart, a failover). It is made again from the kept watermark.
                tracing::info!(user = %user.id, "an EWS push subscription fell silent; it is made again");
                if let Some(i) = lock(&self.instances).get_mut(&instance) {
                    i.subscriptions.remove(&user.id);
                }
            }
            let mailbox = user.email.to_string();
            let watermark = user
                .sync_state
                .0
                .get(WATERMARK)
                .and_then(|w| w.as_str())
                .map(str::to_owned);
            let push_url = match self.public_url.as_ref().filter(|_| !pull) {
                Some(base) => {
                    let token = self.secrets.mint_token(PUSH_TOKEN);
                    let mut url = base.clone();
                    let Ok(mut path) = url.path_segments_mut() else {
                        return made;
                    };
                    path.pop_if_empty().extend(["notifications", "ews", &token]);
                    drop(path);
                    // The token names the user before Exchange can push to it (it may
                    // push the events since the watermark at once).
                    if self
                        .store
                        .set_push_token(user.id, Some(&token))
                        .await
                        .is_err()
                    {
                        continue;
                    }
                    Some(url)
                }
                None => None,
            };
            let ctx = client.context(&mailbox);
            let subscribe = |watermark: Option<&str>| {
                let kind = match &push_url {
                    Some(url) => Subscription::Push {
                        url: url.as_str(),
                        status_minutes: STATUS_MINUTES,
                        watermark,
                    },
                    None => Subscription::Pull {
                        timeout_minutes: 30,
                        watermark,
                    },
                };
                request::subscribe(&ctx, &kind)
            };
            let mut answer = client
                .call(&subscribe(watermark.as_deref()), &mailbox)
                .await
                .and_then(|a| response::subscribed(&a));
            // Resumed from a watermark, Exchange replays what happened since: no read is
            // owed. Made afresh, it reports only what happens from now: read after.
            let mut resumed = watermark.is_some();
            if resumed
                && answer.as_ref().err().and_then(kalsync_ews::EwsError::code)
                    == Some("ErrorInvalidWatermark")
            {
                // Too old to resume: subscribe afresh, then read the mailbox.
                resumed = false;
                answer = client
                    .call(&subscribe(None), &mailbox)
                    .await
                    .and_then(|a| response::subscribed(&a));
            }
            match answer {
                Ok(s) => {
                    let made_at = Timestamp::now();
                    let pull_from = push_url.is_none().then(|| s.watermark.clone()).flatten();
                    let pushed_since = push_url.is_some().then(Instant::now);
                    self.record(instance, user.id, mailbox, s.id, pull_from, pushed_since);
                    if resumed {
                        self.engine.notified(user.id, true);
                    } else {
                        self.engine.subscribed(user.id, made_at).await;
                    }
                    made += 1;
                }
                Err(e) => {
                    tracing::warn!(user = %user.id, error = %e, "an EWS subscription could not be made; the mailbox is polled");
                    self.unsubscribed(user.id);
                }
            }
        }
        made
    }

    /// Forgets subscriptions a stream found lost (they are made again) and users no
    /// longer held. A group whose anchor is no longer held is dissolved: its members are
    /// subscribed again in other groups, and read after.
    fn prune(&self, instance: InstanceId, held: &[UserId]) {
        let mut map = lock(&self.instances);
        let Some(entry) = map.get_mut(&instance) else {
            return;
        };
        let mut owners = lock(&self.owners);
        for group in &mut entry.groups {
            if !held.contains(&group.anchor_user) {
                // Its members are subscribed again in this pass, then read.
                group.stop();
                for user in std::mem::take(&mut group.members) {
                    if let Some(s) = entry.subscriptions.remove(&user) {
                        owners.remove(&s.id);
                    }
                }
            }
        }
        entry.groups.retain(|g| held.contains(&g.anchor_user));
        entry.subscriptions.retain(|user, s| {
            let keep = held.contains(user) && owners.contains_key(&s.id);
            if !keep {
                owners.remove(&s.id);
            }
            keep
        });
        for group in &mut entry.groups {
            group
                .members
                .retain(|u| entry.subscriptions.contains_key(u));
        }
    }

    /// (Re)starts each group's connection when its membership changed or it ended; a
    /// group left empty is dropped.
    fn regroup(&self, instance: InstanceId, client: &EwsClient) {
        let mut map = lock(&self.instances);
        let Some(entry) = map.get_mut(&instance) else {
            return;
        };
        for group in &mut entry.groups {
            let members: Vec<UserId> = group.members.iter().copied().collect();
            let running = group
                .task
                .as_ref()
                .is_some_and(|(t, with)| !t.is_finished() && *with == members);
            if running {
                continue;
            }
            group.stop();
            if members.is_empty() {
                continue;
            }
            let subs: Vec<Subscribed> = members
                .iter()
                .filter_map(|u| entry.subscriptions.get(u).cloned())
                .collect();
            let task = tokio::spawn(hold(
                client.clone(),
                group.affinity.clone(),
                subs,
                self.engine.clone(),
                self.owners.clone(),
                self.wake.clone(),
            ));
            group.task = Some((task, members));
        }
        entry
            .groups
            .retain(|g| !g.members.is_empty() || g.task.is_some());
    }

    /// Asks every pull subscription for its events: a change marks its user for a
    /// re-read, the watermark moves on (and is kept), a lost subscription is made again
    /// on the next pass and its user read.
    pub async fn pull(&self) {
        let work: Vec<(EwsClient, UserId, Subscribed)> = lock(&self.instances)
            .values()
            .filter_map(|i| Some((i.client.clone()?, i)))
            .flat_map(|(c, i)| {
                i.subscriptions
                    .iter()
                    .filter(|(_, s)| s.pull_from.is_some())
                    .map(move |(u, s)| (c.clone(), *u, s.clone()))
            })
            .collect();
        for (client, user, sub) in work {
            let Some(mut from) = sub.pull_from.clone() else {
                continue;
            };
            let ctx = client.context(&sub.mailbox);
            for _ in 0..10 {
                let pulled = client
                    .call(&request::get_events(&ctx, &sub.id, &from), &sub.mailbox)
                    .await
                    .and_then(|a| response::pulled(&a));
                match pulled {
                    Ok(n) => {
                        if n.has_changes() {
                            self.engine.mark_dirty(user, Timestamp::now());
                        }
                        if let Some(w) = n.last_watermark() {
                            from = w.to_owned();
                        }
                        if !n.more {
                            break;
                        }
                    }
                    Err(e) => {
                        // Made again at once, from the watermark reached: Exchange
                        // replays what happened since (or, the watermark too old, it is
                        // made afresh and the mailbox read after).
                        tracing::info!(user = %user, error = %e, "an EWS pull subscription is gone; it is made again");
                        for i in lock(&self.instances).values_mut() {
                            i.subscriptions.remove(&user);
                        }
                        self.wake.notify_one();
                        break;
                    }
                }
            }
            if Some(&from) != sub.pull_from.as_ref() {
                for i in lock(&self.instances).values_mut() {
                    if let Some(s) = i.subscriptions.get_mut(&user) {
                        s.pull_from = Some(from.clone());
                    }
                }
                let _ = self
                    .store
                    .set_sync_key(user, WATERMARK, Some(&serde_json::Value::String(from)))
                    .await;
            }
        }
    }

    /// Keeps the subscriptions up until `stop`: a pass at once, then whenever the
    /// users this node holds change, and every 30 seconds; pull subscriptions are asked
    /// every 10 seconds.
    pub async fn run(self: Arc<Self>, stop: kalsync_engine::CancellationToken) {
        let mut held = self.engine.held_changes();
        let mut pulls = tokio::time::interval(PULL_EVERY);
        loop {
            let made = self.maintain().await;
            if made > 0 {
                tracing::info!(made, live = self.known(), "EWS subscriptions made");
            }
            let next_pass = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                tokio::select! {
                    () = stop.cancelled() => {
                        for (_, mut i) in lock(&self.instances).drain() {
                            for mut g in i.groups.drain(..) {
                                g.stop();
                            }
                        }
                        return;
                    }
                    _ = held.changed() => break,
                    () = self.wake.notified() => break,
                    () = tokio::time::sleep_until(next_pass) => break,
                    _ = pulls.tick() => self.pull().await,
                }
            }
        }
    }
}

/// Holds one group's connection open: opened again when Exchange closes it, after a
/// pause when it breaks. Subscriptions Exchange lost end it: the maintenance, woken,
/// makes them again and reads their users after.
async fn hold(
    client: EwsClient,
    affinity: Affinity,
    group: Vec<Subscribed>,
    engine: Arc<Engine>,
    owners: Arc<Mutex<HashMap<String, UserId>>>,
    wake: Arc<tokio::sync::Notify>,
) {
    let anchor = affinity.anchor.clone();
    let ids: Vec<&str> = group.iter().map(|s| s.id.as_str()).collect();
    let read_all = |why: &str| {
        tracing::debug!(
            anchor,
            why,
            "EWS stream: reading the group's mailboxes again"
        );
        let now = Timestamp::now();
        for s in &group {
            if let Some(user) = lock(&owners).get(&s.id).copied() {
                engine.mark_dirty(user, now);
            }
        }
    };
    let mut pause = Duration::from_secs(1);
    loop {
        let ctx = client.context(&anchor);
        let request = request::get_streaming_events(&ctx, &ids, CONNECTION_MINUTES);
        let mut stream = match client.stream(&request, &affinity).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(anchor, error = %e, "an EWS stream could not be opened");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(60));
                continue;
            }
        };
        let mut closed = false;
        while let Some(part) = stream.next().await {
            let part = match part {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(anchor, error = %e, "an EWS stream part could not be read");
                    break;
                }
            };
            pause = Duration::from_secs(1);
            let now = Timestamp::now();
            for n in &part.notifications {
                if n.has_changes() {
                    if let Some(user) = lock(&owners).get(&n.subscription).copied() {
                        engine.mark_dirty(user, now);
                    }
                }
            }
            if !part.lost.is_empty() {
                // Lost subscriptions: made again at once, their users read after.
                let broken = crate::broken::read_before_subscribe();
                for (id, _) in &part.lost {
                    let user = id.as_ref().and_then(|id| lock(&owners).remove(id));
                    if let Some(user) = user {
                        engine.notified(user, false);
                        if broken {
                            // The old order, for the harness's self-check: read now,
                            // subscribe at the next pass.
                            engine.mark_dirty(user, now);
                        }
                    }
                }
                if !broken {
                    wake.notify_one();
                }
                return;
            }
            closed |= part.closed;
        }
        if !closed {
            read_all("the connection broke");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(60));
        }
    }
}

/// Where a user's last push watermark is kept in its sync state.
const WATERMARK: &str = "ews_watermark";
/// When Exchange last pushed to the user's subscription (any node writes it).
const PUSH_HEARD: &str = "ews_push_heard";

/// Whether a push subscription fell silent: made three status periods ago or more (by
/// the monotonic clock `at`) and nothing heard from Exchange for three status periods by
/// the wall clock `now` (other nodes write when they heard; a time stamped in the future
/// is not trusted — the next push writes it again).
fn push_silent(
    known: &Subscribed,
    user: &kalsync_store::User,
    now: Timestamp,
    at: Instant,
) -> bool {
    let Some(made) = known.pushed_since else {
        return false;
    };
    let periods = Duration::from_secs(3 * 60 * u64::from(STATUS_MINUTES));
    if at.saturating_duration_since(made) <= periods {
        return false;
    }
    let heard = user
        .sync_state
        .0
        .get(PUSH_HEARD)
        .and_then(|v| v.as_str())
        .and_then(|t| t.parse::<Timestamp>().ok())
        .filter(|t| *t <= now);
    let periods = jiff::SignedDuration::from_mins(3 * i64::from(STATUS_MINUTES));
    heard.is_none_or(|t| now.duration_since(t) > periods)
}
/// What a push address's token is minted for: random per subscription, and recognised
/// as the service's own before anything is looked up.
const PUSH_TOKEN: &str = "ews-push";

/// Exchange's push: `SendNotification` for the subscription the token names. Its
/// user is read again (here, or by the node that holds it) and the watermark kept; an
/// unknown token is told `Unsubscribe`.
pub(crate) async fn push_endpoint(
    axum::extract::State(service): axum::extract::State<crate::Service>,
    axum::extract::Path(token): axum::extract::Path<String>,
    body: String,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let answer = |keep: bool| {
        (
            [(axum::http::header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            request::send_notification_result(keep),
        )
            .into_response()
    };
    if !service.secrets.is_minted(PUSH_TOKEN, &token) {
        return answer(false);
    }
    let user = match service.store.user_by_push_token(&token).await {
        Ok(Some(user)) => user,
        Ok(None) => return answer(false),
        // The store is down: keep the subscription; Exchange sends again.
        Err(_) => return answer(true),
    };
    // Only a notification that says something changed asks for a read: an empty or
    // unreadable body is no change (whoever sent it learns nothing and costs nothing).
    let notifications = match response::pushed(&body) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(user = %user.id, error = %e, "an EWS push could not be read; ignored");
            return answer(true);
        }
    };
    let mut changed = false;
    let mut watermark = None;
    for n in notifications.into_iter().flatten() {
        changed |= n.has_changes();
        watermark = n.last_watermark().map(str::to_owned).or(watermark);
    }
    let kept = |key: &str| user.sync_state.0.get(key).and_then(|v| v.as_str());
    if let Some(w) = watermark.filter(|w| kept(WATERMARK) != Some(w.as_str())) {
        let _ = service
            .store
            .set_sync_key(user.id, WATERMARK, Some(&serde_json::Value::String(w)))
            .await;
    }
    // Exchange was heard from (the holder, on whichever node, sees a silent
    // subscription by this); written at most every half minute.
    let now = Timestamp::now();
    let heard_lately = kept(PUSH_HEARD)
        .and_then(|t| t.parse::<Timestamp>().ok())
        .is_some_and(|t| t <= now && now.duration_since(t) < jiff::SignedDuration::from_secs(30));
    if !heard_lately {
        let _ = service
            .store
            .set_sync_key(
                user.id,
                PUSH_HEARD,
                Some(&serde_json::Value::String(now.to_string())),
            )
            .await;
    }
    if changed {
        if service.engine.holds(user.id) {
            service.engine.mark_dirty(user.id, Timestamp::now());
        } else {
            let _ = service.store.request_sync(user.id).await;
        }
    }
    answer(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_heard(at: Option<Timestamp>) -> kalsync_store::User {
        let mut user = kalsync_store::User {
            id: UserId::new(),
            instance: InstanceId::new(),
            email: kalsync_core::EmailAddress::parse("anna@acme.example").expect("address"),
            display_name: None,
            extension: None,
            sync_state: Default::default(),
            last_sync: None,
            last_error: None,
            sync_revision: 0,
            department: None,
            directory_key: None,
            leaving_since: None,
            created: Timestamp::UNIX_EPOCH,
        };
        if let Some(at) = at {
            user.sync_state.0 = serde_json::json!({ PUSH_HEARD: at.to_string() });
        }
        user
    }

    #[test]
    fn a_push_subscription_not_heard_from_for_three_status_periods_is_silent() {
        let made: Timestamp = "2026-12-02T08:00:00Z".parse().expect("time");
        let mins = |m: i64| made + jiff::SignedDuration::from_mins(m);
        let made_at = Instant::now();
        let after = |m: u64| made_at + Duration::from_secs(60 * m);
        let push = Subscribed {
            mailbox: "anna@acme.example".into(),
            id: "s".into(),
            pull_from: None,
            pushed_since: Some(made_at),
        };
        // Never heard: counted from when it was made.
        assert!(!push_silent(&push, &user_heard(None), mins(2), after(2)));
        assert!(push_silent(&push, &user_heard(None), mins(4), after(4)));
        // Heard lately: not silent; heard long ago: silent.
        assert!(!push_silent(
            &push,
            &user_heard(Some(mins(3))),
            mins(5),
            after(5)
        ));
        assert!(push_silent(
            &push,
            &user_heard(Some(mins(3))),
            mins(7),
            after(7)
        ));
        // Heard before it was made (a former subscription) counts from when it was made.
        assert!(!push_silent(
            &push,
            &user_heard(Some(mins(-60))),
            mins(2),
            after(2)
        ));
        // A status stamped in the future (another node's clock) is not trusted.
        assert!(push_silent(
            &push,
            &user_heard(Some(mins(60))),
            mins(4),
            after(4)
        ));
        // Streaming and pull subscriptions are never judged by pushes.
        let stream = Subscribed {
            pushed_since: None,
            ..push.clone()
        };
        assert!(!push_silent(
            &stream,
            &user_heard(None),
            mins(600),
            after(600)
        ));
    }

    #[test]
    fn a_wall_clock_step_does_not_put_off_a_silent_push_subscription() {
        // Made while the wall clock ran two minutes ahead; the clock was then set
        // right. Nothing heard since: silent three periods after it was made, as the
        // monotonic clock counts, not five (found by the convergence harness: a push
        // mailbox's change waited past the five minutes it had to settle).
        let made_at = Instant::now();
        let push = Subscribed {
            mailbox: "anna@acme.example".into(),
            id: "s".into(),
            pull_from: None,
            pushed_since: Some(made_at),
        };
        let truth: Timestamp = "2026-12-02T08:00:00Z".parse().expect("time");
        let now = truth + jiff::SignedDuration::from_secs(3 * 60 + 10);
        assert!(push_silent(
            &push,
            &user_heard(None),
            now,
            made_at + Duration::from_secs(3 * 60 + 10)
        ));
        // And a wall clock stepped far ahead does not make a fresh one silent.
        assert!(!push_silent(
            &push,
            &user_heard(None),
            truth + jiff::SignedDuration::from_hours(1),
            made_at + Duration::from_secs(60)
        ));
    }
}
