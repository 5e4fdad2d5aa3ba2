//! Listening to the companies' Asterisk managers for "I'm back" and "extend" from the
//! phone and for calls: each active AMI target is also listened to for the dialplan's
//! `UserEvent`s, which become the person's phone override as a signed PBX event does,
//! and for the phones' states, whose calls are shown in Teams. The listeners
//! follow the stored targets (looked at every minute), reconnect after a growing pause,
//! and stop with the service. Every node listens; an event heard by several is taken
//! once (its call's id is the event id).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use kalsync_engine::CancellationToken;
use kalsync_store::{CompanyId, Store, TargetConfig, TargetId};
use kalsync_target_ami::{AmiTarget, PhoneSays, PhoneWord};
use kalsync_web::ApiError;
use kalsync_web::api::phone::{PhoneAction, PhoneHooks, Who, phone_event};
use secrecy::ExposeSecret as _;

/// How often the stored targets are looked at.
const LOOK_EVERY: Duration = Duration::from_secs(60);
/// The first pause before connecting again; it doubles up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_secs(5);
/// The longest pause between connections.
const LONGEST_PAUSE: Duration = Duration::from_secs(300);
/// The most phones whose call state one listener remembers.
const MAX_PHONES: usize = 20_000;

/// The listeners.
pub(crate) struct AmiListeners {
    store: Arc<dyn Store>,
    outbound: kalsync_outbound::OutboundPolicy,
    hooks: PhoneHooks,
}

/// A running listener and what it was started with (a changed target starts again).
struct Running {
    with: String,
    task: tokio::task::JoinHandle<()>,
}

impl AmiListeners {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        outbound: kalsync_outbound::OutboundPolicy,
        hooks: PhoneHooks,
    ) -> AmiListeners {
        AmiListeners {
            store,
            outbound,
            hooks,
        }
    }

    /// Runs until `stop`: one listener per active AMI target.
    pub(crate) async fn run(self, stop: CancellationToken) {
        let mut running: HashMap<TargetId, Running> = HashMap::new();
        loop {
            self.step(&mut running, &stop).await;
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(LOOK_EVERY) => {}
            }
        }
        for (_, r) in running.drain() {
            let _ = r.task.await;
        }
    }

    /// One look at the stored targets: listeners start for new ones and stop for gone,
    /// inactive or changed ones.
    async fn step(&self, running: &mut HashMap<TargetId, Running>, stop: &CancellationToken) {
        let mut wanted: HashMap<TargetId, (CompanyId, String, AmiTarget)> = HashMap::new();
        let companies = match self.store.companies().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "the AMI listeners cannot read the companies");
                return;
            }
        };
        for company in companies {
            let Ok(targets) = self.store.targets(company.id).await else {
                continue;
            };
            for t in targets.into_iter().filter(|t| t.active) {
                if let TargetConfig::Ami {
                    host,
                    port,
                    username,
                    secret,
                    announcement,
                } = &t.config
                {
                    // What the listener was started with, to see a change (kept in
                    // memory only, as the target itself is).
                    let with = format!(
                        "{host}\n{port}\n{username}\n{}\n{announcement}",
                        secret.expose_secret()
                    );
                    let target = AmiTarget::new(
                        host,
                        *port,
                        username,
                        secret.clone(),
                        announcement,
                        self.outbound.clone(),
                    );
                    wanted.insert(t.id, (company.id, with, target));
                }
            }
        }
        running.retain(|id, r| {
            let keep =
                wanted.get(id).is_some_and(|(_, with, _)| *with == r.with) && !r.task.is_finished();
            if !keep {
                r.task.abort();
            }
            keep
        });
        for (id, (company, with, target)) in wanted {
            if running.contains_key(&id) {
                continue;
            }
            let task = tokio::spawn(listen(
                self.store.clone(),
                self.hooks.clone(),
                company,
                id,
                target,
                stop.clone(),
            ));
            running.insert(id, Running { with, task });
        }
    }
}

