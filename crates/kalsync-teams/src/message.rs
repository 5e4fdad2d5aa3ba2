//! The calendar in Teams: the `teams` target. Each absence's announcement becomes the
//! person's status message, expiring at the absence's end (and, when the target says
//! so, the app's presence session `Away` or `DoNotDisturb`); a change replaces it; the
//! end clears it — only a message Kalsync set and that is still there: a message the
//! person wrote is never overwritten or cleared.
//!
//! Deliveries are gathered per instance into `$batch`es of twenty: one presence read
//! (to see the messages in force) and one write for twenty people. Each person goes
//! through one of a few lanes, always the same, so their changes keep their order.

use std::collections::HashMap;
use std::hash::{Hash as _, Hasher as _};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use kalsync_core::{Lang, Mode, Source};
use kalsync_engine::{DeliveryError, Envelope, StatusUpdate, Target};
use kalsync_graph::presence::{SESSION_LIMITS, status_text};
use kalsync_graph::{GraphClient, GraphError, Presence, PresenceWrite, SessionPresence};
use kalsync_store::{InstanceId, TeamsPart, TeamsPerson, UserId};
use tokio::sync::{mpsc, oneshot};

use crate::Teams;

/// The most changes in one `$batch`.
const BATCH: usize = 20;
/// Lanes per instance: batches in flight at once.
const LANES: usize = 4;
/// How long a lane waits for more deliveries to fill a batch.
const GATHER: Duration = Duration::from_millis(20);

/// What Teams should show for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wanted {
    /// The status message and its expiry; none: no message of Kalsync's.
    pub(crate) message: Option<(String, Timestamp)>,
    /// The app's session and until when; none: no session.
    pub(crate) session: Option<(SessionPresence, Timestamp)>,
}

/// The session an absence shows as: `Away` for information, `DoNotDisturb` for a
/// divert (the only documented pairs that say so).
pub(crate) fn session_for(mode: Mode) -> SessionPresence {
    match mode {
        Mode::Info => SessionPresence::Away,
        Mode::Divert => SessionPresence::Presenting,
    }
}

/// The name a session is remembered by: `availability/activity`.
pub(crate) fn session_name(p: SessionPresence) -> String {
    let (a, b) = p.pair();
    format!("{a}/{b}")
}

/// How long a session set at `now` to last until `until` is asked for: Graph's bounds.
pub(crate) fn lasting(now: Timestamp, until: Timestamp) -> SignedDuration {
    until
        .duration_since(now)
        .clamp(SESSION_LIMITS.0, SESSION_LIMITS.1)
}

/// The changes that bring Teams from `current` (as just read; none: not readable) to
/// `wanted` for `person`, and what is known of them afterwards. Pure.
pub(crate) fn plan(
    person: &TeamsPerson,
    current: Option<&Presence>,
    wanted: &Wanted,
    session_id: &str,
    now: Timestamp,
) -> (Vec<PresenceWrite>, TeamsPerson) {
    let mut next = person.clone();
    let mut writes = Vec::new();
    let shown = current.map_or("", |p| p.message.as_str());
    // Ours, while it has not expired (Teams drops it then by itself).
    let ours = person
        .message
        .as_deref()
        .filter(|_| person.message_until.is_none_or(|u| u > now));
    match &wanted.message {
        Some((text, until)) => {
            if !shown.is_empty() && Some(shown) != ours && shown != text {
                // The person's own message: left as it is, and not ours to clear.
                next.message = None;
                next.message_until = None;
            } else if shown != text || person.message_until != Some(*until) {
                writes.push(PresenceWrite::Message {
                    text: text.clone(),
                    expiry: Some(*until),
                });
                next.message = Some(text.clone());
                next.message_until = Some(*until);
            }
        }
        None => {
            if let Some(ours) = ours.filter(|o| *o == shown) {
                debug_assert!(!ours.is_empty());
                writes.push(PresenceWrite::ClearMessage);
            }
            next.message = None;
            next.message_until = None;
        }
    }
    let call = person.call_until.is_some_and(|u| u > now);
    match wanted.session {
        Some((presence, until)) => {
            let name = session_name(presence);
            if !call
                && (person.session.as_deref() != Some(&name) || person.session_until != Some(until))
            {
                writes.push(PresenceWrite::Session {
                    session: session_id.to_owned(),
                    presence,
                    lasting: lasting(now, until),
                });
                next.session_set = Some(now);
            }
            // During a PBX call the call holds the session; its end brings this back.
            next.session = Some(name);
            next.session_until = Some(until);
        }
        None => {
            if person.session.is_some() && !call {
                writes.push(PresenceWrite::ClearSession {
                    session: session_id.to_owned(),
                });
            }
            next.session = None;
            next.session_until = None;
            next.session_set = None;
        }
    }
    (writes, next)
}

