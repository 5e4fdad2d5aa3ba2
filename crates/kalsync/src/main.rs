//! `kalsync`: the command line. Glue only — the work is in the library crates.

/// Prints a line to standard output; a closed pipe (the reader went away) is no reason
/// for a running service to stop.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod admin;
mod console;
mod db;
mod preview;
mod serve;
mod sim;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: the service allocates many small, short-lived objects (JSON, bookings)
/// from many threads, where glibc's allocator spent a third of the benchmark's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Kalsync turns Outlook calendar bookings into a phone exchange's absence status.
#[derive(Debug, Parser)]
#[command(name = "kalsync", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the timeline of absences a calendar gives under a set of rules.
    Preview(preview::PreviewArgs),
    /// Run the service.
    Serve(serve::ServeArgs),
    /// Run the whole service on simulators, with a sample company, to watch it work.
    Demo(serve::DemoArgs),
    /// Settings.
    #[command(subcommand)]
    Config(serve::ConfigCommand),
    /// The database: backups, restore, schema version.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Run a simulator of a source, with a sample company.
    #[command(subcommand)]
    Sim(sim::SimCommand),
    /// Print what a source's admin runs to give Kalsync its rights.
    #[command(subcommand)]
    Setup(admin::SetupCommand),
    /// Verify an instance's set-up: sign-in, rights, a read, a subscription.
    Check(admin::CheckArgs),
    /// Users of an instance: list, add, remove, import a CSV.
    Users(console::UsersArgs),
    /// A user's status now, why, and the timeline ahead.
    Status(console::StatusArgs),
    /// Deliveries to the PBX given up after their retries.
    Deliveries(console::DeliveriesArgs),
    /// Instances: list them, check their set-up.
    Instances(console::InstancesArgs),
    /// An instance's directory (Katalog Synk).
    #[command(subcommand)]
    Directory(admin::DirectoryCommand),
    /// Print the manual page (roff), for `man kalsync`.
    #[command(hide = true)]
    Manual,
    /// The convergence harness: random calendar changes and faults against the service
    /// on simulators, then every user compared with an independent oracle.
    #[cfg(feature = "chaos")]
    Chaos(kalsync_chaos::ChaosArgs),
}

/// The manual page, from the same definitions as `--help`.
fn manual() -> Result<(), String> {
    use clap::CommandFactory as _;
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|e| e.to_string())?;
    say!("{}", String::from_utf8_lossy(&page).trim_end());
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Preview(args) => preview::run(&args),
        Command::Sim(command) => sim::run(&command),
        Command::Serve(args) => serve::serve(&args),
        Command::Demo(args) => serve::demo(&args),
        Command::Config(command) => serve::config(&command),
        Command::Db(command) => db::db(&command),
        Command::Manual => manual(),
        Command::Setup(command) => admin::setup(&command),
        Command::Check(args) => admin::check(&args),
        Command::Directory(command) => admin::directory(&command),
        Command::Users(args) => console::users(&args),
        Command::Status(args) => console::status(&args),
        Command::Deliveries(args) => console::deliveries(&args),
        Command::Instances(args) => console::instances(&args),
        #[cfg(feature = "chaos")]
        Command::Chaos(args) => kalsync_chaos::chaos(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(2)
        }
    }
}
