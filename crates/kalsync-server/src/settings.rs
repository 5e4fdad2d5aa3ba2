//! The service's settings: defaults, then the TOML file, then `KALSYNC_*` environment
//! variables (`__` for nesting), then flags. Companies, instances, users and targets may
//! be declared in the file too.

use std::net::SocketAddr;
use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use kalsync_core::exchange::{Access, SignIn, Version};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The commented example `kalsync config example` prints.
pub const EXAMPLE: &str = include_str!("../kalsync.example.toml");

/// The example for an installed service (`kalsync config example --state-directory DIR`,
/// the Debian package's `/etc/kalsync/kalsync.toml`): the database and the master key
/// in `state_directory`, and nothing declared — no sample company or PBX is created at
/// start, and the first operator's account is left for the operator to write.
pub fn installed_example(state_directory: &str) -> String {
    let dir = state_directory.trim_end_matches('/');
    let head = EXAMPLE
        .split("# Companies, their PBX targets")
        .next()
        .unwrap_or(EXAMPLE)
        .replace(
            "database_url = \"sqlite:kalsync.db\"",
            &format!("database_url = \"sqlite:{dir}/kalsync.db\""),
        )
        .replace(
            "master_key_file = \"kalsync.key\"",
            &format!("master_key_file = \"{dir}/kalsync.key\""),
        );
    format!(
        "{head}# Companies, their PBX targets, instances and users are made in the admin UI or \
         through\n# the API, or declared here: `kalsync config example` prints every kind.\n\n\
         # The first operator's account, created at start when missing. Uncomment, choose a\n\
         # password (10 characters or more; change it after the first sign-in), and\n\
         # `systemctl restart kalsync`.\n\
         # [[accounts]]\n\
         # email = \"admin@operator.example\"\n\
         # role = \"operator\"\n\
         # password = \"\"\n"
    )
}

/// How the service runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Where the HTTP endpoints listen.
    pub listen: SocketAddr,
    /// `sqlite:kalsync.db` (the default) or `postgres://…`.
    pub database_url: String,
    /// The master key (base64, 32 bytes); wins over `master_key_file`.
    #[serde(skip_serializing)]
    pub master_key: Option<SecretString>,
    /// Where the master key lives; created (mode 0600) on first start.
    pub master_key_file: PathBuf,
    /// This service's address as Microsoft Graph reaches it (for change notifications);
    /// without it, mailboxes are polled.
    pub public_url: Option<url::Url>,
    /// This node's name [default: the host name]. Several nodes on one host need
    /// distinct names; a restarted node with the same name takes its users back at once.
    pub node: Option<String>,
    /// Logs.
    pub log: LogSettings,
    /// The engine's pacing.
    pub engine: EngineSettings,
    /// Companies declared in the file.
    pub companies: Vec<CompanyDecl>,
    /// Accounts that sign in to the admin UI and API, created when missing (an existing
    /// account keeps its password).
    pub accounts: Vec<AccountDecl>,
    /// The operator's multi-tenant Entra ID app, for *Connect Microsoft 365*.
    pub microsoft365: Option<Microsoft365Settings>,
    /// Where sources and targets may be reached.
    pub outbound: OutboundSettings,
    /// Reverse proxies (addresses or networks, `10.0.0.0/8`) whose `Forwarded` or
    /// `X-Forwarded-For` header names the client, for the sign-in limits [default:
    /// none, every peer is the client].
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// The operator's multi-tenant app: companies grant it access with the admin-consent
/// redirect instead of registering their own app.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Microsoft365Settings {
    /// Application (client) id.
    pub client_id: String,
    /// Its client secret.
    #[serde(skip_serializing)]
    pub client_secret: SecretString,
    /// Login host [default: `https://login.microsoftonline.com/`].
    #[serde(default)]
    pub login_url: Option<url::Url>,
    /// Graph root when not the global cloud's (national clouds, the simulator).
    #[serde(default)]
    pub graph_url: Option<String>,
    /// The operator's own tenant (its Directory id): its people with one of
    /// `operator_roles` sign in with Microsoft as the operator [default: none, the
    /// operator's staff sign in with passwords or linked accounts].
    #[serde(default)]
    pub operator_tenant: Option<kalsync_core::TenantId>,
    /// App role values or group ids of the operator's staff [default:
    /// `["Kalsync.Operator"]`].
    #[serde(default = "operator_roles")]
    pub operator_roles: Vec<String>,
}

fn operator_roles() -> Vec<String> {
    vec!["Kalsync.Operator".into()]
}

