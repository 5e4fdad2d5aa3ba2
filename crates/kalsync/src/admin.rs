//! `kalsync setup exchange`, `kalsync check` and `kalsync directory preview`: the
//! PowerShell an Exchange admin runs, the verification of an instance's set-up
//! afterwards, and what its directory (Katalog Synk) would change.

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

/// `kalsync directory …`
#[derive(Debug, Subcommand)]
pub(crate) enum DirectoryCommand {
    /// Read the instance's directory and show what a sync would add, change and remove,
    /// and who cannot be synchronised; nothing is changed.
    Preview(InstanceArgs),
}

/// An instance of the service's store.
#[derive(Debug, Args)]
pub(crate) struct InstanceArgs {
    /// The instance: its id or its name.
    #[arg(long)]
    instance: String,
    /// The settings file the service runs with.
    #[arg(long, value_name = "FILE", env = "KALSYNC_CONFIG")]
    config: Option<PathBuf>,
    /// `sqlite:FILE` or `postgres://…`.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
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
/// The service as its settings say (not serving), on a runtime of its own.
pub(crate) fn service_of(
    config: Option<&std::path::Path>,
    database_url: Option<&String>,
) -> Result<(tokio::runtime::Runtime, kalsync_server::Service), String> {
    let settings = Settings::load(
        config,
        &Overrides {
            listen: None,
            database_url: database_url.cloned(),
        },
    )?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start: {e}"))?;
    let service = runtime
        .block_on(kalsync_server::Service::start(settings))
        .map_err(|e| e.to_string())?;
    Ok((runtime, service))
}

/// The instance named by its id or name.
async fn find_instance(
    store: &dyn kalsync_store::Store,
    name: &str,
) -> Result<kalsync_store::Instance, String> {
    for company in store.companies().await.map_err(|e| e.to_string())? {
        for instance in store
            .instances(company.id)
            .await
            .map_err(|e| e.to_string())?
        {
            if instance.id.to_string() == name || instance.name == name {
                return Ok(instance);
            }
        }
    }
    Err(format!(
        "--instance `{name}`: no instance with that id or name"
    ))
}

pub(crate) fn check(args: &CheckArgs) -> Result<(), String> {
    let (runtime, service) = service_of(args.config.as_deref(), args.database_url.as_ref())?;
    runtime.block_on(check_steps(&service, &args.instance, args.user.as_deref()))
}

/// Checks an instance's set-up with one test mailbox, printing each step.
pub(crate) async fn check_steps(
    service: &kalsync_server::Service,
    instance: &str,
    user: Option<&str>,
) -> Result<(), String> {
    let store = service.store.as_ref();
    let instance = find_instance(store, instance).await?;
    say!(
        "Checking {} ({}, {})",
        instance.name,
        instance.source.kind(),
        instance.id
    );
    let steps =
        kalsync_server::check::check_instance(store, &service.connections, instance.id, user)
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
}

/// Runs `kalsync directory …`.
pub(crate) fn directory(command: &DirectoryCommand) -> Result<(), String> {
    let DirectoryCommand::Preview(args) = command;
    let (runtime, service) = service_of(args.config.as_deref(), args.database_url.as_ref())?;
    runtime.block_on(async move {
        let instance = find_instance(service.store.as_ref(), &args.instance).await?;
        let run = service
            .directories
            .run_now(instance.id, kalsync_server::directory::Mode::DryRun)
            .await
            .map_err(|e| match e {
                kalsync_store::StoreError::NotFound(_) => format!(
                    "{} has no directory; set one on its Katalog tab or with PUT /api/v1/instances/{}/directory",
                    instance.name, instance.id
                ),
                other => other.to_string(),
            })?;
        if let Some((code, message)) = &run.error {
            return Err(format!("the directory could not be read ({code}): {message}"));
        }
        say!(
            "{}: {} members read in {} requests{}",
            instance.name,
            run.members,
            run.requests,
            if run.full { " (everything read)" } else { "" }
        );
        say!(
            "  would add {}, change {}, start the grace period of {}, remove {}",
            run.added,
            run.updated,
            run.leaving,
            run.removed
        );
        if let Some((go, of)) = run.held {
            say!(
                "  removals held: {go} of the directory's {of} users would go at once; confirm with POST /api/v1/instances/{}/directory/run {{\"mode\": \"confirmed\"}}",
                instance.id
            );
        }
        say!("  {} cannot be synchronised", run.problem_count);
        for p in &run.problems {
            say!("    {}: {}", p.who, p.problem);
        }
        Ok(())
    })
}
