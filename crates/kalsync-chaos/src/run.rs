//! The run, step by step: two simulated organisations and their mailboxes; the
//! simulators, the PBX and the service started; the workload with its faults and kills;
//! the quiet; rounds of comparison with the oracle until every user agrees or the time
//! is up; the deliveries counted with the service at rest; the report.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use kalsync_core::InstanceSettings;
use kalsync_ews_sim::{EwsConfig, EwsHandle, EwsSim};
use kalsync_graph_sim::{SimConfig, SimHandle, Simulator};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::ChaosArgs;
use crate::api::Api;
use crate::faults::Injector;
use crate::node::{
    Clock, EWS_ACCOUNT, EWS_PASSWORD, FAKETIME, Launch, Node, RULES, Wiring, config_text, database,
    free_port, master_key,
};
use crate::oracle::{difference, oracle};
use crate::pbx::{self, Pbx};
use crate::report::{Report, Tally};
use crate::workload::{Company, Mailbox, change};

/// Runs the harness once; the report, whether or not the run converged.
pub(crate) async fn run(args: &ChaosArgs) -> Result<Report, String> {
    let started = Instant::now();
    let seed = args.seed.unwrap_or_else(rand::random);
    eprintln!(
        "chaos: seed {seed} (to repeat: kalsync chaos --seed {seed} --users {} --changes {} --rate {} --kills {} --fault-rate {} --settle-secs {})",
        args.users, args.changes, args.rate, args.kills, args.fault_rate, args.settle_secs
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let settings = InstanceSettings::from_toml(RULES).map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("kalsync-chaos-{}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;

    // Two organisations: one on Microsoft 365, one on its own Exchange.
    let graph = Simulator::new(SimConfig::with_secret("chaos", "chaos-app", "chaos-secret"));
    let exchange = Simulator::new(SimConfig::with_secret("chaos", "chaos-app", "chaos-secret"));
    let company = Company::new(args.users, &graph, &exchange)?;
    let mut changes_by_kind = Tally::new();
    company.book_initial(&mut rng, Timestamp::now(), &mut changes_by_kind);
    let mut stage = Stage::open(graph, exchange, &company, &dir).await?;

    let mut faults_by_kind = stage
        .drive(args, &mut rng, &company.mailboxes, &mut changes_by_kind)
        .await?;

    // Quiesce: the faults stop (the clock is set right: one more step), the service
    // catches up.
    if let Some(kind) = stage.injector().stop() {
        *faults_by_kind.entry(kind).or_default() += 1;
    }
    let workload_done = Instant::now();
    let deadline = workload_done + Duration::from_secs(args.settle_secs);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stage.pbx.restore();
    let mut round = stage
        .settle(&company.mailboxes, &settings, deadline)
        .await?;
    round.examples.truncate(5);
    let settled = workload_done.elapsed();

    // Deliveries: what the service counts as delivered, the PBX must have applied; none
    // may be dead, or pending past its time. The service stops first, so the store and
    // the PBX are read at rest.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stage.stop_service();
    let lost = lost_deliveries(&dir, &stage.pbx.applied()).await?;
    let pbx = stage.close();
    let report = Report {
        seed,
        users: args.users,
        changes: args.changes,
        changes_by_kind,
        faults_by_kind,
        divergences: round.diverged.len(),
        lost_deliveries: lost,
        duplicates: pbx.twice,
        redeliveries_ignored: pbx.redeliveries,
        statuses_received: pbx.applied,
        seconds_to_settle: settled.as_secs_f64(),
        seconds_in_all: started.elapsed().as_secs_f64(),
        users_compared: round.compared,
        examples: round.examples.into_iter().map(|(_, d)| d).collect(),
    };
    if report.passed() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!(
            "chaos: the service's log and database are kept in {}",
            dir.display()
        );
    }
    Ok(report)
}

/// Everything running during a run: the simulators, the PBX, the service and its clock.
struct Stage {
    graph: Simulator,
    ews: EwsSim,
    pbx: Pbx,
    clock: Option<Clock>,
    launch: Launch,
    node: Option<Node>,
    /// The service's address, `http://127.0.0.1:<port>`.
    base: String,
    /// The simulators' servers, which stop when dropped.
    _servers: (SimHandle, EwsHandle),
    pbx_server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// One round of comparison with the oracle.
#[derive(Default)]
struct Round {
    /// Users that differ.
    diverged: HashSet<String>,
    /// (user, how it differs).
    examples: Vec<(String, String)>,
    /// Users compared (the oracle could read their calendar).
    compared: usize,
}

impl Round {
    fn differs(&mut self, email: &str, how: String) {
        self.diverged.insert(email.to_owned());
        self.examples.push((email.to_owned(), how));
    }
}

impl Stage {
    /// Serves the simulators and the PBX, writes the service's settings into `dir` and
    /// starts the service.
    async fn open(
        graph: Simulator,
        exchange: Simulator,
        company: &Company,
        dir: &Path,
    ) -> Result<Stage, String> {
        let (graph_url, graph_server) = kalsync_graph_sim::spawn(graph.clone())
            .await
            .map_err(|e| e.to_string())?;
        let ews = EwsSim::new(exchange, EwsConfig::new(EWS_ACCOUNT, EWS_PASSWORD));
        let (ews_url, ews_server) = kalsync_ews_sim::spawn(ews.clone())
            .await
            .map_err(|e| e.to_string())?;
        let pbx = Pbx::default();
        let (pbx_url, pbx_server) = pbx.serve().await?;

        let port = free_port()?;
        let config = dir.join("kalsync.toml");
        let wiring = Wiring {
            port,
            pbx_url: &pbx_url,
            graph_url: &graph_url,
            ews_url: &ews_url,
            graph_users: &company.graph_users,
            ews_users: &company.ews_users,
        };
        std::fs::write(&config, config_text(dir, &wiring)).map_err(|e| e.to_string())?;
        // The wall clock steps only where libfaketime is installed; the run says so.
        let clock = Clock::install(dir);
        if clock.is_none() {
            eprintln!("chaos: no clock steps: {FAKETIME} is missing (apt-get install faketime)");
        }
        let launch = Launch {
            config,
            log: dir.join("service.log"),
            port,
            clock_file: clock.as_ref().map(|c| c.file().to_path_buf()),
        };
        let node = Some(launch.start().await?);
        Ok(Stage {
            graph,
            ews,
            pbx,
            clock,
            launch,
            node,
            base: format!("http://127.0.0.1:{port}"),
            _servers: (graph_server, ews_server),
            pbx_server,
        })
    }

    fn injector(&self) -> Injector<'_> {
        Injector {
            graph: &self.graph,
            ews: &self.ews,
            pbx: &self.pbx,
            clock: self.clock.as_ref(),
        }
    }

    /// The workload: `args.changes` random changes, `args.rate` a second; the service
    /// killed and started again `args.kills` times, spread evenly; a fault after about
    /// `args.fault_rate` of the other changes. The faults, by kind.
    async fn drive(
        &mut self,
        args: &ChaosArgs,
        rng: &mut StdRng,
        mailboxes: &[Mailbox],
        changes: &mut Tally,
    ) -> Result<Tally, String> {
        let mut faults = Tally::new();
        let kill_at: HashSet<usize> = (1..=args.kills)
            .map(|k| k * args.changes / (args.kills + 1))
            .collect();
        let pause = Duration::from_secs_f64(1.0 / args.rate.max(0.1));
        for i in 0..args.changes {
            tokio::time::sleep(pause).await;
            let now = Timestamp::now();
            let m = &mailboxes[rng.random_range(0..mailboxes.len())];
            *changes.entry(change(rng, m, now)).or_default() += 1;
            if kill_at.contains(&i) {
                self.kill_and_restart(rng).await?;
                *faults.entry("SIGKILL and restart").or_default() += 1;
                continue;
            }
            if rng.random_bool(args.fault_rate.clamp(0.0, 1.0))
                && let Some(kind) = self.injector().inject(rng)
            {
                *faults.entry(kind).or_default() += 1;
            }
        }
        Ok(faults)
    }

    /// SIGKILL, a pause of up to 1.5 s, and the service started again.
    async fn kill_and_restart(&mut self, rng: &mut StdRng) -> Result<(), String> {
        self.stop_service();
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await;
        self.node = Some(self.launch.start().await?);
        Ok(())
    }

    /// Kills the service (SIGKILL), if it runs.
    fn stop_service(&mut self) {
        drop(self.node.take());
    }

    /// Compares every user with the oracle, a round a second, until nobody differs.
    /// After `deadline`, a difference counts when it lasted the last two rounds (one
    /// round may fall on a transition's instant); there are always two rounds before it
    /// is judged.
    async fn settle(
        &self,
        mailboxes: &[Mailbox],
        settings: &InstanceSettings,
        deadline: Instant,
    ) -> Result<Round, String> {
        let api = Api::sign_in_by(&self.base, deadline).await?;
        let ids = api.users().await?;
        let mut previous: Option<HashSet<String>> = None;
        loop {
            let mut round = self.compare(&api, &ids, mailboxes, settings).await?;
            if round.diverged.is_empty() {
                return Ok(round);
            }
            if Instant::now() > deadline
                && let Some(before) = &previous
            {
                round.diverged = round.diverged.intersection(before).cloned().collect();
                let diverged = &round.diverged;
                round.examples.retain(|(user, _)| diverged.contains(user));
                return Ok(round);
            }
            previous = Some(round.diverged);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// One round: each user's status from the admin API and the PBX against the
    /// oracle's timeline, taken at the same instant.
    async fn compare(
        &self,
        api: &Api,
        ids: &HashMap<String, String>,
        mailboxes: &[Mailbox],
        settings: &InstanceSettings,
    ) -> Result<Round, String> {
        let mut round = Round::default();
        for m in mailboxes {
            let Some(id) = ids.get(&m.email) else {
                round.differs(&m.email, format!("{}: not a user of the service", m.email));
                continue;
            };
            let status = api.status(id).await?;
            let now = Timestamp::now();
            let Some(truth) = oracle(m, settings, now) else {
                round.differs(
                    &m.email,
                    format!("{}: the oracle cannot read its calendar", m.email),
                );
                continue;
            };
            round.compared += 1;
            let shown = self.pbx.shown(&m.email);
            if let Some(d) = difference(
                &m.email,
                &truth,
                &status,
                shown.as_ref(),
                now,
                settings.days_ahead,
            ) {
                round.differs(&m.email, d);
            }
        }
        Ok(round)
    }

    /// Stops the PBX; what it counted. The simulators stop as the stage is dropped.
    fn close(self) -> pbx::Tally {
        self.pbx_server.abort();
        self.pbx.tally()
    }
}

/// Deliveries lost, from the service's database (read with the service stopped):
/// delivered by its account but never applied by the PBX, dead, or pending past their
/// time (a transition due in the last seconds is pending by design).
async fn lost_deliveries(dir: &Path, applied: &HashSet<String>) -> Result<usize, String> {
    use kalsync_store::{DeliveryState, Store as _};
    let store = kalsync_store_sql::SqlStore::connect(
        &kalsync_store_sql::DatabaseUrl::new(format!("sqlite:{}", database(dir).display())),
        kalsync_store::SecretBox::from_key_file(&master_key(dir)).map_err(|e| e.to_string())?,
    )
    .await
    .map_err(|e| e.to_string())?;
    let all = usize::MAX >> 1;
    let mut lost = 0;
    for company in store.companies().await.map_err(|e| e.to_string())? {
        for d in store
            .deliveries(company.id, DeliveryState::Delivered, all)
            .await
            .map_err(|e| e.to_string())?
        {
            if !applied.contains(&d.id.to_string()) {
                lost += 1;
            }
        }
        lost += store
            .deliveries(company.id, DeliveryState::Dead, all)
            .await
            .map_err(|e| e.to_string())?
            .len();
        lost += store
            .deliveries(company.id, DeliveryState::Pending, all)
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .filter(|d| d.due <= Timestamp::now() - SignedDuration::from_secs(10))
            .count();
    }
    Ok(lost)
}
