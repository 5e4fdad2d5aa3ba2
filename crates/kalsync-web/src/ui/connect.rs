//! *Connect Microsoft 365* (SPEC §4.1): a company's admin signs in with Microsoft
//! (proving which tenant is theirs: the `tid` of a verified `id_token`), then grants the
//! operator's multi-tenant app access there with Entra ID's admin-consent redirect. The
//! instance is created for the proven tenant — never for one the callback's query
//! names — and the tenant becomes the company's (one company per tenant).
//!
//! The consent under way is kept by its `state`: the session cookie is
//! `SameSite=Strict`, so the browser does not send it on the way back from
//! login.microsoftonline.com, and the unguessable, single-use `state` is what ties the
//! answer to the admin who asked.

use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use jiff::Timestamp;
use kalsync_core::{Lang, TenantId};
use kalsync_graph::ConsentOutcome;
use kalsync_store::{CompanyId, CompanyTenant, StoreError};
use maud::html;
use serde::Deserialize;

use super::microsoft::{Purpose, begin, our_url, outcome};
use super::{Viewer, i18n};
use crate::WebState;
use crate::api::companies::visible;
use crate::api::instances::{NewInstanceInput, SourceInput, create_instance};
use crate::auth::Principal;
use crate::error::ApiError;

/// Who asked to connect, for which company, with what name for the instance.
pub(crate) struct Request {
    company: CompanyId,
    name: String,
    principal: Principal,
}

/// A consent under way: the request, and the tenant the admin proved is theirs.
pub struct Consent {
    request: Box<Request>,
    tenant: TenantId,
    /// The browser the round trip is bound to ([`super::microsoft::FLOW_COOKIE`]).
    binding: String,
}

/// The form on the new-instance page.
#[derive(Debug, Deserialize)]
pub(crate) struct ConnectForm {
    csrf: String,
    name: String,
}

/// The permission scope asked: `.default` of the Graph the app talks to.
fn scope(graph_url: Option<&str>) -> String {
    graph_url
        .and_then(|u| url::Url::parse(u).ok())
        .map(|u| format!("{}/.default", u.origin().ascii_serialization()))
        .unwrap_or_else(|| "https://graph.microsoft.com/.default".into())
}

/// Starts a consent: checks the admin may add an instance to the company, then sends
/// the browser to Entra ID.
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

