//! How a simulator starts and what it gets wrong on purpose: the tenant, its app
//! registrations and settings, and the faults to inject.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{BadIdToken, SimPerson};

/// An app registration the simulated tenant knows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimApp {
    /// Application (client) id.
    pub client_id: String,
    /// Its client secret, if it has one.
    #[serde(default)]
    pub secret: Option<String>,
    /// Its certificate: the RSA public key (PEM) and the SHA-256 thumbprint (base64url).
    #[serde(default)]
    pub certificate: Option<SimCertificate>,
    /// Whether an admin consented (otherwise tokens are refused with AADSTS65001).
    #[serde(default = "yes")]
    pub consented: bool,
    /// Whether its secret has expired (AADSTS7000222).
    #[serde(default)]
    pub secret_expired: bool,
}

fn yes() -> bool {
    true
}

/// A certificate credential.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimCertificate {
    /// RSA public key, PEM (`BEGIN PUBLIC KEY`).
    pub public_key_pem: String,
    /// `x5t#S256` the assertion must carry.
    pub thumbprint_s256: String,
}

/// How the simulator starts.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The tenant id.
    pub tenant: String,
    /// App registrations.
    pub apps: Vec<SimApp>,
    /// `$top` when a client gives none (Graph's is 10).
    pub default_page_size: usize,
    /// Lifetime of issued tokens.
    pub token_lifetime: Duration,
    /// The tenant's domains (its OpenID metadata answers to them too).
    pub domains: Vec<String>,
    /// People who can sign in (more through `POST /_sim/people`).
    pub people: Vec<SimPerson>,
}

impl SimConfig {
    /// One tenant with one app using `client_id`/`secret`.
    pub fn with_secret(tenant: &str, client_id: &str, secret: &str) -> Self {
        SimConfig {
            tenant: tenant.into(),
            apps: vec![SimApp {
                client_id: client_id.into(),
                secret: Some(secret.into()),
                certificate: None,
                consented: true,
                secret_expired: false,
            }],
            default_page_size: 10,
            token_lifetime: Duration::from_secs(3599),
            domains: Vec::new(),
            people: Vec::new(),
        }
    }
}

/// Faults to inject; counts apply to the next Graph requests (not the control API).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Graph's response time in milliseconds: every Graph and token request is answered
    /// no sooner than this after it arrived, the simulator's own work included.
    pub latency_ms: u64,

    /// The next n requests get `429 Too Many Requests`.
    pub throttle: u32,
    /// Their `Retry-After`, seconds (fractions allowed, as Graph sends).
    pub retry_after_secs: f64,
    /// The next n requests get `503 Service Unavailable`.
    pub server_errors: u32,
    /// The next n requests are cut off mid-answer.
    pub drop_connections: u32,
    /// Invalidate every token issued so far (once).
    pub expire_tokens: bool,
    /// Drop the next n change notifications instead of sending them; as Graph does, a
    /// `missed` lifecycle notification says so.
    pub lose_notifications: u32,
    /// Send the next n change notifications twice (Graph delivers at least once).
    pub duplicate_notifications: u32,
    /// Directory reads (groups, users) are refused with 403 until cleared: the app
    /// lacks `GroupMember.Read.All` / `User.Read.All`.
    pub directory_denied: bool,
    /// Sign-in `id_token`s are issued wrong this way until cleared.
    pub bad_id_token: Option<BadIdToken>,
}
