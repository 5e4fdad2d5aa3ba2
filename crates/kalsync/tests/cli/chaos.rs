//! The convergence harness at a size that fits every CI run: `kalsync chaos` with a
//! fresh seed (printed; `KALSYNC_CHAOS_SEED` repeats one), faults, clock steps (where
//! libfaketime is installed, as `.ci/run` does) and two SIGKILLs, must end with every
//! user equal to the oracle, nothing lost and nothing applied twice.

use std::process::Command;

#[test]
fn a_small_chaos_run_converges() {
    let seed = std::env::var("KALSYNC_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    println!("chaos seed {seed} (repeat with KALSYNC_CHAOS_SEED={seed})");
    let out = Command::new(env!("CARGO_BIN_EXE_kalsync"))
        .args([
            "chaos",
            "--users",
            "12",
            "--changes",
            "240",
            "--rate",
            "40",
            "--kills",
            "2",
            "--fault-rate",
            "0.15",
            "--settle-secs",
            "300",
            "--json",
            "--seed",
            &seed.to_string(),
        ])
        .output()
        .expect("kalsync chaos runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("a JSON report ({e}): {stdout}\n{stderr}"));
    assert_eq!(report["seed"], seed);
    assert_eq!(report["divergences"], 0, "{report:#}\n{stderr}");
    assert_eq!(report["lost_deliveries"], 0, "{report:#}\n{stderr}");
    assert_eq!(report["duplicates"], 0, "{report:#}\n{stderr}");
    assert_eq!(report["users_compared"], 12, "{report:#}\n{stderr}");
    assert!(
        report["faults_by_kind"]["SIGKILL and restart"] == 2,
        "{report:#}"
    );
    assert!(
        report["statuses_received"].as_u64().unwrap_or(0) > 0,
        "{report:#}"
    );
    assert!(out.status.success(), "{stderr}");
}