/// One delivery waiting in a lane.
struct Job {
    user: UserId,
    email: String,
    sequence: u64,
    wanted: Wanted,
    presence: bool,
    done: oneshot::Sender<Result<(), DeliveryError>>,
}

/// An instance's lanes.
type Lanes = Vec<mpsc::Sender<Job>>;

/// The `teams` target: see the module.
pub struct TeamsTarget {
    teams: Teams,
    presence: bool,
    language: Lang,
    lanes: Mutex<HashMap<InstanceId, Lanes>>,
}

impl TeamsTarget {
    pub(crate) fn new(teams: Teams, presence: bool, language: Lang) -> TeamsTarget {
        TeamsTarget {
            teams,
            presence,
            language,
            lanes: Mutex::new(HashMap::new()),
        }
    }

    fn lane(&self, instance: InstanceId, user: UserId) -> mpsc::Sender<Job> {
        let mut all = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        let lanes = all.entry(instance).or_insert_with(|| {
            (0..LANES)
                .map(|_| {
                    let (tx, rx) = mpsc::channel(256);
                    tokio::spawn(run_lane(self.teams.clone(), instance, rx));
                    tx
                })
                .collect()
        });
        let mut h = std::hash::DefaultHasher::new();
        user.hash(&mut h);
        lanes[(h.finish() % LANES as u64) as usize].clone()
    }
}

#[async_trait]
impl Target for TeamsTarget {
    async fn deliver(
        &self,
        envelope: &Envelope,
        status: &StatusUpdate,
    ) -> Result<(), DeliveryError> {
        // What came from Teams goes nowhere back (no echo): Kalsync's own message and
        // session make way for what Teams shows itself.
        let absence = status
            .absence
            .as_ref()
            .filter(|a| a.source != Source::Teams);
        let user: UserId = status
            .user
            .id
            .parse()
            .map_err(|_| DeliveryError::Rejected("the status names no known person".into()))?;
        let instance = self.teams.instance_of(user).await?;
        let wanted = Wanted {
            message: absence.map(|a| {
                let text = match self.language {
                    Lang::Sv => &a.message_sv,
                    Lang::En => &a.message_en,
                };
                // Kept as Teams will show it, so it is recognised as Kalsync's own.
                (status_text(text), a.until)
            }),
            session: absence
                .filter(|_| self.presence)
                .map(|a| (session_for(a.mode), a.until)),
        };
        let (done, answer) = oneshot::channel();
        let job = Job {
            user,
            email: status.user.email.clone(),
            sequence: envelope.sequence,
            wanted,
            presence: self.presence,
            done,
        };
        self.lane(instance, user)
            .send(job)
            .await
            .map_err(|_| retry("the Teams lane closed"))?;
        answer
            .await
            .unwrap_or_else(|_| Err(retry("the Teams lane stopped")))
    }
}

fn retry(message: &str) -> DeliveryError {
    DeliveryError::Retry {
        message: message.into(),
        retry_after: None,
    }
}

/// A Graph error as a delivery's: throttling and outages are tried again, a refusal
/// is final.
pub(crate) fn delivery_error(e: &GraphError) -> DeliveryError {
    match e {
        GraphError::Throttled { retry_after } => DeliveryError::Retry {
            message: e.to_string(),
            retry_after: Some(*retry_after),
        },
        GraphError::Transport(_) | GraphError::Token(_) => retry(&e.to_string()),
        GraphError::Status { status, .. } if *status >= 500 => retry(&e.to_string()),
        _ => DeliveryError::Rejected(e.to_string()),
    }
}

/// A lane: gathers up to [`BATCH`] jobs, runs them as one batch, again, until the
/// target is dropped.
async fn run_lane(teams: Teams, instance: InstanceId, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let gathered = tokio::time::sleep(GATHER);
        tokio::pin!(gathered);
        while jobs.len() < BATCH {
            tokio::select! {
                job = rx.recv() => match job {
                    Some(job) => jobs.push(job),
                    None => break,
                },
                () = &mut gathered => break,
            }
        }
        run_batch(&teams, instance, jobs).await;
    }
}

