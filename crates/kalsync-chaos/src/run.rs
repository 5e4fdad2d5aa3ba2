//! The run, step by step: two simulated organisations and their mailboxes; the
//! simulators, the PBX, the database, the nodes and their balancer started; the workload
//! with its faults and kills; the quiet; rounds of comparison with the oracle until every
//! user agrees or the time is up; the deliveries counted with the service at rest; the
//! report, with the faults near each divergence.

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
use crate::faults::{Injector, KINDS};
use crate::node::{
    Clock, Database, EWS_ACCOUNT, EWS_PASSWORD, FAKETIME, Launch, Node, RULES, Wiring, config_text,
    free_port, master_key,
};
use crate::oracle::{difference, oracle};
use crate::pbx::{self, Pbx};
use crate::report::{Report, Tally};
use crate::workload::{Company, Mailbox, Reach, change};

/// A divergence is put down to the faults injected from this long before its user's last
/// change to shortly after.
const NEAR: Duration = Duration::from_secs(30);

/// Runs the harness once; the report, whether or not the run converged.
pub(crate) async fn run(args: &ChaosArgs) -> Result<Report, String> {
    let started = Instant::now();
    let seed = args.seed.unwrap_or_else(rand::random);
    eprintln!(
        "chaos: seed {seed} (to repeat: kalsync chaos --seed {seed} --users {} --changes {} --rate {} --kills {} --fault-rate {} --settle-secs {} --settle-at-least-secs {} --nodes {}{}{}{})",
        args.users,
        args.changes,
        args.rate,
        args.kills,
        args.fault_rate,
        args.settle_secs,
        args.settle_at_least_secs,
        args.nodes,
        args.postgres
            .as_ref()
            .map(|p| format!(" --postgres {p}"))
            .unwrap_or_default(),
        if args.faults.is_empty() {
            String::new()
        } else {
            format!(" --faults {}", args.faults.join(","))
        },
        args.broken
            .as_ref()
            .map(|b| format!(" --broken {b}"))
            .unwrap_or_default(),
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
    let database = Database::make(&dir, args.postgres.as_deref(), seed).await?;
    let kinds: Vec<&'static str> = KINDS
        .iter()
        .copied()
        .filter(|k| args.faults.is_empty() || args.faults.iter().any(|f| f == k))
        .collect();
    let mut stage = Stage::open(graph, exchange, &company, &dir, &database, args).await?;

    let mut log = Log::default();
    let drove = stage
        .drive(
            args,
            &mut rng,
            &company.mailboxes,
            &kinds,
            &mut changes_by_kind,
            &mut log,
        )
        .await;
    let mut faults_by_kind = match drove {
        Ok(f) => f,
        Err(e) => {
            stage.stop_service();
            database.drop_it().await;
            return Err(e);
        }
    };

    // Quiesce: the faults stop (the clock is set right: one more step), the service
    // catches up.
    if let Some(kind) = stage.injector(&company.mailboxes, &kinds).stop() {
        *faults_by_kind.entry(kind).or_default() += 1;
    }
    let workload_done = Instant::now();
    let deadline = workload_done + Duration::from_secs(args.settle_secs);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stage.pbx.restore();
    let mut round = stage
        .settle(
            &company.mailboxes,
            &settings,
            workload_done + Duration::from_secs(args.settle_at_least_secs),
            deadline,
        )
        .await?;
    round.examples.truncate(5);
    let settled = workload_done.elapsed();

    // Deliveries: what the service counts as delivered, the PBX must have applied; none
    // may be dead, or pending past its time. The service stops first, so the store and
    // the PBX are read at rest.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stage.stop_service();
    let lost = lost_deliveries(&dir, &database, &stage.pbx.applied()).await?;
    let notifications = stage.notifications();
    let pbx = stage.close();
    let divergences_by_fault = log.near(&round.diverged);
    let by_reach = |only: &dyn Fn(&str) -> bool| {
        let mut tally = Tally::new();
        for m in company.mailboxes.iter().filter(|m| only(&m.email)) {
            *tally.entry(m.reach.name()).or_default() += 1;
        }
        tally
    };
    let divergences_by_reach = by_reach(&|email| round.diverged.contains(email));
    let users_by_reach = by_reach(&|_| true);
    let report = Report {
        seed,
        users: args.users,
        changes: args.changes,
        nodes: args.nodes,
        database: database.kind(),
        broken: args.broken.clone(),
        changes_by_kind,
        faults_by_kind,
        divergences: round.diverged.len(),
        divergences_by_fault,
        divergences_by_reach,
        users_by_reach,
        notifications,
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
        database.drop_it().await;
    } else {
        eprintln!(
            "chaos: the service's logs are kept in {}, its database at {}",
            dir.display(),
            database.url()
        );
    }
    Ok(report)
}

/// When each fault was injected and each mailbox last changed, to put divergences down
/// to the faults near them.
#[derive(Default)]
struct Log {
    faults: Vec<(Instant, &'static str)>,
    last_change: HashMap<String, Instant>,
}

impl Log {
    /// The fault kinds injected near the last change of each diverged user, counted.
    fn near(&self, diverged: &HashSet<String>) -> Tally {
        let mut by_kind = Tally::new();
        for user in diverged {
            let Some(changed) = self.last_change.get(user) else {
                *by_kind.entry("(no change made to it)").or_default() += 1;
                continue;
            };
            let kinds: std::collections::BTreeSet<&'static str> = self
                .faults
                .iter()
                .filter(|(at, _)| {
                    *at + NEAR >= *changed && *at <= *changed + Duration::from_secs(5)
                })
                .map(|(_, k)| *k)
                .collect();
            if kinds.is_empty() {
                *by_kind.entry("(no fault near it)").or_default() += 1;
            }
            for k in kinds {
                *by_kind.entry(k).or_default() += 1;
            }
        }
        by_kind
    }
}

/// Everything running during a run: the simulators, the PBX, the nodes, their balancer
/// and their clock.
struct Stage {
    graph: Simulator,
    ews: EwsSim,
    pbx: Pbx,
    clock: Option<Clock>,
    launches: Vec<Launch>,
    nodes: Vec<Option<Node>>,
    /// The balancer's address, `http://127.0.0.1:<port>`.
    base: String,
    /// The simulators' servers, which stop when dropped.
    _servers: (SimHandle, EwsHandle),
    pbx_server: tokio::task::JoinHandle<std::io::Result<()>>,
    balancer: tokio::task::JoinHandle<()>,
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
    /// Serves the simulators, the PBX and the balancer, writes each node's settings into
    /// `dir` and starts the nodes.
    async fn open(
        graph: Simulator,
        exchange: Simulator,
        company: &Company,
        dir: &Path,
        database: &Database,
        args: &ChaosArgs,
    ) -> Result<Stage, String> {
        let (graph_url, graph_server) = kalsync_graph_sim::spawn(graph.clone())
            .await
            .map_err(|e| e.to_string())?;
        let mut config = EwsConfig::new(EWS_ACCOUNT, EWS_PASSWORD);
        for upn in company.reached(Reach::Delegate) {
            config
                .delegate
                .insert(upn, kalsync_ews_sim::DelegateRights::Reviewer);
        }
        let ews = EwsSim::new(exchange, config);
        let (ews_url, ews_server) = kalsync_ews_sim::spawn(ews.clone())
            .await
            .map_err(|e| e.to_string())?;
        let pbx = Pbx::default();
        let (pbx_url, pbx_server) = pbx.serve().await?;

        let ports: Vec<u16> = (0..args.nodes)
            .map(|_| free_port())
            .collect::<Result<_, _>>()?;
        let (public_port, balancer) = crate::balancer::spawn(ports.clone()).await?;
        let database_url = database.url();
        let wiring = Wiring {
            public_port,
            database_url: &database_url,
            pbx_url: &pbx_url,
            graph_url: &graph_url,
            ews_url: &ews_url,
            company,
        };
        // The wall clock steps only where libfaketime is installed; the run says so.
        let clock = Clock::install(dir);
        if clock.is_none() {
            eprintln!("chaos: no clock steps: {FAKETIME} is missing (apt-get install faketime)");
        }
        let mut launches = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            let config = dir.join(format!("kalsync-{i}.toml"));
            std::fs::write(&config, config_text(dir, i, &wiring)).map_err(|e| e.to_string())?;
            launches.push(Launch {
                config,
                log: dir.join(format!("service-{i}.log")),
                port: *port,
                clock_file: clock.as_ref().map(|c| c.file().to_path_buf()),
                broken: args.broken.clone(),
            });
        }
        let mut nodes = Vec::new();
        for launch in &launches {
            nodes.push(Some(launch.start().await?));
        }
        Ok(Stage {
            graph,
            ews,
            pbx,
            clock,
            launches,
            nodes,
            base: format!("http://127.0.0.1:{public_port}"),
            _servers: (graph_server, ews_server),
            pbx_server,
            balancer,
        })
    }

    fn injector<'a>(&'a self, mailboxes: &'a [Mailbox], kinds: &'a [&'static str]) -> Injector<'a> {
        Injector {
            graph: &self.graph,
            ews: &self.ews,
            pbx: &self.pbx,
            clock: self.clock.as_ref(),
            mailboxes,
            kinds,
        }
    }

    /// The workload: `args.changes` random changes, `args.rate` a second; a node killed
    /// and started again `args.kills` times, spread evenly; a fault of `kinds` after
    /// about `args.fault_rate` of the other changes. The faults, by kind; each fault and
    /// change goes into `log`.
    async fn drive(
        &mut self,
        args: &ChaosArgs,
        rng: &mut StdRng,
        mailboxes: &[Mailbox],
        kinds: &[&'static str],
        changes: &mut Tally,
        log: &mut Log,
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
            log.last_change.insert(m.email.clone(), Instant::now());
            if kill_at.contains(&i) {
                self.kill_and_restart(rng).await?;
                *faults.entry("SIGKILL and restart").or_default() += 1;
                log.faults.push((Instant::now(), "SIGKILL and restart"));
                continue;
            }
            if !kinds.is_empty()
                && rng.random_bool(args.fault_rate.clamp(0.0, 1.0))
                && let Some(kind) = self.injector(mailboxes, kinds).inject(rng)
            {
                *faults.entry(kind).or_default() += 1;
                log.faults.push((Instant::now(), kind));
            }
        }
        Ok(faults)
    }

    /// SIGKILL to one node, a pause of up to 1.5 s, and the node started again.
    async fn kill_and_restart(&mut self, rng: &mut StdRng) -> Result<(), String> {
        let i = rng.random_range(0..self.nodes.len());
        drop(self.nodes[i].take());
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await;
        self.nodes[i] = Some(self.launches[i].start().await?);
        Ok(())
    }

    /// Kills every node (SIGKILL).
    fn stop_service(&mut self) {
        for node in &mut self.nodes {
            drop(node.take());
        }
    }

    /// Compares every user with the oracle, a round a second, until nobody differs (and
    /// `not_before` has passed).
    /// After `deadline`, a difference counts when it lasted the last two rounds (one
    /// round may fall on a transition's instant); there are always two rounds before it
    /// is judged.
    async fn settle(
        &self,
        mailboxes: &[Mailbox],
        settings: &InstanceSettings,
        not_before: Instant,
        deadline: Instant,
    ) -> Result<Round, String> {
        let api = Api::sign_in_by(&self.base, deadline).await?;
        let ids = api.users().await?;
        let mut previous: Option<HashSet<String>> = None;
        loop {
            let mut round = self.compare(&api, &ids, mailboxes, settings).await?;
            if round.diverged.is_empty() && Instant::now() >= not_before {
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

    /// What the simulated sources sent.
    fn notifications(&self) -> std::collections::BTreeMap<&'static str, u64> {
        let (graph, ews) = (self.graph.stats(), self.ews.stats());
        [
            ("Graph notifications delivered", graph.notifications_sent),
            ("Graph notifications refused", graph.notifications_refused),
            (
                "Graph notifications given up or lost",
                graph.notifications_lost,
            ),
            ("Exchange pushes", ews.notifications_pushed),
            ("Exchange streamed events", ews.streamed_events),
        ]
        .into_iter()
        .collect()
    }

    /// Stops the PBX and the balancer; what the PBX counted. The simulators stop as the
    /// stage is dropped.
    fn close(self) -> pbx::Tally {
        self.pbx_server.abort();
        self.balancer.abort();
        self.pbx.tally()
    }
}

/// Deliveries lost, from the service's database (read with the service stopped):
/// delivered by its account but never applied by the PBX, dead, or pending past their
/// time (a transition due in the last seconds is pending by design).
async fn lost_deliveries(
    dir: &Path,
    database: &Database,
    applied: &HashSet<String>,
) -> Result<usize, String> {
    use kalsync_store::{DeliveryState, Store as _};
    let store = kalsync_store_sql::SqlStore::connect(
        &kalsync_store_sql::DatabaseUrl::new(database.url()),
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
