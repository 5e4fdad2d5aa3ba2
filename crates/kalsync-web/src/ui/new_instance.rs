//! A new instance, from the UI: Microsoft 365 (an Entra ID app's tenant, id and secret)
//! or on-premises Exchange (the EWS address and service account). For Exchange, the page
//! first shows the PowerShell the Exchange admin runs for the chosen version and access,
//! as `kalsync setup exchange` prints it.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use secrecy::SecretString;
use serde::Deserialize;

use super::i18n;
use super::{Viewer, page};
use crate::WebState;
use crate::api::companies::visible;
use crate::api::instances::{NewInstanceInput, SourceInput, create_instance};
use crate::error::ApiError;

/// The form (fields of both kinds; the chosen `kind` decides which count).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct NewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    graph_url: String,
    #[serde(default)]
    login_url: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    auth: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    access: String,
}

/// The PowerShell for an Exchange version and access, or why not.
fn powershell(version: &str, access: &str, account: &str) -> Result<String, String> {
    let product = kalsync_ews::setup::Product::parse(version)?;
    let access = match access {
        "delegate" => kalsync_ews::Access::Delegate,
        _ => kalsync_ews::Access::Impersonation,
    };
    let account = account
        .rsplit('\\')
        .next()
        .and_then(|a| a.split('@').next())
        .filter(|a| !a.is_empty())
        .unwrap_or("svc-kalsync");
    Ok(kalsync_ews::setup::powershell(&kalsync_ews::setup::Setup {
        product,
        account,
        access,
        group: None,
    }))
}

fn form_page(viewer: &Viewer, company: &str, form: &NewForm, error: Option<&str>) -> Markup {
    let t = i18n::texts(viewer.lang);
    let csrf = viewer.principal.csrf();
    let ews = form.kind == "ews";
    let version = if form.version.is_empty() {
        "2016"
    } else {
        form.version.as_str()
    };
    let access = if form.access.is_empty() {
        "impersonation"
    } else {
        form.access.as_str()
    };
    page(
        t,
        t.new_instance,
        Some(&viewer.principal),
        &format!("/companies/{company}/instances/new"),
        html! {
            h1 { (t.new_instance) }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action={ "/companies/" (company) "/instances/new" } {
                input type="hidden" name="csrf" value=(csrf);
                label for="name" { (t.name) }
                input #name type="text" name="name" value=(form.name) required;
                fieldset {
                    legend { (t.source) }
                    label { input type="radio" name="kind" value="graph" checked[!ews]; " Microsoft 365 (Graph)" }
                    label { input type="radio" name="kind" value="ews" checked[ews]; " " (t.exchange_on_premises) " (EWS)" }
                }
                div.forms {
                    fieldset.card {
                        legend { "Microsoft 365" }
                        label for="tenant" { (t.tenant) }
                        input #tenant type="text" name="tenant" value=(form.tenant);
                        label for="client_id" { (t.client_id) }
                        input #client_id type="text" name="client_id" value=(form.client_id);
                        label for="client_secret" { (t.client_secret) }
                                                input #client_secret type="password" name="client_secret" autocomplete="off";
                        details open[!form.graph_url.is_empty() || !form.login_url.is_empty()] {
                            summary { (t.other_cloud) }
                            label for="graph_url" { (t.graph_url) }
                            input #graph_url type="text" name="graph_url" value=(form.graph_url) placeholder="https://graph.microsoft.com/v1.0/";
                            label for="login_url" { (t.login_url) }
                            input #login_url type="text" name="login_url" value=(form.login_url) placeholder="https://login.microsoftonline.com/";
                        }
                    }
                    fieldset.card {
                        legend { (t.exchange_on_premises) }
                        label for="url" { (t.ews_address) }
                        input #url type="text" name="url" value=(form.url) placeholder="https://mail.example.se/EWS/Exchange.asmx";
                        label for="username" { (t.service_account) }
                        input #username type="text" name="username" value=(form.username) placeholder="CORP\\svc-kalsync";
                        label for="password" { (t.password) }
                        input #password type="password" name="password" autocomplete="off";
                        label for="auth" { (t.sign_in_method) }
                        select #auth name="auth" {
                            @for a in ["ntlm", "basic"] { option value=(a) selected[form.auth == a] { (a) } }
                        }
                        label for="version" { (t.version) }
                        select #version name="version" {
                            @for v in ["2007", "2010", "2013", "2016", "2019", "se"] { option value=(v) selected[version == v] { (v) } }
                        }
                        label for="access" { (t.access) }
                        select #access name="access" {
                            option value="impersonation" selected[access == "impersonation"] { "ApplicationImpersonation" }
                            option value="delegate" selected[access == "delegate"] { "Reviewer (delegate)" }
                        }
                    }
                }
                button type="submit" { (t.create) }
            }
            @if ews {
                h2 { (t.exchange_setup) }
                p.muted { (t.exchange_setup_intro) }
                @match powershell(version, access, &form.username) {
                    Ok(script) => pre.code #powershell { (script) },
                    Err(e) => p.error { (e) },
                }
            }
        },
    )
}

/// Which kind to show first.
#[derive(Debug, Deserialize)]
pub(crate) struct Kind {
    kind: Option<String>,
}

pub(crate) async fn show(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(company): Path<String>,
    Query(kind): Query<Kind>,
) -> Response {
    let id = match visible(&state, &viewer.principal, &company).await {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = viewer.principal.manages(id, "company") {
        return e.into_response();
    }
    let form = NewForm {
        kind: kind.kind.unwrap_or_default(),
        ..NewForm::default()
    };
    form_page(&viewer, &company, &form, None).into_response()
}

fn secret(text: &str) -> Option<SecretString> {
    (!text.is_empty()).then(|| SecretString::from(text.to_owned()))
}

pub(crate) async fn create(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(company): Path<String>,
    Form(form): Form<NewForm>,
) -> Response {
    if let Err(e) = viewer.check_form(&headers, &form.csrf) {
        return e.into_response();
    }
    let id = match visible(&state, &viewer.principal, &company).await {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let source = if form.kind == "ews" {
        SourceInput::Ews {
            url: form.url.clone(),
            username: form.username.clone(),
            password: secret(&form.password),
            auth: Some(form.auth.clone()).filter(|a| !a.is_empty()),
            version: Some(form.version.clone()).filter(|v| !v.is_empty()),
            access: Some(form.access.clone()).filter(|a| !a.is_empty()),
            options: None,
        }
    } else {
        SourceInput::Graph {
            tenant: form.tenant.clone(),
            client_id: form.client_id.clone(),
            client_secret: secret(&form.client_secret),
            graph_url: Some(form.graph_url.clone()).filter(|u| !u.trim().is_empty()),
            login_url: Some(form.login_url.clone()).filter(|u| !u.trim().is_empty()),
        }
    };
    let input = NewInstanceInput {
        name: form.name.clone(),
        source,
        settings: None,
    };
    match create_instance(&state, &viewer.principal, id, input).await {
        Ok(instance) => Redirect::to(&format!("/instances/{}", instance.id)).into_response(),
        Err(e @ ApiError::Invalid { .. }) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            form_page(&viewer, &company, &form, Some(&e.to_string())),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}
