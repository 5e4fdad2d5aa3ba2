//! The admin web UI, server-rendered (maud) so that nothing needs a front-end build: the
//! sign-in page, the dashboard (*instrumentpanel*) and the switchboard (*telefonist*)
//! with live updates over server-sent events. Every page is in Swedish and English.
//! Forms carry the session's CSRF token and are refused from another origin.

mod accounts;
pub mod connect;
mod directory;
pub mod i18n;
pub mod microsoft;
mod new_instance;
mod overview;
mod pages;
mod pbx;
mod people;
mod rules;
mod rules_form;

use axum::Router;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use kalsync_core::Lang;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use crate::WebState;
use crate::auth::{self, Principal};
use crate::error::ApiError;
use i18n::Texts;

/// The pages (state to be given).
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/", get(pages::dashboard))
        .route("/switchboard", get(pages::switchboard))
        .route("/overview", get(overview::all_companies))
        .route("/switchboard/events", get(pages::switchboard_events))
        .route("/switchboard/status", post(pages::switchboard_status))
        .route("/sign-in", get(pages::sign_in_page).post(pages::sign_in))
        .route("/sign-out", post(pages::sign_out))
        .route("/lang", get(switch_language))
        .route("/account", get(accounts::own))
        .route("/account/password", post(accounts::change_password))
        .route("/account/microsoft", post(microsoft::link))
        .route("/account/microsoft/unlink", post(microsoft::unlink))
        .route("/sign-in/microsoft", get(microsoft::sign_in))
        .route("/auth/microsoft/callback", get(microsoft::callback))
        .route(
            "/companies/{company}/accounts/microsoft",
            post(accounts::save_microsoft_roles),
        )
        .route(
            "/companies/{company}/accounts/readers",
            post(accounts::save_readers),
        )
        .route(
            "/companies/{company}/accounts",
            get(accounts::company_accounts).post(accounts::add_company_account),
        )
        .route(
            "/companies/{company}/accounts/{account}/remove",
            post(accounts::remove_company_account),
        )
        .route(
            "/operators",
            get(accounts::operator_accounts).post(accounts::add_operator_account),
        )
        .route(
            "/operators/{account}/remove",
            post(accounts::remove_operator_account),
        )
        .route("/companies/{company}/pbx", get(pbx::show))
        .route("/companies/{company}/pbx/{action}", post(pbx::act))
        .route(
            "/companies/{company}/instances/new",
            get(new_instance::show).post(new_instance::create),
        )
        .route(
            "/companies/{company}/instances/new/powershell",
            get(new_instance::show_powershell),
        )
        .route(
            "/companies/{company}/connect-microsoft365",
            post(connect::start),
        )
        .route("/instances/{instance}", get(people::instance))
        .route(
            "/instances/{instance}/overview",
            get(pages::instance_overview),
        )
        .route(
            "/instances/{instance}/settings",
            get(new_instance::settings).post(new_instance::save_settings),
        )
        .route("/instances/{instance}/remove", post(new_instance::remove))
        .route(
            "/instances/{instance}/directory",
            get(directory::show).post(directory::save),
        )
        .route("/instances/{instance}/directory/run", post(directory::run))
        .route(
            "/instances/{instance}/directory/remove",
            post(directory::remove),
        )
        .route("/instances/{instance}/check", post(people::check))
        .route("/instances/{instance}/users", post(people::add))
        .route("/instances/{instance}/import", post(people::import))
        .route(
            "/instances/{instance}/rules",
            get(rules::show).post(rules::submit),
        )
        .route(
            "/instances/{instance}/rules/preview",
            post(rules::live_preview),
        )
        .route("/instances/{instance}/rules/form", post(rules::submit_form))
        .route(
            "/instances/{instance}/rules/form/preview",
            post(rules::live_form_preview),
        )
        .route("/users/{user}", get(people::user))
        .route("/users/{user}/remove", post(people::remove))
        .route("/users/{user}/manual-status", post(people::manual_status))
        .route(
            "/users/{user}/manual-status/clear",
            post(people::manual_status),
        )
        .layer(axum::middleware::from_fn(html_errors))
}

