//! Entra ID's admin-consent page as the simulator plays it: the admin sees which app asks
//! for which permission and accepts or declines; the browser goes back to the app's
//! `redirect_uri` with `admin_consent=True&tenant=…` or `error=access_denied`, as
//! Microsoft documents for `/{tenant}/v2.0/adminconsent`. An unknown app or a bad
//! `redirect_uri` ends on Entra ID's own error page, without a redirect.

// Early returns carry finished HTTP answers, as in the rest of the simulator.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::Simulator;

pub(crate) fn router() -> Router<Simulator> {
    Router::new()
        .route("/{tenant}/v2.0/adminconsent", get(ask))
        .route("/{tenant}/v2.0/adminconsent/answer", get(answer))
}

/// HTML-escapes text put into the page.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(crate) fn error_page(code: u32, text: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Html(format!(
            "<!doctype html><title>Sign in to your account</title><h1>Sorry, but we're having trouble signing you in.</h1><p id=\"error\">AADSTS{code}: {}</p>",
            escape(text)
        )),
    )
        .into_response()
}

/// The request's parameters, checked: the app's id and where to send the answer (for
/// consent and sign-in alike).
pub(crate) fn checked(
    sim: &Simulator,
    tenant: &str,
    query: &HashMap<String, String>,
) -> Result<(String, url::Url), Response> {
    if !matches!(tenant, "organizations" | "common") && !sim.names_tenant(tenant) {
        return Err(error_page(90002, &format!("Tenant '{tenant}' not found.")));
    }
    let client_id = query.get("client_id").cloned().unwrap_or_default();
    if !sim
        .shared
        .config
        .apps
        .iter()
        .any(|a| a.client_id == client_id)
    {
        return Err(error_page(
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory."),
        ));
    }
    let redirect = query
        .get("redirect_uri")
        .and_then(|u| url::Url::parse(u).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"));
    let Some(redirect) = redirect else {
        return Err(error_page(
            50011,
            "The redirect URI specified in the request does not match the redirect URIs configured for the application.",
        ));
    };
    Ok((client_id, redirect))
}

/// The consent prompt.
async fn ask(
    State(sim): State<Simulator>,
    Path(tenant): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (client_id, _) = match checked(&sim, &tenant, &query) {
        Ok(c) => c,
        Err(page) => return page,
    };
    let keep: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query.iter().filter(|(k, _)| {
            matches!(k.as_str(), "client_id" | "redirect_uri" | "state" | "scope")
        }))
        .finish();
    let scope = query.get("scope").cloned().unwrap_or_default();
    permissions_page(
        &sim,
        &client_id,
        &scope,
        &format!("adminconsent/answer?{keep}"),
    )
}

/// Entra ID's "Permissions requested — Accept for your organization" page: the app
/// asks for `scope`; Accept and Cancel go to `answer` with `accept=1` or `accept=0`.
pub(crate) fn permissions_page(
    sim: &Simulator,
    client_id: &str,
    scope: &str,
    answer: &str,
) -> Response {
    Html(format!(
        "<!doctype html><html lang=\"en\"><title>Permissions requested</title>\
<h1>Permissions requested</h1><p>Accept for your organization</p>\
<p>App <code id=\"app\">{}</code> asks, in tenant {}, for <code>{}</code>: read calendars and mailbox settings in all mailboxes.</p>\
<p><a id=\"accept\" href=\"{answer}&amp;accept=1\">Accept</a> <a id=\"cancel\" href=\"{answer}&amp;accept=0\">Cancel</a></p></html>",
        escape(client_id),
        escape(&sim.shared.config.tenant),
        escape(scope),
        answer = escape(answer),
    ))
    .into_response()
}

/// The admin's answer: recorded, and the browser sent back to the app.
async fn answer(
    State(sim): State<Simulator>,
    Path(tenant): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (client_id, mut redirect) = match checked(&sim, &tenant, &query) {
        Ok(c) => c,
        Err(page) => return page,
    };
    let state = query.get("state").cloned().unwrap_or_default();
    let accepted = query.get("accept").map(String::as_str) == Some("1");
    {
        let mut pairs = redirect.query_pairs_mut();
        if accepted {
            pairs
                .append_pair("admin_consent", "True")
                .append_pair("tenant", &sim.shared.config.tenant)
                .append_pair(
                    "scope",
                    query.get("scope").map(String::as_str).unwrap_or_default(),
                );
        } else {
            pairs
                .append_pair("error", "access_denied")
                .append_pair("error_subcode", "cancel")
                .append_pair(
                    "error_description",
                    "AADSTS65004: User declined to consent to access the app.",
                );
        }
        pairs.append_pair("state", &state);
    }
    if accepted {
        sim.world().consented.insert(client_id);
    }
    Redirect::to(redirect.as_str()).into_response()
}