/// Whether `tenant` is another company's: proven by it, or read by one of its
/// Microsoft 365 instances.
async fn tenant_of_another_company(
    state: &WebState,
    tenant: &TenantId,
    company: CompanyId,
) -> Result<bool, ApiError> {
    if let Some(owner) = state.store.company_tenant(tenant).await? {
        return Ok(owner.company != company);
    }
    let tenant = tenant.as_str();
    for other in state.store.companies().await? {
        if other.id == company {
            continue;
        }
        for instance in state.store.instances(other.id).await? {
            if matches!(&instance.source, kalsync_store::SourceConfig::Graph { tenant: t, .. } if t.eq_ignore_ascii_case(tenant))
            {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The admin proved `tenant` is theirs: unless another company's, on to the consent.
pub(crate) async fn tenant_proven(
    state: &WebState,
    headers: &HeaderMap,
    lang: Lang,
    request: Box<Request>,
    tenant: TenantId,
    binding: String,
) -> Response {
    let t = i18n::texts(lang);
    let again = format!("/companies/{}/instances/new", request.company);
    match tenant_of_another_company(state, &tenant, request.company).await {
        Ok(false) => {}
        Ok(true) => return taken(lang, &tenant, &again),
        Err(e) => return e.into_response(),
    }
    let Some(app) = state.microsoft365.as_ref() else {
        return ApiError::Unavailable("this server has no Microsoft 365 app of its own".into())
            .into_response();
    };
    let go = || {
        let back = our_url(state, headers, &["connect", "microsoft365", "callback"])?;
        let scope = scope(app.graph_url.as_deref());
        let st = state.consents.start(Consent {
            request,
            tenant: tenant.clone(),
            binding,
        });
        app.entra
            .admin_consent_url(&tenant, &back, &st, &scope)
            .map_err(|e| ApiError::Internal(e.to_string()))
    };
    match go() {
        Ok(to) => Redirect::to(to.as_str()).into_response(),
        Err(e) => outcome(
            lang,
            StatusCode::INTERNAL_SERVER_ERROR,
            t.consent_refused,
            html! { p.error role="alert" { (e) } p { a href=(again) { (t.try_again) } } },
        ),
    }
}

fn taken(lang: Lang, tenant: &TenantId, again: &str) -> Response {
    let t = i18n::texts(lang);
    outcome(
        lang,
        StatusCode::CONFLICT,
        t.consent_refused,
        html! {
            p.error role="alert" #tenant-taken { (t.tenant_taken) " (" code { (tenant) } ")" }
            p { a href=(again) { (t.try_again) } }
        },
    )
}

/// Entra ID's answer. Without the session cookie (see the module's comment); the
/// `state` finds the admin who asked.
pub(crate) async fn callback(
    State(state): State<WebState>,
    headers: HeaderMap,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    let lang = i18n::language(&headers);
    let t = i18n::texts(lang);
    let query = query.unwrap_or_default();
    let given: Option<String> = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned());
    let Some(Consent {
        request: pending,
        tenant,
        binding: _,
    }) = given
        .as_deref()
        .and_then(|s| state.consents.take(s))
        .filter(|c| super::microsoft::bound(&jar, &c.binding))
    else {
        return outcome(
            lang,
            StatusCode::BAD_REQUEST,
            t.consent_refused,
            html! { p.error role="alert" { (t.consent_unknown) } p { a href="/" { (t.dashboard) } } },
        );
    };
    let again = format!("/companies/{}/instances/new", pending.company);
    let refused = |status: StatusCode, body: maud::Markup| {
        outcome(
            lang,
            status,
            t.consent_refused,
            html! { (body) p { a href=(again) { (t.try_again) } } },
        )
    };
    let answer =
        kalsync_graph::auth::parse_consent_redirect(&query, given.as_deref().unwrap_or(""));
    match answer {
        // The answer comes through the browser: its tenant only has to agree with the
        // one the admin proved; the proven one is used.
        Ok(ConsentOutcome::Granted { tenant: said })
            if TenantId::parse(&said).is_ok_and(|s| s == tenant) => {}
        Ok(ConsentOutcome::Granted { .. }) => {
            return refused(
                StatusCode::BAD_REQUEST,
                html! { p.error role="alert" #other-tenant { (t.consent_other_tenant) } },
            );
        }
        Ok(ConsentOutcome::Refused { error, description }) => {
            return refused(
                StatusCode::OK,
                html! { p.error role="alert" { (error) ": " (description.lines().next().unwrap_or_default()) } },
            );
        }
        Err(e) => {
            return refused(
                StatusCode::BAD_REQUEST,
                html! { p.error role="alert" { (e) } },
            );
        }
    }
    // The admin's account may have been removed, or its role changed, while Entra ID
    // was asking: what it may do now decides.
    let mut principal = pending.principal.clone();
    if let Some(account) = &pending.principal.account {
        match state.store.account(account.id).await {
            Ok(fresh) if fresh.grant.manages(pending.company) => {
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
    let Some(app) = state.microsoft365.as_ref() else {
        return ApiError::Unavailable("this server has no Microsoft 365 app of its own".into())
            .into_response();
    };
    // The tenant becomes the company's; another company's is refused (one owner per
    // tenant, kept by the store, so two admins racing cannot both have it).
    let owned_before = match state.store.company_tenant(&tenant).await {
        Ok(owner) => owner.is_some_and(|o| o.company == pending.company),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let claim =
        CompanyTenant::with_default_roles(tenant.clone(), pending.company, Timestamp::now());
    match tenant_of_another_company(&state, &tenant, pending.company).await {
        Ok(false) => {}
        Ok(true) => return taken(lang, &tenant, &again),
        Err(e) => return e.into_response(),
    }
    match state.store.claim_tenant(&claim).await {
        Ok(_) => {}
        Err(StoreError::Conflict(_)) => return taken(lang, &tenant, &again),
        Err(e) => return ApiError::from(e).into_response(),
    }
    let input = NewInstanceInput {
        name: pending.name.clone(),
        source: SourceInput::Graph {
            tenant: tenant.to_string(),
            client_id: app.client_id.clone(),
            client_secret: Some(app.client_secret.clone()),
            graph_url: app.graph_url.clone(),
            login_url: Some(app.login_url.to_string()),
        },
        settings: None,
    };
    let made = create_instance(&state, &principal, pending.company, input).await;
    if made.is_err() && !owned_before {
        let _ = state.store.release_tenant(pending.company, &tenant).await;
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
            StatusCode::UNPROCESSABLE_ENTITY,
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
