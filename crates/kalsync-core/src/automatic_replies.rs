//! Outlook's automatic replies (out of office) as an absence source: what a mailbox's
//! setting says — off, on until turned off, or scheduled — never its texts, the
//! instance's choice of reason and mode for it, and the override it makes.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::reason::{Mode, ReasonCode};
use crate::timeline::{Override, Source};

/// What a mailbox's automatic replies are set to. The reply texts are not part of it:
/// the readers drop them as they parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutomaticReplies {
    /// Off.
    Off,
    /// On until turned off: no return time is known.
    Always,
    /// On from `start` to `end`.
    Scheduled {
        /// From.
        start: Timestamp,
        /// To.
        end: Timestamp,
    },
}

impl AutomaticReplies {
    /// A scheduled period; its end must be after its start.
    pub fn scheduled(start: Timestamp, end: Timestamp) -> Result<AutomaticReplies, String> {
        if end <= start {
            return Err(format!(
                "the automatic replies end ({end}) before they start ({start})"
            ));
        }
        Ok(AutomaticReplies::Scheduled { start, end })
    }

    /// The override they make under `settings` at `now`: none when off, or when a
    /// scheduled period has ended. `since` is when an "on until turned off" was first
    /// seen (kept from the stored override, so an unchanged setting stays unchanged).
    pub fn as_override(
        &self,
        settings: &AutomaticRepliesSettings,
        now: Timestamp,
        since: Option<Timestamp>,
    ) -> Option<Override> {
        let (start, end) = match *self {
            AutomaticReplies::Off => return None,
            AutomaticReplies::Always => (since.unwrap_or(now), None),
            AutomaticReplies::Scheduled { end, .. } if end <= now => return None,
            AutomaticReplies::Scheduled { start, end } => (start, Some(end)),
        };
        Some(Override {
            source: Source::AutomaticReplies,
            id: "automatic_replies".into(),
            start,
            end,
            status: Some((settings.reason.clone(), settings.mode)),
        })
    }
}

/// Whether an instance reads its people's automatic replies, and as what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutomaticRepliesSettings {
    /// Whether they are read (on for new instances; off for those made before they
    /// could be).
    pub enabled: bool,
    /// The reason they show as.
    pub reason: ReasonCode,
    /// `info` (the default: calls still ring) or `divert`.
    pub mode: Mode,
}

impl Default for AutomaticRepliesSettings {
    fn default() -> Self {
        AutomaticRepliesSettings {
            enabled: false,
            reason: ReasonCode::parse("out_of_office")
                .unwrap_or_else(|_| unreachable!("a valid code")),
            mode: Mode::Info,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    #[test]
    fn a_period_ending_before_it_starts_is_refused() {
        assert!(
            AutomaticReplies::scheduled(at("2026-12-07T10:00:00Z"), at("2026-12-07T09:00:00Z"))
                .is_err()
        );
        assert!(
            AutomaticReplies::scheduled(at("2026-12-07T10:00:00Z"), at("2026-12-07T10:00:00Z"))
                .is_err()
        );
    }

    #[test]
    fn off_and_ended_make_nothing_on_keeps_its_start() {
        let s = AutomaticRepliesSettings::default();
        let now = at("2026-12-07T10:00:00Z");
        assert_eq!(AutomaticReplies::Off.as_override(&s, now, None), None);
        let past =
            AutomaticReplies::scheduled(at("2026-01-01T00:00:00Z"), at("2026-01-02T00:00:00Z"))
                .expect("period");
        assert_eq!(past.as_override(&s, now, None), None, "far in the past");
        let seen = at("2026-12-06T08:00:00Z");
        let on = AutomaticReplies::Always
            .as_override(&s, now, Some(seen))
            .expect("on");
        assert_eq!((on.start, on.end), (seen, None));
        let ahead =
            AutomaticReplies::scheduled(at("2026-12-08T08:00:00Z"), at("2026-12-11T16:00:00Z"))
                .expect("period")
                .as_override(&s, now, None)
                .expect("ahead");
        assert_eq!(ahead.end, Some(at("2026-12-11T16:00:00Z")));
        assert_eq!(
            ahead.status.as_ref().map(|(r, m)| (r.as_str(), *m)),
            Some(("out_of_office", Mode::Info))
        );
    }
}
