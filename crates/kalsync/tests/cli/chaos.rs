//! The convergence harness at a size that fits every CI run, each with a fresh seed
//! (printed; `KALSYNC_CHAOS_SEED` repeats one): one node on SQLite, and three nodes on
//! PostgreSQL behind a balancer, with every kind of fault, clock steps (where libfaketime
//! is installed, as `.ci/run` does) and SIGKILLs, must end with every user equal to the
//! oracle, nothing lost and nothing applied twice; and with a fixed bug restored
//! (`--broken read-before-subscribe`), the harness must see it.

use std::process::Command;

fn seed() -> u64 {
    std::env::var("KALSYNC_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

/// Runs `kalsync chaos` with `args` and the seed; its JSON report and standard error.
fn chaos(seed: u64, args: &[&str]) -> (serde_json::Value, String, bool) {
    println!("chaos seed {seed} (repeat with KALSYNC_CHAOS_SEED={seed})");
    let out = Command::new(env!("CARGO_BIN_EXE_kalsync"))
        .arg("chaos")
        .args(args)
        .args(["--json", "--seed", &seed.to_string()])
        .output()
        .expect("kalsync chaos runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    println!("{stdout}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("a JSON report ({e}): {stdout}\n{stderr}"));
    assert_eq!(report["seed"], seed);
    (report, stderr, out.status.success())
}

/// A small run of `users` with every kind of fault and two kills, and `more` arguments.
fn small<'a>(users: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--users",
        users,
        "--changes",
        "240",
        "--rate",
        "40",
        "--kills",
        "2",
        "--fault-rate",
        "0.2",
        // An Exchange 2007 push subscription Exchange forgot is found silent after three
        // missed status pushes (3 min), made again at the next pass (30 s) and then read,
        // with the faults' back-offs on top: a mailbox recovering from a fault late in
        // the workload can need more than five minutes. Seven tell a slow recovery from
        // a lost change (which waits for the hourly poll, far past either).
        "--settle-secs",
        "420",
    ];
    args.extend_from_slice(more);
    args
}

fn converged(report: &serde_json::Value, stderr: &str, users: u64) {
    assert_eq!(report["divergences"], 0, "{report:#}\n{stderr}");
    assert_eq!(report["lost_deliveries"], 0, "{report:#}\n{stderr}");
    assert_eq!(report["duplicates"], 0, "{report:#}\n{stderr}");
    assert_eq!(report["users_compared"], users, "{report:#}\n{stderr}");
    assert!(
        report["statuses_received"].as_u64().unwrap_or(0) > 0,
        "{report:#}"
    );
    // Every way a mailbox reaches the service is in the mix.
    for reach in [
        "Graph",
        "EWS streaming",
        "EWS push (2007)",
        "EWS pull (2007)",
        "EWS delegate",
    ] {
        assert!(
            report["users_by_reach"][reach].as_u64().unwrap_or(0) > 0,
            "{reach}: {report:#}"
        );
    }
}

#[test]
fn a_small_chaos_run_on_one_node_converges() {
    let (report, stderr, ok) = chaos(seed(), &small("12", &[]));
    converged(&report, &stderr, 12);
    assert_eq!(report["nodes"], 1);
    assert_eq!(
        report["faults_by_kind"]["SIGKILL and restart"], 2,
        "{report:#}"
    );
    assert!(ok, "{stderr}");
}

#[test]
fn a_small_chaos_run_on_three_nodes_on_postgresql_converges() {
    let Ok(postgres) = std::env::var("KALSYNC_TEST_POSTGRES_URL") else {
        println!("skipped: KALSYNC_TEST_POSTGRES_URL is not set");
        return;
    };
    let (report, stderr, ok) = chaos(
        seed(),
        &small("15", &["--nodes", "3", "--postgres", &postgres]),
    );
    converged(&report, &stderr, 15);
    assert_eq!(report["nodes"], 3);
    assert_eq!(report["database"], "postgresql");
    assert!(ok, "{stderr}");
}

#[test]
fn the_harness_sees_a_read_made_before_the_subscription() {
    // Exchange forgets its subscriptions now and then (not so often that the streams'
    // own re-reads after each cut hide the bug); the service, with the old order
    // restored on the streaming path, reads before it subscribes again.
    // A run sees the bug when the booking made as a lost subscription is made again
    // is not covered by a later change of the same mailbox: up to three seeds.
    let first = seed();
    let mut seen = None;
    for seed in (0..3).map(|i| first.wrapping_add(i)) {
        let (report, stderr, ok) = chaos(
            seed,
            &[
                "--users",
                "10",
                "--changes",
                "300",
                "--rate",
                "30",
                "--kills",
                "0",
                "--fault-rate",
                "0.02",
                "--faults",
                "exchange-forgets",
                "--settle-secs",
                "50",
                // The old order makes a lost subscription again at the next pass, half a
                // minute on: the booking made then must be seen.
                "--settle-at-least-secs",
                "45",
                "--broken",
                "read-before-subscribe",
            ],
        );
        assert_eq!(report["broken"], "read-before-subscribe");
        let streaming = report["divergences_by_reach"]["EWS streaming"]
            .as_u64()
            .unwrap_or(0);
        if streaming > 0 {
            assert!(!ok, "a run with divergences fails");
            seen = Some(streaming);
            break;
        }
        println!("seed {seed}: no streaming divergence this time\n{stderr}");
    }
    assert!(
        seen.is_some(),
        "the restored bug shows as divergences on the streaming path in one of three runs"
    );
}
