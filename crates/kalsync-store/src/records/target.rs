//! PBX targets: how each is reached (webhook, SIP, AMI, the simulator), and the
//! configuration's sealed stored form.

use jiff::Timestamp;
use secrecy::SecretString;
use serde_json::{Value, json};

use super::{CompanyId, TargetId};
use crate::StoreError;
use crate::crypto::SecretBox;

/// How a target is reached.
#[derive(Debug, Clone)]
pub enum TargetConfig {
    /// JSON POSTs signed per Standard Webhooks.
    Webhook {
        /// Where.
        url: String,
        /// The `whsec_…` signing secret.
        signing_secret: SecretString,
        /// Statuses in batches (`kalsync.status.batch`), for a PBX that takes them so.
        batch: bool,
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
        /// For TLS, the CA (PEM) of a server certificate of the company's own.
        ca: Option<String>,
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
    /// Microsoft Teams: each absence's announcement as the person's status message
    /// (through the Graph connection of the person's instance).
    Teams {
        /// Whether an app presence session shows the absence too (`Away` for
        /// information, `DoNotDisturb` for a divert).
        presence: bool,
        /// The language of the status message.
        language: kalsync_core::Lang,
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
        let mut h = crate::fingerprint_hasher();
        self.kind().hash(&mut h);
        match self {
            TargetConfig::Webhook {
                url,
                signing_secret,
                batch,
            } => (url, signing_secret.expose_secret(), batch).hash(&mut h),
            TargetConfig::Sip {
                proxy,
                domain,
                username,
                password,
                ca,
            } => (proxy, domain, username, password.expose_secret(), ca).hash(&mut h),
            TargetConfig::Ami {
                host,
                port,
                username,
                secret,
                announcement,
            } => (host, port, username, secret.expose_secret(), announcement).hash(&mut h),
            TargetConfig::Teams { presence, language } => (presence, language).hash(&mut h),
            TargetConfig::Simulator => {}
        }
        h.finish()
    }

    /// `webhook`, `sip`, `ami`, `teams` or `simulator`.
    pub fn kind(&self) -> &'static str {
        match self {
            TargetConfig::Teams { .. } => "teams",
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
                batch,
            } => {
                json!({"kind": "webhook", "url": url, "signing_secret": secrets.seal(signing_secret), "batch": batch})
            }
            TargetConfig::Sip {
                proxy,
                domain,
                username,
                password,
                ca,
            } => json!({
                "kind": "sip", "proxy": proxy, "domain": domain, "username": username, "password": secrets.seal(password),
                "ca": ca
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
            TargetConfig::Teams { presence, language } => json!({
                "kind": "teams", "presence": presence,
                "language": if *language == kalsync_core::Lang::En { "en" } else { "sv" }
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
                batch: value.get("batch").and_then(Value::as_bool).unwrap_or(false),
            },
            Some("sip") => TargetConfig::Sip {
                proxy: text("proxy")?,
                domain: text("domain")?,
                username: text("username")?,
                password: secrets.open(&text("password")?)?,
                ca: value.get("ca").and_then(Value::as_str).map(str::to_owned),
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
            Some("teams") => TargetConfig::Teams {
                presence: value
                    .get("presence")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                language: match value.get("language").and_then(Value::as_str) {
                    Some("en") => kalsync_core::Lang::En,
                    _ => kalsync_core::Lang::Sv,
                },
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
