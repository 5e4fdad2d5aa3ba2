//! Teams on the PBX: an instance's people's presence read with `getPresencesByUserId`
//! (650 a request) every `[teams] poll_seconds`, by one node a round; a Teams call, a
//! meeting or (if the instance says so) "do not disturb" becomes the person's `teams`
//! override, which the timeline weighs with the other sources; its end clears it. A
//! call Kalsync itself shows in Teams (a PBX call) is not brought back. Also renews the
//! app sessions of long absences before Graph lets them expire.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use kalsync_core::{Mode, Override, ReasonCode, Source, TeamsSettings};
use kalsync_graph::presence::{MAX_PRESENCE_IDS, SESSION_LIMITS};
use kalsync_graph::{GraphClient, PresenceWrite, SessionPresence};
use kalsync_store::{Instance, TeamsPart, TeamsPerson};

use crate::Teams;
use crate::message::lasting;

/// What one poll did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Polled {
    /// Whether this node took the round (another node may have).
    pub took: bool,
    /// People whose presence was read.
    pub read: usize,
    /// People whose PBX status Teams changed.
    pub changed: usize,
    /// Presence requests sent (reads and renewals).
    pub requests: usize,
}

/// Renew an absence session this long before it would end.
const RENEW_BEFORE: SignedDuration = SignedDuration::from_mins(30);

/// The PBX status a presence read as `availability/activity` makes, leaving out what
/// Kalsync itself shows in Teams: a PBX call in progress, or the session of an absence
/// (`DoNotDisturb/Presenting` for a divert would otherwise come back as a meeting).
fn status(
    settings: &TeamsSettings,
    presence: Option<&str>,
    person: &TeamsPerson,
    now: Timestamp,
) -> Option<(ReasonCode, Mode)> {
    let shown = presence?;
    let (availability, activity) = shown.split_once('/')?;
    let our_call = person.call_until.is_some_and(|u| u > now)
        && matches!(activity, "InACall" | "InAConferenceCall");
    let our_session =
        person.session.as_deref() == Some(shown) && person.session_until.is_some_and(|u| u > now);
    if our_call || our_session {
        return None;
    }
    settings.status_of(availability, activity)
}