/// A signed-in viewer of a page, and the page's language. Without a session the page
/// answers with a redirect to the sign-in page.
pub(crate) struct Viewer {
    pub(crate) principal: Principal,
    pub(crate) lang: Lang,
}

impl FromRequestParts<WebState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        let lang = i18n::language(&parts.headers);
        match auth::authenticate(parts, state, None).await {
            Ok(principal) => Ok(Viewer { principal, lang }),
            Err(ApiError::Unauthenticated) => Err(Redirect::to("/sign-in").into_response()),
            Err(e) => Err(e.into_response()),
        }
    }
}

impl Viewer {
    /// `Forbidden` unless a posted form comes from this site and carries the session's
    /// CSRF token.
    pub(crate) fn check_form(&self, headers: &HeaderMap, csrf: &str) -> Result<(), ApiError> {
        same_origin(headers)?;
        self.principal.check_csrf(csrf)
    }

    /// The instance a posted form is about: the form checked as by
    /// [`Viewer::check_form`], the instance one the viewer may see.
    pub(crate) async fn form_instance(
        &self,
        state: &WebState,
        headers: &HeaderMap,
        csrf: &str,
        instance: &str,
    ) -> Result<kalsync_store::Instance, ApiError> {
        self.check_form(headers, csrf)?;
        crate::api::instances::visible_instance(state, &self.principal, instance).await
    }
}

/// `Forbidden` when a form comes from another origin (its `Origin` or `Referer` names
/// another host than the one it was sent to).
pub(crate) fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    match from {
        None => Ok(()),
        Some(origin) => {
            let origin_host = origin
                .split("://")
                .nth(1)
                .and_then(|rest| rest.split('/').next())
                .unwrap_or("");
            if origin_host.eq_ignore_ascii_case(host) {
                Ok(())
            } else {
                Err(ApiError::Forbidden("a form from another site".into()))
            }
        }
    }
}

/// Which of an instance's pages is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InstanceTab {
    /// Its health at a glance.
    Overview,
    /// Its users (and the connection test).
    Users,
    /// Its rules and settings.
    Rules,
    /// Its connection and name.
    Connection,
    /// Its directory (Katalog Synk).
    Directory,
}

/// The company's name, for where one is; empty when it cannot be read.
pub(crate) async fn company_name(state: &WebState, company: kalsync_store::CompanyId) -> String {
    state
        .store
        .company(company)
        .await
        .map(|c| c.name)
        .unwrap_or_default()
}

/// The head of each instance page, as admin centres have it: where one is (dashboard ›
/// company › instance), the instance's name with its kind and state as a pill, and its
/// tabs (the connection only for those who manage it).
pub(crate) fn instance_head(
    t: &Texts,
    company: &str,
    instance: &kalsync_store::Instance,
    here: InstanceTab,
    manages: bool,
) -> Markup {
    let id = instance.id;
    let kind = match instance.source.kind() {
        "graph" => "Microsoft 365",
        "ews" => "Exchange",
        other => other,
    };
    let tab = |tab: InstanceTab| (tab == here).then_some("page");
    html! {
        nav.crumbs aria-label=(t.you_are_here) {
            a href="/" { (t.dashboard) } " › "
            @if !company.is_empty() { span { (company) } " › " }
            a href={ "/instances/" (id) } aria-current=[(here == InstanceTab::Users).then_some("page")] { (instance.name) }
        }
        h1 {
            (instance.name) " "
            small.muted { (kind) } " "
            @if instance.active { span.pill.ok { (t.active) } } @else { span.pill.off { (t.inactive) } }
        }
        nav.tabs aria-label=(instance.name) {
            a href={ "/instances/" (id) "/overview" } aria-current=[tab(InstanceTab::Overview)] { (t.overview_tab) }
            a href={ "/instances/" (id) } aria-current=[tab(InstanceTab::Users)] { (t.users) }
            a href={ "/instances/" (id) "/rules" } aria-current=[tab(InstanceTab::Rules)] { (t.edit_rules) }
            a href={ "/instances/" (id) "/directory" } aria-current=[tab(InstanceTab::Directory)] { (t.directory_tab) }
            @if manages {
                a href={ "/instances/" (id) "/settings" } aria-current=[tab(InstanceTab::Connection)] { (t.settings) }
            }
        }
        // On a phone the tabs scroll sideways: the current one is brought into view.
        script { (maud::PreEscaped("(function(){var c=document.querySelector('nav.tabs a[aria-current=page]');if(c&&c.scrollIntoView){c.scrollIntoView({block:'nearest',inline:'center'});}})();")) }
    }
}

