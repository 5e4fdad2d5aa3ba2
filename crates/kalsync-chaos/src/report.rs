//! What a run found: the counts, the verdict, and the report as text or JSON.

use std::collections::BTreeMap;

use serde::Serialize;

/// How many of each kind (of change, of fault).
pub(crate) type Tally = BTreeMap<&'static str, u32>;

/// What a run found.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Report {
    pub(crate) seed: u64,
    pub(crate) users: usize,
    pub(crate) changes: usize,
    /// Nodes of the service.
    pub(crate) nodes: usize,
    /// Their database: `sqlite` or `postgresql`.
    pub(crate) database: &'static str,
    /// The fixed bug restored for the self-check, if any.
    pub(crate) broken: Option<String>,
    pub(crate) changes_by_kind: Tally,
    pub(crate) faults_by_kind: Tally,
    /// Users whose service timeline or PBX status differs from the oracle's.
    pub(crate) divergences: usize,
    /// Diverged users by the kinds of fault injected near their last change.
    pub(crate) divergences_by_fault: Tally,
    /// Diverged users by how their mailbox reaches the service.
    pub(crate) divergences_by_reach: Tally,
    /// Users by how their mailbox reaches the service.
    pub(crate) users_by_reach: Tally,
    /// What the simulated sources sent: notifications delivered, refused by the
    /// service (and retried), given up on; pushes and streamed events.
    pub(crate) notifications: std::collections::BTreeMap<&'static str, u64>,
    /// Deliveries the service counts as delivered that the PBX never got, and any left
    /// undelivered or dead at the end.
    pub(crate) lost_deliveries: usize,
    /// Statuses the PBX applied twice: the same user and sequence under two deliveries.
    pub(crate) duplicates: usize,
    /// Redeliveries of one delivery the PBX recognised by its id and ignored.
    pub(crate) redeliveries_ignored: u64,
    pub(crate) statuses_received: usize,
    /// Users compared with the oracle in the last round (all of them, or the run fails).
    pub(crate) users_compared: usize,
    pub(crate) seconds_to_settle: f64,
    pub(crate) seconds_in_all: f64,
    /// The first few differences, for a reader.
    pub(crate) examples: Vec<String>,
}

impl Report {
    /// Every user compared and equal to the oracle, nothing lost, nothing applied twice.
    pub(crate) fn passed(&self) -> bool {
        self.divergences == 0
            && self.lost_deliveries == 0
            && self.duplicates == 0
            && self.users_compared == self.users
    }

    /// Why the run failed, in one line.
    pub(crate) fn failure(&self) -> String {
        format!(
            "did not converge: {} divergences, {} lost deliveries, {} duplicates (seed {})",
            self.divergences, self.lost_deliveries, self.duplicates, self.seed
        )
    }

    /// The report as text, on standard output.
    pub(crate) fn print(&self) {
        let r = self;
        println!(
            "chaos: seed {} · {} users · {} changes · {} node(s) on {} · {:.1} s in all, settled {:.1} s after the last change",
            r.seed, r.users, r.changes, r.nodes, r.database, r.seconds_in_all, r.seconds_to_settle
        );
        if let Some(b) = &r.broken {
            println!("  broken       {b} (the self-check: divergences expected)");
        }
        let kinds = |m: &Tally| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!("  users        {}", kinds(&r.users_by_reach));
        println!("  changes      {}", kinds(&r.changes_by_kind));
        println!("  faults       {}", kinds(&r.faults_by_kind));
        let counts = r
            .notifications
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!("  sources      {counts}");
        println!(
            "  PBX          {} statuses applied, {} redeliveries recognised and ignored",
            r.statuses_received, r.redeliveries_ignored
        );
        println!(
            "  divergences  {}\n  lost         {}\n  duplicates   {}",
            r.divergences, r.lost_deliveries, r.duplicates
        );
        if !r.divergences_by_fault.is_empty() {
            println!("  diverged near {}", kinds(&r.divergences_by_fault));
            println!("  diverged on   {}", kinds(&r.divergences_by_reach));
        }
        for e in &r.examples {
            println!("  · {e}");
        }
    }
}
