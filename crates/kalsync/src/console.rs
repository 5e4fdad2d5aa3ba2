//! `kalsync users|status|deliveries|instances`: the operator's commands over SSH, on the
//! configured database, through the service's own functions (`kalsync_web::console`),
//! shown as tables or `--json`; progress bars on long work.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use kalsync_web::console::Console;
use serde_json::Value;

use crate::admin::service_of;

/// The database, as the service finds it.
#[derive(Debug, Args)]
pub(crate) struct Database {
    /// The settings file the service runs with.
    #[arg(long, value_name = "FILE", env = "KALSYNC_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// `sqlite:FILE` or `postgres://…` [default: the settings' database_url].
    #[arg(long, value_name = "URL", global = true)]
    database_url: Option<String>,
    /// JSON lines instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

/// `kalsync users …`
#[derive(Debug, Args)]
pub(crate) struct UsersArgs {
    #[command(subcommand)]
    command: UsersCommand,
    #[command(flatten)]
    database: Database,
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// An instance's users: e-mail, name, extension, last read.
    List {
        /// The instance: its id or its name.
        #[arg(long)]
        instance: String,
    },
    /// Add a user, checked as the admin UI checks one (PBX directory included).
    Add {
        /// The instance: its id or its name.
        #[arg(long)]
        instance: String,
        /// The mailbox.
        email: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// PBX extension.
        #[arg(long)]
        extension: Option<String>,
    },
    /// Remove a user and their data.
    Remove {
        /// The user: e-mail or id.
        user: String,
        /// The instance, when the e-mail is in several.
        #[arg(long)]
        instance: Option<String>,
    },
    /// Add users from a CSV file (email,name,extension; a header line is optional).
    Import {
        /// The instance: its id or its name.
        #[arg(long)]
        instance: String,
        /// The CSV file.
        file: PathBuf,
    },
}

/// `kalsync status …`
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The user: e-mail or id.
    user: String,
    /// The instance, when the e-mail is in several.
    #[arg(long)]
    instance: Option<String>,
    #[command(flatten)]
    database: Database,
}

/// `kalsync deliveries …`
#[derive(Debug, Args)]
pub(crate) struct DeliveriesArgs {
    /// The deliveries given up after their retries (dead letters).
    #[arg(long, required = true)]
    dead: bool,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    #[command(flatten)]
    database: Database,
}

/// `kalsync instances …`
#[derive(Debug, Args)]
pub(crate) struct InstancesArgs {
    #[command(subcommand)]
    command: InstancesCommand,
    #[command(flatten)]
    database: Database,
}

#[derive(Debug, Subcommand)]
enum InstancesCommand {
    /// Every company's instances: source, on/off, users, users whose last read failed.
    List,
    /// Verify an instance's set-up (sign-in, rights, a read, a subscription), for one
    /// test mailbox or for every user.
    Check {
        /// The instance: its id or its name.
        instance: String,
        /// The test mailbox [default: the instance's first user].
        #[arg(long, value_name = "EMAIL", conflicts_with = "every_user")]
        user: Option<String>,
        /// Check each user's mailbox, with a progress bar; the failing ones are listed.
        #[arg(long)]
        every_user: bool,
    },
}

/// Who runs the command, for the audit log.
fn login() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Prints rows as JSON lines or as a table of `columns` (JSON field, heading).
fn show(rows: &[Value], columns: &[(&str, &str)], json: bool) {
    if json {
        for row in rows {
            say!("{row}");
        }
        return;
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|(k, _)| text(&r[*k])).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, h))| {
            cells
                .iter()
                .map(|c| c[i].chars().count())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<String>| {
        values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    say!(
        "{}",
        line(columns.iter().map(|(_, h)| (*h).to_owned()).collect())
    );
    for row in cells {
        say!("{}", line(row));
    }
}

fn bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta} left)") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

