//! Instances: one integration of a company with its calendars (Microsoft 365 over Graph,
//! or on-premises Exchange over EWS), with the settings and rules of SPEC §6 as a rules
//! file. Secrets go in and are never shown again.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kalsync_core::InstanceSettings;
use kalsync_core::exchange::{Access, SignIn, Version};
use kalsync_store::{EwsOptions, GraphCredential, Instance, InstanceId, NewInstance, SourceConfig};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::companies::{audit, visible};
use super::path_id;
use crate::WebState;
use crate::auth::Principal;
use crate::error::{ApiError, Body};

/// Where an instance reads calendars. Secrets (`client_secret`, `password`) may be left
/// out when changing an instance of the same kind: the stored ones are kept while
/// everything that decides where they go stays — tenant, app, Graph and login addresses
/// (Graph); address, account, sign-in, OAuth tenant, login address, scope and trusted
/// CAs (EWS).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub(crate) enum SourceInput {
    /// Microsoft 365 through Microsoft Graph (an Entra ID app with a client secret).
    Graph {
        /// Tenant id or domain.
        tenant: String,
        /// Application (client) id.
        client_id: String,
        /// Client secret.
        #[schema(value_type = Option<String>)]
        client_secret: Option<SecretString>,
        /// Graph root for national clouds (or the simulator).
        graph_url: Option<String>,
        /// Login host for national clouds (or the simulator).
        login_url: Option<String>,
    },
    /// On-premises Exchange over EWS with a service account.
    Ews {
        /// `https://mail.corp.example/EWS/Exchange.asmx`.
        url: String,
        /// `DOMAIN\user`, `user@domain`, or the app's client id with `auth = oauth`.
        username: String,
        /// Its password (or the app's secret).
        #[schema(value_type = Option<String>)]
        password: Option<SecretString>,
        /// `ntlm` (default), `basic` or `oauth`.
        auth: Option<String>,
        /// `2007`, `2010`, `2013`, `2016` (default), `2019` or `se`.
        version: Option<String>,
        /// `impersonation` (default) or `delegate`.
        access: Option<String>,
        /// OAuth tenant/login/scope, `max_concurrency`, `ca_pem`.
        #[schema(value_type = Option<Object>)]
        options: Option<EwsOptions>,
    },
}

/// An instance's source as shown: no secrets.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(crate) enum SourceView {
    /// Graph.
    Graph {
        /// Tenant.
        tenant: String,
        /// Client id.
        client_id: String,
        /// `secret` or `certificate`.
        credential: String,
        /// Graph root, if not the global cloud's.
        graph_url: Option<String>,
    },
    /// EWS.
    Ews {
        /// Address.
        url: String,
        /// Service account.
        username: String,
        /// `ntlm`, `basic` or `oauth`.
        #[schema(value_type = String)]
        auth: SignIn,
        /// Version, e.g. `Exchange2013_SP1`.
        #[schema(value_type = String)]
        version: Version,
        /// `impersonation` or `delegate`.
        #[schema(value_type = String)]
        access: Access,
        /// Requests in flight at most.
        max_concurrency: Option<u32>,
        /// Whether a company CA is trusted.
        own_ca: bool,
    },
}

impl From<&SourceConfig> for SourceView {
    fn from(s: &SourceConfig) -> Self {
        match s {
            SourceConfig::Graph {
                tenant,
                client_id,
                credential,
                graph_url,
                ..
            } => SourceView::Graph {
                tenant: tenant.clone(),
                client_id: client_id.clone(),
                credential: match credential {
                    GraphCredential::Secret(_) => "secret".into(),
                    GraphCredential::Certificate { .. } => "certificate".into(),
                },
                graph_url: graph_url.clone(),
            },
            SourceConfig::Ews {
                url,
                username,
                auth,
                version,
                access,
                options,
                ..
            } => SourceView::Ews {
                url: url.clone(),
                username: username.clone(),
                auth: *auth,
                version: *version,
                access: *access,
                max_concurrency: options.max_concurrency,
                own_ca: options.ca_pem.is_some(),
            },
        }
    }
}

/// An instance.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InstanceView {
    /// Id.
    id: String,
    /// Its company.
    company: String,
    /// Name.
    name: String,
    /// Reading and publishing, or switched off.
    active: bool,
    /// The source, without secrets.
    source: SourceView,
    /// The settings and rules as a rules file (TOML; see the README's reference).
    settings: String,
    /// Created (RFC 3339).
    created: String,
}

