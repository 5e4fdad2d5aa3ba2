//! Rules (SPEC §3.3): ordered conditions on a booking that pick a reason and a mode, and
//! the four built-in templates an instance starts from.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use crate::booking::{FreeBusy, ResponseStatus};
use crate::reason::{Mode, Prefix, ReasonCatalogue, ReasonCode, Separator};

/// Conditions of a rule; all given ones must hold. An empty set matches every booking.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Free/busy status in this set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_as: Option<BTreeSet<FreeBusy>>,
    /// Subject starts with this prefix (`LUN:` also matches `LUN;`, which makes the
    /// booking `info` whatever the rule's mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<Prefix>,
    /// One of the booking's categories is in this set (any case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    /// All-day (`true`) or timed (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_day: Option<bool>,
    /// Lasts at least this long (`"30m"`, `"1h 30m"`, `"PT2H"`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_duration"
    )]
    pub min_duration: Option<SignedDuration>,
    /// Lasts at most this long.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_duration"
    )]
    pub max_duration: Option<SignedDuration>,
    /// The owner's response is in this set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<BTreeSet<ResponseStatus>>,
}

/// One rule: conditions and the action taken on the first match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A name for the admin (shown in previews).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Conditions.
    #[serde(default)]
    pub when: Conditions,
    /// The reason the booking gets.
    pub reason: ReasonCode,
    /// The mode it gets.
    pub mode: Mode,
    /// Whether the subject may be shown (also needs the instance's `show_subject`).
    #[serde(default)]
    pub show_subject: bool,
}

/// What the rules need to know of a booking.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Free/busy.
    pub free_busy: FreeBusy,
    /// Subject, if read.
    pub subject: Option<&'a str>,
    /// Categories.
    pub categories: &'a [String],
    /// All-day.
    pub all_day: bool,
    /// Length of its interval.
    pub duration: SignedDuration,
    /// Owner's response.
    pub response: ResponseStatus,
}

/// A rule's verdict on one booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Index of the rule that matched.
    pub rule: usize,
    /// Reason.
    pub reason: ReasonCode,
    /// Mode, after the `;` prefix form.
    pub mode: Mode,
    /// Whether the rule lets the subject be shown.
    pub show_subject: bool,
    /// The subject without the prefix the rule matched.
    pub stripped_subject: Option<String>,
}

impl Rule {
    /// Whether the rule matches; `Some(separator)` when its prefix condition matched.
    fn matches(&self, facts: &Facts<'_>) -> Option<Option<(Separator, String)>> {
        let w = &self.when;
        if let Some(set) = &w.show_as {
            if !set.contains(&facts.free_busy) {
                return None;
            }
        }
        if let Some(all_day) = w.all_day {
            if all_day != facts.all_day {
                return None;
            }
        }
        if w.min_duration.is_some_and(|min| facts.duration < min)
            || w.max_duration.is_some_and(|max| facts.duration > max)
        {
            return None;
        }
        if let Some(set) = &w.response {
            if !set.contains(&facts.response) {
                return None;
            }
        }
        if let Some(wanted) = &w.categories {
            let hit = facts.categories.iter().any(|c| {
                wanted
                    .iter()
                    .any(|w| w.trim().to_lowercase() == c.trim().to_lowercase())
            });
            if !hit {
                return None;
            }
        }
        match &w.prefix {
            None => Some(None),
            Some(prefix) => {
                let (sep, rest) = prefix.strip(facts.subject?)?;
                Some(Some((sep, rest.to_owned())))
            }
        }
    }
}