/// Listens to one manager until `stop`, connecting again after a growing pause.
async fn listen(
    store: Arc<dyn Store>,
    hooks: PhoneHooks,
    company: CompanyId,
    id: TargetId,
    target: AmiTarget,
    stop: CancellationToken,
) {
    let mut pause = FIRST_PAUSE;
    // Each phone's last call state: only a change is passed on (a call shows as
    // several state events).
    let mut calls: HashMap<String, bool> = HashMap::new();
    loop {
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let started = tokio::time::Instant::now();
        let listening = target.listen(tx);
        tokio::pin!(listening);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                ended = &mut listening => {
                    if let Err(e) = ended {
                        tracing::info!(%company, target = %id, error = %e, "the AMI listener lost its manager; it connects again");
                    }
                    break;
                }
                Some(word) = rx.recv() => heard(&store, &hooks, &mut calls, company, id, word).await,
            }
        }
        while let Ok(word) = rx.try_recv() {
            heard(&store, &hooks, &mut calls, company, id, word).await;
        }
        if started.elapsed() > LONGEST_PAUSE {
            pause = FIRST_PAUSE;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// Does what was heard: the person's phone override or a call shown in Teams, as a
/// signed PBX event would; a phone's state only when it changed (`calls`).
async fn heard(
    store: &Arc<dyn Store>,
    hooks: &PhoneHooks,
    calls: &mut HashMap<String, bool>,
    company: CompanyId,
    target: TargetId,
    word: Result<PhoneWord, String>,
) {
    let word = match word {
        Ok(w) => w,
        Err(why) => {
            tracing::warn!(%company, %target, why, "a phone event from the PBX is malformed: nothing changed");
            return;
        }
    };
    let action = match word.says {
        PhoneSays::Back => PhoneAction::Back,
        PhoneSays::Extend(m) => PhoneAction::ExtendBy(m),
        PhoneSays::Call(now) => {
            if hooks.teams.is_none() {
                return;
            }
            if calls.len() >= MAX_PHONES && !calls.contains_key(&word.exten) {
                // A manager naming ever more phones: start over rather than grow.
                calls.clear();
            }
            // The first state heard of a phone counts only as a call start.
            let before = calls.insert(word.exten.clone(), now);
            if before == Some(now) || (before.is_none() && !now) {
                return;
            }
            // Shown in Teams on its own task: Graph never holds the listener up.
            let (store, hooks) = (store.clone(), hooks.clone());
            tokio::spawn(async move {
                let who = Who::Extension(word.exten.clone());
                match phone_event(
                    store.as_ref(),
                    &hooks,
                    company,
                    &who,
                    &PhoneAction::Call(now),
                    Timestamp::now(),
                    None,
                )
                .await
                {
                    Ok(done) => {
                        tracing::debug!(%company, user = done.user, action = done.action, teams = ?done.teams, "a call from the PBX")
                    }
                    Err(e) => {
                        tracing::info!(%company, exten = word.exten, answer = %e, "a call from the PBX was not shown in Teams")
                    }
                }
            });
            return;
        }
    };
    let event = word.key.as_ref().map(|k| format!("ami:{target}:{k}"));
    match phone_event(
        store.as_ref(),
        hooks,
        company,
        &Who::Extension(word.exten.clone()),
        &action,
        Timestamp::now(),
        event.as_deref(),
    )
    .await
    {
        Ok(done) => {
            tracing::info!(%company, user = done.user, action = done.action, until = ?done.until, teams = ?done.teams, "the phone said so")
        }
        Err(e @ (ApiError::Conflict(_) | ApiError::NotFound(_) | ApiError::Invalid { .. })) => {
            tracing::info!(%company, exten = word.exten, answer = %e, "a phone event changed nothing")
        }
        Err(e) => {
            tracing::warn!(%company, exten = word.exten, error = %e, "a phone event could not be taken")
        }
    }
}
