//! Companies (the operator creates them; others see their own), their audit log, their
//! deliveries and dead letters, and their API tokens.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use kalsync_store::{ApiTokenId, CompanyId, DeliveryState, Grant, NewAuditEntry, Role};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::path_id;
use crate::WebState;
use crate::auth::{self, Principal};
use crate::error::{ApiError, Body};

/// A company.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CompanyView {
    /// Id.
    id: String,
    /// Name.
    name: String,
    /// Created (RFC 3339).
    created: String,
    /// Whether its readers (receptionists) may set a person's status by hand.
    readers_set_status: bool,
}

impl From<kalsync_store::Company> for CompanyView {
    fn from(c: kalsync_store::Company) -> Self {
        CompanyView {
            id: c.id.to_string(),
            name: c.name,
            created: c.created.to_string(),
            readers_set_status: c.readers_set_status,
        }
    }
}

/// A company to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewCompany {
    /// Its name (1–200 characters).
    name: String,
}

/// The company named in a path, if the principal may see it.
pub(crate) async fn visible(
    state: &WebState,
    principal: &Principal,
    company: &str,
) -> Result<CompanyId, ApiError> {
    let id: CompanyId = path_id(company, "company")?;
    principal.sees(id, &format!("company {company}"))?;
    state.store.company(id).await?;
    Ok(id)
}

/// The companies the principal may see.
#[utoipa::path(get, path = "/api/v1/companies", responses((status = 200, body = [CompanyView])))]
pub(crate) async fn list(
    State(state): State<WebState>,
    principal: Principal,
) -> Result<Json<Vec<CompanyView>>, ApiError> {
    let all = state.store.companies().await?;
    Ok(Json(
        all.into_iter()
            .filter(|c| principal.grant.sees(c.id))
            .map(CompanyView::from)
            .collect(),
    ))
}

/// Creates a company (operator only).
#[utoipa::path(post, path = "/api/v1/companies", request_body = NewCompany,
    responses((status = 201, body = CompanyView), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub(crate) async fn create(
    State(state): State<WebState>,
    principal: Principal,
    Body(input): Body<NewCompany>,
) -> Result<(StatusCode, Json<CompanyView>), ApiError> {
    principal.operator()?;
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid("name", "1 to 200 characters"));
    }
    if state
        .store
        .companies()
        .await?
        .iter()
        .any(|c| c.name.eq_ignore_ascii_case(name))
    {
        return Err(ApiError::Conflict(format!(
            "a company named {name} already exists"
        )));
    }
    let company = state.store.create_company(name).await?;
    audit(
        &state,
        &principal,
        Some(company.id),
        "company.created",
        serde_json::json!({"company": company.id}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(company.into())))
}

