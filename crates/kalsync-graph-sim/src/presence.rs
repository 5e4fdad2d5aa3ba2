//! Teams presence as Graph plays it: per person, presence sessions (a Teams client's,
//! set through the control API; apps' through `setPresence`, each with an expiry),
//! aggregated DoNotDisturb > Busy > Available > Away, Offline without a live session,
//! the person's preferred presence over all; a status message with its expiry (empty
//! text clears it); and the tenant's presence requests counted over any 30 seconds,
//! throttled past the limit (1,500 by default, as Microsoft's per-API pages say).

use std::collections::{BTreeMap, VecDeque};

use jiff::{SignedDuration, Timestamp};

use crate::Simulator;
use crate::world::SpecError;

/// The session id of the person's own Teams client.
pub const CLIENT_SESSION: &str = "teams-client";

/// One presence session: availability, activity, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    pub(crate) availability: String,
    pub(crate) activity: String,
    pub(crate) until: Timestamp,
}

/// A person's presence state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PresenceState {
    /// Sessions by id.
    pub(crate) sessions: BTreeMap<String, Session>,
    /// The status message and its expiry.
    pub(crate) message: Option<(String, Option<Timestamp>)>,
    /// The presence the person chose in Teams: it beats every session.
    pub(crate) preferred: Option<(String, String)>,
}

fn rank(availability: &str) -> u8 {
    match availability {
        "DoNotDisturb" => 0,
        "Busy" => 1,
        "Available" => 2,
        "Away" => 3,
        _ => 4,
    }
}

impl PresenceState {
    /// The aggregate at `now`: the person's preferred presence, else the strongest
    /// live session, or Offline.
    pub(crate) fn aggregate(&self, now: Timestamp) -> (String, String) {
        if let Some(p) = &self.preferred {
            return p.clone();
        }
        self.sessions
            .values()
            .filter(|s| s.until > now)
            .min_by_key(|s| rank(&s.availability))
            .map_or_else(
                || ("Offline".to_owned(), "Offline".to_owned()),
                |s| (s.availability.clone(), s.activity.clone()),
            )
    }

    /// The status message in force at `now`.
    pub(crate) fn message_at(&self, now: Timestamp) -> Option<&(String, Option<Timestamp>)> {
        self.message
            .as_ref()
            .filter(|(_, until)| until.is_none_or(|u| u > now))
    }
}

/// The tenant's presence requests of the last 30 seconds (a sliding window).
#[derive(Debug, Clone)]
pub(crate) struct PresenceBudget {
    pub(crate) limit: u32,
    /// When each request of the last 30 seconds came.
    pub(crate) recent: VecDeque<Timestamp>,
    /// The most seen in any 30 seconds.
    pub(crate) peak: u32,
    /// Every presence request taken.
    pub(crate) total: u64,
    /// `setPresence` requests refused for an undocumented availability/activity pair.
    pub(crate) refused_pairs: u64,
}

impl Default for PresenceBudget {
    fn default() -> Self {
        PresenceBudget {
            limit: 1_500,
            recent: VecDeque::new(),
            peak: 0,
            total: 0,
            refused_pairs: 0,
        }
    }
}

impl PresenceBudget {
    /// Counts one request at `now`: `Err(seconds)` to wait when over the limit.
    pub(crate) fn take(&mut self, now: Timestamp) -> Result<(), u64> {
        let window = SignedDuration::from_secs(30);
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.limit as usize {
            let oldest = self.recent.front().copied().unwrap_or(now);
            let left = window - now.duration_since(oldest);
            return Err(left.as_secs().max(1).unsigned_abs());
        }
        self.recent.push_back(now);
        self.total += 1;
        self.peak = self
            .peak
            .max(u32::try_from(self.recent.len()).unwrap_or(u32::MAX));
        Ok(())
    }
}

impl Simulator {
    /// Sets (or, `None`, ends) the person's own Teams client session: what Teams
    /// shows when they are in a call or a meeting (`Busy`/`InACall`,
    /// `Busy`/`InAMeeting`, `DoNotDisturb`/`Presenting`, …).
    pub fn set_client_presence(
        &self,
        user: &str,
        presence: Option<(&str, &str)>,
    ) -> Result<(), SpecError> {
        let mut world = self.world();
        let state = &mut world.directory.user_mut(user)?.presence;
        match presence {
            Some((availability, activity)) => {
                state.sessions.insert(
                    CLIENT_SESSION.into(),
                    Session {
                        availability: availability.into(),
                        activity: activity.into(),
                        until: Timestamp::MAX,
                    },
                );
            }
            None => {
                state.sessions.remove(CLIENT_SESSION);
            }
        }
        Ok(())
    }

    /// The person's presence as Teams shows it now, and their status message.
    pub fn presence(&self, user: &str) -> Result<(String, String, Option<String>), SpecError> {
        let world = self.world();
        let state = &world.directory.user(user)?.presence;
        let now = Timestamp::now();
        let (availability, activity) = state.aggregate(now);
        Ok((
            availability,
            activity,
            state.message_at(now).map(|(m, _)| m.clone()),
        ))
    }

    /// The person's status message and its expiry, as set.
    pub fn status_message(
        &self,
        user: &str,
    ) -> Result<Option<(String, Option<Timestamp>)>, SpecError> {
        Ok(self.world().directory.user(user)?.presence.message.clone())
    }

    /// Sets the person's own status message (as they would in Teams).
    pub fn set_own_status_message(&self, user: &str, text: &str) -> Result<(), SpecError> {
        self.world().directory.user_mut(user)?.presence.message = Some((text.into(), None));
        Ok(())
    }

    /// Sets (or, `None`, ends) the presence the person chose in Teams ("Appear away",
    /// "Do not disturb"): it beats every session, the apps' too.
    pub fn set_preferred_presence(
        &self,
        user: &str,
        presence: Option<(&str, &str)>,
    ) -> Result<(), SpecError> {
        self.world().directory.user_mut(user)?.presence.preferred =
            presence.map(|(a, b)| (a.to_owned(), b.to_owned()));
        Ok(())
    }

    /// How many people have a status message in force now.
    pub fn status_messages_shown(&self) -> usize {
        let now = Timestamp::now();
        self.world()
            .directory
            .users
            .values()
            .filter(|u| u.presence.message_at(now).is_some())
            .count()
    }

    /// How many `setPresence` requests named an undocumented pair (refused with 400).
    pub fn presence_refused_pairs(&self) -> u64 {
        self.world().presence_budget.refused_pairs
    }

    /// Every presence request taken so far.
    pub fn presence_requests(&self) -> u64 {
        self.world().presence_budget.total
    }

    /// The tenant's presence requests allowed per 30 seconds.
    pub fn set_presence_limit(&self, per_30s: u32) {
        self.world().presence_budget.limit = per_30s;
    }

    /// The most presence requests seen in any 30 seconds.
    pub fn presence_peak(&self) -> u32 {
        self.world().presence_budget.peak
    }
}
