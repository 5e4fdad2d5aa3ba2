//! A status set by hand (SPEC §6, issue 19): an admin (or, where the company allows, the
//! receptionist; or the person, signed in with Entra ID) sets a person's reason, mode and
//! until when (a time, the end of the day, or until cleared); it wins over the calendar
//! while in force, shows as manual in the "why", is audited, and ends by itself.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};
use kalsync_core::{Mode, Override, ReasonCode, Source};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::companies::audit;
use super::users::visible_user;
use crate::WebState;
use crate::auth::Principal;
use crate::error::{ApiError, Body};

/// The longest a status set by hand may be set ahead.
const MAX_AHEAD: SignedDuration = SignedDuration::from_hours(24 * 366);

/// A status to set by hand.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManualInput {
    /// A reason of the instance's catalogue (`sick`, `out_of_office`, …).
    pub(crate) reason: String,
    /// `divert` (calls go to the announcement; the default) or `info`.
    pub(crate) mode: Option<String>,
    /// Until when: a time (RFC 3339), a length of time from now (`PT2H`), `end_of_day`
    /// (local midnight in the instance's zone), or none: until cleared.
    pub(crate) until: Option<String>,
}

/// A status set by hand, as stored.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ManualView {
    /// Reason code.
    pub(crate) reason: String,
    /// `divert` or `info`.
    pub(crate) mode: String,
    /// Since (RFC 3339).
    pub(crate) since: String,
    /// Until (RFC 3339); none: until cleared.
    pub(crate) until: Option<String>,
}

/// Sets a person's status by hand; the PBX follows at once (the person is read again).
#[utoipa::path(put, path = "/api/v1/users/{user}/manual-status", params(("user" = String, Path)), request_body = ManualInput,
    responses((status = 200, body = ManualView), (status = 422, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn set(
    State(state): State<WebState>,
    principal: Principal,
    Path(user): Path<String>,
    Body(input): Body<ManualInput>,
) -> Result<Json<ManualView>, ApiError> {
    Ok(Json(set_manual(&state, &principal, &user, &input).await?))
}

/// The next local midnight after `now` in the instance's zone.
pub(crate) fn end_of_day(
    now: Timestamp,
    settings: &kalsync_core::InstanceSettings,
) -> Result<Timestamp, ApiError> {
    now.to_zoned(settings.time_zone.tz().clone())
        .tomorrow()
        .and_then(|d| d.start_of_day())
        .map(|z| z.timestamp())
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Whether `principal` may set or clear `user`'s status by hand: the company's admin (or
/// the operator); a reader (the receptionist) when the company allows it; a person signed
/// in with Entra ID, their own. `Forbidden` says who may.
pub(crate) async fn may_set_status(
    state: &WebState,
    principal: &Principal,
    company: kalsync_store::CompanyId,
    user: &kalsync_store::User,
) -> Result<(), ApiError> {
    principal.sees(company, "user")?;
    if principal.grant.manages(company) {
        return Ok(());
    }
    // Their own: signed in with Microsoft from a tenant the company proved it owns, as
    // the mailbox's owner (the directory's object id where Katalog Synk keeps it, else
    // the account's name).
    if let Some(a) = principal.account.as_ref()
        && let Some(entra) = &a.entra
        && state
            .store
            .company_tenant(&entra.tenant)
            .await?
            .is_some_and(|t| t.company == company)
    {
        let same = match &user.directory_key {
            Some(key) => key.eq_ignore_ascii_case(&entra.object),
            None => a.email.eq_ignore_ascii_case(user.email.as_str()),
        };
        if same {
            return Ok(());
        }
    }
    if principal.grant.role == kalsync_store::Role::Reader
        && state.store.company(company).await?.readers_set_status
    {
        return Ok(());
    }
    Err(ApiError::Forbidden(
        "this role may only read: the company's admin can let receptionists set a status".into(),
    ))
}

/// Sets the status of the user named `user` by hand, for `principal` (who may, by
/// [`may_set_status`]), audited.
pub(crate) async fn set_manual(
    state: &WebState,
    principal: &Principal,
    user: &str,
    input: &ManualInput,
) -> Result<ManualView, ApiError> {
    let (found, company) = visible_user(state, principal, user).await?;
    may_set_status(state, principal, company, &found).await?;
    let instance = state.store.instance(found.instance).await?;
    let now = Timestamp::now();
    let reason = ReasonCode::parse(input.reason.trim())
        .ok()
        .filter(|r| instance.settings.reasons.get(r).is_some())
        .ok_or_else(|| {
            ApiError::invalid(
                "reason",
                format!(
                    "reason: `{}` is not a reason of this instance",
                    input.reason.trim()
                ),
            )
        })?;
    let mode = match input.mode.as_deref().map(str::trim) {
        None | Some("divert") => Mode::Divert,
        Some("info") => Mode::Info,
        Some(other) => {
            return Err(ApiError::invalid(
                "mode",
                format!("mode: `{other}` is neither divert nor info"),
            ));
        }
    };
    let end = match input.until.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("end_of_day") => Some(end_of_day(now, &instance.settings)?),
        // A length of time (ISO 8601: `PT1H`) from now.
        Some(text) if text.starts_with(['P', 'p']) => {
            let d: SignedDuration = text.parse().map_err(|_| {
                ApiError::invalid("until", format!("until: `{text}` is not a length of time"))
            })?;
            if d <= SignedDuration::ZERO || d > MAX_AHEAD {
                return Err(ApiError::invalid(
                    "until",
                    "until: a time after now and within a year",
                ));
            }
            Some(now + d)
        }
        Some(text) => {
            let t: Timestamp = text.parse().map_err(|_| {
                ApiError::invalid(
                    "until",
                    format!("until: `{text}` is not a time (RFC 3339), end_of_day or empty"),
                )
            })?;
            if t <= now || t > now + MAX_AHEAD {
                return Err(ApiError::invalid(
                    "until",
                    "until: a time after now and within a year",
                ));
            }
            Some(t)
        }
    };
    let status = Override {
        source: Source::Manual,
        id: String::new(),
        start: now,
        end,
        status: Some((reason.clone(), mode)),
    };
    state
        .store
        .set_override(found.id, Source::Manual, Some(&status), &principal.actor)
        .await?;
    audit(
        state,
        principal,
        Some(company),
        "status.set",
        serde_json::json!({"user": found.id, "reason": reason.as_str(), "mode": mode.as_str(), "until": end.map(|t| t.to_string())}),
    )
    .await?;
    Ok(ManualView {
        reason: reason.as_str().to_owned(),
        mode: mode.as_str().to_owned(),
        since: now.to_string(),
        until: end.map(|t| t.to_string()),
    })
}

/// Clears a person's status set by hand; the calendar decides again.
#[utoipa::path(delete, path = "/api/v1/users/{user}/manual-status", params(("user" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn clear(
    State(state): State<WebState>,
    principal: Principal,
    Path(user): Path<String>,
) -> Result<StatusCode, ApiError> {
    clear_manual(&state, &principal, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Clears the status set by hand of the user named `user`, for `principal` (who may, by
/// [`may_set_status`]), audited.
pub(crate) async fn clear_manual(
    state: &WebState,
    principal: &Principal,
    user: &str,
) -> Result<(), ApiError> {
    let (found, company) = visible_user(state, principal, user).await?;
    may_set_status(state, principal, company, &found).await?;
    state
        .store
        .set_override(found.id, Source::Manual, None, &principal.actor)
        .await?;
    audit(
        state,
        principal,
        Some(company),
        "status.cleared",
        serde_json::json!({"user": found.id}),
    )
    .await
}