/// One company.
#[utoipa::path(get, path = "/api/v1/companies/{company}", params(("company" = String, Path)),
    responses((status = 200, body = CompanyView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn get(
    State(state): State<WebState>,
    principal: Principal,
    Path(company): Path<String>,
) -> Result<Json<CompanyView>, ApiError> {
    let id = visible(&state, &principal, &company).await?;
    Ok(Json(state.store.company(id).await?.into()))
}

/// What a company's admin may change about it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompanyChange {
    /// Whether its readers (receptionists) may set a person's status by hand.
    readers_set_status: Option<bool>,
}

/// Changes a company's settings (its admin or the operator), audited.
#[utoipa::path(patch, path = "/api/v1/companies/{company}", params(("company" = String, Path)), request_body = CompanyChange,
    responses((status = 200, body = CompanyView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn update(
    State(state): State<WebState>,
    principal: Principal,
    Path(company): Path<String>,
    Body(change): Body<CompanyChange>,
) -> Result<Json<CompanyView>, ApiError> {
    let id = visible(&state, &principal, &company).await?;
    principal.manages(id, "company")?;
    if let Some(allowed) = change.readers_set_status {
        set_readers_set_status(&state, &principal, id, allowed).await?;
    }
    Ok(Json(state.store.company(id).await?.into()))
}

/// Lets (or stops) `company`'s readers set a status by hand, for `principal` (who must
/// manage it), audited when it changes.
pub(crate) async fn set_readers_set_status(
    state: &WebState,
    principal: &Principal,
    company: CompanyId,
    allowed: bool,
) -> Result<(), ApiError> {
    principal.manages(company, "company")?;
    if state.store.company(company).await?.readers_set_status == allowed {
        return Ok(());
    }
    state.store.set_readers_set_status(company, allowed).await?;
    audit(
        state,
        principal,
        Some(company),
        "company.readers_set_status",
        serde_json::json!({"allowed": allowed}),
    )
    .await
}

/// Writes an audit entry for `principal`.
pub(crate) async fn audit(
    state: &WebState,
    principal: &Principal,
    company: Option<CompanyId>,
    action: &str,
    detail: serde_json::Value,
) -> Result<(), ApiError> {
    state
        .store
        .audit(NewAuditEntry {
            company,
            actor: principal.actor.clone(),
            action: action.into(),
            detail,
        })
        .await?;
    Ok(())
}

/// An audit entry.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditView {
    /// When (RFC 3339).
    at: String,
    /// Who.
    actor: String,
    /// What, e.g. `user.added`.
    action: String,
    /// Ids and details.
    #[schema(value_type = Object)]
    detail: serde_json::Value,
}

/// How many to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct Limit {
    /// At most this many (1–1000, default 100).
    limit: Option<usize>,
    /// Deliveries: `dead` (default), `pending` or `delivered`.
    state: Option<String>,
}

fn limit(l: Option<usize>) -> Result<usize, ApiError> {
    match l {
        None => Ok(100),
        Some(n) if (1..=1000).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid("limit", "1 to 1000")),
    }
}

/// The company's audit log, newest first.
#[utoipa::path(get, path = "/api/v1/companies/{company}/audit", params(("company" = String, Path), Limit),
    responses((status = 200, body = [AuditView])))]
pub(crate) async fn audit_log(
    State(state): State<WebState>,
    principal: Principal,
    Path(company): Path<String>,
    Query(q): Query<Limit>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    let id = visible(&state, &principal, &company).await?;
    let entries = state.store.audit_log(Some(id), limit(q.limit)?).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| AuditView {
                at: e.at.to_string(),
                actor: e.actor,
                action: e.action,
                detail: e.detail,
            })
            .collect(),
    ))
}

/// A delivery to a PBX target.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryView {
    /// Id (also its idempotency key at the target).
    id: String,
    /// The user.
    user: String,
    /// The target.
    target: String,
    /// `pending`, `delivered`, `superseded` or `dead`.
    state: String,
    /// Attempts made.
    attempts: u32,
    /// The status sent.
    #[schema(value_type = Object)]
    payload: serde_json::Value,
    /// The last error.
    last_error: Option<String>,
    /// Created (RFC 3339).
    created: String,
}

/// The company's deliveries in one state: dead letters by default.
#[utoipa::path(get, path = "/api/v1/companies/{company}/deliveries", params(("company" = String, Path), Limit),
    responses((status = 200, body = [DeliveryView])))]
pub(crate) async fn deliveries(
    State(state): State<WebState>,
    principal: Principal,
    Path(company): Path<String>,
    Query(q): Query<Limit>,
) -> Result<Json<Vec<DeliveryView>>, ApiError> {
    let id = visible(&state, &principal, &company).await?;
    let wanted = match q.state.as_deref().unwrap_or("dead") {
        "dead" => DeliveryState::Dead,
        "pending" => DeliveryState::Pending,
        "delivered" => DeliveryState::Delivered,
        other => {
            return Err(ApiError::invalid(
                "state",
                format!("`{other}` (expected dead, pending or delivered)"),
            ));
        }
    };
    let list = state.store.deliveries(id, wanted, limit(q.limit)?).await?;
    Ok(Json(
        list.into_iter()
            .map(|d| DeliveryView {
                id: d.id.to_string(),
                user: d.user.to_string(),
                target: d.target.to_string(),
                state: format!("{:?}", d.state).to_lowercase(),
                attempts: d.attempts,
                payload: d.payload,
                last_error: d.last_error,
                created: d.created.to_string(),
            })
            .collect(),
    ))
}

