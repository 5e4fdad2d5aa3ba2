//! *Connect Microsoft 365* (SPEC §4.1): a company's admin signs in with Microsoft and,
//! in the same round trip, grants the operator's multi-tenant app its permissions for
//! their organisation (`prompt=consent` for the app's `.default` scope, which only an
//! admin can grant). The code that comes back is redeemed with PKCE and its `id_token`
//! verified, so the tenant is the `tid` Entra ID signed — nothing the browser says is
//! believed. Before the tenant becomes the company's (one company per tenant) the app
//! gets a token there, which only a consented app can. The instance is made for it.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use jiff::Timestamp;
use kalsync_core::{Lang, TenantId};
use kalsync_graph::{AppCredentials, ClientAuth, TokenSource};
use kalsync_store::{CompanyId, CompanyTenant, SourceConfig, StoreError};
use maud::html;
use serde::Deserialize;

use super::Viewer;
use super::i18n;
use super::microsoft::{Purpose, begin, outcome};
use crate::WebState;
use crate::api::companies::visible;
use crate::api::instances::{NewInstanceInput, SourceInput, insert_instance};
use crate::auth::Principal;
use crate::error::ApiError;

/// The application permission an admin's consent must have granted.
const REQUIRED_PERMISSION: &str = "Calendars.Read";

/// Who asked to connect, for which company, with what name for the instance.
pub(crate) struct Request {
    company: CompanyId,
    name: String,
    principal: Principal,
}

/// The form on the new-instance page.
#[derive(Debug, Deserialize)]
pub(crate) struct ConnectForm {
    csrf: String,
    name: String,
}

/// The permission scope asked: `.default` of the Graph the app talks to.
pub(crate) fn scope(graph_url: Option<&str>) -> String {
    graph_url
        .and_then(|u| url::Url::parse(u).ok())
        .map(|u| format!("{}/.default", u.origin().ascii_serialization()))
        .unwrap_or_else(|| "https://graph.microsoft.com/.default".into())
}

/// Starts a connection: checks the admin may add an instance to the company, then sends
/// the browser to Entra ID to sign in and consent.
pub(crate) async fn start(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    jar: CookieJar,
    Path(company): Path<String>,
    Form(form): Form<ConnectForm>,
) -> Response {
    let go = async {
        viewer.check_form(&headers, &form.csrf)?;
        let id = visible(&state, &viewer.principal, &company).await?;
        viewer.principal.manages(id, "company")?;
        let name = crate::api::instances::name(&form.name)?;
        begin(
            &state,
            &headers,
            jar,
            Purpose::Connect(Box::new(Request {
                company: id,
                name,
                principal: viewer.principal.clone(),
            })),
        )
    };
    match go.await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    }
}

