//! A company's PBX directory in the API: who has a subscription on the company's PBX
//! (uploaded as CSV or JSON, or fetched from the PBX on a schedule). Where a company has
//! one, only people on it may be added — by hand, by CSV or by Katalog Synk — and an
//! addition without an extension takes the PBX's. A company admin (or the operator)
//! changes it; a reader sees it. A fetch secret is written, never read back.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kalsync_directory::{PbxAuth, PbxList, PbxSource};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::companies::{audit, visible};
use crate::WebState;
use crate::auth::Principal;
use crate::error::{ApiError, Body, Text};

/// The most subscriptions a view lists (the count says how many there are).
const SHOWN: usize = 5_000;

/// One subscription.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PbxEntryView {
    /// Mailbox.
    pub(crate) email: String,
    /// Extension.
    pub(crate) extension: String,
    /// Name, when the PBX gives one.
    pub(crate) name: Option<String>,
}

/// A company's PBX directory.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PbxView {
    /// Where the list comes from: `{"kind": "upload"}` or `{"kind": "url", "url", "auth"
    /// (`bearer` or `standard_webhooks`), "every"}`.
    #[schema(value_type = Object)]
    pub(crate) source: serde_json::Value,
    /// Whether a fetch secret is stored (it is never shown).
    pub(crate) secret_set: bool,
    /// How many subscriptions.
    pub(crate) count: usize,
    /// The first of them.
    pub(crate) entries: Vec<PbxEntryView>,
    /// When the list last changed (RFC 3339).
    pub(crate) updated: Option<String>,
    /// When it was last fetched or tried.
    pub(crate) last_try: Option<String>,
    /// Why the last fetch failed (the list before it is kept).
    pub(crate) last_error: Option<String>,
    /// When the next fetch is due.
    pub(crate) next_fetch: Option<String>,
}

/// A PBX directory's source, with the fetch secret beside it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PbxInput {
    /// `{"kind": "upload"}` or `{"kind": "url", "url": "https://…", "auth": "bearer" |
    /// "standard_webhooks", "every": "1h"}`.
    #[schema(value_type = Object)]
    pub(crate) source: serde_json::Value,
    /// The bearer token or the `whsec_…` signing secret (a fetched list). Kept while the
    /// address stays the same; asked for again when it changes.
    pub(crate) secret: Option<String>,
}

