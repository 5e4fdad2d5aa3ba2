//! Signing in and out, and who am I.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum_extra::extract::CookieJar;
use kalsync_store::{NewAuditEntry, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::WebState;
use crate::auth::{self, PeerIp, Principal, Via};
use crate::error::{ApiError, Body};

/// E-mail and password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignIn {
    /// The account's e-mail.
    email: String,
    /// Its password.
    password: String,
}

/// The signed-in account.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Me {
    /// E-mail, or `token:<name>` for an API token.
    actor: String,
    /// `operator`, `company_admin` or `reader`.
    role: String,
    /// The company, for a company role.
    #[schema(value_type = Option<String>)]
    company: Option<kalsync_store::CompanyId>,
    /// The token state-changing requests of this session carry in `X-CSRF-Token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf: Option<String>,
    /// Preferred language, if chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<String>,
}

fn role_name(role: Role) -> String {
    role.as_str().to_owned()
}

/// Signs in; sets the session cookie (`HttpOnly`, `SameSite=Strict`).
#[utoipa::path(post, path = "/api/v1/session", request_body = SignIn,
    responses((status = 200, body = Me), (status = 403, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)))]
pub(crate) async fn sign_in(
    State(state): State<WebState>,
    PeerIp(ip): PeerIp,
    jar: CookieJar,
    Body(input): Body<SignIn>,
) -> Result<(CookieJar, Json<Me>), ApiError> {
    let account = auth::sign_in(&state, ip, &input.email, &input.password).await?;
    let (cookie, csrf) = auth::start_session(&state, &account).await?;
    state
        .store
        .audit(NewAuditEntry {
            company: account.grant.company,
            actor: account.email.clone(),
            action: "account.signed_in".into(),
            detail: serde_json::json!({}),
        })
        .await?;
    Ok((
        jar.add(cookie),
        Json(Me {
            actor: account.email.clone(),
            role: role_name(account.grant.role),
            company: account.grant.company,
            csrf: Some(csrf),
            language: account.language.clone(),
        }),
    ))
}

/// Signs out: the session ends and its cookie is removed.
#[utoipa::path(delete, path = "/api/v1/session", responses((status = 204)))]
pub(crate) async fn sign_out(
    State(state): State<WebState>,
    principal: Principal,
    jar: CookieJar,
) -> Result<(CookieJar, StatusCode), ApiError> {
    if let Via::Session { id_hash, .. } = &principal.via {
        state.store.delete_session(id_hash).await?;
    }
    Ok((
        jar.add(auth::ended_cookie(state.secure_cookies)),
        StatusCode::NO_CONTENT,
    ))
}

/// Who is signed in (and the session's CSRF token).
#[utoipa::path(get, path = "/api/v1/me", responses((status = 200, body = Me), (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn me(principal: Principal) -> Json<Me> {
    Json(Me {
        actor: principal.actor.clone(),
        role: role_name(principal.grant.role),
        company: principal.grant.company,
        csrf: match &principal.via {
            Via::Session { csrf, .. } => Some(csrf.clone()),
            Via::Token { .. } | Via::Console => None,
        },
        language: principal.account.and_then(|a| a.language),
    })
}
