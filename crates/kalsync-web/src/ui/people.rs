//! An instance's page (its users: add one, import a CSV, remove) and a user's page: the
//! time bar of today and the days ahead, each absence with its reason, mode, return
//! time and the bookings it came from — "why is Anna diverted?".

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use jiff::{SignedDuration, Timestamp, ToSpan as _};
use kalsync_core::Lang;
use maud::{Markup, html};
use serde::Deserialize;

use super::i18n::{self, Texts};
use super::{Viewer, page};
use crate::WebState;
use crate::api::instances::{CheckReport, run_check, visible_instance};
use crate::api::status::{AbsenceView, status_of};
use crate::api::users::{AddError, ImportReport, UserProblem, add_user, import_csv, remove_user};
use crate::error::ApiError;

/// What a form on the instance page left to say.
enum Notice {
    None,
    Error(String),
    Added(String),
    /// The add-user form refused: what was typed, and why, shown in the form.
    NotAdded(AddForm, UserProblem),
    /// An import's report, and the lines that failed (kept in the box to correct).
    Imported(ImportReport, String),
    Checked(CheckReport),
}

/// Users shown on the instance page at most; a search narrows them.
const PAGE_ROWS: usize = 200;

/// Whether `user` matches the search `q` (name, e-mail or extension, any case).
fn matches(user: &kalsync_store::User, q: &str) -> bool {
    let q = q.to_lowercase();
    user.email.as_str().to_lowercase().contains(&q)
        || user
            .display_name
            .as_deref()
            .is_some_and(|n| n.to_lowercase().contains(&q))
        || user
            .extension
            .as_ref()
            .is_some_and(|e| e.as_str().contains(&q))
}

