//! `kalsync db backup|restore|version`: the database's backups and its schema, from the
//! operator's shell.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use kalsync_server::{Overrides, Settings};
use kalsync_store_sql::{Backend, Copied, DatabaseUrl, latest_schema};

/// `kalsync db …`
#[derive(Debug, Subcommand)]
pub(crate) enum DbCommand {
    /// Copy the database to a new file while the service runs (SQLite; PostgreSQL has
    /// pg_dump).
    Backup(BackupArgs),
    /// Put a backup in the database's place, with every node stopped; the database it
    /// replaces is kept beside it.
    Restore(RestoreArgs),
    /// The database's schema version and the newest this Kalsync knows.
    Version(Database),
}

/// The database, as the service finds it.
#[derive(Debug, Args)]
pub(crate) struct Database {
    /// The settings file the service runs with.
    #[arg(long, value_name = "FILE", env = "KALSYNC_CONFIG")]
    config: Option<PathBuf>,
    /// `sqlite:FILE` or `postgres://…` [default: the settings' database_url].
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

/// Arguments of `kalsync db backup`.
#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    /// The new file to write.
    #[arg(long, value_name = "FILE")]
    to: PathBuf,
    #[command(flatten)]
    database: Database,
}

/// Arguments of `kalsync db restore`.
#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// The backup to restore.
    #[arg(long, value_name = "FILE")]
    from: PathBuf,
    #[command(flatten)]
    database: Database,
}

fn settings(database: &Database) -> Result<Settings, String> {
    Settings::load(
        database.config.as_deref(),
        &Overrides {
            listen: None,
            database_url: database.database_url.clone(),
        },
    )
}

/// Where the secrets' key is, for the reminder that goes with every backup.
fn key_reminder(settings: &Settings) -> String {
    let key = if settings.master_key.is_some() {
        "the master key in KALSYNC_MASTER_KEY".to_owned()
    } else {
        format!("the master key {}", settings.master_key_file.display())
    };
    format!(
        "The secrets in it are sealed with {key}: keep a copy of the key, apart from the \
         backups — without it they cannot be read."
    )
}

fn report(verb: &str, copied: &Copied) {
    say!(
        "{verb} {} ({} users, schema {}, {} KiB)",
        copied.file.display(),
        copied.users,
        copied.schema,
        copied.bytes.div_ceil(1024)
    );
}

/// Runs `kalsync db …`.
pub(crate) fn db(command: &DbCommand) -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start: {e}"))?;
    runtime.block_on(async move {
        match command {
            DbCommand::Backup(args) => {
                let settings = settings(&args.database)?;
                let url = DatabaseUrl::new(settings.database_url.clone());
                let copied = kalsync_store_sql::backup(&url, &args.to)
                    .await
                    .map_err(|e| e.to_string())?;
                report("Wrote", &copied);
                say!("{}", key_reminder(&settings));
                Ok(())
            }
            DbCommand::Restore(args) => {
                let settings = settings(&args.database)?;
                let url = DatabaseUrl::new(settings.database_url.clone());
                let copied = kalsync_store_sql::restore(&args.from, &url, jiff::Timestamp::now())
                    .await
                    .map_err(|e| e.to_string())?;
                report("Restored", &copied);
                if let Some(kept) = &copied.kept {
                    say!("The database it replaced is kept as {}.", kept.display());
                }
                say!(
                    "{} It must be the key the backup was made with.",
                    key_reminder(&settings)
                );
                Ok(())
            }
            DbCommand::Version(database) => {
                let settings = settings(database)?;
                let url = DatabaseUrl::new(settings.database_url.clone());
                let backend = Backend::of_url(url.expose())
                    .ok_or_else(|| format!("{url}: expected a sqlite: or postgres: URL"))?;
                let version = kalsync_store_sql::schema_of(&url)
                    .await
                    .map_err(|e| e.to_string())?;
                say!(
                    "{url}: schema {}; this Kalsync ({}) knows up to {}",
                    version.map_or_else(|| "none (a new database)".to_owned(), |v| v.to_string()),
                    env!("CARGO_PKG_VERSION"),
                    latest_schema(backend)
                );
                Ok(())
            }
        }
    })
}
