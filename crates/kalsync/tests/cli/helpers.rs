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

/// A child process, killed when dropped.
pub(crate) struct Killed(pub(crate) std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `kalsync sim graph` with five sample mailboxes (secret `cli-test-secret`) on a free
/// loopback port: the process, its address and the lines it printed after the first.
pub(crate) fn graph_simulator() -> (
    Killed,
    String,
    std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
) {
    use std::io::BufRead as _;
    let child = Command::new(env!("CARGO_BIN_EXE_kalsync"))
        .args([
            "sim",
            "graph",
            "--listen",
            "127.0.0.1:0",
            "--users",
            "5",
            "--client-secret",
            "cli-test-secret",
            "--monday",
            "2026-11-23",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let mut child = Killed(child);
    let stdout = child.0.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("text");
    let base = first.rsplit(' ').next().expect("url").to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{first}");
    (child, base, lines)
}

/// A settings file in `dir` with its own database and key there (`k.db`, `key`), the
/// loopback allowed (the simulators listen there), and `rest` after; its path.
pub(crate) fn settings_in(dir: &Path, rest: &str) -> String {
    let path = dir.join("kalsync.toml");
    std::fs::write(
        &path,
        format!(
            "database_url = \"sqlite:{}\"\nmaster_key_file = \"{}\"\n\n[outbound]\nallow = [\"127.0.0.0/8\"]\n\n{rest}",
            dir.join("k.db").display(),
            dir.join("key").display()
        ),
    )
    .expect("settings");
    path.to_str().expect("path").to_owned()
}

/// The store of the database a [`settings_in`] file names.
pub(crate) async fn store_in(dir: &Path) -> kalsync_store_sql::SqlStore {
    kalsync_store_sql::SqlStore::connect(
        &kalsync_store_sql::DatabaseUrl::new(format!("sqlite:{}", dir.join("k.db").display())),
        kalsync_store::SecretBox::from_key_file(&dir.join("key")).expect("key"),
    )
    .await
    .expect("store")
}

/// The `source` of a Graph instance read from the simulator at `base`.
pub(crate) fn simulated_graph(base: &str) -> String {
    format!(
        "source = {{ kind = \"graph\", tenant = \"00000000-0000-4000-8000-00000000c0de\", client_id = \"00000000-0000-4000-8000-0000000a99e1\", client_secret = \"cli-test-secret\", graph_url = \"{base}v1.0/\", login_url = \"{base}\" }}"
    )
}