async fn instance_page(
    state: &WebState,
    viewer: &Viewer,
    instance: &str,
    notice: Notice,
    q: &str,
) -> Result<Markup, ApiError> {
    let t = i18n::texts(viewer.lang);
    let found = visible_instance(state, &viewer.principal, instance).await?;
    let all = state.store.users(found.id).await?;
    let q = q.trim();
    let matching: Vec<_> = all
        .iter()
        .filter(|u| q.is_empty() || matches(u, q))
        .collect();
    let users = &matching[..matching.len().min(PAGE_ROWS)];
    let manages = viewer.principal.grant.manages(found.company);
    let csrf = viewer.principal.csrf();
    let zone = found.settings.time_zone.tz().clone();
    let company = super::company_name(state, found.company).await;
    Ok(page(
        t,
        &found.name,
        Some(&viewer.principal),
        &format!("/instances/{}", found.id),
        html! {
            (super::instance_head(t, &company, &found, super::InstanceTab::Users, manages))
            @match &notice {
                Notice::None => {}
                Notice::Error(e) => p.error role="alert" { (e) },
                                Notice::Added(email) => p.available role="status" { (t.added) " " (email) },
                Notice::Checked(report) => div #check-result role="status" {
                    @if report.ok { p.available { (t.check_passed) } } @else { p.bad { (t.check_failed) } }
                    ol { @for s in &report.steps {
                        li { @if s.ok { span.available { "✓ " } } @else { span.bad { "✗ " } } strong { (i18n::check_step(t, &s.name)) } ": " (s.detail) }
                    } }
                },
                Notice::NotAdded(..) => {}
                Notice::Imported(r, _) => div role="status" {
                    p { (t.imported) ": " (r.added) " " (t.added_n) ", " (r.existing) " " (t.existing_n) ", " (r.errors) " " (t.errors_n) }
                    @if r.errors > 0 {
                        table #import-errors {
                            thead { tr { th { (t.line) } th { (t.email) } th { (t.problem) } } }
                            tbody { @for row in r.rows.iter().filter(|r| r.outcome == "error") {
                                tr { td { (row.line) } td { (row.email) } td.bad {
                                    @match &row.problem {
                                        Some(p) => (p.say(viewer.lang)),
                                        None => (row.message.clone().unwrap_or_default()),
                                    }
                                } }
                            } }
                        }
                    }
                },
            }
                        @if manages {
                form.card #check method="post" action={ "/instances/" (found.id) "/check" } {
                    h3 { (t.test_connection) }
                    p.muted { (t.test_connection_intro) }
                    input type="hidden" name="csrf" value=(csrf);
                    label for="mailbox" { (t.test_mailbox) }
                    input #mailbox type="email" name="mailbox";
                    button type="submit" { (t.test_connection) }
                }
            }
            h2 { (t.users) " (" (all.len()) ")" }
            form #user-search method="get" action={ "/instances/" (found.id) } {
                label for="q" { (t.search_users) }
                input #q type="search" name="q" value=(q);
                button type="submit" { (t.search) }
            }
            @if users.len() < all.len() {
                p.muted #showing { (t.showing) " " (users.len()) " " (t.of_total) " " (all.len()) }
            }
            table #users {
                thead { tr { th { (t.name) } th { (t.email) } th { (t.extension) } th { (t.last_sync) } th { (t.errors) } @if manages { th {} } } }
                                tbody { @for u in users {
                    tr {
                        td { a href={ "/users/" (u.id) } { (u.display_name.clone().unwrap_or_else(|| u.email.to_string())) } }
                        td { (u.email) }
                        td { (u.extension.as_ref().map(|e| e.as_str().to_owned()).unwrap_or_default()) }
                        td { @match u.last_sync { Some(at) => (i18n::moment(viewer.lang, at, Timestamp::now(), &zone)), None => span.muted { (t.never) } } }
                        td { @match &u.last_error { Some(e) => span.bad { (e) }, None => span.available { (t.ok) } } }
                        @if manages { td {
                            form.inline method="post" action={ "/users/" (u.id) "/remove" } {
                                input type="hidden" name="csrf" value=(csrf);
                                button type="submit" title=(t.remove_hint) { (t.remove) }
                            }
                        } }
                    }
                } }
            }
            @if manages {
                div.forms {
                    form.card method="post" action={ "/instances/" (found.id) "/users" } {
                        h3 { (t.add_user) }
                        input type="hidden" name="csrf" value=(csrf);
                        @let (typed, problem) = match &notice {
                            Notice::NotAdded(f, p) => (f.clone(), Some(p)),
                            _ => (AddForm::default(), None),
                        };
                        @let wrong = |field: &str| problem.is_some_and(|p| p.field() == field);
                        @if let Some(p) = problem {
                            p.error #add-error role="alert" { (p.say(viewer.lang)) }
                        }
                        label for="new-email" { (t.email) }
                        input #new-email type="email" name="email" required value=(typed.email)
                            aria-invalid=[wrong("email").then_some("true")] autofocus[wrong("email")];
                        label for="new-name" { (t.name) }
                        input #new-name type="text" name="name" value=(typed.name.clone().unwrap_or_default())
                            aria-invalid=[wrong("display_name").then_some("true")] autofocus[wrong("display_name")];
                        label for="new-extension" { (t.extension) }
                        input #new-extension type="text" name="extension" inputmode="tel" value=(typed.extension.clone().unwrap_or_default())
                            aria-invalid=[wrong("extension").then_some("true")] autofocus[wrong("extension")];
                        button type="submit" { (t.add_user) }
                    }
                    form.card method="post" action={ "/instances/" (found.id) "/import" } {
                        h3 { (t.import_csv) }
                        input type="hidden" name="csrf" value=(csrf);
                        label for="csv" { (t.csv_hint) }
                        textarea #csv name="csv" rows="6" required placeholder="email,name,extension" {
                            @if let Notice::Imported(_, kept) = &notice { (kept) }
                        }
                        button type="submit" { (t.import_csv) }
                    }
                }
            }
        },
    ))
}

/// The page of an instance just made, with its connection tested on `mailbox`: the
/// check's steps, or why it could not run.
pub(super) async fn made_and_checked(
    state: &WebState,
    viewer: &Viewer,
    found: &kalsync_store::Instance,
    mailbox: &str,
) -> Response {
    let notice = match run_check(state, &viewer.principal, found, Some(mailbox)).await {
        Ok(report) => Notice::Checked(report),
        Err(
            e @ (ApiError::Invalid { .. } | ApiError::BadRequest(_) | ApiError::Unavailable(_)),
        ) => Notice::Error(e.to_string()),
        Err(e) => return e.into_response(),
    };
    after_form(state, viewer, &found.id.to_string(), StatusCode::OK, notice).await
}

