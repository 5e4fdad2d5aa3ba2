//! The records the store keeps, and their sealed form: secrets leave memory only
//! encrypted.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use kalsync_core::exchange::{Access, SignIn, Version};
use kalsync_core::{EmailAddress, Extension, InstanceSettings};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::StoreError;
use crate::crypto::SecretBox;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A new random id.
            pub fn new() -> Self {
                Self(uuid::Uuid::new_v4())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// A company's id.
    CompanyId
);
id_type!(
    /// An instance's id.
    InstanceId
);
id_type!(
    /// A user's id.
    UserId
);
id_type!(
    /// A PBX target's id.
    TargetId
);
id_type!(
    /// A delivery's id; also its idempotency key at the target.
    DeliveryId
);

/// A customer of the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Company {
    /// Id.
    pub id: CompanyId,
    /// Name.
    pub name: String,
    /// Created.
    pub created: Timestamp,
}

/// How an app authenticates to Microsoft Graph.
#[derive(Debug, Clone)]
pub enum GraphCredential {
    /// A client secret.
    Secret(SecretString),
    /// A certificate and its private key.
    Certificate {
        /// PEM.
        certificate_pem: String,
        /// PEM.
        private_key_pem: SecretString,
    },
}

/// Where an instance reads bookings.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    /// Exchange Online through Microsoft Graph.
    Graph {
        /// Tenant id or domain.
        tenant: String,
        /// Application (client) id.
        client_id: String,
        /// Secret or certificate.
        credential: GraphCredential,
        /// Graph root other than the global cloud's (national clouds, the simulator).
        graph_url: Option<String>,
        /// Login host other than the global cloud's.
        login_url: Option<String>,
    },
    /// On-premises Exchange through EWS.
    Ews {
        /// `https://mail.corp.example/EWS/Exchange.asmx`.
        url: String,
        /// The service account, `DOMAIN\user` or `user@domain`.
        username: String,
        /// Its password.
        password: SecretString,
        /// How it signs in: NTLM, Basic or OAuth.
        auth: SignIn,
        /// The `RequestServerVersion` it is asked as.
        version: Version,
        /// Impersonation or delegate access.
        access: Access,
        /// OAuth, request limit, trusted CAs.
        options: EwsOptions,
    },
}

/// An EWS instance's less common settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EwsOptions {
    /// With `auth = "oauth"`: the Entra ID tenant of the app (the instance's
    /// `username` is the app's client id, its `password` the client secret).
    pub tenant: Option<String>,
    /// Entra ID's login host other than the global cloud's.
    pub login_url: Option<String>,
    /// The OAuth scope (default: the EWS host's `/.default`).
    pub scope: Option<String>,
    /// Requests in flight at once (default 10, Exchange 2010's `EWSMaxConcurrency`;
    /// 2013 and later allow 27).
    pub max_concurrency: Option<u32>,
    /// CA certificates (PEM) trusted for the server besides the public roots: a
    /// company's own CA.
    pub ca_pem: Option<String>,
}

/// Everything that decides where an instance's secret, and the tokens it earns, are
/// sent. A stored secret is kept on a change only while this stays the same: a new
/// tenant, app, address, account, sign-in, OAuth tenant, login host, scope or trusted
/// CA needs the secret typed in again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretDestination {
    /// A Graph app's secret goes to `login_url`'s token endpoint for `tenant`; its
    /// tokens go to `graph_url`.
    Graph {
        /// Tenant.
        tenant: String,
        /// App.
        client_id: String,
        /// Graph root.
        graph_url: Option<String>,
        /// Login host.
        login_url: Option<String>,
    },
    /// An Exchange password goes to `url` (or, with OAuth, to the login host).
    Ews {
        /// The EWS address.
        url: String,
        /// The account.
        username: String,
        /// How it signs in.
        auth: SignIn,
        /// OAuth's tenant, login host and scope.
        oauth: (Option<String>, Option<String>, Option<String>),
        /// The CAs trusted for the server.
        ca_pem: Option<String>,
    },
}

