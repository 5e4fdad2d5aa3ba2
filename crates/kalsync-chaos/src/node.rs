//! The service as child processes: the database the nodes share, the settings file each
//! node gets, `kalsync serve` started from the binary the harness runs in and killed
//! with SIGKILL, and their wall clock, stepped through libfaketime.

use std::cell::Cell;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::workload::{Company, Reach};

/// The rules every chaos instance runs (the oracle parses the same text).
pub(crate) const RULES: &str =
    "template = \"prefix-then-showas\"\nuser_choice = \"any\"\ndays_ahead = 7\n";
/// The webhook target's signing secret, which the PBX checks.
pub(crate) const SIGNING_SECRET: &str = "whsec_Y2hhb3Mtc2lnbmluZy1zZWNyZXQtMjAyNg==";
/// The operator the harness signs in to the admin API as.
pub(crate) const OPERATOR: &str = "chaos@operator.example";
/// The operator's password.
pub(crate) const OPERATOR_PASSWORD: &str = "chaos-operator-password";
/// The service account on the simulated Exchange.
pub(crate) const EWS_ACCOUNT: &str = "CHAOS\\svc-kalsync";
/// Its password.
pub(crate) const EWS_PASSWORD: &str = "chaos-exchange-password";

/// libfaketime, which steps the child's wall clock from a file (Debian's `faketime`).
pub(crate) const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// A running `kalsync serve`.
pub(crate) struct Node {
    child: Child,
}