/// Runs `kalsync users …`.
pub(crate) fn users(args: &UsersArgs) -> Result<(), String> {
    let d = &args.database;
    let (runtime, service) = service_of(d.config.as_deref(), d.database_url.as_ref())?;
    let console = Console::new(service.store.clone(), &login());
    runtime.block_on(async move {
        match &args.command {
            UsersCommand::List { instance } => {
                let rows = console.users(instance).await?;
                show(
                    &rows,
                    &[
                        ("email", "EMAIL"),
                        ("display_name", "NAME"),
                        ("extension", "EXTENSION"),
                        ("last_sync", "LAST READ"),
                        ("last_error", "ERROR"),
                    ],
                    d.json,
                );
            }
            UsersCommand::Add {
                instance,
                email,
                name,
                extension,
            } => {
                let user = console
                    .add(instance, email, name.as_deref(), extension.as_deref())
                    .await?;
                if d.json {
                    say!("{user}");
                } else {
                    say!("Added {} ({})", text(&user["email"]), text(&user["id"]));
                }
            }
            UsersCommand::Remove { user, instance } => {
                let email = console.remove(user, instance.as_deref()).await?;
                say!("Removed {email} and their data");
            }
            UsersCommand::Import { instance, file } => {
                let csv = std::fs::read_to_string(file)
                    .map_err(|e| format!("{}: {e}", file.display()))?;
                let progress = bar(0, "importing");
                let report = console
                    .import(instance, &csv, &|done, total| {
                        progress.set_length(total);
                        progress.set_position(done);
                    })
                    .await;
                progress.finish_and_clear();
                let report = report?;
                if d.json {
                    say!("{report}");
                    return Ok(());
                }
                say!(
                    "{} added, {} already there, {} refused",
                    text(&report["added"]),
                    text(&report["existing"]),
                    text(&report["errors"])
                );
                let refused: Vec<Value> = report["rows"]
                    .as_array()
                    .map(|rows| {
                        rows.iter()
                            .filter(|r| r["outcome"] == "error")
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                if !refused.is_empty() {
                    show(
                        &refused,
                        &[
                            ("line", "LINE"),
                            ("email", "EMAIL"),
                            ("field", "FIELD"),
                            ("message", "WHY"),
                        ],
                        false,
                    );
                }
            }
        }
        Ok(())
    })
}

/// A timestamp of the answer in the instance's zone: `Mon 2026-11-23 12:00`.
fn local(v: &Value, zone: &jiff::tz::TimeZone) -> String {
    v.as_str()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .map_or_else(
            || text(v),
            |t| {
                t.to_zoned(zone.clone())
                    .strftime("%a %Y-%m-%d %H:%M")
                    .to_string()
            },
        )
}

/// Runs `kalsync status …`: the status now, why, and the timeline ahead.
pub(crate) fn status(args: &StatusArgs) -> Result<(), String> {
    let d = &args.database;
    let (runtime, service) = service_of(d.config.as_deref(), d.database_url.as_ref())?;
    let console = Console::new(service.store.clone(), &login());
    runtime.block_on(async move {
        let view = console
            .status(&args.user, args.instance.as_deref(), jiff::Timestamp::now())
            .await?;
        if d.json {
            say!("{view}");
            return Ok(());
        }
        let zone = view["zone"]
            .as_str()
            .and_then(|z| jiff::tz::TimeZone::get(z).ok())
            .unwrap_or(jiff::tz::TimeZone::UTC);
        let who = match view["name"].as_str() {
            Some(name) if !name.is_empty() => format!("{name} <{}>", text(&view["email"])),
            _ => text(&view["email"]),
        };
        say!("{who}, extension {}", text(&view["extension"]));
        match &view["now"] {
            Value::Null => say!("Now: available"),
            now => {
                say!(
                    "Now: {} ({}) since {}, {} — \"{}\"",
                    text(&now["label_en"]),
                    text(&now["mode"]),
                    local(&now["start"], &zone),
                    if now["open_ended"] == Value::Bool(true) {
                        "until further notice".to_owned()
                    } else {
                        format!("back {}", local(&now["returns_at"], &zone))
                    },
                    text(&now["message_en"])
                );
                let sources: Vec<String> = now["sources"]
                    .as_array()
                    .map(|s| s.iter().map(text).collect())
                    .unwrap_or_default();
                say!("Why: {}", sources.join(", over "));
                for booking in now["bookings"].as_array().into_iter().flatten() {
                    say!(
                        "  booking {}: {}",
                        text(&booking["id"]),
                        booking["subject"]
                            .as_str()
                            .unwrap_or("(title not kept for this instance)")
                    );
                }
            }
        }
        let ahead: Vec<Value> = view["timeline"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|a| {
                        serde_json::json!({
                            "start": local(&a["start"], &zone),
                            "end": local(&a["end"], &zone),
                            "reason": a["reason"],
                            "mode": a["mode"],
                            "source": a["sources"].as_array().map(|s| s.iter().map(text).collect::<Vec<_>>().join(">")),
                            "message": a["message_en"],
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !ahead.is_empty() {
            say!("Timeline:");
            show(
                &ahead,
                &[
                    ("start", "START"),
                    ("end", "END"),
                    ("reason", "REASON"),
                    ("mode", "MODE"),
                    ("source", "SOURCES"),
                    ("message", "MESSAGE"),
                ],
                false,
            );
        }
        say!(
            "Last read: {}{}",
            local(&view["last_sync"], &zone),
            view["last_error"]
                .as_str()
                .map(|e| format!(" — failed: {e}"))
                .unwrap_or_default()
        );
        Ok(())
    })
}

/// Runs `kalsync deliveries --dead`.
pub(crate) fn deliveries(args: &DeliveriesArgs) -> Result<(), String> {
    let d = &args.database;
    let (runtime, service) = service_of(d.config.as_deref(), d.database_url.as_ref())?;
    let console = Console::new(service.store.clone(), &login());
    runtime.block_on(async move {
        let rows = console.dead_letters(args.limit).await?;
        if rows.is_empty() && !d.json {
            say!("No dead letters.");
            return Ok(());
        }
        show(
            &rows,
            &[
                ("created", "CREATED"),
                ("company", "COMPANY"),
                ("user", "USER"),
                ("target", "TARGET"),
                ("status", "STATUS"),
                ("attempts", "ATTEMPTS"),
                ("last_error", "LAST ERROR"),
            ],
            d.json,
        );
        Ok(())
    })
}

/// Runs `kalsync instances …`.
pub(crate) fn instances(args: &InstancesArgs) -> Result<(), String> {
    let d = &args.database;
    let (runtime, service) = service_of(d.config.as_deref(), d.database_url.as_ref())?;
    let console = Console::new(service.store.clone(), &login());
    runtime.block_on(async move {
        match &args.command {
            InstancesCommand::List => {
                let rows = console.instances().await?;
                show(
                    &rows,
                    &[
                        ("company", "COMPANY"),
                        ("instance", "INSTANCE"),
                        ("source", "SOURCE"),
                        ("active", "ON"),
                        ("users", "USERS"),
                        ("failing", "FAILING"),
                        ("id", "ID"),
                    ],
                    d.json,
                );
                Ok(())
            }
            InstancesCommand::Check {
                instance,
                user,
                every_user: false,
            } => crate::admin::check_steps(&service, instance, user.as_deref()).await,
            InstancesCommand::Check {
                instance,
                every_user: true,
                ..
            } => {
                let found = console.instance(instance).await?;
                let users = console.users(&found.id.to_string()).await?;
                let progress = bar(users.len() as u64, "checking");
                let mut failing = Vec::new();
                for user in &users {
                    let email = text(&user["email"]);
                    let steps = kalsync_server::check::check_instance(
                        service.store.as_ref(),
                        &service.connections,
                        found.id,
                        Some(&email),
                    )
                    .await?;
                    if let Some(step) = steps.iter().find(|s| !s.ok) {
                        failing.push(serde_json::json!({
                            "email": email, "step": step.name, "detail": step.detail,
                        }));
                    }
                    progress.inc(1);
                }
                progress.finish_and_clear();
                say!(
                    "{}: {} of {} users pass every step",
                    found.name,
                    users.len() - failing.len(),
                    users.len()
                );
                if failing.is_empty() {
                    return Ok(());
                }
                show(
                    &failing,
                    &[
                        ("email", "EMAIL"),
                        ("step", "FAILED STEP"),
                        ("detail", "WHAT TO DO"),
                    ],
                    d.json,
                );
                Err(format!("{} user(s) failed; see above", failing.len()))
            }
        }
    })
}
