//! SQLite's WAL checkpoints on a connection of their own, so the store's one connection
//! never pays for them.
//!
//! SQLite checkpoints the write-ahead log inside whichever commit crosses 1,000 pages:
//! that commit copies the pages back and waits for the disk twice, 20 ms as a rule and
//! 200 ms or more when the disk is slow — and everything queued behind the store's one
//! connection waits with it (the change-to-PBX benchmark's late changes). Here a task
//! checkpoints every [`CHECKPOINT_EVERY`] on its own connection in `PASSIVE` mode, which
//! takes no lock the writer needs, and the writer starts the log afresh once all of it is
//! copied; the store's connection checkpoints only past [`FALLBACK_PAGES`], which the
//! log never reaches while the task runs — should the task be gone (its runtime ended),
//! the log still cannot grow without bound. The task ends with the store (dropped or
//! closed).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::{AnyConnection, Connection as _};

/// How often the log is checkpointed: what a busy writer adds in this time is what the
/// log holds at most (a few MB).
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// The log's size, in pages of 4 KB, past which the store's own connection checkpoints
/// (SQLite's `wal_autocheckpoint`; its default is 1,000).
pub(crate) const FALLBACK_PAGES: u32 = 25_000;

/// The checkpointing task of one SQLite store.
pub(crate) struct Checkpoints {
    stop: tokio::sync::watch::Sender<bool>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// How many checkpoints the task has made: the tests wait for them.
    #[cfg_attr(not(test), allow(dead_code))]
    done: Arc<AtomicU64>,
}

impl Checkpoints {
    /// Opens the checkpointing connection to the database at `address` and starts the
    /// task.
    pub(crate) async fn start(address: &str) -> Result<Checkpoints, sqlx::Error> {
        let mut connection = AnyConnection::connect(address).await?;
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let done = Arc::new(AtomicU64::new(0));
        let counted = done.clone();
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval(CHECKPOINT_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    // Told to stop, or the store is gone.
                    _ = stopped.changed() => break,
                }
                match checkpoint(&mut connection).await {
                    Ok(_) => {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the database's log could not be checkpointed")
                    }
                }
            }
            // What is left is checkpointed when the last connection closes.
            let _ = connection.close().await;
        });
        Ok(Checkpoints {
            stop,
            task: std::sync::Mutex::new(Some(task)),
            done,
        })
    }

    /// Stops the task and waits for its connection to close.
    pub(crate) async fn stop(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().map(|mut t| t.take()).unwrap_or(None);
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// How many checkpoints the task has made.
    #[cfg(test)]
    pub(crate) fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }
}

/// One checkpoint of what the log holds, without waiting for the writer or the readers:
/// how many of the log's pages are now in the database, and how many it holds.
pub(crate) async fn checkpoint(connection: &mut AnyConnection) -> Result<(i64, i64), sqlx::Error> {
    let (_busy, log, copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(connection)
        .await?;
    Ok((copied, log))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DatabaseUrl, SqlStore};
    use kalsync_store::SecretBox;

    async fn store(name: &str) -> (SqlStore, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "kalsync-checkpoint-{name}-{}",
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let url = DatabaseUrl::new(format!("sqlite:{}", dir.join("k.db").display()));
        let store = SqlStore::connect(&url, SecretBox::ephemeral())
            .await
            .expect("store");
        (store, dir)
    }

    /// Writes `n` transactions of 4 KB each.
    async fn write(store: &SqlStore, n: usize) {
        sqlx::query("CREATE TABLE IF NOT EXISTS scratch (v TEXT)")
            .execute(&store.pool)
            .await
            .expect("table");
        for _ in 0..n {
            sqlx::query("INSERT INTO scratch (v) VALUES ($1)")
                .bind("x".repeat(4096))
                .execute(&store.pool)
                .await
                .expect("insert");
        }
    }

    fn wal_size(dir: &std::path::Path) -> u64 {
        std::fs::metadata(dir.join("k.db-wal")).map_or(0, |m| m.len())
    }

    #[tokio::test]
    async fn the_stores_connection_leaves_checkpoints_to_the_task_and_one_copies_the_whole_log() {
        let (store, dir) = store("step").await;
        let (auto,): (i64,) = sqlx::query_as("PRAGMA wal_autocheckpoint")
            .fetch_one(&store.pool)
            .await
            .expect("pragma");
        assert_eq!(
            auto,
            i64::from(FALLBACK_PAGES),
            "the writer checkpoints inside a commit only when the task is gone"
        );
        store.checkpoints.as_ref().expect("task").stop().await;
        write(&store, 300).await;
        let mut own = AnyConnection::connect(&format!("sqlite:{}", dir.join("k.db").display()))
            .await
            .expect("connection");
        let (copied, log) = checkpoint(&mut own).await.expect("checkpoint");
        assert!(log >= 300, "300 writes are in the log: {log}");
        assert_eq!(copied, log, "all of it copied");
        let _ = own.close().await;
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn the_log_does_not_grow_while_the_task_checkpoints() {
        let (store, dir) = store("loop").await;
        let checkpoints = store.checkpoints.as_ref().expect("task");
        // Three bursts, each followed by a checkpoint of the task's: each starts the
        // log afresh, so it holds one burst, not three.
        write(&store, 200).await;
        let one_burst = wal_size(&dir);
        assert!(
            one_burst > 200 * 4096,
            "the burst is in the log: {one_burst}"
        );
        for _ in 0..2 {
            let before = checkpoints.done();
            let waited = std::time::Instant::now();
            while checkpoints.done() < before + 2 {
                assert!(
                    waited.elapsed() < Duration::from_secs(30),
                    "the task checkpoints every {CHECKPOINT_EVERY:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            write(&store, 200).await;
        }
        let after = wal_size(&dir);
        assert!(
            after < one_burst * 3 / 2,
            "the log holds about one burst ({one_burst} bytes), not three: {after}"
        );
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