impl SourceConfig {
    /// Where this configuration's secret goes ([`SecretDestination`]).
    pub fn secret_destination(&self) -> SecretDestination {
        match self {
            SourceConfig::Graph {
                tenant,
                client_id,
                graph_url,
                login_url,
                ..
            } => SecretDestination::Graph {
                tenant: tenant.clone(),
                client_id: client_id.clone(),
                graph_url: graph_url.clone(),
                login_url: login_url.clone(),
            },
            SourceConfig::Ews {
                url,
                username,
                auth,
                options,
                ..
            } => SecretDestination::Ews {
                url: url.clone(),
                username: username.clone(),
                auth: *auth,
                oauth: (
                    options.tenant.clone(),
                    options.login_url.clone(),
                    options.scope.clone(),
                ),
                ca_pem: options.ca_pem.clone(),
            },
        }
    }

    /// This configuration with `stored`'s secret, when both send it to the same place;
    /// `None` when anything that decides where it goes changed (or the kind did).
    pub fn keeping_secret_of(mut self, stored: &SourceConfig) -> Option<SourceConfig> {
        if self.secret_destination() != stored.secret_destination() {
            return None;
        }
        match (&mut self, stored) {
            (
                SourceConfig::Graph { credential, .. },
                SourceConfig::Graph {
                    credential: kept, ..
                },
            ) => *credential = kept.clone(),
            (SourceConfig::Ews { password, .. }, SourceConfig::Ews { password: kept, .. }) => {
                *password = kept.clone()
            }
            _ => return None,
        }
        Some(self)
    }

    /// A digest of everything in the configuration, secrets too, so that a connection
    /// built from it can tell when it is out of date. Kept in memory only: never stored,
    /// logged or shown.
    pub fn fingerprint(&self) -> u64 {
        use secrecy::ExposeSecret as _;
        use std::hash::{Hash as _, Hasher as _};
        let mut h = std::hash::DefaultHasher::new();
        self.secret_destination().hash(&mut h);
        match self {
            SourceConfig::Graph { credential, .. } => match credential {
                GraphCredential::Secret(s) => s.expose_secret().hash(&mut h),
                GraphCredential::Certificate {
                    certificate_pem,
                    private_key_pem,
                } => (certificate_pem, private_key_pem.expose_secret()).hash(&mut h),
            },
            SourceConfig::Ews {
                password,
                version,
                access,
                options,
                ..
            } => (password.expose_secret(), version, access, options).hash(&mut h),
        }
        h.finish()
    }

