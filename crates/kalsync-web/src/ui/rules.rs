//! An instance's settings and rules: the rules file in an editor, tried against a
//! pasted calendar (`.ics`, as Outlook exports it) before it is saved — the engine of
//! `kalsync preview`, run on the page. Errors point at the line and column.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use kalsync_core::{InstanceSettings, Lang, Window, build_timeline};
use maud::{Markup, html};
use serde::Deserialize;

use super::i18n;
use super::{Viewer, page};
use crate::WebState;
use crate::api::instances::{InstanceChange, change_instance, visible_instance};
use crate::error::ApiError;

/// The editor's form.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RulesForm {
    csrf: String,
    settings: String,
    #[serde(default)]
    calendar: String,
    /// `preview` or `save`.
    action: String,
}

/// What the page shows under the editor.
enum Outcome {
    Nothing,
    Error(String),
    Saved,
    Preview(Markup),
}

async fn editor(
    state: &WebState,
    viewer: &Viewer,
    instance: &str,
    settings_text: Option<&str>,
    calendar: &str,
    outcome: Outcome,
) -> Result<Markup, ApiError> {
    let t = i18n::texts(viewer.lang);
    let (found, manages, company) = rules_instance(state, viewer, instance).await?;
    let csrf = viewer.principal.csrf();
    let text = settings_text
        .map(str::to_owned)
        .unwrap_or_else(|| found.settings.to_toml());
    Ok(rules_page(
        viewer,
        &found,
        &company,
        manages,
        Tab::File,
        html! {
            p.muted { (t.rules_intro) }
                        @if let Outcome::Saved = &outcome { p.available role="status" { (t.saved) } }
            div.editor {
            form #rules method="post" action={ "/instances/" (found.id) "/rules" } {
                input type="hidden" name="csrf" value=(csrf);
                label for="settings" { (t.edit_rules) }
                textarea #settings name="settings" rows="18" spellcheck="false" class="code" { (text) }
                label for="calendar" { (t.calendar_to_try) }
                textarea #calendar name="calendar" rows="6" spellcheck="false" class="code" placeholder="BEGIN:VCALENDAR …" { (calendar) }
                button type="submit" name="action" value="preview" { (t.preview) }
                @if manages { " " button type="submit" name="action" value="save" { (t.save) } }
            }
            div #live aria-live="polite" { (live(t, &outcome)) }
            }
            // Typing in either box tries again after a pause; without scripts the
            // button does the same.
            script { (maud::PreEscaped(LIVE_PREVIEW)) }
        },
    ))
}

/// Which way of editing the rules a page shows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tab {
    Form,
    File,
}

/// The two ways of editing, as tabs.
fn tabs(t: &i18n::Texts, instance: &str, here: Tab) -> Markup {
    html! {
        nav.tabs aria-label=(t.rules) {
            a href={ "/instances/" (instance) "/rules" } aria-current=[(here == Tab::Form).then_some("page")] { (t.form_tab) }
            a href={ "/instances/" (instance) "/rules?view=file" } aria-current=[(here == Tab::File).then_some("page")] { (t.toml_tab) }
        }
    }
}

/// The instance a rules page is about, whether the viewer manages it, its company's name.
async fn rules_instance(
    state: &WebState,
    viewer: &Viewer,
    instance: &str,
) -> Result<(kalsync_store::Instance, bool, String), ApiError> {
    let found = visible_instance(state, &viewer.principal, instance).await?;
    let manages = viewer.principal.grant.manages(found.company);
    let company = super::company_name(state, found.company).await;
    Ok((found, manages, company))
}

/// A rules page: the instance's head, the two ways of editing, and `body`.
fn rules_page(
    viewer: &Viewer,
    found: &kalsync_store::Instance,
    company: &str,
    manages: bool,
    tab: Tab,
    body: Markup,
) -> Markup {
    let t = i18n::texts(viewer.lang);
    page(
        t,
        &format!("{} · {}", found.name, t.rules),
        Some(&viewer.principal),
        &format!("/instances/{}/rules", found.id),
        html! {
            (super::instance_head(t, company, found, super::InstanceTab::Rules, manages))
            (tabs(t, &found.id.to_string(), tab))
            (body)
        },
    )
}

