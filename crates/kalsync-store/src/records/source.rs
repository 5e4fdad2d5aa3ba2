//! Where an instance reads bookings (Graph or EWS), where its secret may be sent, and
//! the configuration's sealed stored form.

use kalsync_core::exchange::{Access, SignIn, Version};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::StoreError;
use crate::crypto::SecretBox;

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
    /// Exchange cannot reach the service's public URL (a firewall between them):
    /// Exchange 2007 and 2010 before SP1 are asked for changes every ten seconds (pull
    /// subscriptions) instead of pushing them.
    pub pull: bool,
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
        let mut h = crate::fingerprint_hasher();
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