/// An API token (its secret is shown once, when made).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenView {
    /// Id.
    id: String,
    /// What uses it.
    name: String,
    /// `company_admin` or `reader`.
    role: String,
    /// Created (RFC 3339).
    created: String,
    /// Last used (RFC 3339).
    last_used: Option<String>,
    /// Refused from then on (RFC 3339).
    expires: String,
    /// The token itself: only in the answer that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

impl TokenView {
    fn of(t: kalsync_store::ApiToken, secret: Option<String>) -> TokenView {
        TokenView {
            id: t.id.to_string(),
            name: t.name,
            role: t.grant.role.as_str().to_owned(),
            created: t.created.to_string(),
            last_used: t.last_used.map(|t| t.to_string()),
            expires: t.expires.to_string(),
            token: secret,
        }
    }
}

/// A token to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    /// What will use it, e.g. `reception console`.
    name: String,
    /// `reader` (default) or `company_admin`.
    role: Option<String>,
    /// Days until it is refused: 1 to 365 [default: 90]. It also ends when the account
    /// that made it is removed.
    expires_in_days: Option<u32>,
}

/// The company's API tokens.
#[utoipa::path(get, path = "/api/v1/companies/{company}/tokens", params(("company" = String, Path)),
    responses((status = 200, body = [TokenView])))]
pub(crate) async fn tokens(
    State(state): State<WebState>,
    principal: Principal,
    Path(company): Path<String>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    let id = visible(&state, &principal, &company).await?;
    principal.manages(id, "company")?;
    let list = state.store.api_tokens(id).await?;
    Ok(Json(
        list.into_iter().map(|t| TokenView::of(t, None)).collect(),
    ))
}

/// Makes an API token; the answer holds the token, shown this once.
#[utoipa::path(post, path = "/api/v1/companies/{company}/tokens", params(("company" = String, Path)), request_body = NewToken,
    responses((status = 201, body = TokenView)))]
pub(crate) async fn create_token(
    State(state): State<WebState>,
    principal: Principal,
    Path(company): Path<String>,
    Body(input): Body<NewToken>,
) -> Result<(StatusCode, Json<TokenView>), ApiError> {
    let id = visible(&state, &principal, &company).await?;
    principal.manages(id, "company")?;
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid("name", "1 to 100 characters"));
    }
    let role = match input.role.as_deref() {
        None => Role::Reader,
        Some(r) => Role::parse(r).map_err(|e| ApiError::invalid("role", e))?,
    };
    let grant = Grant::company(role, id).map_err(|e| ApiError::invalid("role", e))?;
    let days = input.expires_in_days.unwrap_or(90);
    if !(1..=365).contains(&days) {
        return Err(ApiError::invalid("expires_in_days", "1 to 365"));
    }
    // A token answers for the person who made it: one made by a token would outlive
    // anyone's removal.
    let Some(owner) = principal.account.as_ref().map(|a| a.id) else {
        return Err(ApiError::Forbidden(
            "API tokens are made by a person signed in, not by another token".into(),
        ));
    };
    let secret = format!("{}{}", auth::TOKEN_PREFIX, auth::random_secret());
    let now = jiff::Timestamp::now();
    let token = state
        .store
        .create_api_token(kalsync_store::NewApiToken {
            grant,
            name,
            token_hash: &auth::secret_hash(&secret),
            owner,
            created: now,
            expires: now + jiff::SignedDuration::from_hours(24 * i64::from(days)),
        })
        .await?;
    audit(
        &state,
        &principal,
        Some(id),
        "token.created",
        serde_json::json!({"token": token.id, "role": role.as_str()}),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenView::of(token, Some(secret))),
    ))
}

/// Revokes an API token.
#[utoipa::path(delete, path = "/api/v1/companies/{company}/tokens/{token}", params(("company" = String, Path), ("token" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn revoke_token(
    State(state): State<WebState>,
    principal: Principal,
    Path((company, token)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = visible(&state, &principal, &company).await?;
    principal.manages(id, "company")?;
    let token_id: ApiTokenId = path_id(&token, "API token")?;
    state.store.delete_api_token(id, token_id).await?;
    audit(
        &state,
        &principal,
        Some(id),
        "token.revoked",
        serde_json::json!({"token": token_id}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