/// The rules as a form, with the calendar to try them on and what they make of it.
#[allow(clippy::too_many_arguments)]
async fn form_page(
    state: &WebState,
    viewer: &Viewer,
    instance: &str,
    settings: Option<&InstanceSettings>,
    text: Option<&str>,
    problem: Option<&super::rules_form::Problem>,
    calendar: &str,
    outcome: Outcome,
) -> Result<Markup, ApiError> {
    let t = i18n::texts(viewer.lang);
    let (found, manages, company) = rules_instance(state, viewer, instance).await?;
    let settings = settings.unwrap_or(&found.settings);
    Ok(rules_page(
        viewer,
        &found,
        &company,
        manages,
        Tab::Form,
        html! {
            @if let Outcome::Saved = &outcome { p.available role="status" { (t.saved) } }
            // The preview beside the form on a wide screen, under it on a phone.
            div.editor {
            form #rules-form .rules-form method="post" action={ "/instances/" (found.id) "/rules/form" } {
                input type="hidden" name="csrf" value=(viewer.principal.csrf());
                (super::rules_form::form(t, viewer.lang, settings, text, problem, manages))
                h2 { (t.preview) }
                label for="calendar" { (t.calendar_to_try) }
                textarea #calendar name="calendar" rows="5" spellcheck="false" class="code" placeholder="BEGIN:VCALENDAR …" { (calendar) }
                div.actions {
                    button type="submit" name="op" value="preview" { (t.preview) }
                    @if manages { " " button.primary #save-rules type="submit" name="op" value="save" { (t.save) } }
                }
            }
            div #live aria-live="polite" { (live(t, &outcome)) }
            }
            script { (maud::PreEscaped(LIVE_PREVIEW)) }
        },
    ))
}

/// Saves a rules file as the instance's settings: the API's change, settings only — the
/// same checks, the same audit entry, and every user read again.
async fn save(
    state: &WebState,
    viewer: &Viewer,
    instance: &str,
    settings: String,
) -> Result<(), ApiError> {
    let found = visible_instance(state, &viewer.principal, instance).await?;
    let change = InstanceChange {
        name: None,
        active: None,
        source: None,
        settings: Some(settings),
    };
    change_instance(state, &viewer.principal, found, change).await?;
    Ok(())
}

/// The posted form: its fields in order (checkboxes repeat their name).
type Pairs = Vec<(String, String)>;

fn field<'a>(pairs: &'a Pairs, key: &str) -> Option<&'a str> {
    super::rules_form::get(pairs, key)
}

