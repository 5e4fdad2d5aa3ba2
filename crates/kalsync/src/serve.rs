//! `kalsync serve`, `kalsync config example` and `kalsync demo`: the service, its
//! example settings, and the whole thing on simulators in one process.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use kalsync_graph_sim::{EventSpec, SimConfig, Simulator, sample};
use kalsync_server::settings::{
    AccountDecl, CompanyDecl, InstanceDecl, SourceDecl, TargetDecl, UserDecl,
};
use kalsync_server::{Overrides, Settings};

/// Arguments of `kalsync serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The settings file (TOML); `kalsync config example` prints a commented one.
    #[arg(long, value_name = "FILE", env = "KALSYNC_CONFIG")]
    config: Option<PathBuf>,
    /// Where to listen [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// `sqlite:FILE` or `postgres://…` [default: sqlite:kalsync.db].
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

/// `kalsync config …`
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print a commented example settings file.
    Example {
        /// For an installed service: the database and master key in this directory,
        /// nothing declared (what the Debian package installs as
        /// /etc/kalsync/kalsync.toml, with /var/lib/kalsync).
        #[arg(long, value_name = "DIR")]
        state_directory: Option<String>,
    },
}

/// Arguments of `kalsync demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// People in the demo company.
    #[arg(long, default_value_t = 25)]
    users: usize,
}

fn init_logs(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&settings.log.level));
    // One line per event whatever its fields carry, and no colours: a field from
    // outside could otherwise forge a line or a colour of its own.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(kalsync_server::logs::LineSafe(std::io::stderr));
    let _ = if settings.log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Completes on Ctrl-C or, on Unix, SIGTERM (for `serve`, `demo` and `sim graph`).
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("stopping");
}

/// Runs `kalsync serve`.
pub(crate) fn serve(args: &ServeArgs) -> Result<(), String> {
    let settings = Settings::load(
        args.config.as_deref(),
        &Overrides {
            listen: args.listen,
            database_url: args.database_url.clone(),
        },
    )?;
    init_logs(&settings);
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .map_err(|e| format!("--listen {}: {e}", settings.listen))?;
        say!(
            "Kalsync on http://{}/",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        kalsync_server::run(settings, listener, shutdown_signal())
            .await
            .map_err(|e| e.to_string())
    })
}

/// Runs `kalsync config …`.
pub(crate) fn config(command: &ConfigCommand) -> Result<(), String> {
    match command {
        ConfigCommand::Example {
            state_directory: None,
        } => print!("{}", kalsync_server::settings::EXAMPLE),
        ConfigCommand::Example {
            state_directory: Some(dir),
        } => {
            if !dir.starts_with('/') || dir.contains(['"', '\\', '\n']) {
                return Err(format!(
                    "--state-directory {dir}: expected an absolute path such as /var/lib/kalsync"
                ));
            }
            print!("{}", kalsync_server::settings::installed_example(dir));
        }
    }
    Ok(())
}

fn this_monday() -> jiff::civil::Date {
    let today = jiff::Zoned::now().date();
    today
        .checked_sub(jiff::Span::new().days(i64::from(today.weekday().to_monday_zero_offset())))
        .unwrap_or(today)
}

/// Runs `kalsync demo`.
pub(crate) fn demo(args: &DemoArgs) -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start: {e}"))?;
    runtime.block_on(run_demo(args))
}

/// The demo's accounts: the operator, Demo AB's admin and its receptionist, all with
/// `password`.
fn demo_accounts(password: &str) -> Vec<AccountDecl> {
    [
        ("operator@demo.example", "operator", None),
        ("admin@demo.example", "company_admin", Some("Demo AB")),
        ("reception@demo.example", "reader", Some("Demo AB")),
        (
            "admin@lokal.example",
            "company_admin",
            Some("Demo Lokal AB"),
        ),
        ("admin@ny.example", "company_admin", Some("Demo Ny AB")),
    ]
    .into_iter()
    .map(|(email, role, company)| AccountDecl {
        email: email.into(),
        role: role.into(),
        company: company.map(str::to_owned),
        password: password.to_owned().into(),
    })
    .collect()
}

