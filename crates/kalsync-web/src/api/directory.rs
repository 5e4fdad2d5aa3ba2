//! An instance's directory (*Katalog Synk*) in the API: its settings, what its last run
//! did and when it runs next; a dry run that shows what a sync would change, and a run
//! now (with held removals confirmed). Only a company admin (or the operator) changes
//! it or runs it; a reader sees it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kalsync_directory::{DirectoryKind, DirectorySettings};
use kalsync_store::{DirectoryRun, DirectorySecret, SourceConfig};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::companies::audit;
use super::instances::visible_instance;
use crate::auth::Principal;
use crate::error::{ApiError, Body};
use crate::{DirectoryMode, WebState};

/// An instance's directory.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DirectoryView {
    /// Its settings: `kind` (`entra` or `ldap`), `ldap` (`url`, `base`, `bind_dn`, `ca`;
    /// the password is written as a `password` beside the settings, never read back),
    /// `groups`, `extension` (`attribute` with
    /// `last_digits` or `pattern`), `department`, `every`, `grace`, `manual` (`keep` or
    /// `refuse`), `enabled`.
    #[schema(value_type = Object)]
    pub(crate) settings: serde_json::Value,
    /// When it runs next (RFC 3339).
    pub(crate) next_run: String,
    /// What its last run did.
    #[schema(value_type = Object)]
    pub(crate) last: Option<serde_json::Value>,
    /// Whether an LDAP directory's password is stored (it is never shown).
    pub(crate) password_set: bool,
}

/// A field named by a settings error (`groups: …`), else the whole.
fn field_of(message: &str) -> String {
    const FIELDS: [&str; 20] = [
        "client_secret",
        "entra_app.tenant",
        "entra_app.client_id",
        "entra_app.graph_url",
        "entra_app.login_url",
        "entra_app",
        "ldap.url",
        "ldap.base",
        "ldap.bind_dn",
        "ldap.ca",
        "ldap",
        "password",
        "groups",
        "every",
        "grace",
        "department",
        "extension.attribute",
        "extension.last_digits",
        "extension.pattern",
        "extension",
    ];
    FIELDS
        .iter()
        .find(|f| message.starts_with(&format!("{f}:")) || message.starts_with(&format!("{f} ")))
        .map_or_else(|| "directory".to_owned(), |f| (*f).to_owned())
}

/// The settings from a request body, or the field that is wrong.
pub(crate) fn parse_settings(body: serde_json::Value) -> Result<DirectorySettings, ApiError> {
    serde_json::from_value::<DirectorySettings>(body).map_err(|e| {
        let message = e.to_string();
        ApiError::invalid(field_of(&message), message)
    })
}

/// The instance's directory, if it has one.
#[utoipa::path(get, path = "/api/v1/instances/{instance}/directory", params(("instance" = String, Path)),
    responses((status = 200, body = DirectoryView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn get(
    State(state): State<WebState>,
    principal: Principal,
    Path(instance): Path<String>,
) -> Result<Json<DirectoryView>, ApiError> {
    let found = visible_instance(&state, &principal, &instance).await?;
    let record = state
        .store
        .directory(found.id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("the directory of instance {instance}")))?;
    Ok(Json(DirectoryView {
        settings: serde_json::to_value(&record.settings)
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        next_run: record.next_run.to_string(),
        last: record
            .last
            .map(|l| serde_json::to_value(l).unwrap_or_default()),
        password_set: record.password.is_some(),
    }))
}

/// Whether `settings` suit `source`: an Entra ID directory reads through the instance's
/// own Microsoft 365 app, or through an app of its own (an Exchange instance in a hybrid
/// company); an LDAP directory suits any instance.
fn suits(settings: &DirectorySettings, source: &SourceConfig) -> Result<(), ApiError> {
    match (settings.kind, source) {
        (DirectoryKind::Entra, SourceConfig::Graph { .. }) | (DirectoryKind::Ldap, _) => Ok(()),
        (DirectoryKind::Entra, _) if settings.entra_app.is_some() => Ok(()),
        (DirectoryKind::Entra, _) => Err(ApiError::invalid(
            "entra_app",
            "entra_app: an Exchange instance reads Entra ID with an app of the directory's own (tenant, client_id and its client secret)",
        )),
    }
}

/// The most characters a password may have.
const MAX_PASSWORD: usize = 1024;

/// Takes the write-only `password` out of a settings body.
pub(crate) fn take_password(
    body: &mut serde_json::Value,
) -> Result<Option<SecretString>, ApiError> {
    let Some(object) = body.as_object_mut() else {
        return Ok(None);
    };
    // `client_secret` for an Entra ID app, `password` for an LDAP account: one secret.
    let given = match (object.remove("password"), object.remove("client_secret")) {
        (Some(p), None) | (None, Some(p)) => Some(p),
        (None, None) => None,
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "password",
                "password: give the password or the client secret, not both",
            ));
        }
    };
    match given {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(p)) if p.is_empty() => Ok(None),
        Some(serde_json::Value::String(p))
            if p.chars().count() <= MAX_PASSWORD && !p.chars().any(char::is_control) =>
        {
            Ok(Some(SecretString::from(p)))
        }
        Some(_) => Err(ApiError::invalid(
            "password",
            format!("password: a text of at most {MAX_PASSWORD} characters"),
        )),
    }
}

