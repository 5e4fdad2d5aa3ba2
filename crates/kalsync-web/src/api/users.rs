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
/// What is wrong with a user as given (a form, an API call, a CSV row), in words for
/// either language: the API answers in English, the pages in the page's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UserProblem {
    /// Not an e-mail address.
    Email(String),
    /// A name over 200 characters.
    NameTooLong,
    /// Not an extension.
    Extension(String),
    /// Another user of the company has that extension (two phones cannot have one).
    ExtensionTaken {
        /// The extension.
        extension: String,
        /// Whose it is (name or e-mail).
        by: String,
    },
    /// The mailbox is a user of the instance already.
    EmailTaken(String),
    /// A CSV line that is not CSV.
    NotCsv(String),
    /// A CSV line with more than three columns.
    Columns(usize),
    /// The mailbox is a user already, with another extension than the one given.
    ExistsWithOtherExtension {
        /// The extension it has.
        has: String,
        /// The extension given.
        given: String,
    },
    /// Only the directory adds users to this instance (*directory only*).
    DirectoryOnly,
    /// The company's PBX directory has no subscription for the mailbox.
    NotInPbx(String),
    /// The PBX has another extension for the mailbox than the one given.
    PbxExtension {
        /// The PBX's.
        pbx: String,
        /// The one given.
        given: String,
    },
}

impl UserProblem {
    /// The field at fault.
    pub(crate) fn field(&self) -> &'static str {
        match self {
            UserProblem::Email(_) | UserProblem::EmailTaken(_) => "email",
            UserProblem::NameTooLong => "display_name",
            UserProblem::NotCsv(_) | UserProblem::Columns(_) => "line",
            UserProblem::DirectoryOnly | UserProblem::NotInPbx(_) => "email",
            UserProblem::PbxExtension { .. } => "extension",
            UserProblem::Extension(_)
            | UserProblem::ExtensionTaken { .. }
            | UserProblem::ExistsWithOtherExtension { .. } => "extension",
        }
    }

    /// What is wrong, in `lang`.
    pub(crate) fn say(&self, lang: kalsync_core::Lang) -> String {
        use kalsync_core::Lang::{En, Sv};
        match (self, lang) {
            (UserProblem::Email(why), En) => why.clone(),
            (UserProblem::Email(_), Sv) => {
                "Det är ingen giltig e-postadress (till exempel anna@foretag.se).".into()
            }
            (UserProblem::NameTooLong, En) => "at most 200 characters".into(),
            (UserProblem::NameTooLong, Sv) => "Namnet får vara högst 200 tecken.".into(),
            (UserProblem::Extension(given), En) => format!(
                "`{given}` is not an extension (expected 2–20 digits, optionally with a leading +)"
            ),
            (UserProblem::Extension(given), Sv) => {
                format!("”{given}” är ingen anknytning: 2–20 siffror, gärna med + först.")
            }
            (UserProblem::ExtensionTaken { extension, by }, En) => {
                format!("extension {extension} is already {by}'s in this company")
            }
            (UserProblem::ExtensionTaken { extension, by }, Sv) => {
                format!("Anknytning {extension} har redan {by} i företaget.")
            }
            (UserProblem::EmailTaken(email), En) => {
                format!("{email} is already a user of this instance")
            }
            (UserProblem::EmailTaken(email), Sv) => {
                format!("{email} är redan användare i instansen.")
            }
            (UserProblem::NotCsv(why), En) => format!("not CSV: {why}"),
            (UserProblem::NotCsv(_), Sv) => "Raden är inte CSV (e-post,namn,anknytning).".into(),
            (UserProblem::Columns(n), En) => format!("{n} columns; expected email,name,extension"),
            (UserProblem::Columns(n), Sv) => {
                format!("{n} kolumner; väntade e-post,namn,anknytning.")
            }
            (UserProblem::ExistsWithOtherExtension { has, given }, En) => format!(
                "already a user, with extension {has} (this row says {given}; change it on the user's page)"
            ),
            (UserProblem::ExistsWithOtherExtension { has, given }, Sv) => format!(
                "Finns redan, med anknytning {has} (raden säger {given}; ändra på användarens sida)."
            ),
            (UserProblem::DirectoryOnly, En) => "only the directory adds users to this instance (its directory is set to \"directory only\"); add the person to the directory's group".into(),
            (UserProblem::DirectoryOnly, Sv) => "Bara katalogen lägger till användare i den här instansen (katalogen är inställd på ”endast katalogen”). Lägg till personen i katalogens grupp.".into(),
            (UserProblem::NotInPbx(email), En) => format!("the PBX has no subscription for {email}: only people with one may be added (the company's PBX directory)"),
            (UserProblem::NotInPbx(email), Sv) => format!("Växeln har inget abonnemang för {email}: bara personer med ett abonnemang kan läggas till (företagets växelkatalog)."),
            (UserProblem::PbxExtension { pbx, given }, En) => format!("the PBX has extension {pbx} for this mailbox, not {given}; leave the extension empty to take the PBX's"),
            (UserProblem::PbxExtension { pbx, given }, Sv) => format!("Växeln har anknytning {pbx} för den här adressen, inte {given}. Lämna anknytningen tom så används växelns."),
        }
    }

    /// The API's answer.
    pub(crate) fn api_error(&self) -> ApiError {
        match self {
            UserProblem::EmailTaken(_) => ApiError::Conflict(self.say(kalsync_core::Lang::En)),
            other => ApiError::invalid(other.field(), other.say(kalsync_core::Lang::En)),
        }
    }
}

