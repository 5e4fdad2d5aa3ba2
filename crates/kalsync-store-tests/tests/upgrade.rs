//! Upgrades keep data: each release's database (`releases/<version>/`, dumped by
//! `scripts/release-database`) opened by this Kalsync, on SQLite and PostgreSQL, with
//! every user, booking, secret and pending delivery found again; a database of a newer
//! Kalsync refused untouched; an SQLite backup taken while in use, and restored.

use std::path::{Path, PathBuf};

use jiff::SignedDuration;
use kalsync_core::EmailAddress;
use kalsync_store::{NewUser, SecretBox, Store};
use kalsync_store_sql::{DatabaseUrl, SqlStore, latest_schema, schema_of};
use kalsync_store_tests::release;
use kalsync_testkit::at;
use sqlx::Connection as _;

fn releases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("releases");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("releases/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    found.sort();
    assert!(!found.is_empty(), "at least one release database");
    found
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kalsync-upgrade-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A new SQLite file holding a release's dump, not yet opened by the store.
async fn sqlite_release(release: &Path, dir: &Path) -> DatabaseUrl {
    let file = dir.join("kalsync.db");
    let dump = std::fs::read_to_string(release.join("sqlite.sql")).expect("sqlite.sql");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}?mode=rwc", file.display()))
        .await
        .expect("sqlite");
    sqlx::raw_sql(&dump)
        .execute(&mut conn)
        .await
        .expect("the dump loads");
    conn.close().await.expect("close");
    DatabaseUrl::new(format!("sqlite:{}", file.display()))
}

/// A new PostgreSQL database holding a release's dump, when the test server is named.
async fn postgres_release(release: &Path) -> Option<(DatabaseUrl, String, String)> {
    let admin = std::env::var("KALSYNC_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    let (url, name) = new_postgres_database(&admin, "upgrade").await;
    let dump = std::fs::read_to_string(release.join("postgres.sql")).expect("postgres.sql");
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("new db");
    sqlx::raw_sql(&dump)
        .execute(&mut conn)
        .await
        .expect("the dump loads");
    conn.close().await.expect("close");
    Some((DatabaseUrl::new(url), admin, name))
}

/// A new, empty database on the server `admin` names: its URL and its name.
async fn new_postgres_database(admin: &str, what: &str) -> (String, String) {
    let name = format!("kalsync_{what}_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin).await.expect("postgres");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create");
    conn.close().await.expect("close");
    let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
    (format!("{base}/{name}"), name)
}

async fn drop_database(admin: &str, name: &str) {
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}

/// Opens a release's database with this Kalsync and finds everything in it.
async fn upgrades(url: &DatabaseUrl, backend: kalsync_store_sql::Backend) {
    let before = schema_of(url).await.expect("schema").expect("a release");
    assert!(before <= latest_schema(backend));
    let store = SqlStore::connect(url, release::secrets())
        .await
        .expect("this Kalsync opens the release's database");
    assert_eq!(
        store.schema_version().await.expect("version"),
        latest_schema(backend),
        "migrated to this Kalsync's schema"
    );
    release::check(&store).await;
    store.close().await;
    // Opened again: nothing is migrated twice.
    let again = SqlStore::connect(url, release::secrets())
        .await
        .expect("again");
    release::check(&again).await;
    again.close().await;
}

/// A newer Kalsync's database is refused with what to do, and left as it was.
async fn a_newer_schema_is_refused(url: &DatabaseUrl, conn_url: &str) {
    let future = latest_schema(kalsync_store_sql::Backend::of_url(conn_url).expect("backend")) + 1;
    let mut conn = sqlx::AnyConnection::connect(conn_url).await.expect("conn");
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ($1, 'from a newer Kalsync', TRUE, $2, 0)",
    )
    .bind(future)
    .bind(vec![0_u8; 48])
    .execute(&mut conn)
    .await
    .expect("a newer migration");
    conn.close().await.expect("close");
    let Err(refused) = SqlStore::connect(url, release::secrets()).await else {
        panic!("a newer schema must be refused")
    };
    let message = refused.to_string();
    assert!(
        message.contains("newer Kalsync")
            && message.contains(&format!("version {future}"))
            && message.contains("nothing was changed"),
        "{message}"
    );
    assert_eq!(schema_of(url).await.expect("schema"), Some(future));
}

