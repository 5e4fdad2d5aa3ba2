//! `kalsync serve` killed with SIGKILL in the middle of reads and of deliveries, then
//! started again: every user's status reaches the PBX, and an idempotent receiver
//! applies none twice.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use kalsync_graph_sim::{EventSpec, Faults, SimConfig, Simulator, UserSpec};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const USERS: usize = 20;

#[derive(Clone, Default)]
struct Pbx {
    /// Applied: webhook-id → (user, sequence).
    applied: Arc<Mutex<HashMap<String, (String, u64)>>>,
    /// Every POST, duplicates included.
    posts: Arc<Mutex<u64>>,
}

async fn receive(State(pbx): State<Pbx>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if standardwebhooks::Webhook::new(SECRET)
        .expect("secret")
        .verify(&body, &headers)
        .is_err()
    {
        return StatusCode::UNAUTHORIZED;
    }
    *pbx.posts.lock().expect("lock") += 1;
    // A slow PBX: a kill lands while deliveries are in flight (a real sleep: the node is
    // a child process).
    tokio::time::sleep(Duration::from_millis(150)).await;
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let id = headers["webhook-id"].to_str().expect("id").to_owned();
    let user = v["data"]["user"]["email"]
        .as_str()
        .expect("email")
        .to_owned();
    let sequence = v["data"]["sequence"].as_u64().expect("sequence");
    pbx.applied
        .lock()
        .expect("lock")
        .entry(id)
        .or_insert((user, sequence));
    StatusCode::NO_CONTENT
}

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(config: &std::path::Path) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kalsync"))
        .args([
            "serve",
            "--config",
            &config.to_string_lossy(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("text");
    assert!(first.starts_with("Kalsync on http://"), "{first}");
    std::thread::spawn(move || for _ in lines {});
    Node(child)
}

fn users_with_status(pbx: &Pbx) -> usize {
    let applied = pbx.applied.lock().expect("lock");
    let mut users: Vec<&String> = applied.values().map(|(u, _)| u).collect();
    users.sort();
    users.dedup();
    users.len()
}

#[test]
fn nothing_is_lost_or_applied_twice_across_sigkill() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = std::env::temp_dir().join(format!("kalsync-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (sim, sim_url, pbx, pbx_url, _guards) = runtime.block_on(async {
        let sim = Simulator::new(SimConfig::with_secret("t", "c", "s"));
        let now = jiff::Timestamp::now();
        for i in 0..USERS {
            let upn = format!("user{i:02}@acme.example");
            sim.add_user(UserSpec {
                upn: upn.clone(),
                id: None,
                display_name: None,
                time_zone: "W. Europe Standard Time".into(),
                working_hours: None,
            })
            .expect("user");
            sim.create_event(
                &upn,
                EventSpec::new(
                    "MOT: Styrelsemöte",
                    now - jiff::SignedDuration::from_mins(10),
                    now + jiff::SignedDuration::from_hours(3),
                ),
            )
            .expect("event");
        }
        // Slow reads: the first kill lands while mailboxes are being read.
        sim.set_faults(Faults {
            latency_ms: 150,
            ..Faults::default()
        });
        let (sim_url, sim_guard) = kalsync_graph_sim::spawn(sim.clone()).await.expect("sim");
        let pbx = Pbx::default();
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(pbx.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let pbx_url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        (sim, sim_url, pbx, pbx_url, (sim_guard, server))
    });
    let users: Vec<String> = (0..USERS)
        .map(|i| format!("\"user{i:02}@acme.example\""))
        .collect();
    let config = dir.join("kalsync.toml");
    std::fs::write(
        &config,
        format!(
            r#"database_url = "sqlite:{db}"
master_key_file = "{key}"
[outbound]
allow = ["127.0.0.0/8"]
[engine]
poll_interval_secs = 2
debounce_ms = 0
sync_concurrency = 4
[[companies]]
name = "Acme"
[[companies.targets]]
kind = "webhook"
name = "pbx"
url = "{pbx_url}"
signing_secret = "{SECRET}"
[[companies.instances]]
name = "M365"
source = {{ kind = "graph", tenant = "t", client_id = "c", client_secret = "s", graph_url = "{sim_url}v1.0/", login_url = "{sim_url}" }}
users = [{users}]
[companies.instances.settings]
template = "prefix"
"#,
            db = dir.join("k.db").display(),
            key = dir.join("k.key").display(),
            users = users.join(", "),
        ),
    )
    .expect("config");

    // Killed while reading: a few mailboxes read, none delivered yet. The nodes are child
    // processes, so the waits below are real time.
    let node = start(&config);
    std::thread::sleep(Duration::from_millis(400));
    drop(node);
    let after_first_kill = users_with_status(&pbx);

    // Killed while delivering: some statuses acknowledged, some in flight.
    let node = start(&config);
    let waited = Instant::now();
    while *pbx.posts.lock().expect("lock") < 4 && waited.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(node);
    let after_second_kill = users_with_status(&pbx);
    assert!(
        after_second_kill < USERS,
        "the kill came before the end (got {after_second_kill})"
    );

    // A third start finishes the work.
    let _node = start(&config);
    let waited = Instant::now();
    while users_with_status(&pbx) < USERS && waited.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        users_with_status(&pbx),
        USERS,
        "every user's status arrived (after kills: {after_first_kill}, {after_second_kill})"
    );
    let applied = pbx.applied.lock().expect("lock");
    let mut per_user: HashMap<&String, Vec<u64>> = HashMap::new();
    for (user, sequence) in applied.values() {
        per_user.entry(user).or_default().push(*sequence);
    }
    for (user, sequences) in per_user {
        assert_eq!(
            sequences.len(),
            1,
            "{user}: one status applied once, got sequences {sequences:?}"
        );
    }
    let posts = *pbx.posts.lock().expect("lock");
    assert!(
        posts >= USERS as u64,
        "{posts} POSTs for {USERS} users (re-sent ones are applied once)"
    );
    drop(sim);
    let _ = std::fs::remove_dir_all(dir);
}
