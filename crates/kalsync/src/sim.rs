//! `kalsync sim graph` and `kalsync sim ews`: the Graph and EWS simulators as
//! processes, with a sample company, for trying Kalsync (or anything else that speaks
//! Graph or EWS) without a Microsoft 365 tenant or an Exchange server.

use std::net::SocketAddr;

use clap::{Args, Subcommand};
use kalsync_graph_sim::{SimConfig, Simulator, sample};

/// `kalsync sim …`
#[derive(Debug, Subcommand)]
pub(crate) enum SimCommand {
    /// Serve a Microsoft Graph simulator.
    Graph(GraphSimArgs),
    /// Serve an on-premises Exchange (EWS) simulator.
    Ews(EwsSimArgs),
}

/// Arguments of `kalsync sim ews`.
#[derive(Debug, Args)]
pub(crate) struct EwsSimArgs {
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1:8082")]
    listen: SocketAddr,
    /// People in the sample company, each with two weeks of bookings.
    #[arg(long, default_value_t = 25)]
    users: usize,
    /// Seed of the sample calendars.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The first Monday of the sample weeks [default: this week's].
    #[arg(long, value_name = "DATE")]
    monday: Option<jiff::civil::Date>,
    /// The service account the simulator accepts (it may impersonate every mailbox).
    #[arg(long, default_value = "CORP\\svc-kalsync")]
    account: String,
    /// Its password [default: a new random one].
    #[arg(long, env = "KALSYNC_SIM_EWS_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Mail domain of the sample company.
    #[arg(long, default_value = "corp.example")]
    domain: String,
    /// Serve HTTPS with a fresh self-signed certificate, written (PEM) to this file for
    /// the client's `ca_file`; NTLM then requires the channel binding (IIS Extended
    /// Protection "Required").
    #[arg(long, value_name = "FILE")]
    tls_cert_out: Option<std::path::PathBuf>,
}

/// Arguments of `kalsync sim graph`.
#[derive(Debug, Args)]
pub(crate) struct GraphSimArgs {
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// People in the sample company, each with two weeks of bookings.
    #[arg(long, default_value_t = 25)]
    users: usize,
    /// Seed of the sample calendars.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The first Monday of the sample weeks [default: this week's].
    #[arg(long, value_name = "DATE")]
    monday: Option<jiff::civil::Date>,
    /// Tenant id of the simulated directory.
    #[arg(long, default_value = "00000000-0000-4000-8000-00000000c0de")]
    tenant: String,
    /// Application (client) id the simulator accepts.
    #[arg(long, default_value = "00000000-0000-4000-8000-0000000a99e1")]
    client_id: String,
    /// Client secret the simulator accepts [default: a new random one].
    #[arg(long, env = "KALSYNC_SIM_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// Mail domain of the sample company.
    #[arg(long, default_value = "contoso.example")]
    domain: String,
}

/// Runs the command until Ctrl-C or SIGTERM.
pub(crate) fn run(command: &SimCommand) -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start: {e}"))?;
    match command {
        SimCommand::Graph(args) => runtime.block_on(serve_graph(args)),
        SimCommand::Ews(args) => runtime.block_on(serve_ews(args)),
    }
}

async fn serve_ews(args: &EwsSimArgs) -> Result<(), String> {
    let password = args
        .password
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let calendars = Simulator::new(SimConfig::with_secret("ews", "ews", &password));
    let monday = args.monday.unwrap_or_else(this_monday);
    let people = sample::populate(&calendars, args.users, monday, 2, args.seed, &args.domain)
        .map_err(|e| format!("sample company: {e}"))?;
    let mut config = kalsync_ews_sim::EwsConfig::new(&args.account, &password);
    if args.tls_cert_out.is_some() {
        config.extended_protection = kalsync_ews_sim::ExtendedProtection::Require;
    }
    let sim = kalsync_ews_sim::EwsSim::new(calendars, config);
    let (listener, base) = bind(args.listen).await?;
    let tls = match &args.tls_cert_out {
        Some(path) => {
            let (acceptor, pem) =
                kalsync_ews_sim::certificate(&sim).map_err(|e| format!("certificate: {e}"))?;
            std::fs::write(path, pem)
                .map_err(|e| format!("--tls-cert-out {}: {e}", path.display()))?;
            Some(acceptor)
        }
        None => None,
    };
    let base = if tls.is_some() {
        base.replacen("http://", "https://", 1)
    } else {
        base
    };
    say!("Exchange (EWS) simulator on {base}");
    if let Some(path) = &args.tls_cert_out {
        say!(
            "  certificate    {}   (trust it with ca_file; NTLM needs the channel binding)",
            path.display()
        );
    }
    say!(
        "  ews            {base}EWS/Exchange.asmx   (NTLM or Basic; FindItem, GetItem, SyncFolderItems, Subscribe, GetEvents, GetStreamingEvents)"
    );
    say!(
        "  account        {}   (may impersonate every mailbox)",
        args.account
    );
    say!("  password       {password}   (the simulator's own; it opens nothing else)");
    say!(
        "  control        {base}_sim/   (users, events) and {base}_sim/ews/   (faults, rights, stats)"
    );
    say_mailboxes(&people, monday);
    say!("Stop with Ctrl-C.");
    match tls {
        Some(acceptor) => {
            kalsync_ews_sim::run_tls(sim, listener, acceptor, crate::serve::shutdown_signal()).await
        }
        None => kalsync_ews_sim::run(sim, listener, crate::serve::shutdown_signal()).await,
    }
    .map_err(|e| e.to_string())
}

/// Listens on `listen`; the listener and its base URL.
async fn bind(listen: SocketAddr) -> Result<(tokio::net::TcpListener, String), String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("--listen {listen}: {e}"))?;
    let base = format!(
        "http://{}/",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    Ok((listener, base))
}

/// The line naming the sample mailboxes.
fn say_mailboxes(people: &[sample::Person], monday: jiff::civil::Date) {
    match people.first() {
        Some(p) => say!(
            "  mailboxes      {} from {monday} (e.g. {} <{}>)",
            people.len(),
            p.name,
            p.upn
        ),
        None => say!("  mailboxes      none"),
    }
}

fn this_monday() -> jiff::civil::Date {
    let today = jiff::Zoned::now().date();
    today
        .checked_sub(jiff::Span::new().days(i64::from(today.weekday().to_monday_zero_offset())))
        .unwrap_or(today)
}

async fn serve_graph(args: &GraphSimArgs) -> Result<(), String> {
    let secret = args
        .client_secret
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let sim = Simulator::new(SimConfig::with_secret(
        &args.tenant,
        &args.client_id,
        &secret,
    ));
    let monday = args.monday.unwrap_or_else(this_monday);
    let people = sample::populate(&sim, args.users, monday, 2, args.seed, &args.domain)
        .map_err(|e| format!("sample company: {e}"))?;
    let (listener, base) = bind(args.listen).await?;
    say!("Microsoft Graph simulator on {base}");
    say!("  tenant id      {}", args.tenant);
    say!("  client id      {}", args.client_id);
    say!("  client secret  {secret}   (the simulator's own; it opens nothing else)");
    say!(
        "  token          POST {base}{}/oauth2/v2.0/token",
        args.tenant
    );
    say!("  graph          {base}v1.0/   (calendarView, $batch, subscriptions, mailboxSettings)");
    say!("  control        {base}_sim/   (users, events, faults, subscriptions, stats)");
    say_mailboxes(&people, monday);
    say!("Stop with Ctrl-C.");
    kalsync_graph_sim::run(sim, listener, crate::serve::shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}
