//! What several of the service's test binaries share: mailboxes in a simulated
//! organisation, and the service served on a loopback port until stopped.

#![allow(dead_code)]

use std::time::Duration;

use kalsync_graph_sim::{SimConfig, Simulator, UserSpec};
use kalsync_server::Settings;

/// A mailbox in Stockholm's zone.
pub(crate) fn mailbox(upn: &str) -> UserSpec {
    UserSpec {
        upn: upn.into(),
        id: None,
        display_name: None,
        time_zone: "W. Europe Standard Time".into(),
        working_hours: None,
    }
}

/// A simulated organisation with these mailboxes.
pub(crate) fn simulator(config: SimConfig, upns: &[&str]) -> Simulator {
    let sim = Simulator::new(config);
    for upn in upns {
        sim.add_user(mailbox(upn)).expect("user");
    }
    sim
}

/// A fresh folder for a test's database and key.
pub(crate) fn folder(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

/// A loopback listener and its base URL (`http://127.0.0.1:port`).
pub(crate) async fn listener() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, base)
}

/// Asks `check` every 100 ms, at most 100 times, until it holds; whether it did.
#[allow(dead_code)] // Used by some of the test binaries that share this module.
pub(crate) async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// `kalsync_server::run` in a task until [`Served::stop`].
pub(crate) struct Served {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), kalsync_server::ServerError>>,
    dir: std::path::PathBuf,
}

impl Served {
    /// Serves `settings` on `listener`; `dir` is removed when it stops.
    pub(crate) fn start(
        settings: Settings,
        listener: tokio::net::TcpListener,
        dir: std::path::PathBuf,
    ) -> Served {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(kalsync_server::run(settings, listener, async move {
            let _ = stopped.await;
        }));
        Served { stop, task, dir }
    }

    /// Stops it (within fifteen seconds) and removes its folder.
    pub(crate) async fn stop(self) {
        let dir = self.halt().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Stops it; whether it stopped within `limit`. Its folder is removed.
    #[allow(dead_code)] // Used by some of the test binaries that share this module.
    pub(crate) async fn stop_within(self, limit: Duration) -> bool {
        let _ = self.stop.send(());
        let stopped = tokio::time::timeout(limit, self.task).await.is_ok();
        let _ = std::fs::remove_dir_all(&self.dir);
        stopped
    }

    /// Stops it and keeps its folder for the caller to read; the folder.
    pub(crate) async fn halt(self) -> std::path::PathBuf {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(15), self.task).await;
        self.dir
    }
}