    /// The kind, for lists: `graph` or `ews`.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Graph { .. } => "graph",
            SourceConfig::Ews { .. } => "ews",
        }
    }

    /// The stored form, secrets sealed.
    pub fn seal(&self, secrets: &SecretBox) -> Value {
        match self {
            SourceConfig::Graph {
                tenant,
                client_id,
                credential,
                graph_url,
                login_url,
            } => {
                let credential = match credential {
                    GraphCredential::Secret(s) => {
                        json!({"kind": "secret", "secret": secrets.seal(s)})
                    }
                    GraphCredential::Certificate {
                        certificate_pem,
                        private_key_pem,
                    } => json!({
                        "kind": "certificate",
                        "certificate_pem": certificate_pem,
                        "private_key_pem": secrets.seal(private_key_pem),
                    }),
                };
                json!({"kind": "graph", "tenant": tenant, "client_id": client_id, "credential": credential,
                       "graph_url": graph_url, "login_url": login_url})
            }
            SourceConfig::Ews {
                url,
                username,
                password,
                auth,
                version,
                access,
                options,
            } => json!({"kind": "ews", "url": url, "username": username,
                        "password": secrets.seal(password), "auth": auth.as_str(),
                        "version": version.as_str(), "access": access.as_str(), "options": options}),
        }
    }

    /// Reads the stored form back, opening its secrets.
    pub fn open(value: &Value, secrets: &SecretBox) -> Result<Self, StoreError> {
        let corrupt = |m: &str| StoreError::Corrupt {
            what: "source".into(),
            message: m.into(),
        };
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        match value.get("kind").and_then(Value::as_str) {
            Some("graph") => {
                let c = value
                    .get("credential")
                    .ok_or_else(|| corrupt("no credential"))?;
                let credential = match c.get("kind").and_then(Value::as_str) {
                    Some("secret") => GraphCredential::Secret(
                        secrets.open(&text(c, "secret").ok_or_else(|| corrupt("no secret"))?)?,
                    ),
                    Some("certificate") => GraphCredential::Certificate {
                        certificate_pem: text(c, "certificate_pem")
                            .ok_or_else(|| corrupt("no certificate"))?,
                        private_key_pem: secrets
                            .open(&text(c, "private_key_pem").ok_or_else(|| corrupt("no key"))?)?,
                    },
                    _ => return Err(corrupt("unknown credential")),
                };
                Ok(SourceConfig::Graph {
                    tenant: text(value, "tenant").ok_or_else(|| corrupt("no tenant"))?,
                    client_id: text(value, "client_id").ok_or_else(|| corrupt("no client id"))?,
                    credential,
                    graph_url: text(value, "graph_url"),
                    login_url: text(value, "login_url"),
                })
            }
            Some("ews") => {
                let field = |k: &str| text(value, k).ok_or_else(|| corrupt(&format!("no {k}")));
                Ok(SourceConfig::Ews {
                    url: field("url")?,
                    username: field("username")?,
                    password: secrets.open(&field("password")?)?,
                    auth: SignIn::parse(&field("auth")?).map_err(|e| corrupt(&e))?,
                    version: Version::parse(&field("version")?).map_err(|e| corrupt(&e))?,
                    access: Access::parse(&field("access")?).map_err(|e| corrupt(&e))?,
                    options: match value.get("options") {
                        None | Some(Value::Null) => EwsOptions::default(),
                        Some(o) => serde_json::from_value(o.clone())
                            .map_err(|e| corrupt(&format!("options: {e}")))?,
                    },
                })
            }
            _ => Err(corrupt("unknown source kind")),
        }
    }
}

/// An instance to create.
#[derive(Debug, Clone)]
pub struct NewInstance {
    /// Its company.
    pub company: CompanyId,
    /// Name.
    pub name: String,
    /// Source.
    pub source: SourceConfig,
    /// Settings and rules.
    pub settings: InstanceSettings,
}

/// One integration with one source.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Id.
    pub id: InstanceId,
    /// Its company.
    pub company: CompanyId,
    /// Name.
    pub name: String,
    /// Source, secrets open.
    pub source: SourceConfig,
    /// Settings and rules.
    pub settings: InstanceSettings,
    /// Whether it syncs.
    pub active: bool,
    /// Created.
    pub created: Timestamp,
}

/// The source's sync state of one mailbox (watermark, delta link, subscription id and
/// expiry): opaque to the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SyncState(pub Value);

/// A user to add.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The instance.
    pub instance: InstanceId,
    /// The mailbox.
    pub email: EmailAddress,
    /// Display name.
    pub display_name: Option<String>,
    /// PBX extension.
    pub extension: Option<Extension>,
}

/// A synced user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// The instance.
    pub instance: InstanceId,
    /// The mailbox.
    pub email: EmailAddress,
    /// Display name.
    pub display_name: Option<String>,
    /// PBX extension.
    pub extension: Option<Extension>,
    /// The source's sync state.
    pub sync_state: SyncState,
    /// Last sync.
    pub last_sync: Option<Timestamp>,
    /// Its error, if it failed.
    pub last_error: Option<String>,
    /// Added.
    pub created: Timestamp,
}

/// How a target is reached.
#[derive(Debug, Clone)]
pub enum TargetConfig {
    /// JSON POSTs signed per Standard Webhooks.
    Webhook {
        /// Where.
        url: String,
        /// The `whsec_…` signing secret.
        signing_secret: SecretString,
    },
    /// SIP PUBLISH of PIDF presence.
    Sip {
        /// Proxy or registrar, e.g. `sip:pbx.example.se:5060`.
        proxy: String,
        /// Presentity domain.
        domain: String,
        /// Digest user.
        username: String,
        /// Digest password.
        password: SecretString,
    },
    /// Asterisk/FreePBX Manager Interface.
    Ami {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// Manager user.
        username: String,
        /// Manager secret.
        secret: SecretString,
        /// Where diverted calls go (the absence announcement).
        announcement: String,
    },
    /// The in-process PBX simulator.
    Simulator,
}