/// The extensions the company's users have, and whose (name, else e-mail).
async fn extensions_of(
    state: &WebState,
    company: kalsync_store::CompanyId,
) -> Result<std::collections::HashMap<String, String>, ApiError> {
    let mut taken = std::collections::HashMap::new();
    for instance in state.store.instances(company).await? {
        for user in state.store.users(instance.id).await? {
            if let Some(x) = &user.extension {
                let who = user
                    .display_name
                    .clone()
                    .unwrap_or_else(|| user.email.to_string());
                taken.insert(x.as_str().to_owned(), who);
            }
        }
    }
    Ok(taken)
}

/// The company's PBX directory, when it has one (then only people on it may be added).
async fn pbx_of(
    state: &WebState,
    company: kalsync_store::CompanyId,
) -> Result<Option<kalsync_directory::PbxList>, ApiError> {
    Ok(state.store.pbx_directory(company).await?.map(|p| p.list))
}

/// Checks `new` against the PBX's subscriptions, if the company has a PBX directory:
/// someone not on it is refused; one without an extension takes the PBX's.
fn pbx_checked(
    pbx: Option<&kalsync_directory::PbxList>,
    new: &mut NewUser,
) -> Result<(), UserProblem> {
    let Some(list) = pbx else {
        return Ok(());
    };
    let known = list
        .get(&new.email)
        .ok_or_else(|| UserProblem::NotInPbx(new.email.to_string()))?;
    match &new.extension {
        None => new.extension = Some(known.extension.clone()),
        Some(given) if given != &known.extension => {
            return Err(UserProblem::PbxExtension {
                pbx: known.extension.to_string(),
                given: given.to_string(),
            });
        }
        Some(_) => {}
    }
    if new.display_name.is_none() {
        new.display_name = known.name.clone();
    }
    Ok(())
}