/// The company's PBX directory.
#[utoipa::path(get, path = "/api/v1/companies/{company}/pbx-directory", params(("company" = String, Path)),
    responses((status = 200, body = PbxView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn get(
    State(state): State<WebState>,
    principal: Principal,
    Path(company): Path<String>,
) -> Result<Json<PbxView>, ApiError> {
    let id = visible(&state, &principal, &company).await?;
    let record = state
        .store
        .pbx_directory(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("the PBX directory of company {company}")))?;
    Ok(Json(PbxView {
        source: serde_json::to_value(&record.source)
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        secret_set: record.secret.is_some(),
        count: record.list.len(),
        entries: record
            .list
            .entries()
            .iter()
            .take(SHOWN)
            .map(|e| PbxEntryView {
                email: e.email.to_string(),
                extension: e.extension.to_string(),
                name: e.name.clone(),
            })
            .collect(),
        updated: record.updated.map(|t| t.to_string()),
        last_try: record.last_try.map(|t| t.to_string()),
        last_error: record.last_error,
        next_fetch: record.next_fetch.map(|t| t.to_string()),
    }))
}

/// The source from a request, or the field that is wrong.
pub(crate) fn parse_source(value: serde_json::Value) -> Result<PbxSource, ApiError> {
    serde_json::from_value::<PbxSource>(value).map_err(|e| {
        let message = e.to_string();
        let field = ["url", "every", "auth"]
            .into_iter()
            .find(|f| message.starts_with(&format!("{f}:")) || message.contains(&format!("`{f}`")))
            .map_or("source", |f| f);
        ApiError::invalid(field, message)
    })
}

/// Sets where the company's PBX directory comes from (a fetched one is fetched at
/// once); its list is kept.
#[utoipa::path(put, path = "/api/v1/companies/{company}/pbx-directory", params(("company" = String, Path)),
    request_body = PbxInput,
    responses((status = 200, body = PbxView), (status = 422, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn put(
    State(state): State<WebState>,
    principal: Principal,
    Path(company): Path<String>,
    Body(input): Body<PbxInput>,
) -> Result<Json<PbxView>, ApiError> {
    let id = visible(&state, &principal, &company).await?;
    let source = parse_source(input.source)?;
    let given = parse_secret(input.secret)?;
    save_source(&state, &principal, id, &source, given).await?;
    get(State(state), principal, Path(company)).await
}

/// A fetch secret as typed: none when empty; at most 1,024 characters, no control
/// characters.
pub(crate) fn parse_secret(typed: Option<String>) -> Result<Option<SecretString>, ApiError> {
    match typed.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) if s.chars().count() > 1024 || s.chars().any(char::is_control) => Err(
            ApiError::invalid("secret", "secret: at most 1,024 characters"),
        ),
        Some(s) => Ok(Some(SecretString::from(s))),
    }
}

/// Stores a company's PBX directory source with the secret that goes with it: a new
/// one, or the stored one while the address is the same (else it must be given again).
pub(crate) async fn save_source(
    state: &WebState,
    principal: &Principal,
    company: kalsync_store::CompanyId,
    source: &PbxSource,
    given: Option<SecretString>,
) -> Result<(), ApiError> {
    principal.manages(company, "company")?;
    let given_secret = given.is_some();
    let secret = match source {
        PbxSource::Upload => None,
        PbxSource::Url { auth, .. } => {
            let stored = state.store.pbx_directory(company).await?;
            let secret = match given {
                Some(s) => s,
                None => stored
                    .filter(|r| r.source.same_destination(source))
                    .and_then(|r| r.secret)
                    .ok_or_else(|| {
                        ApiError::invalid(
                            "secret",
                            "secret: give the PBX's token or signing secret (it is asked again when the address changes)",
                        )
                    })?,
            };
            if *auth == PbxAuth::StandardWebhooks
                && !secrecy::ExposeSecret::expose_secret(&secret).starts_with("whsec_")
            {
                return Err(ApiError::invalid(
                    "secret",
                    "secret: a Standard Webhooks signing secret starts with whsec_",
                ));
            }
            Some(secret)
        }
    };
    state
        .store
        .set_pbx_directory(
            company,
            Some(source),
            secret.as_ref(),
            jiff::Timestamp::now(),
        )
        .await?;
    let detail = match source {
        PbxSource::Upload => serde_json::json!({"source": "upload"}),
        PbxSource::Url { url, auth, .. } => serde_json::json!({
            "source": "url", "host": url.host_str(), "auth": auth,
            "secret": if given_secret { "new" } else { "kept" },
        }),
    };
    audit(
        state,
        principal,
        Some(company),
        "pbx_directory.changed",
        detail,
    )
    .await
}

/// Replaces the company's PBX list with an upload: CSV (a header naming `email` and
/// `extension`, optionally `name`; commas or semicolons) or JSON. Taken whole, or
/// refused with the line at fault.
#[utoipa::path(put, path = "/api/v1/companies/{company}/pbx-directory/list", params(("company" = String, Path)),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = PbxView), (status = 422, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn upload(
    State(state): State<WebState>,
    principal: Principal,
    Path(company): Path<String>,
    Text(body): Text,
) -> Result<Json<PbxView>, ApiError> {
    let id = visible(&state, &principal, &company).await?;
    upload_list(&state, &principal, id, &body).await?;
    get(State(state), principal, Path(company)).await
}

