//! Accounts in the UI: one's own (the password changed with the current one, which ends
//! every session of the account), a company's admins and readers managed by its admins,
//! and the operator's own accounts managed by the operator — the API's rules, on pages.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kalsync_store::{CompanyId, Grant, Role};
use maud::{Markup, html};
use serde::Deserialize;

use super::i18n::{self, Texts};
use super::{Viewer, page};
use crate::WebState;
use crate::api::accounts::{change_own_password, company_grant, create_account, remove_account};
use crate::api::companies::visible;
use crate::error::ApiError;

fn role_name(t: &Texts, role: Role) -> &'static str {
    match role {
        Role::Operator => t.role_operator,
        Role::CompanyAdmin => t.role_company_admin,
        Role::Reader => t.role_reader,
    }
}

fn own_page(state: &WebState, viewer: &Viewer, error: Option<&str>) -> Markup {
    let t = i18n::texts(viewer.lang);
    let p = &viewer.principal;
    page(
        t,
        t.my_account,
        Some(p),
        "/account",
        html! {
            h1 { (t.my_account) }
            p { (p.actor) " · " (role_name(t, p.grant.role)) }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            (super::microsoft::account_section(state, t, p))
            @if p.account.as_ref().is_some_and(|a| !super::microsoft::microsoft_only(a)) {
                form.card #password method="post" action="/account/password" {
                    h2 { (t.change_password) }
                    input type="hidden" name="csrf" value=(p.csrf());
                    label for="current" { (t.current_password) }
                    input #current type="password" name="current" autocomplete="current-password" required;
                    label for="new" { (t.new_password) }
                    input #new type="password" name="new" autocomplete="new-password" minlength="10" required;
                    label for="repeat" { (t.repeat_password) }
                    input #repeat type="password" name="repeat" autocomplete="new-password" minlength="10" required;
                    button type="submit" { (t.change_password) }
                }
            }
        },
    )
}

pub(crate) async fn own(State(state): State<WebState>, viewer: Viewer) -> Response {
    own_page(&state, &viewer, None).into_response()
}

/// The password form.
#[derive(Debug, Deserialize)]
pub(crate) struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    repeat: String,
}