impl Teams {
    /// One round of `instance`'s Teams presence at `now`, if this node takes it (one
    /// node a round across all of them). An instance that does not read Teams (or is
    /// switched off) has what Teams put on the PBX cleared, and its long absence
    /// sessions renewed.
    pub async fn poll(&self, instance: &Instance, now: Timestamp) -> Result<Polled, String> {
        let settings = &instance.settings.teams;
        let store = self.store();
        if !settings.read || !instance.active {
            self.clear(instance).await?;
            let mut polled = Polled::default();
            if instance.active {
                if let Ok(graph) = self.graph(instance) {
                    let people = store
                        .teams_people(instance.id)
                        .await
                        .map_err(|e| e.to_string())?;
                    self.renew(&graph, people.iter(), now, &mut polled).await?;
                }
            }
            return Ok(polled);
        }
        let every = i64::from(settings.poll_seconds.max(1));
        let round = Timestamp::from_second(now.as_second() / every * every).unwrap_or(now);
        let key = format!("teams-poll:{}", instance.id);
        if !store
            .take_budget(&key, round, 1, 1)
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(Polled::default());
        }
        let graph = self.graph(instance)?;
        let mut polled = Polled {
            took: true,
            ..Polled::default()
        };
        let people = store
            .teams_people(instance.id)
            .await
            .map_err(|e| e.to_string())?;
        let mut known: HashMap<_, TeamsPerson> = people.into_iter().map(|p| (p.user, p)).collect();
        let users = store.users(instance.id).await.map_err(|e| e.to_string())?;
        let mut by_id: HashMap<String, TeamsPerson> = HashMap::new();
        let mut unknown = Vec::new();
        for u in &users {
            let p = known.remove(&u.id).unwrap_or(TeamsPerson {
                user: u.id,
                ..TeamsPerson::default()
            });
            match p.object_id.clone() {
                Some(id) => {
                    by_id.insert(id, p);
                }
                None => unknown.push((u.email.as_str().to_owned(), p)),
            }
        }
        for chunk in unknown.chunks(20) {
            // Directory requests (once a person): outside the presence budget.
            let mails: Vec<String> = chunk.iter().map(|(m, _)| m.clone()).collect();
            let mut found = Vec::new();
            for ((_, p), id) in chunk.iter().zip(graph.object_ids(&mails).await) {
                match id {
                    Ok(id) => {
                        let mut p = p.clone();
                        p.object_id = Some(id.clone());
                        found.push(p.clone());
                        by_id.insert(id, p);
                    }
                    Err(e) => {
                        self.note_throttling(&graph, &e);
                        tracing::debug!(error = %e, "no Teams object id for a person");
                    }
                }
            }
            store
                .put_teams_people(&found, TeamsPart::ObjectId)
                .await
                .map_err(|e| e.to_string())?;
        }
        let ids: Vec<String> = by_id.keys().cloned().collect();
        for chunk in ids.chunks(MAX_PRESENCE_IDS) {
            self.take(&graph, 1).await.map_err(|e| e.to_string())?;
            polled.requests += 1;
            let read = match graph.presences(chunk).await {
                Ok(r) => r,
                Err(e) => {
                    self.note_throttling(&graph, &e);
                    return Err(e.to_string());
                }
            };
            polled.read += read.len();
            let mut answered: HashMap<&str, String> = read
                .iter()
                .map(|p| (p.id.as_str(), format!("{}/{}", p.availability, p.activity)))
                .collect();
            let mut changed = Vec::new();
            for id in chunk {
                let Some(person) = by_id.get(id) else {
                    continue;
                };
                // Someone Teams no longer answers for (licence gone): shown as nothing.
                let shown = answered.remove(id.as_str()).unwrap_or_default();
                if person.presence.as_deref().unwrap_or_default() == shown {
                    continue;
                }
                let before = status(settings, person.presence.as_deref(), person, now);
                let after = status(settings, Some(&shown), person, now);
                if before != after {
                    let o = after.map(|status| Override {
                        source: Source::Teams,
                        id: "presence".into(),
                        start: now,
                        // Until Teams shows otherwise: no return time is told.
                        end: None,
                        status: Some(status),
                    });
                    store
                        .set_override(person.user, Source::Teams, o.as_ref(), "teams")
                        .await
                        .map_err(|e| e.to_string())?;
                    polled.changed += 1;
                }
                let mut p = person.clone();
                p.presence = (!shown.is_empty()).then_some(shown);
                p.read_at = Some(now);
                changed.push(p);
            }
            store
                .put_teams_people(&changed, TeamsPart::Presence)
                .await
                .map_err(|e| e.to_string())?;
        }
        self.renew(&graph, by_id.values(), now, &mut polled).await?;
        Ok(polled)
    }

    /// Clears what Teams put on the PBX for `instance`'s people (it no longer reads
    /// Teams, is switched off, or cannot be read for long).
    pub async fn clear(&self, instance: &Instance) -> Result<(), String> {
        let store = self.store();
        let people = store
            .teams_people(instance.id)
            .await
            .map_err(|e| e.to_string())?;
        let mut cleared = Vec::new();
        for mut p in people.into_iter().filter(|p| p.presence.is_some()) {
            store
                .set_override(p.user, Source::Teams, None, "teams")
                .await
                .map_err(|e| e.to_string())?;
            p.presence = None;
            p.read_at = None;
            cleared.push(p);
        }
        store
            .put_teams_people(&cleared, TeamsPart::Presence)
            .await
            .map_err(|e| e.to_string())
    }

    /// Sets again the absence sessions that Graph would end within [`RENEW_BEFORE`]
    /// while their absence lasts longer (a session lasts at most four hours).
    async fn renew<'a>(
        &self,
        graph: &GraphClient,
        people: impl Iterator<Item = &'a TeamsPerson>,
        now: Timestamp,
        polled: &mut Polled,
    ) -> Result<(), String> {
        let mut renewed = Vec::new();
        let due: Vec<(String, PresenceWrite)> = people
            .filter(|p| p.call_until.is_none_or(|u| u <= now))
            .filter_map(|p| {
                let until = p.session_until?;
                let (a, b) = p.session.as_deref()?.split_once('/')?;
                let presence = SessionPresence::from_pair(a, b)?;
                // Graph ends it four hours after it was set, at most.
                let ends = p.session_set? + SESSION_LIMITS.1;
                if until <= ends || ends.duration_since(now) > RENEW_BEFORE {
                    return None;
                }
                let id = p.object_id.clone()?;
                let mut next = p.clone();
                next.session_set = Some(now);
                renewed.push(next);
                Some((
                    id,
                    PresenceWrite::Session {
                        session: graph.client_id().to_owned(),
                        presence,
                        lasting: lasting(now, until),
                    },
                ))
            })
            .collect();
        for (chunk, people) in due.chunks(20).zip(renewed.chunks(20)) {
            let n = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            self.take(graph, n).await.map_err(|e| e.to_string())?;
            polled.requests += chunk.len();
            let mut kept = Vec::new();
            for (r, p) in graph.write_presences(chunk).await.into_iter().zip(people) {
                match r {
                    Ok(()) => kept.push(p.clone()),
                    Err(e) => self.note_throttling(graph, &e),
                }
            }
            self.store()
                .put_teams_people(&kept, TeamsPart::Renewal)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_kalsync_shows_in_teams_is_not_brought_back_to_the_pbx() {
        let now: Timestamp = "2026-12-07T10:00:00Z".parse().expect("time");
        let settings = TeamsSettings::default();
        let calling = TeamsPerson {
            call_until: Some(now + SignedDuration::from_hours(1)),
            ..TeamsPerson::default()
        };
        assert_eq!(status(&settings, Some("Busy/InACall"), &calling, now), None);
        assert!(status(&settings, Some("Busy/InAMeeting"), &calling, now).is_some());
        let free = TeamsPerson::default();
        assert_eq!(
            status(&settings, Some("Busy/InACall"), &free, now).map(|(r, _)| r.to_string()),
            Some("busy".into())
        );
        assert_eq!(status(&settings, None, &free, now), None);
    }

    #[test]
    fn the_session_of_a_divert_is_not_read_back_as_a_meeting() {
        let now: Timestamp = "2026-12-07T10:00:00Z".parse().expect("time");
        let settings = TeamsSettings::default();
        let diverted = TeamsPerson {
            session: Some("DoNotDisturb/Presenting".into()),
            session_until: Some(now + SignedDuration::from_hours(1)),
            ..TeamsPerson::default()
        };
        assert_eq!(
            status(&settings, Some("DoNotDisturb/Presenting"), &diverted, now),
            None
        );
        // Once it has ended, a presentation in Teams is the person's own.
        let later = now + SignedDuration::from_hours(2);
        assert!(status(&settings, Some("DoNotDisturb/Presenting"), &diverted, later).is_some());
    }
}
