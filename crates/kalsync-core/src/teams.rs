//! Teams presence as a source of absence (the *Teams Presence* function's way from Teams
//! to the PBX): whether an instance reads it, how often, and what Teams' activities
//! become — a call is `busy`, a meeting or a presentation `meeting` (both for
//! information), "do not disturb" what the instance says.

use serde::{Deserialize, Serialize};

use crate::{Mode, ReasonCode};

/// The reason a Teams call shows as.
pub const CALL_REASON: &str = "busy";
/// The reason a Teams meeting or presentation shows as.
pub const MEETING_REASON: &str = "meeting";
/// The shortest poll interval an instance may set (seconds).
pub const MIN_POLL_SECONDS: u32 = 10;
/// The longest poll interval an instance may set (seconds).
pub const MAX_POLL_SECONDS: u32 = 3600;

/// What Teams presence does for an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TeamsSettings {
    /// Whether Teams presence is read and shown on the PBX (off unless asked for).
    pub read: bool,
    /// How often it is read, in seconds (10–3600, default 30); Graph's `Retry-After`
    /// stretches it when Teams asks.
    pub poll_seconds: u32,
    /// What Teams' "do not disturb" becomes: `busy` for information or diverted;
    /// none (the default): it is not shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub do_not_disturb: Option<Mode>,
    /// Whether a Teams call or meeting beats a booking's divert too (by default only a
    /// booking shown for information).
    pub above_diverts: bool,
}

impl Default for TeamsSettings {
    fn default() -> Self {
        TeamsSettings {
            read: false,
            poll_seconds: 30,
            do_not_disturb: None,
            above_diverts: false,
        }
    }
}

impl TeamsSettings {
    /// The PBX status Teams' `availability` and `activity` make, if any.
    pub fn status_of(&self, availability: &str, activity: &str) -> Option<(ReasonCode, Mode)> {
        let code = |c: &str| ReasonCode::parse(c).ok();
        match activity {
            "InACall" | "InAConferenceCall" => Some((code(CALL_REASON)?, Mode::Info)),
            "InAMeeting" | "Presenting" => Some((code(MEETING_REASON)?, Mode::Info)),
            _ if availability == "DoNotDisturb" => self
                .do_not_disturb
                .and_then(|m| Some((code(CALL_REASON)?, m))),
            _ => None,
        }
    }

    /// The reasons it may show, for the catalogue check.
    pub fn reasons(&self) -> [&'static str; 2] {
        [CALL_REASON, MEETING_REASON]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_meetings_are_shown_for_information_and_do_not_disturb_as_set() {
        let s = TeamsSettings::default();
        let shown = |a, b| s.status_of(a, b).map(|(r, m)| (r.to_string(), m));
        assert_eq!(shown("Busy", "InACall"), Some(("busy".into(), Mode::Info)));
        assert_eq!(
            shown("Busy", "InAConferenceCall"),
            Some(("busy".into(), Mode::Info))
        );
        assert_eq!(
            shown("Busy", "InAMeeting"),
            Some(("meeting".into(), Mode::Info))
        );
        assert_eq!(
            shown("DoNotDisturb", "Presenting"),
            Some(("meeting".into(), Mode::Info))
        );
        for (a, b) in [
            ("DoNotDisturb", "DoNotDisturb"),
            ("Available", "Available"),
            ("Away", "Away"),
            ("Offline", "OffWork"),
            ("Busy", "Busy"),
            ("BeRightBack", "BeRightBack"),
        ] {
            assert_eq!(shown(a, b), None, "{a}/{b}");
        }
        let divert = TeamsSettings {
            do_not_disturb: Some(Mode::Divert),
            ..TeamsSettings::default()
        };
        assert_eq!(
            divert
                .status_of("DoNotDisturb", "DoNotDisturb")
                .map(|(r, m)| (r.to_string(), m)),
            Some(("busy".into(), Mode::Divert))
        );
    }
}
