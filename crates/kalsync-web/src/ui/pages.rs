//! The pages: sign-in, the dashboard and the switchboard (with its event stream).

use std::convert::Infallible;
use std::time::Duration;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use jiff::Timestamp;
use kalsync_core::Lang;
use kalsync_store::DeliveryState;
use maud::{Markup, html};
use serde::Deserialize;

use super::i18n::{self, Texts};
use super::{Viewer, page, same_origin};
use crate::WebState;
use crate::api::status::{DirectoryEntry, directory_entries};
use crate::auth::{self, PeerIp, Via};
use crate::error::ApiError;

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub(crate) struct SignInForm {
    email: String,
    password: String,
}

fn sign_in_form(t: &Texts, microsoft: bool, email: &str, error: Option<&str>) -> Markup {
    page(
        t,
        t.sign_in,
        None,
        "/sign-in",
        html! {
            div.card {
                h1 { (t.sign_in) }
                p.muted { (t.sign_in_intro) }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                @if microsoft {
                    p { a.button #sign-in-microsoft href="/sign-in/microsoft" { (t.sign_in_microsoft) } }
                    p.muted { (t.or_password) }
                }
                form method="post" action="/sign-in" {
                    label for="email" { (t.email) }
                    input #email type="email" name="email" value=(email) required autocomplete="username" autofocus;
                    label for="password" { (t.password) }
                    input #password type="password" name="password" required autocomplete="current-password";
                    button type="submit" { (t.sign_in) }
                }
            }
        },
    )
}

pub(crate) async fn sign_in_page(State(state): State<WebState>, headers: HeaderMap) -> Markup {
    let t = i18n::texts(i18n::language(&headers));
    sign_in_form(t, state.microsoft365.is_some(), "", None)
}

pub(crate) async fn sign_in(
    State(state): State<WebState>,
    PeerIp(ip): PeerIp,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<SignInForm>,
) -> Response {
    let lang = i18n::language(&headers);
    let t = i18n::texts(lang);
    if let Err(e) = same_origin(&headers) {
        return e.into_response();
    }
    match auth::sign_in(&state, ip, &form.email, &form.password).await {
        Ok(account) => match auth::start_session(&state, &account).await {
            Ok((cookie, _)) => (jar.add(cookie), Redirect::to("/")).into_response(),
            Err(e) => e.into_response(),
        },
        Err(e) => {
            let (status, message) = match &e {
                ApiError::TooMany(s) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    match lang {
                        Lang::Sv => format!(
                            "För många försök. Försök igen om {} minuter.",
                            s.div_ceil(60)
                        ),
                        Lang::En => format!(
                            "Too many attempts. Try again in {} minutes.",
                            s.div_ceil(60)
                        ),
                    },
                ),
                ApiError::Forbidden(_) => (
                    StatusCode::FORBIDDEN,
                    match lang {
                        Lang::Sv => "Fel e-post eller lösenord.".to_owned(),
                        Lang::En => "The e-mail or the password is wrong.".to_owned(),
                    },
                ),
                _ => return e.into_response(),
            };
            (
                status,
                sign_in_form(t, state.microsoft365.is_some(), &form.email, Some(&message)),
            )
                .into_response()
        }
    }
}

/// The sign-out form.
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

pub(crate) async fn sign_out(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(e) = viewer.check_form(&headers, &form.csrf) {
        return e.into_response();
    }
    if let Via::Session { id_hash, .. } = &viewer.principal.via {
        if let Err(e) = state.store.delete_session(id_hash).await {
            return ApiError::from(e).into_response();
        }
    }
    (
        jar.add(auth::ended_cookie(state.secure_cookies)),
        Redirect::to("/sign-in"),
    )
        .into_response()
}

/// `12:05` today, `Mon 12:05` otherwise, in the instance's zone.
/// The expiries of the users' live Graph change subscriptions, soonest first.
fn subscription_expiries(users: &[kalsync_store::User], now: Timestamp) -> Vec<Timestamp> {
    let mut expiries: Vec<Timestamp> = users
        .iter()
        .filter_map(|u| {
            u.sync_state
                .0
                .get("graph_subscription")?
                .get("expires")?
                .as_str()?
                .parse()
                .ok()
        })
        .filter(|at| *at > now)
        .collect();
    expiries.sort();
    expiries
}