pub(crate) async fn change_password(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Response {
    if let Err(e) = viewer.check_form(&headers, &form.csrf) {
        return e.into_response();
    }
    let t = i18n::texts(viewer.lang);
    if form.new != form.repeat {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            own_page(&state, &viewer, Some(t.passwords_differ)),
        )
            .into_response();
    }
    match change_own_password(&state, &viewer.principal, form.current, form.new).await {
        // Every session ended, this one too: the page is a signed-out one.
        Ok(()) => page(
            t,
            t.my_account,
            None,
            "/account",
            html! {
                p.available role="status" #password-changed { (t.password_changed) }
                p { a href="/sign-in" { (t.sign_in) } }
            },
        )
        .into_response(),
        Err(e @ ApiError::Invalid { .. }) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            own_page(&state, &viewer, Some(&e.to_string())),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Whose accounts a page manages: a company's, or the operator's own.
#[derive(Clone, Copy)]
enum Scope {
    Company(CompanyId),
    Operator,
}

impl Scope {
    /// The scope a path names, if the viewer manages it.
    async fn of(
        state: &WebState,
        viewer: &Viewer,
        company: Option<&str>,
    ) -> Result<Scope, ApiError> {
        match company {
            Some(c) => {
                let id = visible(state, &viewer.principal, c).await?;
                viewer.principal.manages(id, "company")?;
                Ok(Scope::Company(id))
            }
            None => {
                viewer.principal.operator()?;
                Ok(Scope::Operator)
            }
        }
    }

    fn company(self) -> Option<CompanyId> {
        match self {
            Scope::Company(id) => Some(id),
            Scope::Operator => None,
        }
    }

    /// Whether the account is one this scope's page lists.
    fn holds(self, account: &kalsync_store::Account) -> bool {
        match self {
            Scope::Company(id) => account.grant.company == Some(id),
            Scope::Operator => account.grant.role == Role::Operator,
        }
    }

    fn path(self) -> String {
        match self {
            Scope::Company(id) => format!("/companies/{id}/accounts"),
            Scope::Operator => "/operators".into(),
        }
    }
}

/// What the last form on the page left to say.
enum Said {
    Nothing,
    Error(String),
    Added(String),
    RolesSaved,
    ReadersSaved,
}

/// What the receptionists' section says, in `lang`: its title, the choice, the button
/// and what saving said.
fn readers_words(lang: kalsync_core::Lang) -> [&'static str; 4] {
    match lang {
        kalsync_core::Lang::Sv => [
            "Receptionister",
            "Läsare (receptionister) får sätta status för hand, från telefonistvyn och personens sida",
            "Spara",
            "Sparat.",
        ],
        kalsync_core::Lang::En => [
            "Receptionists",
            "Readers (receptionists) may set a status by hand, from the switchboard and the person page",
            "Save",
            "Saved.",
        ],
    }
}

async fn list_page(
    state: &WebState,
    viewer: &Viewer,
    scope: Scope,
    said: Said,
) -> Result<Markup, ApiError> {
    let t = i18n::texts(viewer.lang);
    let accounts: Vec<_> = state
        .store
        .accounts(scope.company())
        .await?
        .into_iter()
        .filter(|a| scope.holds(a))
        .collect();
    let title = match scope {
        Scope::Company(id) => format!("{} · {}", t.accounts, state.store.company(id).await?.name),
        Scope::Operator => t.operators.to_owned(),
    };
    let csrf = viewer.principal.csrf();
    let path = scope.path();
    let own = viewer.principal.account.as_ref().map(|a| a.id);
    let readers_set_status = match scope {
        Scope::Company(id) if viewer.principal.grant.manages(id) => {
            Some(state.store.company(id).await?.readers_set_status)
        }
        _ => None,
    };
    let microsoft = match scope {
        Scope::Company(id) => {
            super::microsoft::company_section(state, t, &viewer.principal, id, &path).await?
        }
        Scope::Operator => html! {},
    };
    Ok(page(
        t,
        &title,
        Some(&viewer.principal),
        &path,
        html! {
            h1 { (title) }
            @match &said {
                Said::Nothing => {}
                Said::Error(e) => p.error role="alert" { (e) },
                Said::Added(email) => p.available role="status" { (t.account_added) " " (email) },
                Said::RolesSaved => p.available role="status" #roles-saved { (t.roles_saved) },
                Said::ReadersSaved => p.available role="status" #readers-saved { (readers_words(viewer.lang)[3]) },
            }
            table #accounts {
                thead { tr { th { (t.email) } th { (t.role) } th { (t.created) } th {} } }
                tbody { @for a in &accounts {
                    tr {
                        td { (a.email) }
                        td { (role_name(t, a.grant.role)) }
                        td { (a.created.strftime("%Y-%m-%d")) }
                        td { @if Some(a.id) != own {
                            form.inline method="post" action={ (path) "/" (a.id) "/remove" } {
                                input type="hidden" name="csrf" value=(csrf);
                                button type="submit" { (t.remove) }
                            }
                        } }
                    }
                } }
            }
            form.card #add-account method="post" action=(path) {
                h2 { (t.add_account) }
                input type="hidden" name="csrf" value=(csrf);
                label for="email" { (t.email) }
                input #email type="email" name="email" required;
                @if let Scope::Company(_) = scope {
                    label for="role" { (t.role) }
                    select #role name="role" {
                        option value="reader" { (t.role_reader) }
                        option value="company_admin" { (t.role_company_admin) }
                    }
                }
                label for="password" { (t.first_password) }
                input #password type="password" name="password" autocomplete="new-password" minlength="10" required;
                button type="submit" { (t.add_account) }
            }
            @if let Some(allowed) = readers_set_status {
                @let [title, choice, save, _] = readers_words(viewer.lang);
                form.card #readers method="post" action={ (path) "/readers" } {
                    h2 { (title) }
                    input type="hidden" name="csrf" value=(csrf);
                    label.check { input #readers-set-status type="checkbox" name="readers_set_status" value="1" checked[allowed]; " " (choice) }
                    button type="submit" { (save) }
                }
            }
            (microsoft)
        },
    ))
}

/// The receptionists' form.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct ReadersForm {
    csrf: String,
    #[serde(default)]
    readers_set_status: Option<String>,
}

/// `POST /companies/{company}/accounts/readers`: whether the company's readers may set
/// a status by hand.
pub(crate) async fn save_readers(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(company): Path<String>,
    Form(form): Form<ReadersForm>,
) -> Response {
    if let Err(e) = viewer.check_form(&headers, &form.csrf) {
        return e.into_response();
    }
    let scope = match Scope::of(&state, &viewer, Some(&company)).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let Scope::Company(id) = scope else {
        return ApiError::NotFound("company".into()).into_response();
    };
    let allowed = form.readers_set_status.is_some();
    if let Err(e) =
        crate::api::companies::set_readers_set_status(&state, &viewer.principal, id, allowed).await
    {
        return e.into_response();
    }
    answer(&state, &viewer, scope, Said::ReadersSaved).await
}