/// The instance page again after a form, with what the form left to say.
async fn after_form(
    state: &WebState,
    viewer: &Viewer,
    instance: &str,
    status: StatusCode,
    notice: Notice,
) -> Response {
    match instance_page(state, viewer, instance, notice, "").await {
        Ok(p) => (status, p).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The instance page's search.
#[derive(Debug, Deserialize)]
pub(crate) struct Search {
    #[serde(default)]
    q: String,
}

pub(crate) async fn instance(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(instance): Path<String>,
    Query(search): Query<Search>,
) -> Response {
    match instance_page(&state, &viewer, &instance, Notice::None, &search.q).await {
        Ok(p) => p.into_response(),
        Err(e) => e.into_response(),
    }
}

/// The add-user form.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct AddForm {
    csrf: String,
    email: String,
    name: Option<String>,
    extension: Option<String>,
}

pub(crate) async fn add(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(instance): Path<String>,
    Form(form): Form<AddForm>,
) -> Response {
    let found = match viewer
        .form_instance(&state, &headers, &form.csrf, &instance)
        .await
    {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let added = add_user(
        &state,
        &viewer.principal,
        &found,
        &form.email,
        form.name.as_deref(),
        form.extension.as_deref(),
    )
    .await;
    let (status, notice) = match added {
        Ok(u) => (StatusCode::OK, Notice::Added(u.email.to_string())),
        Err(AddError::Problem(problem)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Notice::NotAdded(form, problem),
        ),
        Err(AddError::Api(e)) => return e.into_response(),
    };
    after_form(&state, &viewer, &instance, status, notice).await
}

/// The connection-check form.
#[derive(Debug, Deserialize)]
pub(crate) struct CheckForm {
    csrf: String,
    #[serde(default)]
    mailbox: String,
}

pub(crate) async fn check(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(instance): Path<String>,
    Form(form): Form<CheckForm>,
) -> Response {
    let found = match viewer
        .form_instance(&state, &headers, &form.csrf, &instance)
        .await
    {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let (status, notice) =
        match run_check(&state, &viewer.principal, &found, Some(&form.mailbox)).await {
            Ok(report) => (StatusCode::OK, Notice::Checked(report)),
            Err(
                e @ (ApiError::Invalid { .. } | ApiError::BadRequest(_) | ApiError::Unavailable(_)),
            ) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Notice::Error(e.to_string()),
            ),
            Err(e) => return e.into_response(),
        };
    after_form(&state, &viewer, &instance, status, notice).await
}

/// The import form.
#[derive(Debug, Deserialize)]
pub(crate) struct ImportForm {
    csrf: String,
    csv: String,
}

pub(crate) async fn import(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(instance): Path<String>,
    Form(form): Form<ImportForm>,
) -> Response {
    let found = match viewer
        .form_instance(&state, &headers, &form.csrf, &instance)
        .await
    {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let notice = match import_csv(&state, &viewer.principal, &found, &form.csv, &|_, _| {}).await {
        Ok(report) => {
            // The lines that failed stay in the box, to be corrected and sent again.
            let failed: std::collections::BTreeSet<u64> = report
                .rows
                .iter()
                .filter(|r| r.outcome == "error")
                .map(|r| r.line)
                .collect();
            let kept: String = form
                .csv
                .lines()
                .enumerate()
                .filter(|(i, _)| failed.contains(&(*i as u64 + 1)))
                .map(|(_, l)| format!("{l}\n"))
                .collect();
            Notice::Imported(report, kept)
        }
        Err(e @ ApiError::BadRequest(_)) => Notice::Error(e.to_string()),
        Err(e) => return e.into_response(),
    };
    after_form(&state, &viewer, &instance, StatusCode::OK, notice).await
}

/// The remove form; without `confirm=yes` it asks first.
#[derive(Debug, Deserialize)]
pub(crate) struct RemoveForm {
    csrf: String,
    confirm: Option<String>,
}

pub(crate) async fn remove(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(user): Path<String>,
    Form(form): Form<RemoveForm>,
) -> Response {
    if let Err(e) = viewer.check_form(&headers, &form.csrf) {
        return e.into_response();
    }
    if form.confirm.as_deref() != Some("yes") {
        let t = i18n::texts(viewer.lang);
        return match crate::api::users::visible_user(&state, &viewer.principal, &user).await {
            Ok((found, company)) => {
                if let Err(e) = viewer.principal.manages(company, "user") {
                    return e.into_response();
                }
                let mut what = found
                    .display_name
                    .clone()
                    .map(|n| format!("{n} ({})", found.email))
                    .unwrap_or_else(|| found.email.to_string());
                if let Some(x) = &found.extension {
                    what = format!("{what} · {x}");
                }
                super::confirm_removal(
                    t,
                    &viewer.principal,
                    &what,
                    t.remove_user_what,
                    &format!("/users/{}/remove", found.id),
                    &format!("/instances/{}", found.instance),
                )
                .into_response()
            }
            Err(e) => e.into_response(),
        };
    }
    match remove_user(&state, &viewer.principal, &user).await {
        Ok(instance) => Redirect::to(&format!("/instances/{instance}")).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Where an absence sits on a day's track: left and width in percent of the day.
fn on_day(
    a: &AbsenceView,
    day: jiff::civil::Date,
    zone: &jiff::tz::TimeZone,
) -> Option<(f64, f64)> {
    let start: Timestamp = a.start.parse().ok()?;
    let end: Timestamp = a.end.parse().ok()?;
    let from = day.to_zoned(zone.clone()).ok()?.timestamp();
    let to = (day + 1.day()).to_zoned(zone.clone()).ok()?.timestamp();
    if end <= from || start >= to {
        return None;
    }
    let length = to.duration_since(from).as_secs_f64();
    let left = start.max(from).duration_since(from).as_secs_f64() / length * 100.0;
    let right = end.min(to).duration_since(from).as_secs_f64() / length * 100.0;
    Some((left, (right - left).max(0.4)))
}

/// Minutes since midnight.
fn minutes(t: jiff::civil::Time) -> f64 {
    f64::from(t.hour()) * 60.0 + f64::from(t.minute())
}

fn when(text: &str, zone: &jiff::tz::TimeZone, lang: Lang) -> String {
    text.parse::<Timestamp>()
        .map(|t| i18n::moment(lang, t, Timestamp::now(), zone))
        .unwrap_or_else(|_| text.to_owned())
}

/// What a source is called in the "why", in `lang`.
fn source_label(lang: Lang, source: &str) -> Option<&'static str> {
    Some(match (lang, source) {
        (Lang::Sv, "booking") => "Kalendern",
        (Lang::En, "booking") => "The calendar",
        (Lang::Sv, "manual") => "Satt för hand",
        (Lang::En, "manual") => "Set by hand",
        (Lang::Sv, "phone") => "Från telefonen",
        (Lang::En, "phone") => "From the phone",
        (Lang::Sv, "automatic_replies") => "Autosvar i Outlook",
        (Lang::En, "automatic_replies") => "Outlook automatic replies",
        _ => return None,
    })
}

fn absence_list(t: &Texts, lang: Lang, list: &[AbsenceView], zone: &jiff::tz::TimeZone) -> Markup {
    html! {
        table #absences {
            thead { tr { th { (t.reason) } th { (t.mode) } th { (t.from) } th { (t.to) } th { (t.back) } th { (t.why) } } }
            tbody { @for (i, a) in list.iter().enumerate() {
                tr id={ "absence-" (i) } {
                    td class=(a.mode) { (if lang == Lang::Sv { &a.label_sv } else { &a.label_en }) }
                    td { (if a.mode == "divert" { t.divert } else { t.info }) }
                    td { (when(&a.start, zone, lang)) }
                    td { (when(&a.end, zone, lang)) }
                    td { (if lang == Lang::Sv { &a.message_sv } else { &a.message_en }) }
                    td {
                        @if a.source != "booking" { @if let Some(from) = source_label(lang, &a.source) { span.pill { (from) } " " } }
                        @let others: Vec<&str> = a.sources.iter().skip(1).filter_map(|s| source_label(lang, s)).collect();
                        @if !others.is_empty() {
                            span.muted.also { (if lang == Lang::Sv { "går före: " } else { "wins over: " }) (others.join(", ")) " " }
                        }
                        @if a.user_choice { span.muted { (t.own_choice) " " } }
                        @for b in &a.bookings {
                            div.booking {
                                (b.subject.clone().unwrap_or_else(|| t.no_title.to_owned()))
                                " · Outlook: " (i18n::show_as(lang, b.free_busy.as_str()))
                                @if !b.categories.is_empty() { " · " (b.categories.join(", ")) }
                            }
                        }
                        @if a.bookings.is_empty() && a.source == "booking" { span.muted { "—" } }
                    }
                }
            } }
        }
    }
}

pub(crate) async fn user(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(user): Path<String>,
) -> Response {
    user_page(&state, &viewer, &user, None, StatusCode::OK).await
}

/// What the status-by-hand form says: its words, in the page's language.
pub(crate) struct ManualWords {
    pub(crate) title: &'static str,
    pub(crate) hint: &'static str,
    pub(crate) reason: &'static str,
    pub(crate) mode: &'static str,
    pub(crate) divert: &'static str,
    pub(crate) info: &'static str,
    pub(crate) until: &'static str,
    pub(crate) until_cleared: &'static str,
    pub(crate) end_of_day: &'static str,
    pub(crate) hours: &'static str,
    pub(crate) set: &'static str,
    pub(crate) clear: &'static str,
    pub(crate) manual: &'static str,
    pub(crate) person: &'static str,
    pub(crate) invalid: &'static str,
}

pub(crate) fn manual_words(lang: Lang) -> &'static ManualWords {
    match lang {
        Lang::Sv => &ManualWords {
            title: "Status för hand",
            hint: "Går före kalendern så länge den gäller (till exempel när någon ringt in sjuk). Växeln följer direkt.",
            reason: "Orsak",
            mode: "Samtal",
            divert: "Hänvisa (samtal till meddelandet)",
            info: "Visa bara",
            until: "Till",
            until_cleared: "tills den tas bort",
            end_of_day: "dagens slut",
            hours: "timmar",
            set: "Sätt status",
            clear: "Ta bort status för hand",
            manual: "satt för hand",
            person: "Person",
            invalid: "Statusen gick inte att sätta: välj en person, en orsak och en tid framåt.",
        },
        Lang::En => &ManualWords {
            title: "Status set by hand",
            hint: "Wins over the calendar while it lasts (say, when someone calls in sick). The PBX follows at once.",
            reason: "Reason",
            mode: "Calls",
            divert: "Divert (calls to the announcement)",
            info: "Show only",
            until: "Until",
            until_cleared: "until cleared",
            end_of_day: "the end of the day",
            hours: "hours",
            set: "Set status",
            clear: "Clear the status set by hand",
            manual: "set by hand",
            person: "Person",
            invalid: "The status could not be set: choose a person, a reason and a time ahead.",
        },
    }
}

/// The reasons a status can be set with, from an instance's catalogue: code and label
/// in `lang` ("available" is clearing, not a status).
pub(crate) fn reason_choices(
    settings: &kalsync_core::InstanceSettings,
    lang: Lang,
) -> Vec<(String, String)> {
    settings
        .reasons
        .iter()
        .filter(|r| r.code.as_str() != kalsync_core::reason::AVAILABLE)
        .map(|r| {
            (
                r.code.as_str().to_owned(),
                if lang == Lang::Sv {
                    r.label_sv.clone()
                } else {
                    r.label_en.clone()
                },
            )
        })
        .collect()
}

/// The fields of a status form (reason, calls, until) and its button: the same on the
/// person page and the switchboard.
pub(crate) fn status_fields(mw: &ManualWords, reasons: &[(String, String)]) -> Markup {
    html! {
        label for="manual-reason" { (mw.reason) }
        select #manual-reason name="reason" {
            @for (code, label) in reasons { option value=(code) selected[code == "sick"] { (label) } }
        }
        fieldset {
            legend { (mw.mode) }
            label.check { input type="radio" name="mode" value="divert" checked; " " (mw.divert) }
            label.check { input type="radio" name="mode" value="info"; " " (mw.info) }
        }
        label for="manual-until" { (mw.until) }
        select #manual-until name="until" {
            option value="" { (mw.until_cleared) }
            option value="end_of_day" selected { (mw.end_of_day) }
            @for h in [1, 2, 4] { option value={ "PT" (h) "H" } { (h) " " (mw.hours) } }
        }
        button.primary #set-manual type="submit" { (mw.set) }
    }
}

