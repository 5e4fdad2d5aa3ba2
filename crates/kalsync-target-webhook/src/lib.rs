//! The webhook target (SPEC §5): each status is a JSON POST signed per Standard Webhooks
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`),
//! with the delivery id as the idempotency key and a per-user monotonic `sequence`; or,
//! for a PBX that takes them so (`batch = true`), up to [`BATCH`] users' statuses in one
//! signed POST (`kalsync.status.batch`), each with its own delivery id and sequence.
//!
//! The signature is computed here with `hmac`/`sha2` (three lines); the tests verify it
//! with the reference `standardwebhooks` crate.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use kalsync_engine::{DeliveryError, Envelope, StatusUpdate, Target};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// The event type of a status change.
pub const EVENT_TYPE: &str = "kalsync.status.changed";

/// The event type of several users' status changes in one POST.
pub const BATCH_EVENT_TYPE: &str = "kalsync.status.batch";

/// The most statuses one batch carries (about 300 KB of JSON).
pub const BATCH: usize = 500;

/// The key of a Standard Webhooks signing secret: `whsec_` and base64 of at least 16
/// bytes.
pub fn signing_key(secret: &SecretString) -> Result<Vec<u8>, ConfigError> {
    let text = secret.expose_secret();
    let key = STANDARD
        .decode(text.strip_prefix("whsec_").unwrap_or(text))
        .map_err(|_| ConfigError("the signing secret must be `whsec_` and base64".into()))?;
    if key.len() < 16 {
        return Err(ConfigError(
            "the signing secret must carry at least 16 bytes".into(),
        ));
    }
    Ok(key)
}

/// A Standard Webhooks signature: `v1,` and the base64 HMAC-SHA256 of
/// `id.timestamp.body` under `key`.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // A key of any length is valid for HMAC.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The most signatures of one `webhook-signature` header looked at (a sender rotating
/// its secret sends two).
const MAX_SIGNATURES: usize = 4;

/// Whether `header` (a `webhook-signature`: space-separated `v1,<base64>` signatures)
/// holds a signature of `id.timestamp.body` under `key` — for events a PBX sends here.
/// The MAC is computed once and compared in constant time with at most
/// [`MAX_SIGNATURES`] of them; other versions are passed over.
pub fn verify(key: &[u8], id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    // Each comparison finalises a copy of the state: the body is hashed once.
    header
        .split_ascii_whitespace()
        .take(MAX_SIGNATURES)
        .filter_map(|one| one.strip_prefix("v1,"))
        .filter_map(|b| STANDARD.decode(b).ok())
        .any(|sent| mac.clone().verify_slice(&sent).is_ok())
}

/// A webhook endpoint.
pub struct WebhookTarget {
    http: reqwest::Client,
    url: reqwest::Url,
    key: Vec<u8>,
    batch: bool,
}

/// Why a webhook target cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl WebhookTarget {
    /// A target for `url`, signing with a `whsec_…` secret (base64 after the prefix).
    pub fn new(
        url: &str,
        secret: &SecretString,
        timeout: Duration,
        outbound: &kalsync_outbound::OutboundPolicy,
    ) -> Result<Self, ConfigError> {
        let url = reqwest::Url::parse(url).map_err(|e| ConfigError(format!("url `{url}`: {e}")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(ConfigError(format!("url `{url}`: expected http or https")));
        }
        let key = signing_key(secret)?;
        outbound
            .check_url(&url)
            .map_err(|e| ConfigError(e.to_string()))?;
        let http = outbound
            .http()
            .timeout(timeout)
            .user_agent(concat!("Kalsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError(e.to_string()))?;
        Ok(WebhookTarget {
            http,
            url,
            key,
            batch: false,
        })
    }

    /// Sends statuses in batches of up to [`BATCH`] (the PBX takes `kalsync.status.batch`).
    pub fn batched(mut self, batch: bool) -> Self {
        self.batch = batch;
        self
    }

    /// `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        signature(&self.key, id, timestamp, body)
    }

    /// The body of a delivery: `{type, timestamp, data}` with the status, its sequence
    /// and its id.
    pub fn body(delivery: &Envelope, status: &StatusUpdate) -> Vec<u8> {
        let event = Event {
            kind: EVENT_TYPE,
            timestamp: status.at,
            data: Data {
                status,
                sequence: delivery.sequence,
                delivery_id: delivery.id.to_string(),
            },
        };
        serde_json::to_vec(&event).unwrap_or_default()
    }
}