fn clock(t: Timestamp, zone: &jiff::tz::TimeZone, lang: Lang) -> String {
    i18n::moment(lang, t, Timestamp::now(), zone)
}

/// A company's statuses given up on, and those waiting for the PBX.
pub(crate) async fn company_deliveries(
    state: &WebState,
    company: kalsync_store::CompanyId,
) -> (Vec<kalsync_store::Delivery>, Vec<kalsync_store::Delivery>) {
    let of = |kind| async move {
        state
            .store
            .deliveries(company, kind, 10_000)
            .await
            .unwrap_or_default()
    };
    (
        of(DeliveryState::Dead).await,
        of(DeliveryState::Pending).await,
    )
}

/// An instance's health as the dashboard and the instance's overview show it.
pub(crate) struct Health {
    /// Its users.
    pub(crate) users: Vec<kalsync_store::User>,
    /// The last read of any of them.
    pub(crate) last: Option<Timestamp>,
    /// Users whose last read was throttled.
    pub(crate) throttled: usize,
    /// When the live Graph subscriptions expire, soonest first.
    pub(crate) subscriptions: Vec<Timestamp>,
    /// Statuses waiting for the PBX: due and not taken yet (one written ahead of its
    /// transition waits for its time, not for the PBX).
    pub(crate) queued: usize,
    /// Statuses given up on.
    pub(crate) dead: Vec<kalsync_store::Delivery>,
    /// Teams presence requests of its tenant on this node, where it uses Teams.
    pub(crate) teams: Option<crate::TeamsFigures>,
}

impl Health {
    /// The instance's health; `dead` and `queued` are its company's deliveries.
    pub(crate) async fn of(
        state: &WebState,
        instance: &kalsync_store::Instance,
        dead: &[kalsync_store::Delivery],
        queued: &[kalsync_store::Delivery],
        now: Timestamp,
    ) -> Health {
        let users = state.store.users(instance.id).await.unwrap_or_default();
        let mine = |list: &[kalsync_store::Delivery]| -> Vec<kalsync_store::Delivery> {
            list.iter()
                .filter(|d| users.iter().any(|u| u.id == d.user))
                .cloned()
                .collect()
        };
        let throttled = users
            .iter()
            .filter(|u| {
                u.last_error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("throttled"))
            })
            .count();
        let teams = match (&instance.source, &state.teams) {
            (kalsync_store::SourceConfig::Graph { tenant, .. }, Some(teams)) => {
                let target = state
                    .store
                    .targets(instance.company)
                    .await
                    .unwrap_or_default()
                    .iter()
                    .any(|t| {
                        t.active && matches!(t.config, kalsync_store::TargetConfig::Teams { .. })
                    });
                (target || instance.settings.teams.read).then(|| teams.figures(tenant))
            }
            _ => None,
        };
        Health {
            teams,
            last: users.iter().filter_map(|u| u.last_sync).max(),
            throttled,
            subscriptions: subscription_expiries(&users, now),
            queued: mine(queued).iter().filter(|d| d.due <= now).count(),
            dead: mine(dead),
            users,
        }
    }

    /// Users whose last read failed.
    pub(crate) fn failing(&self) -> Vec<&kalsync_store::User> {
        self.users
            .iter()
            .filter(|u| u.last_error.is_some())
            .collect()
    }

    /// Switched off, not read yet, or active.
    pub(crate) fn state_pill(&self, t: &Texts, instance: &kalsync_store::Instance) -> Markup {
        html! {
            @if !instance.active { span.pill.off { (t.inactive) } }
            @else if self.users.is_empty() { span.pill.warn { (t.no_users_yet) } }
            @else if self.last.is_none() { span.pill.warn { (t.not_read_yet) } }
            @else { span.pill.ok { (t.active) } }
        }
    }

    /// Ok, or how many users' reads fail: the first error on hover, and a tap (or
    /// click) opens the list of them on the instance's overview.
    pub(crate) fn errors_pill(&self, t: &Texts, instance: &kalsync_store::Instance) -> Markup {
        let failing = self.failing();
        html! {
            @if failing.is_empty() { span.pill.ok { (t.ok) } } @else {
                a.pill.bad href={ "/instances/" (instance.id) "/overview#failing" }
                    title=(failing[0].last_error.clone().unwrap_or_default()) { (failing.len()) }
            }
        }
    }

    /// None, or how many statuses were given up on, opening their list.
    pub(crate) fn dead_pill(&self, instance: &kalsync_store::Instance) -> Markup {
        html! {
            @if self.dead.is_empty() { "0" } @else {
                a.pill.bad href={ "/instances/" (instance.id) "/overview#dead" }
                    title=(self.dead[0].last_error.clone().unwrap_or_default()) { (self.dead.len()) }
            }
        }
    }
}

