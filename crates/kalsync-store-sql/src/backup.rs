//! Backups of an SQLite database and their restore (`kalsync db backup` / `restore`):
//! a consistent copy taken while the service runs, and a checked restore that keeps the
//! database it replaces. PostgreSQL has `pg_dump` for this; the error says so.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use jiff::Timestamp;
use kalsync_store::StoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions as _, Connection as _};

use crate::backend::{Backend, DatabaseUrl, latest_schema};

/// What a backup or a restore copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// The file written.
    pub file: PathBuf,
    /// Its schema version (the last migration applied).
    pub schema: i64,
    /// The users it holds.
    pub users: i64,
    /// Its size in bytes.
    pub bytes: u64,
    /// On a restore, where the database it replaced was kept.
    pub kept: Option<PathBuf>,
}

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::Invalid(message.into())
}

/// The file of an SQLite URL; PostgreSQL is refused with what to use instead.
fn sqlite_file(url: &DatabaseUrl, verb: &str) -> Result<PathBuf, StoreError> {
    match Backend::of_url(url.expose()) {
        Some(Backend::Sqlite) => {}
        Some(Backend::Postgres) => {
            return Err(invalid(format!(
                "{url} is PostgreSQL: {verb} it with PostgreSQL's own tools \
                 (`pg_dump --format=custom --file=kalsync.dump <url>`, \
                 `pg_restore --clean --if-exists --dbname=<url> kalsync.dump`)"
            )));
        }
        None => return Err(invalid(format!("{url}: expected a sqlite: URL"))),
    }
    let options =
        SqliteConnectOptions::from_str(url.expose()).map_err(|e| invalid(format!("{url}: {e}")))?;
    let file = options.get_filename();
    if file.as_os_str().is_empty() || file.to_string_lossy().contains(":memory:") {
        return Err(invalid(format!("{url} is not a file")));
    }
    Ok(file.to_path_buf())
}

async fn open(file: &Path, read_only: bool) -> Result<SqliteConnection, StoreError> {
    SqliteConnectOptions::new()
        .filename(file)
        .read_only(read_only)
        .create_if_missing(false)
        .busy_timeout(std::time::Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| invalid(format!("{}: {e}", file.display())))
}

/// The schema version and users of a Kalsync database; anything else is refused.
async fn describe(conn: &mut SqliteConnection, file: &Path) -> Result<(i64, i64), StoreError> {
    let check: String = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| invalid(format!("{} is not an SQLite database: {e}", file.display())))?;
    if check != "ok" {
        return Err(invalid(format!(
            "{} is damaged (SQLite's check says: {check})",
            file.display()
        )));
    }
    let schema: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut *conn)
            .await
            .map_err(|_| invalid(format!("{} is not a Kalsync database", file.display())))?;
    let schema =
        schema.ok_or_else(|| invalid(format!("{} is not a Kalsync database", file.display())))?;
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&mut *conn)
        .await
        .map_err(|_| invalid(format!("{} is not a Kalsync database", file.display())))?;
    Ok((schema, users))
}

/// A consistent copy of the database while it is in use (SQLite's `VACUUM INTO`: one
/// read transaction, so nodes keep writing meanwhile). The copy is a new file.
pub async fn backup(url: &DatabaseUrl, to: &Path) -> Result<Copied, StoreError> {
    let file = sqlite_file(url, "back up")?;
    if to.exists() {
        return Err(invalid(format!(
            "{} exists already: a backup is written to a new file",
            to.display()
        )));
    }
    let mut conn = open(&file, true).await?;
    let (schema, users) = describe(&mut conn, &file).await?;
    sqlx::query("VACUUM INTO $1")
        .bind(to.to_string_lossy().into_owned())
        .execute(&mut conn)
        .await
        .map_err(|e| invalid(format!("{}: {e}", to.display())))?;
    conn.close().await.map_err(|e| invalid(e.to_string()))?;
    owner_only(to)?;
    Ok(Copied {
        file: to.to_path_buf(),
        schema,
        users,
        bytes: std::fs::metadata(to).map(|m| m.len()).unwrap_or(0),
        kept: None,
    })
}

/// Puts a backup in the database's place. Refused while a node holds users in the
/// database (a lease not yet run out at `now`), for a file that is not a Kalsync
/// database or is damaged, and for one of a newer Kalsync. The database replaced is
/// kept beside it as `<name>.before-restore-<time>`; the backup itself is not changed.
pub async fn restore(from: &Path, url: &DatabaseUrl, now: Timestamp) -> Result<Copied, StoreError> {
    let file = sqlite_file(url, "restore")?;
    let mut backup = open(from, true).await?;
    let (schema, users) = describe(&mut backup, from).await?;
    let ours = latest_schema(Backend::Sqlite);
    if schema > ours {
        return Err(invalid(format!(
            "{} was made by a newer Kalsync (schema {schema}; this one knows up to {ours})",
            from.display()
        )));
    }
    if file.exists() {
        let mut current = open(&file, true).await?;
        // A node's leases hold until its row in `nodes` says (a database from before
        // that table: until each lease's own time).
        let running: Option<String> = match sqlx::query_scalar(
            "SELECT l.node FROM leases l LEFT JOIN nodes n ON n.name = l.node \
             WHERE COALESCE(n.expires_ms, l.expires_ms) > $1 LIMIT 1",
        )
        .bind(now.as_millisecond())
        .fetch_optional(&mut current)
        .await
        {
            Ok(node) => node,
            Err(_) => sqlx::query_scalar("SELECT node FROM leases WHERE expires_ms > $1 LIMIT 1")
                .bind(now.as_millisecond())
                .fetch_optional(&mut current)
                .await
                .unwrap_or(None),
        };
        current.close().await.map_err(|e| invalid(e.to_string()))?;
        if let Some(node) = running {
            return Err(invalid(format!(
                "node {node} is running on {}: stop every node first (systemctl stop kalsync)",
                file.display()
            )));
        }
    }
    let staged = sibling(&file, ".restoring");
    let _ = std::fs::remove_file(&staged);
    sqlx::query("VACUUM INTO $1")
        .bind(staged.to_string_lossy().into_owned())
        .execute(&mut backup)
        .await
        .map_err(|e| invalid(format!("{}: {e}", staged.display())))?;
    backup.close().await.map_err(|e| invalid(e.to_string()))?;
    owner_only(&staged)?;
    let kept = if file.exists() {
        let stamp = now.strftime("%Y%m%dT%H%M%SZ").to_string();
        let kept = sibling(&file, &format!(".before-restore-{stamp}"));
        // The write-ahead log belongs to the file it was written for: it goes with it,
        // or SQLite would replay the old database's pages into the restored one.
        for suffix in ["", "-wal", "-shm"] {
            let from = sibling(&file, suffix);
            if from.exists() {
                std::fs::rename(&from, sibling(&kept, suffix))
                    .map_err(|e| invalid(format!("{}: {e}", from.display())))?;
            }
        }
        Some(kept)
    } else {
        None
    };
    std::fs::rename(&staged, &file).map_err(|e| invalid(format!("{}: {e}", file.display())))?;
    Ok(Copied {
        bytes: std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0),
        file,
        schema,
        users,
        kept,
    })
}

/// A copy holds people's data and sealed secrets: readable by its owner alone, whatever
/// the umask it was written under.
fn owner_only(file: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| invalid(format!("{}: {e}", file.display())))?;
    }
    Ok(())
}

/// `file` with `suffix` added to its name.
fn sibling(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
