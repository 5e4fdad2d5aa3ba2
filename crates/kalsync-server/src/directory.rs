//! Katalog Synk at work: every due directory is taken by one node, read (Entra ID
//! through the instance's Graph connection), compared with the instance's users, and —
//! when the admin has turned it on — applied: joiners added (and read at once), changed
//! attributes written, leavers removed with their data after the grace period, each
//! change in the audit log. A dry run reads and plans without changing anyone. A read
//! that fails changes nothing and says why on the dashboard.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kalsync_directory::{
    Current, Directory, DirectoryError, DirectoryKind, PersonProblem, Plan, Problem, plan_with,
};
use kalsync_sources::Connections;
use kalsync_store::{
    CompanyId, DirectoryRecord, DirectoryRun, Instance, InstanceId, NewAuditEntry, NewUser, Store,
    StoreError, User, UserId, UserProfile,
};
use rand::Rng as _;

/// How often the worker looks for due directories.
const LOOK_EVERY: Duration = Duration::from_secs(20);
/// How many people's problems a run keeps for the dashboard.
const PROBLEMS_KEPT: usize = 200;
/// Who the audit log says made the changes.
const ACTOR: &str = "directory";
/// The longest one run may take; past it, it stops and changes nothing more.
const RUN_LIMIT: Duration = Duration::from_secs(10 * 60);
/// How many scheduled runs one node makes at once.
const RUNS_AT_ONCE: usize = 4;

pub use kalsync_web::DirectoryMode as Mode;

/// The directory runs' figures for `/metrics`.
#[derive(Default)]
struct Figures {
    runs: u64,
    errors: BTreeMap<&'static str, u64>,
    added: u64,
    updated: u64,
    removed: u64,
    seconds: f64,
    members: BTreeMap<InstanceId, usize>,
}

/// Runs directories.
#[derive(Clone)]
pub struct DirectorySync {
    store: Arc<dyn Store>,
    connections: Arc<Connections>,
    /// Fetches companies' PBX directories (none when its client cannot be built).
    pbx: Option<crate::pbx_directory::PbxFetcher>,
    figures: Arc<Mutex<Figures>>,
    /// One run per instance at a time on this node (the schedule's and those asked for).
    running: Arc<Mutex<HashMap<InstanceId, Arc<tokio::sync::Mutex<()>>>>>,
}

/// A Graph client for an Entra ID directory's own app (an Exchange instance in a hybrid
/// company), sending only where `outbound` permits.
pub(crate) fn entra_client(
    app: &kalsync_directory::EntraApp,
    secret: secrecy::SecretString,
    outbound: &kalsync_outbound::OutboundPolicy,
) -> Result<kalsync_graph::GraphClient, String> {
    let mut endpoints = kalsync_graph::Endpoints::global();
    if let Some(g) = app.graph_url() {
        endpoints.graph = g.clone();
    }
    if let Some(l) = app.login_url() {
        endpoints.login = l.clone();
    }
    kalsync_graph::GraphClient::new(
        endpoints,
        kalsync_graph::AppCredentials {
            tenant: app.tenant().to_owned(),
            client_id: app.client_id().to_owned(),
            auth: kalsync_graph::ClientAuth::Secret(secret),
        },
        kalsync_graph::Limits::default(),
        outbound,
    )
    .map_err(|e| e.to_string())
}