fn checked(
    instance: kalsync_store::InstanceId,
    email: &str,
    name: Option<&str>,
    extension: Option<&str>,
) -> Result<NewUser, UserProblem> {
    let email = EmailAddress::parse(email.trim()).map_err(UserProblem::Email)?;
    let display_name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| {
            if n.chars().count() > 200 {
                Err(UserProblem::NameTooLong)
            } else {
                Ok(n.to_owned())
            }
        })
        .transpose()?;
    let extension = extension
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| Extension::parse(x).map_err(|_| UserProblem::Extension(x.to_owned())))
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
) -> Result<User, AddError> {
    principal.manages(found.company, "instance")?;
    let mut new = checked(found.id, email, name, extension).map_err(AddError::Problem)?;
    pbx_checked(pbx_of(state, found.company).await?.as_ref(), &mut new)
        .map_err(AddError::Problem)?;
    if state.store.directory(found.id).await?.is_some_and(|d| {
        d.settings.enabled && d.settings.manual == kalsync_directory::ManualUsers::Refuse
    }) {
        return Err(AddError::Problem(UserProblem::DirectoryOnly));
    }
    if let Some(x) = &new.extension
        && let Some(by) = extensions_of(state, found.company)
            .await?
            .remove(x.as_str())
    {
        return Err(AddError::Problem(UserProblem::ExtensionTaken {
            extension: x.as_str().to_owned(),
            by,
        }));
    }
    let email = new.email.to_string();
    let user = state.store.add_user(new).await.map_err(|e| match e {
        StoreError::Conflict(_) => AddError::Problem(UserProblem::EmailTaken(email.clone())),
        other => AddError::Api(other.into()),
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

/// Whether only the instance's directory adds users to it (*directory only*, turned on).
async fn directory_only(
    state: &WebState,
    found: &kalsync_store::Instance,
) -> Result<bool, ApiError> {
    Ok(state.store.directory(found.id).await?.is_some_and(|d| {
        d.settings.enabled && d.settings.manual == kalsync_directory::ManualUsers::Refuse
    }))
}

/// Why a user was not added: what is wrong with it, or the service's own refusal.
#[derive(Debug)]
pub(crate) enum AddError {
    /// The user as given.
    Problem(UserProblem),
    /// Anything else (rights, the store).
    Api(ApiError),
}

impl From<ApiError> for AddError {
    fn from(e: ApiError) -> Self {
        AddError::Api(e)
    }
}

impl From<StoreError> for AddError {
    fn from(e: StoreError) -> Self {
        AddError::Api(e.into())
    }
}

impl From<AddError> for ApiError {
    fn from(e: AddError) -> Self {
        match e {
            AddError::Problem(p) => p.api_error(),
            AddError::Api(e) => e,
        }
    }
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
    /// Why, for the pages to say in their language.
    #[serde(skip)]
    pub(crate) problem: Option<UserProblem>,
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
    Ok(Json(
        import_csv(&state, &principal, &found, &body, &|_, _| {}).await?,
    ))
}

/// Adds the users of a CSV text to `found`, reporting every row.
pub(crate) async fn import_csv(
    state: &WebState,
    principal: &Principal,
    found: &kalsync_store::Instance,
    body: &str,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<ImportReport, ApiError> {
    principal.manages(found.company, "instance")?;
    if directory_only(state, found).await? {
        return Err(UserProblem::DirectoryOnly.api_error());
    }
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
    // What the company's users have already: an extension is one phone's, and a row
    // for a mailbox already here is checked against it.
    let mut taken = extensions_of(state, found.company).await?;
    let pbx = pbx_of(state, found.company).await?;
    let here: std::collections::HashMap<String, Option<String>> = state
        .store
        .users(found.id)
        .await?
        .into_iter()
        .map(|u| {
            (
                u.email.to_string(),
                u.extension.map(|x| x.as_str().to_owned()),
            )
        })
        .collect();
    let total = records.len() as u64;
    for (index, record) in records.into_iter().enumerate() {
        progress(index as u64, total);
        let line = record
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map_or(index as u64 + 1, |p| p.line());
        let failed = |email: String, problem: UserProblem| ImportRow {
            line,
            email,
            outcome: "error".into(),
            field: Some(problem.field().to_owned()),
            message: Some(problem.say(kalsync_core::Lang::En)),
            problem: Some(problem),
        };
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                report.errors += 1;
                report
                    .rows
                    .push(failed(String::new(), UserProblem::NotCsv(e.to_string())));
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
        let row = |outcome: &str| ImportRow {
            line,
            email: email.clone(),
            outcome: outcome.into(),
            field: None,
            message: None,
            problem: None,
        };
        if record.len() > 3 {
            report.errors += 1;
            report
                .rows
                .push(failed(email.clone(), UserProblem::Columns(record.len())));
            continue;
        }
        let mut new = match checked(found.id, &email, record.get(1), record.get(2)) {
            Ok(n) => n,
            Err(problem) => {
                report.errors += 1;
                report.rows.push(failed(email.clone(), problem));
                continue;
            }
        };
        let given = new.extension.as_ref().map(|x| x.as_str().to_owned());
        if let Some(has) = here.get(new.email.as_str()) {
            match (has, &given) {
                (Some(has), Some(given)) if has != given => {
                    report.errors += 1;
                    let problem = UserProblem::ExistsWithOtherExtension {
                        has: has.clone(),
                        given: given.clone(),
                    };
                    report.rows.push(failed(email.clone(), problem));
                }
                _ => {
                    report.existing += 1;
                    report.rows.push(row("exists"));
                }
            }
            continue;
        }
        if let Err(problem) = pbx_checked(pbx.as_ref(), &mut new) {
            report.errors += 1;
            report.rows.push(failed(email.clone(), problem));
            continue;
        }
        let given = new.extension.as_ref().map(|x| x.as_str().to_owned());
        if let Some(x) = &given
            && let Some(by) = taken.get(x)
        {
            report.errors += 1;
            let problem = UserProblem::ExtensionTaken {
                extension: x.clone(),
                by: by.clone(),
            };
            report.rows.push(failed(email.clone(), problem));
            continue;
        }
        let who = new
            .display_name
            .clone()
            .unwrap_or_else(|| new.email.to_string());
        match state.store.add_user(new).await {
            Ok(user) => {
                report.added += 1;
                report.rows.push(row("added"));
                if let Some(x) = given {
                    taken.insert(x, who);
                }
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
                report.rows.push(row("exists"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    progress(total, total);
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