/// The person page, with `notice` (an error) above the status form.
async fn user_page(
    state: &WebState,
    viewer: &Viewer,
    user: &str,
    notice: Option<String>,
    code: StatusCode,
) -> Response {
    let t = i18n::texts(viewer.lang);
    let status = match status_of(state, &viewer.principal, user, jiff::Timestamp::now()).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    // The reasons of the person's instance, where the viewer may set a status.
    let reasons: Option<Vec<(String, String)>> =
        match crate::api::users::visible_user(state, &viewer.principal, user).await {
            Ok((found, company)) => {
                match crate::api::manual::may_set_status(state, &viewer.principal, company, &found)
                    .await
                {
                    Ok(()) => state
                        .store
                        .instance(found.instance)
                        .await
                        .ok()
                        .map(|i| reason_choices(&i.settings, viewer.lang)),
                    Err(_) => None,
                }
            }
            Err(_) => None,
        };
    let manual_now = status.now.as_ref().is_some_and(|a| a.source == "manual");
    let mw = manual_words(viewer.lang);
    let zone = status.zone.clone();
    let today = Timestamp::now().to_zoned(zone.clone()).date();
    let days: Vec<jiff::civil::Date> = (0..=i64::from(status.days_ahead))
        .filter_map(|d| today.checked_add(d.days()).ok())
        .collect();
    let now_left = {
        let now = Timestamp::now();
        today
            .to_zoned(zone.clone())
            .ok()
            .map(|z| {
                now.duration_since(z.timestamp()).as_secs_f64()
                    / SignedDuration::from_hours(24).as_secs_f64()
                    * 100.0
            })
            .unwrap_or(0.0)
    };
    let name = status.name.clone().unwrap_or_else(|| status.email.clone());
    let markup = page(
        t,
        &name,
        Some(&viewer.principal),
        &format!("/users/{}", status.user),
        html! {
            h1 {
                (name)
                @if let Some(x) = &status.extension { " " small.muted { "· " (x) } }
            }
            p.muted.code { (status.email) }
            p {
                @match &status.now {
                    Some(a) => span class=(a.mode) { strong { (if viewer.lang == Lang::Sv { &a.message_sv } else { &a.message_en }) } },
                    None => span.available { strong { (t.available) } },
                }
                " · " (t.last_sync) ": " @match &status.last_sync { Some(s) => (when(s, &zone, viewer.lang)), None => span.muted { (t.never) } }
                @if let Some(e) = &status.last_error { " · " span.bad { (e) } }
            }
            @if manual_now { p.muted #manual-now { "(" (mw.manual) ")" } }
            h2 { (t.time_bar) }
            div.timebar #timebar {
                // The hours, above the days.
                div.day.hours aria-hidden="true" {
                    span.date {}
                    div.scale {
                        @for h in [0, 6, 12, 18] {
                            span style={ "left:" (h * 100 / 24) "%" } { (format!("{h:02}")) }
                        }
                    }
                }
                @for (i, day) in days.iter().enumerate() {
                    div.day {
                        span.date { (i18n::weekday(viewer.lang, day.weekday())) " " (day.strftime("%d/%m")) }
                        div.track {
                            // Working hours, shaded.
                            @if status.working_hours.is_working_day(*day) {
                                @let (from, to) = (minutes(status.working_hours.start()), minutes(status.working_hours.end()));
                                div.work style={ "left:" (format!("{:.2}", from / 14.4)) "%;width:" (format!("{:.2}", (to - from) / 14.4)) "%" } {}
                            }
                            @if i == 0 { div.now style={ "left:" (format!("{now_left:.2}")) "%" } {} }
                            @for (n, a) in status.timeline.iter().enumerate() {
                                @if let Some((left, width)) = on_day(a, *day, &zone) {
                                    // A tap (or a click) goes to the absence's row below.
                                    a class={ "block " (a.mode) } href={ "#absence-" (n) }
                                        style={ "left:" (format!("{left:.2}")) "%;width:" (format!("{width:.2}")) "%" }
                                        title=(if viewer.lang == Lang::Sv { &a.message_sv } else { &a.message_en })
                                        aria-label=(if viewer.lang == Lang::Sv { &a.message_sv } else { &a.message_en }) {
                                        // A label only where it fits (some 2 hours): never cut to letters.
                                        @if width >= 8.0 { (if viewer.lang == Lang::Sv { &a.label_sv } else { &a.label_en }) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { (t.absences) }
            @if status.timeline.is_empty() { p.muted { (t.no_absences) } } @else { (absence_list(t, viewer.lang, &status.timeline, &zone)) }
            @if let Some(reasons) = &reasons {
                form.card #manual-status method="post" action={ "/users/" (status.user) "/manual-status" } {
                    input type="hidden" name="csrf" value=(viewer.principal.csrf());
                    h2 { (mw.title) }
                    p.muted { (mw.hint) }
                    @if let Some(n) = &notice { p.error #manual-error role="alert" { (n) } }
                    (status_fields(mw, reasons))
                }
                @if manual_now {
                    form.inline method="post" action={ "/users/" (status.user) "/manual-status/clear" } {
                        input type="hidden" name="csrf" value=(viewer.principal.csrf());
                        button #clear-manual type="submit" { (mw.clear) }
                    }
                }
            }
        },
    );
    (code, markup).into_response()
}

/// A status form's fields: the person page's, and the switchboard's (which names the
/// person).
#[derive(Debug, Deserialize)]
pub(crate) struct ManualForm {
    pub(crate) csrf: String,
    #[serde(default)]
    pub(crate) user: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    until: String,
}

impl ManualForm {
    /// The status as the API takes it.
    pub(crate) fn input(&self) -> crate::api::manual::ManualInput {
        crate::api::manual::ManualInput {
            reason: self.reason.clone(),
            mode: (!self.mode.is_empty()).then(|| self.mode.clone()),
            until: (!self.until.is_empty()).then(|| self.until.clone()),
        }
    }
}

/// Why a status form was refused, in `lang` (in English, the API's own words).
pub(crate) fn refused_text(lang: Lang, message: String) -> String {
    match lang {
        Lang::Sv => manual_words(Lang::Sv).invalid.to_owned(),
        Lang::En => message,
    }
}

/// Sets (`/manual-status`) or clears (`/manual-status/clear`) a status by hand.
pub(crate) async fn manual_status(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(user): Path<String>,
    uri: axum::http::Uri,
    Form(form): Form<ManualForm>,
) -> Response {
    if let Err(e) = viewer.check_form(&headers, &form.csrf) {
        return e.into_response();
    }
    let done = if uri.path().ends_with("/clear") {
        crate::api::manual::clear_manual(&state, &viewer.principal, &user).await
    } else {
        crate::api::manual::set_manual(&state, &viewer.principal, &user, &form.input())
            .await
            .map(|_| ())
    };
    match done {
        Ok(()) => Redirect::to(&format!("/users/{user}")).into_response(),
        Err(ApiError::Invalid { message, .. }) => {
            let said = refused_text(viewer.lang, message);
            user_page(
                &state,
                &viewer,
                &user,
                Some(said),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => e.into_response(),
    }
}
