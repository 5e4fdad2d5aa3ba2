//! Which database the store runs on and how it is opened: the URL that chooses SQLite or
//! PostgreSQL, the connection pool with each backend's settings, and the migrations.

use kalsync_store::{SecretBox, StoreError};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

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
                options.max_connections(1).after_connect(|conn, _| {
                    Box::pin(async move {
                        use sqlx::Executor as _;
                        for pragma in [
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA busy_timeout = 10000",
                            "PRAGMA synchronous = NORMAL",
                        ] {
                            conn.execute(pragma).await?;
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
        let migrated = match backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&pool).await,
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&pool).await,
        };
        migrated.map_err(|e| StoreError::Database(format!("migrations: {e}")))?;
        Ok(SqlStore {
            pool,
            backend,
            secrets,
        })
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
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