/// Whether `tenant` is another company's: proven by it, or read by one of its instances
/// of the operator's app.
async fn tenant_of_another_company(
    state: &WebState,
    tenant: &TenantId,
    company: CompanyId,
    operator_app: &str,
) -> Result<bool, ApiError> {
    if let Some(owner) = state.store.company_tenant(tenant).await? {
        return Ok(owner.company != company);
    }
    for other in state.store.companies().await? {
        if other.id == company {
            continue;
        }
        for instance in state.store.instances(other.id).await? {
            if let SourceConfig::Graph {
                tenant: t,
                client_id,
                ..
            } = &instance.source
                && client_id == operator_app
                && t.eq_ignore_ascii_case(tenant.as_str())
            {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The answer for a refused connection, with the way back.
fn refused(lang: Lang, status: StatusCode, company: CompanyId, body: maud::Markup) -> Response {
    let t = i18n::texts(lang);
    let again = format!("/companies/{company}/instances/new");
    outcome(
        lang,
        status,
        t.consent_refused,
        html! { (body) p { a href=(again) { (t.try_again) } } },
    )
}

/// The admin declined (or Entra ID refused) on Microsoft's side.
pub(crate) fn declined(lang: Lang, request: &Request, said: &str) -> Response {
    refused(
        lang,
        StatusCode::OK,
        request.company,
        html! { p.error role="alert" { (said) } },
    )
}

/// Entra ID signed who consented, in which tenant: unless the tenant is the operator's
/// or another company's, or the app cannot get a token there, it becomes the company's
/// and the instance is made.
pub(crate) async fn consented(
    state: &WebState,
    lang: Lang,
    request: Box<Request>,
    tenant: TenantId,
) -> Response {
    let t = i18n::texts(lang);
    let company = request.company;
    let Some(app) = state.microsoft365.as_ref() else {
        return ApiError::Unavailable("this server has no Microsoft 365 app of its own".into())
            .into_response();
    };
    if app.operators.as_ref().is_some_and(|o| o.tenant == tenant) {
        return refused(
            lang,
            StatusCode::CONFLICT,
            company,
            html! { p.error role="alert" #operator-tenant { (t.operator_tenant) } },
        );
    }
    // The admin's account may have been removed, or its role changed, while Entra ID
    // was asking: what it may do now decides.
    let mut principal = request.principal.clone();
    if let Some(account) = &request.principal.account {
        match state.store.account(account.id).await {
            Ok(fresh) if fresh.grant.manages(company) => {
                principal.grant = fresh.grant;
                principal.account = Some(fresh);
            }
            _ => {
                return outcome(
                    lang,
                    StatusCode::FORBIDDEN,
                    t.consent_refused,
                    html! { p.error role="alert" { (t.no_longer_manages) } p { a href="/" { (t.dashboard) } } },
                );
            }
        }
    }
    let taken = || {
        refused(
            lang,
            StatusCode::CONFLICT,
            company,
            html! { p.error role="alert" #tenant-taken { (t.tenant_taken) " (" code { (tenant) } ")" } },
        )
    };
    match tenant_of_another_company(state, &tenant, company, &app.client_id).await {
        Ok(false) => {}
        Ok(true) => return taken(),
        Err(e) => return e.into_response(),
    }
    // Only an app consented in the tenant gets a token there.
    let tokens = TokenSource::new(
        state.http.clone(),
        &app.login_url,
        &scope(app.graph_url.as_deref()),
        AppCredentials {
            tenant: tenant.to_string(),
            client_id: app.client_id.clone(),
            auth: ClientAuth::Secret(app.client_secret.clone()),
        },
    );
    // …and a token proves consent only if it carries the permission: Entra ID issues
    // tokens without any in a tenant where someone merely signed in.
    match async { tokens?.token().await }.await {
        Ok(token)
            if kalsync_graph::auth::granted_permissions(&token)
                .is_some_and(|roles| roles.iter().any(|r| r == REQUIRED_PERMISSION)) => {}
        Ok(_) => {
            tracing::warn!(%tenant, "Connect Microsoft 365: the operator's app has no Calendars.Read in the tenant");
            return refused(
                lang,
                StatusCode::FORBIDDEN,
                company,
                html! { p.error role="alert" #not-consented { (t.not_consented) } },
            );
        }
        Err(e) => {
            tracing::warn!(%tenant, error = %e, "Connect Microsoft 365: the operator's app gets no token in the tenant");
            return refused(
                lang,
                StatusCode::FORBIDDEN,
                company,
                html! { p.error role="alert" #no-token { (kalsync_core::redact::shown_error(&e.to_string())) } },
            );
        }
    }
    // The tenant becomes the company's; another company's is refused (one owner per
    // tenant, kept by the store, so two admins racing cannot both have it).
    let claim = CompanyTenant::with_default_roles(tenant.clone(), company, Timestamp::now());
    let newly = match state.store.claim_tenant(&claim).await {
        Ok((_, newly)) => newly,
        Err(StoreError::Conflict(_)) => return taken(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let input = NewInstanceInput {
        name: request.name.clone(),
        source: SourceInput::Graph {
            tenant: tenant.to_string(),
            client_id: app.client_id.clone(),
            client_secret: Some(app.client_secret.clone()),
            graph_url: app.graph_url.clone(),
            login_url: Some(app.login_url.to_string()),
        },
        settings: None,
    };
    let made = insert_instance(state, &principal, company, input).await;
    if made.is_err() && newly {
        let _ = state.store.release_tenant(company, &tenant).await;
    }
    match made {
        Ok(instance) => {
            let to = format!("/instances/{}", instance.id);
            // A navigation started by this page is same-site again, so the session
            // cookie goes along; a redirect from Entra ID's would not carry it.
            outcome(
                lang,
                StatusCode::OK,
                t.connected,
                html! {
                    meta http-equiv="refresh" content={ "1;url=" (to) };
                    p.available role="status" #connected { (t.connected_text) " " code { (tenant) } "." }
                    p { a #continue href=(to) { (t.continue_to) } }
                },
            )
        }
        Err(e @ ApiError::Invalid { .. }) => refused(
            lang,
            StatusCode::UNPROCESSABLE_ENTITY,
            company,
            html! { p.error role="alert" { (e) } },
        ),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_follows_the_graph_in_use() {
        assert_eq!(scope(None), "https://graph.microsoft.com/.default");
        assert_eq!(
            scope(Some("https://graph.microsoft.us/v1.0/")),
            "https://graph.microsoft.us/.default"
        );
        assert_eq!(
            scope(Some("http://127.0.0.1:4000/v1.0/")),
            "http://127.0.0.1:4000/.default"
        );
    }
}