impl From<&Instance> for InstanceView {
    fn from(i: &Instance) -> Self {
        InstanceView {
            id: i.id.to_string(),
            company: i.company.to_string(),
            name: i.name.clone(),
            active: i.active,
            source: SourceView::from(&i.source),
            settings: i.settings.to_toml(),
            created: i.created.to_string(),
        }
    }
}

/// An instance to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewInstanceInput {
    /// Name (1–200 characters).
    pub(crate) name: String,
    /// The source.
    pub(crate) source: SourceInput,
    /// The settings and rules as a rules file (TOML); the defaults when left out.
    pub(crate) settings: Option<String>,
}

/// Changes to an instance; what is left out stays.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InstanceChange {
    /// Name.
    pub(crate) name: Option<String>,
    /// Switch it on or off.
    pub(crate) active: Option<bool>,
    /// The source (secrets may be left out to keep the stored ones).
    pub(crate) source: Option<SourceInput>,
    /// The whole rules file.
    pub(crate) settings: Option<String>,
}

/// The refusal of a name another instance of the company has.
fn taken_name() -> ApiError {
    ApiError::invalid("name", "the company already has an instance with this name")
}

/// Refuses a name another instance of the company (other than `own`) has, in any case:
/// two instances called alike cannot be told apart on the pages.
async fn unique_name(
    state: &WebState,
    company: kalsync_store::CompanyId,
    name: &str,
    own: Option<kalsync_store::InstanceId>,
) -> Result<(), ApiError> {
    let taken = state
        .store
        .instances(company)
        .await?
        .iter()
        .any(|i| Some(i.id) != own && i.name.to_lowercase() == name.to_lowercase());
    if taken { Err(taken_name()) } else { Ok(()) }
}

pub(crate) fn name(text: &str) -> Result<String, ApiError> {
    let t = text.trim();
    if t.is_empty() || t.chars().count() > 200 {
        return Err(ApiError::invalid("name", "1 to 200 characters"));
    }
    Ok(t.to_owned())
}

fn settings(text: &str) -> Result<InstanceSettings, ApiError> {
    InstanceSettings::from_toml(text)
        .map_err(|e| ApiError::invalid("settings", e.located("settings", text)))
}

/// A new instance's settings: as given, and reading Outlook's automatic replies unless
/// the rules file says otherwise (instances made before they could be read keep them
/// off until their admin turns them on).
fn new_settings(text: Option<&str>) -> Result<InstanceSettings, ApiError> {
    let mut s = match text {
        Some(text) => settings(text)?,
        None => InstanceSettings::default(),
    };
    let said = text
        .and_then(|t| t.parse::<toml::Table>().ok())
        .is_some_and(|t| t.contains_key("automatic_replies"));
    if !said {
        s.automatic_replies.enabled = s.reasons.contains(&s.automatic_replies.reason);
    }
    Ok(s)
}

/// An http(s) address with a host, as given.
fn url(field: &str, text: &str) -> Result<String, ApiError> {
    let t = text.trim();
    match url::Url::parse(t) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            Ok(t.to_owned())
        }
        _ => Err(ApiError::invalid(
            field,
            format!("`{t}` is not an http(s) address"),
        )),
    }
}

/// `value` read by `parse` (whose message names what is expected), or `default`.
fn parsed<T>(
    field: &str,
    value: Option<String>,
    default: T,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, ApiError> {
    match value {
        None => Ok(default),
        Some(v) => parse(&v).map_err(|e| ApiError::invalid(field, e)),
    }
}

fn required(field: &str, text: &str) -> Result<String, ApiError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(ApiError::invalid(field, "required"));
    }
    Ok(t.to_owned())
}

/// `config` when its secret was typed in (`given`); otherwise with the stored one, but
/// only while it would go to the same place: a secret never goes to an address, tenant,
/// app or account it was not given for (`field` is then required `again`).
fn with_secret(
    config: SourceConfig,
    given: bool,
    kept: Option<&SourceConfig>,
    field: &'static str,
    again: &'static str,
) -> Result<SourceConfig, ApiError> {
    match (given, kept) {
        (true, _) => Ok(config),
        (false, Some(kept)) => config
            .keeping_secret_of(kept)
            .ok_or_else(|| ApiError::invalid(field, again)),
        (false, None) => Err(ApiError::invalid(field, "required")),
    }
}