/// Asks before something is deleted: what it is, what goes with it, a button that
/// posts `action` again with `confirm=yes`, and the way back to `back`. A removal form
/// posted without that confirmation gets this page instead of a deletion.
pub(crate) fn confirm_removal(
    t: &Texts,
    viewer: &Principal,
    what: &str,
    consequences: &str,
    action: &str,
    back: &str,
) -> Markup {
    let title = format!("{} {what}?", t.confirm_remove);
    page(
        t,
        &title,
        Some(viewer),
        back,
        html! {
            div.card #confirm role="alertdialog" aria-labelledby="confirm-title" {
                h1 #confirm-title { (title) }
                p { (consequences) }
                p { strong { (t.cannot_undo) } }
                form method="post" action=(action) {
                    input type="hidden" name="csrf" value=(viewer.csrf());
                    input type="hidden" name="confirm" value="yes";
                    button.danger type="submit" { (t.confirm_remove) }
                    " "
                    a.button href=(back) { (t.cancel) }
                }
            }
        },
    )
}

/// Errors as pages for a browser: a JSON error answer (a 403, a 404, a failure) to a
/// request that accepts HTML becomes a page in the request's language with the way
/// back. Pages that answer a form with its own message are HTML already and pass.
async fn html_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let lang = i18n::language(request.headers());
    let wants_html = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let response = next.run(request).await;
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !wants_html || !json {
        return response;
    }
    let t = i18n::texts(lang);
    let status = response.status();
    let (title, text) = match status {
        StatusCode::NOT_FOUND => (t.not_found_title, t.not_found_text),
        StatusCode::FORBIDDEN => (t.forbidden_title, t.forbidden_text),
        s if s.is_server_error() => (t.failed_title, t.failed_text),
        _ => return response,
    };
    let body = page(
        t,
        title,
        None,
        "/",
        html! {
            div.card #error-page {
                h1 { (title) }
                p { (text) }
                p { a.button href="/" { (t.back_home) } }
            }
        },
    );
    (status, body).into_response()
}

