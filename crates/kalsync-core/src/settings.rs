//! An instance's settings and rules — the TOML rules file shared by `kalsync preview`,
//! the config file and the API — and the precise errors a bad file gets.

use std::ops::Range;

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::reason::{Mode, Reason, ReasonCatalogue, ReasonCode, default_rank};
use crate::rules::{Conditions, Rule, Template};
use crate::working_hours::{WorkingHours, Zone};

/// Whether users may steer single bookings (SPEC §3.4, *plugin aktiverad*).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserChoice {
    /// Users' prefixes and categories are ordinary text to the rules.
    #[default]
    Off,
    /// Any reason may be chosen.
    Any,
    /// Only the reasons in `allowed_reasons` may be chosen.
    Restricted,
}

/// What happens to private and confidential bookings (SPEC §3.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrivatePolicy {
    /// Never synced (the guides' rule).
    #[default]
    Skip,
    /// Synced as plain *busy*: no subject, no prefix, no categories; a free or tentative
    /// private booking stays free or tentative.
    Anonymous,
}

/// Everything that decides how one instance turns bookings into a timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceSettings {
    /// The instance's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether the instance syncs at all.
    pub active: bool,
    /// The instance's time zone (working hours, all-day bookings, messages).
    pub time_zone: Zone,
    /// Days ahead of now that are read and scheduled.
    pub days_ahead: u16,
    /// The template the rules started from (written as `from_template` beside the
    /// rules, for people and the admin UI; the rules are what count).
    #[serde(rename = "from_template", skip_serializing_if = "Option::is_none")]
    pub template: Option<Template>,
    /// The ordered rules.
    pub rules: Vec<Rule>,
    /// Whether users may steer single bookings.
    pub user_choice: UserChoice,
    /// With `user_choice = "restricted"`, what they may choose.
    pub allowed_reasons: Vec<ReasonCode>,
    /// Whether subjects may be shown at all.
    pub show_subject: bool,
    /// *Alla möten privata*: never show any title.
    pub hide_titles: bool,
    /// What happens to private bookings.
    pub private: PrivatePolicy,
    /// Whether declined invitations are ignored.
    pub ignore_declined: bool,
    /// Whether a return time runs to the end of a chain of same-mode bookings.
    pub chain_return_time: bool,
    /// Largest gap between bookings of one chain.
    #[serde(serialize_with = "ser_duration")]
    pub merge_gap: SignedDuration,
    /// Reason rank, highest first; reasons not listed come after, in catalogue order.
    pub rank: Vec<ReasonCode>,
    /// Working hours.
    pub working_hours: WorkingHours,
    /// The reason catalogue.
    pub reasons: ReasonCatalogue,
    /// Whether Outlook's automatic replies count as absence, and as what.
    pub automatic_replies: crate::AutomaticRepliesSettings,
    /// Whether "I'm back" from the phone also shortens, in the person's calendar, the
    /// appointment the absence came from (one they organised, without attendees).
    pub write_back: bool,
    /// Whether Teams presence is read and shown on the PBX, and how.
    pub teams: crate::TeamsSettings,
}