/// Why a run stopped before it changed anything: a code and a message.
type Stopped = (&'static str, String);

/// What a run that stopped did.
fn not_run(at: Timestamp, (code, message): Stopped) -> DirectoryRun {
    DirectoryRun {
        at: Some(at),
        error: Some((code.to_owned(), message)),
        ..DirectoryRun::default()
    }
}

fn current(u: &User) -> Current<UserId> {
    Current {
        id: u.id,
        email: u.email.clone(),
        name: u.display_name.clone(),
        extension: u.extension.clone(),
        department: u.department.clone(),
        key: u.directory_key.clone(),
        leaving_since: u.leaving_since,
    }
}

fn profile(u: &User) -> UserProfile {
    UserProfile {
        display_name: u.display_name.clone(),
        extension: u.extension.clone(),
        department: u.department.clone(),
        directory_key: u.directory_key.clone(),
        leaving_since: u.leaving_since,
    }
}

impl DirectorySync {
    /// A runner over the store and the instances' connections.
    pub fn new(store: Arc<dyn Store>, connections: Arc<Connections>) -> Self {
        let pbx = crate::pbx_directory::PbxFetcher::new(connections.outbound());
        DirectorySync {
            store,
            connections,
            pbx,
            figures: Arc::default(),
            running: Arc::default(),
        }
    }

    /// Looks for due directories until `stop`.
    pub async fn run(self, stop: kalsync_engine::CancellationToken) {
        loop {
            let now = Timestamp::now();
            let ran = self.step(now).await;
            if ran > 0 {
                tracing::debug!(ran, "directories synchronised");
            }
            if let Some(pbx) = &self.pbx {
                let fetched = pbx.step(self.store.as_ref(), now).await;
                if fetched > 0 {
                    tracing::debug!(fetched, "PBX directories fetched");
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(LOOK_EVERY) => {}
            }
        }
    }

    /// One look: every directory due at `now` that this node takes is run. How many ran.
    pub async fn step(&self, now: Timestamp) -> usize {
        let due = match self.store.due_directories(now).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "due directories cannot be read");
                return 0;
            }
        };
        let mut taken = Vec::new();
        for record in due {
            // Spread over a tenth of the interval, so many companies' directories do
            // not all read at the same moment.
            let every = record.settings.every;
            let jitter = rand::rng().random_range(0..=every.as_secs() / 10);
            let next = crate::pbx_directory::later(now, every + SignedDuration::from_secs(jitter));
            match self
                .store
                .claim_directory(record.instance, record.next_run, next)
                .await
            {
                Ok(true) => taken.push(record.instance),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(instance = %record.instance, error = %e, "a directory cannot be taken")
                }
            }
        }
        // A few at once: one company's slow directory (each read is bounded in time)
        // does not hold back every other company's.
        use futures_util::StreamExt as _;
        futures_util::stream::iter(taken)
            .map(|instance| async move {
                // The due list leaves the state out: read it for the run.
                match self.store.directory(instance).await {
                    Ok(Some(full)) => {
                        self.run_one(full, now, Mode::Now).await;
                        1
                    }
                    Ok(None) => 0,
                    Err(e) => {
                        tracing::warn!(instance = %instance, error = %e, "a directory cannot be read");
                        0
                    }
                }
            })
            .buffer_unordered(RUNS_AT_ONCE)
            .fold(0, |ran, one| async move { ran + one })
            .await
    }

    /// Runs an instance's directory now (a dry run, or applied): what it did.
    pub async fn run_now(
        &self,
        instance: InstanceId,
        mode: Mode,
    ) -> Result<DirectoryRun, StoreError> {
        let record = self
            .store
            .directory(instance)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("directory of instance {instance}")))?;
        Ok(self.run_one(record, Timestamp::now(), mode).await)
    }

    /// The reader for an instance's directory.
    fn reader(
        &self,
        instance: &Instance,
        record: &DirectoryRecord,
    ) -> Result<Box<dyn Directory>, Stopped> {
        match record.settings.kind {
            DirectoryKind::Entra => {
                if let Some(app) = &record.settings.entra_app {
                    let secret = record.password.clone().ok_or_else(|| {
                        (
                            "sign_in",
                            "no client secret is stored for the directory's app".to_owned(),
                        )
                    })?;
                    let client = entra_client(app, secret, self.connections.outbound())
                        .map_err(|e| ("sign_in", e))?;
                    return Ok(Box::new(kalsync_graph::GraphDirectory::new(client)));
                }
                let connection = self
                    .connections
                    .of(instance)
                    .map_err(|e| ("sign_in", e.to_string()))?;
                let client = connection.graph().cloned().ok_or_else(|| {
                    (
                        "not_graph",
                        "an Entra ID directory needs a Microsoft 365 (Graph) instance, or an app of its own".to_owned(),
                    )
                })?;
                Ok(Box::new(kalsync_graph::GraphDirectory::new(client)))
            }
            DirectoryKind::Ldap => {
                let server = record.settings.ldap.clone().ok_or_else(|| {
                    (
                        "protocol",
                        "an LDAP directory without its server".to_owned(),
                    )
                })?;
                let password = record.password.clone().ok_or_else(|| {
                    (
                        "sign_in",
                        "no password is stored for the directory's account".to_owned(),
                    )
                })?;
                let outbound = self.connections.outbound().clone();
                kalsync_ldap::LdapDirectory::new(server, password, outbound)
                    .map(|d| Box::new(d) as Box<dyn Directory>)
                    .map_err(|e| (e.code(), e.to_string()))
            }
        }
    }

    /// Reads, plans and (per `mode` and the settings) applies one directory; what it did
    /// is stored and returned.
    async fn run_one(&self, record: DirectoryRecord, now: Timestamp, mode: Mode) -> DirectoryRun {
        let gate = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(record.instance)
            .or_default()
            .clone();
        let _one = gate.lock().await;
        let started = std::time::Instant::now();
        let run =
            match tokio::time::timeout(RUN_LIMIT, self.read_and_apply(&record, now, mode)).await {
                Ok(run) => run,
                Err(_) => Err((
                    "timeout",
                    format!(
                        "the run took longer than {} minutes and was stopped",
                        RUN_LIMIT.as_secs() / 60
                    ),
                )),
            };
        let (run, state) = match run {
            Ok((run, state)) => (run, Some(state)),
            Err(stopped) => (not_run(now, stopped), None),
        };
        if let Err(e) = self
            .store
            .save_directory_run(record.instance, &run, state.as_ref())
            .await
        {
            tracing::warn!(instance = %record.instance, error = %e, "a directory run cannot be stored");
        }
        let mut f = self.figures.lock().unwrap_or_else(|p| p.into_inner());
        f.runs += 1;
        f.seconds += started.elapsed().as_secs_f64();
        if let Some((code, message)) = &run.error {
            let code: &'static str = match code.as_str() {
                "group_not_found" => "group_not_found",
                "permission" => "permission",
                "sign_in" => "sign_in",
                "unreachable" => "unreachable",
                "certificate" => "certificate",
                "throttled" => "throttled",
                "too_large" => "too_large",
                "timeout" => "timeout",
                _ => "other",
            };
            *f.errors.entry(code).or_default() += 1;
            tracing::warn!(instance = %record.instance, code, error = %message, "a directory read failed; nothing was changed");
        } else {
            f.members.insert(record.instance, run.members);
            if run.applied {
                f.added += run.added as u64;
                f.updated += run.updated as u64;
                f.removed += run.removed as u64;
            }
        }
        run
    }

    async fn read_and_apply(
        &self,
        record: &DirectoryRecord,
        now: Timestamp,
        mode: Mode,
    ) -> Result<(DirectoryRun, serde_json::Value), Stopped> {
        let failed = |e: StoreError| ("store", e.to_string());
        let instance = self.store.instance(record.instance).await.map_err(failed)?;
        let reader = self.reader(&instance, record)?;
        let read = reader
            .read(
                &record.settings.groups,
                &record.settings.attributes(),
                record.state.clone(),
            )
            .await
            .map_err(|e: DirectoryError| (e.code(), e.to_string()))?;
        let users = self.store.users(instance.id).await.map_err(failed)?;
        let stored: Vec<Current<UserId>> = users.iter().map(current).collect();
        // Where the company has a PBX directory, only people on it are added.
        let pbx = self
            .store
            .pbx_directory(instance.company)
            .await
            .map_err(failed)?
            .map(|p| p.list);
        let planned = plan_with(
            &read.people,
            &stored,
            &record.settings,
            now,
            mode == Mode::Confirmed,
            pbx.as_ref(),
        );
        // Only a directory turned on changes users; a confirmation confirms removals
        // held back, it does not turn the directory on.
        let apply = record.settings.enabled && mode != Mode::DryRun;
        let mut run = DirectoryRun {
            at: Some(now),
            applied: apply,
            members: planned.members,
            added: planned.add.len(),
            updated: planned.update.len(),
            leaving: planned.leaving.len(),
            removed: planned.remove.len(),
            held: planned.held.map(|h| (h.would_go, h.of)),
            problems: planned
                .problems
                .iter()
                .take(PROBLEMS_KEPT)
                .cloned()
                .collect(),
            problem_count: planned.problems.len(),
            requests: read.requests,
            full: read.full,
            error: None,
        };
        if apply {
            let (added, refused) = self
                .apply(&instance, &users, planned, now)
                .await
                .map_err(failed)?;
            run.added = added;
            run.problem_count += refused.len();
            run.problems.extend(refused.into_iter().take(PROBLEMS_KEPT));
        }
        Ok((run, read.state))
    }

    /// Makes the plan's changes: removals first (a mailbox or extension they free may
    /// be taken next), then changes, then additions. Returns how many were added, and
    /// the people refused an extension another instance of the company has.
    async fn apply(
        &self,
        instance: &Instance,
        users: &[User],
        planned: Plan<UserId>,
        now: Timestamp,
    ) -> Result<(usize, Vec<PersonProblem>), StoreError> {
        let s = &self.store;
        let by_id: HashMap<UserId, &User> = users.iter().map(|u| (u.id, u)).collect();
        let audit = |action: &str, detail: serde_json::Value| NewAuditEntry {
            company: Some(instance.company),
            actor: ACTOR.into(),
            action: action.into(),
            detail,
        };
        for r in &planned.remove {
            match s.remove_user(r.id).await {
                Ok(()) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
            s.audit(audit(
                "user.removed",
                serde_json::json!({"user": r.id, "instance": instance.id, "why": r.why}),
            ))
            .await?;
        }
        let taken = self.extensions_elsewhere(instance).await?;
        let mut refused = Vec::new();
        for u in &planned.update {
            let Some(old) = by_id.get(&u.id) else {
                continue;
            };
            // An extension another instance of the company has stays with them.
            let mut extension = u.member.extension.clone();
            if let Some(x) = &extension
                && old.extension.as_ref() != Some(x)
                && let Some(by) = taken.get(x.as_str())
            {
                refused.push(PersonProblem {
                    key: u.member.key.clone(),
                    who: u
                        .member
                        .name
                        .clone()
                        .unwrap_or_else(|| u.member.email.to_string()),
                    problem: Problem::SameExtension {
                        extension: x.to_string(),
                        other: by.clone(),
                    },
                });
                extension = old.extension.clone();
            }
            let p = UserProfile {
                display_name: u.member.name.clone().or_else(|| old.display_name.clone()),
                extension,
                department: u.member.department.clone(),
                directory_key: Some(u.member.key.clone()),
                leaving_since: None,
            };
            if skip_gone(s.set_user_profile(u.id, &p).await)? {
                continue;
            }
            s.audit(audit(
                "user.changed",
                serde_json::json!({"user": u.id, "instance": instance.id, "fields": u.changed, "adopted": u.adopted}),
            ))
            .await?;
        }
        for (id, since) in planned
            .leaving
            .iter()
            .map(|id| (id, Some(now)))
            .chain(planned.returned.iter().map(|id| (id, None)))
        {
            if planned.update.iter().any(|u| u.id == *id) {
                continue;
            }
            let Some(old) = by_id.get(id) else { continue };
            skip_gone(
                s.set_user_profile(
                    *id,
                    &UserProfile {
                        leaving_since: since,
                        ..profile(old)
                    },
                )
                .await,
            )?;
        }
        let mut added = 0;
        for m in planned.add {
            if let Some(x) = &m.extension
                && let Some(by) = taken.get(x.as_str())
            {
                refused.push(PersonProblem {
                    key: m.key.clone(),
                    who: m.name.clone().unwrap_or_else(|| m.email.to_string()),
                    problem: Problem::SameExtension {
                        extension: x.to_string(),
                        other: by.clone(),
                    },
                });
                continue;
            }
            let user = match s
                .add_user(NewUser {
                    instance: instance.id,
                    email: m.email.clone(),
                    display_name: m.name.clone(),
                    extension: m.extension.clone(),
                })
                .await
            {
                Ok(u) => u,
                // Added meanwhile (by hand, or by another run): the next run adopts it.
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            };
            s.set_user_profile(
                user.id,
                &UserProfile {
                    directory_key: Some(m.key.clone()),
                    department: m.department.clone(),
                    ..profile(&user)
                },
            )
            .await?;
            // Read at once, on whichever node takes the user.
            s.request_sync(user.id).await?;
            s.audit(audit(
                "user.added",
                serde_json::json!({"user": user.id, "instance": instance.id}),
            ))
            .await?;
            added += 1;
        }
        Ok((added, refused))
    }

    /// The extensions the company's other instances' users have, and whose.
    async fn extensions_elsewhere(
        &self,
        instance: &Instance,
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut taken = HashMap::new();
        for other in self.store.instances(instance.company).await? {
            if other.id == instance.id {
                continue;
            }
            for u in self.store.users(other.id).await? {
                if let Some(x) = u.extension {
                    taken.insert(x.to_string(), u.email.to_string());
                }
            }
        }
        Ok(taken)
    }

    /// The runs' figures in Prometheus' text format.
    pub fn render_metrics(&self) -> String {
        let f = self.figures.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        out.push_str("# HELP kalsync_directory_runs_total Directory reads run (dry runs included).\n# TYPE kalsync_directory_runs_total counter\n");
        out.push_str(&format!("kalsync_directory_runs_total {}\n", f.runs));
        out.push_str("# HELP kalsync_directory_errors_total Directory reads that failed, by cause.\n# TYPE kalsync_directory_errors_total counter\n");
        for (code, n) in &f.errors {
            out.push_str(&format!(
                "kalsync_directory_errors_total{{code=\"{code}\"}} {n}\n"
            ));
        }
        out.push_str("# HELP kalsync_directory_changes_total Users the directory added, changed and removed.\n# TYPE kalsync_directory_changes_total counter\n");
        for (change, n) in [
            ("added", f.added),
            ("updated", f.updated),
            ("removed", f.removed),
        ] {
            out.push_str(&format!(
                "kalsync_directory_changes_total{{change=\"{change}\"}} {n}\n"
            ));
        }
        out.push_str("# HELP kalsync_directory_members Members the last read of each directory found.\n# TYPE kalsync_directory_members gauge\n");
        for (instance, n) in &f.members {
            out.push_str(&format!(
                "kalsync_directory_members{{instance=\"{instance}\"}} {n}\n"
            ));
        }
        out.push_str("# HELP kalsync_directory_seconds_total Time spent in directory runs.\n# TYPE kalsync_directory_seconds_total counter\n");
        out.push_str(&format!(
            "kalsync_directory_seconds_total {:.3}\n",
            f.seconds
        ));
        out
    }
}

