//! Teams presence as Graph plays it: per person, presence sessions (a Teams client's,
//! set through the control API; apps' through `setPresence`, each with an expiry),
//! aggregated DoNotDisturb > Busy > Available > Away, Offline without a live session;
//! a status message with its expiry (empty text clears it); and the tenant's presence
//! requests counted per 30 seconds, throttled past the limit (1,500 by default, as
//! Microsoft's per-API pages say).

use std::collections::BTreeMap;

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
    /// The aggregate at `now`: the strongest live session, or Offline.
    pub(crate) fn aggregate(&self, now: Timestamp) -> (String, String) {
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

/// The tenant's presence requests in the current 30-second window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PresenceBudget {
    pub(crate) limit: u32,
    pub(crate) window_start: Timestamp,
    pub(crate) used: u32,
    /// The most used in any window.
    pub(crate) peak: u32,
}

impl Default for PresenceBudget {
    fn default() -> Self {
        PresenceBudget {
            limit: 1_500,
            window_start: Timestamp::UNIX_EPOCH,
            used: 0,
            peak: 0,
        }
    }
}

impl PresenceBudget {
    /// Counts one request at `now`: `Err(seconds)` to wait when over the limit.
    pub(crate) fn take(&mut self, now: Timestamp) -> Result<(), u64> {
        let window = SignedDuration::from_secs(30);
        if now.duration_since(self.window_start) >= window {
            self.window_start = now;
            self.used = 0;
        }
        if self.used >= self.limit {
            let left = window - now.duration_since(self.window_start);
            return Err(left.as_secs().max(1).unsigned_abs());
        }
        self.used += 1;
        self.peak = self.peak.max(self.used);
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

    /// The tenant's presence requests allowed per 30 seconds.
    pub fn set_presence_limit(&self, per_30s: u32) {
        self.world().presence_budget.limit = per_30s;
    }

    /// The most presence requests seen in one 30-second window.
    pub fn presence_peak(&self) -> u32 {
        self.world().presence_budget.peak
    }
}
