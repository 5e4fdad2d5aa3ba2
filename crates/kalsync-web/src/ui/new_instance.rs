//! An instance's forms: a new one — Microsoft 365 (connected with the operator's app, or
//! an Entra ID app's tenant, id and secret) or on-premises Exchange (the EWS address and
//! service account), for which the page shows the PowerShell the Exchange admin runs for
//! the chosen version and access, as `kalsync setup exchange` prints it — and an existing
//! one's settings: name, on/off, source (secrets kept unless replaced), removal.

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
use crate::api::instances::{
    InstanceChange, NewInstanceInput, SourceInput, change_instance, create_instance,
    remove_instance, visible_instance,
};
use crate::error::ApiError;
use kalsync_store::{Instance, SourceConfig};

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
    /// A mailbox to test the connection with as soon as the instance is made.
    #[serde(default)]
    mailbox: String,
    /// Exchange cannot reach the service: changes are asked for (`on` when ticked).
    #[serde(default)]
    pull: Option<String>,
    /// The settings page's on/off checkbox (`on` when ticked).
    #[serde(default)]
    active: Option<String>,
}

/// A refused form's error in the page's language.
fn said(viewer: &Viewer, e: &ApiError) -> String {
    match e {
        ApiError::Invalid { field, message } => {
            i18n::field_problem(i18n::texts(viewer.lang), viewer.lang, field, message)
        }
        other => other.to_string(),
    }
}

impl NewForm {
    /// The Exchange version and access chosen, or the defaults.
    fn version_and_access(&self) -> (&str, &str) {
        fn or<'a>(v: &'a str, default: &'static str) -> &'a str {
            if v.is_empty() { default } else { v }
        }
        (or(&self.version, "2016"), or(&self.access, "impersonation"))
    }

    /// The source the fields describe (options the form does not show are kept by the
    /// change itself).
    /// The source as the form gives it; an Exchange instance's other options (`kept`,
    /// set in the settings file) stay as they are, the form sets only `pull`.
    pub(super) fn source_input(&self, kept: Option<&SourceConfig>) -> SourceInput {
        if self.kind == "ews" {
            let pull = self.pull.is_some();
            let options = match kept {
                Some(SourceConfig::Ews { options, .. }) => Some(kalsync_store::EwsOptions {
                    pull,
                    ..options.clone()
                }),
                _ => pull.then(|| kalsync_store::EwsOptions {
                    pull,
                    ..Default::default()
                }),
            };
            SourceInput::Ews {
                url: self.url.clone(),
                username: self.username.clone(),
                password: secret(&self.password),
                auth: Some(self.auth.clone()).filter(|a| !a.is_empty()),
                version: Some(self.version.clone()).filter(|v| !v.is_empty()),
                access: Some(self.access.clone()).filter(|a| !a.is_empty()),
                options,
            }
        } else {
            SourceInput::Graph {
                tenant: self.tenant.clone(),
                client_id: self.client_id.clone(),
                client_secret: secret(&self.client_secret),
                graph_url: Some(self.graph_url.clone()).filter(|u| !u.trim().is_empty()),
                login_url: Some(self.login_url.clone()).filter(|u| !u.trim().is_empty()),
            }
        }
    }
}

/// The PowerShell for an Exchange version and access, or why not.
fn powershell(version: &str, access: &str, account: &str) -> Result<String, String> {
    let product = kalsync_ews::setup::Product::from(kalsync_ews::Version::parse(version)?);
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

/// The source's fields: of both kinds, or only of `only` (`graph`, `ews`); secrets are
/// never pre-filled.
pub(super) fn source_fields(t: &i18n::Texts, form: &NewForm, only: Option<&str>) -> Markup {
    let graph = only.is_none_or(|k| k == "graph");
    let ews = only.is_none_or(|k| k == "ews");
    let (version, access) = form.version_and_access();
    html! {
        div.forms {
        @if graph { fieldset.card.for-graph {
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
        } }
        @if ews { fieldset.card.for-ews {
            legend { (t.exchange_on_premises) }
            label for="url" { (t.ews_address) }
            input #url type="text" name="url" value=(form.url) placeholder="https://mail.example.se/EWS/Exchange.asmx";
            label for="username" { (t.service_account) }
            input #username type="text" name="username" value=(form.username) placeholder="CORP\\svc-kalsync";
            label for="password" { (t.password) }
            input #password type="password" name="password" autocomplete="off";
            label for="auth" { (t.sign_in_method) }
            select #auth name="auth" {
                @for a in ["ntlm", "basic", "oauth"] { option value=(a) selected[form.auth == a] { (a) } }
            }
            label for="version" { (t.version) }
            select #version name="version" {
                @let years = ["2007", "2010", "2013", "2016", "2019", "se"];
                @if !years.contains(&version) { option value=(version) selected { (version) } }
                @for v in years { option value=(v) selected[version == v] { (v) } }
            }
            label for="access" { (t.access) }
            select #access name="access" {
                option value="impersonation" selected[access == "impersonation"] { "ApplicationImpersonation" }
                                option value="delegate" selected[access == "delegate"] { "Reviewer (delegate)" }
            }
            label.check { input #pull type="checkbox" name="pull" value="on" checked[form.pull.is_some()]; " " (t.pull_option) }
        } }
    }
    }
}