/// An account declared in the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountDecl {
    /// The sign-in e-mail.
    pub email: String,
    /// `operator`, `company_admin` or `reader`.
    pub role: String,
    /// The company's name (not for the operator).
    #[serde(default)]
    pub company: Option<String>,
    /// The first password (at least 10 characters); change it after signing in.
    #[serde(skip_serializing)]
    pub password: SecretString,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite:kalsync.db".into(),
            master_key: None,
            master_key_file: PathBuf::from("kalsync.key"),
            public_url: None,
            node: None,
            log: LogSettings::default(),
            engine: EngineSettings::default(),
            companies: Vec::new(),
            accounts: Vec::new(),
            microsoft365: None,
            outbound: OutboundSettings::default(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// Where outbound requests may go. Company admins type the addresses of their sources:
/// loopback, private, link-local and unique-local addresses are refused unless allowed
/// here (`docs/THREAT_MODEL.md`, T5).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundSettings {
    /// Networks on such ranges that sources and targets may still reach, e.g.
    /// `["10.20.0.0/16"]` for an on-premises Exchange and a PBX on the operator's own
    /// network [default: none].
    pub allow: Vec<ipnet::IpNet>,
}

impl OutboundSettings {
    /// This machine's loopback allowed (the demo and tests, whose simulators listen
    /// there).
    pub fn loopback() -> OutboundSettings {
        OutboundSettings {
            allow: kalsync_outbound::OutboundPolicy::with_loopback()
                .allowed()
                .to_vec(),
        }
    }

    /// The policy every outbound client of the service follows.
    pub fn policy(&self) -> kalsync_outbound::OutboundPolicy {
        kalsync_outbound::OutboundPolicy::new(self.allow.clone())
    }
}

/// Logs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `kalsync_engine=debug`.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

/// The engine's pacing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSettings {
    /// Seconds between polls of a mailbox without notifications.
    pub poll_interval_secs: u64,
    /// Seconds between polls of a mailbox whose changes are notified (a safety net)
    /// [default: `poll_interval_secs`].
    pub subscribed_poll_interval_secs: Option<u64>,
    /// Milliseconds a change waits for more before the re-read.
    pub debounce_ms: u64,
    /// Days bookings are kept after they end.
    pub retention_days: u32,
    /// Concurrent re-reads.
    pub sync_concurrency: usize,
    /// Attempts before a delivery is a dead letter.
    pub max_attempts: u32,
    /// Seconds between reads of the held users' automatic replies (they have no change
    /// notifications; they are also read with each calendar).
    pub automatic_replies_secs: u64,
    /// Graph presence requests (Teams) per tenant in any 30 seconds, across all nodes
    /// [default: 1500, Microsoft's limit per app and tenant].
    pub teams_requests_per_30s: u32,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            poll_interval_secs: 300,
            subscribed_poll_interval_secs: None,
            debounce_ms: 2000,
            retention_days: 30,
            sync_concurrency: 16,
            max_attempts: 10,
            automatic_replies_secs: 300,
            teams_requests_per_30s: kalsync_teams::limiter::GRAPH_BUDGET,
        }
    }
}

/// A company declared in the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompanyDecl {
    /// Its name (the key: a company of that name is created once).
    pub name: String,
    /// Its PBX targets.
    #[serde(default)]
    pub targets: Vec<TargetDecl>,
    /// Its instances.
    #[serde(default)]
    pub instances: Vec<InstanceDecl>,
}

/// A target declared in the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum TargetDecl {
    /// A webhook.
    Webhook {
        /// Name (the key in the company).
        name: String,
        /// Where.
        url: String,
        /// `whsec_…`.
        #[serde(skip_serializing)]
        signing_secret: SecretString,
        /// Up to 500 users' statuses in one signed POST (`kalsync.status.batch`), for a
        /// PBX that takes them so.
        #[serde(default)]
        batch: bool,
    },
    /// The in-process PBX simulator.
    Simulator {
        /// Name.
        name: String,
    },
    /// Asterisk or FreePBX over the Manager Interface.
    Ami {
        /// Name.
        name: String,
        /// Host.
        host: String,
        /// Port (5038).
        #[serde(default = "ami_port")]
        port: u16,
        /// Manager user.
        username: String,
        /// Manager secret.
        #[serde(skip_serializing)]
        secret: SecretString,
        /// The number diverted calls go to (the absence announcement).
        announcement: String,
    },
    /// A SIP presence server (PUBLISH of PIDF/RPID), e.g. Kamailio.
    Sip {
        /// Name.
        name: String,
        /// The server: `sip:host:port` (UDP), `;transport=tcp`, `;transport=tls` or
        /// `sips:host:port` (TLS).
        proxy: String,
        /// The presentities' domain: `sip:<extension>@<domain>`.
        domain: String,
        /// Digest user.
        username: String,
        /// Digest password.
        #[serde(skip_serializing)]
        password: SecretString,
        /// For TLS to a server with a certificate of the company's own CA: that CA (PEM).
        #[serde(default)]
        ca_file: Option<std::path::PathBuf>,
    },
    /// Microsoft Teams: the absence's announcement as each person's status message,
    /// through the Graph connection of their instance.
    Teams {
        /// Name.
        name: String,
        /// Whether an app presence session shows the absence too.
        #[serde(default)]
        presence: bool,
        /// The status message's language: `sv` (the default) or `en`.
        #[serde(default)]
        language: TeamsLanguage,
    },
}