/// The source config of an input; `kept` supplies secrets left out.
fn source(input: SourceInput, kept: Option<&SourceConfig>) -> Result<SourceConfig, ApiError> {
    match input {
        SourceInput::Graph {
            tenant,
            client_id,
            client_secret,
            graph_url,
            login_url,
        } => {
            let given = client_secret.filter(|s| !s.expose_secret().is_empty());
            let config = SourceConfig::Graph {
                tenant: required("source.tenant", &tenant)?,
                client_id: required("source.client_id", &client_id)?,
                credential: GraphCredential::Secret(
                    given.clone().unwrap_or_else(|| String::new().into()),
                ),
                graph_url: graph_url.map(|u| url("source.graph_url", &u)).transpose()?,
                login_url: login_url.map(|u| url("source.login_url", &u)).transpose()?,
            };
            with_secret(
                config,
                given.is_some(),
                kept,
                "source.client_secret",
                "required again when the tenant, client id, Graph address or login address changes",
            )
        }
        SourceInput::Ews {
            url: address,
            username,
            password,
            auth,
            version,
            access,
            options,
        } => {
            let address = url("source.url", &address)?;
            let username = required("source.username", &username)?;
            let auth = parsed("source.auth", auth, SignIn::Ntlm, SignIn::parse)?;
            // Options left out are the stored ones (a company CA, OAuth, limits).
            let options = match (options, kept) {
                (Some(o), _) => o,
                (None, Some(SourceConfig::Ews { options, .. })) => options.clone(),
                (None, _) => EwsOptions::default(),
            };
            let given = password.filter(|p| !p.expose_secret().is_empty());
            if auth == SignIn::OAuth && options.tenant.is_none() {
                return Err(ApiError::invalid(
                    "source.options.tenant",
                    "required with auth = oauth",
                ));
            }
            if options.max_concurrency == Some(0) {
                return Err(ApiError::invalid(
                    "source.options.max_concurrency",
                    "at least 1",
                ));
            }
            let config = SourceConfig::Ews {
                url: address,
                username,
                password: given.clone().unwrap_or_else(|| String::new().into()),
                auth,
                version: parsed(
                    "source.version",
                    version,
                    Version::Exchange2013Sp1,
                    Version::parse,
                )?,
                access: parsed(
                    "source.access",
                    access,
                    Access::Impersonation,
                    Access::parse,
                )?,
                options,
            };
            with_secret(
                config,
                given.is_some(),
                kept,
                "source.password",
                "required again when the address, account, sign-in, OAuth tenant, login address, scope or trusted CA changes",
            )
        }
    }
}

/// The input with its tenants as Directory ids: a domain is looked up in the tenant's
/// OpenID metadata at the instance's login host, so that what is stored (and compared
/// when a secret is kept) is the id, which cannot move to another tenant.
async fn with_tenant_ids(state: &WebState, input: SourceInput) -> Result<SourceInput, ApiError> {
    match input {
        SourceInput::Graph {
            tenant,
            client_id,
            client_secret,
            graph_url,
            login_url,
        } => Ok(SourceInput::Graph {
            tenant: tenant_id(state, "source.tenant", tenant, login_url.as_deref()).await?,
            client_id,
            client_secret,
            graph_url,
            login_url,
        }),
        SourceInput::Ews {
            url,
            username,
            password,
            auth,
            version,
            access,
            options: Some(mut options),
        } => {
            if let Some(tenant) = options.tenant.take() {
                options.tenant = Some(
                    tenant_id(
                        state,
                        "source.options.tenant",
                        tenant,
                        options.login_url.as_deref(),
                    )
                    .await?,
                );
            }
            Ok(SourceInput::Ews {
                url,
                username,
                password,
                auth,
                version,
                access,
                options: Some(options),
            })
        }
        other => Ok(other),
    }
}

