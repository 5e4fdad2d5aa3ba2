//! The Teams worker: a loop around one step that polls, every few seconds, the Teams
//! presence of each instance that reads it and is due (one node a round, decided in
//! the store), until the stop; and PBX calls shown in Teams for the phone's events.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kalsync_store::{InstanceId, Store};
use kalsync_teams::Teams;

/// How often the worker looks for instances due.
const LOOK_EVERY: Duration = Duration::from_secs(2);
/// The most instances polled at once.
const AT_ONCE: usize = 4;

/// Runs the step until `stop`.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    teams: Teams,
    stop: kalsync_engine::CancellationToken,
) {
    let mut next: HashMap<InstanceId, Timestamp> = HashMap::new();
    loop {
        step(store.as_ref(), &teams, &mut next, Timestamp::now()).await;
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(LOOK_EVERY) => {}
        }
    }
}

/// One look at `now`: polls the instances due (reading Teams, or once after it was
/// switched off), and notes when each is due next.
pub(crate) async fn step(
    store: &dyn Store,
    teams: &Teams,
    next: &mut HashMap<InstanceId, Timestamp>,
    now: Timestamp,
) {
    let companies = match store.companies().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "companies cannot be read for Teams presence");
            return;
        }
    };
    let mut due = Vec::new();
    for company in companies {
        let Ok(instances) = store.instances(company.id).await else {
            continue;
        };
        for instance in instances {
            if !instance.active || !instance.settings.teams.read {
                // Once after it stops reading: what Teams put on the PBX is cleared.
                if next.remove(&instance.id).is_some() {
                    due.push(instance);
                }
                continue;
            }
            if next.get(&instance.id).is_none_or(|t| *t <= now) {
                let every = i64::from(instance.settings.teams.poll_seconds.max(1));
                next.insert(instance.id, now + SignedDuration::from_secs(every));
                due.push(instance);
            }
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(AT_ONCE));
    for instance in due {
        let teams = teams.clone();
        let gate = gate.clone();
        tasks.spawn(async move {
            let _permit = gate.acquire().await;
            match teams.poll(&instance, now).await {
                Ok(p) if p.took => tracing::debug!(instance = %instance.id, read = p.read, changed = p.changed, requests = p.requests, "Teams presence read"),
                Ok(_) => {}
                Err(e) => tracing::warn!(instance = %instance.id, error = %e, "Teams presence cannot be read"),
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// PBX calls shown in Teams, for the phone's events (signed or over AMI).
pub(crate) struct Calls(pub(crate) Teams);

impl kalsync_web::PbxCalls for Calls {
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