fn ser_duration<S: serde::Serializer>(d: &SignedDuration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{d:#}"))
}

impl Default for InstanceSettings {
    fn default() -> Self {
        let reasons = ReasonCatalogue::default();
        InstanceSettings {
            name: None,
            active: true,
            time_zone: Zone::stockholm(),
            days_ahead: 14,
            template: Some(Template::ShowasInfo),
            rules: Template::ShowasInfo.rules(&reasons),
            user_choice: UserChoice::Off,
            allowed_reasons: Vec::new(),
            show_subject: false,
            hide_titles: false,
            private: PrivatePolicy::Skip,
            ignore_declined: true,
            chain_return_time: true,
            merge_gap: SignedDuration::ZERO,
            rank: default_rank(),
            working_hours: WorkingHours::default(),
            reasons,
            automatic_replies: crate::AutomaticRepliesSettings::default(),
            write_back: false,
            teams: crate::TeamsSettings::default(),
        }
    }
}

impl InstanceSettings {
    /// Default settings with another template's rules.
    pub fn with_template(template: Template) -> Self {
        let mut settings = InstanceSettings::default();
        settings.rules = template.rules(&settings.reasons);
        settings.template = Some(template);
        settings
    }

    /// These settings as they apply to one mailbox: the mailbox's own zone and its
    /// Outlook working hours, where the source knows them, replace the instance's.
    pub fn for_mailbox(
        &self,
        zone: Option<&Zone>,
        working_hours: Option<&WorkingHours>,
    ) -> std::borrow::Cow<'_, InstanceSettings> {
        if zone.is_none() && working_hours.is_none() {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut own = self.clone();
        if let Some(zone) = zone {
            own.time_zone = zone.clone();
        }
        if let Some(hours) = working_hours {
            own.working_hours = hours.clone();
        }
        std::borrow::Cow::Owned(own)
    }

    /// Whether subjects may leave the service's memory at all.
    pub fn subjects_allowed(&self) -> bool {
        self.show_subject && !self.hide_titles
    }

    /// A reason's rank: lower is stronger.
    pub fn rank_of(&self, code: &ReasonCode) -> usize {
        self.rank.iter().position(|c| c == code).unwrap_or_else(|| {
            self.rank.len()
                + self
                    .reasons
                    .iter()
                    .position(|r| &r.code == code)
                    .unwrap_or(usize::MAX / 2)
        })
    }

    /// Whether some rule or user choice reads the subject, so a source must request it.
    pub fn needs_subject(&self) -> bool {
        self.subjects_allowed()
            || self.user_choice != UserChoice::Off
            || self.rules.iter().any(|r| r.when.prefix.is_some())
    }

    /// Parses a rules file. Every key is optional; unknown keys are errors.
    pub fn from_toml(text: &str) -> Result<Self, SettingsError> {
        let raw: RawSettings = toml::from_str(text).map_err(|e| SettingsError {
            span: e.span(),
            path: None,
            message: e.message().trim().to_owned(),
        })?;
        raw.into_settings()
    }

    /// Writes the settings as a rules file that [`InstanceSettings::from_toml`] reads back.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

/// A bad rules file: what is wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", path.as_ref().map(|p| format!("{p}: ")).unwrap_or_default())]
pub struct SettingsError {
    /// Byte range in the file.
    pub span: Option<Range<usize>>,
    /// The field, e.g. `rules[2].reason`.
    pub path: Option<String>,
    /// What was expected.
    pub message: String,
}

impl SettingsError {
    fn at(span: Range<usize>, path: impl Into<String>, message: impl Into<String>) -> Self {
        SettingsError {
            span: Some(span),
            path: Some(path.into()),
            message: message.into(),
        }
    }

    /// One line: `FILE:LINE:COLUMN: field: message`.
    pub fn located(&self, file: &str, source: &str) -> String {
        match &self.span {
            Some(span) => {
                let (line, column) = line_column(source, span.start);
                format!("{file}:{line}:{column}: {self}")
            }
            None => format!("{file}: {self}"),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    when: Conditions,
    reason: Spanned<ReasonCode>,
    mode: crate::reason::Mode,
    #[serde(default)]
    show_subject: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    name: Option<String>,
    active: Option<bool>,
    time_zone: Option<Spanned<String>>,
    days_ahead: Option<Spanned<i64>>,
    template: Option<Spanned<Template>>,
    from_template: Option<Template>,
    rules: Option<Spanned<Vec<Spanned<RawRule>>>>,
    user_choice: Option<UserChoice>,
    allowed_reasons: Option<Vec<Spanned<ReasonCode>>>,
    show_subject: Option<bool>,
    hide_titles: Option<bool>,
    private: Option<PrivatePolicy>,
    ignore_declined: Option<bool>,
    chain_return_time: Option<bool>,
    merge_gap: Option<Spanned<String>>,
    rank: Option<Vec<Spanned<ReasonCode>>>,
    working_hours: Option<WorkingHours>,
    reasons: Option<Spanned<Vec<Reason>>>,
    automatic_replies: Option<RawAutomaticReplies>,
    write_back: Option<bool>,
    teams: Option<crate::TeamsSettings>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAutomaticReplies {
    enabled: Option<bool>,
    reason: Option<Spanned<ReasonCode>>,
    mode: Option<Mode>,
}

impl RawSettings {
    fn into_settings(self) -> Result<InstanceSettings, SettingsError> {
        let mut s = InstanceSettings::default();
        if let Some(reasons) = self.reasons {
            let span = reasons.span();
            s.reasons = ReasonCatalogue::new(reasons.into_inner())
                .map_err(|e| SettingsError::at(span, "reasons", e.to_string()))?;
        }
        let known =
            |code: &Spanned<ReasonCode>, path: String| -> Result<ReasonCode, SettingsError> {
                if s.reasons.contains(code.get_ref()) {
                    Ok(code.get_ref().clone())
                } else {
                    Err(SettingsError::at(
                        code.span(),
                        path,
                        format!(
                            "unknown reason `{}` (expected one of: {})",
                            code.get_ref(),
                            s.reasons.codes()
                        ),
                    ))
                }
            };
        if let Some(tz) = self.time_zone {
            s.time_zone = Zone::parse(tz.get_ref())
                .map_err(|e| SettingsError::at(tz.span(), "time_zone", e))?;
        }
        if let Some(days) = self.days_ahead {
            s.days_ahead = u16::try_from(*days.get_ref())
                .ok()
                .filter(|d| (1..=365).contains(d))
                .ok_or_else(|| {
                    SettingsError::at(
                        days.span(),
                        "days_ahead",
                        "expected a number of days from 1 to 365",
                    )
                })?;
        }
        match (self.template, self.rules) {
            (Some(_), Some(rules)) => {
                return Err(SettingsError::at(
                    rules.span(),
                    "rules",
                    "give either `template` or `[[rules]]`, not both (a template is a starting list of rules)",
                ));
            }
            (Some(t), None) => {
                s.template = Some(*t.get_ref());
                s.rules = t.get_ref().rules(&s.reasons);
            }
            (None, Some(rules)) => {
                s.template = self.from_template;
                s.rules = Vec::new();
                for (i, raw) in rules.into_inner().into_iter().enumerate() {
                    let span = raw.span();
                    let raw = raw.into_inner();
                    let reason = known(&raw.reason, format!("rules[{i}].reason"))?;
                    if let (Some(min), Some(max)) = (raw.when.min_duration, raw.when.max_duration) {
                        if min > max {
                            return Err(SettingsError::at(
                                span,
                                format!("rules[{i}].when"),
                                "min_duration is longer than max_duration",
                            ));
                        }
                    }
                    s.rules.push(Rule {
                        name: raw.name,
                        when: raw.when,
                        reason,
                        mode: raw.mode,
                        show_subject: raw.show_subject,
                    });
                }
            }
            (None, None) => {
                // Rules follow a replaced catalogue.
                s.rules = Template::ShowasInfo.rules(&s.reasons);
            }
        }
        if let Some(rank) = self.rank {
            s.rank = Vec::new();
            for (i, code) in rank.iter().enumerate() {
                let code = known(code, format!("rank[{i}]"))?;
                if s.rank.contains(&code) {
                    return Err(SettingsError::at(
                        rank[i].span(),
                        format!("rank[{i}]"),
                        format!("`{code}` is ranked twice"),
                    ));
                }
                s.rank.push(code);
            }
        } else {
            s.rank.retain(|c| s.reasons.contains(c));
        }
        if let Some(allowed) = self.allowed_reasons {
            s.allowed_reasons = allowed
                .iter()
                .enumerate()
                .map(|(i, c)| known(c, format!("allowed_reasons[{i}]")))
                .collect::<Result<_, _>>()?;
        }
        if let Some(gap) = self.merge_gap {
            let d = crate::rules::opt_duration::parse(gap.get_ref())
                .map_err(|e| SettingsError::at(gap.span(), "merge_gap", e))?;
            if d > SignedDuration::from_hours(24) {
                return Err(SettingsError::at(
                    gap.span(),
                    "merge_gap",
                    "at most 24 hours",
                ));
            }
            s.merge_gap = d;
        }
        s.name = self.name;
        s.active = self.active.unwrap_or(s.active);
        s.user_choice = self.user_choice.unwrap_or(s.user_choice);
        s.show_subject = self.show_subject.unwrap_or(s.show_subject);
        s.hide_titles = self.hide_titles.unwrap_or(s.hide_titles);
        s.private = self.private.unwrap_or(s.private);
        s.ignore_declined = self.ignore_declined.unwrap_or(s.ignore_declined);
        s.chain_return_time = self.chain_return_time.unwrap_or(s.chain_return_time);
        s.write_back = self.write_back.unwrap_or(s.write_back);
        if let Some(wh) = self.working_hours {
            s.working_hours = wh;
        }
        if let Some(auto) = self.automatic_replies {
            s.automatic_replies.enabled = auto.enabled.unwrap_or(false);
            if let Some(reason) = &auto.reason {
                s.automatic_replies.reason = known(reason, "automatic_replies.reason".into())?;
            }
            if let Some(mode) = auto.mode {
                s.automatic_replies.mode = mode;
            }
            if s.automatic_replies.enabled && !s.reasons.contains(&s.automatic_replies.reason) {
                return Err(SettingsError {
                    span: None,
                    path: Some("automatic_replies.reason".into()),
                    message: format!(
                        "unknown reason `{}` (expected one of: {})",
                        s.automatic_replies.reason,
                        s.reasons.codes()
                    ),
                });
            }
        }
        if let Some(teams) = self.teams {
            use crate::teams::{MAX_POLL_SECONDS, MIN_POLL_SECONDS};
            if !(MIN_POLL_SECONDS..=MAX_POLL_SECONDS).contains(&teams.poll_seconds) {
                return Err(SettingsError {
                    span: None,
                    path: Some("teams.poll_seconds".into()),
                    message: format!(
                        "{} seconds: from {MIN_POLL_SECONDS} to {MAX_POLL_SECONDS}",
                        teams.poll_seconds
                    ),
                });
            }
            if teams.read {
                for code in teams.reasons() {
                    if !ReasonCode::parse(code).is_ok_and(|c| s.reasons.contains(&c)) {
                        return Err(SettingsError {
                            span: None,
                            path: Some("teams.read".into()),
                            message: format!(
                                "Teams calls and meetings show as `{code}`, which the reasons lack (expected: {})",
                                s.reasons.codes()
                            ),
                        });
                    }
                }
            }
            s.teams = teams;
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reason::Mode;

    #[test]
    fn empty_file_gives_the_documented_defaults() {
        let s = InstanceSettings::from_toml("").expect("valid");
        assert_eq!(s, InstanceSettings::default());
        assert_eq!(s.days_ahead, 14);
        assert_eq!(s.time_zone.name(), "Europe/Stockholm");
        assert_eq!(s.template, Some(Template::ShowasInfo));
        assert!(!s.needs_subject());
    }

    #[test]
    fn automatic_replies_are_off_unless_asked_for_and_take_a_known_reason() {
        let off = InstanceSettings::from_toml("").expect("valid");
        assert!(!off.automatic_replies.enabled);
        let on = InstanceSettings::from_toml(
            "[automatic_replies]\nenabled = true\nreason = \"vacation\"\nmode = \"divert\"\n",
        )
        .expect("valid");
        assert!(on.automatic_replies.enabled);
        assert_eq!(on.automatic_replies.reason.as_str(), "vacation");
        assert_eq!(on.automatic_replies.mode, Mode::Divert);
        // Read back as written.
        assert_eq!(
            InstanceSettings::from_toml(&on.to_toml()).expect("again"),
            on
        );
        let wrong = InstanceSettings::from_toml(
            "[automatic_replies]\nenabled = true\nreason = \"rymden\"\n",
        )
        .expect_err("unknown reason");
        assert_eq!(wrong.path.as_deref(), Some("automatic_replies.reason"));
        let typo = InstanceSettings::from_toml("[automatic_replies]\nenable = true\n")
            .expect_err("unknown key");
        assert!(typo.message.contains("enable"), "{typo}");
    }

    #[test]
    fn a_full_file_is_read() {
        let text = r#"
name = "Växel HQ"
time_zone = "Europe/Stockholm"
days_ahead = 21
user_choice = "restricted"
allowed_reasons = ["lunch", "meeting"]
show_subject = true
private = "anonymous"
merge_gap = "15m"
rank = ["sick", "vacation"]

[working_hours]
days = ["mon", "tue", "wed", "thu"]
start = "07:30"
end = "16:00"

[[rules]]
name = "long OOF is vacation"
when = { show_as = ["oof"], min_duration = "8h" }
reason = "vacation"
mode = "divert"

[[rules]]
when.show_as = ["busy", "tentative"]
when.categories = ["Kund"]
reason = "meeting"
mode = "info"
show_subject = true
"#;
        let s = InstanceSettings::from_toml(text).expect("valid");
        assert_eq!(s.days_ahead, 21);
        assert_eq!(s.rules.len(), 2);
        assert_eq!(s.rules[1].mode, Mode::Info);
        assert_eq!(s.merge_gap, SignedDuration::from_mins(15));
        assert_eq!(s.user_choice, UserChoice::Restricted);
        assert_eq!(s.template, None);
        assert!(s.needs_subject());
        let again = InstanceSettings::from_toml(&s.to_toml()).expect("round trip");
        assert_eq!(again, s);
    }

    fn error(text: &str) -> String {
        InstanceSettings::from_toml(text)
            .unwrap_err()
            .located("rules.toml", text)
    }

    #[test]
    fn errors_name_the_line_the_field_and_what_was_expected() {
        let e = error("days_ahead = 14\n[[rules]]\nreason = \"lunc\"\nmode = \"divert\"\n");
        assert!(
            e.starts_with("rules.toml:3:10: rules[0].reason: unknown reason `lunc`"),
            "{e}"
        );
        assert!(e.contains("expected one of: working_from_home"), "{e}");

        let e = error("template = \"showas\"\n");
        assert!(e.starts_with("rules.toml:1:12:"), "{e}");
        assert!(e.contains("showas-info"), "{e}");

        let e = error("time_zone = \"W. Europe Standard Time\"\n");
        assert!(
            e.starts_with("rules.toml:1:13: time_zone: unknown time zone"),
            "{e}"
        );

        let e = error("days_ahead = 0\n");
        assert!(
            e.contains("days_ahead: expected a number of days from 1 to 365"),
            "{e}"
        );

        let e = error("show_subjects = true\n");
        assert!(
            e.starts_with("rules.toml:1:1:") && e.contains("unknown field `show_subjects`"),
            "{e}"
        );

        let e = error("[[rules]]\nreason = \"lunch\"\nmode = \"forward\"\n");
        assert!(
            e.starts_with("rules.toml:3:8:") && e.contains("info"),
            "{e}"
        );

        let e =
            error("[[rules]]\nwhen.prefix = \"LUNCH TIME\"\nreason = \"lunch\"\nmode = \"info\"\n");
        assert!(
            e.starts_with("rules.toml:2:15:") && e.contains("not a subject prefix"),
            "{e}"
        );

        let e =
            error("[[rules]]\nwhen.min_duration = \"soon\"\nreason = \"lunch\"\nmode = \"info\"\n");
        assert!(e.contains("not a duration"), "{e}");

        let e = error("template = \"prefix\"\n[[rules]]\nreason = \"lunch\"\nmode = \"info\"\n");
        assert!(e.contains("either `template` or `[[rules]]`"), "{e}");

        let e = error("rank = [\"lunch\", \"lunch\"]\n");
        assert!(e.contains("rank[1]: `lunch` is ranked twice"), "{e}");

        let e = error("[working_hours]\nstart = \"17:00\"\nend = \"08:00\"\n");
        assert!(e.contains("must be before"), "{e}");

        let e = error("days_ahead = \n");
        assert!(e.starts_with("rules.toml:1:"), "{e}");
    }

    #[test]
    fn a_replaced_catalogue_drives_prefixes_and_templates() {
        let text = r#"
template = "prefix"
[[reasons]]
code = "lunch"
label_sv = "Lunch"
label_en = "Lunch"
prefix = "MAT:"
[[reasons]]
code = "course"
label_sv = "Kurs"
label_en = "Course"
prefix = "KURS:"
"#;
        let s = InstanceSettings::from_toml(text).expect("valid");
        assert_eq!(s.rules.len(), 2);
        assert_eq!(s.rules[1].reason.as_str(), "course");
        assert!(
            s.rank_of(&ReasonCode::parse("lunch").expect("c"))
                < s.rank_of(&ReasonCode::parse("course").expect("c"))
        );
    }
}