impl WebhookTarget {
    /// The body of a batch: `{type: "kalsync.status.batch", timestamp, data: {statuses:
    /// [...]}}`, each status with its sequence and delivery id as in a single delivery.
    pub fn batch_body(items: &[(Envelope, StatusUpdate)]) -> Vec<u8> {
        let statuses: Vec<Data<'_>> = items
            .iter()
            .map(|(delivery, status)| Data {
                status,
                sequence: delivery.sequence,
                delivery_id: delivery.id.to_string(),
            })
            .collect();
        let event = BatchEvent {
            kind: BATCH_EVENT_TYPE,
            timestamp: items
                .iter()
                .map(|(_, s)| s.at)
                .max()
                .unwrap_or_else(Timestamp::now),
            data: Statuses { statuses },
        };
        serde_json::to_vec(&event).unwrap_or_default()
    }

    /// A batch's `webhook-id`: the same for the same deliveries (a retry of the whole
    /// batch is recognised as one), `batch_` and a digest of their ids.
    pub fn batch_id(items: &[(Envelope, StatusUpdate)]) -> String {
        use sha2::Digest as _;
        let mut ids: Vec<String> = items.iter().map(|(d, _)| d.id.to_string()).collect();
        ids.sort();
        let digest = Sha256::digest(ids.join(",").as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("batch_{hex}")
    }

    /// One signed POST and what its answer means.
    async fn post(&self, id: &str, body: Vec<u8>) -> Result<(), DeliveryError> {
        let timestamp = Timestamp::now().as_second();
        let signature = self.sign(id, timestamp, &body);
        let answer = self
            .http
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| DeliveryError::Retry {
                message: format!("webhook: {}", e.without_url()),
                retry_after: None,
            })?;
        let status_code = answer.status();
        if status_code.is_success() {
            return Ok(());
        }
        let retry_after = kalsync_outbound::retry_after(answer.headers(), jiff::Timestamp::now());
        let message = format!("webhook answered {status_code}");
        match status_code.as_u16() {
            410 => Err(DeliveryError::Gone(message)),
            408 | 425 | 429 | 500..=599 => Err(DeliveryError::Retry {
                message,
                retry_after,
            }),
            _ => Err(DeliveryError::Rejected(message)),
        }
    }
}

/// Several statuses in one event.
#[derive(serde::Serialize)]
struct BatchEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: jiff::Timestamp,
    data: Statuses<'a>,
}

#[derive(serde::Serialize)]
struct Statuses<'a> {
    statuses: Vec<Data<'a>>,
}

/// The Standard Webhooks envelope, written straight to bytes.
#[derive(serde::Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: jiff::Timestamp,
    data: Data<'a>,
}

/// The status with the delivery's sequence and id beside its fields.
#[derive(serde::Serialize)]
struct Data<'a> {
    #[serde(flatten)]
    status: &'a StatusUpdate,
    sequence: u64,
    delivery_id: String,
}

#[async_trait]
impl Target for WebhookTarget {
    async fn deliver(
        &self,
        delivery: &Envelope,
        status: &StatusUpdate,
    ) -> Result<(), DeliveryError> {
        self.post(&delivery.id.to_string(), Self::body(delivery, status))
            .await
    }

    fn batch_size(&self) -> usize {
        if self.batch { BATCH } else { 1 }
    }

    async fn deliver_batch(&self, items: &[(Envelope, StatusUpdate)]) -> Result<(), DeliveryError> {
        match items {
            [] => Ok(()),
            [(delivery, status)] if !self.batch => self.deliver(delivery, status).await,
            _ => {
                self.post(&Self::batch_id(items), Self::batch_body(items))
                    .await
            }
        }
    }
}