/// Runs one batch of jobs and answers each.
async fn run_batch(teams: &Teams, instance: InstanceId, jobs: Vec<Job>) {
    // A person's later change in the same batch stands for the earlier one.
    let mut latest: HashMap<UserId, u64> = HashMap::new();
    for j in &jobs {
        let s = latest.entry(j.user).or_default();
        *s = (*s).max(j.sequence);
    }
    let (now_jobs, superseded): (Vec<Job>, Vec<Job>) = jobs
        .into_iter()
        .partition(|j| latest.get(&j.user) == Some(&j.sequence));
    for j in superseded {
        let _ = j.done.send(Ok(()));
    }
    let results = match teams.graph_of(instance).await {
        Ok(Some(graph)) => apply(teams, &graph, &now_jobs).await,
        Ok(None) => now_jobs.iter().map(|_| Ok(())).collect(),
        Err(e) => now_jobs.iter().map(|_| Err(e.clone())).collect(),
    };
    for (job, result) in now_jobs.into_iter().zip(results) {
        let _ = job.done.send(result);
    }
}

/// How long a batch waits for its tenant's budget before its deliveries are put off.
const BUDGET_WAIT: Duration = Duration::from_secs(5);

/// Which part of a person a write changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Message,
    Session,
}

fn part_of(write: &PresenceWrite) -> Part {
    match write {
        PresenceWrite::Message { .. } | PresenceWrite::ClearMessage => Part::Message,
        PresenceWrite::Session { .. } | PresenceWrite::ClearSession { .. } => Part::Session,
    }
}

/// Puts a whole batch off: the tenant is held or its budget spent (`wait`), or the
/// store failed.
fn put_off(jobs: &[Job], wait: Option<Duration>) -> Vec<Result<(), DeliveryError>> {
    jobs.iter()
        .map(|_| {
            Err(DeliveryError::Retry {
                message: match wait {
                    Some(_) => "Teams: the tenant's presence budget is spent for now".into(),
                    None => "Teams: the request budget cannot be read".into(),
                },
                retry_after: wait,
            })
        })
        .collect()
}

