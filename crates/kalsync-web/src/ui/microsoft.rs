//! Signing in with Microsoft (Entra ID, OpenID Connect with PKCE) through the operator's
//! multi-tenant app: people sign in, link their Microsoft account to a local one, and
//! an admin signs in and consents for *Connect Microsoft 365*.
//!
//! A person is matched by tenant and object id (`tid`, `oid` of the verified
//! `id_token`), never by e-mail: anyone can name themselves anything in their own
//! tenant. Who may sign in is decided by the operator's tenant and app roles (the
//! settings), or by a company's proven tenant and its app roles or groups; an account
//! made that way follows them at every sign-in. An account with a password, linked by
//! its owner, keeps its own role.
//!
//! The sign-ins under way are kept here by `state` (the session cookie is
//! `SameSite=Strict` and does not come back from Entra ID); each is single-use and ends
//! after ten minutes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use jiff::Timestamp;
use kalsync_core::{Lang, TenantId};
use kalsync_graph::oidc::{Answer, Pkce, parse_answer};
use kalsync_graph::{Person, SignInError};
use kalsync_store::{
    Account, AccountId, CompanyId, EntraId, Grant, NewAccount, NewAuditEntry, StoreError,
};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Viewer, i18n, page};
use crate::WebState;
use crate::auth::{Principal, random_secret};
use crate::error::ApiError;

/// How long a sign-in may take.
const PENDING_FOR: Duration = Duration::from_secs(10 * 60);
/// Sign-ins (or consents) under way at most; the oldest are dropped first.
const MAX_PENDING: usize = 10_000;

/// Round trips to Entra ID under way, by their `state`: each taken once, and only
/// while fresh. Bounded, so nobody can fill memory by starting them.
pub struct Pending<T> {
    map: Mutex<HashMap<String, (Instant, T)>>,
    lifetime: Duration,
}

impl<T> Pending<T> {
    /// Round trips that last at most `lifetime`.
    pub fn new(lifetime: Duration) -> Self {
        Pending {
            map: Mutex::new(HashMap::new()),
            lifetime,
        }
    }

    /// Keeps `value`; the unguessable `state` that finds it.
    pub(crate) fn start(&self, value: T) -> String {
        let state = random_secret();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let lifetime = self.lifetime;
        map.retain(|_, (at, _)| at.elapsed() < lifetime);
        if map.len() >= MAX_PENDING
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(state.clone(), (Instant::now(), value));
        state
    }

    /// Takes what `state` names (once), if it is still fresh.
    pub(crate) fn take(&self, state: &str) -> Option<T> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(state)
            .filter(|(at, _)| at.elapsed() < self.lifetime)
            .map(|(_, v)| v)
    }
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Pending::new(PENDING_FOR)
    }
}

/// What a sign-in is for.
pub(crate) enum Purpose {
    /// Signing in.
    SignIn,
    /// Linking the Microsoft account to this (signed-in) account.
    Link(AccountId),
    /// Signing in and consenting for *Connect Microsoft 365*.
    Connect(Box<super::connect::Request>),
}

/// A sign-in under way.
pub struct Started {
    purpose: Purpose,
    nonce: String,
    pkce: Pkce,
    redirect_uri: url::Url,
    binding: String,
}

/// The cookie that ties a round trip to the browser that started it: without it, an
/// answer carried to another browser (a link sent to someone) finishes nothing there —
/// nobody is signed in to someone else's account, no account linked to someone else's
/// Microsoft account, no tenant connected to someone else's company. `SameSite=Lax`,
/// so it comes back on the top-level navigation from Entra ID.
pub(crate) const FLOW_COOKIE: &str = "kalsync_flow";

/// A fresh binding: its cookie, and the hash kept with the round trip.
fn new_binding(state: &WebState) -> (Cookie<'static>, String) {
    let value = random_secret();
    let hash = crate::auth::secret_hash(&value);
    let cookie = Cookie::build((FLOW_COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.secure_cookies)
        .path("/")
        .max_age(time::Duration::minutes(30))
        .build();
    (cookie, hash)
}

/// Whether this browser holds the binding kept as `hash`.
pub(crate) fn bound(jar: &CookieJar, hash: &str) -> bool {
    jar.get(FLOW_COOKIE).is_some_and(|c| {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            crate::auth::secret_hash(c.value()).as_bytes(),
            hash.as_bytes(),
        ))
    })
}

