//! `kalsync setup exchange` and `kalsync check`: the PowerShell an Exchange admin runs,
//! and the verification of an instance's set-up afterwards.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use kalsync_server::{Overrides, Settings};

/// `kalsync setup …`
#[derive(Debug, Subcommand)]
pub(crate) enum SetupCommand {
    /// Print the PowerShell that gives the Exchange service account its rights.
    Exchange(ExchangeArgs),
}

/// Arguments of `kalsync setup exchange`.
#[derive(Debug, Args)]
pub(crate) struct ExchangeArgs {
    /// Exchange version: 2007, 2010, 2013, 2016, 2019 or se.
    #[arg(long)]
    version: String,
    /// The service account's name, e.g. svc-kalsync.
    #[arg(long)]
    account: String,
    /// Only the members of this group (impersonation scope, or the calendars given rights).
    #[arg(long, value_name = "GROUP")]
    users_from_group: Option<String>,
    /// `impersonation` (the ApplicationImpersonation role) or `delegate` (Reviewer).
    #[arg(long, default_value = "impersonation", value_parser = kalsync_ews::Access::parse)]
    access: kalsync_ews::Access,
}

/// Arguments of `kalsync check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The instance: its id or its name.
    #[arg(long)]
    instance: String,
    /// The test mailbox [default: the instance's first user].
    #[arg(long, value_name = "EMAIL")]
    user: Option<String>,
    /// The settings file the service runs with.
    #[arg(long, value_name = "FILE", env = "KALSYNC_CONFIG")]
    config: Option<PathBuf>,
    /// `sqlite:FILE` or `postgres://…`.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

/// Runs `kalsync setup …`.
pub(crate) fn setup(command: &SetupCommand) -> Result<(), String> {
    let SetupCommand::Exchange(args) = command;
    let access = args.access;
    let account = args.account.trim();
    if account.is_empty() || account.contains(['"', '\n', '`', '$']) {
        return Err(format!(
            "--account `{account}`: expected a plain account name such as svc-kalsync"
        ));
    }
    let script = kalsync_ews::setup::powershell(&kalsync_ews::setup::Setup {
        product: kalsync_ews::setup::Product::parse(&args.version)
            .map_err(|e| format!("--version {e}"))?,
        account,
        access,
        group: args.users_from_group.as_deref(),
    });
    print!("{script}");
    Ok(())
}

/// Runs `kalsync check`: 0 when every step passed.
pub(crate) fn check(args: &CheckArgs) -> Result<(), String> {
    let settings = Settings::load(
        args.config.as_deref(),
        &Overrides {
            listen: None,
            database_url: args.database_url.clone(),
        },
    )?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start: {e}"))?;
    runtime.block_on(async move {
        let service = kalsync_server::Service::start(settings)
            .await
            .map_err(|e| e.to_string())?;
        let store = service.store.as_ref();
        let mut found = None;
        for company in store.companies().await.map_err(|e| e.to_string())? {
            for instance in store
                .instances(company.id)
                .await
                .map_err(|e| e.to_string())?
            {
                if instance.id.to_string() == args.instance || instance.name == args.instance {
                    found = Some(instance);
                }
            }
        }
        let instance = found.ok_or_else(|| {
            format!(
                "--instance `{}`: no instance with that id or name",
                args.instance
            )
        })?;
        say!(
            "Checking {} ({}, {})",
            instance.name,
            instance.source.kind(),
            instance.id
        );
        let steps = kalsync_server::check::check_instance(
            store,
            &service.connections,
            instance.id,
            args.user.as_deref(),
        )
        .await?;
        let mut failed = 0;
        for s in &steps {
            say!(
                "  {} {:<24} {}",
                if s.ok { "ok  " } else { "FAIL" },
                s.name,
                s.detail
            );
            failed += usize::from(!s.ok);
        }
        if failed == 0 {
            say!("Every step passed.");
            Ok(())
        } else {
            Err(format!("{failed} step(s) failed; see above"))
        }
    })
}