/// A stored source whose tenant was kept as a domain (before tenants were stored as
/// ids), with the id instead where it can be looked up: a change that names the same
/// tenant by its id keeps the secret.
async fn stored_with_tenant_ids(state: &WebState, mut config: SourceConfig) -> SourceConfig {
    let (tenant, login) = match &mut config {
        SourceConfig::Graph {
            tenant, login_url, ..
        } => (Some(tenant), login_url.clone()),
        SourceConfig::Ews { options, .. } => (options.tenant.as_mut(), options.login_url.clone()),
    };
    if let Some(tenant) = tenant
        && kalsync_core::TenantId::parse(tenant).is_err()
        && let Ok(id) =
            self::tenant_id(state, "source.tenant", tenant.clone(), login.as_deref()).await
    {
        *tenant = id;
    }
    config
}

/// `text` as a Directory id (looked up when it is a domain).
async fn tenant_id(
    state: &WebState,
    field: &'static str,
    text: String,
    login: Option<&str>,
) -> Result<String, ApiError> {
    if let Ok(id) = kalsync_core::TenantId::parse(&text) {
        return Ok(id.to_string());
    }
    if text.trim().is_empty() {
        // `required` says what is missing.
        return Ok(text);
    }
    let login = match login {
        Some(u) => url::Url::parse(&url("source.login_url", u)?)
            .map_err(|_| ApiError::invalid("source.login_url", "not an address"))?,
        None => kalsync_graph::Endpoints::global().login,
    };
    kalsync_graph::oidc::tenant_id(&state.http, &login, &text)
        .await
        .map(|id| id.to_string())
        .map_err(|e| match e {
            kalsync_graph::SignInError::UnknownTenant(_) => ApiError::invalid(
                field,
                format!(
                    "no Microsoft 365 organisation is known by `{}`: give its Directory (tenant) ID",
                    text.trim().chars().take(80).collect::<String>().escape_debug()
                ),
            ),
            other => ApiError::invalid(
                field,
                format!(
                    "cannot look the domain up at Entra ID ({other}): give the Directory (tenant) ID instead"
                ),
            ),
        })
}

/// The instance named in a path, if the principal may see it.
pub(crate) async fn visible_instance(
    state: &WebState,
    principal: &Principal,
    instance: &str,
) -> Result<Instance, ApiError> {
    let id: InstanceId = path_id(instance, "instance")?;
    let found = state.store.instance(id).await?;
    principal.sees(found.company, &format!("instance {instance}"))?;
    Ok(found)
}

/// A company's instances.
#[utoipa::path(get, path = "/api/v1/companies/{company}/instances", params(("company" = String, Path)),
    responses((status = 200, body = [InstanceView])))]
pub(crate) async fn list(
    State(state): State<WebState>,
    principal: Principal,
    Path(company): Path<String>,
) -> Result<Json<Vec<InstanceView>>, ApiError> {
    let id = visible(&state, &principal, &company).await?;
    let list = state.store.instances(id).await?;
    Ok(Json(list.iter().map(InstanceView::from).collect()))
}

/// Creates an instance.
#[utoipa::path(post, path = "/api/v1/companies/{company}/instances", params(("company" = String, Path)), request_body = NewInstanceInput,
    responses((status = 201, body = InstanceView), (status = 422, body = crate::error::ErrorBody)))]
pub(crate) async fn create(
    State(state): State<WebState>,
    principal: Principal,
    Path(company): Path<String>,
    Body(input): Body<NewInstanceInput>,
) -> Result<(StatusCode, Json<InstanceView>), ApiError> {
    let id = visible(&state, &principal, &company).await?;
    let instance = create_instance(&state, &principal, id, input).await?;
    Ok((StatusCode::CREATED, Json(InstanceView::from(&instance))))
}

/// Creates an instance of `company` (checked, audited); the principal must manage it.
pub(crate) async fn create_instance(
    state: &WebState,
    principal: &Principal,
    company: kalsync_store::CompanyId,
    input: NewInstanceInput,
) -> Result<Instance, ApiError> {
    not_the_operators_app(state, &input.source)?;
    insert_instance(state, principal, company, input).await
}

/// Refuses the operator's own app in a source a company typed: its instances are made
/// by *Connect Microsoft 365* alone, for a tenant an admin consented in.
fn not_the_operators_app(state: &WebState, input: &SourceInput) -> Result<(), ApiError> {
    match (&state.microsoft365, input) {
        (Some(app), SourceInput::Graph { client_id, .. }) if client_id.trim() == app.client_id => {
            Err(ApiError::invalid(
                "source.client_id",
                "the operator's own app is connected with Connect Microsoft 365, not typed in",
            ))
        }
        _ => Ok(()),
    }
}

