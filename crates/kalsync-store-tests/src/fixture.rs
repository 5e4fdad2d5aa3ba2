//! Stores on fresh databases for the suite: an SQLite file or a PostgreSQL database, and
//! how to reopen and remove them.

use kalsync_store::SecretBox;
use kalsync_store_sql::{DatabaseUrl, SqlStore};
use sqlx::Connection as _;

/// A store on a fresh database, and how to reopen and remove it.
pub struct Fixture {
    /// The store.
    pub store: SqlStore,
    /// Its URL.
    pub url: DatabaseUrl,
    /// Its key.
    pub secrets: SecretBox,
    cleanup: Cleanup,
}

enum Cleanup {
    File(std::path::PathBuf),
    Database { admin: String, name: String },
}

impl Fixture {
    /// Closes the store and removes its database.
    pub async fn finish(self) {
        self.store.close().await;
        match self.cleanup {
            Cleanup::File(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Database { admin, name } => {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            }
        }
    }

    /// The same database opened again (a restart).
    pub async fn reopen(&self) -> SqlStore {
        SqlStore::connect(&self.url, self.secrets.clone())
            .await
            .expect("reopens")
    }
}

/// A store on a new SQLite file.
pub async fn sqlite() -> Fixture {
    let dir = std::env::temp_dir().join(format!("kalsync-store-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = DatabaseUrl::new(format!("sqlite:{}", dir.join("kalsync.db").display()));
    let secrets = SecretBox::ephemeral();
    let store = SqlStore::connect(&url, secrets.clone())
        .await
        .expect("sqlite store");
    Fixture {
        store,
        url,
        secrets,
        cleanup: Cleanup::File(dir),
    }
}

/// A store on a new PostgreSQL database, when `KALSYNC_TEST_POSTGRES_URL` is set.
pub async fn postgres() -> Option<Fixture> {
    let admin = std::env::var("KALSYNC_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    let name = format!("kalsync_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("KALSYNC_TEST_POSTGRES_URL reachable");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(b, _)| b)
        .to_owned();
    let url = DatabaseUrl::new(format!("{base}/{name}"));
    let secrets = SecretBox::ephemeral();
    let store = SqlStore::connect(&url, secrets.clone())
        .await
        .expect("postgres store");
    Some(Fixture {
        store,
        url,
        secrets,
        cleanup: Cleanup::Database { admin, name },
    })
}