/// Applies an ordered rule list: the first rule that matches decides.
pub fn classify(rules: &[Rule], facts: &Facts<'_>) -> Option<Verdict> {
    rules.iter().enumerate().find_map(|(index, rule)| {
        let matched = rule.matches(facts)?;
        let (mode, stripped_subject) = match matched {
            Some((Separator::Semicolon, rest)) => (Mode::Info, Some(rest)),
            Some((Separator::Colon, rest)) => (rule.mode, Some(rest)),
            None => (rule.mode, facts.subject.map(str::to_owned)),
        };
        Some(Verdict {
            rule: index,
            reason: rule.reason.clone(),
            mode,
            show_subject: rule.show_subject,
            stripped_subject,
        })
    })
}

/// The built-in rule templates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Template {
    /// Busy → `busy`, OOF → `out_of_office`, both `info` (the guides' standard template).
    #[default]
    ShowasInfo,
    /// Busy → `meeting` (divert), OOF → `out_of_office` (divert), WorkingElsewhere →
    /// `working_from_home` (info).
    ShowasDivert,
    /// Each reason's prefix → that reason, `divert`.
    Prefix,
    /// `prefix`, then `showas-divert` for bookings without a prefix.
    PrefixThenShowas,
}

impl Template {
    /// Every template.
    pub const ALL: [Template; 4] = [
        Template::ShowasInfo,
        Template::ShowasDivert,
        Template::Prefix,
        Template::PrefixThenShowas,
    ];

    /// The template's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Template::ShowasInfo => "showas-info",
            Template::ShowasDivert => "showas-divert",
            Template::Prefix => "prefix",
            Template::PrefixThenShowas => "prefix-then-showas",
        }
    }

    /// The template's rules for a catalogue. Rules naming a reason the operator removed
    /// are left out.
    pub fn rules(self, catalogue: &ReasonCatalogue) -> Vec<Rule> {
        let showas = |status: FreeBusy, reason: &str, mode: Mode| {
            let reason = ReasonCode::parse(reason).ok()?;
            catalogue.contains(&reason).then(|| Rule {
                // Unnamed: the form describes a rule in the reader's language.
                name: None,
                when: Conditions {
                    show_as: Some(BTreeSet::from([status])),
                    ..Conditions::default()
                },
                reason,
                mode,
                show_subject: false,
            })
        };
        let prefix_rules = || {
            catalogue.iter().filter_map(|r| {
                r.prefix.as_ref().map(|p| Rule {
                    name: None,
                    when: Conditions {
                        prefix: Some(p.clone()),
                        ..Conditions::default()
                    },
                    reason: r.code.clone(),
                    mode: Mode::Divert,
                    show_subject: true,
                })
            })
        };
        let showas_divert = || {
            [
                showas(FreeBusy::Busy, "meeting", Mode::Divert),
                showas(FreeBusy::Oof, "out_of_office", Mode::Divert),
                showas(FreeBusy::WorkingElsewhere, "working_from_home", Mode::Info),
            ]
        };
        match self {
            Template::ShowasInfo => [
                showas(FreeBusy::Busy, "busy", Mode::Info),
                showas(FreeBusy::Oof, "out_of_office", Mode::Info),
            ]
            .into_iter()
            .flatten()
            .collect(),
            Template::ShowasDivert => showas_divert().into_iter().flatten().collect(),
            Template::Prefix => prefix_rules().collect(),
            Template::PrefixThenShowas => prefix_rules()
                .chain(showas_divert().into_iter().flatten())
                .collect(),
        }
    }
}

impl FromStr for Template {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Template::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown template `{s}` (expected showas-info, showas-divert, prefix or prefix-then-showas)"
                )
            })
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Durations in rules files: jiff's friendly format (`"1h 30m"`, `"45m"`) or ISO 8601
/// (`"PT1H30M"`); never negative.
pub(crate) mod opt_duration {
    use jiff::SignedDuration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn parse(text: &str) -> Result<SignedDuration, String> {
        let bad = || {
            format!(
                "`{text}` is not a duration (expected e.g. \"30m\", \"1h 30m\", \"2d\" or \"PT2H\")"
            )
        };
        // Days count as 24 hours: a rule measures how long a booking lasts.
        let d = match text.trim().parse::<SignedDuration>() {
            Ok(d) => d,
            Err(_) => text
                .trim()
                .parse::<jiff::Span>()
                .map_err(|_| bad())?
                .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
                .map_err(|_| bad())?,
        };
        if d.is_negative() {
            return Err(format!("`{text}` is negative"));
        }
        Ok(d)
    }