/// An instance's overview: its health at a glance, the users whose reads fail and the
/// statuses given up on.
pub(crate) async fn instance_overview(
    State(state): State<WebState>,
    viewer: Viewer,
    axum::extract::Path(instance): axum::extract::Path<String>,
) -> Response {
    let t = i18n::texts(viewer.lang);
    let found =
        match crate::api::instances::visible_instance(&state, &viewer.principal, &instance).await {
            Ok(f) => f,
            Err(e) => return e.into_response(),
        };
    let manages = viewer.principal.grant.manages(found.company);
    let company = super::company_name(&state, found.company).await;
    let now = Timestamp::now();
    let (dead, queued) = company_deliveries(&state, found.company).await;
    let health = Health::of(&state, &found, &dead, &queued, now).await;
    let zone = found.settings.time_zone.tz();
    let name_of = |id: kalsync_store::UserId| {
        health
            .users
            .iter()
            .find(|u| u.id == id)
            .map(|u| {
                u.display_name
                    .clone()
                    .unwrap_or_else(|| u.email.to_string())
            })
            .unwrap_or_default()
    };
    let failing = health.failing();
    page(
        t,
        &found.name,
        Some(&viewer.principal),
        &format!("/instances/{}/overview", found.id),
        html! {
            (super::instance_head(t, &company, &found, super::InstanceTab::Overview, manages))
            dl.health #health {
                div { dt { (t.status) } dd { (health.state_pill(t, &found)) } }
                div { dt { (t.users) } dd { (health.users.len()) } }
                div { dt { (t.last_sync) } dd { @match health.last { Some(at) => (i18n::moment(viewer.lang, at, now, zone)), None => span.muted { (t.never) } } } }
                div { dt { (t.errors) } dd { (health.errors_pill(t, &found)) } }
                @if let kalsync_store::SourceConfig::Graph { .. } = &found.source {
                    div { dt { (t.subscriptions) } dd {
                        // None at all: notifications are off (no public address), not a fault.
                        @if health.subscriptions.is_empty() { span.muted { "0/" (health.users.len()) } }
                        @else if health.subscriptions.len() == health.users.len() { span.pill.ok { (health.subscriptions.len()) "/" (health.users.len()) } }
                        @else { span.pill.warn { (health.subscriptions.len()) "/" (health.users.len()) } }
                    } }
                }
                div { dt { (t.throttled) } dd { (health.throttled) } }
                @if let Some(f) = &health.teams {
                    div #teams-figures { dt { "Teams" } dd {
                        (f.requests) " " small { (t.teams_requests) } br;
                        small.muted { (f.waits) " " (t.teams_waits) " · " }
                        @if f.throttled == 0 { small.muted { "0 " (t.teams_throttled) } }
                        @else { small.bad { (f.throttled) " " (t.teams_throttled) } }
                        @if let Some(at) = f.last_throttled { br; small.muted { (i18n::moment(viewer.lang, at, now, zone)) } }
                    } }
                }
                div { dt { (t.outbox) } dd { (health.queued) } }
                div { dt { (t.dead_letters) } dd { (health.dead_pill(&found)) } }
            }
            h2 { (t.users_with_errors) }
            @if failing.is_empty() { p.muted { (t.none_failing) } } @else {
                table #failing .stack {
                    thead { tr { th { (t.name) } th { (t.last_sync) } th { (t.errors) } } }
                    tbody { @for u in failing.iter().take(50) {
                        tr {
                            td data-label=(t.name) { a href={ "/users/" (u.id) } { (u.display_name.clone().unwrap_or_else(|| u.email.to_string())) } }
                            td data-label=(t.last_sync) { @match u.last_sync { Some(at) => (i18n::moment(viewer.lang, at, now, zone)), None => span.muted { (t.never) } } }
                            td data-label=(t.errors) .bad { (u.last_error.clone().unwrap_or_default()) }
                        }
                    } }
                }
            }
            h2 { (t.dead_letters) }
            @if health.dead.is_empty() { p.muted { (t.none_undelivered) } } @else {
                table #dead .stack {
                    thead { tr { th { (t.name) } th { (t.attempts) } th { (t.errors) } } }
                    tbody { @for d in health.dead.iter().take(50) {
                        tr {
                            td data-label=(t.name) { a href={ "/users/" (d.user) } { (name_of(d.user)) } }
                            td data-label=(t.attempts) { (d.attempts) }
                            td data-label=(t.errors) { (d.last_error.clone().unwrap_or_default()) }
                        }
                    } }
                }
            }
        },
    )
    .into_response()
}