fn form_page(
    viewer: &Viewer,
    company: &str,
    form: &NewForm,
    error: Option<&str>,
    connect: bool,
) -> Markup {
    let t = i18n::texts(viewer.lang);
    let csrf = viewer.principal.csrf();
    let ews = form.kind == "ews";
    let (version, access) = form.version_and_access();
    page(
        t,
        t.new_instance,
        Some(&viewer.principal),
        &format!("/companies/{company}/instances/new"),
        html! {
                        h1 { (t.new_instance) }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            @if connect {
                form.card.for-graph #connect method="post" action={ "/companies/" (company) "/connect-microsoft365" } {
                    h2 { (t.connect_m365) }
                    p.muted { (t.connect_intro) }
                    input type="hidden" name="csrf" value=(csrf);
                    label for="connect-name" { (t.name) }
                    input #connect-name type="text" name="name" value=(form.name) required;
                    button type="submit" { (t.connect_m365) " →" }
                }
                h2.for-graph { (t.own_app) }
            }
            form method="post" action={ "/companies/" (company) "/instances/new" } {
                input type="hidden" name="csrf" value=(csrf);
                label for="name" { (t.name) }
                input #name type="text" name="name" value=(form.name) required;
                fieldset {
                    legend { (t.source) }
                    label { input type="radio" name="kind" value="graph" checked[!ews]; " Microsoft 365 (Graph)" }
                    label { input type="radio" name="kind" value="ews" checked[ews]; " " (t.exchange_on_premises) " (EWS)" }
                }
                (source_fields(t, form, None))
                label for="test-mailbox" { (t.test_on_create) }
                input #test-mailbox type="email" name="mailbox" value=(form.mailbox);
                button type="submit" { (t.create) }
            }
            // Only the chosen kind's fields and help show (the radio above decides, no
            // script needed); the other kind's stay in the form, unused.
            section.for-ews {
                h2 { (t.exchange_setup) }
                p.muted { (t.exchange_setup_intro) }
                @match powershell(version, access, &form.username) {
                    Ok(script) => pre.code #powershell tabindex="0" aria-live="polite" { (script) },
                    Err(e) => p.error { (e) },
                }
            }
            script { (maud::PreEscaped(FOLLOW_POWERSHELL)) }
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
    if let Err(e) = managed_company(&state, &viewer, &company).await {
        return e.into_response();
    }
    let form = NewForm {
        kind: kind.kind.unwrap_or_default(),
        ..NewForm::default()
    };
    form_page(&viewer, &company, &form, None, state.microsoft365.is_some()).into_response()
}

/// The company named in a path, if the viewer may make its instances.
async fn managed_company(
    state: &WebState,
    viewer: &Viewer,
    company: &str,
) -> Result<kalsync_store::CompanyId, ApiError> {
    let id = visible(state, &viewer.principal, company).await?;
    viewer.principal.manages(id, "company")?;
    Ok(id)
}

/// What the PowerShell is asked for.
#[derive(Debug, Deserialize)]
pub(crate) struct ScriptFor {
    #[serde(default)]
    version: String,
    #[serde(default)]
    access: String,
    #[serde(default)]
    username: String,
}

/// The PowerShell for the version, access and account chosen on the page (the page's
/// script asks when one changes), as plain text; or why not (422).
pub(crate) async fn show_powershell(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(company): Path<String>,
    Query(asked): Query<ScriptFor>,
) -> Response {
    if let Err(e) = managed_company(&state, &viewer, &company).await {
        return e.into_response();
    }
    match powershell(&asked.version, &asked.access, &asked.username) {
        Ok(script) => script.into_response(),
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, e).into_response(),
    }
}