/// The frame of every page: title, navigation, language switch, sign-out.
pub(crate) fn page(
    t: &Texts,
    title: &str,
    viewer: Option<&Principal>,
    path: &str,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(t.html_lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Kalsync" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header {
                    strong.brand { "Kalsync" }
                                        @if viewer.is_some() {
                        nav {
                            @if viewer.is_some_and(|p| p.grant.role != kalsync_store::Role::Reader) {
                                a href="/" class=[(path == "/").then_some("here")] { (t.dashboard) }
                            }
                            a href="/switchboard" class=[(path == "/switchboard").then_some("here")] { (t.switchboard) }
                            @if viewer.is_some_and(|p| p.grant.role == kalsync_store::Role::Operator) {
                                a href="/overview" class=[(path == "/overview").then_some("here")] { (t.overview) }
                            }
                        }
                    }
                    span.spacer {}
                    a.lang href={ "/lang?to=" (t.other_code) "&back=" (path) } hreflang=(t.other_code) { (t.other_language) }
                    @if let Some(p) = viewer {
                        span.who { (t.signed_in_as) " " a href="/account" { (p.actor) } }
                                                @if let auth::Via::Session { .. } = &p.via {
                            form.inline method="post" action="/sign-out" {
                                input type="hidden" name="csrf" value=(p.csrf());
                                button type="submit" { (t.sign_out) }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{display:flex;gap:1rem;align-items:center;padding:.6rem 1.2rem;background:#12355b;color:#fff}
header a{color:#fff}.brand{font-size:1.2rem}nav{display:flex;gap:1rem}nav a.here{font-weight:bold;text-decoration:none;border-bottom:2px solid #fff}
.spacer{flex:1}.who{opacity:.8}form.inline{display:inline}
a.button{display:inline-block;padding:.55rem 1rem;border:1px solid #8a8f98;border-radius:4px;background:#fff;color:#1b1f24;text-decoration:none;font-weight:600}a.button:hover{background:#eef1f5}
main{padding:1.2rem;max-width:70rem}
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #e3e6ea}
th{background:#eef1f4}.divert{color:#a0341c}.info{color:#1f5fa8}.available{color:#2d7a3e}
.dot{display:inline-block;width:.7rem;height:.7rem;border-radius:50%;vertical-align:-.05rem;border:1px solid #5b6570}.dot.free{background:#2d7a3e}.dot.busy{background:#b3261e}.dot.dnd{background:#b3261e;box-shadow:inset 0 0 0 .2rem #fff}.dot.away{background:#e0a800}.dot.off{background:#fff}#teams-figures small{font-weight:normal}
.bad{color:#a0341c;font-weight:bold}.muted{color:#6b7280;overflow-wrap:anywhere}
.card{background:#fff;padding:1.2rem;border-radius:.4rem;max-width:24rem;box-shadow:0 1px 3px #0002}
details.card{margin-top:1.5rem}details.card>summary{font-weight:600;cursor:pointer}
label{display:block;margin:.6rem 0 .2rem}input[type=email],input[type=password],input[type=search]{width:100%;padding:.4rem;box-sizing:border-box}
button{margin-top:.8rem;padding:.4rem .9rem}.error{color:#a0341c}button.danger{background:#a0341c;color:#fff;border:1px solid #7d2814;border-radius:4px;padding:.55rem 1rem;font-weight:600}
.code{font-family:ui-monospace,monospace;font-size:.9em}pre.error{white-space:pre-wrap}
.forms{display:flex;gap:1rem;flex-wrap:wrap;margin-top:1rem}textarea,input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.4rem}
td form.inline button{margin:0}.booking{font-size:.9em}
.timebar{background:#fff;padding:.6rem;border-radius:.4rem}.day{display:flex;align-items:center;gap:.6rem;margin:.2rem 0}
.date{width:6.5rem;font-size:.85em;color:#6b7280}.track{position:relative;flex:1;height:1.4rem;background:#eef1f4;border-radius:.2rem}
.block{position:absolute;top:0;bottom:0;overflow:hidden;white-space:nowrap;font-size:.75em;color:#fff;padding:0 .2rem;border-radius:.2rem}
.block.divert{background:#a0341c}.block.info{background:#1f5fa8}a.block{text-decoration:none;min-width:.5rem}a.block:focus{outline:3px solid #f2b600}
.track .work{position:absolute;top:0;bottom:0;background:#dfe7f1}.hours .scale{position:relative;flex:1;height:1rem;font-size:.75em;color:#4b5563}.hours .scale span{position:absolute}
tr:target{background:#fff4c2}
main:has(input[name=kind][value=ews]:checked) .for-graph,main:has(input[name=kind][value=graph]:checked) .for-ews{display:none}main:has(#kind option[value=entra]:checked) #ldap,main:has(#kind option[value=ldap]:checked) #entra-permissions,main:has(#kind option[value=ldap]:checked) #entra-app{display:none}.now{position:absolute;top:-.2rem;bottom:-.2rem;width:2px;background:#1b1f24}
dl.health{display:grid;grid-template-columns:repeat(auto-fill,minmax(10rem,1fr));gap:.6rem;margin:1rem 0}dl.health div{background:#fff;border-radius:.4rem;padding:.6rem .8rem;box-shadow:0 1px 2px #0002}dl.health dt{font-size:.85em;color:#4b5563}dl.health dd{margin:.2rem 0 0;font-size:1.2rem;font-weight:600}
.crumbs{font-size:.9em;margin:.2rem 0 .4rem}.crumbs a{color:#12355b}
.pill{display:inline-block;text-decoration:none;padding:.05rem .6rem;border-radius:1rem;font-size:.8rem;font-weight:600;vertical-align:middle}.pill.ok{background:#dcf2e3;color:#1d5e31}.pill.warn{background:#fdf0d5;color:#6b4200}.pill.bad{background:#fbe0da;color:#8a2a15}.pill.off{background:#e5e7eb;color:#374151}
nav.tabs{display:flex;overflow-x:auto;gap:.2rem;border-bottom:2px solid #12355b;margin:.8rem 0}nav.tabs a{white-space:nowrap;padding:.45rem .9rem;text-decoration:none;color:#12355b;border-radius:.3rem .3rem 0 0}nav.tabs a[aria-current=page]{background:#12355b;color:#fff;font-weight:600}
.rules-form fieldset{background:#fff;border:1px solid #d5d9df;border-radius:.4rem;margin:.6rem 0;padding:.6rem .9rem}.rules-form fieldset.bad{border-color:#a0341c;border-width:2px}
.rules-form legend{font-weight:600}.rules-form .row{margin:.35rem 0;display:flex;flex-wrap:wrap;gap:.3rem .9rem;align-items:flex-end}.rules-form .row label{margin:0}
.rules-form .pair label{flex:1 1 10rem}.rules-form label.check{display:inline-flex;gap:.3rem;align-items:center;margin:0}.field-label{font-weight:600;flex-basis:100%}
.rules-form select,.rules-form input[type=number],.rules-form input[type=time]{display:block;padding:.35rem;max-width:100%}.rules-form .moves button{margin:0}
button.primary{background:#12355b;color:#fff;border:1px solid #0b2440;border-radius:4px}
.editor{display:grid;gap:0 1.2rem}@media (min-width:64rem){main:has(.editor){max-width:90rem}.editor{grid-template-columns:minmax(0,3fr) minmax(0,2fr);align-items:start}.editor #live{position:sticky;top:.5rem;max-height:calc(100vh - 1rem);overflow:auto}}
header{flex-wrap:wrap}.who,h1,h2{overflow-wrap:anywhere}pre,.code{overflow-wrap:anywhere}pre{overflow-x:auto;max-width:100%}
@media (max-width:40rem){
header{gap:.4rem .8rem;padding:.5rem .8rem}.spacer{display:none}main{padding:.8rem}h1{font-size:1.5rem}
main table:not(.stack) td,main table:not(.stack) th{overflow-wrap:anywhere;padding:.3rem .35rem}
table.stack thead{display:none}table.stack,table.stack tbody,table.stack tr,table.stack td{display:block;box-sizing:border-box}
table.stack tr{border-bottom:1px solid #c9ced6;padding:.3rem 0}table.stack td{border:0;padding:.15rem .6rem;display:flex;gap:1rem;justify-content:space-between}
table.stack td::before{content:attr(data-label);font-weight:600;color:#4b5563}
.date{width:4.5rem}.card{max-width:none}
}
";

/// Where the language switch returns to.
#[derive(Debug, Deserialize)]
pub(crate) struct Switch {
    to: String,
    back: Option<String>,
}

/// Sets the language cookie and returns to the page (only a path on this site).
async fn switch_language(
    State(state): State<WebState>,
    jar: CookieJar,
    Query(q): Query<Switch>,
) -> Result<(CookieJar, Redirect), StatusCode> {
    let lang = i18n::parse(&q.to).ok_or(StatusCode::BAD_REQUEST)?;
    let code = match lang {
        Lang::Sv => "sv",
        Lang::En => "en",
    };
    let back = q
        .back
        // A path on this site only: browsers drop tabs and newlines from a Location,
        // which would turn `/\t/evil.example` into `//evil.example`.
        .filter(|b| {
            b.starts_with('/')
                && !b.starts_with("//")
                && !b.contains('\\')
                && !b.chars().any(|c| c.is_control() || c.is_whitespace())
        })
        .unwrap_or_else(|| "/".into());
    let cookie = Cookie::build((i18n::LANG_COOKIE, code))
        .path("/")
        .same_site(SameSite::Lax)
        .secure(state.secure_cookies)
        .max_age(time::Duration::days(365))
        .build();
    Ok((jar.add(cookie), Redirect::to(&back)))
}