/// What happens to the stored password when `settings` are saved: a new one is stored;
/// none given, the stored one is kept only for the same server and account (a password is
/// sent only where it was given for); an Entra ID directory has none.
fn password_change<'a>(
    settings: &DirectorySettings,
    given: Option<&'a SecretString>,
    stored: Option<&'a kalsync_store::DirectoryRecord>,
) -> Result<DirectorySecret<'a>, ApiError> {
    // What the secret is for: an LDAP account, or an Entra ID app of the directory's own.
    let same: Box<dyn Fn(&DirectorySettings) -> bool> = match (&settings.ldap, &settings.entra_app)
    {
        (Some(server), _) => Box::new(move |old: &DirectorySettings| {
            old.ldap.as_ref().is_some_and(|o| o.same_account(server))
        }),
        (None, Some(app)) => Box::new(move |old: &DirectorySettings| {
            old.entra_app.as_ref().is_some_and(|o| o.same_app(app))
        }),
        (None, None) => return Ok(DirectorySecret::Clear),
    };
    if let Some(p) = given {
        return Ok(DirectorySecret::Set(p));
    }
    let kept = stored.filter(|r| r.password.is_some() && same(&r.settings));
    if let Some(judged) = kept {
        // Kept only if nobody saved other settings since they were read here.
        Ok(DirectorySecret::Keep(&judged.settings))
    } else {
        let field = if settings.ldap.is_some() {
            "password"
        } else {
            "client_secret"
        };
        Err(ApiError::invalid(
            field,
            format!(
                "{field}: give the {} (it is asked again when the server, app or account changes)",
                if settings.ldap.is_some() {
                    "account's password"
                } else {
                    "app's client secret"
                }
            ),
        ))
    }
}