/// Keeps the page's PowerShell in step with the version, access and account chosen.
const FOLLOW_POWERSHELL: &str = "(function(){
var shown=document.getElementById('powershell');if(!shown){return;}
var base=location.pathname.replace(/\\/$/,'')+'/powershell';var timer;
function redo(){clearTimeout(timer);timer=setTimeout(function(){
var q=new URLSearchParams();['version','access','username'].forEach(function(n){var f=document.getElementById(n);if(f){q.set(n,f.value);}});
fetch(base+'?'+q.toString(),{credentials:'same-origin'}).then(function(r){return r.ok?r.text():null;}).then(function(t){if(t!==null){shown.textContent=t;}});},250);}
['version','access'].forEach(function(n){var f=document.getElementById(n);if(f){f.addEventListener('change',redo);}});
var u=document.getElementById('username');if(u){u.addEventListener('input',redo);}
})();";

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
    let source = form.source_input(None);
    let input = NewInstanceInput {
        name: form.name.clone(),
        source,
        settings: None,
    };
    match create_instance(&state, &viewer.principal, id, input).await {
        // Tested at once when a mailbox was named: the page says whether it works.
        Ok(instance) if !form.mailbox.trim().is_empty() => {
            super::people::made_and_checked(&state, &viewer, &instance, &form.mailbox).await
        }
        Ok(instance) => Redirect::to(&format!("/instances/{}", instance.id)).into_response(),
        Err(e @ ApiError::Invalid { .. }) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            form_page(
                &viewer,
                &company,
                &form,
                Some(&said(&viewer, &e)),
                state.microsoft365.is_some(),
            ),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

impl NewForm {
    /// The form as an existing instance fills it (no secrets).
    fn of(instance: &Instance) -> NewForm {
        let mut form = NewForm {
            name: instance.name.clone(),
            active: instance.active.then(|| "on".to_owned()),
            ..NewForm::default()
        };
        match &instance.source {
            SourceConfig::Graph {
                tenant,
                client_id,
                graph_url,
                login_url,
                ..
            } => {
                form.kind = "graph".into();
                form.tenant = tenant.clone();
                form.client_id = client_id.clone();
                form.graph_url = graph_url.clone().unwrap_or_default();
                form.login_url = login_url.clone().unwrap_or_default();
            }
            SourceConfig::Ews {
                url,
                username,
                auth,
                version,
                access,
                options,
                ..
            } => {
                form.kind = "ews".into();
                form.pull = options.pull.then(|| "on".to_owned());
                form.url = url.clone();
                form.username = username.clone();
                form.auth = auth.as_str().into();
                form.version = version.year().unwrap_or(version.as_str()).into();
                form.access = access.as_str().into();
            }
        }
        form
    }
}

fn settings_page(
    viewer: &Viewer,
    company: &str,
    access: &Markup,
    instance: &Instance,
    form: &NewForm,
    error: Option<&str>,
    saved: bool,
) -> Markup {
    let t = i18n::texts(viewer.lang);
    let csrf = viewer.principal.csrf();
    let path = format!("/instances/{}/settings", instance.id);
    page(
        t,
        t.settings,
        Some(&viewer.principal),
        &path,
        html! {
            (super::instance_head(t, company, instance, super::InstanceTab::Connection, true))
            @if let Some(e) = error { p.error role="alert" { (e) } }
            @if saved { p.available role="status" { (t.saved) } }
            (access)
            p.muted { (t.settings_intro) }
            form #settings method="post" action=(path) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="kind" value=(form.kind);
                label for="name" { (t.name) }
                input #name type="text" name="name" value=(form.name) required;
                label { input #active type="checkbox" name="active" value="on" checked[form.active.is_some()]; " " (t.instance_on) }
                (source_fields(t, form, Some(&form.kind)))
                button type="submit" { (t.save) }
            }
            form.card #remove-instance method="post" action={ "/instances/" (instance.id) "/remove" } {
                h2 { (t.remove_instance) }
                p { (t.remove_instance_what) }
                input type="hidden" name="csrf" value=(csrf);
                button.danger type="submit" { (t.remove_instance) "…" }
            }
        },
    )
}

