//! Fetching companies' PBX directories (who has a subscription on the PBX) from the
//! address each company gave: a GET with its bearer token or signed as Standard Webhooks
//! sign, through the outbound policy (no redirects), at most 16 MB and 30 s, parsed whole
//! — a failed or unreadable fetch keeps the list before it and says why.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kalsync_directory::{MAX_PBX_BYTES, PbxAuth, PbxList, PbxSource};
use kalsync_store::{CompanyId, PbxDirectoryRecord, Store};
use rand::Rng as _;
use secrecy::ExposeSecret as _;

/// How long one fetch may take.
const FETCH_LIMIT: Duration = Duration::from_secs(30);
/// How many fetches one node makes at once.
const FETCHES_AT_ONCE: usize = 4;

/// `now` and `after`, or a week on when that would be past the last time there is.
pub(crate) fn later(now: Timestamp, after: SignedDuration) -> Timestamp {
    now.checked_add(after)
        .or_else(|_| now.checked_add(SignedDuration::from_hours(24 * 7)))
        .unwrap_or(now)
}

/// Fetches due PBX directories.
#[derive(Clone)]
pub(crate) struct PbxFetcher {
    http: reqwest::Client,
    /// Checked before each request: an address given as an IP literal never goes
    /// through the policy's resolver.
    outbound: kalsync_outbound::OutboundPolicy,
}

impl PbxFetcher {
    /// A fetcher whose requests go only where `outbound` permits.
    pub(crate) fn new(outbound: &kalsync_outbound::OutboundPolicy) -> Option<PbxFetcher> {
        let http = outbound
            .http()
            .timeout(FETCH_LIMIT)
            .build()
            .map_err(|e| tracing::warn!(error = %e, "the PBX directory client cannot be built"))
            .ok()?;
        Some(PbxFetcher {
            http,
            outbound: outbound.clone(),
        })
    }

    /// One look: every fetched PBX directory due at `now` that this node takes is
    /// fetched. How many were.
    pub(crate) async fn step(&self, store: &dyn Store, now: Timestamp) -> usize {
        let due = match store.due_pbx_directories(now).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "due PBX directories cannot be read");
                return 0;
            }
        };
        // A few at once: one company's slow PBX (each fetch is bounded in time) does not
        // hold back every other company's.
        use futures_util::StreamExt as _;
        futures_util::stream::iter(due)
            .map(|(company, when)| async move {
                let Ok(Some(record)) = store.pbx_directory(company).await else {
                    return 0;
                };
                let PbxSource::Url { every, .. } = &record.source else {
                    return 0;
                };
                let jitter = rand::rng().random_range(0..=every.as_secs() / 10);
                let next = later(now, *every + SignedDuration::from_secs(jitter));
                if !store
                    .claim_pbx_directory(company, when, next)
                    .await
                    .unwrap_or(false)
                {
                    return 0;
                }
                self.fetch_and_store(store, company, &record, now).await;
                1
            })
            .buffer_unordered(FETCHES_AT_ONCE)
            .fold(0, |n, one| async move { n + one })
            .await
    }

    async fn fetch_and_store(
        &self,
        store: &dyn Store,
        company: CompanyId,
        record: &PbxDirectoryRecord,
        now: Timestamp,
    ) {
        let outcome = self.fetch(record, now).await;
        if let Err(why) = &outcome {
            tracing::warn!(%company, error = %why, "a PBX directory could not be fetched; its list is kept");
        }
        // Stored only over the source it was fetched for: a list uploaded or an address
        // changed while it was under way stays.
        let saved = store
            .save_pbx_list(
                company,
                Some(&record.source),
                outcome.as_ref().map_err(String::as_str),
                now,
            )
            .await;
        if let Err(e) = saved {
            tracing::warn!(%company, error = %e, "a fetched PBX directory cannot be stored");
        }
    }

    /// The list at the record's address, or why not.
    pub(crate) async fn fetch(
        &self,
        record: &PbxDirectoryRecord,
        now: Timestamp,
    ) -> Result<PbxList, String> {
        let PbxSource::Url { url, auth, .. } = &record.source else {
            return Err("an uploaded list is not fetched".into());
        };
        self.outbound
            .check_url(url)
            .map_err(|e| format!("the address is not one the service may reach: {e}"))?;
        let secret = record
            .secret
            .as_ref()
            .ok_or("no token or signing secret is stored")?;
        let mut request = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json, text/csv");
        match auth {
            PbxAuth::Bearer => request = request.bearer_auth(secret.expose_secret()),
            PbxAuth::StandardWebhooks => {
                let key = kalsync_target_webhook::signing_key(secret).map_err(|e| e.0)?;
                let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
                let ts = now.as_second();
                request = request
                    .header("webhook-id", &id)
                    .header("webhook-timestamp", ts.to_string())
                    .header(
                        "webhook-signature",
                        kalsync_target_webhook::signature(&key, &id, ts, b""),
                    );
            }
        }
        let mut answer = request.send().await.map_err(|e| {
            format!(
                "the PBX cannot be reached: {}",
                kalsync_core::redact::shown_error(&e.to_string())
            )
        })?;
        let status = answer.status();
        if !status.is_success() {
            return Err(format!("the PBX answered {status}"));
        }
        let csv = answer
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/csv"));
        // Read within the limit, whatever the PBX says the length is.
        let mut body = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(|e| {
            format!(
                "the PBX's answer broke off: {}",
                kalsync_core::redact::shown_error(&e.to_string())
            )
        })? {
            if body.len() + chunk.len() > MAX_PBX_BYTES {
                return Err(format!(
                    "the PBX's list is larger than {} MB",
                    MAX_PBX_BYTES / (1024 * 1024)
                ));
            }
            body.extend_from_slice(&chunk);
        }
        let text =
            String::from_utf8(body).map_err(|_| "the PBX's list is not UTF-8 text".to_owned())?;
        if csv {
            PbxList::from_csv(&text)
        } else {
            PbxList::from_json(&text)
        }
    }
}