/// The form posted: saved, or shown again with a row moved, added or removed, a
/// template's rules, or a preview — or with what is wrong beside its rule.
pub(crate) async fn submit_form(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(instance): Path<String>,
    Form(pairs): Form<Pairs>,
) -> Response {
    if let Err(e) = viewer.check_form(&headers, field(&pairs, "csrf").unwrap_or("")) {
        return e.into_response();
    }
    let t = i18n::texts(viewer.lang);
    let calendar = field(&pairs, "calendar").unwrap_or("").to_owned();
    let (status, settings, text, problem, outcome) = match super::rules_form::read(t, &pairs) {
        Err((text, problem)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some(text),
            Some(problem),
            Outcome::Nothing,
        ),
        Ok((settings, super::rules_form::Op::Save)) => {
            if let Err(e) = save(&state, &viewer, &instance, settings.to_toml()).await {
                return e.into_response();
            }
            (StatusCode::OK, None, None, None, Outcome::Saved)
        }
        Ok((settings, super::rules_form::Op::Show)) => {
            let outcome = if field(&pairs, "op") == Some("preview") {
                let tried = RulesForm {
                    csrf: String::new(),
                    settings: settings.to_toml(),
                    calendar: calendar.clone(),
                    action: "preview".into(),
                };
                try_rules_bounded(&tried, viewer.lang).await.1
            } else {
                Outcome::Nothing
            };
            (StatusCode::OK, Some(settings), None, None, outcome)
        }
    };
    match form_page(
        &state,
        &viewer,
        &instance,
        settings.as_ref(),
        text.as_deref(),
        problem.as_ref(),
        &calendar,
        outcome,
    )
    .await
    {
        Ok(p) => (status, p).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The form's live preview: only the part under the form.
pub(crate) async fn live_form_preview(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(instance): Path<String>,
    Form(pairs): Form<Pairs>,
) -> Response {
    if let Err(e) = viewer
        .form_instance(
            &state,
            &headers,
            field(&pairs, "csrf").unwrap_or(""),
            &instance,
        )
        .await
    {
        return e.into_response();
    }
    let t = i18n::texts(viewer.lang);
    let mut asked = pairs.clone();
    asked.retain(|(k, _)| k != "op");
    asked.push(("op".into(), "preview".into()));
    let (status, outcome) = match super::rules_form::read(t, &asked) {
        Err((_, problem)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Outcome::Error(problem.message),
        ),
        Ok((settings, _)) => {
            let tried = RulesForm {
                csrf: String::new(),
                settings: settings.to_toml(),
                calendar: field(&pairs, "calendar").unwrap_or("").to_owned(),
                action: "preview".into(),
            };
            try_rules_bounded(&tried, viewer.lang).await
        }
    };
    (status, live(t, &outcome)).into_response()
}

/// What the editor says under the form: the error, or the preview.
fn live(t: &i18n::Texts, outcome: &Outcome) -> Markup {
    html! {
        @match outcome {
            Outcome::Error(e) => pre.error role="alert" #rules-error { (e) },
            Outcome::Preview(table) => { h2 { (t.preview) } (table) },
            Outcome::Nothing | Outcome::Saved => {}
        }
    }
}

const LIVE_PREVIEW: &str = r#"(() => {
  const form = document.getElementById('rules') || document.getElementById('rules-form');
  const live = document.getElementById('live');
  if (!form || !live || !window.fetch) return;
  let timer = null, asked = 0;
  const ask = () => {
    const body = new URLSearchParams(new FormData(form));
    body.set('action', 'preview');
    const mine = ++asked;
        // getAttribute: the buttons named `action` hide the form's own property.
    fetch(form.getAttribute('action') + '/preview', { method: 'POST', body, credentials: 'same-origin' })
      .then(r => r.text())
      .then(html => { if (mine === asked) live.innerHTML = html; })
      .catch(() => {});
  };
  // Selects and checkboxes say `change` (some browsers not `input`); text says `input`.
  const later = () => { clearTimeout(timer); timer = setTimeout(ask, 400); };
  form.addEventListener('input', later);
  form.addEventListener('change', later);
})();"#;

/// How long a preview may work before the page says so. It works on a blocking thread,
/// so no other request waits for it meanwhile; the calendar's own limits
/// ([`kalsync_ics::MAX_EXPANSION_STEPS`]) keep that work short.
const PREVIEW_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// [`try_rules`] on a blocking thread, within [`PREVIEW_DEADLINE`].
async fn try_rules_bounded(form: &RulesForm, lang: Lang) -> (StatusCode, Outcome) {
    let t = i18n::texts(lang);
    let form = form.clone();
    let work = tokio::task::spawn_blocking(move || try_rules(t, &form, lang));
    match tokio::time::timeout(PREVIEW_DEADLINE, work).await {
        Ok(Ok(done)) => done,
        Ok(Err(_)) | Err(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Outcome::Error(t.calendar_too_slow.to_owned()),
        ),
    }
}

/// The error or preview for the form's rules and calendar.
fn try_rules(t: &i18n::Texts, form: &RulesForm, lang: Lang) -> (StatusCode, Outcome) {
    let parsed = InstanceSettings::from_toml(&form.settings)
        .map_err(|e| e.located(t.rules_file, &form.settings));
    match parsed {
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, Outcome::Error(e)),
        Ok(_) if form.calendar.trim().is_empty() => {
            (StatusCode::OK, Outcome::Error(t.paste_calendar.to_owned()))
        }
        Ok(settings) => match preview(&settings, &form.calendar, lang) {
            Ok(table) => (StatusCode::OK, Outcome::Preview(table)),
            Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, Outcome::Error(e)),
        },
    }
}

/// The live preview: only the part under the form.
pub(crate) async fn live_preview(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(instance): Path<String>,
    Form(form): Form<RulesForm>,
) -> Response {
    if let Err(e) = viewer
        .form_instance(&state, &headers, &form.csrf, &instance)
        .await
    {
        return e.into_response();
    }
    let t = i18n::texts(viewer.lang);
    let (status, outcome) = try_rules_bounded(&form, viewer.lang).await;
    (status, live(t, &outcome)).into_response()
}

