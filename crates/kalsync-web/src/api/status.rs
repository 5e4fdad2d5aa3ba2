//! What the PBX shows: a user's status now and timeline ahead, each absence with the
//! bookings it came from ("why is Anna diverted?"), and the switchboard directory of
//! who is away now and until when.

use axum::Json;
use axum::extract::{Path, Query, State};
use jiff::{SignedDuration, Timestamp};
use kalsync_core::{Absence, Booking, Lang, Timeline, Window, build_timeline};
use kalsync_store::Instance;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::users::visible_user;
use crate::WebState;
use crate::auth::Principal;
use crate::error::ApiError;

/// One absence as the PBX gets it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AbsenceView {
    /// Reason code, e.g. `lunch`.
    pub(crate) reason: String,
    /// The reason's label in English and Swedish.
    pub(crate) label_en: String,
    /// Swedish label.
    pub(crate) label_sv: String,
    /// `divert` or `info`.
    pub(crate) mode: String,
    /// Start (RFC 3339).
    pub(crate) start: String,
    /// End (RFC 3339).
    pub(crate) end: String,
    /// When the user is back (RFC 3339).
    pub(crate) returns_at: String,
    /// The PBX text in English.
    pub(crate) message_en: String,
    /// The PBX text in Swedish.
    pub(crate) message_sv: String,
    /// The user's own choice (prefix or category) decided it.
    pub(crate) user_choice: bool,
    /// Where it comes from: `booking`, `manual` (set by hand), `phone` or
    /// `automatic_replies`.
    pub(crate) source: String,
    /// Every source with a say during it, the deciding one first, then those it wins
    /// over (the calendar under a status set by hand, automatic replies under a lunch).
    pub(crate) sources: Vec<String>,
    /// It lasts until cleared (no return time is told).
    pub(crate) open_ended: bool,
    /// The bookings it came from, as stored (subjects only where the instance shows
    /// titles).
    #[schema(value_type = Vec<Object>)]
    pub(crate) bookings: Vec<Booking>,
}

/// A user's status now and ahead.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatusView {
    /// The user.
    pub(crate) user: String,
    /// Mailbox.
    pub(crate) email: String,
    /// Display name, if known.
    pub(crate) name: Option<String>,
    /// PBX extension, if any.
    pub(crate) extension: Option<String>,
    /// The absence in force now; none: available.
    pub(crate) now: Option<AbsenceView>,
    /// Today and the days ahead.
    pub(crate) timeline: Vec<AbsenceView>,
    /// The last read (RFC 3339).
    pub(crate) last_sync: Option<String>,
    /// Why the last read failed, if it did.
    pub(crate) last_error: Option<String>,
    /// The instance's zone (for drawing).
    #[serde(skip)]
    pub(crate) zone: jiff::tz::TimeZone,
    /// Days ahead the timeline covers.
    #[serde(skip)]
    pub(crate) days_ahead: u16,
    /// The instance's working hours (for drawing).
    #[serde(skip)]
    pub(crate) working_hours: kalsync_core::WorkingHours,
}

fn view(
    absence: &Absence,
    timeline: &Timeline,
    instance: &Instance,
    sources: &[(Absence, Vec<Booking>)],
    stored: &[Booking],
    overrides: &[kalsync_core::Override],
) -> AbsenceView {
    let settings = &instance.settings;
    // The bookings behind it: those of the re-built absences it overlaps with the same
    // reason (the stored timeline keeps no booking ids). Where the re-build cannot tell
    // (a prefix decided, and the instance keeps no titles), the stored bookings that
    // block its time.
    let overlaps = |start: Timestamp, end: Timestamp| start < absence.end && absence.start < end;
    let mut bookings: Vec<Booking> = sources
        .iter()
        .filter(|(a, _)| a.reason == absence.reason && overlaps(a.start, a.end))
        .flat_map(|(_, b)| b.iter().cloned())
        .collect();
    if bookings.is_empty() {
        let tz = settings.time_zone.tz();
        bookings = stored
            .iter()
            .filter(|b| !b.cancelled && b.free_busy != kalsync_core::FreeBusy::Free)
            .filter(|b| {
                kalsync_core::timeline::interval(&b.time, tz).is_some_and(|(s, e)| overlaps(s, e))
            })
            .cloned()
            .collect();
    }
    bookings.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    bookings.dedup_by(|a, b| a.id == b.id);
    // Who else has a say during it: other sources' absences over the same time, in
    // their order of precedence, after the one that decides.
    let mut below: Vec<kalsync_core::Source> = overrides
        .iter()
        .filter(|o| o.status.is_some())
        .filter(|o| o.start < absence.end && o.end.is_none_or(|e| e > absence.start))
        .map(|o| o.source)
        .collect();
    if !bookings.is_empty() {
        below.push(kalsync_core::Source::Booking);
    }
    below.sort();
    below.dedup();
    below.retain(|s| *s != absence.source);
    let said_by = std::iter::once(absence.source)
        .chain(below)
        .map(|s| s.as_str().to_owned())
        .collect();
    AbsenceView {
        reason: absence.reason.as_str().to_owned(),
        label_en: absence.label(settings, Lang::En).to_owned(),
        label_sv: absence.label(settings, Lang::Sv).to_owned(),
        mode: absence.mode.as_str().to_owned(),
        start: absence.start.to_string(),
        end: absence.end.to_string(),
        returns_at: absence.returns_at.to_string(),
        message_en: timeline.message(absence, settings, Lang::En),
        message_sv: timeline.message(absence, settings, Lang::Sv),
        user_choice: absence.user_choice,
        source: absence.source.as_str().to_owned(),
        sources: said_by,
        open_ended: absence.open_ended,
        bookings,
    }
}