/// A write to a user another run or an admin removed meanwhile: skipped (`true`).
fn skip_gone(result: Result<(), StoreError>) -> Result<bool, StoreError> {
    match result {
        Ok(()) => Ok(false),
        Err(StoreError::NotFound(_)) => Ok(true),
        Err(e) => Err(e),
    }
}

impl kalsync_web::DirectoryRunner for DirectorySync {
    fn run(
        &self,
        instance: InstanceId,
        mode: Mode,
    ) -> kalsync_web::Hook<'_, Result<DirectoryRun, String>> {
        // Its own task: a request that goes away (a closed browser, a proxy's timeout)
        // does not stop a run half-way through its changes.
        let this = self.clone();
        let task = tokio::spawn(async move { this.run_now(instance, mode).await });
        Box::pin(async move {
            match task.await {
                Ok(done) => done.map_err(|e| e.to_string()),
                Err(e) => Err(format!("the directory run failed: {e}")),
            }
        })
    }

    fn fetch_pbx(&self, company: CompanyId) -> kalsync_web::Hook<'_, Result<usize, String>> {
        Box::pin(async move {
            let fetcher = self
                .pbx
                .as_ref()
                .ok_or("PBX directories cannot be fetched on this node")?;
            let record = self
                .store
                .pbx_directory(company)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the company has no PBX directory")?;
            let now = Timestamp::now();
            let outcome = fetcher.fetch(&record, now).await;
            self.store
                .save_pbx_list(
                    company,
                    Some(&record.source),
                    outcome.as_ref().map_err(String::as_str),
                    now,
                )
                .await
                .map_err(|e| e.to_string())?;
            outcome.map(|l| l.len())
        })
    }
}
