//! An instance's users: listed, added one at a time by e-mail, imported from CSV with a
//! report per row (a bad row never stops the good ones), removed with all their data.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kalsync_core::{EmailAddress, Extension};
use kalsync_store::{NewUser, StoreError, User, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::companies::audit;
use super::instances::visible_instance;
use super::path_id;
use crate::WebState;
use crate::auth::Principal;
use crate::error::{ApiError, Body, Text};

/// A user.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserView {
    /// Id.
    pub(crate) id: String,
    /// Mailbox.
    pub(crate) email: String,
    /// Name.
    pub(crate) display_name: Option<String>,
    /// PBX extension.
    pub(crate) extension: Option<String>,
    /// Last read of the calendar (RFC 3339).
    pub(crate) last_sync: Option<String>,
    /// Why the last read failed, if it did.
    pub(crate) last_error: Option<String>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.to_string(),
            email: u.email.to_string(),
            display_name: u.display_name.clone(),
            extension: u.extension.as_ref().map(|e| e.as_str().to_owned()),
            last_sync: u.last_sync.map(|t| t.to_string()),
            last_error: u.last_error.clone(),
        }
    }
}

/// A user to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUserInput {
    /// The mailbox's e-mail address.
    email: String,
    /// Name.
    display_name: Option<String>,
    /// PBX extension (digits, `+`, `*`, `#`).
    extension: Option<String>,
}

/// The users a principal may see on an instance.
#[utoipa::path(get, path = "/api/v1/instances/{instance}/users", params(("instance" = String, Path)),
    responses((status = 200, body = [UserView])))]
pub(crate) async fn list(
    State(state): State<WebState>,
    principal: Principal,
    Path(instance): Path<String>,
) -> Result<Json<Vec<UserView>>, ApiError> {
    let found = visible_instance(&state, &principal, &instance).await?;
    let users = state.store.users(found.id).await?;
    Ok(Json(users.iter().map(UserView::from).collect()))
}

/// A checked user from its fields; `Err((field, why))`.
fn checked(
    instance: kalsync_store::InstanceId,
    email: &str,
    name: Option<&str>,
    extension: Option<&str>,
) -> Result<NewUser, (String, String)> {
    let email =
        EmailAddress::parse(email.trim()).map_err(|e| ("email".to_owned(), e.to_string()))?;
    let display_name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| {
            if n.chars().count() > 200 {
                Err((
                    "display_name".to_owned(),
                    "at most 200 characters".to_owned(),
                ))
            } else {
                Ok(n.to_owned())
            }
        })
        .transpose()?;
    let extension = extension
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| Extension::parse(x).map_err(|e| ("extension".to_owned(), e.to_string())))
        .transpose()?;
    Ok(NewUser {
        instance,
        email,
        display_name,
        extension,
    })
}