/// A user's status now and the timeline ahead, each absence with its bookings.
#[utoipa::path(get, path = "/api/v1/users/{user}/status", params(("user" = String, Path)),
    responses((status = 200, body = StatusView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn user_status(
    State(state): State<WebState>,
    principal: Principal,
    Path(user): Path<String>,
) -> Result<Json<StatusView>, ApiError> {
    Ok(Json(
        status_of(&state, &principal, &user, Timestamp::now()).await?,
    ))
}

/// The status and timeline of the user named `user`, if `principal` may see it.
pub(crate) async fn status_of(
    state: &WebState,
    principal: &Principal,
    user: &str,
    now: Timestamp,
) -> Result<StatusView, ApiError> {
    let (found, _) = visible_user(state, principal, user).await?;
    let instance = state.store.instance(found.instance).await?;
    let timeline = state.store.timeline(found.id).await?.unwrap_or_default();
    let stored = state.store.bookings(found.id).await?;
    let overrides = state.store.overrides(found.id, now).await?;
    let window = Window::sync(now, instance.settings.days_ahead);
    let rebuilt = build_timeline(&stored, &instance.settings, window);
    let sources: Vec<(Absence, Vec<Booking>)> = rebuilt
        .absences
        .iter()
        .map(|a| {
            let from: Vec<Booking> = stored
                .iter()
                .filter(|b| a.bookings.contains(&b.id))
                .cloned()
                .collect();
            (a.clone(), from)
        })
        .collect();
    let shown_from = now - SignedDuration::from_hours(12);
    Ok(StatusView {
        user: found.id.to_string(),
        email: found.email.to_string(),
        name: found.display_name.clone(),
        extension: found.extension.as_ref().map(|e| e.as_str().to_owned()),
        now: timeline
            .at(now)
            .map(|a| view(a, &timeline, &instance, &sources, &stored, &overrides)),
        timeline: timeline
            .absences
            .iter()
            .filter(|a| a.end > shown_from)
            .map(|a| view(a, &timeline, &instance, &sources, &stored, &overrides))
            .collect(),
        last_sync: found.last_sync.map(|t| t.to_string()),
        last_error: found.last_error.clone(),
        zone: instance.settings.time_zone.tz().clone(),
        days_ahead: instance.settings.days_ahead,
        working_hours: instance.settings.working_hours.clone(),
    })
}

/// Who to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct DirectoryQuery {
    /// Only names, e-mails, extensions or company names containing this (any case).
    q: Option<String>,
    /// Also those who are available.
    all: Option<bool>,
}

/// One person on the switchboard.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DirectoryEntry {
    /// The user.
    pub(crate) user: String,
    /// Name, or the e-mail when none.
    pub(crate) name: String,
    /// Mailbox.
    pub(crate) email: String,
    /// PBX extension.
    pub(crate) extension: Option<String>,
    /// The company.
    pub(crate) company: String,
    /// The department (from the directory).
    pub(crate) department: Option<String>,
    /// Away now; none: available.
    pub(crate) absence: Option<AwayView>,
    /// What Teams shows (`availability/activity`, as last read), where the instance
    /// reads Teams; empty: not read yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) teams: Option<String>,
}

/// Away now, and until when.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AwayView {
    /// Reason code.
    pub(crate) reason: String,
    /// Label (English).
    pub(crate) label_en: String,
    /// Label (Swedish).
    pub(crate) label_sv: String,
    /// `divert` or `info`.
    pub(crate) mode: String,
    /// Back at (RFC 3339).
    pub(crate) returns_at: String,
    /// When back, short, in Swedish: `13.00` today, `ons 2/12 08.00` on another day.
    pub(crate) back_sv: String,
    /// When back, short, in English: `13:00` today, `Wed 2 Dec 08:00` on another day.
    pub(crate) back_en: String,
    /// The PBX text in English.
    pub(crate) message_en: String,
    /// The PBX text in Swedish.
    pub(crate) message_sv: String,
}