impl Node {
    /// Starts `kalsync serve` — the executable this harness runs in — and waits for its
    /// first line; its log goes to `log`.
    fn start(
        config: &Path,
        port: u16,
        log: &Path,
        clock_file: Option<&Path>,
        broken: Option<&str>,
    ) -> Result<Node, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .args([
                "serve",
                "--config",
                &config.to_string_lossy(),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            // `KALSYNC_CHAOS_LOG` sets the nodes' log filter (default `warn`).
            .env(
                "RUST_LOG",
                std::env::var("KALSYNC_CHAOS_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(broken.map(|b| ("KALSYNC_HARNESS_BROKEN", b)))
            .envs(clock_file.into_iter().flat_map(|file| {
                [
                    ("LD_PRELOAD", FAKETIME.into()),
                    ("FAKETIME_TIMESTAMP_FILE", file.display().to_string()),
                    ("FAKETIME_NO_CACHE", "1".into()),
                    // Only the wall clock steps; timers keep their own time.
                    ("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()),
                ]
            }))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("kalsync serve: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        match lines.next() {
            Some(Ok(first)) if first.starts_with("Kalsync on") => {}
            other => {
                let _ = child.kill();
                return Err(format!("kalsync serve did not start: {other:?}"));
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Ok(Node { child })
    }
}

/// Dropping the node kills it with SIGKILL: no shutdown, no flush.
impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the service is started, the first time and after every kill.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub(crate) config: PathBuf,
    pub(crate) log: PathBuf,
    pub(crate) port: u16,
    /// The clock file, where the wall clock steps.
    pub(crate) clock_file: Option<PathBuf>,
    /// A deliberately broken behaviour to switch on (the harness's self-check).
    pub(crate) broken: Option<String>,
}

impl Launch {
    /// Starts the service (off the async threads: it waits for the child's first line).
    pub(crate) async fn start(&self) -> Result<Node, String> {
        let launch = self.clone();
        tokio::task::spawn_blocking(move || {
            Node::start(
                &launch.config,
                launch.port,
                &launch.log,
                launch.clock_file.as_deref(),
                launch.broken.as_deref(),
            )
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// The child's wall clock: an offset in a file libfaketime reads at every call.
pub(crate) struct Clock {
    file: PathBuf,
    offset: Cell<i64>,
}

impl Clock {
    /// The clock in `dir`, set to the true time; none where libfaketime is missing.
    pub(crate) fn install(dir: &Path) -> Option<Clock> {
        let clock = Path::new(FAKETIME).exists().then(|| Clock {
            file: dir.join("clock"),
            offset: Cell::new(0),
        })?;
        clock.set(0);
        Some(clock)
    }

    /// The file libfaketime reads.
    pub(crate) fn file(&self) -> &Path {
        &self.file
    }

    /// Sets the service's wall clock `seconds` off the true time; the step it made
    /// (new offset less the old one).
    pub(crate) fn set(&self, seconds: i64) -> i64 {
        let _ = std::fs::write(&self.file, format!("{seconds:+}\n"));
        seconds - self.offset.replace(seconds)
    }
}

/// How a clock step is counted.
pub(crate) fn step_kind(step: i64) -> Option<&'static str> {
    match step {
        0 => None,
        s if s > 0 => Some("clock stepped forward"),
        _ => Some("clock stepped back"),
    }
}

/// A loopback port free for the service to listen on.
pub(crate) fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// Where the nodes keep their data: a SQLite file in the run's directory (one node), or
/// a database of its own on a PostgreSQL server, dropped after the run.
pub(crate) enum Database {
    /// The SQLite file.
    Sqlite(PathBuf),
    /// A fresh database: the server's admin URL, its name and its URL.
    Postgres {
        admin: String,
        name: String,
        url: String,
    },
}

impl Database {
    /// A SQLite file in `dir`, or a fresh database on the PostgreSQL server `admin`
    /// names.
    pub(crate) async fn make(
        dir: &Path,
        postgres: Option<&str>,
        seed: u64,
    ) -> Result<Database, String> {
        use sqlx::Connection as _;
        let Some(admin) = postgres else {
            return Ok(Database::Sqlite(dir.join("chaos.db")));
        };
        let name = format!("kalsync_chaos_{}_{seed}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .map_err(|e| format!("PostgreSQL at --postgres: {e}"))?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("cannot create the run's database: {e}"))?;
        let server = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
        Ok(Database::Postgres {
            admin: admin.to_owned(),
            url: format!("{server}/{name}"),
            name,
        })
    }

    /// The URL the nodes open.
    pub(crate) fn url(&self) -> String {
        match self {
            Database::Sqlite(path) => format!("sqlite:{}", path.display()),
            Database::Postgres { url, .. } => url.clone(),
        }
    }

    /// What it is, for the report.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres { .. } => "postgresql",
        }
    }

    /// Drops a PostgreSQL database (a SQLite file goes with the run's directory).
    pub(crate) async fn drop_it(&self) {
        use sqlx::Connection as _;
        if let Database::Postgres { admin, name, .. } = self
            && let Ok(mut conn) = sqlx::PgConnection::connect(admin).await
        {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await;
        }
    }
}

/// The master key file every node shares.
pub(crate) fn master_key(dir: &Path) -> PathBuf {
    dir.join("chaos.key")
}

/// The sources, mailboxes and PBX the service is told about.
pub(crate) struct Wiring<'a> {
    /// Where the nodes are reached from outside (the balancer): the public URL.
    pub(crate) public_port: u16,
    pub(crate) database_url: &'a str,
    pub(crate) pbx_url: &'a str,
    pub(crate) graph_url: &'a url::Url,
    pub(crate) ews_url: &'a url::Url,
    pub(crate) company: &'a Company,
}

/// One node's settings file: its name, the shared database and key, the balancer as the
/// public URL; one operator, one company with the webhook PBX, an instance per way a
/// mailbox is reached (Microsoft 365; Exchange 2016 streaming; Exchange 2007 push;
/// Exchange 2007 pulled; Exchange 2016 delegate), all with [`RULES`]. Mailboxes without
/// notifications are polled every five seconds; notified ones only hourly, so a change a
/// notification path loses stays lost for the run and shows as a divergence.
pub(crate) fn config_text(dir: &Path, node: usize, w: &Wiring<'_>) -> String {
    let list = |users: &[String]| {
        users
            .iter()
            .enumerate()
            .map(|(i, u)| format!("{{ email = \"{u}\", extension = \"{}\" }}", 1000 + i))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rules: String = RULES.lines().map(|l| format!("{l}\n")).collect();
    let Wiring {
        public_port,
        database_url,
        pbx_url,
        graph_url,
        ews_url,
        company,
    } = w;
    let ews = |version: &str, access: &str, options: &str| {
        format!(
            "{{ kind = \"ews\", url = \"{ews_url}EWS/Exchange.asmx\", username = \"{account}\", password = \"{EWS_PASSWORD}\", auth = \"ntlm\", version = \"{version}\", access = \"{access}\", options = {{ {options} }} }}",
            account = EWS_ACCOUNT.replace('\\', "\\\\"),
        )
    };
    let instances: String = Reach::ALL
        .iter()
        .map(|reach| {
            let (name, source) = match reach {
                Reach::Graph => (
                    "Microsoft 365",
                    format!(
                        "{{ kind = \"graph\", tenant = \"chaos\", client_id = \"chaos-app\", client_secret = \"chaos-secret\", graph_url = \"{graph_url}v1.0/\", login_url = \"{graph_url}\" }}"
                    ),
                ),
                Reach::Streaming => ("Exchange 2016", ews("2016", "impersonation", "")),
                Reach::Push => ("Exchange 2007 push", ews("2007", "impersonation", "")),
                Reach::Pull => ("Exchange 2007 pull", ews("2007", "impersonation", "pull = true")),
                Reach::Delegate => ("Exchange 2016 delegate", ews("2016", "delegate", "")),
            };
            format!(
                "\n[[companies.instances]]\nname = \"{name}\"\nsource = {source}\nusers = [{users}]\n[companies.instances.settings]\n{rules}",
                users = list(&company.reached(*reach)),
            )
        })
        .collect();
    format!(
        r#"node = "chaos-{node}"
database_url = "{database_url}"
master_key_file = "{key}"
public_url = "http://127.0.0.1:{public_port}/"

# The simulators and the webhook PBX listen on loopback.
[outbound]
allow = ["127.0.0.0/8", "::1/128"]

[engine]
poll_interval_secs = 5
subscribed_poll_interval_secs = 3600
debounce_ms = 200
max_attempts = 100000

[[accounts]]
email = "{OPERATOR}"
role = "operator"
password = "{OPERATOR_PASSWORD}"

[[companies]]
name = "Chaos AB"

[[companies.targets]]
kind = "webhook"
name = "pbx"
url = "{pbx_url}"
signing_secret = "{SIGNING_SECRET}"
{instances}"#,
        key = master_key(dir).display(),
    )
}