/// The dashboard: per instance, its users, the last read, errors and undelivered
/// statuses.
pub(crate) async fn dashboard(State(state): State<WebState>, viewer: Viewer) -> Response {
    // A receptionist's page is the switchboard.
    if viewer.principal.grant.role == kalsync_store::Role::Reader {
        return Redirect::to("/switchboard").into_response();
    }
    let t = i18n::texts(viewer.lang);
    let mut rows = Vec::new();
    let companies = match state.store.companies().await {
        Ok(c) => c,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let companies: Vec<_> = companies
        .into_iter()
        .filter(|c| viewer.principal.grant.sees(c.id))
        .collect();
    let managed: Vec<_> = companies
        .iter()
        .filter(|c| viewer.principal.grant.manages(c.id))
        .map(|c| (c.id, c.name.clone()))
        .collect();
    let now = Timestamp::now();
    for company in companies {
        let (dead, queued) = company_deliveries(&state, company.id).await;
        for instance in state.store.instances(company.id).await.unwrap_or_default() {
            let health = Health::of(&state, &instance, &dead, &queued, now).await;
            let Health {
                users,
                last,
                subscriptions,
                throttled,
                ..
            } = &health;
            let (last, throttled, queued) = (*last, *throttled, health.queued);
            rows.push(html! {
                tr {
                    td data-label=(t.company) { (company.name) }
                                        td data-label=(t.instance) { a href={ "/instances/" (instance.id) } { (instance.name) } }
                    td data-label=(t.source) { (match instance.source.kind() { "graph" => "Microsoft 365", "ews" => "Exchange", other => other }) }
                    td data-label=(t.status) { (health.state_pill(t, &instance)) }
                    td data-label=(t.users) { (users.len()) }
                    td data-label=(t.last_sync) { @match last {
                        Some(at) => (clock(at, instance.settings.time_zone.tz(), viewer.lang)),
                        None => span.muted { (t.never) },
                    } }
                    td data-label=(t.errors) { (health.errors_pill(t, &instance)) }
                                        td.subscriptions data-label=(t.subscriptions) { @match (&instance.source, subscriptions.first()) {
                        (kalsync_store::SourceConfig::Graph { .. }, Some(first)) => {
                            (subscriptions.len()) "/" (users.len()) br;
                            small.muted { (t.renewed_by) " " (clock(*first, instance.settings.time_zone.tz(), viewer.lang)) }
                        },
                        (kalsync_store::SourceConfig::Graph { .. }, None) => span.muted { "0/" (users.len()) },
                        _ => span.muted { "—" },
                    } }
                    td data-label=(t.throttled) {
                        @if throttled == 0 { "0" } @else { span.bad { (throttled) } }
                        @if let Some(f) = health.teams.as_ref().filter(|f| f.throttled > 0) {
                            br; small.bad title=(t.teams_throttled) { "Teams " (f.throttled) }
                        }
                    }
                    td data-label=(t.outbox) { (queued) }
                    td data-label=(t.dead_letters) { (health.dead_pill(&instance)) }
                }
            });
        }
    }
    page(
        t,
        t.dashboard,
        Some(&viewer.principal),
        "/",
        html! {
            h1 { (t.dashboard) }
            h2 { (t.instances) }
            @if rows.is_empty() { p.muted { (t.no_instances) } } @else {
                table #instances .stack {
                    thead { tr {
                        th { (t.company) } th { (t.instance) } th { (t.source) } th { (t.status) }
                                                th { (t.users) } th { (t.last_sync) } th { (t.errors) } th { (t.subscriptions) }
                        th { (t.throttled) } th { (t.outbox) } th { (t.dead_letters) }
                    } }
                                        tbody { @for r in &rows { (r) } }
                }
            }
                        @for (id, name) in &managed {
                p.actions {
                    a.button href={ "/companies/" (id) "/instances/new" } { "+ " (t.new_instance) " · " (name) }
                    " "
                    a href={ "/companies/" (id) "/accounts" } { (t.accounts) " · " (name) }
                    " "
                    a href={ "/companies/" (id) "/pbx" } { (t.pbx_directory) " · " (name) }
                }
            }
            @if viewer.principal.operator().is_ok() {
                p { a href="/operators" { (t.operators) } }
            }
        },
    )
    .into_response()
}

