//! The operator's page of every company (*Alla företag*): per company its instances with
//! their health, its people away now, its PBX targets and the statuses given up on; then
//! everyone with their absence now, what comes next and their last read.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use kalsync_core::Lang;
use kalsync_store::Role;
use maud::{Markup, html};

use super::i18n::{self, Texts};
use super::pages::Health;
use super::{Viewer, page};
use crate::WebState;
use crate::error::ApiError;

/// How many people the page lists at most; the switchboard's filter finds the rest.
const PEOPLE_SHOWN: usize = 2_000;
/// How many given-up statuses a company shows.
const DEAD_SHOWN: usize = 20;

/// One person's row.
struct Person {
    id: kalsync_store::UserId,
    name: String,
    company: String,
    email: String,
    extension: String,
    /// The PBX text now and its mode class; none: available.
    now: Option<(String, &'static str)>,
    next: Vec<String>,
    last_read: Option<String>,
    error: Option<String>,
}

/// One company's part.
struct CompanySummary {
    name: String,
    instances: Vec<(kalsync_store::Instance, Markup)>,
    users: usize,
    away: usize,
    targets: Vec<kalsync_store::Target>,
    dead: Vec<(kalsync_store::Delivery, String, String)>,
}

/// Every company, for the operator only.
pub(crate) async fn all_companies(State(state): State<WebState>, viewer: Viewer) -> Response {
    if viewer.principal.grant.role != Role::Operator {
        return ApiError::Forbidden("only the operator sees every company".into()).into_response();
    }
    let lang = viewer.lang;
    let t = i18n::texts(lang);
    let now = Timestamp::now();
    let companies = match state.store.companies().await {
        Ok(c) => c,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut summaries = Vec::new();
    let mut people = Vec::new();
    let mut total = 0;
    for company in companies {
        let (dead, queued) = super::pages::company_deliveries(&state, company.id).await;
        let mut summary = CompanySummary {
            name: company.name.clone(),
            instances: Vec::new(),
            users: 0,
            away: 0,
            targets: state.store.targets(company.id).await.unwrap_or_default(),
            dead: Vec::new(),
        };
        let mut names = std::collections::HashMap::new();
        for instance in state.store.instances(company.id).await.unwrap_or_default() {
            let health = Health::of(&state, &instance, &dead, &queued, now).await;
            let zone = instance.settings.time_zone.tz().clone();
            summary.users += health.users.len();
            for user in &health.users {
                total += 1;
                let name = user
                    .display_name
                    .clone()
                    .unwrap_or_else(|| user.email.to_string());
                names.insert(user.id, name.clone());
                let timeline = state
                    .store
                    .timeline(user.id)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let away = timeline.at(now).map(|a| {
                    (
                        timeline.message(a, &instance.settings, lang),
                        if a.mode == kalsync_core::Mode::Divert {
                            "divert"
                        } else {
                            "info"
                        },
                    )
                });
                summary.away += usize::from(away.is_some());
                if people.len() < PEOPLE_SHOWN {
                    people.push(Person {
                        id: user.id,
                        name,
                        company: company.name.clone(),
                        email: user.email.to_string(),
                        extension: user
                            .extension
                            .as_ref()
                            .map(|e| e.as_str().to_owned())
                            .unwrap_or_default(),
                        now: away,
                        next: timeline
                            .absences
                            .iter()
                            .filter(|a| a.start > now)
                            .take(3)
                            .map(|a| {
                                format!(
                                    "{} {}–{}",
                                    a.label(&instance.settings, lang),
                                    i18n::moment(lang, a.start, now, &zone),
                                    i18n::moment(lang, a.end, now, &zone)
                                )
                            })
                            .collect(),
                        last_read: user.last_sync.map(|at| i18n::moment(lang, at, now, &zone)),
                        error: user.last_error.clone(),
                    });
                }
            }
            let pill = health.state_pill(t, &instance);
            summary.instances.push((instance, pill));
        }
        summary.dead = dead
            .into_iter()
            .take(DEAD_SHOWN)
            .map(|d| {
                let who = names
                    .get(&d.user)
                    .cloned()
                    .unwrap_or_else(|| d.user.to_string());
                // The status sent, in the page's language (the stored payload is the
                // engine's `StatusUpdate`).
                let field = match lang {
                    Lang::Sv => "/absence/message_sv",
                    Lang::En => "/absence/message_en",
                };
                let what = match d.payload.pointer("/absence") {
                    Some(serde_json::Value::Null) | None => t.available.to_owned(),
                    Some(_) => d
                        .payload
                        .pointer(field)
                        .and_then(|m| m.as_str())
                        .unwrap_or("?")
                        .to_owned(),
                };
                (d, who, what)
            })
            .collect();
        summaries.push(summary);
    }
    let away: usize = summaries.iter().map(|s| s.away).sum();
    page(
        t,
        t.overview,
        Some(&viewer.principal),
        "/overview",
        html! {
            h1 { (t.overview) }
            p #summary { (away_of(lang, away, total)) " " a href="/switchboard" { (t.switchboard) } }
            (companies_table(t, &summaries))
            @for s in summaries.iter().filter(|s| !s.dead.is_empty()) {
                (dead_table(t, s))
            }
            h2 { (t.everyone) }
            @if total > PEOPLE_SHOWN { p.muted { (first_shown(lang, PEOPLE_SHOWN, total)) } }
            (people_table(t, &people))
        },
    )
    .into_response()
}

/// `3 of 10 away now.`
fn away_of(lang: Lang, away: usize, total: usize) -> String {
    match lang {
        Lang::Sv => format!("{away} av {total} borta nu."),
        Lang::En => format!("{away} of {total} away now."),
    }
}

/// When the list is cut.
fn first_shown(lang: Lang, shown: usize, total: usize) -> String {
    match lang {
        Lang::Sv => format!("De första {shown} av {total} visas; växelns sökfält hittar alla."),
        Lang::En => format!(
            "The first {shown} of {total} are shown; the switchboard's filter finds everyone."
        ),
    }
}

fn companies_table(t: &Texts, summaries: &[CompanySummary]) -> Markup {
    html! {
        table #companies .stack {
            thead { tr {
                th { (t.company) } th { (t.instances) } th { (t.users) } th { (t.away_now) }
                th { (t.pbx_targets) } th { (t.dead_letters) }
            } }
            tbody { @for s in summaries {
                tr {
                    td data-label=(t.company) { (s.name) }
                    td data-label=(t.instances) {
                        @if s.instances.is_empty() { span.muted { (t.none) } }
                        @for (i, pill) in &s.instances {
                            span.instance { a href={ "/instances/" (i.id) "/overview" } { (i.name) } " " (pill) } " "
                        }
                    }
                    td data-label=(t.users) { (s.users) }
                    td data-label=(t.away_now) { (s.away) }
                    td data-label=(t.pbx_targets) {
                        @if s.targets.is_empty() { span.muted { (t.none) } }
                        @for target in &s.targets {
                            span { (target.name) " " small.muted { "(" (target.config.kind()) ")" }
                                @if !target.active { " " span.pill.off { (t.inactive) } } } " "
                        }
                    }
                    td data-label=(t.dead_letters) {
                        @if s.dead.is_empty() { "0" } @else { span.pill.bad { (s.dead.len()) } }
                    }
                }
            } }
        }
    }
}

fn dead_table(t: &Texts, s: &CompanySummary) -> Markup {
    html! {
        h2 { (t.dead_letters) " · " (s.name) }
        table.dead.stack {
            thead { tr {
                th { (t.written) } th { (t.name) } th { (t.status) } th { (t.pbx_target) }
                th { (t.attempts) } th { (t.errors) }
            } }
            tbody { @for (d, who, what) in &s.dead {
                tr {
                    td data-label=(t.written) { (d.created.strftime("%Y-%m-%d %H:%M:%S UTC")) }
                    td data-label=(t.name) { a href={ "/users/" (d.user) } { (who) } }
                    td data-label=(t.status) { (what) }
                    td data-label=(t.pbx_target) { (s.targets.iter().find(|x| x.id == d.target).map_or_else(|| d.target.to_string(), |x| x.name.clone())) }
                    td data-label=(t.attempts) { (d.attempts) }
                    td data-label=(t.errors) .bad { (d.last_error.clone().unwrap_or_default()) }
                }
            } }
        }
    }
}

fn people_table(t: &Texts, people: &[Person]) -> Markup {
    html! {
        table #everyone .stack {
            thead { tr {
                th { (t.name) } th { (t.company) } th { (t.email) } th { (t.extension) }
                th { (t.status) } th { (t.next_absences) } th { (t.last_sync) }
            } }
            tbody { @for p in people {
                tr {
                    td data-label=(t.name) { a href={ "/users/" (p.id) } { (p.name) } }
                    td data-label=(t.company) { (p.company) }
                    td data-label=(t.email) { (p.email) }
                    td data-label=(t.extension) { (p.extension) }
                    @match &p.now {
                        Some((message, mode)) => td data-label=(t.status) class=(mode) { (message) },
                        None => td data-label=(t.status) .available { (t.available) },
                    }
                    td data-label=(t.next_absences) { (p.next.join("; ")) }
                    td data-label=(t.last_sync) {
                        @match &p.last_read { Some(at) => (at), None => span.muted { (t.not_read_yet) } }
                        @if let Some(e) = &p.error { " " span.bad { (e) } }
                    }
                }
            } }
        }
    }
}
