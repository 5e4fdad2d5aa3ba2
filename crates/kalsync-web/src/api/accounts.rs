//! Accounts: a company's admins and readers are managed by that company's admins (and
//! the operator); everyone changes their own password. Passwords are hashed with
//! argon2id and never shown.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kalsync_store::{AccountId, Grant, NewAccount, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::companies::{audit, visible};
use super::path_id;
use crate::WebState;
use crate::auth::{self, Principal};
use crate::error::{ApiError, Body};

/// An account as shown.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AccountView {
    /// Id.
    id: String,
    /// Sign-in e-mail.
    email: String,
    /// `company_admin` or `reader` (or `operator`).
    role: String,
    /// Created (RFC 3339).
    created: String,
}

impl From<&kalsync_store::Account> for AccountView {
    fn from(a: &kalsync_store::Account) -> Self {
        AccountView {
            id: a.id.to_string(),
            email: a.email.clone(),
            role: a.grant.role.as_str().to_owned(),
            created: a.created.to_string(),
        }
    }
}

/// An account to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewAccountInput {
    /// Sign-in e-mail.
    email: String,
    /// `company_admin` or `reader`.
    role: String,
    /// The first password (10–256 characters).
    password: String,
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordChange {
    /// The password now.
    current: String,
    /// The new one (10–256 characters).
    new: String,
}

/// A company's accounts.
#[utoipa::path(get, path = "/api/v1/companies/{company}/accounts", params(("company" = String, Path)),
    responses((status = 200, body = [AccountView])))]
pub(crate) async fn list(
    State(state): State<WebState>,
    principal: Principal,
    Path(company): Path<String>,
) -> Result<Json<Vec<AccountView>>, ApiError> {
    let id = visible(&state, &principal, &company).await?;
    principal.manages(id, "company")?;
    let accounts = state.store.accounts(Some(id)).await?;
    Ok(Json(accounts.iter().map(AccountView::from).collect()))
}

/// Creates a company account.
#[utoipa::path(post, path = "/api/v1/companies/{company}/accounts", params(("company" = String, Path)), request_body = NewAccountInput,
    responses((status = 201, body = AccountView), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub(crate) async fn create(
    State(state): State<WebState>,
    principal: Principal,
    Path(company): Path<String>,
    Body(input): Body<NewAccountInput>,
) -> Result<(StatusCode, Json<AccountView>), ApiError> {
    let id = visible(&state, &principal, &company).await?;
    principal.manages(id, "company")?;
    let email = kalsync_core::EmailAddress::parse(input.email.trim())
        .map_err(|e| ApiError::invalid("email", e))?;
    let role = Role::parse(&input.role).map_err(|e| ApiError::invalid("role", e))?;
    let grant = Grant::company(role, id).map_err(|e| ApiError::invalid("role", e))?;
    auth::check_password(&input.password)?;
    let hash = auth::hash_password(input.password).await?;
    let account = state
        .store
        .create_account(NewAccount {
            email: email.to_string(),
            display_name: None,
            grant,
            password_hash: hash,
        })
        .await
        .map_err(|e| match e {
            kalsync_store::StoreError::Conflict(_) => {
                ApiError::Conflict(format!("an account for {email} already exists"))
            }
            other => other.into(),
        })?;
    audit(
        &state,
        &principal,
        Some(id),
        "account.created",
        serde_json::json!({"account": account.id, "role": role.as_str()}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(AccountView::from(&account))))
}

/// Removes a company account (not one's own).
#[utoipa::path(delete, path = "/api/v1/companies/{company}/accounts/{account}", params(("company" = String, Path), ("account" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn remove(
    State(state): State<WebState>,
    principal: Principal,
    Path((company, account)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = visible(&state, &principal, &company).await?;
    principal.manages(id, "company")?;
    let account_id: AccountId = path_id(&account, "account")?;
    let found = state.store.account(account_id).await?;
    if found.grant.company != Some(id) {
        return Err(ApiError::NotFound(format!("account {account}")));
    }
    if principal.account.as_ref().is_some_and(|a| a.id == found.id) {
        return Err(ApiError::Forbidden(
            "you cannot remove your own account".into(),
        ));
    }
    state.store.delete_account(found.id).await?;
    audit(
        &state,
        &principal,
        Some(id),
        "account.removed",
        serde_json::json!({"account": found.id}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes the signed-in account's password; every session of it ends (sign in again).
#[utoipa::path(put, path = "/api/v1/me/password", request_body = PasswordChange,
    responses((status = 204), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub(crate) async fn change_password(
    State(state): State<WebState>,
    principal: Principal,
    Body(input): Body<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let Some(account) = &principal.account else {
        return Err(ApiError::Forbidden("an API token has no password".into()));
    };
    if !auth::verify_password(input.current, account.password_hash.clone()).await {
        return Err(ApiError::invalid("current", "not the current password"));
    }
    auth::check_password(&input.new).map_err(|e| match e {
        ApiError::Invalid { message, .. } => ApiError::invalid("new", message),
        other => other,
    })?;
    let hash = auth::hash_password(input.new).await?;
    state.store.set_password(account.id, &hash).await?;
    audit(
        &state,
        &principal,
        account.grant.company,
        "account.password_changed",
        serde_json::json!({"account": account.id}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
