//! *Connect Microsoft 365* (SPEC §4.1): a company's admin grants the operator's
//! multi-tenant app access with Entra ID's admin-consent redirect. The answer names the
//! tenant, and an instance is created that signs in there with the operator's app.
//!
//! The pending consent is kept here, keyed by the `state` sent to Entra ID: the session
//! cookie is `SameSite=Strict`, so the browser does not send it on the way back from
//! login.microsoftonline.com, and the unguessable, single-use `state` is what ties the
//! answer to the admin who asked.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use kalsync_core::Lang;
use kalsync_graph::ConsentOutcome;
use kalsync_store::CompanyId;
use maud::html;
use serde::Deserialize;

use super::{Viewer, i18n, page};
use crate::WebState;
use crate::api::companies::visible;
use crate::api::instances::{NewInstanceInput, SourceInput, create_instance};
use crate::auth::{Principal, random_secret};
use crate::error::ApiError;

/// How long an admin has to answer Entra ID.
const PENDING_FOR: Duration = Duration::from_secs(30 * 60);
/// Consents under way at most (older ones are dropped first).
const MAX_PENDING: usize = 10_000;

/// One consent under way.
struct Pending {
    company: CompanyId,
    name: String,
    principal: Principal,
    started: Instant,
}

/// The consents under way, by `state` (on this node; the answer comes back to the node
/// the browser reaches, which a sticky load balancer keeps).
#[derive(Default)]
pub struct Consents {
    pending: Mutex<HashMap<String, Pending>>,
}

impl Consents {
    fn start(&self, pending: Pending) -> String {
        let state = random_secret();
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, p| p.started.elapsed() < PENDING_FOR);
        if map.len() >= MAX_PENDING
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, p)| p.started)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(state.clone(), pending);
        state
    }

    /// Takes the consent `state` names (once), if it is still fresh.
    fn take(&self, state: &str) -> Option<Pending> {
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(state)
            .filter(|p| p.started.elapsed() < PENDING_FOR)
    }
}

/// The form on the new-instance page.
#[derive(Debug, Deserialize)]
pub(crate) struct ConnectForm {
    csrf: String,
    name: String,
}

/// Where Entra ID sends the admin back: `public_url`, else the host the browser used.
fn callback_url(state: &WebState, headers: &HeaderMap) -> Result<url::Url, ApiError> {
    let base = match &state.public_url {
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
    base.join("connect/microsoft365/callback")
        .map_err(|e| ApiError::Internal(e.to_string()))
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
    Path(company): Path<String>,
    Form(form): Form<ConnectForm>,
) -> Response {
    let go = async {
        viewer.check_form(&headers, &form.csrf)?;
        let id = visible(&state, &viewer.principal, &company).await?;
        viewer.principal.manages(id, "company")?;
        let app = state.microsoft365.as_ref().ok_or_else(|| {
            ApiError::Unavailable(
                "this server has no Microsoft 365 app of its own ([microsoft365] in the settings)"
                    .into(),
            )
        })?;
        let name = crate::api::instances::name(&form.name)?;
        let redirect = callback_url(&state, &headers)?;
        let consent_state = state.consents.start(Pending {
            company: id,
            name,
            principal: viewer.principal.clone(),
            started: Instant::now(),
        });
        let to = kalsync_graph::auth::admin_consent_url(
            &app.login_url,
            &app.client_id,
            &redirect,
            &consent_state,
            &scope(app.graph_url.as_deref()),
        )
        .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok::<_, ApiError>(Redirect::to(to.as_str()))
    };
    match go.await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    }
}

/// Whether another company has a Microsoft 365 instance in `tenant`.
async fn tenant_of_another_company(
    state: &WebState,
    tenant: &str,
    company: CompanyId,
) -> Result<bool, ApiError> {
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

/// A page of the consent's outcome.
fn outcome(lang: Lang, status: StatusCode, title: &str, body: maud::Markup) -> Response {
    let t = i18n::texts(lang);
    (
        status,
        page(
            t,
            title,
            None,
            "/connect/microsoft365/callback",
            html! { h1 { (title) } (body) },
        ),
    )
        .into_response()
}

/// Entra ID's answer. Without the session cookie (see the module's comment); the
/// `state` finds the admin who asked.
pub(crate) async fn callback(
    State(state): State<WebState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let lang = i18n::language(&headers);
    let t = i18n::texts(lang);
    let query = query.unwrap_or_default();
    let given: Option<String> = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned());
    let Some(pending) = given.as_deref().and_then(|s| state.consents.take(s)) else {
        return outcome(
            lang,
            StatusCode::BAD_REQUEST,
            t.consent_refused,
            html! { p.error role="alert" { (t.consent_unknown) } p { a href="/" { (t.dashboard) } } },
        );
    };
    let again = format!("/companies/{}/instances/new", pending.company);
    let answer =
        kalsync_graph::auth::parse_consent_redirect(&query, given.as_deref().unwrap_or(""));
    let tenant = match answer {
        Ok(ConsentOutcome::Granted { tenant }) => tenant,
        Ok(ConsentOutcome::Refused { error, description }) => {
            return outcome(
                lang,
                StatusCode::OK,
                t.consent_refused,
                html! {
                    p.error role="alert" { (error) ": " (description.lines().next().unwrap_or_default()) }
                    p { a href=(again) { (t.try_again) } }
                },
            );
        }
        Err(e) => {
            return outcome(
                lang,
                StatusCode::BAD_REQUEST,
                t.consent_refused,
                html! { p.error role="alert" { (e) } p { a href=(again) { (t.try_again) } } },
            );
        }
    };
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
    // The tenant in the answer comes through the browser: one that another company
    // connected is refused, so an admin cannot point an instance at someone else's.
    match tenant_of_another_company(&state, &tenant, pending.company).await {
        Ok(false) => {}
        Ok(true) => {
            return outcome(
                lang,
                StatusCode::CONFLICT,
                t.consent_refused,
                html! {
                    p.error role="alert" #tenant-taken { (t.tenant_taken) " (" code { (tenant) } ")" }
                    p { a href=(again) { (t.try_again) } }
                },
            );
        }
        Err(e) => return e.into_response(),
    }
    let Some(app) = state.microsoft365.as_ref() else {
        return ApiError::Unavailable("this server has no Microsoft 365 app of its own".into())
            .into_response();
    };
    let input = NewInstanceInput {
        name: pending.name.clone(),
        source: SourceInput::Graph {
            tenant: tenant.clone(),
            client_id: app.client_id.clone(),
            client_secret: Some(app.client_secret.clone()),
            graph_url: app.graph_url.clone(),
            login_url: Some(app.login_url.to_string()),
        },
        settings: None,
    };
    match create_instance(&state, &principal, pending.company, input).await {
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
        Err(e @ ApiError::Invalid { .. }) => outcome(
            lang,
            StatusCode::UNPROCESSABLE_ENTITY,
            t.consent_refused,
            html! { p.error role="alert" { (e) } p { a href=(again) { (t.try_again) } } },
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