/// Creates an instance (checked, audited): `create_instance` without the check that
/// the source is no instance of the operator's app (*Connect Microsoft 365* makes those).
pub(crate) async fn insert_instance(
    state: &WebState,
    principal: &Principal,
    company: kalsync_store::CompanyId,
    input: NewInstanceInput,
) -> Result<Instance, ApiError> {
    principal.manages(company, "company")?;
    let name = name(&input.name)?;
    unique_name(state, company, &name, None).await?;
    let new = NewInstance {
        company,
        name,
        source: source(with_tenant_ids(state, input.source).await?, None)?,
        settings: new_settings(input.settings.as_deref())?,
    };
    let instance = state
        .store
        .create_instance(new)
        .await
        .map_err(|e| match e {
            // Made by someone else at the same moment.
            kalsync_store::StoreError::Conflict(_) => taken_name(),
            other => other.into(),
        })?;
    audit(
        state,
        principal,
        Some(company),
        "instance.created",
        serde_json::json!({"instance": instance.id, "kind": instance.source.kind()}),
    )
    .await?;
    Ok(instance)
}

/// One instance.
#[utoipa::path(get, path = "/api/v1/instances/{instance}", params(("instance" = String, Path)),
    responses((status = 200, body = InstanceView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn get(
    State(state): State<WebState>,
    principal: Principal,
    Path(instance): Path<String>,
) -> Result<Json<InstanceView>, ApiError> {
    let found = visible_instance(&state, &principal, &instance).await?;
    Ok(Json(InstanceView::from(&found)))
}

/// Changes an instance: name, on/off, source, settings.
#[utoipa::path(patch, path = "/api/v1/instances/{instance}", params(("instance" = String, Path)), request_body = InstanceChange,
    responses((status = 200, body = InstanceView), (status = 422, body = crate::error::ErrorBody)))]
pub(crate) async fn update(
    State(state): State<WebState>,
    principal: Principal,
    Path(instance): Path<String>,
    Body(change): Body<InstanceChange>,
) -> Result<Json<InstanceView>, ApiError> {
    let found = visible_instance(&state, &principal, &instance).await?;
    let changed = change_instance(&state, &principal, found, change).await?;
    Ok(Json(InstanceView::from(&changed)))
}

/// Applies `change` to `found` (checked, audited); the principal must manage it.
pub(crate) async fn change_instance(
    state: &WebState,
    principal: &Principal,
    mut found: Instance,
    change: InstanceChange,
) -> Result<Instance, ApiError> {
    principal.manages(found.company, "instance")?;
    if let Some(n) = &change.name {
        found.name = name(n)?;
        unique_name(state, found.company, &found.name, Some(found.id)).await?;
    }
    if let Some(a) = change.active {
        found.active = a;
    }
    let reread =
        change.settings.is_some() || change.source.is_some() || change.active == Some(true);
    if let Some(s) = change.source {
        let kept = stored_with_tenant_ids(state, found.source.clone()).await;
        let operators_instance = matches!((&state.microsoft365, &found.source),
            (Some(app), SourceConfig::Graph { client_id, .. }) if *client_id == app.client_id);
        if !operators_instance {
            not_the_operators_app(state, &s)?;
        }
        let changed = source(with_tenant_ids(state, s).await?, Some(&kept))?;
        // An instance of the operator's app keeps its tenant and every address: the
        // operator's secret goes nowhere a company admin chose.
        if operators_instance && changed.secret_destination() != kept.secret_destination() {
            return Err(ApiError::invalid(
                "source.tenant",
                "an instance connected with the operator's app keeps its tenant and addresses; connect Microsoft 365 again for another",
            ));
        }
        found.source = changed;
    }
    if let Some(text) = &change.settings {
        found.settings = settings(text)?;
    }
    state.store.update_instance(&found).await?;
    // New rules or a new source apply from the next read: every user is read again now
    // (by whichever node holds them), not at its next poll.
    if reread {
        state.store.request_instance_sync(found.id).await?;
    }
    audit(
        state,
        principal,
        Some(found.company),
        "instance.changed",
        serde_json::json!({"instance": found.id}),
    )
    .await?;
    Ok(found)
}

