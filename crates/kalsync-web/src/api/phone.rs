//! "I'm back" and "extend" from the phone (issue 19): a company's PBX posts an event to
//! `POST /api/v1/pbx/events`, signed per Standard Webhooks with the company's PBX secret
//! (made here, shown once, sealed at rest); the AMI listener gives the same events. A
//! `back` ends the absence in force now (the PBX is cleared at once), an `extend` moves
//! its end and return time — both as the person's phone override, audited.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jiff::{SignedDuration, Timestamp};
use kalsync_core::{Override, Source};
use kalsync_store::{CompanyId, NewAuditEntry, Store, User};
use rand::RngCore as _;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::companies::{audit, visible};
use crate::WebState;
use crate::auth::Principal;
use crate::error::ApiError;

/// How far a signed event's time may be from ours (Standard Webhooks' tolerance).
const TOLERANCE: SignedDuration = SignedDuration::from_mins(5);
/// How long a taken event's id is remembered: well past the tolerance, so a replay
/// within it is always recognised.
const REMEMBER: SignedDuration = SignedDuration::from_hours(1);
/// The largest event body taken.
pub(crate) const MAX_EVENT: usize = 8 * 1024;
/// The longest an absence may be extended to, ahead of now.
const MAX_AHEAD: SignedDuration = SignedDuration::from_hours(24 * 366);

/// Who an event is about: an extension or a mailbox of the company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// An extension ("201").
    Extension(String),
    /// A mailbox.
    Email(String),
}

/// What the phone says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneAction {
    /// "I'm back": the absence in force now ends now.
    Back,
    /// "Extend": the absence in force now lasts this many minutes longer.
    ExtendBy(u32),
    /// "Extend": the absence in force now lasts until then.
    ExtendUntil(Timestamp),
    /// A call started (`true`) or ended on the person's phone: shown in Teams, the
    /// PBX status is left as it is.
    Call(bool),
}

impl PhoneAction {
    fn name(&self) -> &'static str {
        match self {
            PhoneAction::Back => "back",
            PhoneAction::ExtendBy(_) | PhoneAction::ExtendUntil(_) => "extend",
            PhoneAction::Call(true) => "call_started",
            PhoneAction::Call(false) => "call_ended",
        }
    }
}

/// What a phone event may set off besides the person's status: the write-back to the
/// calendar after "I'm back", a call shown in Teams.
#[derive(Clone, Default)]
pub struct PhoneHooks {
    /// Shortens appointments after "I'm back".
    pub write_back: Option<std::sync::Arc<dyn crate::WriteBack>>,
    /// Shows calls in Teams.
    pub teams: Option<std::sync::Arc<dyn crate::TeamsPresence>>,
}

/// What an event did.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhoneDone {
    /// The person.
    pub user: String,
    /// `back`, `extend`, `call_started` or `call_ended`.
    pub action: String,
    /// Until when the phone's word holds (RFC 3339): the end of what was ended, or the
    /// new end (not for calls).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// For a call: whether Teams shows the company's calls (an active `teams` target).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub teams: Option<bool>,
}

/// An event as the PBX posts it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PbxEvent {
    /// The company (its id): whose secret signs the event.
    company: String,
    /// `back`, `extend`, `call_started` or `call_ended`.
    #[serde(rename = "type")]
    kind: String,
    /// The person's extension (or give `email`).
    extension: Option<String>,
    /// The person's mailbox (or give `extension`).
    email: Option<String>,
    /// `extend`: this many minutes longer (1–10080).
    minutes: Option<u32>,
    /// `extend`: until then (RFC 3339).
    until: Option<String>,
}

impl PbxEvent {
    fn parse(self) -> Result<(String, Who, PhoneAction), ApiError> {
        let who = match (self.extension, self.email) {
            (Some(x), None) if !x.trim().is_empty() => Who::Extension(x.trim().to_owned()),
            (None, Some(e)) if !e.trim().is_empty() => Who::Email(e.trim().to_lowercase()),
            _ => {
                return Err(ApiError::invalid(
                    "extension",
                    "extension: give the person's extension or e-mail, one of them",
                ));
            }
        };
        let action = match (self.kind.as_str(), self.minutes, self.until) {
            ("back", None, None) => PhoneAction::Back,
            ("call_started" | "call_ended", None, None) => {
                PhoneAction::Call(self.kind == "call_started")
            }
            ("call_started" | "call_ended", _, _) => {
                return Err(ApiError::invalid(
                    "minutes",
                    format!("minutes: `{}` takes no minutes or until", self.kind),
                ));
            }
            ("back", _, _) => {
                return Err(ApiError::invalid(
                    "minutes",
                    "minutes: `back` takes no minutes or until",
                ));
            }
            ("extend", Some(m), None) if (1..=7 * 24 * 60).contains(&m) => PhoneAction::ExtendBy(m),
            ("extend", Some(_), None) => {
                return Err(ApiError::invalid("minutes", "minutes: 1 to 10080 (a week)"));
            }
            ("extend", None, Some(u)) => {
                PhoneAction::ExtendUntil(u.trim().parse().map_err(|_| {
                    ApiError::invalid("until", format!("until: `{u}` is not a time (RFC 3339)"))
                })?)
            }
            ("extend", _, _) => {
                return Err(ApiError::invalid(
                    "minutes",
                    "minutes: `extend` takes minutes or until, one of them",
                ));
            }
            (other, _, _) => {
                return Err(ApiError::invalid(
                    "type",
                    format!("type: `{other}` is none of back, extend, call_started, call_ended"),
                ));
            }
        };
        Ok((self.company, who, action))
    }
}