/// The switchboard's filter.
#[derive(Debug, Deserialize)]
pub(crate) struct Filter {
    q: Option<String>,
    all: Option<String>,
}

impl Filter {
    fn all(&self) -> bool {
        self.all
            .as_deref()
            .is_some_and(|a| a == "1" || a == "on" || a == "true")
    }
}

/// The rows of the switchboard's table: each name opens the person; the status says
/// why (the whole PBX text on hover), the last column only when they are back. With
/// `companies` (an operator's) a company column tells namesakes apart.
fn switchboard_rows(
    t: &Texts,
    lang: Lang,
    entries: &[DirectoryEntry],
    companies: bool,
    teams: bool,
) -> Markup {
    let columns = 4 + usize::from(companies) + usize::from(teams);
    html! {
        @if entries.is_empty() {
            tr { td colspan=(columns) .muted { (t.nobody_away) } }
        }
        @for e in entries {
            tr data-user=(e.user) {
                td data-label=(t.name) {
                    a href={ "/users/" (e.user) } { (e.name) }
                    @if let Some(d) = &e.department { " " small.muted { (d) } }
                }
                @if companies { td data-label=(t.company) { (e.company) } }
                td data-label=(t.extension) { (e.extension.clone().unwrap_or_default()) }
                @match &e.absence {
                    Some(a) => {
                        td data-label=(t.status) class=(a.mode)
                            title=(if lang == Lang::Sv { &a.message_sv } else { &a.message_en }) {
                            (if lang == Lang::Sv { &a.label_sv } else { &a.label_en })
                        }
                        td data-label=(t.back) { (if lang == Lang::Sv { &a.back_sv } else { &a.back_en }) }
                    }
                    None => {
                        td data-label=(t.status) .available { (t.available) }
                        td data-label=(t.back) {}
                    }
                }
                @if teams {
                    @let (class, word) = teams_word(lang, e.teams.as_deref().unwrap_or_default());
                    td data-label="Teams" .teams { span { span class={ "dot " (class) } {} " " (word) } }
                }
            }
        }
    }
}

/// What Teams shows, as the Teams client says it: a colour class and the words.
fn teams_word(lang: Lang, presence: &str) -> (&'static str, &'static str) {
    let (availability, activity) = presence.split_once('/').unwrap_or((presence, ""));
    let sv = lang == Lang::Sv;
    match (availability, activity) {
        (_, "InACall" | "InAConferenceCall") => ("busy", if sv { "I samtal" } else { "In a call" }),
        (_, "InAMeeting") => ("busy", if sv { "I möte" } else { "In a meeting" }),
        (_, "Presenting") => ("dnd", if sv { "Presenterar" } else { "Presenting" }),
        ("DoNotDisturb", _) => ("dnd", if sv { "Stör ej" } else { "Do not disturb" }),
        ("Busy", _) => ("busy", if sv { "Upptagen" } else { "Busy" }),
        ("Available", _) => ("free", if sv { "Tillgänglig" } else { "Available" }),
        ("BeRightBack", _) => (
            "away",
            if sv {
                "Strax tillbaka"
            } else {
                "Be right back"
            },
        ),
        ("Away", _) => ("away", if sv { "Borta" } else { "Away" }),
        ("", _) => ("off", "—"),
        _ => ("off", "Offline"),
    }
}