/// Who is away now in the companies the principal sees, and until when (for
/// receptionist consoles).
#[utoipa::path(get, path = "/api/v1/directory", params(DirectoryQuery),
    responses((status = 200, body = [DirectoryEntry])))]
pub(crate) async fn directory(
    State(state): State<WebState>,
    principal: Principal,
    Query(query): Query<DirectoryQuery>,
) -> Result<Json<Vec<DirectoryEntry>>, ApiError> {
    Ok(Json(
        directory_entries(
            &state,
            &principal,
            query.q.as_deref(),
            query.all.unwrap_or(false),
        )
        .await?,
    ))
}

/// The switchboard's people: those `principal` sees whose name, e-mail, extension,
/// department or company contains `q`; only the absent ones unless `all`.
pub(crate) async fn directory_entries(
    state: &WebState,
    principal: &Principal,
    q: Option<&str>,
    all: bool,
) -> Result<Vec<DirectoryEntry>, ApiError> {
    let now = Timestamp::now();
    let needle = q.map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty());
    let mut out = Vec::new();
    for company in state.store.companies().await? {
        if !principal.grant.sees(company.id) {
            continue;
        }
        for instance in state.store.instances(company.id).await? {
            if !instance.active {
                continue;
            }
            let teams: Option<std::collections::HashMap<kalsync_store::UserId, String>> =
                if instance.settings.teams.read {
                    Some(
                        state
                            .store
                            .teams_people(instance.id)
                            .await?
                            .into_iter()
                            .filter_map(|p| Some((p.user, p.presence?)))
                            .collect(),
                    )
                } else {
                    None
                };
            for user in state.store.users(instance.id).await? {
                let name = user
                    .display_name
                    .clone()
                    .unwrap_or_else(|| user.email.to_string());
                let extension = user.extension.as_ref().map(|e| e.as_str().to_owned());
                if let Some(n) = &needle {
                    let hay = format!(
                        "{} {} {} {} {}",
                        name.to_lowercase(),
                        user.email.as_str().to_lowercase(),
                        extension.as_deref().unwrap_or(""),
                        user.department.as_deref().unwrap_or("").to_lowercase(),
                        company.name.to_lowercase()
                    );
                    if !hay.contains(n.as_str()) {
                        continue;
                    }
                }
                let timeline = state.store.timeline(user.id).await?.unwrap_or_default();
                let absence = timeline.at(now).map(|a| AwayView {
                    reason: a.reason.as_str().to_owned(),
                    label_en: a.label(&instance.settings, Lang::En).to_owned(),
                    label_sv: a.label(&instance.settings, Lang::Sv).to_owned(),
                    mode: a.mode.as_str().to_owned(),
                    returns_at: a.returns_at.to_string(),
                    // One until cleared (by hand, or what Teams shows) tells no return time.
                    back_sv: if a.open_ended {
                        "tills vidare".to_owned()
                    } else {
                        crate::ui::i18n::moment(
                            Lang::Sv,
                            a.returns_at,
                            now,
                            instance.settings.time_zone.tz(),
                        )
                    },
                    back_en: if a.open_ended {
                        "until further notice".to_owned()
                    } else {
                        crate::ui::i18n::moment(
                            Lang::En,
                            a.returns_at,
                            now,
                            instance.settings.time_zone.tz(),
                        )
                    },
                    message_en: timeline.message(a, &instance.settings, Lang::En),
                    message_sv: timeline.message(a, &instance.settings, Lang::Sv),
                });
                if absence.is_none() && !all {
                    continue;
                }
                out.push(DirectoryEntry {
                    user: user.id.to_string(),
                    name,
                    email: user.email.to_string(),
                    extension,
                    company: company.name.clone(),
                    department: user.department.clone(),
                    absence,
                    teams: teams
                        .as_ref()
                        .map(|t| t.get(&user.id).cloned().unwrap_or_default()),
                });
            }
        }
    }
    out.sort_by_key(|e| e.name.to_lowercase());
    Ok(out)
}

/// Whether any instance the viewer sees reads Teams (the switchboard shows its column).
pub(crate) async fn reads_teams(state: &WebState, principal: &Principal) -> bool {
    for company in state.store.companies().await.unwrap_or_default() {
        if !principal.grant.sees(company.id) {
            continue;
        }
        for instance in state.store.instances(company.id).await.unwrap_or_default() {
            if instance.active && instance.settings.teams.read {
                return true;
            }
        }
    }
    false
}
