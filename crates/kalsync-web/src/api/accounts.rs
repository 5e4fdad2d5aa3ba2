//! Accounts: a company's admins and readers are managed by that company's admins (and
//! the operator), the operator's own accounts by the operator; everyone changes their
//! own password. Passwords are hashed with
//! argon2id and never shown.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kalsync_store::{Account, AccountId, CompanyId, Grant, NewAccount, Role};
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

/// Creates an account with `grant` (checked, audited under `company`).
pub(crate) async fn create_account(
    state: &WebState,
    principal: &Principal,
    company: Option<CompanyId>,
    email: &str,
    grant: Grant,
    password: String,
) -> Result<Account, ApiError> {
    let email = kalsync_core::EmailAddress::parse(email.trim())
        .map_err(|e| ApiError::invalid("email", e))?;
    if let Some(company) = company {
        state.limit.check_taken(company)?;
    }
    auth::check_password(&password)?;
    let hash = auth::hash_password(password).await?;
    let account = state
        .store
        .create_account(NewAccount {
            email: email.to_string(),
            display_name: None,
            grant,
            password_hash: hash,
            entra: None,
        })
        .await
        .map_err(|e| match e {
            kalsync_store::StoreError::Conflict(_) => {
                // Said the same whoever has it; counted and audited, so a company
                // cannot list another's people by trying e-mails.
                if let Some(company) = company {
                    state.limit.taken(company);
                }
                ApiError::Conflict(format!(
                    "{email} cannot be used for a new account: it signs in already (here or elsewhere)"
                ))
            }
            other => other.into(),
        });
    if account.is_err() {
        audit(
            state,
            principal,
            company,
            "account.email_taken",
            serde_json::json!({"email": email.to_string()}),
        )
        .await?;
    }
    let account = account?;
    audit(
        state,
        principal,
        company,
        "account.created",
        serde_json::json!({"account": account.id, "role": account.grant.role.as_str()}),
    )
    .await?;
    Ok(account)
}

/// A company role's grant, or which field is wrong.
pub(crate) fn company_grant(role: &str, company: CompanyId) -> Result<Grant, ApiError> {
    let role = Role::parse(role).map_err(|e| ApiError::invalid("role", e))?;
    Grant::company(role, company).map_err(|e| ApiError::invalid("role", e))
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
    let grant = company_grant(&input.role, id)?;
    let account = create_account(
        &state,
        &principal,
        Some(id),
        &input.email,
        grant,
        input.password,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(AccountView::from(&account))))
}

/// Removes the account `account` if it has `company`'s grant (`None`: the operator's);
/// never one's own.
pub(crate) async fn remove_account(
    state: &WebState,
    principal: &Principal,
    company: Option<CompanyId>,
    account: &str,
) -> Result<(), ApiError> {
    let account_id: AccountId = path_id(account, "account")?;
    let found = state.store.account(account_id).await?;
    let same_kind = match company {
        Some(c) => found.grant.company == Some(c),
        None => found.grant.role == Role::Operator,
    };
    if !same_kind {
        return Err(ApiError::NotFound(format!("account {account}")));
    }
    if principal.account.as_ref().is_some_and(|a| a.id == found.id) {
        return Err(ApiError::Forbidden(
            "you cannot remove your own account".into(),
        ));
    }
    state.store.delete_account(found.id).await?;
    audit(
        state,
        principal,
        company,
        "account.removed",
        serde_json::json!({"account": found.id}),
    )
    .await
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
    remove_account(&state, &principal, Some(id), &account).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An operator account to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewOperatorInput {
    /// Sign-in e-mail.
    email: String,
    /// The first password (10–256 characters).
    password: String,
}

/// The operator's accounts (the operator only).
#[utoipa::path(get, path = "/api/v1/operators",
    responses((status = 200, body = [AccountView]), (status = 403, body = crate::error::ErrorBody)))]
pub(crate) async fn operators(
    State(state): State<WebState>,
    principal: Principal,
) -> Result<Json<Vec<AccountView>>, ApiError> {
    principal.operator()?;
    let accounts = state.store.accounts(None).await?;
    Ok(Json(
        accounts
            .iter()
            .filter(|a| a.grant.role == Role::Operator)
            .map(AccountView::from)
            .collect(),
    ))
}

/// Creates an operator account (the operator only).
#[utoipa::path(post, path = "/api/v1/operators", request_body = NewOperatorInput,
    responses((status = 201, body = AccountView), (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub(crate) async fn create_operator(
    State(state): State<WebState>,
    principal: Principal,
    Body(input): Body<NewOperatorInput>,
) -> Result<(StatusCode, Json<AccountView>), ApiError> {
    principal.operator()?;
    let account = create_account(
        &state,
        &principal,
        None,
        &input.email,
        Grant::operator(),
        input.password,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(AccountView::from(&account))))
}

/// Removes an operator account, not one's own (the operator only).
#[utoipa::path(delete, path = "/api/v1/operators/{account}", params(("account" = String, Path)),
    responses((status = 204), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn remove_operator(
    State(state): State<WebState>,
    principal: Principal,
    Path(account): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.operator()?;
    remove_account(&state, &principal, None, &account).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes the signed-in account's password after checking the current one; every
/// session of the account ends.
pub(crate) async fn change_own_password(
    state: &WebState,
    principal: &Principal,
    current: String,
    new: String,
) -> Result<(), ApiError> {
    let Some(account) = &principal.account else {
        return Err(ApiError::Forbidden("an API token has no password".into()));
    };
    if !auth::verify_password(current, account.password_hash.clone()).await {
        return Err(ApiError::invalid("current", "not the current password"));
    }
    auth::check_password(&new).map_err(|e| match e {
        ApiError::Invalid { message, .. } => ApiError::invalid("new", message),
        other => other,
    })?;
    let hash = auth::hash_password(new).await?;
    state.store.set_password(account.id, &hash).await?;
    audit(
        state,
        principal,
        account.grant.company,
        "account.password_changed",
        serde_json::json!({"account": account.id}),
    )
    .await
}

/// Changes the signed-in account's password; every session of it ends (sign in again).
#[utoipa::path(put, path = "/api/v1/me/password", request_body = PasswordChange,
    responses((status = 204), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub(crate) async fn change_password(
    State(state): State<WebState>,
    principal: Principal,
    Body(input): Body<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    change_own_password(&state, &principal, input.current, input.new).await?;
    Ok(StatusCode::NO_CONTENT)
}
