//! Runs the `kalsync` binary and finds the shared fixtures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `../shared/fixtures/ics`, beside the checkout (a test checks [`have_fixtures`]
/// first).
pub(crate) fn ics_fixtures() -> PathBuf {
    kalsync_testkit::fixtures("ics").expect("the shared .ics fixtures")
}

/// Whether the shared `.ics` fixtures are beside the checkout (else the test is
/// skipped, see `kalsync-testkit`).
pub(crate) fn have_fixtures() -> bool {
    kalsync_testkit::fixtures("ics").is_some()
}

pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

pub(crate) fn kalsync(args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_kalsync"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("kalsync runs");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// `preview --format json`, parsed; panics with stderr when it did not succeed.
pub(crate) fn preview_json(args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["preview", "--format", "json"];
    all.extend_from_slice(args);
    let run = kalsync(&all);
    assert_eq!(run.code, 0, "kalsync {all:?} failed: {}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON output");
    v["absences"].as_array().cloned().expect("absences")
}

pub(crate) fn write_temp(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kalsync-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write");
    path
}

/// A rules file that turns every booking into `busy` information, to see every event.
pub(crate) fn everything_rules() -> PathBuf {
    write_temp(
        "everything.toml",
        "[[rules]]\nwhen.show_as = [\"free\", \"tentative\", \"busy\", \"oof\", \"working_elsewhere\", \"unknown\"]\nreason = \"busy\"\nmode = \"info\"\n",
    )
}

pub(crate) fn field<'a>(a: &'a serde_json::Value, name: &str) -> &'a str {
    a[name].as_str().unwrap_or_else(|| panic!("{name} in {a}"))
}