/// Reads the batch's people's presence, writes what changes, keeps what was done. Waits
/// at most [`BUDGET_WAIT`] for the budget each time (a throttled tenant puts its own
/// deliveries off, never the engine's other work), and writes right after the read, so
/// a message the person writes meanwhile is not overwritten.
async fn apply(teams: &Teams, graph: &GraphClient, jobs: &[Job]) -> Vec<Result<(), DeliveryError>> {
    let now = Timestamp::now();
    let users: Vec<UserId> = jobs.iter().map(|j| j.user).collect();
    let mut people = match teams.store().teams_persons(&users).await {
        Ok(p) => p,
        Err(e) => return jobs.iter().map(|_| Err(retry(&e.to_string()))).collect(),
    };
    let mut results: Vec<Result<(), DeliveryError>> = jobs.iter().map(|_| Ok(())).collect();
    // Object ids first, for whoever has none yet: a directory request (once a person),
    // outside the presence budget.
    let missing: Vec<usize> = (0..jobs.len())
        .filter(|&i| people[i].object_id.is_none())
        .collect();
    if !missing.is_empty() {
        let mails: Vec<String> = missing.iter().map(|&i| jobs[i].email.clone()).collect();
        let ids = graph.object_ids(&mails).await;
        for (&i, id) in missing.iter().zip(ids) {
            match id {
                Ok(id) => people[i].object_id = Some(id),
                Err(e) => {
                    teams.note_throttling(graph, &e);
                    results[i] = Err(delivery_error(&e));
                }
            }
        }
        let found: Vec<TeamsPerson> = missing
            .iter()
            .filter(|&&i| people[i].object_id.is_some())
            .map(|&i| TeamsPerson {
                user: people[i].user,
                object_id: people[i].object_id.clone(),
                ..TeamsPerson::default()
            })
            .collect();
        // Only the ids: the parts stay as they are until something is written.
        if let Err(e) = teams
            .store()
            .put_teams_people(&found, TeamsPart::ObjectId)
            .await
        {
            tracing::warn!(error = %e, "Teams object ids cannot be kept");
        }
    }
    let ready: Vec<usize> = (0..jobs.len())
        .filter(|&i| results[i].is_ok() && people[i].object_id.is_some())
        .collect();
    if ready.is_empty() {
        return results;
    }
    let ids: Vec<String> = ready
        .iter()
        .filter_map(|&i| people[i].object_id.clone())
        .collect();
    if let Err(wait) = teams.take_within(graph, 1, BUDGET_WAIT).await {
        return put_off(jobs, wait);
    }
    let current: HashMap<String, Presence> = match graph.presences(&ids).await {
        Ok(list) => list.into_iter().map(|p| (p.id.clone(), p)).collect(),
        Err(e) => {
            teams.note_throttling(graph, &e);
            let err = delivery_error(&e);
            return jobs.iter().map(|_| Err(err.clone())).collect();
        }
    };
    let mut writes: Vec<(usize, String, PresenceWrite)> = Vec::new();
    let mut next: HashMap<usize, TeamsPerson> = HashMap::new();
    for &i in &ready {
        let Some(id) = people[i].object_id.clone() else {
            continue;
        };
        let Some(shown) = current.get(&id) else {
            // Teams does not know them (no Teams licence, or gone).
            results[i] = Err(DeliveryError::Rejected(
                "Teams has no presence for this person".into(),
            ));
            continue;
        };
        let wanted = if jobs[i].presence || people[i].session.is_some() {
            jobs[i].wanted.clone()
        } else {
            Wanted {
                session: None,
                ..jobs[i].wanted.clone()
            }
        };
        let (w, after) = plan(&people[i], Some(shown), &wanted, graph.client_id(), now);
        writes.extend(w.into_iter().map(|w| (i, id.clone(), w)));
        next.insert(i, after);
    }
    let count = u32::try_from(writes.len()).unwrap_or(u32::MAX);
    if count > 0 {
        if let Err(wait) = teams.take_within(graph, count, BUDGET_WAIT).await {
            return put_off(jobs, wait);
        }
    }
    for chunk in writes.chunks(BATCH) {
        let sent: Vec<(String, PresenceWrite)> = chunk
            .iter()
            .map(|(_, id, w)| (id.clone(), w.clone()))
            .collect();
        for ((i, _, w), r) in chunk.iter().zip(graph.write_presences(&sent).await) {
            let Err(e) = r else { continue };
            teams.note_throttling(graph, &e);
            // What did not land is not Kalsync's: its part stays as it was.
            if let Some(after) = next.get_mut(i) {
                let before = &people[*i];
                match part_of(w) {
                    Part::Message => {
                        after.message = before.message.clone();
                        after.message_until = before.message_until;
                    }
                    Part::Session => {
                        after.session = before.session.clone();
                        after.session_until = before.session_until;
                        after.session_set = before.session_set;
                    }
                }
            }
            if results[*i].is_ok() {
                results[*i] = Err(delivery_error(&e));
            }
        }
    }
    // What landed, kept in one write of the target's own part.
    let kept: Vec<TeamsPerson> = next.into_values().collect();
    if let Err(e) = teams
        .store()
        .put_teams_people(&kept, TeamsPart::Message)
        .await
    {
        tracing::warn!(error = %e, "what was set in Teams cannot be kept");
        for r in results.iter_mut().filter(|r| r.is_ok()) {
            *r = Err(retry(&e.to_string()));
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    fn shown(message: &str) -> Presence {
        let text = format!(
            r#"{{"id":"o1","availability":"Available","activity":"Available","statusMessage":{{"message":{{"content":{message:?},"contentType":"text"}}}}}}"#
        );
        kalsync_graph::presence::parse_presence(&text).expect("presence")
    }

    const APP: &str = "app-id";

    fn person() -> TeamsPerson {
        TeamsPerson {
            object_id: Some("o1".into()),
            ..TeamsPerson::default()
        }
    }

    #[test]
    fn an_absence_sets_its_message_until_its_end_and_its_end_clears_only_ours() {
        let now = at("2026-12-07T11:00:00Z");
        let until = at("2026-12-07T12:00:00Z");
        let lunch = Wanted {
            message: Some(("Lunch, åter 13.00".into(), until)),
            session: None,
        };
        let (w, after) = plan(&person(), Some(&shown("")), &lunch, APP, now);
        assert_eq!(
            w,
            vec![PresenceWrite::Message {
                text: "Lunch, åter 13.00".into(),
                expiry: Some(until)
            }]
        );
        assert_eq!(after.message.as_deref(), Some("Lunch, åter 13.00"));
        // The same again: nothing to send.
        let (w, _) = plan(&after, Some(&shown("Lunch, åter 13.00")), &lunch, APP, now);
        assert!(w.is_empty());
        // Available: ours is cleared.
        let free = Wanted {
            message: None,
            session: None,
        };
        let (w, cleared) = plan(&after, Some(&shown("Lunch, åter 13.00")), &free, APP, now);
        assert_eq!(w, vec![PresenceWrite::ClearMessage]);
        assert_eq!(cleared.message, None);
        // The person wrote their own meanwhile: left as it is.
        let (w, left) = plan(&after, Some(&shown("Jobbar hemma")), &free, APP, now);
        assert!(w.is_empty());
        assert_eq!(left.message, None);
    }

    #[test]
    fn a_message_the_person_wrote_is_never_overwritten() {
        let now = at("2026-12-07T11:00:00Z");
        let lunch = Wanted {
            message: Some(("Lunch, åter 13.00".into(), at("2026-12-07T12:00:00Z"))),
            session: None,
        };
        let (w, after) = plan(&person(), Some(&shown("På kundbesök")), &lunch, APP, now);
        assert!(w.is_empty());
        assert_eq!(after.message, None, "not ours: never cleared later");
    }

    #[test]
    fn sessions_follow_the_absence_and_wait_for_a_call_to_end() {
        let now = at("2026-12-07T08:00:00Z");
        let until = at("2026-12-07T16:00:00Z");
        let divert = Wanted {
            message: None,
            session: Some((session_for(Mode::Divert), until)),
        };
        let (w, after) = plan(&person(), Some(&shown("")), &divert, APP, now);
        assert_eq!(
            w,
            vec![PresenceWrite::Session {
                session: APP.into(),
                presence: SessionPresence::Presenting,
                lasting: lasting(now, until),
            }]
        );
        assert_eq!(lasting(now, until), SignedDuration::from_hours(4));
        assert_eq!(after.session.as_deref(), Some("DoNotDisturb/Presenting"));
        // In a PBX call: the call holds the session; the absence is remembered.
        let calling = TeamsPerson {
            call_until: Some(now + SignedDuration::from_mins(30)),
            ..person()
        };
        let (w, remembered) = plan(&calling, Some(&shown("")), &divert, APP, now);
        assert!(w.is_empty());
        assert_eq!(
            remembered.session.as_deref(),
            Some("DoNotDisturb/Presenting")
        );
        // The end clears it.
        let (w, _) = plan(
            &after,
            Some(&shown("")),
            &Wanted {
                message: None,
                session: None,
            },
            APP,
            now,
        );
        assert_eq!(
            w,
            vec![PresenceWrite::ClearSession {
                session: APP.into()
            }]
        );
    }

    #[tokio::test]
    async fn the_people_of_an_exchange_instance_are_passed_over_not_failed() {
        use kalsync_core::exchange::{Access, SignIn, Version};
        use kalsync_store::{NewInstance, NewUser, SourceConfig, Store};
        let dir = std::env::temp_dir().join(format!("kalsync-teams-ews-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let url =
            kalsync_store_sql::DatabaseUrl::new(format!("sqlite:{}", dir.join("t.db").display()));
        let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(
            kalsync_store_sql::SqlStore::connect(&url, kalsync_store::SecretBox::ephemeral())
                .await
                .expect("store"),
        );
        let company = store.create_company("Lokal AB").await.expect("company");
        let instance = store
            .create_instance(NewInstance {
                company: company.id,
                name: "Exchange".into(),
                source: SourceConfig::Ews {
                    url: "https://mail.lokal.example/EWS/Exchange.asmx".into(),
                    username: "LOKAL\\svc".into(),
                    password: "p".to_owned().into(),
                    auth: SignIn::Ntlm,
                    version: Version::Exchange2013Sp1,
                    access: Access::Impersonation,
                    options: Default::default(),
                },
                settings: kalsync_core::InstanceSettings::default(),
            })
            .await
            .expect("instance");
        let anna = store
            .add_user(NewUser {
                instance: instance.id,
                email: kalsync_core::EmailAddress::parse("anna@lokal.example").expect("mail"),
                display_name: None,
                extension: None,
            })
            .await
            .expect("user");
        let teams = Teams::new(
            store.clone(),
            kalsync_sources::Connections::new(kalsync_outbound::OutboundPolicy::default()),
            crate::limiter::GRAPH_BUDGET,
        );
        let status = StatusUpdate {
            user: kalsync_engine::Person {
                id: anna.id.to_string(),
                email: "anna@lokal.example".into(),
                name: None,
                extension: None,
            },
            at: Timestamp::now(),
            absence: None,
            upcoming: Vec::new(),
        };
        let envelope = Envelope {
            id: uuid::Uuid::new_v4(),
            sequence: 1,
            attempt: 1,
        };
        let target = teams.target(false, Lang::Sv);
        assert_eq!(target.deliver(&envelope, &status).await, Ok(()));
        let _ = std::fs::remove_dir_all(dir);
    }
}
