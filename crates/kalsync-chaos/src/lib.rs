//! `kalsync chaos`: the convergence harness. It runs `kalsync serve` as child processes
//! — one node on SQLite, or several on one PostgreSQL database behind a load balancer —
//! against a simulated Microsoft 365 and a simulated Exchange (EWS: 2016 streaming and
//! delegate, 2007 push and pull) with a webhook PBX, drives a seeded random workload of
//! calendar changes while injecting faults — Graph 429/5xx/resets, lost and duplicated
//! notifications, removed subscriptions, expired tokens, Graph or Exchange forgetting
//! every subscription with a booking made before the next one exists, bookings notified
//! before their subscription is known, Exchange busy answers, dropped streams and expired
//! watermarks, PBX outages, and nodes killed with SIGKILL and started again — then lets
//! it settle and compares each user with an independent oracle: the timeline the core
//! crate computes straight from the simulators' own calendars (not through Graph or
//! EWS), against the service's timeline and the status the PBX shows. Notified mailboxes
//! are polled only hourly, so a change a notification path loses stays lost. It reports
//! divergences (and the faults near them), lost deliveries and duplicates; any of them
//! makes the run fail. `--broken` restores a fixed bug in the service, to show the
//! harness sees it.
//!
//! The harness is a test instrument, not part of the service: the `kalsync` binary
//! carries it only with its `chaos` feature. The service it runs is the binary it is
//! called from (`std::env::current_exe`), so [`chaos`] is meant to be called from the
//! `kalsync` command line.
//!
//! - `workload`: the mailboxes and the random calendar changes;
//! - `faults`: the faults injected along the way;
//! - `pbx`: the webhook PBX that applies each delivery once;
//! - `node`: the service as child processes, their database, settings and wall clock;
//! - `balancer`: the load balancer in front of the nodes;
//! - `api`: the admin API client that reads the service's users and statuses;
//! - `oracle`: the expected timeline and the comparison with what the service shows;
//! - `run`: the run, step by step;
//! - `report`: what a run found, as text or JSON.

mod api;
mod balancer;
mod faults;
mod node;
mod oracle;
mod pbx;
mod report;
mod run;
mod workload;

/// `kalsync chaos`.
#[derive(Debug, clap::Args)]
pub struct ChaosArgs {
    /// Mailboxes: half on the simulated Microsoft 365, half on the simulated Exchange.
    #[arg(long, default_value_t = 20)]
    pub(crate) users: usize,
    /// Calendar changes to make.
    #[arg(long, default_value_t = 300)]
    pub(crate) changes: usize,
    /// Changes per second.
    #[arg(long, default_value_t = 40.0)]
    pub(crate) rate: f64,
    /// Times a node is killed with SIGKILL and started again.
    #[arg(long, default_value_t = 2)]
    pub(crate) kills: usize,
    /// Nodes of the service; more than one needs `--postgres`.
    #[arg(long, default_value_t = 1)]
    pub(crate) nodes: usize,
    /// A PostgreSQL server's admin URL: the nodes share a fresh database made there
    /// (dropped after the run) instead of a SQLite file.
    #[arg(long)]
    pub(crate) postgres: Option<String>,
    /// The kinds of fault to draw from, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(faults::KINDS))]
    pub(crate) faults: Vec<String>,
    /// Restores a fixed bug in the service, for the harness's self-check:
    /// `read-before-subscribe` (lost EWS streaming subscriptions read before they are
    /// made again). The run must then report divergences.
    #[arg(long, value_parser = ["read-before-subscribe"])]
    pub(crate) broken: Option<String>,
    /// A fault after roughly this share of the changes (0 to 1).
    #[arg(long, default_value_t = 0.08)]
    pub(crate) fault_rate: f64,
    /// The random seed; a fresh one when left out. It is printed either way.
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Longest wait for the service to settle after the last change, seconds.
    #[arg(long, default_value_t = 300)]
    pub(crate) settle_secs: u64,
    /// Agreement counts only this long after the last change, seconds (a check that
    /// must see what a late pass of the service does).
    #[arg(long, default_value_t = 0)]
    pub(crate) settle_at_least_secs: u64,
    /// Print the report as JSON (one line) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Runs `kalsync chaos` and prints its report; fails when the run did not converge.
pub fn chaos(args: &ChaosArgs) -> Result<(), String> {
    if args.nodes == 0 || (args.nodes > 1 && args.postgres.is_none()) {
        return Err("--nodes above 1 needs --postgres (the nodes share one database)".into());
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start: {e}"))?;
    let report = runtime.block_on(run::run(args))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
    } else {
        report.print();
    }
    if report.passed() {
        Ok(())
    } else {
        Err(report.failure())
    }
}