/// Stores an uploaded list for `company` (made an upload directory if it had none).
pub(crate) async fn upload_list(
    state: &WebState,
    principal: &Principal,
    company: kalsync_store::CompanyId,
    body: &str,
) -> Result<usize, ApiError> {
    principal.manages(company, "company")?;
    let stored = state.store.pbx_directory(company).await?;
    if stored
        .as_ref()
        .is_some_and(|r| matches!(r.source, PbxSource::Url { .. }))
    {
        return Err(ApiError::invalid(
            "list",
            "list: this company's list is fetched from the PBX; set the source to upload first",
        ));
    }
    let text = body.trim_start_matches('\u{feff}').trim_start();
    let list = if text.starts_with('[') || text.starts_with('{') {
        PbxList::from_json(text)
    } else {
        PbxList::from_csv(text)
    }
    .map_err(|e| ApiError::invalid("list", format!("list: {e}")))?;
    let now = jiff::Timestamp::now();
    if stored.is_none() {
        state
            .store
            .set_pbx_directory(company, Some(&PbxSource::Upload), None, now)
            .await?;
    }
    state
        .store
        .save_pbx_list(company, None, Ok(&list), now)
        .await?;
    audit(
        state,
        principal,
        Some(company),
        "pbx_directory.uploaded",
        serde_json::json!({"subscriptions": list.len()}),
    )
    .await?;
    Ok(list.len())
}

/// Fetches the company's PBX list now: the directory as it is after (a failed fetch
/// keeps the list before it and says why in `last_error`).
#[utoipa::path(post, path = "/api/v1/companies/{company}/pbx-directory/fetch", params(("company" = String, Path)),
    responses((status = 200, body = PbxView), (status = 422, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn fetch(
    State(state): State<WebState>,
    principal: Principal,
    Path(company): Path<String>,
) -> Result<Json<PbxView>, ApiError> {
    let id = visible(&state, &principal, &company).await?;
    // Its outcome is the view's: the list, or `last_error`.
    let _outcome = fetch_now(&state, &principal, id).await?;
    get(State(state), principal, Path(company)).await
}

/// Fetches `company`'s PBX list now, for `principal` (who must manage it): how many
/// subscriptions, or why not (stored as the directory's `last_error`).
pub(crate) async fn fetch_now(
    state: &WebState,
    principal: &Principal,
    company: kalsync_store::CompanyId,
) -> Result<Result<usize, String>, ApiError> {
    principal.manages(company, "company")?;
    let record = state
        .store
        .pbx_directory(company)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("the PBX directory of company {company}")))?;
    if !matches!(record.source, PbxSource::Url { .. }) {
        return Err(ApiError::invalid(
            "source",
            "source: an uploaded list is not fetched",
        ));
    }
    let runner = state
        .directories
        .clone()
        .ok_or_else(|| ApiError::Unavailable("PBX directories are not fetched here".into()))?;
    // Each fetch is a request to the PBX: a few a minute, whoever asks.
    super::directory::take_turn(&state.directory_runs, format!("pbx:{company}"))?;
    Ok(runner.fetch_pbx(company).await)
}

/// Removes the company's PBX directory: anyone may be added again.
#[utoipa::path(delete, path = "/api/v1/companies/{company}/pbx-directory", params(("company" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn remove(
    State(state): State<WebState>,
    principal: Principal,
    Path(company): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = visible(&state, &principal, &company).await?;
    remove_pbx(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes `company`'s PBX directory for `principal` (who must manage it), audited.
pub(crate) async fn remove_pbx(
    state: &WebState,
    principal: &Principal,
    company: kalsync_store::CompanyId,
) -> Result<(), ApiError> {
    principal.manages(company, "company")?;
    state
        .store
        .set_pbx_directory(company, None, None, jiff::Timestamp::now())
        .await?;
    audit(
        state,
        principal,
        Some(company),
        "pbx_directory.removed",
        serde_json::json!({}),
    )
    .await
}
