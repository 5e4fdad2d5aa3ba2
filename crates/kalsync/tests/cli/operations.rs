//! The operator's commands on an installed service: `kalsync db backup|restore|version`
//! against the settings file the service runs with, `config example
//! --state-directory` (the package's settings) and the manual page.

use crate::helpers::{kalsync, write_temp};

#[test]
fn a_backup_is_taken_restored_and_the_schema_told() {
    let dir = std::env::temp_dir().join(format!("kalsync-cli-db-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("kalsync.db");
    let key = dir.join("kalsync.key");
    let config = write_temp(
        "db.toml",
        &format!(
            "database_url = \"sqlite:{}\"\nmaster_key_file = \"{}\"\n",
            db.display(),
            key.display()
        ),
    );
    let config = config.to_str().expect("path");
    let version = kalsync(&["db", "version", "--config", config]);
    assert_eq!(version.code, 0, "{}", version.stderr);
    assert!(
        version.stdout.contains("schema none (a new database)"),
        "{}",
        version.stdout
    );
    assert!(!db.exists(), "asking the version makes no database");
    // The service made the database: a user in it.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let store = kalsync_store_sql::SqlStore::connect(
            &kalsync_store_sql::DatabaseUrl::new(format!("sqlite:{}", db.display())),
            kalsync_store::SecretBox::from_key_file(&key).expect("key"),
        )
        .await
        .expect("store");
        use kalsync_store::Store as _;
        let company = store.create_company("Backup AB").await.expect("company");
        store.close().await;
        company
    });
    let version = kalsync(&["db", "version", "--config", config]);
    let latest = kalsync_store_sql::latest_schema(kalsync_store_sql::Backend::Sqlite);
    assert!(
        version
            .stdout
            .contains(&format!("schema {latest}; this Kalsync")),
        "{}",
        version.stdout
    );
    let backup = dir.join("backup.db");
    let backup = backup.to_str().expect("path");
    let taken = kalsync(&["db", "backup", "--to", backup, "--config", config]);
    assert_eq!(taken.code, 0, "{}", taken.stderr);
    assert!(
        taken.stdout.contains(&format!("Wrote {backup}"))
            && taken.stdout.contains(&key.display().to_string())
            && taken.stdout.contains("keep a copy of the key"),
        "the backup names the key to keep: {}",
        taken.stdout
    );
    let again = kalsync(&["db", "backup", "--to", backup, "--config", config]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("exists already"), "{}", again.stderr);
    let restored = kalsync(&["db", "restore", "--from", backup, "--config", config]);
    assert_eq!(restored.code, 0, "{}", restored.stderr);
    assert!(
        restored
            .stdout
            .contains("The database it replaced is kept as"),
        "{}",
        restored.stdout
    );
    let postgres = kalsync(&[
        "db",
        "backup",
        "--to",
        backup,
        "--database-url",
        "postgres://kalsync:hunter2@db.example/kalsync",
    ]);
    assert_eq!(postgres.code, 2);
    assert!(
        postgres.stderr.contains("pg_dump") && !postgres.stderr.contains("hunter2"),
        "{}",
        postgres.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_packaged_settings_and_the_manual_come_from_the_binary() {
    let installed = kalsync(&["config", "example", "--state-directory", "/var/lib/kalsync"]);
    assert_eq!(installed.code, 0, "{}", installed.stderr);
    assert!(
        installed
            .stdout
            .contains("database_url = \"sqlite:/var/lib/kalsync/kalsync.db\"")
            && !installed.stdout.contains("\n[[companies]]"),
        "{}",
        installed.stdout
    );
    let relative = kalsync(&["config", "example", "--state-directory", "var/lib"]);
    assert_eq!(relative.code, 2);
    assert!(
        relative.stderr.contains("absolute path"),
        "{}",
        relative.stderr
    );
    let manual = kalsync(&["manual"]);
    assert_eq!(manual.code, 0, "{}", manual.stderr);
    assert!(
        manual.stdout.starts_with(".ie") || manual.stdout.contains(".TH kalsync"),
        "{}",
        &manual.stdout[..manual.stdout.len().min(300)]
    );
    assert!(manual.stdout.contains("serve"), "the commands are listed");
}