/// Takes an event from a company's PBX: signed with the company's PBX secret (Standard
/// Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`), at most five
/// minutes off, each id once.
#[utoipa::path(post, path = "/api/v1/pbx/events", request_body = PbxEvent,
    responses((status = 200, body = PhoneDone), (status = 401, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
pub(crate) async fn event(
    State(state): State<WebState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<PhoneDone>, ApiError> {
    if body.len() > MAX_EVENT {
        return Err(ApiError::TooLarge(MAX_EVENT));
    }
    let now = Timestamp::now();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let (Some(id), Some(sent_at), Some(signature)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) else {
        return Err(ApiError::BadSignature(
            "unsigned: an event carries webhook-id, webhook-timestamp and webhook-signature (Standard Webhooks)".into(),
        ));
    };
    if id.len() > 256 || id.chars().any(|c| c.is_control()) {
        return Err(ApiError::BadSignature(
            "webhook-id: at most 256 characters".into(),
        ));
    }
    let sent_at: i64 = sent_at
        .parse()
        .map_err(|_| ApiError::BadSignature("webhook-timestamp: seconds since 1970".into()))?;
    let off = sent_at
        .checked_sub(now.as_second())
        .map(i64::unsigned_abs)
        .unwrap_or(u64::MAX);
    if off > TOLERANCE.as_secs().unsigned_abs() {
        return Err(ApiError::BadSignature(
            "webhook-timestamp: more than five minutes from now (a stale or replayed event, or the PBX's clock is off)".into(),
        ));
    }
    let parsed: PbxEvent = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the event is not valid: {e}")))?;
    let (company, who, action) = parsed.parse()?;
    // An unknown company and a wrong signature answer the same: which companies exist
    // is not told.
    let wrong = || ApiError::BadSignature("the signature does not match".into());
    let company: CompanyId = company.parse().map_err(|_| wrong())?;
    let (secret, _) = state
        .store
        .pbx_event_secret(company)
        .await?
        .ok_or_else(wrong)?;
    let key = kalsync_target_webhook::signing_key(&secret).map_err(|_| wrong())?;
    if !kalsync_target_webhook::verify(&key, id, sent_at, &body, signature) {
        return Err(wrong());
    }
    let done = phone_event(
        state.store.as_ref(),
        &state.phone_hooks(),
        company,
        &who,
        &action,
        now,
        Some(id),
    )
    .await?;
    Ok(Json(done))
}

/// Does what the phone says for the person `who` of `company` at `now`: takes the
/// event's id first (`event`; a replay is refused, and an event that then fails is
/// given back, so the PBX's retry is taken), finds the person and the absence in force
/// and sets the phone override — the same for a signed webhook and an AMI `UserEvent`.
/// After "I'm back", an instance that writes back has `write_back` shorten the
/// appointments the absence came from (in the background: the PBX does not wait for
/// Exchange).
pub async fn phone_event(
    store: &dyn Store,
    hooks: &PhoneHooks,
    company: CompanyId,
    who: &Who,
    action: &PhoneAction,
    now: Timestamp,
    event: Option<&str>,
) -> Result<PhoneDone, ApiError> {
    let Some(id) = event else {
        return apply(store, hooks, company, who, action, now, None).await;
    };
    if !store
        .take_pbx_event(company, id, now, now - REMEMBER)
        .await?
    {
        return Err(ApiError::Conflict(format!(
            "event {id} was taken already: nothing changed"
        )));
    }
    let done = apply(store, hooks, company, who, action, now, event).await;
    if done.is_err() {
        if let Err(e) = store.forget_pbx_event(company, id).await {
            tracing::warn!(error = %e, "a refused PBX event's id cannot be given back");
        }
    }
    done
}

/// [`phone_event`] once its id is taken.
async fn apply(
    store: &dyn Store,
    hooks: &PhoneHooks,
    company: CompanyId,
    who: &Who,
    action: &PhoneAction,
    now: Timestamp,
    event: Option<&str>,
) -> Result<PhoneDone, ApiError> {
    let (user, instance) = find(store, company, who).await?;
    if let PhoneAction::Call(started) = action {
        // A call changes nothing on the PBX (it knows its calls): it is shown in Teams.
        let shown = match &hooks.teams {
            Some(calls) => calls
                .call(user.clone(), *started, now)
                .await
                .map_err(|e| ApiError::Unavailable(format!("Teams: {e}")))?,
            None => false,
        };
        return Ok(PhoneDone {
            user: user.id.to_string(),
            action: action.name().into(),
            until: None,
            teams: Some(shown),
        });
    }
    let settings = &instance.settings;
    // What is in force now: the calendar as last read, with the other sources as they
    // are now (a status set a moment ago counts before the next read).
    let overrides = store.overrides(user.id, now).await?;
    let timeline = store
        .timeline(user.id)
        .await?
        .unwrap_or_default()
        .with_overrides(
            &overrides,
            settings,
            kalsync_core::Window::sync(now, settings.days_ahead),
        );
    let name = match who {
        Who::Extension(x) => format!("extension {x}"),
        Who::Email(e) => e.clone(),
    };
    let Some(absence) = timeline.at(now).cloned() else {
        return Err(ApiError::Conflict(format!(
            "{name} is not away now: there is nothing to {}",
            if *action == PhoneAction::Back {
                "end"
            } else {
                "extend"
            }
        )));
    };
    let (phone, until) = match action {
        PhoneAction::Back => {
            // Until the end of what is in force; one without an end, until the end of
            // the day (what comes after it shows again).
            let until = if absence.open_ended {
                super::manual::end_of_day(now, settings)?
            } else {
                absence.end
            };
            let available = Override {
                source: Source::Phone,
                id: "back".into(),
                start: now,
                end: Some(until),
                status: None,
            };
            (available, until)
        }
        PhoneAction::ExtendBy(_) | PhoneAction::ExtendUntil(_) | PhoneAction::Call(_) => {
            if absence.open_ended {
                return Err(ApiError::Conflict(format!(
                    "{name}'s absence lasts until cleared: there is no end to extend"
                )));
            }
            let until = match action {
                PhoneAction::ExtendBy(m) => absence.end + SignedDuration::from_mins(i64::from(*m)),
                PhoneAction::ExtendUntil(t) => *t,
                PhoneAction::Back | PhoneAction::Call(_) => absence.end,
            };
            if until <= absence.end || until > now + MAX_AHEAD {
                return Err(ApiError::invalid(
                    "until",
                    format!(
                        "until: after the absence's end ({}) and within a year",
                        absence.end
                    ),
                ));
            }
            let longer = Override {
                source: Source::Phone,
                id: "extend".into(),
                start: absence.start,
                end: Some(until),
                status: Some((absence.reason.clone(), absence.mode)),
            };
            (longer, until)
        }
    };
    if *action == PhoneAction::Back && absence.source == Source::Manual {
        // The person is back: a status set by hand for them ends too.
        store
            .set_override(user.id, Source::Manual, None, "pbx")
            .await?;
    }
    store
        .set_override(user.id, Source::Phone, Some(&phone), "pbx")
        .await?;
    if let Some(writer) = hooks.write_back.clone().filter(|_| {
        *action == PhoneAction::Back && absence.source == Source::Booking && settings.write_back
    }) {
        // The timed bookings in force now that the absence came from.
        let ended: Vec<_> = store
            .bookings(user.id)
            .await?
            .into_iter()
            // Only bookings that can make an absence: not cancelled, declined or free.
            .filter(|b| {
                !b.cancelled
                    && b.free_busy != kalsync_core::FreeBusy::Free
                    && b.response != kalsync_core::ResponseStatus::Declined
            })
            .filter(|b| match b.time {
                kalsync_core::BookingTime::Timed { start, end } => {
                    start <= now && now < end && start < absence.end && end > absence.start
                }
                kalsync_core::BookingTime::AllDay { .. } => false,
            })
            .map(|b| b.id)
            .collect();
        if !ended.is_empty() {
            let (instance, user) = (instance.clone(), user.clone());
            tokio::spawn(async move { writer.shorten(instance, user, ended, now).await });
        }
    }
    store
        .audit(NewAuditEntry {
            company: Some(company),
            actor: "pbx".into(),
            action: format!("phone.{}", action.name()),
            detail: serde_json::json!({"user": user.id, "until": until.to_string(), "event": event}),
        })
        .await?;
    Ok(PhoneDone {
        user: user.id.to_string(),
        action: action.name().into(),
        until: Some(until.to_string()),
        teams: None,
    })
}

/// The person of `company` an event names, with their instance.
async fn find(
    store: &dyn Store,
    company: CompanyId,
    who: &Who,
) -> Result<(User, kalsync_store::Instance), ApiError> {
    for instance in store.instances(company).await? {
        let found = store
            .users(instance.id)
            .await?
            .into_iter()
            .find(|u| match who {
                Who::Extension(x) => u.extension.as_ref().is_some_and(|e| e.as_str() == x),
                Who::Email(e) => u.email.as_str().eq_ignore_ascii_case(e),
            });
        if let Some(user) = found {
            return Ok((user, instance));
        }
    }
    Err(ApiError::NotFound(match who {
        Who::Extension(x) => format!("a person with extension {x} in this company"),
        Who::Email(e) => format!("a person with the e-mail {e} in this company"),
    }))
}

/// Whether a company's PBX can send events, and where.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PbxEventsView {
    /// Whether a secret is made (it is shown once, when made).
    secret_set: bool,
    /// When it was made (RFC 3339).
    created: Option<String>,
    /// Where the PBX posts its events.
    endpoint: String,
    /// The company id the events name.
    company: String,
}

/// A new PBX secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PbxSecretView {
    /// `whsec_` and base64 of 32 random bytes: what the PBX signs its events with.
    secret: String,
    /// When it was made (RFC 3339).
    created: String,
}

/// Whether the company's PBX can send "I'm back" and "extend".
#[utoipa::path(get, path = "/api/v1/companies/{company}/pbx-events", params(("company" = String, Path)),
    responses((status = 200, body = PbxEventsView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn get(
    State(state): State<WebState>,
    principal: Principal,
    Path(company): Path<String>,
) -> Result<Json<PbxEventsView>, ApiError> {
    let id = visible(&state, &principal, &company).await?;
    let made = state.store.pbx_event_secret(id).await?;
    Ok(Json(PbxEventsView {
        secret_set: made.is_some(),
        created: made.map(|(_, at)| at.to_string()),
        endpoint: "/api/v1/pbx/events".into(),
        company: id.to_string(),
    }))
}

/// Makes a new PBX secret (the old one stops working), shown this once; audited.
#[utoipa::path(post, path = "/api/v1/companies/{company}/pbx-events/secret", params(("company" = String, Path)),
    responses((status = 201, body = PbxSecretView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn make_secret(
    State(state): State<WebState>,
    principal: Principal,
    Path(company): Path<String>,
) -> Result<(StatusCode, Json<PbxSecretView>), ApiError> {
    let id = visible(&state, &principal, &company).await?;
    let (secret, created) = new_secret(&state, &principal, id).await?;
    Ok((
        StatusCode::CREATED,
        Json(PbxSecretView {
            secret,
            created: created.to_string(),
        }),
    ))
}

/// Makes and stores a new PBX secret for `company` (which `principal` must manage),
/// audited: the secret, to be shown once, and when it was made.
pub(crate) async fn new_secret(
    state: &WebState,
    principal: &Principal,
    company: CompanyId,
) -> Result<(String, Timestamp), ApiError> {
    principal.manages(company, "company")?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("whsec_{}", STANDARD.encode(bytes));
    let now = Timestamp::now();
    state
        .store
        .set_pbx_event_secret(company, Some(&SecretString::from(secret.clone())), now)
        .await?;
    audit(
        state,
        principal,
        Some(company),
        "pbx_events.secret_made",
        serde_json::json!({}),
    )
    .await?;
    Ok((secret, now))
}

/// Removes the PBX secret: the PBX's events are refused until a new one is made.
#[utoipa::path(delete, path = "/api/v1/companies/{company}/pbx-events/secret", params(("company" = String, Path)),
    responses((status = 204), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn remove_secret(
    State(state): State<WebState>,
    principal: Principal,
    Path(company): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = visible(&state, &principal, &company).await?;
    forget_secret(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes `company`'s PBX secret (which `principal` must manage), audited.
pub(crate) async fn forget_secret(
    state: &WebState,
    principal: &Principal,
    company: CompanyId,
) -> Result<(), ApiError> {
    principal.manages(company, "company")?;
    state
        .store
        .set_pbx_event_secret(company, None, Timestamp::now())
        .await?;
    audit(
        state,
        principal,
        Some(company),
        "pbx_events.secret_removed",
        serde_json::json!({}),
    )
    .await
}