impl TargetConfig {
    /// A digest of everything in the configuration, secrets too, so that a connection
    /// built from it can tell when it is out of date. Kept in memory only.
    pub fn fingerprint(&self) -> u64 {
        use secrecy::ExposeSecret as _;
        use std::hash::{Hash as _, Hasher as _};
        let mut h = std::hash::DefaultHasher::new();
        self.kind().hash(&mut h);
        match self {
            TargetConfig::Webhook {
                url,
                signing_secret,
            } => (url, signing_secret.expose_secret()).hash(&mut h),
            TargetConfig::Sip {
                proxy,
                domain,
                username,
                password,
            } => (proxy, domain, username, password.expose_secret()).hash(&mut h),
            TargetConfig::Ami {
                host,
                port,
                username,
                secret,
                announcement,
            } => (host, port, username, secret.expose_secret(), announcement).hash(&mut h),
            TargetConfig::Simulator => {}
        }
        h.finish()
    }

    /// `webhook`, `sip`, `ami` or `simulator`.
    pub fn kind(&self) -> &'static str {
        match self {
            TargetConfig::Webhook { .. } => "webhook",
            TargetConfig::Sip { .. } => "sip",
            TargetConfig::Ami { .. } => "ami",
            TargetConfig::Simulator => "simulator",
        }
    }

    /// The stored form, secrets sealed.
    pub fn seal(&self, secrets: &SecretBox) -> Value {
        match self {
            TargetConfig::Webhook {
                url,
                signing_secret,
            } => {
                json!({"kind": "webhook", "url": url, "signing_secret": secrets.seal(signing_secret)})
            }
            TargetConfig::Sip {
                proxy,
                domain,
                username,
                password,
            } => json!({
                "kind": "sip", "proxy": proxy, "domain": domain, "username": username, "password": secrets.seal(password)
            }),
            TargetConfig::Ami {
                host,
                port,
                username,
                secret,
                announcement,
            } => json!({
                "kind": "ami", "host": host, "port": port, "username": username, "secret": secrets.seal(secret),
                "announcement": announcement
            }),
            TargetConfig::Simulator => json!({"kind": "simulator"}),
        }
    }

    /// Reads the stored form back, opening its secrets.
    pub fn open(value: &Value, secrets: &SecretBox) -> Result<Self, StoreError> {
        let corrupt = |m: &str| StoreError::Corrupt {
            what: "target".into(),
            message: m.into(),
        };
        let text = |k: &str| {
            value
                .get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| corrupt(k))
        };
        Ok(match value.get("kind").and_then(Value::as_str) {
            Some("webhook") => TargetConfig::Webhook {
                url: text("url")?,
                signing_secret: secrets.open(&text("signing_secret")?)?,
            },
            Some("sip") => TargetConfig::Sip {
                proxy: text("proxy")?,
                domain: text("domain")?,
                username: text("username")?,
                password: secrets.open(&text("password")?)?,
            },
            Some("ami") => TargetConfig::Ami {
                host: text("host")?,
                port: value
                    .get("port")
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or_else(|| corrupt("port"))?,
                username: text("username")?,
                secret: secrets.open(&text("secret")?)?,
                announcement: text("announcement")?,
            },
            Some("simulator") => TargetConfig::Simulator,
            _ => return Err(corrupt("unknown target kind")),
        })
    }
}

/// A target to create.
#[derive(Debug, Clone)]
pub struct NewTarget {
    /// The company whose PBX it is.
    pub company: CompanyId,
    /// Name.
    pub name: String,
    /// How it is reached.
    pub config: TargetConfig,
}

/// A PBX adapter a company's statuses go to.
#[derive(Debug, Clone)]
pub struct Target {
    /// Id.
    pub id: TargetId,
    /// Its company.
    pub company: CompanyId,
    /// Name.
    pub name: String,
    /// How it is reached, secrets open.
    pub config: TargetConfig,
    /// Whether deliveries go to it.
    pub active: bool,
    /// Created.
    pub created: Timestamp,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Written, not yet acknowledged.
    Pending,
    /// Acknowledged by the target.
    Delivered,
    /// A newer state of the same user replaced it before it went out.
    Superseded,
    /// Given up after the retry budget: a dead letter.
    Dead,
}

