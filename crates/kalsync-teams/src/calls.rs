//! PBX calls in Teams: while a person's PBX call lasts, the app's presence session
//! shows `Busy/InACall` (from the signed PBX events endpoint's `call_started` /
//! `call_ended`, and from Asterisk's device states over AMI). Only for companies with
//! an active `teams` target. The session is the app's one session for the person: when
//! the call ends, the absence session it stood in for comes back, or it is cleared.
//! Teams then shows a call Kalsync put there; the poll knows it and does not bring it
//! back to the PBX.

use jiff::{SignedDuration, Timestamp};
use kalsync_graph::{GraphClient, PresenceWrite, SessionPresence};
use kalsync_store::{TargetConfig, TeamsPart, TeamsPerson, User};

use crate::Teams;
use crate::message::lasting;

/// How long a call's session lasts without word of its end (a lost `call_ended`
/// leaves Teams showing the call at most this long).
pub const CALL_HOLD: SignedDuration = SignedDuration::from_hours(2);

/// What a PBX call event did in Teams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallShown {
    /// Teams shows it (or no longer does).
    Done,
    /// The company sends nothing to Teams (no active `teams` target).
    NotUsed,
}

impl Teams {
    /// `user`'s PBX call started at `now`.
    pub async fn call_started(&self, user: &User, now: Timestamp) -> Result<CallShown, String> {
        self.call(user, true, now).await
    }

    /// `user`'s PBX call ended at `now`.
    pub async fn call_ended(&self, user: &User, now: Timestamp) -> Result<CallShown, String> {
        self.call(user, false, now).await
    }

    async fn call(&self, user: &User, started: bool, now: Timestamp) -> Result<CallShown, String> {
        let store = self.store();
        let instance = store
            .instance(user.instance)
            .await
            .map_err(|e| e.to_string())?;
        let used = store
            .targets(instance.company)
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .any(|t| t.active && matches!(t.config, TargetConfig::Teams { .. }));
        if !used {
            return Ok(CallShown::NotUsed);
        }
        // An Exchange (EWS) instance has no Teams: nothing to show, nothing to retry.
        let Ok(graph) = self.graph(&instance) else {
            return Ok(CallShown::NotUsed);
        };
        let mut person = store
            .teams_person(user.id)
            .await
            .map_err(|e| e.to_string())?;
        let id = self.object_id(&graph, user, &mut person).await?;
        let write = if started {
            person.call_until = Some(now + CALL_HOLD);
            PresenceWrite::Session {
                session: graph.client_id().to_owned(),
                presence: SessionPresence::InACall,
                lasting: CALL_HOLD,
            }
        } else {
            let was = person.call_until.take();
            match back_to(&person, now) {
                Some((presence, until)) => {
                    person.session_set = Some(now);
                    PresenceWrite::Session {
                        session: graph.client_id().to_owned(),
                        presence,
                        lasting: lasting(now, until),
                    }
                }
                None if was.is_some() => PresenceWrite::ClearSession {
                    session: graph.client_id().to_owned(),
                },
                // No call of ours was shown: nothing to end.
                None => return Ok(CallShown::Done),
            }
        };
        // A PBX waits for the answer: a throttled tenant answers at once.
        self.take_within(&graph, 1, std::time::Duration::from_secs(5))
            .await
            .map_err(|wait| match wait {
                Some(w) => format!(
                    "Teams is throttled for this company; try again in {} s",
                    w.as_secs().max(1)
                ),
                None => "the Teams request budget cannot be read".to_owned(),
            })?;
        let written = graph
            .write_presences(&[(id, write)])
            .await
            .into_iter()
            .next()
            .unwrap_or(Ok(()));
        if let Err(e) = written {
            self.note_throttling(&graph, &e);
            return Err(e.to_string());
        }
        store
            .put_teams_people(std::slice::from_ref(&person), TeamsPart::Call)
            .await
            .map_err(|e| e.to_string())?;
        Ok(CallShown::Done)
    }

    /// The person's object id, found (and kept) if not known yet.
    pub(crate) async fn object_id(
        &self,
        graph: &GraphClient,
        user: &User,
        person: &mut TeamsPerson,
    ) -> Result<String, String> {
        if let Some(id) = &person.object_id {
            return Ok(id.clone());
        }
        // A directory request, not a presence one: outside the presence budget.
        let found = graph
            .object_ids(&[user.email.as_str().to_owned()])
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| Err(kalsync_graph::GraphError::Malformed("no answer".into())));
        match found {
            Ok(id) => {
                person.object_id = Some(id.clone());
                Ok(id)
            }
            Err(e) => {
                self.note_throttling(graph, &e);
                Err(e.to_string())
            }
        }
    }
}

/// The absence session a call stood in for, if it is still in force.
fn back_to(person: &TeamsPerson, now: Timestamp) -> Option<(SessionPresence, Timestamp)> {
    let until = person.session_until.filter(|u| *u > now)?;
    let (a, b) = person.session.as_deref()?.split_once('/')?;
    Some((SessionPresence::from_pair(a, b)?, until))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_gives_back_the_absence_session_it_stood_in_for() {
        let now: Timestamp = "2026-12-07T10:00:00Z".parse().expect("time");
        let away = TeamsPerson {
            session: Some("Away/Away".into()),
            session_until: Some(now + SignedDuration::from_hours(1)),
            ..TeamsPerson::default()
        };
        assert_eq!(
            back_to(&away, now),
            Some((SessionPresence::Away, now + SignedDuration::from_hours(1)))
        );
        assert_eq!(back_to(&away, now + SignedDuration::from_hours(2)), None);
        let odd = TeamsPerson {
            session: Some("Busy/Busy".into()),
            ..away
        };
        assert_eq!(back_to(&odd, now), None, "never an undocumented pair");
    }
}
