//! `kalsync demo` and `kalsync serve` as processes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::{kalsync, write_temp};

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_demo_serves_a_company_whose_statuses_are_read() {
    let child = Command::new(env!("CARGO_BIN_EXE_kalsync"))
        .args(["demo", "--listen", "127.0.0.1:0", "--users", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let mut child = Killed(child);
    let stdout = child.0.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("text");
    // The accounts and their fresh password.
    let password = lines
        .by_ref()
        .map_while(Result::ok)
        .take(20)
        .find_map(|l| {
            l.split("password ")
                .nth(1)
                .map(|p| p.trim().to_owned())
                .filter(|_| l.contains("sign in"))
        })
        .expect("the demo prints its password");
    let base = first
        .rsplit(' ')
        .next()
        .expect("url")
        .trim_end_matches('/')
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{first}");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .expect("client");
        // The operator signs in through the form.
        let dashboard = http
            .post(format!("{base}/sign-in"))
            .form(&[
                ("email", "operator@demo.example"),
                ("password", password.as_str()),
            ])
            .send()
            .await
            .expect("sign in");
        assert_eq!(dashboard.url().path(), "/");
        let dashboard = dashboard.text().await.expect("html");
        assert!(
            dashboard.contains("Demo AB") && dashboard.contains("Demo Lokal AB"),
            "{dashboard}"
        );
        let mut page = String::new();
        for _ in 0..100 {
            page = http
                .get(format!("{base}/overview"))
                .header("accept-language", "en")
                .send()
                .await
                .expect("page")
                .text()
                .await
                .expect("html");
            if !page.contains("not read yet") && page.contains("anna.andersson@demo.example") {
                break;
            }
            // The demo runs as a child process: its reads take real time.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            !page.contains("not read yet"),
            "every mailbox was read: {page}"
        );
        assert!(page.contains("of 10 away now"), "{page}");
        assert!(
            page.contains("@lokal.example") && page.contains("Demo Lokal AB"),
            "the on-premises company, read over EWS: {page}"
        );
        let metrics = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        assert!(metrics.contains("kalsync_syncs_total"), "{metrics}");
        // Demo AB's users are its directory's group: read without an error, all five.
        let mut metrics = metrics;
        for _ in 0..100 {
            if metrics.contains("kalsync_directory_members{") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            metrics = http
                .get(format!("{base}/metrics"))
                .send()
                .await
                .expect("metrics")
                .text()
                .await
                .expect("text");
        }
        let members = metrics
            .lines()
            .find(|l| l.starts_with("kalsync_directory_members{"))
            .unwrap_or_else(|| panic!("a directory run: {metrics}"));
        assert!(members.ends_with(" 5"), "the five of --users 5: {members}");
        assert!(
            !metrics.contains("kalsync_directory_errors_total{"),
            "{metrics}"
        );
    });
}

#[test]
fn serve_refuses_bad_settings_with_one_line() {
    let bad = write_temp("bad-settings.toml", "listen = \"here\"\n");
    let run = kalsync(&["serve", "--config", &bad.to_string_lossy()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("bad-settings.toml") && run.stderr.contains("listen"),
        "{}",
        run.stderr
    );
    let example = kalsync(&["config", "example"]);
    assert_eq!(example.code, 0);
    assert!(example.stdout.contains("[[companies]]"));
}

#[test]
fn setup_exchange_prints_the_powershell_for_the_version() {
    let run = kalsync(&[
        "setup",
        "exchange",
        "--version",
        "2016",
        "--account",
        "svc-kalsync",
        "--users-from-group",
        "Växel",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("New-ManagementScope"), "{}", run.stdout);
    assert!(
        run.stdout.contains("-Role ApplicationImpersonation"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("'Växel'"), "{}", run.stdout);
    let bad = kalsync(&["setup", "exchange", "--version", "2003", "--account", "svc"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert_eq!(bad.stderr.trim().lines().count(), 1, "{}", bad.stderr);
    assert!(bad.stderr.contains("2003"), "{}", bad.stderr);
}