/// What the instance may read, when that was last shown to work, how to withdraw it,
/// and the connection test — the *Anslutning* tab's first card.
async fn access(state: &WebState, viewer: &Viewer, instance: &Instance) -> Markup {
    let t = i18n::texts(viewer.lang);
    let users = state.store.users(instance.id).await.unwrap_or_default();
    let verified = users
        .iter()
        .filter(|u| u.last_error.is_none())
        .filter_map(|u| u.last_sync)
        .max();
    let zone = instance.settings.time_zone.tz().clone();
    html! {
        section.card #access {
            h2 { (t.access_title) }
            @match &instance.source {
                SourceConfig::Graph { .. } => {
                    p { (t.access_graph) }
                    p.muted { (t.withdraw_graph) }
                }
                SourceConfig::Ews { username, access, .. } => {
                    p {
                        (t.access_ews_account) " " strong.code { (username) } " "
                        @if *access == kalsync_ews::Access::Delegate { (t.access_ews_delegate) } @else { (t.access_ews_impersonation) }
                    }
                    p.muted { (t.withdraw_ews) }
                }
            }
            p {
                (t.last_verified) ": "
                @match verified {
                    Some(at) => (i18n::moment(viewer.lang, at, jiff::Timestamp::now(), &zone)),
                    None => span.pill.warn { (t.not_read_yet) },
                }
            }
            form.inline method="post" action={ "/instances/" (instance.id) "/check" } {
                input type="hidden" name="csrf" value=(viewer.principal.csrf());
                button type="submit" { (t.test_connection) }
            }
        }
    }
}

/// The settings page of an instance the viewer manages.
async fn managed(state: &WebState, viewer: &Viewer, instance: &str) -> Result<Instance, ApiError> {
    let found = visible_instance(state, &viewer.principal, instance).await?;
    viewer.principal.manages(found.company, "instance")?;
    Ok(found)
}

pub(crate) async fn settings(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(instance): Path<String>,
) -> Response {
    match managed(&state, &viewer, &instance).await {
        Ok(found) => settings_page(
            &viewer,
            &super::company_name(&state, found.company).await,
            &access(&state, &viewer, &found).await,
            &found,
            &NewForm::of(&found),
            None,
            false,
        )
        .into_response(),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn save_settings(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(instance): Path<String>,
    Form(mut form): Form<NewForm>,
) -> Response {
    if let Err(e) = viewer.check_form(&headers, &form.csrf) {
        return e.into_response();
    }
    let found = match managed(&state, &viewer, &instance).await {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    // The kind stays the instance's own.
    form.kind = found.source.kind().to_owned();
    let change = InstanceChange {
        name: Some(form.name.clone()),
        active: Some(form.active.is_some()),
        source: Some(form.source_input(Some(&found.source))),
        settings: None,
    };
    match change_instance(&state, &viewer.principal, found.clone(), change).await {
        Ok(changed) => settings_page(
            &viewer,
            &super::company_name(&state, changed.company).await,
            &access(&state, &viewer, &changed).await,
            &changed,
            &NewForm::of(&changed),
            None,
            true,
        )
        .into_response(),
        Err(e @ ApiError::Invalid { .. }) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            settings_page(
                &viewer,
                &super::company_name(&state, found.company).await,
                &access(&state, &viewer, &found).await,
                &found,
                &form,
                Some(&said(&viewer, &e)),
                false,
            ),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// The removal form; without `confirm=yes` it asks first.
#[derive(Debug, Deserialize)]
pub(crate) struct RemoveForm {
    csrf: String,
    #[serde(default)]
    confirm: Option<String>,
}

pub(crate) async fn remove(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(instance): Path<String>,
    Form(form): Form<RemoveForm>,
) -> Response {
    if let Err(e) = viewer.check_form(&headers, &form.csrf) {
        return e.into_response();
    }
    let found = match managed(&state, &viewer, &instance).await {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    if form.confirm.as_deref() != Some("yes") {
        let t = i18n::texts(viewer.lang);
        let users = state.store.users(found.id).await.map_or(0, |u| u.len());
        let what = match viewer.lang {
            kalsync_core::Lang::Sv => format!("{} ({users} användare)", found.name),
            kalsync_core::Lang::En => format!("{} ({users} users)", found.name),
        };
        return super::confirm_removal(
            t,
            &viewer.principal,
            &what,
            t.remove_instance_what,
            &format!("/instances/{}/remove", found.id),
            &format!("/instances/{}/settings", found.id),
        )
        .into_response();
    }
    match remove_instance(&state, &viewer.principal, &found).await {
        Ok(()) => Redirect::to("/").into_response(),
        Err(e) => e.into_response(),
    }
}