/// Removes an instance with its users and all their data.
#[utoipa::path(delete, path = "/api/v1/instances/{instance}", params(("instance" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn remove(
    State(state): State<WebState>,
    principal: Principal,
    Path(instance): Path<String>,
) -> Result<StatusCode, ApiError> {
    let found = visible_instance(&state, &principal, &instance).await?;
    remove_instance(&state, &principal, &found).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes `found` with its users and their data (checked, audited).
pub(crate) async fn remove_instance(
    state: &WebState,
    principal: &Principal,
    found: &Instance,
) -> Result<(), ApiError> {
    principal.manages(found.company, "instance")?;
    state.store.delete_instance(found.id).await?;
    audit(
        state,
        principal,
        Some(found.company),
        "instance.removed",
        serde_json::json!({"instance": found.id}),
    )
    .await
}

/// What a connection check is asked.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckInput {
    /// A test mailbox (the instance's first user when left out).
    #[serde(default)]
    pub(crate) mailbox: Option<String>,
}

/// A connection check's answer: each step, passed or with what to fix.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CheckReport {
    /// Whether every step passed.
    pub(crate) ok: bool,
    /// The steps, in order; the first failure ends them.
    pub(crate) steps: Vec<crate::CheckStep>,
}

/// How long a check may take before the source is said not to answer.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs the connection check of `found` (its admins only: it signs in with the stored
/// credentials).
pub(crate) async fn run_check(
    state: &WebState,
    principal: &Principal,
    found: &Instance,
    mailbox: Option<&str>,
) -> Result<CheckReport, ApiError> {
    principal.manages(found.company, "instance")?;
    let mailbox = match mailbox.map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) => Some(
            kalsync_core::EmailAddress::parse(m).map_err(|e| ApiError::invalid("mailbox", e))?,
        ),
        None if state.store.users(found.id).await?.is_empty() => {
            return Err(ApiError::invalid(
                "mailbox",
                "the instance has no users yet: name a mailbox to test with",
            ));
        }
        None => None,
    };
    let checker = state.checker.as_ref().ok_or_else(|| {
        ApiError::Unavailable("connection checks are not available on this server".into())
    })?;
    let steps = tokio::time::timeout(
        CHECK_TIMEOUT,
        checker.check(found.id, mailbox.as_ref().map(|m| m.as_str())),
    )
    .await
    .map_err(|_| {
        ApiError::Unavailable(format!(
            "the source did not answer within {} s",
            CHECK_TIMEOUT.as_secs()
        ))
    })?
    .map_err(|e| ApiError::BadRequest(shown_to(principal, &e)))?;
    // A company's admin learns what failed and what to do; the addresses and answers
    // behind it are for the operator and the log.
    let steps: Vec<_> = steps
        .into_iter()
        .map(|mut s| {
            s.detail = shown_to(principal, &s.detail);
            s
        })
        .collect();
    let ok = steps.iter().all(|s| s.ok);
    audit(
        state,
        principal,
        Some(found.company),
        "instance.checked",
        serde_json::json!({"instance": found.id, "ok": ok}),
    )
    .await?;
    Ok(CheckReport { ok, steps })
}

/// An error text as `principal` may see it: whole for the operator, without addresses
/// for a company's people.
fn shown_to(principal: &Principal, text: &str) -> String {
    if principal.grant.role == kalsync_store::Role::Operator {
        text.to_owned()
    } else {
        kalsync_core::redact::without_addresses(text)
    }
}

/// Tests the instance's connection step by step: sign in, reach the mailbox, read its
/// calendar, subscribe — each failure naming what the admin must fix.
#[utoipa::path(post, path = "/api/v1/instances/{instance}/check", params(("instance" = String, Path)), request_body = CheckInput,
    responses((status = 200, body = CheckReport), (status = 422, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn check(
    State(state): State<WebState>,
    principal: Principal,
    Path(instance): Path<String>,
    Body(input): Body<CheckInput>,
) -> Result<Json<CheckReport>, ApiError> {
    let found = visible_instance(&state, &principal, &instance).await?;
    Ok(Json(
        run_check(&state, &principal, &found, input.mailbox.as_deref()).await?,
    ))
}