pub(crate) async fn switchboard(
    State(state): State<WebState>,
    viewer: Viewer,
    Query(filter): Query<Filter>,
) -> Response {
    switchboard_page(&state, &viewer, &filter, None, StatusCode::OK).await
}

/// Who the viewer may set a status for from the switchboard (its company's people, by
/// name) and with which reasons (its first instance's catalogue): none for the operator
/// (who sets it on the person page) and for a reader whose company does not allow it.
async fn status_panel(
    state: &WebState,
    viewer: &Viewer,
) -> Option<(Vec<(String, String)>, Vec<(String, String)>)> {
    let company = viewer.principal.grant.company?;
    let allowed = viewer.principal.grant.manages(company)
        || (viewer.principal.grant.role == kalsync_store::Role::Reader
            && state.store.company(company).await.ok()?.readers_set_status);
    if !allowed {
        return None;
    }
    let mut people = Vec::new();
    let mut reasons = None;
    for instance in state.store.instances(company).await.ok()? {
        if reasons.is_none() {
            reasons = Some(super::people::reason_choices(
                &instance.settings,
                viewer.lang,
            ));
        }
        for user in state.store.users(instance.id).await.ok()? {
            let name = user
                .display_name
                .clone()
                .unwrap_or_else(|| user.email.to_string());
            let shown = match &user.extension {
                Some(x) => format!("{name} · {}", x.as_str()),
                None => name,
            };
            people.push((user.id.to_string(), shown));
        }
    }
    people.sort_by_key(|(_, shown)| shown.to_lowercase());
    Some((people, reasons?))
}

/// The switchboard, with `notice` (why a status could not be set) in its status panel.
async fn switchboard_page(
    state: &WebState,
    viewer: &Viewer,
    filter: &Filter,
    notice: Option<String>,
    code: StatusCode,
) -> Response {
    let t = i18n::texts(viewer.lang);
    let entries = match directory_entries(
        state,
        &viewer.principal,
        filter.q.as_deref(),
        filter.all(),
    )
    .await
    {
        Ok(e) => e,
        Err(e) => return e.into_response(),
    };
    let panel = status_panel(state, viewer).await;
    let mw = super::people::manual_words(viewer.lang);
    let q = filter.q.clone().unwrap_or_default();
    let companies = viewer.principal.operator().is_ok();
    let teams = crate::api::status::reads_teams(state, &viewer.principal).await;
    let stream = format!(
        "/switchboard/events?q={}&all={}",
        url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>(),
        if filter.all() { "1" } else { "" }
    );
    let markup = page(
        t,
        t.switchboard,
        Some(&viewer.principal),
        "/switchboard",
        html! {
            h1 { (t.away_now) " " small.muted #live { "· " (t.live) } }
            form method="get" action="/switchboard" {
                input type="search" name="q" value=(q) placeholder=(t.filter) aria-label=(t.filter);
                label { input type="checkbox" name="all" value="1" checked[filter.all()]; " " (t.show_available) }
                                button type="submit" { (t.search) }
            }
            table #switchboard .stack {
                thead { tr {
                    th { (t.name) }
                    @if companies { th { (t.company) } }
                    th { (t.extension) } th { (t.status) } th { (t.back) }
                    @if teams { th { "Teams" } }
                } }
                tbody #rows { (switchboard_rows(t, viewer.lang, &entries, companies, teams)) }
            }
            @if let Some((people, reasons)) = &panel {
                details.card #set-status open[notice.is_some()] {
                    summary { (mw.title) }
                    form method="post" action="/switchboard/status" {
                        input type="hidden" name="csrf" value=(viewer.principal.csrf());
                        p.muted { (mw.hint) }
                        @if let Some(n) = &notice { p.error #manual-error role="alert" { (n) } }
                        label for="manual-user" { (mw.person) }
                        select #manual-user name="user" required {
                            option value="" {}
                            @for (id, shown) in people { option value=(id) { (shown) } }
                        }
                        (super::people::status_fields(mw, reasons))
                    }
                }
            }
            script {
                (maud::PreEscaped(format!(
                    "new EventSource({}).addEventListener('rows',function(e){{document.getElementById('rows').innerHTML=e.data;}});",
                    serde_json::to_string(&stream).unwrap_or_else(|_| "\"\"".into())
                )))
            }
        },
    );
    (code, markup).into_response()
}