impl DeliveryState {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Superseded => "superseded",
            DeliveryState::Dead => "dead",
        }
    }

    /// Reads the stored word.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => DeliveryState::Pending,
            "delivered" => DeliveryState::Delivered,
            "superseded" => DeliveryState::Superseded,
            "dead" => DeliveryState::Dead,
            _ => return None,
        })
    }
}

/// A delivery to write.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// Whose status.
    pub user: UserId,
    /// To which target.
    pub target: TargetId,
    /// The status as the target receives it.
    pub payload: Value,
    /// The transition it carries (for lateness).
    pub due: Timestamp,
}

/// One status change for one target, in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Id and idempotency key.
    pub id: DeliveryId,
    /// Whose status.
    pub user: UserId,
    /// To which target.
    pub target: TargetId,
    /// Monotonic per user and target.
    pub sequence: u64,
    /// The status.
    pub payload: Value,
    /// State.
    pub state: DeliveryState,
    /// Attempts so far.
    pub attempts: u32,
    /// The transition it carries.
    pub due: Timestamp,
    /// When it is tried next.
    pub next_attempt: Timestamp,
    /// Written.
    pub created: Timestamp,
    /// Acknowledged.
    pub delivered: Option<Timestamp>,
    /// The last failure.
    pub last_error: Option<String>,
}

/// An audit entry to append.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    /// The company it concerns, if one.
    pub company: Option<CompanyId>,
    /// Who: an admin's name, `system`, a token's name.
    pub actor: String,
    /// What, e.g. `user.added`.
    pub action: String,
    /// Details; ids rather than e-mail addresses, so nothing outlives a removed user.
    pub detail: Value,
}

/// An audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When.
    pub at: Timestamp,
    /// The company it concerns.
    pub company: Option<CompanyId>,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// Details.
    pub detail: Value,
}

id_type!(
    /// An admin account's id.
    AccountId
);
id_type!(
    /// An API token's id.
    ApiTokenId
);

/// What an account or API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The operator's staff: every company, its targets and accounts.
    Operator,
    /// A company's IT admin: that company's instances, users and accounts.
    CompanyAdmin,
    /// Read only within one company (a receptionist, a console).
    Reader,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::CompanyAdmin => "company_admin",
            Role::Reader => "reader",
        }
    }

    /// A stored or typed name.
    pub fn parse(text: &str) -> Result<Role, String> {
        match text.trim() {
            "operator" => Ok(Role::Operator),
            "company_admin" => Ok(Role::CompanyAdmin),
            "reader" => Ok(Role::Reader),
            other => Err(format!(
                "role `{other}` (expected operator, company_admin or reader)"
            )),
        }
    }
}

/// Whom an account or token acts for: the operator (every company) or one company.
/// An operator account belongs to no company; every other role to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// The role.
    pub role: Role,
    /// The company (none for the operator).
    pub company: Option<CompanyId>,
}

impl Grant {
    /// The operator's grant.
    pub fn operator() -> Grant {
        Grant {
            role: Role::Operator,
            company: None,
        }
    }

    /// A role within `company`; the operator role is not one.
    pub fn company(role: Role, company: CompanyId) -> Result<Grant, String> {
        if role == Role::Operator {
            return Err("an operator account belongs to no company".into());
        }
        Ok(Grant {
            role,
            company: Some(company),
        })
    }

    /// Whether it may see `company`'s data.
    pub fn sees(&self, company: CompanyId) -> bool {
        self.role == Role::Operator || self.company == Some(company)
    }

    /// Whether it may change `company`'s data.
    pub fn manages(&self, company: CompanyId) -> bool {
        self.role == Role::Operator
            || (self.role == Role::CompanyAdmin && self.company == Some(company))
    }
}