/// Adds a user by e-mail.
#[utoipa::path(post, path = "/api/v1/instances/{instance}/users", params(("instance" = String, Path)), request_body = NewUserInput,
    responses((status = 201, body = UserView), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub(crate) async fn add(
    State(state): State<WebState>,
    principal: Principal,
    Path(instance): Path<String>,
    Body(input): Body<NewUserInput>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let found = visible_instance(&state, &principal, &instance).await?;
    let user = add_user(
        &state,
        &principal,
        &found,
        &input.email,
        input.display_name.as_deref(),
        input.extension.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

/// Adds a user to `found` (checked, audited); the principal must manage it.
pub(crate) async fn add_user(
    state: &WebState,
    principal: &Principal,
    found: &kalsync_store::Instance,
    email: &str,
    name: Option<&str>,
    extension: Option<&str>,
) -> Result<User, ApiError> {
    principal.manages(found.company, "instance")?;
    let new =
        checked(found.id, email, name, extension).map_err(|(f, why)| ApiError::invalid(f, why))?;
    let email = new.email.to_string();
    let user = state.store.add_user(new).await.map_err(|e| match e {
        StoreError::Conflict(_) => {
            ApiError::Conflict(format!("{email} is already a user of this instance"))
        }
        other => other.into(),
    })?;
    audit(
        state,
        principal,
        Some(found.company),
        "user.added",
        serde_json::json!({"user": user.id, "instance": found.id}),
    )
    .await?;
    Ok(user)
}

/// One row of an import's report.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImportRow {
    /// The line in the file (1 = the first).
    pub(crate) line: u64,
    /// The e-mail as given.
    pub(crate) email: String,
    /// `added`, `exists` or `error`.
    pub(crate) outcome: String,
    /// The field at fault, for an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) field: Option<String>,
    /// Why, for an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<String>,
}

/// What an import did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImportReport {
    /// Users added.
    pub(crate) added: usize,
    /// Already there.
    pub(crate) existing: usize,
    /// Rows refused.
    pub(crate) errors: usize,
    /// Every row.
    pub(crate) rows: Vec<ImportRow>,
}

/// Rows one import takes at most.
const IMPORT_ROWS: usize = 10_000;

/// Imports users from CSV (`email,name,extension`; a header line is optional, name and
/// extension may be empty). Every row is reported; bad rows do not stop good ones.
#[utoipa::path(post, path = "/api/v1/instances/{instance}/users/import", params(("instance" = String, Path)),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportReport), (status = 400, body = crate::error::ErrorBody)))]
pub(crate) async fn import(
    State(state): State<WebState>,
    principal: Principal,
    Path(instance): Path<String>,
    Text(body): Text,
) -> Result<Json<ImportReport>, ApiError> {
    let found = visible_instance(&state, &principal, &instance).await?;
    Ok(Json(import_csv(&state, &principal, &found, &body).await?))
}

/// Adds the users of a CSV text to `found`, reporting every row.
pub(crate) async fn import_csv(
    state: &WebState,
    principal: &Principal,
    found: &kalsync_store::Instance,
    body: &str,
) -> Result<ImportReport, ApiError> {
    principal.manages(found.company, "instance")?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(body.as_bytes());
    let mut report = ImportReport {
        added: 0,
        existing: 0,
        errors: 0,
        rows: Vec::new(),
    };
    // Counted before any is added: a file that is too long adds nobody.
    let records: Vec<_> = reader.records().take(IMPORT_ROWS + 1).collect();
    if records.len() > IMPORT_ROWS {
        return Err(ApiError::BadRequest(format!(
            "at most {IMPORT_ROWS} rows per import; split the file"
        )));
    }
    for (index, record) in records.into_iter().enumerate() {
        let line = record
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map_or(index as u64 + 1, |p| p.line());
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                report.errors += 1;
                report.rows.push(ImportRow {
                    line,
                    email: String::new(),
                    outcome: "error".into(),
                    field: None,
                    message: Some(format!("not CSV: {e}")),
                });
                continue;
            }
        };
        let email = record.get(0).unwrap_or("").to_owned();
        if index == 0 && email.eq_ignore_ascii_case("email") {
            continue;
        }
        if record.iter().all(str::is_empty) {
            continue;
        }
        let row = |outcome: &str, field: Option<String>, message: Option<String>| ImportRow {
            line,
            email: email.clone(),
            outcome: outcome.into(),
            field,
            message,
        };
        if record.len() > 3 {
            report.errors += 1;
            report.rows.push(row(
                "error",
                None,
                Some(format!(
                    "{} columns; expected email,name,extension",
                    record.len()
                )),
            ));
            continue;
        }
        let new = match checked(found.id, &email, record.get(1), record.get(2)) {
            Ok(n) => n,
            Err((field, why)) => {
                report.errors += 1;
                report.rows.push(row("error", Some(field), Some(why)));
                continue;
            }
        };
        match state.store.add_user(new).await {
            Ok(user) => {
                report.added += 1;
                report.rows.push(row("added", None, None));
                audit(
                    state,
                    principal,
                    Some(found.company),
                    "user.added",
                    serde_json::json!({"user": user.id, "instance": found.id, "import": true}),
                )
                .await?;
            }
            Err(StoreError::Conflict(_)) => {
                report.existing += 1;
                report.rows.push(row("exists", None, None));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(report)
}

/// Removes a user: its bookings, timeline, sync state and deliveries are deleted.
#[utoipa::path(delete, path = "/api/v1/users/{user}", params(("user" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn remove(
    State(state): State<WebState>,
    principal: Principal,
    Path(user): Path<String>,
) -> Result<StatusCode, ApiError> {
    remove_user(&state, &principal, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes the user named `user` with its data; the instance it was in.
pub(crate) async fn remove_user(
    state: &WebState,
    principal: &Principal,
    user: &str,
) -> Result<kalsync_store::InstanceId, ApiError> {
    let (found, company) = visible_user(state, principal, user).await?;
    principal.manages(company, "user")?;
    state.store.remove_user(found.id).await?;
    audit(
        state,
        principal,
        Some(company),
        "user.removed",
        serde_json::json!({"user": found.id, "instance": found.instance}),
    )
    .await?;
    Ok(found.instance)
}

/// The user named in a path and its company, if the principal may see it.
pub(crate) async fn visible_user(
    state: &WebState,
    principal: &Principal,
    user: &str,
) -> Result<(User, kalsync_store::CompanyId), ApiError> {
    let id: UserId = path_id(user, "user")?;
    let found = state.store.user(id).await?;
    let instance = state.store.instance(found.instance).await?;
    principal.sees(instance.company, &format!("user {user}"))?;
    Ok((found, instance.company))
}
