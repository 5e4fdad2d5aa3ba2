//! The Teams worker: a loop around one step that starts, every few seconds, the Teams
//! poll of each Microsoft 365 instance that is due (one node a round, decided in the
//! store; each on its own task), until the stop; and PBX calls shown in Teams for the
//! phone's events.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kalsync_store::{InstanceId, Store};
use kalsync_teams::Teams;
use kalsync_teams::poll::Polled;

/// How often the worker looks for instances due.
const LOOK_EVERY: Duration = Duration::from_secs(2);
/// The most instances polled at once.
const AT_ONCE: usize = 4;

/// How often an instance that does not read Teams is looked at (its long absence
/// sessions renewed, anything Teams left on the PBX cleared).
const QUIET_EVERY: SignedDuration = SignedDuration::from_mins(5);
/// How long Teams may fail to be read before what it put on the PBX is cleared (an
/// expired secret, a withdrawn permission: the PBX must not show a call for ever).
const GIVE_UP_AFTER: SignedDuration = SignedDuration::from_mins(10);

/// Runs the step until `stop`.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    teams: Teams,
    stop: kalsync_engine::CancellationToken,
) {
    let mut rounds = Rounds::default();
    loop {
        step(store.as_ref(), &teams, &mut rounds, Timestamp::now()).await;
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(LOOK_EVERY) => {}
        }
    }
    for (_, task) in rounds.running.drain() {
        task.abort();
    }
}

/// What the worker keeps between looks: when each instance is due next, the polls
/// running (each on its own task: a slow or throttled tenant holds up only its own),
/// since when each has failed, and which switched-off instances were cleared.
pub(crate) struct Rounds {
    next: HashMap<InstanceId, Timestamp>,
    running: HashMap<InstanceId, tokio::task::JoinHandle<Result<Polled, String>>>,
    failing: HashMap<InstanceId, Timestamp>,
    cleared: HashSet<InstanceId>,
    gate: Arc<tokio::sync::Semaphore>,
}

impl Default for Rounds {
    fn default() -> Self {
        Rounds {
            next: HashMap::new(),
            running: HashMap::new(),
            failing: HashMap::new(),
            cleared: HashSet::new(),
            gate: Arc::new(tokio::sync::Semaphore::new(AT_ONCE)),
        }
    }
}

/// One look at `now`: takes in the polls that finished, and starts those due — each
/// Microsoft 365 instance every `[teams] poll_seconds` when it reads Teams, every five
/// minutes otherwise, and a switched-off one once.
pub(crate) async fn step(store: &dyn Store, teams: &Teams, rounds: &mut Rounds, now: Timestamp) {
    let finished: Vec<InstanceId> = rounds
        .running
        .iter()
        .filter(|(_, t)| t.is_finished())
        .map(|(id, _)| *id)
        .collect();
    for id in finished {
        let Some(task) = rounds.running.remove(&id) else {
            continue;
        };
        match task.await {
            Ok(Ok(p)) => {
                rounds.failing.remove(&id);
                if p.took {
                    tracing::debug!(instance = %id, read = p.read, changed = p.changed, requests = p.requests, "Teams presence read");
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(instance = %id, error = %e, "Teams presence cannot be read");
                rounds.failing.entry(id).or_insert(now);
            }
            Err(e) => tracing::error!(instance = %id, error = %e, "a Teams poll failed"),
        }
    }
    let companies = match store.companies().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "companies cannot be read for Teams presence");
            return;
        }
    };
    for company in companies {
        let Ok(instances) = store.instances(company.id).await else {
            continue;
        };
        for instance in instances {
            if !matches!(instance.source, kalsync_store::SourceConfig::Graph { .. })
                || rounds.running.contains_key(&instance.id)
            {
                continue;
            }
            if !instance.active {
                rounds.next.remove(&instance.id);
                if !rounds.cleared.insert(instance.id) {
                    continue;
                }
            } else {
                rounds.cleared.remove(&instance.id);
                if rounds.next.get(&instance.id).is_some_and(|t| *t > now) {
                    continue;
                }
                let every = if instance.settings.teams.read {
                    SignedDuration::from_secs(i64::from(
                        instance.settings.teams.poll_seconds.max(1),
                    ))
                } else {
                    QUIET_EVERY
                };
                rounds.next.insert(instance.id, now + every);
            }
            let given_up = rounds
                .failing
                .get(&instance.id)
                .is_some_and(|since| now.duration_since(*since) > GIVE_UP_AFTER);
            let (teams, gate, id) = (teams.clone(), rounds.gate.clone(), instance.id);
            let task = tokio::spawn(async move {
                let _permit = gate.acquire().await;
                if given_up {
                    // Still failing after the first poll: what Teams put on the PBX goes
                    // until it can be read again.
                    let _ = teams.clear(&instance).await;
                }
                teams.poll(&instance, now).await
            });
            rounds.running.insert(id, task);
        }
    }
}

/// Teams Presence for the web: PBX calls shown in Teams (the phone's events, signed or
/// over AMI) and the tenants' figures.
pub(crate) struct Calls(pub(crate) Teams);

impl kalsync_web::TeamsPresence for Calls {
    fn figures(&self, tenant: &str) -> kalsync_web::TeamsFigures {
        let c = self.0.limiter().counts_of(tenant);
        kalsync_web::TeamsFigures {
            requests: c.granted,
            waits: c.waited,
            throttled: c.throttled,
            last_throttled: c.last_throttled,
        }
    }

    fn call(
        &self,
        user: kalsync_store::User,
        started: bool,
        now: Timestamp,
    ) -> kalsync_web::Hook<'_, Result<bool, String>> {
        Box::pin(async move {
            let shown = if started {
                self.0.call_started(&user, now).await?
            } else {
                self.0.call_ended(&user, now).await?
            };
            Ok(shown == kalsync_teams::calls::CallShown::Done)
        })
    }
}