/// The language of a Teams status message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TeamsLanguage {
    /// Swedish.
    #[default]
    Sv,
    /// English.
    En,
}

impl From<TeamsLanguage> for kalsync_core::Lang {
    fn from(l: TeamsLanguage) -> Self {
        match l {
            TeamsLanguage::Sv => kalsync_core::Lang::Sv,
            TeamsLanguage::En => kalsync_core::Lang::En,
        }
    }
}

fn ami_port() -> u16 {
    5038
}

/// An instance declared in the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceDecl {
    /// Name (the key in the company).
    pub name: String,
    /// Where bookings come from.
    pub source: SourceDecl,
    /// The rules file's keys, inline (see the README's rules reference).
    #[serde(default)]
    pub settings: Option<toml::Table>,
    /// Users: addresses, or tables with `email`, `name`, `extension`.
    #[serde(default)]
    pub users: Vec<UserDecl>,
    /// Its directory (Katalog Synk): the groups whose members are its users, as
    /// `PUT /api/v1/instances/{id}/directory` takes them. Left as it is when absent.
    #[serde(default)]
    pub directory: Option<kalsync_directory::DirectorySettings>,
}

/// A source declared in the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceDecl {
    /// Microsoft Graph with a client secret.
    Graph {
        /// Tenant id or domain.
        tenant: String,
        /// Application (client) id.
        client_id: String,
        /// Client secret.
        #[serde(skip_serializing)]
        client_secret: SecretString,
        /// Graph root for national clouds or the simulator.
        #[serde(default)]
        graph_url: Option<String>,
        /// Login host for national clouds or the simulator.
        #[serde(default)]
        login_url: Option<String>,
    },
    /// On-premises Exchange over EWS with a service account.
    Ews {
        /// `https://mail.corp.example/EWS/Exchange.asmx`.
        url: String,
        /// `DOMAIN\\svc-kalsync` or `svc-kalsync@corp.example`.
        username: String,
        /// Its password.
        #[serde(skip_serializing)]
        password: SecretString,
        /// `ntlm` (Windows integrated authentication, the default), `basic` or `oauth`.
        #[serde(default = "ntlm")]
        auth: SignIn,
        /// `2007`, `2010`, `2013`, `2016`, `2019`, `se` or `Exchange2010_SP1`….
        #[serde(default = "exchange_2016")]
        version: Version,
        /// `impersonation` (ApplicationImpersonation) or `delegate` (Reviewer).
        #[serde(default = "impersonation")]
        access: Access,
        /// OAuth tenant and scope, request limit (`max_concurrency`), inline CAs.
        #[serde(default)]
        options: kalsync_store::EwsOptions,
        /// A PEM file of CA certificates to trust for the server (a company's own CA).
        #[serde(default)]
        ca_file: Option<std::path::PathBuf>,
    },
}

fn ntlm() -> SignIn {
    SignIn::Ntlm
}

fn exchange_2016() -> Version {
    Version::Exchange2013Sp1
}

fn impersonation() -> Access {
    Access::Impersonation
}

/// A user declared in the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UserDecl {
    /// Just the address.
    Email(String),
    /// Address, name and extension.
    Full {
        /// Address.
        email: String,
        /// Name.
        #[serde(default)]
        name: Option<String>,
        /// PBX extension.
        #[serde(default)]
        extension: Option<String>,
    },
}

/// Flags that override the rest.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--database-url`.
    pub database_url: Option<String>,
}