    pub(crate) fn serialize<S: Serializer>(
        d: &Option<SignedDuration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format!("{d:#}")),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SignedDuration>, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map(Some).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(
        free_busy: FreeBusy,
        subject: Option<&'a str>,
        categories: &'a [String],
    ) -> Facts<'a> {
        Facts {
            free_busy,
            subject,
            categories,
            all_day: false,
            duration: SignedDuration::from_hours(1),
            response: ResponseStatus::Accepted,
        }
    }

    fn verdict(t: Template, f: &Facts<'_>) -> Option<(String, Mode)> {
        classify(&t.rules(&ReasonCatalogue::default()), f).map(|v| (v.reason.to_string(), v.mode))
    }

    #[test]
    fn showas_info_maps_busy_and_oof_to_information() {
        let t = Template::ShowasInfo;
        assert_eq!(
            verdict(t, &facts(FreeBusy::Busy, None, &[])),
            Some(("busy".into(), Mode::Info))
        );
        assert_eq!(
            verdict(t, &facts(FreeBusy::Oof, None, &[])),
            Some(("out_of_office".into(), Mode::Info))
        );
        for ignored in [
            FreeBusy::Free,
            FreeBusy::Tentative,
            FreeBusy::WorkingElsewhere,
            FreeBusy::Unknown,
        ] {
            assert_eq!(verdict(t, &facts(ignored, None, &[])), None, "{ignored:?}");
        }
    }

    #[test]
    fn showas_divert_maps_the_free_busy_status() {
        let t = Template::ShowasDivert;
        assert_eq!(
            verdict(t, &facts(FreeBusy::Busy, None, &[])),
            Some(("meeting".into(), Mode::Divert))
        );
        assert_eq!(
            verdict(t, &facts(FreeBusy::Oof, None, &[])),
            Some(("out_of_office".into(), Mode::Divert))
        );
        assert_eq!(
            verdict(t, &facts(FreeBusy::WorkingElsewhere, None, &[])),
            Some(("working_from_home".into(), Mode::Info))
        );
        assert_eq!(verdict(t, &facts(FreeBusy::Free, None, &[])), None);
        assert_eq!(verdict(t, &facts(FreeBusy::Tentative, None, &[])), None);
    }

    #[test]
    fn prefix_template_uses_each_reasons_prefix_and_the_semicolon_form() {
        let t = Template::Prefix;
        assert_eq!(
            verdict(t, &facts(FreeBusy::Free, Some("LUN: lunch"), &[])),
            Some(("lunch".into(), Mode::Divert))
        );
        assert_eq!(
            verdict(t, &facts(FreeBusy::Free, Some("LUN; lunch"), &[])),
            Some(("lunch".into(), Mode::Info))
        );
        assert_eq!(
            verdict(t, &facts(FreeBusy::Busy, Some("sem: Kreta"), &[])),
            Some(("vacation".into(), Mode::Divert))
        );
        assert_eq!(verdict(t, &facts(FreeBusy::Busy, Some("Lunch"), &[])), None);
        assert_eq!(verdict(t, &facts(FreeBusy::Busy, None, &[])), None);
        let v = classify(
            &t.rules(&ReasonCatalogue::default()),
            &facts(FreeBusy::Busy, Some(" MOT: Volvo"), &[]),
        )
        .expect("match");
        assert_eq!(v.stripped_subject.as_deref(), Some("Volvo"));
    }

    #[test]
    fn prefix_then_showas_falls_back_to_the_free_busy_mapping() {
        let t = Template::PrefixThenShowas;
        assert_eq!(
            verdict(t, &facts(FreeBusy::Busy, Some("LUN: x"), &[])),
            Some(("lunch".into(), Mode::Divert))
        );
        assert_eq!(
            verdict(t, &facts(FreeBusy::Busy, Some("x"), &[])),
            Some(("meeting".into(), Mode::Divert))
        );
    }

    #[test]
    fn each_condition_restricts_the_match() {
        let catalogue = ReasonCatalogue::default();
        let _ = catalogue;
        let rule = |when: Conditions| Rule {
            name: None,
            when,
            reason: ReasonCode::parse("meeting").expect("code"),
            mode: Mode::Divert,
            show_subject: false,
        };
        let cats = vec!["Kund".to_owned()];
        let base = facts(FreeBusy::Busy, Some("Volvo"), &cats);

        let by_category = rule(Conditions {
            categories: Some(vec!["kund".into()]),
            ..Default::default()
        });
        assert!(classify(std::slice::from_ref(&by_category), &base).is_some());
        assert!(classify(&[by_category], &facts(FreeBusy::Busy, None, &[])).is_none());

        let all_day = rule(Conditions {
            all_day: Some(true),
            ..Default::default()
        });
        assert!(classify(std::slice::from_ref(&all_day), &base).is_none());
        assert!(
            classify(
                &[all_day],
                &Facts {
                    all_day: true,
                    ..base
                }
            )
            .is_some()
        );

        let long = rule(Conditions {
            min_duration: Some(SignedDuration::from_mins(90)),
            ..Default::default()
        });
        assert!(classify(std::slice::from_ref(&long), &base).is_none());
        assert!(
            classify(
                &[long],
                &Facts {
                    duration: SignedDuration::from_hours(2),
                    ..base
                }
            )
            .is_some()
        );

        let short = rule(Conditions {
            max_duration: Some(SignedDuration::from_mins(30)),
            ..Default::default()
        });
        assert!(classify(&[short], &base).is_none());

        let organised = rule(Conditions {
            response: Some(BTreeSet::from([ResponseStatus::Organizer])),
            ..Default::default()
        });
        assert!(classify(std::slice::from_ref(&organised), &base).is_none());
        assert!(
            classify(
                &[organised],
                &Facts {
                    response: ResponseStatus::Organizer,
                    ..base
                }
            )
            .is_some()
        );
    }

    #[test]
    fn durations_take_friendly_iso_and_day_forms() {
        use super::opt_duration::parse;
        assert_eq!(parse("30m"), Ok(SignedDuration::from_mins(30)));
        assert_eq!(parse("1h 30m"), Ok(SignedDuration::from_mins(90)));
        assert_eq!(parse("PT2H"), Ok(SignedDuration::from_hours(2)));
        assert_eq!(parse("2d"), Ok(SignedDuration::from_hours(48)));
        assert_eq!(parse("1 day 2 hours"), Ok(SignedDuration::from_hours(26)));
        assert!(parse("soon").unwrap_err().contains("not a duration"));
        assert!(parse("-1h").unwrap_err().contains("negative"));
    }

    #[test]
    fn first_matching_rule_wins_and_templates_skip_removed_reasons() {
        let catalogue = ReasonCatalogue::new(
            ReasonCatalogue::default()
                .iter()
                .filter(|r| r.code.as_str() != "meeting")
                .cloned()
                .collect(),
        )
        .expect("catalogue");
        let rules = Template::ShowasDivert.rules(&catalogue);
        assert_eq!(rules.len(), 2);
        assert!(rules.iter().all(|r| r.reason.as_str() != "meeting"));
        assert_eq!(Template::Prefix.rules(&catalogue).len(), 7);
        assert_eq!("prefix-then-showas".parse(), Ok(Template::PrefixThenShowas));
        assert!("showas".parse::<Template>().is_err());
    }
}