/// Which tab the rules page opens on.
#[derive(Debug, Deserialize)]
pub(crate) struct View {
    view: Option<String>,
}

pub(crate) async fn show(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(instance): Path<String>,
    axum::extract::Query(view): axum::extract::Query<View>,
) -> Response {
    let shown = if view.view.as_deref() == Some("file") {
        editor(&state, &viewer, &instance, None, "", Outcome::Nothing).await
    } else {
        form_page(
            &state,
            &viewer,
            &instance,
            None,
            None,
            None,
            "",
            Outcome::Nothing,
        )
        .await
    };
    match shown {
        Ok(p) => p.into_response(),
        Err(e) => e.into_response(),
    }
}

/// The absences the rules make of a pasted calendar, today and the days ahead.
fn preview(settings: &InstanceSettings, calendar: &str, lang: Lang) -> Result<Markup, String> {
    let t = i18n::texts(lang);
    let now = Timestamp::now();
    let shown = Window::sync(now, settings.days_ahead);
    // Bookings a little outside still shape what is shown (a chain, a long absence).
    let margin = SignedDuration::from_hours(24 * 31);
    let wide = Window {
        start: shown.start - margin,
        end: shown.end + margin,
    };
    let imported = kalsync_ics::import(
        calendar,
        &kalsync_ics::ImportOptions {
            default_zone: settings.time_zone.name().to_owned(),
            window: wide,
            owner: None,
        },
    )
    .map_err(|e| match e {
        kalsync_ics::IcsError::TooManyOccurrences(series) => {
            format!("{}: {series} {}", t.calendar_to_try, t.repeats_too_often)
        }
        other => format!("{}: {other}", t.calendar_to_try),
    })?;
    let timeline = build_timeline(&imported.bookings, settings, wide);
    let zone = settings.time_zone.tz().clone();
    let local = |at: Timestamp| i18n::moment(lang, at, now, &zone);
    let absences: Vec<_> = timeline.overlapping(shown.start, shown.end).collect();
    Ok(html! {
        p.muted { (imported.events) " " (t.events_read) @for w in &imported.warnings { br; (w) } }
        @if absences.is_empty() { p.muted { (t.no_absences) } } @else {
            table #preview {
                thead { tr { th { (t.from) } th { (t.to) } th { (t.reason) } th { (t.mode) } th { (t.back) } } }
                tbody { @for a in &absences {
                    tr {
                        td { (local(a.start)) }
                        td { (local(a.end)) }
                        td class=(a.mode.as_str()) { (a.label(settings, lang)) }
                        td { (if a.mode.as_str() == "divert" { t.divert } else { t.info }) }
                        td { (timeline.message(a, settings, lang)) }
                    }
                } }
            }
        }
    })
}

pub(crate) async fn submit(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(instance): Path<String>,
    Form(form): Form<RulesForm>,
) -> Response {
    if let Err(e) = viewer.check_form(&headers, &form.csrf) {
        return e.into_response();
    }
    let t = i18n::texts(viewer.lang);
    let parsed = InstanceSettings::from_toml(&form.settings)
        .map_err(|e| e.located(t.rules_file, &form.settings));
    let (status, outcome) = match (form.action.as_str(), parsed) {
        (_, Err(e)) => (StatusCode::UNPROCESSABLE_ENTITY, Outcome::Error(e)),
        ("preview", Ok(_)) => try_rules_bounded(&form, viewer.lang).await,
        ("save", Ok(_)) => {
            if let Err(e) = save(&state, &viewer, &instance, form.settings.clone()).await {
                return e.into_response();
            }
            (StatusCode::OK, Outcome::Saved)
        }
        (other, Ok(_)) => {
            return ApiError::invalid("action", format!("`{other}` (expected preview or save)"))
                .into_response();
        }
    };
    match editor(
        &state,
        &viewer,
        &instance,
        Some(&form.settings),
        &form.calendar,
        outcome,
    )
    .await
    {
        Ok(p) => (status, p).into_response(),
        Err(e) => e.into_response(),
    }
}