/// Sets the instance's directory (it runs at once: a dry run until `enabled`).
#[utoipa::path(put, path = "/api/v1/instances/{instance}/directory", params(("instance" = String, Path)),
    request_body(content = Object, description = "The directory's settings"),
    responses((status = 200, body = DirectoryView), (status = 422, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn put(
    State(state): State<WebState>,
    principal: Principal,
    Path(instance): Path<String>,
    Body(mut body): Body<serde_json::Value>,
) -> Result<Json<DirectoryView>, ApiError> {
    let found = visible_instance(&state, &principal, &instance).await?;
    principal.manages(found.company, "instance")?;
    let password = take_password(&mut body)?;
    let settings = parse_settings(body)?;
    save_settings(&state, &principal, &found, &settings, password.as_ref()).await?;
    get(State(state), principal, Path(instance)).await
}

/// Stores an instance's directory settings (checked against its source) and an LDAP
/// account's password, audited (without the password).
pub(crate) async fn save_settings(
    state: &WebState,
    principal: &Principal,
    found: &kalsync_store::Instance,
    settings: &DirectorySettings,
    password: Option<&SecretString>,
) -> Result<(), ApiError> {
    principal.manages(found.company, "instance")?;
    suits(settings, &found.source)?;
    let stored = state.store.directory(found.id).await?;
    let secret = password_change(settings, password, stored.as_ref())?;
    state
        .store
        .set_directory(found.id, Some(settings), secret, jiff::Timestamp::now())
        .await?;
    audit(
        state,
        principal,
        Some(found.company),
        "directory.changed",
        serde_json::json!({
            "instance": found.id, "kind": settings.kind.as_str(), "groups": settings.groups.len(),
            "enabled": settings.enabled,
            // Where the directory is read, and whether its secret is new (never the secret).
            "server": settings.ldap.as_ref().map(|l| l.host().to_owned()),
            "app": settings.entra_app.as_ref().map(|a| format!("{}/{}", a.tenant(), a.client_id())),
            "secret": match secret { DirectorySecret::Set(_) => "new", DirectorySecret::Keep(_) => "kept", DirectorySecret::Clear => "none" },
        }),
    )
    .await
}

/// Removes the instance's directory: its users stay, as if added by hand.
#[utoipa::path(delete, path = "/api/v1/instances/{instance}/directory", params(("instance" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn remove(
    State(state): State<WebState>,
    principal: Principal,
    Path(instance): Path<String>,
) -> Result<StatusCode, ApiError> {
    let found = visible_instance(&state, &principal, &instance).await?;
    remove_directory(&state, &principal, &found).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes an instance's directory for `principal` (who must manage it), audited.
pub(crate) async fn remove_directory(
    state: &WebState,
    principal: &Principal,
    found: &kalsync_store::Instance,
) -> Result<(), ApiError> {
    principal.manages(found.company, "instance")?;
    state
        .store
        .set_directory(
            found.id,
            None,
            DirectorySecret::Clear,
            jiff::Timestamp::now(),
        )
        .await?;
    audit(
        state,
        principal,
        Some(found.company),
        "directory.removed",
        serde_json::json!({"instance": found.id}),
    )
    .await
}

/// How a run is asked for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunInput {
    /// `dry_run` (shown, not applied), `now` (applied when the directory is on) or
    /// `confirmed` (applied, removals held back included).
    pub(crate) mode: String,
}

/// At most this many runs on request per instance and [`RUNS_WITHIN`], whoever asks:
/// each reads the company's directory.
const RUNS: usize = 6;
/// The window of [`RUNS`].
const RUNS_WITHIN: Duration = Duration::from_secs(60);

/// When each instance's directory ran (or each company's PBX directory was fetched) on
/// request, within the last [`RUNS_WITHIN`].
pub(crate) type RunTimes = Mutex<HashMap<String, Vec<Instant>>>;

/// Takes one of the [`RUNS`] turns `key` has in [`RUNS_WITHIN`], or says when to come
/// back.
pub(crate) fn take_turn(times: &RunTimes, key: String) -> Result<(), ApiError> {
    let mut times = times.lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    let recent = times.entry(key).or_default();
    recent.retain(|t| now.duration_since(*t) < RUNS_WITHIN);
    if recent.len() >= RUNS {
        let wait = recent.first().map_or(RUNS_WITHIN, |t| {
            RUNS_WITHIN.saturating_sub(now.duration_since(*t))
        });
        return Err(ApiError::TooMany(wait.as_secs().max(1)));
    }
    recent.push(now);
    Ok(())
}

/// Runs the instance's directory now: a dry run shows what a sync would change.
#[utoipa::path(post, path = "/api/v1/instances/{instance}/directory/run", params(("instance" = String, Path)), request_body = RunInput,
    responses((status = 200, body = Object), (status = 422, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)))]
pub(crate) async fn run(
    State(state): State<WebState>,
    principal: Principal,
    Path(instance): Path<String>,
    Body(input): Body<RunInput>,
) -> Result<Json<DirectoryRun>, ApiError> {
    let found = visible_instance(&state, &principal, &instance).await?;
    let mode = match input.mode.as_str() {
        "dry_run" => DirectoryMode::DryRun,
        "now" => DirectoryMode::Now,
        "confirmed" => DirectoryMode::Confirmed,
        other => {
            return Err(ApiError::invalid(
                "mode",
                format!("`{other}` (expected dry_run, now or confirmed)"),
            ));
        }
    };
    Ok(Json(run_directory(&state, &principal, &found, mode).await?))
}

/// Runs an instance's directory for `principal` (who must manage it), at most [`RUNS`]
/// times a minute per instance.
pub(crate) async fn run_directory(
    state: &WebState,
    principal: &Principal,
    found: &kalsync_store::Instance,
    mode: DirectoryMode,
) -> Result<DirectoryRun, ApiError> {
    principal.manages(found.company, "instance")?;
    let runner = state.directories.clone().ok_or_else(|| {
        ApiError::Unavailable("directories are not available on this server".into())
    })?;
    if state.store.directory(found.id).await?.is_none() {
        return Err(ApiError::NotFound(format!(
            "the directory of instance {}",
            found.id
        )));
    }
    take_turn(&state.directory_runs, format!("instance:{}", found.id))?;
    let done = runner
        .run(found.id, mode)
        .await
        .map_err(ApiError::Unavailable)?;
    if mode != DirectoryMode::DryRun {
        audit(
            state,
            principal,
            Some(found.company),
            "directory.run",
            serde_json::json!({"instance": found.id, "confirmed": mode == DirectoryMode::Confirmed, "applied": done.applied}),
        )
        .await?;
    }
    Ok(done)
}