/// The operator's own staff: who of the operator's tenant signs in as the operator.
#[derive(Debug, Clone)]
pub struct OperatorTenant {
    /// The operator's tenant.
    pub tenant: TenantId,
    /// App role values or group ids of the operator's staff.
    pub roles: Vec<String>,
}

/// An address on this service as the browser reaches it: `public_url`, else the host
/// the browser used.
pub(crate) fn our_url(
    state: &WebState,
    headers: &HeaderMap,
    path: &[&str],
) -> Result<url::Url, ApiError> {
    let mut base = match &state.public_url {
        Some(u) => u.clone(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .ok_or_else(|| ApiError::BadRequest("the request names no host".into()))?;
            let scheme = if state.secure_cookies {
                "https"
            } else {
                "http"
            };
            url::Url::parse(&format!("{scheme}://{host}/"))
                .map_err(|_| ApiError::BadRequest("the request's host is not valid".into()))?
        }
    };
    base.set_query(None);
    base.set_fragment(None);
    base.path_segments_mut()
        .map_err(|()| ApiError::Internal("the public URL cannot take a path".into()))?
        .pop_if_empty()
        .extend(path);
    Ok(base)
}

/// Sends the browser to Entra ID's sign-in for `purpose`, bound to it by a cookie.
pub(crate) fn begin(
    state: &WebState,
    headers: &HeaderMap,
    jar: CookieJar,
    purpose: Purpose,
) -> Result<(CookieJar, Redirect), ApiError> {
    let app = state.microsoft365.as_ref().ok_or_else(|| {
        ApiError::Unavailable(
            "this server has no Microsoft 365 app of its own ([microsoft365] in the settings)"
                .into(),
        )
    })?;
    let redirect_uri = our_url(state, headers, &["auth", "microsoft", "callback"])?;
    let nonce = random_secret();
    let pkce = Pkce::new();
    let (cookie, binding) = new_binding(state);
    let connect = matches!(purpose, Purpose::Connect(_));
    let st = state.sign_ins.start(Started {
        purpose,
        nonce: nonce.clone(),
        pkce: pkce.clone(),
        redirect_uri: redirect_uri.clone(),
        binding,
    });
    let to = match connect {
        true => app.entra.consent_url(
            &redirect_uri,
            &st,
            &nonce,
            &pkce,
            &super::connect::scope(app.graph_url.as_deref()),
        ),
        false => app.entra.authorize_url(&redirect_uri, &st, &nonce, &pkce),
    }
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((jar.add(cookie), Redirect::to(to.as_str())))
}

/// `GET /sign-in/microsoft`.
pub(crate) async fn sign_in(
    State(state): State<WebState>,
    crate::auth::PeerIp(ip): crate::auth::PeerIp,
    headers: HeaderMap,
    jar: CookieJar,
) -> Response {
    if let Err(e) = state.limit.start_sign_in(ip) {
        return e.into_response();
    }
    match begin(&state, &headers, jar, Purpose::SignIn) {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    }
}

/// A form with only the CSRF token.
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfOnly {
    csrf: String,
}