impl Settings {
    /// Reads the settings: defaults, the file (when given), `KALSYNC_*`, then the flags.
    pub fn load(file: Option<&std::path::Path>, overrides: &Overrides) -> Result<Settings, String> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(format!("{}: no such file", path.display()));
            }
            figment = figment.merge(Toml::file(path));
        }
        // The test suite's and the harness's own variables are not settings.
        figment = figment.merge(Env::prefixed("KALSYNC_").split("__").ignore(&[
            "test_postgres_url",
            "sim_client_secret",
            "require_fixtures",
            "chaos_seed",
            "chaos_log",
            "harness_broken",
            "axe",
        ]));
        if let Some(listen) = overrides.listen {
            figment = figment.merge(Serialized::default("listen", listen));
        }
        if let Some(url) = &overrides.database_url {
            figment = figment.merge(Serialized::default("database_url", url));
        }
        figment.extract().map_err(|e| {
            let source = file
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "settings".into());
            format!("{source}: {e}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readmes_settings_blocks_and_the_examples_operator_app_load() {
        // Every ```toml settings block of the README is a valid settings file.
        let readme = include_str!("../../../README.md");
        let blocks: Vec<&str> = readme
            .split("```toml settings\n")
            .skip(1)
            .filter_map(|rest| rest.split("```").next())
            .collect();
        assert!(!blocks.is_empty(), "the README shows the operator's app");
        let app: String = EXAMPLE
            .lines()
            .skip_while(|l| !l.starts_with("# [microsoft365]"))
            .take_while(|l| l.starts_with("# "))
            .map(|l| format!("{}\n", l.trim_start_matches("# ")))
            .collect();
        for block in blocks.into_iter().chain([app.as_str()]) {
            let s: Settings = Figment::from(Serialized::defaults(Settings::default()))
                .merge(Toml::string(&block.replace('…', "x")))
                .extract()
                .unwrap_or_else(|e| panic!("{e}\n{block}"));
            if block.contains("[microsoft365]") {
                assert!(s.microsoft365.is_some(), "{block}");
            }
            if block.contains("[outbound]") {
                assert!(!s.outbound.allow.is_empty(), "{block}");
            }
        }
    }

    #[test]
    fn the_packaged_settings_are_the_installed_example() {
        let packaged = include_str!("../../../packaging/debian/kalsync.toml");
        assert_eq!(
            packaged,
            installed_example("/var/lib/kalsync"),
            "packaging/debian/kalsync.toml: write it again with \
             `kalsync config example --state-directory /var/lib/kalsync`"
        );
        let s: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::string(packaged))
            .extract()
            .expect("the packaged settings load");
        assert_eq!(s.database_url, "sqlite:/var/lib/kalsync/kalsync.db");
        assert_eq!(
            s.master_key_file,
            std::path::Path::new("/var/lib/kalsync/kalsync.key")
        );
        assert!(s.companies.is_empty() && s.accounts.is_empty());
        // Its account, uncommented with a password, is a valid declaration.
        let account: String = packaged
            .lines()
            .skip_while(|l| !l.starts_with("# [[accounts]]"))
            .map(|l| format!("{}\n", l.trim_start_matches("# ")))
            .collect();
        let s: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::string(
                &account.replace("password = \"\"", "password = \"long-enough-1\""),
            ))
            .extract()
            .expect("the account loads");
        assert_eq!(s.accounts.len(), 1);
    }

    #[test]
    fn the_example_is_valid_and_layers_apply_in_order() {
        let dir = std::env::temp_dir().join(format!("kalsync-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("kalsync.toml");
        std::fs::write(&path, EXAMPLE).expect("write");
        let s = Settings::load(Some(&path), &Overrides::default()).expect("the example loads");
        assert_eq!(s.companies.len(), 1);
        assert_eq!(s.accounts.len(), 1);
        assert_eq!(s.accounts[0].role, "operator");
        // Its commented EWS instance is valid too, once uncommented.
        let ews_lines: Vec<&str> = EXAMPLE
            .lines()
            .skip_while(|l| !l.starts_with("# [[companies.instances]]"))
            .map(|l| l.trim_start_matches("# "))
            .collect();
        assert_eq!(ews_lines.len(), 4, "{ews_lines:?}");
        std::fs::write(&path, format!("{EXAMPLE}\n{}\n", ews_lines.join("\n"))).expect("write");
        let s = Settings::load(Some(&path), &Overrides::default()).expect("with EWS");
        assert!(matches!(
            &s.companies[0].instances[1].source,
            SourceDecl::Ews {
                auth: SignIn::Ntlm,
                access: Access::Impersonation,
                ..
            }
        ));
        std::fs::write(&path, EXAMPLE).expect("write");
        let flags = Overrides {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 9999))),
            database_url: Some("sqlite:other.db".into()),
        };
        let s = Settings::load(Some(&path), &flags).expect("loads");
        assert_eq!(s.listen.port(), 9999);
        assert_eq!(s.database_url, "sqlite:other.db");
        std::fs::write(&path, "listen = \"127.0.0.1:8080\"\nlisten_port = 1\n").expect("write");
        let e = Settings::load(Some(&path), &Overrides::default()).unwrap_err();
        assert!(e.contains("listen_port"), "{e}");
        assert!(
            Settings::load(Some(&dir.join("missing.toml")), &Overrides::default())
                .unwrap_err()
                .contains("no such file")
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