/// Sets a person's status from the switchboard (the receptionist, where the company
/// allows it); back to the switchboard, or the form again with why.
pub(crate) async fn switchboard_status(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(form): Form<super::people::ManualForm>,
) -> Response {
    if let Err(e) = viewer.check_form(&headers, &form.csrf) {
        return e.into_response();
    }
    let input = form.input();
    let done = if form.user.trim().is_empty() {
        Err(ApiError::invalid("user", "user: choose a person"))
    } else {
        crate::api::manual::set_manual(&state, &viewer.principal, form.user.trim(), &input).await
    };
    match done {
        Ok(_) => Redirect::to("/switchboard").into_response(),
        Err(ApiError::Invalid { message, .. }) => {
            let said = super::people::refused_text(viewer.lang, message);
            let filter = Filter { q: None, all: None };
            switchboard_page(
                &state,
                &viewer,
                &filter,
                Some(said),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => e.into_response(),
    }
}

/// How often the switchboard's stream looks for changes.
const SWITCHBOARD_EVERY: Duration = Duration::from_secs(2);
/// How long one stream lasts; the browser reconnects by itself.
const SWITCHBOARD_FOR: Duration = Duration::from_secs(30 * 60);
/// The switchboard's rows as server-sent events: sent when they change. The stream
/// ends when its session is signed out or its token revoked (asked before each look),
/// and one person holds at most [`auth::STREAMS_PER_PERSON`] at once.
pub(crate) async fn switchboard_events(
    State(state): State<WebState>,
    viewer: Viewer,
    Query(filter): Query<Filter>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Some(open) = auth::Streams::open(&state.streams, viewer.principal.key()) else {
        return Err(ApiError::TooMany(SWITCHBOARD_EVERY.as_secs()));
    };
    let t = i18n::texts(viewer.lang);
    let all = filter.all();
    let stopping = state.stopping.subscribe();
    let stream = futures_util::stream::unfold(
        (
            String::new(),
            tokio::time::Instant::now() + SWITCHBOARD_FOR,
            true,
            open,
        ),
        move |(last, end, first, open)| {
            let state = state.clone();
            let principal = viewer.principal.clone();
            let q = filter.q.clone();
            let mut stopping = stopping.clone();
            async move {
                if tokio::time::Instant::now() >= end || *stopping.borrow() {
                    return None;
                }
                if !first {
                    // The service stopping ends the stream at once, not after the pause.
                    tokio::select! {
                        () = tokio::time::sleep(SWITCHBOARD_EVERY) => {}
                        _ = stopping.changed() => return None,
                    }
                }
                if !principal.still_valid(&state, Timestamp::now()).await {
                    return None;
                }
                let entries = directory_entries(&state, &principal, q.as_deref(), all)
                    .await
                    .unwrap_or_default();
                let companies = principal.operator().is_ok();
                let teams = crate::api::status::reads_teams(&state, &principal).await;
                let rows =
                    switchboard_rows(t, viewer.lang, &entries, companies, teams).into_string();
                if rows == last {
                    // Unchanged: a comment, and another look after the pause.
                    return Some((
                        Ok(Event::default().comment("unchanged")),
                        (last, end, false, open),
                    ));
                }
                let event = Event::default().event("rows").data(rows.clone());
                Some((Ok(event), (rows, end, false, open)))
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