/// `POST /account/microsoft`: links the signed-in account to a Microsoft account.
pub(crate) async fn link(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<CsrfOnly>,
) -> Response {
    let go = || {
        viewer.check_form(&headers, &form.csrf)?;
        let account = viewer.principal.account.as_ref().ok_or_else(|| {
            ApiError::Forbidden("only a person's account links a Microsoft account".into())
        })?;
        begin(&state, &headers, jar, Purpose::Link(account.id))
    };
    match go() {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /account/microsoft/unlink`: an account with a password forgets its Microsoft
/// account (one without would be locked out).
pub(crate) async fn unlink(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Response {
    let go = async {
        viewer.check_form(&headers, &form.csrf)?;
        let account = viewer.principal.account.as_ref().ok_or_else(|| {
            ApiError::Forbidden("only a person's account has a Microsoft account".into())
        })?;
        if microsoft_only(account) {
            return Err(ApiError::invalid(
                "account",
                "an account without a password signs in with Microsoft only",
            ));
        }
        state.store.link_entra(account.id, None).await?;
        audit(&state, account, "account.microsoft_unlinked").await?;
        Ok(Redirect::to("/account"))
    };
    match go.await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    }
}

/// Whether an account signs in with Microsoft only (it has no password).
pub(crate) fn microsoft_only(account: &Account) -> bool {
    account.password_hash.is_empty()
}

async fn audit(state: &WebState, account: &Account, action: &str) -> Result<(), ApiError> {
    state
        .store
        .audit(NewAuditEntry {
            company: account.grant.company,
            actor: account.email.clone(),
            action: action.into(),
            detail: serde_json::json!({}),
        })
        .await?;
    Ok(())
}

/// A page answering the round trip.
pub(crate) fn outcome(lang: Lang, status: StatusCode, title: &str, body: Markup) -> Response {
    let t = i18n::texts(lang);
    (
        status,
        page(
            t,
            title,
            None,
            "/auth/microsoft/callback",
            html! { div.card { h1 { (title) } (body) } },
        ),
    )
        .into_response()
}

/// A failed sign-in's page, with the way back.
fn failed(lang: Lang, status: StatusCode, why: &str, detail: Option<&str>) -> Response {
    let t = i18n::texts(lang);
    outcome(
        lang,
        status,
        t.microsoft_failed,
        html! {
            p.error role="alert" #why { (why) @if let Some(d) = detail { " " code { (d) } } }
            p { a href="/sign-in" { (t.try_again) } }
        },
    )
}

/// Why a verified person gets no account.
enum NoAccount {
    /// No mapping gives them a role.
    NoAccess,
    /// Their e-mail names an account of someone else (maybe their own, unlinked).
    EmailTaken(String),
}

/// The grant a person's tenant and roles give: the operator's staff, or a role in the
/// company that proved the tenant is theirs; `None` when neither applies.
async fn mapped_grant(state: &WebState, person: &Person) -> Result<Option<Grant>, ApiError> {
    if let Some(operators) = state
        .microsoft365
        .as_ref()
        .and_then(|a| a.operators.as_ref())
        && operators.tenant == person.tenant
    {
        let is_staff = operators.roles.iter().any(|w| {
            person.roles.iter().any(|r| r == w)
                || person.groups.iter().any(|g| g.eq_ignore_ascii_case(w))
        });
        if is_staff {
            return Ok(Some(Grant::operator()));
        }
    }
    if let Some(tenant) = state.store.company_tenant(&person.tenant).await?
        && let Some(role) = tenant.role_of(&person.roles, &person.groups)
    {
        return Grant::company(role, tenant.company)
            .map(Some)
            .map_err(ApiError::Internal);
    }
    Ok(None)
}

/// The account a verified person signs in as: the one linked to them (its role
/// brought up to date from the mapping when the mapping made it), or a new one the
/// mapping makes.
async fn account_for(
    state: &WebState,
    person: &Person,
) -> Result<Result<Account, NoAccount>, ApiError> {
    let entra = EntraId {
        tenant: person.tenant.clone(),
        object: person.object.clone(),
    };
    let grant = mapped_grant(state, person).await?;
    if let Some(account) = state.store.account_by_entra(&entra).await? {
        if !microsoft_only(&account) {
            // Linked by its owner, who signs in with a password too: its own role.
            return Ok(Ok(account));
        }
        return match grant {
            Some(grant) => {
                if grant != account.grant {
                    // Its sessions and tokens end with the old role.
                    state.store.set_grant(account.id, grant).await?;
                }
                Ok(Ok(Account { grant, ..account }))
            }
            None => {
                // The mapping that made it gives nothing now (the role was taken away,
                // the tenant released, the operator's tenant changed): what it still
                // held ends too.
                state.store.revoke_access(account.id).await?;
                audit(state, &account, "account.microsoft_access_ended").await?;
                Ok(Err(NoAccount::NoAccess))
            }
        };
    }
    let Some(grant) = grant else {
        return Ok(Err(NoAccount::NoAccess));
    };
    let email = person
        .username
        .clone()
        .filter(|u| u.contains('@') && u.len() <= 254 && !u.chars().any(char::is_control))
        .unwrap_or_else(|| format!("{}@{}", person.object, person.tenant));
    let made = state
        .store
        .create_account(NewAccount {
            email: email.clone(),
            display_name: person
                .name
                .clone()
                .map(|n| n.chars().filter(|c| !c.is_control()).take(200).collect()),
            grant,
            password_hash: String::new(),
            entra: Some(entra),
        })
        .await;
    match made {
        Ok(account) => {
            audit(state, &account, "account.created_by_microsoft_sign_in").await?;
            Ok(Ok(account))
        }
        Err(StoreError::Conflict(_)) => Ok(Err(NoAccount::EmailTaken(email))),
        Err(e) => Err(e.into()),
    }
}

/// `GET /auth/microsoft/callback`: Entra ID's answer, whatever the sign-in was for.
pub(crate) async fn callback(
    State(state): State<WebState>,
    headers: HeaderMap,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    let lang = i18n::language(&headers);
    let t = i18n::texts(lang);
    let query = query.unwrap_or_default();
    let Some((st, answer)) = parse_answer(&query) else {
        return failed(lang, StatusCode::BAD_REQUEST, t.sign_in_expired, None);
    };
    let Some(started) = state.sign_ins.take(&st) else {
        return failed(lang, StatusCode::BAD_REQUEST, t.sign_in_expired, None);
    };
    if !bound(&jar, &started.binding) {
        tracing::warn!(
            "a Microsoft sign-in came back to another browser than the one that started it"
        );
        return failed(lang, StatusCode::BAD_REQUEST, t.sign_in_expired, None);
    }
    let code = match answer {
        Answer::Code(code) => code,
        Answer::Refused { error, description } => {
            let said = format!("{error}: {description}");
            if let Purpose::Connect(request) = &started.purpose {
                return super::connect::declined(lang, request, &said);
            }
            return failed(lang, StatusCode::OK, t.microsoft_failed, Some(&said));
        }
    };
    let Some(app) = state.microsoft365.as_ref() else {
        return failed(
            lang,
            StatusCode::SERVICE_UNAVAILABLE,
            t.microsoft_failed,
            None,
        );
    };
    let person = match app
        .entra
        .redeem(
            &code,
            &started.redirect_uri,
            &started.pkce,
            &started.nonce,
            Timestamp::now(),
        )
        .await
    {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "a Microsoft sign-in was refused");
            let status = match e {
                SignInError::Unreachable(_) => StatusCode::BAD_GATEWAY,
                _ => StatusCode::FORBIDDEN,
            };
            return failed(lang, status, t.microsoft_failed, Some(&e.to_string()));
        }
    };
    match started.purpose {
        Purpose::SignIn => signed_in(&state, lang, jar, &person).await,
        Purpose::Link(account) => linked(&state, lang, account, &person).await,
        Purpose::Connect(request) => {
            super::connect::consented(&state, lang, request, person.tenant).await
        }
    }
}

async fn signed_in(state: &WebState, lang: Lang, jar: CookieJar, person: &Person) -> Response {
    let t = i18n::texts(lang);
    let account = match account_for(state, person).await {
        Ok(Ok(a)) => a,
        Ok(Err(NoAccount::NoAccess)) => {
            tracing::info!(tenant = %person.tenant, "a Microsoft sign-in without access");
            return failed(lang, StatusCode::FORBIDDEN, t.microsoft_no_access, None);
        }
        Ok(Err(NoAccount::EmailTaken(email))) => {
            return failed(
                lang,
                StatusCode::CONFLICT,
                t.microsoft_email_taken,
                Some(&email),
            );
        }
        Err(e) => return e.into_response(),
    };
    let cookie = match crate::auth::start_session(state, &account).await {
        Ok((cookie, _)) => cookie,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = audit(state, &account, "account.signed_in_with_microsoft").await {
        return e.into_response();
    }
    // The cookie is `SameSite=Strict`: set on this answer to a navigation that began at
    // Entra ID, it is sent from the next one, which this page starts.
    (
        jar.add(cookie),
        outcome(
            lang,
            StatusCode::OK,
            t.signed_in_text,
            html! {
                meta http-equiv="refresh" content="0;url=/";
                p role="status" #signed-in { (t.signed_in_text) }
                p { a #continue href="/" { (t.continue_to) } }
            },
        ),
    )
        .into_response()
}

async fn linked(state: &WebState, lang: Lang, account: AccountId, person: &Person) -> Response {
    let t = i18n::texts(lang);
    let entra = EntraId {
        tenant: person.tenant.clone(),
        object: person.object.clone(),
    };
    match state.store.link_entra(account, Some(&entra)).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return failed(lang, StatusCode::CONFLICT, t.linked_elsewhere, None);
        }
        Err(e) => return ApiError::from(e).into_response(),
    }
    if let Ok(a) = state.store.account(account).await
        && let Err(e) = audit(state, &a, "account.microsoft_linked").await
    {
        return e.into_response();
    }
    outcome(
        lang,
        StatusCode::OK,
        t.linked,
        html! {
            meta http-equiv="refresh" content="1;url=/account";
            p.available role="status" #linked { (t.linked) }
            p { a #continue href="/account" { (t.continue_to) } }
        },
    )
}

/// The Microsoft part of the own-account page.
pub(crate) fn account_section(state: &WebState, t: &i18n::Texts, principal: &Principal) -> Markup {
    let Some(account) = &principal.account else {
        return html! {};
    };
    if state.microsoft365.is_none() && account.entra.is_none() {
        return html! {};
    }
    html! {
        section.card #microsoft {
            h2 { (t.microsoft_account) }
            @match &account.entra {
                Some(e) => {
                    p { (t.linked_to) " " code { (e.object) } " (" (t.tenant_id) " " code { (e.tenant) } ")" }
                    @if microsoft_only(account) {
                        p.muted { (t.microsoft_only) }
                    } @else {
                        form.inline method="post" action="/account/microsoft/unlink" {
                            input type="hidden" name="csrf" value=(principal.csrf());
                            button type="submit" { (t.unlink_microsoft) }
                        }
                    }
                }
                None => {
                    p.muted { (t.not_linked) }
                    form.inline method="post" action="/account/microsoft" {
                        input type="hidden" name="csrf" value=(principal.csrf());
                        button type="submit" #link-microsoft { (t.link_microsoft) }
                    }
                }
            }
        }
    }
}

/// Company admins: who of the company's proven tenants signs in as what.
#[derive(Debug, Deserialize)]
pub(crate) struct RolesForm {
    csrf: String,
    tenant: String,
    admins: String,
    readers: String,
}

/// One role value per line (or comma), trimmed; at most 50 of 200 characters each.
fn role_list(field: &'static str, text: &str) -> Result<Vec<String>, ApiError> {
    let list: Vec<String> = text
        .split(['\n', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if list.len() > 50 {
        return Err(ApiError::invalid(field, "at most 50"));
    }
    if list
        .iter()
        .any(|s| s.chars().count() > 200 || s.chars().any(char::is_control))
    {
        return Err(ApiError::invalid(
            field,
            "an app role or group id is one line of at most 200 characters",
        ));
    }
    Ok(list)
}

/// Saves a company tenant's roles (`company` must be managed by the viewer).
pub(crate) async fn save_roles(
    state: &WebState,
    viewer: &Viewer,
    headers: &HeaderMap,
    company: CompanyId,
    form: RolesForm,
) -> Result<(), ApiError> {
    viewer.check_form(headers, &form.csrf)?;
    viewer.principal.manages(company, "company")?;
    let tenant = TenantId::parse(&form.tenant).map_err(|e| ApiError::invalid("tenant", e))?;
    let mut kept = state
        .store
        .company_tenant(&tenant)
        .await?
        .filter(|t| t.company == company)
        .ok_or_else(|| ApiError::NotFound(format!("tenant {tenant}")))?;
    kept.admins = role_list("admins", &form.admins)?;
    kept.readers = role_list("readers", &form.readers)?;
    state.store.set_tenant_roles(&kept).await?;
    // The tenant's people signed in under the old roles sign in again under the new.
    for account in state.store.accounts(Some(company)).await? {
        if microsoft_only(&account) && account.entra.as_ref().is_some_and(|e| e.tenant == tenant) {
            state.store.revoke_access(account.id).await?;
        }
    }
    state
        .store
        .audit(NewAuditEntry {
            company: Some(company),
            actor: viewer.principal.actor.clone(),
            action: "tenant.roles_changed".into(),
            detail: serde_json::json!({"tenant": tenant, "admins": kept.admins, "readers": kept.readers}),
        })
        .await?;
    Ok(())
}

/// The company's sign-in-with-Microsoft section on its accounts page.
pub(crate) async fn company_section(
    state: &WebState,
    t: &i18n::Texts,
    principal: &Principal,
    company: CompanyId,
    path: &str,
) -> Result<Markup, ApiError> {
    if state.microsoft365.is_none() {
        return Ok(html! {});
    }
    let tenants = state.store.company_tenants(company).await?;
    Ok(html! {
        section.card #microsoft-sign-in {
            h2 { (t.microsoft_sign_in) }
            @if tenants.is_empty() {
                p.muted { (t.no_tenant_yet) }
            } @else {
                p.muted { (t.microsoft_sign_in_intro) }
            }
            @for tenant in &tenants {
                form method="post" action={ (path) "/microsoft" } {
                    input type="hidden" name="csrf" value=(principal.csrf());
                    input type="hidden" name="tenant" value=(tenant.tenant);
                    p { (t.tenant_id) " " code { (tenant.tenant) } }
                    label for="admins" { (t.admins_match) }
                    textarea #admins name="admins" rows="2" { (tenant.admins.join("\n")) }
                    label for="readers" { (t.readers_match) }
                    textarea #readers name="readers" rows="2" { (tenant.readers.join("\n")) }
                    button type="submit" { (t.save) }
                }
            }
        }
    })
}
