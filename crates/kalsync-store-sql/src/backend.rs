//! Which database the store runs on and how it is opened: the URL that chooses SQLite or
//! PostgreSQL, the connection pool with each backend's settings, and the migrations.

use kalsync_store::{SecretBox, StoreError};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

use crate::checkpoint::Checkpoints;
use crate::rows::db;

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// The database a URL names: `sqlite:`, `postgres:` or `postgresql:`.
    pub fn of_url(url: &str) -> Option<Backend> {
        let scheme = url.split(':').next()?.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }
}

/// A database URL whose `Debug` and `Display` hide the password.
#[derive(Clone)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseUrl(url.into())
    }

    /// The URL, password included: for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // scheme://user:password@host → scheme://user:***@host
        match (self.0.find("://"), self.0.rfind('@')) {
            (Some(start), Some(at)) if at > start => {
                let credentials = &self.0[start + 3..at];
                match credentials.split_once(':') {
                    Some((user, _)) => {
                        write!(f, "{}{user}:***{}", &self.0[..start + 3], &self.0[at..])
                    }
                    None => f.write_str(&self.0),
                }
            }
            _ => f.write_str(&self.0),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// The store on SQLite or PostgreSQL.
pub struct SqlStore {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    pub(crate) secrets: SecretBox,
    /// SQLite's checkpoints on their own connection (a database in a file).
    pub(crate) checkpoints: Option<Checkpoints>,
}

impl SqlStore {
    /// Connects, creating an SQLite file when missing, and brings the schema up to date.
    /// SQLite runs in WAL mode with foreign keys on.
    pub async fn connect(url: &DatabaseUrl, secrets: SecretBox) -> Result<SqlStore, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url.expose()).ok_or_else(|| {
            StoreError::Database(format!("{url}: expected a sqlite: or postgres: URL"))
        })?;
        let mut address = url.expose().to_owned();
        let options = AnyPoolOptions::new();
        // A database in a file has its log checkpointed by a connection of its own.
        let own_checkpoints = backend == Backend::Sqlite
            && !address.contains(":memory:")
            && !address.contains("mode=memory");
        let options = match backend {
            Backend::Sqlite => {
                if !address.contains("mode=") && !address.contains(":memory:") {
                    address.push_str(if address.contains('?') {
                        "&mode=rwc"
                    } else {
                        "?mode=rwc"
                    });
                }
                // One connection: SQLite has one writer anyway, and a transaction that
                // reads before it writes would otherwise fail with SQLITE_BUSY_SNAPSHOT
                // when another connection committed in between. Work queues instead.
                options.max_connections(1).after_connect(move |conn, _| {
                    Box::pin(async move {
                        use sqlx::Executor as _;
                        for pragma in [
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA busy_timeout = 10000",
                            "PRAGMA synchronous = NORMAL",
                        ] {
                            conn.execute(pragma).await?;
                        }
                        if own_checkpoints {
                            conn.execute(
                                format!(
                                    "PRAGMA wal_autocheckpoint = {}",
                                    crate::checkpoint::FALLBACK_PAGES
                                )
                                .as_str(),
                            )
                            .await?;
                        }
                        Ok(())
                    })
                })
            }
            Backend::Postgres => options.max_connections(16),
        };
        let pool = options
            .connect(&address)
            .await
            .map_err(|e| StoreError::Database(format!("{url}: {e}")))?;
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await
                .map_err(db)?;
        }
        let migrator = migrator(backend);
        refuse_a_newer_schema(&pool, backend, &migrator, url).await?;
        migrator
            .run(&pool)
            .await
            .map_err(|e| StoreError::Database(format!("migrations: {e}")))?;
        let checkpoints = if own_checkpoints {
            Some(
                Checkpoints::start(&address)
                    .await
                    .map_err(|e| StoreError::Database(format!("{url}: {e}")))?,
            )
        } else {
            None
        };
        Ok(SqlStore {
            pool,
            backend,
            secrets,
            checkpoints,
        })
    }

    /// Closes the pool (and the checkpoints' connection).
    pub async fn close(&self) {
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.stop().await;
        }
        self.pool.close().await;
    }

    /// The schema's version: the last migration applied.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(applied_schema(&self.pool, self.backend).await?.unwrap_or(0))
    }

    pub(crate) fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The migrations this Kalsync brings for a backend.
fn migrator(backend: Backend) -> sqlx::migrate::Migrator {
    match backend {
        Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("migrations/postgres"),
    }
}

/// The newest schema version this Kalsync knows.
pub fn latest_schema(backend: Backend) -> i64 {
    migrator(backend)
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

/// The schema version of a database, without changing it: `None` when Kalsync has not
/// made it yet (an SQLite file that does not exist, an empty PostgreSQL database).
pub async fn schema_of(url: &DatabaseUrl) -> Result<Option<i64>, StoreError> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of_url(url.expose()).ok_or_else(|| {
        StoreError::Database(format!("{url}: expected a sqlite: or postgres: URL"))
    })?;
    let mut address = url.expose().to_owned();
    if backend == Backend::Sqlite {
        address.push_str(if address.contains('?') {
            "&mode=ro"
        } else {
            "?mode=ro"
        });
    }
    let pool = match AnyPoolOptions::new()
        .max_connections(1)
        .connect(&address)
        .await
    {
        Ok(pool) => pool,
        // No file: no database yet.
        Err(_) if backend == Backend::Sqlite => return Ok(None),
        Err(e) => return Err(StoreError::Database(format!("{url}: {e}"))),
    };
    let applied = applied_schema(&pool, backend).await;
    pool.close().await;
    applied
}

/// The last migration applied to a database, `None` for a database Kalsync has not
/// touched yet.
async fn applied_schema(pool: &AnyPool, backend: Backend) -> Result<Option<i64>, StoreError> {
    let exists = match backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
        }
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
        }
    };
    let tables: i64 = sqlx::query_scalar(exists)
        .fetch_one(pool)
        .await
        .map_err(db)?;
    if tables == 0 {
        return Ok(None);
    }
    sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
        .map_err(db)
}

/// A database a newer Kalsync has migrated is left alone: this binary would not know its
/// tables, and sqlx's own refusal ("migration 15 was previously applied but is missing")
/// does not say what to do.
async fn refuse_a_newer_schema(
    pool: &AnyPool,
    backend: Backend,
    migrator: &sqlx::migrate::Migrator,
    url: &DatabaseUrl,
) -> Result<(), StoreError> {
    let ours = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    match applied_schema(pool, backend).await? {
        Some(theirs) if theirs > ours => Err(StoreError::Database(format!(
            "{url} was last used by a newer Kalsync (its schema is at version {theirs}, this \
             Kalsync {} knows up to {ours}): run that version or a later one, or restore a \
             backup made with this one; nothing was changed",
            env!("CARGO_PKG_VERSION")
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_backend_and_hide_passwords() {
        assert_eq!(Backend::of_url("sqlite:kalsync.db"), Some(Backend::Sqlite));
        assert_eq!(
            Backend::of_url("postgres://kalsync:hunter2@db/kalsync"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::of_url("mysql://x"), None);
        let url = DatabaseUrl::new("postgres://kalsync:hunter2@db.example:5432/kalsync");
        assert_eq!(
            url.to_string(),
            "postgres://kalsync:***@db.example:5432/kalsync"
        );
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(
            DatabaseUrl::new("sqlite:data/k.db").to_string(),
            "sqlite:data/k.db"
        );
    }
}