async fn answer(state: &WebState, viewer: &Viewer, scope: Scope, said: Said) -> Response {
    let status = match said {
        Said::Error(_) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    match list_page(state, viewer, scope, said).await {
        Ok(p) => (status, p).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn show(state: &WebState, viewer: &Viewer, company: Option<&str>) -> Response {
    match Scope::of(state, viewer, company).await {
        Ok(scope) => answer(state, viewer, scope, Said::Nothing).await,
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn company_accounts(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(company): Path<String>,
) -> Response {
    show(&state, &viewer, Some(&company)).await
}

pub(crate) async fn operator_accounts(State(state): State<WebState>, viewer: Viewer) -> Response {
    show(&state, &viewer, None).await
}

/// The add form.
#[derive(Debug, Deserialize)]
pub(crate) struct AddForm {
    csrf: String,
    email: String,
    #[serde(default)]
    role: String,
    password: String,
}

async fn add(
    state: &WebState,
    viewer: &Viewer,
    headers: &HeaderMap,
    company: Option<&str>,
    form: AddForm,
) -> Response {
    let scope = match async {
        viewer.check_form(headers, &form.csrf)?;
        Scope::of(state, viewer, company).await
    }
    .await
    {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let grant = match scope {
        Scope::Company(id) => company_grant(&form.role, id),
        Scope::Operator => Ok(Grant::operator()),
    };
    let made = match grant {
        Ok(grant) => {
            create_account(
                state,
                &viewer.principal,
                scope.company(),
                &form.email,
                grant,
                form.password,
            )
            .await
        }
        Err(e) => Err(e),
    };
    let said = match made {
        Ok(a) => Said::Added(a.email),
        Err(e @ (ApiError::Invalid { .. } | ApiError::Conflict(_))) => Said::Error(e.to_string()),
        Err(e) => return e.into_response(),
    };
    answer(state, viewer, scope, said).await
}

pub(crate) async fn add_company_account(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(company): Path<String>,
    Form(form): Form<AddForm>,
) -> Response {
    add(&state, &viewer, &headers, Some(&company), form).await
}

pub(crate) async fn add_operator_account(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(form): Form<AddForm>,
) -> Response {
    add(&state, &viewer, &headers, None, form).await
}

/// The remove button's form; without `confirm=yes` it asks first.
#[derive(Debug, Deserialize)]
pub(crate) struct RemoveForm {
    csrf: String,
    confirm: Option<String>,
}

async fn remove(
    state: &WebState,
    viewer: &Viewer,
    headers: &HeaderMap,
    company: Option<&str>,
    account: &str,
    form: RemoveForm,
) -> Response {
    if form.confirm.as_deref() != Some("yes") {
        let asked = async {
            viewer.check_form(headers, &form.csrf)?;
            let scope = Scope::of(state, viewer, company).await?;
            let found = state
                .store
                .accounts(scope.company())
                .await?
                .into_iter()
                .filter(|a| scope.holds(a))
                .find(|a| a.id.to_string() == account)
                .ok_or_else(|| ApiError::NotFound("account".into()))?;
            let t = i18n::texts(viewer.lang);
            let what = format!("{} ({})", found.email, role_name(t, found.grant.role));
            let path = scope.path();
            Ok::<_, ApiError>(super::confirm_removal(
                t,
                &viewer.principal,
                &what,
                t.remove_account_what,
                &format!("{path}/{account}/remove"),
                &path,
            ))
        }
        .await;
        return match asked {
            Ok(p) => p.into_response(),
            Err(e) => e.into_response(),
        };
    }
    let removed = async {
        viewer.check_form(headers, &form.csrf)?;
        let scope = Scope::of(state, viewer, company).await?;
        remove_account(state, &viewer.principal, scope.company(), account).await?;
        Ok::<_, ApiError>(scope)
    }
    .await;
    match removed {
        Ok(scope) => answer(state, viewer, scope, Said::Nothing).await,
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn remove_company_account(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path((company, account)): Path<(String, String)>,
    Form(form): Form<RemoveForm>,
) -> Response {
    remove(&state, &viewer, &headers, Some(&company), &account, form).await
}

pub(crate) async fn remove_operator_account(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(account): Path<String>,
    Form(form): Form<RemoveForm>,
) -> Response {
    remove(&state, &viewer, &headers, None, &account, form).await
}

/// `POST /companies/{company}/accounts/microsoft`: who of a proven tenant signs in as
/// what.
pub(crate) async fn save_microsoft_roles(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(company): Path<String>,
    Form(form): Form<super::microsoft::RolesForm>,
) -> Response {
    let scope = match Scope::of(&state, &viewer, Some(&company)).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let Scope::Company(id) = scope else {
        return ApiError::NotFound("company".into()).into_response();
    };
    let said = match super::microsoft::save_roles(&state, &viewer, &headers, id, form).await {
        Ok(()) => Said::RolesSaved,
        Err(e @ ApiError::Invalid { .. }) => Said::Error(e.to_string()),
        Err(e) => return e.into_response(),
    };
    answer(&state, &viewer, scope, said).await
}