#[tokio::test]
async fn every_release_upgrades_on_sqlite_and_a_newer_one_is_refused() {
    sqlx::any::install_default_drivers();
    for release in releases() {
        let dir = temp_dir();
        let url = sqlite_release(&release, &dir).await;
        upgrades(&url, kalsync_store_sql::Backend::Sqlite).await;
        a_newer_schema_is_refused(&url, url.expose()).await;
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[tokio::test]
async fn every_release_upgrades_on_postgres_and_a_newer_one_is_refused() {
    sqlx::any::install_default_drivers();
    for release in releases() {
        let Some((url, admin, name)) = postgres_release(&release).await else {
            eprintln!("skipped: KALSYNC_TEST_POSTGRES_URL is not set");
            return;
        };
        upgrades(&url, kalsync_store_sql::Backend::Postgres).await;
        a_newer_schema_is_refused(&url, url.expose()).await;
        drop_database(&admin, &name).await;
    }
}

#[tokio::test]
async fn a_backup_taken_in_use_restores_and_a_running_node_is_not_overwritten() {
    let release = releases().pop().expect("a release");
    let dir = temp_dir();
    let url = sqlite_release(&release, &dir).await;
    let store = SqlStore::connect(&url, release::secrets())
        .await
        .expect("opens");
    let now = at("2026-11-23 11:00");
    // A node holds the users while the backup is taken.
    assert_eq!(
        store
            .lease_users("node-a", now, SignedDuration::from_secs(60), 100)
            .await
            .expect("lease")
            .len(),
        3
    );
    let backup = dir.join("backup.db");
    let copied = kalsync_store_sql::backup(&url, &backup)
        .await
        .expect("backup");
    assert_eq!(copied.users, 3);
    assert!(
        kalsync_store_sql::backup(&url, &backup).await.is_err(),
        "a backup is never written over a file"
    );
    // After the backup, a fourth user.
    let instance = store.companies().await.expect("companies")[0].id;
    let instance = store.instances(instance).await.expect("instances")[0].id;
    store
        .add_user(NewUser {
            instance,
            email: EmailAddress::parse("dora@uppgradering.example").expect("email"),
            display_name: None,
            extension: None,
        })
        .await
        .expect("Dora");
    let refused = kalsync_store_sql::restore(&backup, &url, now)
        .await
        .expect_err("node-a still holds its lease");
    assert!(refused.to_string().contains("node-a"), "{refused}");
    store.close().await;
    // What is not a Kalsync database, or is damaged, is refused.
    let stranger = dir.join("stranger.db");
    std::fs::write(&stranger, b"not a database at all, just bytes").expect("write");
    assert!(
        kalsync_store_sql::restore(&stranger, &url, now)
            .await
            .is_err()
    );
    let postgres = DatabaseUrl::new("postgres://kalsync:secret@db.example/kalsync");
    let told = kalsync_store_sql::backup(&postgres, &dir.join("pg.db"))
        .await
        .expect_err("PostgreSQL has pg_dump");
    assert!(
        told.to_string().contains("pg_dump") && !told.to_string().contains("secret@"),
        "{told}"
    );
    // Once the lease ran out (the node stopped), the backup goes back in place.
    let later = now + SignedDuration::from_secs(120);
    let restored = kalsync_store_sql::restore(&backup, &url, later)
        .await
        .expect("restore");
    let kept = restored.kept.expect("the replaced database is kept");
    assert!(kept.exists());
    let store = SqlStore::connect(&url, release::secrets())
        .await
        .expect("opens");
    release::check(&store).await;
    assert_eq!(
        store.users(instance).await.expect("users").len(),
        3,
        "Dora came after the backup"
    );
    store.close().await;
    let old = SqlStore::connect(
        &DatabaseUrl::new(format!("sqlite:{}", kept.display())),
        release::secrets(),
    )
    .await
    .expect("the kept database opens");
    assert_eq!(old.users(instance).await.expect("users").len(), 4);
    old.close().await;
    // The wrong key opens the database but not its secrets.
    let wrong = SqlStore::connect(&url, SecretBox::ephemeral())
        .await
        .expect("opens");
    let company = wrong.companies().await.expect("companies")[0].id;
    assert!(wrong.instances(company).await.is_err());
    wrong.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Writes this release's database into `$KALSYNC_RELEASE_DIR` (`scripts/release-database`).
#[tokio::test]
#[ignore = "run by scripts/release-database when a release is made"]
async fn write_this_release() {
    let out = PathBuf::from(std::env::var("KALSYNC_RELEASE_DIR").expect("KALSYNC_RELEASE_DIR"));
    std::fs::create_dir_all(&out).expect("release dir");
    let dir = temp_dir();
    let file = dir.join("kalsync.db");
    let url = DatabaseUrl::new(format!("sqlite:{}", file.display()));
    let store = SqlStore::connect(&url, release::secrets())
        .await
        .expect("sqlite");
    release::write(&store).await;
    store.close().await;
    let dump = std::process::Command::new("sqlite3")
        .arg(&file)
        .arg(".dump")
        .output()
        .expect("sqlite3");
    assert!(dump.status.success());
    std::fs::write(out.join("sqlite.sql"), dump.stdout).expect("write");
    let admin = std::env::var("KALSYNC_TEST_POSTGRES_URL").expect("KALSYNC_TEST_POSTGRES_URL");
    let (pg, name) = new_postgres_database(&admin, "release").await;
    let store = SqlStore::connect(&DatabaseUrl::new(pg.clone()), release::secrets())
        .await
        .expect("postgres store");
    release::write(&store).await;
    store.close().await;
    let dump = std::process::Command::new("pg_dump")
        .args([
            "--inserts",
            "--no-owner",
            "--no-privileges",
            "--no-comments",
        ])
        .arg(format!("--dbname={pg}"))
        .output()
        .expect("pg_dump");
    assert!(dump.status.success());
    // psql's meta-commands (`\restrict`) are not SQL.
    let sql: String = String::from_utf8(dump.stdout)
        .expect("utf-8")
        .lines()
        .filter(|l| !l.starts_with('\\'))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(out.join("postgres.sql"), sql).expect("write");
    drop_database(&admin, &name).await;
    let _ = std::fs::remove_dir_all(dir);
}