/// Someone who signs in to the admin UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    /// Id.
    pub id: AccountId,
    /// The sign-in name, lower case.
    pub email: String,
    /// Shown name.
    pub display_name: Option<String>,
    /// What it may do, and where.
    pub grant: Grant,
    /// Its argon2 password hash (PHC string); never shown.
    #[serde(skip)]
    pub password_hash: String,
    /// Preferred UI language (`sv`, `en`), if chosen.
    pub language: Option<String>,
    /// Created.
    pub created: Timestamp,
    /// The Microsoft (Entra ID) person who signs in as it, if one does.
    pub entra: Option<EntraId>,
}

/// A person in Entra ID: their tenant and object id (`tid`, `oid` of their sign-in
/// token). People are matched by these, never by e-mail: a name can be changed by its
/// owner, an object id cannot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct EntraId {
    /// The tenant.
    pub tenant: kalsync_core::TenantId,
    /// The object id, lower case.
    pub object: String,
}

/// A tenant a company proved it owns (its admin signed in there and granted the
/// operator's app access): each tenant belongs to one company at most, and who of its
/// people signs in as what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompanyTenant {
    /// The tenant.
    pub tenant: kalsync_core::TenantId,
    /// Whose.
    pub company: CompanyId,
    /// App role values or group ids whose people sign in as the company's admins.
    pub admins: Vec<String>,
    /// App role values or group ids whose people sign in as readers.
    pub readers: Vec<String>,
    /// When it was proven.
    pub proven: Timestamp,
}

impl CompanyTenant {
    /// The app roles a newly connected tenant signs in with.
    pub fn with_default_roles(
        tenant: kalsync_core::TenantId,
        company: CompanyId,
        proven: Timestamp,
    ) -> CompanyTenant {
        CompanyTenant {
            tenant,
            company,
            admins: vec!["Kalsync.Admin".into()],
            readers: vec!["Kalsync.Reader".into()],
            proven,
        }
    }

    /// The role someone with these app roles and groups has in the company: admin
    /// before reader; none when nothing matches.
    pub fn role_of(&self, roles: &[String], groups: &[String]) -> Option<Role> {
        let matches = |wanted: &[String]| {
            wanted.iter().any(|w| {
                roles.iter().any(|r| r == w) || groups.iter().any(|g| g.eq_ignore_ascii_case(w))
            })
        };
        if matches(&self.admins) {
            Some(Role::CompanyAdmin)
        } else if matches(&self.readers) {
            Some(Role::Reader)
        } else {
            None
        }
    }
}

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// The sign-in name (stored lower case).
    pub email: String,
    /// Shown name.
    pub display_name: Option<String>,
    /// What it may do, and where.
    pub grant: Grant,
    /// Its argon2 password hash (empty: it signs in with Microsoft only).
    pub password_hash: String,
    /// The Microsoft person who signs in as it.
    pub entra: Option<EntraId>,
}

/// A signed-in browser: only the hash of its cookie's id is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Hash of the session id (the cookie holds the id).
    pub id_hash: String,
    /// Whose.
    pub account: AccountId,
    /// The token every form of this session must carry.
    pub csrf: String,
    /// When it ends.
    pub expires: Timestamp,
}

/// A company's API token: only its hash is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    /// Id.
    pub id: ApiTokenId,
    /// Hash of the token.
    #[serde(skip)]
    pub token_hash: String,
    /// The company and role it acts as.
    pub grant: Grant,
    /// A name saying what uses it.
    pub name: String,
    /// Created.
    pub created: Timestamp,
    /// Last used.
    pub last_used: Option<Timestamp>,
    /// Refused from then on.
    pub expires: Timestamp,
    /// The account that made it: removing the account revokes it (`None` for tokens
    /// made before tokens had owners).
    pub owner: Option<AccountId>,
}

/// An API token to store.
#[derive(Debug, Clone)]
pub struct NewApiToken<'a> {
    /// The company and role it acts as.
    pub grant: Grant,
    /// What uses it.
    pub name: &'a str,
    /// Hash of the token.
    pub token_hash: &'a str,
    /// The account making it.
    pub owner: AccountId,
    /// Made at.
    pub created: Timestamp,
    /// Refused from then on.
    pub expires: Timestamp,
}