async fn run_demo(args: &DemoArgs) -> Result<(), String> {
    // A fresh password each run: the demo is reachable by anyone on its address.
    let demo_password = format!("demo-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let dir = std::env::temp_dir().join(format!("kalsync-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (tenant, client_id, secret) = (
        "00000000-0000-4000-8000-00000000de70",
        "00000000-0000-4000-8000-0000000de70a",
        "demo-client-secret",
    );
    let sim = Simulator::new(SimConfig::with_secret(tenant, client_id, secret));
    let people = sample::populate(&sim, args.users, this_monday(), 2, 7, "demo.example")
        .map_err(|e| e.to_string())?;
    // A few bookings that start in the next minutes, so statuses change while you watch.
    let now = jiff::Timestamp::now();
    let soon = |m: i64| now + jiff::SignedDuration::from_mins(m);
    for (i, (subject, from, to)) in [
        ("LUN: Lunch", 1, 4),
        ("MOT: Kundmöte Volvo", 2, 6),
        ("SLU: Tandläkare", 3, 5),
        ("UPP: Fokus", 1, 3),
    ]
    .into_iter()
    .enumerate()
    {
        if let Some(p) = people.get(i) {
            sim.create_event(&p.id, EventSpec::new(subject, soon(from), soon(to)))
                .map_err(|e| e.to_string())?;
        }
    }
    // Demo AB's directory (Katalog Synk): everyone is in "Alla på Demo AB", through its
    // two departments' groups, with their extension as the last digits of their phone.
    let mut departments: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    for (i, p) in people.iter().enumerate() {
        sim.set_profile(
            &p.id,
            kalsync_graph_sim::Profile {
                business_phones: vec![format!("+46 8 555 {}", 201 + i)],
                department: Some(if i % 2 == 0 { "Sälj" } else { "Support" }.into()),
                ..kalsync_graph_sim::Profile::default()
            },
        )
        .map_err(|e| e.to_string())?;
        departments[i % 2].push(p.upn.clone());
    }
    for (id, name, members) in [
        ("demo-salj", "Sälj", departments[0].clone()),
        ("demo-support", "Support", departments[1].clone()),
        (
            "demo-alla",
            "Alla på Demo AB",
            vec![
                "group:demo-salj".to_owned(),
                "group:demo-support".to_owned(),
            ],
        ),
    ] {
        sim.add_group(kalsync_graph_sim::GroupSpec {
            id: Some(id.into()),
            name: name.into(),
            members,
        })
        .map_err(|e| e.to_string())?;
    }
    // A leaver: three minutes in, the last person leaves their group; the next
    // directory run removes them, and the switchboard no longer shows them.
    let leaver = people.len().checked_sub(1).and_then(|i| {
        let group = if i % 2 == 0 {
            "demo-salj"
        } else {
            "demo-support"
        };
        people
            .get(i)
            .map(|p| (group, p.upn.clone(), p.name.clone()))
    });
    // Teams: most are signed in to Teams; in a minute the third takes a Teams call for
    // three minutes (the PBX turns busy within the poll), the fourth is in a Teams
    // meeting, and the fifth sets "do not disturb" herself.
    let caller = people.get(2).map(|p| p.name.clone());
    {
        let sim = sim.clone();
        let upns: Vec<String> = people.iter().map(|p| p.upn.clone()).collect();
        for upn in &upns {
            let _ = sim.set_client_presence(upn, Some(("Available", "Available")));
        }
        if let Some(upn) = upns.get(3) {
            let _ = sim.set_client_presence(upn, Some(("Busy", "InAMeeting")));
        }
        if let Some(upn) = upns.get(4) {
            let _ = sim.set_client_presence(upn, Some(("DoNotDisturb", "DoNotDisturb")));
        }
        tokio::spawn(async move {
            let Some(upn) = upns.get(2) else { return };
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            let _ = sim.set_client_presence(upn, Some(("Busy", "InACall")));
            tokio::time::sleep(std::time::Duration::from_secs(180)).await;
            let _ = sim.set_client_presence(upn, Some(("Available", "Available")));
        });
    }
    if let Some((group, upn, _)) = leaver.clone() {
        let sim = sim.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(180)).await;
            let _ = sim.change_member(group, &upn, false);
        });
    }
    let directory: kalsync_directory::DirectorySettings =
        serde_json::from_value(serde_json::json!({
            "kind": "entra",
            "groups": ["demo-alla"],
            "extension": {"attribute": "businessPhones", "last_digits": 3},
            "department": "department",
            "every": "5m",
            "enabled": true,
        }))
        .map_err(|e| e.to_string())?;
    let (sim_url, _sim_handle) = kalsync_graph_sim::spawn(sim.clone())
        .await
        .map_err(|e| e.to_string())?;

    // Demo Ny AB's own Microsoft 365 (a tenant of its own), where the operator's
    // multi-tenant app is not consented yet: its admin connects it through the
    // admin-consent page this simulator plays.
    let ny_tenant = "00000000-0000-4000-8000-00000000de71";
    let (operator_app, operator_secret) = (
        "00000000-0000-4000-8000-0000000de70b",
        "demo-operator-secret",
    );
    let mut ny_config = SimConfig::with_secret(ny_tenant, client_id, secret);
    ny_config.apps.push(kalsync_graph_sim::SimApp {
        client_id: operator_app.into(),
        secret: Some(operator_secret.into()),
        certificate: None,
        consented: false,
        secret_expired: false,
    });
    // Its people in Entra ID: the directory admin who connects it (and consents), and
    // two who sign in with Microsoft once it is connected, by their app role.
    let person = |upn: &str, name: &str, role: Option<&str>| kalsync_graph_sim::SimPerson {
        oid: None,
        upn: upn.into(),
        name: Some(name.into()),
        roles: role.map(|r| vec![r.to_owned()]).unwrap_or_default(),
        groups: Vec::new(),
        admin: false,
    };
    ny_config.domains = vec!["ny.example".into()];
    ny_config.people = vec![
        kalsync_graph_sim::SimPerson {
            admin: true,
            ..person("admin@ny.example", "Nora Admin", None)
        },
        person("chef@ny.example", "Nils Chef", Some("Kalsync.Admin")),
        person(
            "reception@ny.example",
            "Rut Reception",
            Some("Kalsync.Reader"),
        ),
    ];
    let ny = Simulator::new(ny_config);
    sample::populate(&ny, args.users.min(8), this_monday(), 2, 13, "ny.example")
        .map_err(|e| e.to_string())?;
    let (ny_url, _ny_handle) = kalsync_graph_sim::spawn(ny)
        .await
        .map_err(|e| e.to_string())?;

    // Beside it, a company on its own Exchange server, read over EWS.
    let lokal = Simulator::new(SimConfig::with_secret(tenant, client_id, secret));
    let lokal_people = sample::populate(
        &lokal,
        args.users.min(8),
        this_monday(),
        2,
        11,
        "lokal.example",
    )
    .map_err(|e| e.to_string())?;
    if let Some(p) = lokal_people.first() {
        lokal
            .create_event(&p.id, EventSpec::new("LUN: Lunch", soon(2), soon(5)))
            .map_err(|e| e.to_string())?;
    }
    let (ews_account, ews_password) = ("LOKAL\\svc-kalsync", "demo-exchange-password");
    let ews = kalsync_ews_sim::EwsSim::new(
        lokal.clone(),
        kalsync_ews_sim::EwsConfig::new(ews_account, ews_password),
    );
    let (ews_url, _ews_handle) = kalsync_ews_sim::spawn(ews)
        .await
        .map_err(|e| e.to_string())?;
    let lokal_users = lokal_people
        .iter()
        .enumerate()
        .map(|(i, p)| UserDecl::Full {
            email: p.upn.clone(),
            name: Some(p.name.clone()),
            extension: Some(format!("{}", 301 + i)),
        })
        .collect();

    let users = people
        .iter()
        .enumerate()
        .map(|(i, p)| UserDecl::Full {
            email: p.upn.clone(),
            name: Some(p.name.clone()),
            extension: Some(format!("{}", 201 + i)),
        })
        .collect();
    let settings_table: toml::Table =
        toml::from_str("template = \"prefix-then-showas\"\nuser_choice = \"any\"\n")
            .map_err(|e| e.to_string())?;
    let mut settings = Settings {
        listen: args.listen,
        database_url: format!("sqlite:{}", dir.join("demo.db").display()),
        master_key_file: dir.join("demo.key"),
        companies: vec![
            CompanyDecl {
                name: "Demo AB".into(),
                targets: vec![
                    TargetDecl::Simulator {
                        name: "PBX simulator".into(),
                    },
                    TargetDecl::Teams {
                        name: "Teams".into(),
                        presence: true,
                        language: kalsync_server::settings::TeamsLanguage::Sv,
                    },
                ],
                instances: vec![InstanceDecl {
                    name: "Microsoft 365 (simulated)".into(),
                    source: SourceDecl::Graph {
                        tenant: tenant.into(),
                        client_id: client_id.into(),
                        client_secret: secret.to_owned().into(),
                        graph_url: Some(format!("{sim_url}v1.0/")),
                        login_url: Some(sim_url.to_string()),
                    },
                    settings: Some(
                        toml::from_str(
                            "template = \"prefix-then-showas\"\nuser_choice = \"any\"\n\n[teams]\nread = true\npoll_seconds = 15\ndo_not_disturb = \"info\"\n",
                        )
                        .map_err(|e: toml::de::Error| e.to_string())?,
                    ),
                    users,
                    directory: Some(directory),
                }],
            },
            CompanyDecl {
                name: "Demo Ny AB".into(),
                targets: vec![TargetDecl::Simulator {
                    name: "PBX simulator".into(),
                }],
                instances: Vec::new(),
            },
            CompanyDecl {
                name: "Demo Lokal AB".into(),
                targets: vec![TargetDecl::Simulator {
                    name: "PBX simulator".into(),
                }],
                instances: vec![InstanceDecl {
                    name: "Exchange 2016 (simulated)".into(),
                    source: SourceDecl::Ews {
                        url: format!("{ews_url}EWS/Exchange.asmx"),
                        username: ews_account.into(),
                        password: ews_password.to_owned().into(),
                        auth: kalsync_core::exchange::SignIn::Ntlm,
                        version: kalsync_core::exchange::Version::Exchange2013Sp1,
                        access: kalsync_core::exchange::Access::Impersonation,
                        options: Default::default(),
                        ca_file: None,
                    },
                    settings: Some(settings_table),
                    users: lokal_users,
                    directory: None,
                }],
            },
        ],
        accounts: demo_accounts(&demo_password),
        microsoft365: Some(kalsync_server::settings::Microsoft365Settings {
            client_id: operator_app.into(),
            client_secret: operator_secret.to_owned().into(),
            login_url: Some(ny_url.clone()),
            graph_url: Some(format!("{ny_url}v1.0/")),
            operator_tenant: None,
            operator_roles: vec!["Kalsync.Operator".into()],
        }),
        // The simulators listen on loopback.
        outbound: kalsync_server::settings::OutboundSettings::loopback(),
        ..Settings::default()
    };
    settings.engine.debounce_ms = 200;
    settings.log.level = "warn,kalsync=info".into();
    init_logs(&settings);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("--listen {}: {e}", args.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    // The simulator reaches this process on loopback: changes arrive as notifications.
    settings.public_url = url::Url::parse(&format!("http://{address}/")).ok();
    say!("Kalsync demo on http://{address}/");
    say!(
        "  company      Demo AB: {} people on a simulated Microsoft 365, statuses go to a simulated PBX",
        people.len()
    );
    say!(
        "  on-premises  Demo Lokal AB: {} people on a simulated Exchange 2016, read over EWS ({ews_url}EWS/Exchange.asmx, account {ews_account})",
        lokal_people.len()
    );
    say!(
        "  open         http://{address}/ and sign in (below): the dashboard, and the switchboard of who is away, updating live"
    );
    say!(
        "  soon         {} books lunch and {} a customer meeting within minutes",
        people.first().map_or("", |p| p.name.as_str()),
        people.get(1).map_or("", |p| p.name.as_str())
    );
    say!(
        "  book more    POST {sim_url}_sim/users/<mailbox>/events (see the README): the change arrives as a Graph notification within a second"
    );
    if let Some(name) = &caller {
        say!(
            "  Teams        Demo AB's switchboard has a Teams column; {name} takes a Teams call in a minute (busy on the PBX within 15 s) and the absences become Teams status messages"
        );
    }
    if let Some((_, _, name)) = &leaver {
        say!(
            "  directory    Demo AB's users are the group \"Alla på Demo AB\" (its Katalog tab); {name} leaves it in 3 minutes and is gone at the next run (every 5 minutes)"
        );
    }
    say!(
        "  connect      Demo Ny AB has no instance yet: its admin connects Microsoft 365 from \"Ny instans\" (the simulator plays Entra ID's sign-in and consent pages)"
    );
    say!(
        "  sign in      operator@demo.example, admin@demo.example, reception@demo.example, admin@lokal.example or admin@ny.example, password {demo_password}"
    );
    say!(
        "  Microsoft    after that, \"Logga in med Microsoft\" signs in chef@ny.example (app role Kalsync.Admin) or reception@ny.example (Kalsync.Reader) as Demo Ny AB's admin or reader"
    );
    say!(
        "  API          http://{address}/api/v1/openapi.json describes it; the operator's overview of every company is at /overview"
    );
    say!("Stop with Ctrl-C.");
    let result = kalsync_server::run(settings, listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    result
}
