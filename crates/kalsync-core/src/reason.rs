//! Absence reasons (*hänvisningsorsaker*), modes and the operator's reason catalogue (SPEC §2).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A reason's code, e.g. `lunch`: lowercase ASCII letters, digits and `_`, starting with a
/// letter, at most 40 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ReasonCode(String);

impl ReasonCode {
    /// Parses a code.
    pub fn parse(code: impl Into<String>) -> Result<Self, ReasonError> {
        let code = code.into();
        let mut chars = code.chars();
        let valid = code.len() <= 40
            && chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if valid {
            Ok(Self(code))
        } else {
            Err(ReasonError::InvalidCode(code))
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A code known to be valid (the built-in catalogue).
    fn builtin(code: &'static str) -> Self {
        Self(code.to_owned())
    }
}

impl TryFrom<String> for ReasonCode {
    type Error = ReasonError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<ReasonCode> for String {
    fn from(value: ReasonCode) -> Self {
        value.0
    }
}

impl FromStr for ReasonCode {
    type Err = ReasonError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The separator after a subject prefix: `LUN:` picks the rule's mode (or `divert` for a
/// user's own choice), `LUN;` makes the booking information only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Separator {
    /// `:`
    Colon,
    /// `;`
    Semicolon,
}

/// A subject prefix such as `LUN:`. Stored as its letters in upper case; written with a
/// colon. Letters and digits only (Swedish letters included), 1 to 10 of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Prefix(String);

impl Prefix {
    /// Parses `LUN:`, `LUN;` or `LUN`.
    pub fn parse(text: &str) -> Result<Self, ReasonError> {
        let core = text
            .trim()
            .strip_suffix(':')
            .or_else(|| text.trim().strip_suffix(';'))
            .unwrap_or(text.trim());
        let count = core.chars().count();
        if (1..=10).contains(&count) && core.chars().all(char::is_alphanumeric) {
            Ok(Self(core.to_uppercase()))
        } else {
            Err(ReasonError::InvalidPrefix(text.to_owned()))
        }
    }

    /// The prefix's letters, upper case, without separator.
    pub fn letters(&self) -> &str {
        &self.0
    }

    /// If `subject` starts with this prefix (after leading white space, any case) followed
    /// by `:` or `;`, the separator and the rest of the subject.
    pub fn strip<'s>(&self, subject: &'s str) -> Option<(Separator, &'s str)> {
        let (letters, sep, rest) = split_prefix(subject)?;
        (letters.to_uppercase() == self.0).then_some((sep, rest))
    }
}

/// Splits a subject into prefix letters, separator and the rest, if it starts (after
/// leading white space) with 1–10 letters or digits followed by `:` or `;`.
pub fn split_prefix(subject: &str) -> Option<(&str, Separator, &str)> {
    let trimmed = subject.trim_start();
    let (index, sep) = trimmed.char_indices().take(11).find_map(|(i, c)| match c {
        ':' => Some((i, Separator::Colon)),
        ';' => Some((i, Separator::Semicolon)),
        _ => None,
    })?;
    let letters = &trimmed[..index];
    if letters.is_empty() || !letters.chars().all(char::is_alphanumeric) {
        return None;
    }
    Some((letters, sep, trimmed[index + 1..].trim_start()))
}

impl TryFrom<String> for Prefix {
    type Error = ReasonError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Prefix> for String {
    fn from(value: Prefix) -> Self {
        format!("{}:", value.0)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.0)
    }
}

/// How an absence affects the PBX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// *Frånvaro*: shown only.
    Info,
    /// *Hänvisning*: shown, and calls go to the absence announcement.
    Divert,
}

impl Mode {
    /// `info` or `divert`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Info => "info",
            Mode::Divert => "divert",
        }
    }
}

/// One reason known to the PBX.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Code, e.g. `lunch`.
    pub code: ReasonCode,
    /// Swedish label, e.g. "Lunch".
    pub label_sv: String,
    /// English label.
    pub label_en: String,
    /// Subject prefix, e.g. `LUN:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<Prefix>,
}

/// The operator's reasons. Codes and prefixes are unique; labels are not empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ReasonCatalogue {
    reasons: Vec<Reason>,
}

/// The code of the cleared state.
pub const AVAILABLE: &str = "available";
/// The code whose return time is always the next working period (SPEC §3.6).
pub const GONE_FOR_THE_DAY: &str = "gone_for_the_day";

impl ReasonCatalogue {
    /// Checks a list of reasons: unique codes and prefixes, non-empty labels.
    pub fn new(reasons: Vec<Reason>) -> Result<Self, ReasonError> {
        for (i, r) in reasons.iter().enumerate() {
            if r.label_sv.trim().is_empty() || r.label_en.trim().is_empty() {
                return Err(ReasonError::EmptyLabel(r.code.clone()));
            }
            for other in &reasons[..i] {
                if other.code == r.code {
                    return Err(ReasonError::DuplicateCode(r.code.clone()));
                }
                if r.prefix.is_some() && other.prefix == r.prefix {
                    return Err(ReasonError::DuplicatePrefix(
                        r.prefix.clone().map(|p| p.to_string()).unwrap_or_default(),
                    ));
                }
            }
        }
        Ok(Self { reasons })
    }

    /// All reasons in catalogue order.
    pub fn iter(&self) -> impl Iterator<Item = &Reason> {
        self.reasons.iter()
    }

    /// The reason with this code.
    pub fn get(&self, code: &ReasonCode) -> Option<&Reason> {
        self.reasons.iter().find(|r| &r.code == code)
    }

    /// Whether a code is in the catalogue.
    pub fn contains(&self, code: &ReasonCode) -> bool {
        self.get(code).is_some()
    }

    /// The reason whose prefix starts `subject`, with the separator used and the rest of
    /// the subject.
    pub fn by_subject_prefix<'s>(&self, subject: &'s str) -> Option<(&Reason, Separator, &'s str)> {
        let (letters, sep, rest) = split_prefix(subject)?;
        let upper = letters.to_uppercase();
        self.reasons
            .iter()
            .find(|r| r.prefix.as_ref().is_some_and(|p| p.letters() == upper))
            .map(|r| (r, sep, rest))
    }

    /// The reason an Outlook category names: its code, its Swedish or English label, or
    /// `kalsync:<code>`; any case.
    pub fn by_category(&self, category: &str) -> Option<&Reason> {
        let category = category.trim();
        let code = category
            .get(..8)
            .filter(|head| head.eq_ignore_ascii_case("kalsync:"))
            .map(|_| category[8..].trim());
        self.reasons.iter().find(|r| match code {
            Some(code) => r.code.as_str().eq_ignore_ascii_case(code),
            None => {
                r.code.as_str().eq_ignore_ascii_case(category)
                    || r.label_sv.to_lowercase() == category.to_lowercase()
                    || r.label_en.to_lowercase() == category.to_lowercase()
            }
        })
    }

    /// Codes in catalogue order, for error messages.
    pub fn codes(&self) -> String {
        self.reasons
            .iter()
            .map(|r| r.code.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Default for ReasonCatalogue {
    /// The nine reasons of the customers' guides.
    fn default() -> Self {
        let r = |code: &'static str, sv: &str, en: &str, prefix: Option<&str>| Reason {
            code: ReasonCode::builtin(code),
            label_sv: sv.to_owned(),
            label_en: en.to_owned(),
            prefix: prefix.map(|p| Prefix(p.to_owned())),
        };
        ReasonCatalogue {
            reasons: vec![
                r(
                    "working_from_home",
                    "Jobbar hemifrån",
                    "Working from home",
                    Some("HEM"),
                ),
                r("sick", "Sjuk / VAB", "Sick / caring for child", Some("SJU")),
                r(
                    "gone_for_the_day",
                    "Gått för dagen",
                    "Gone for the day",
                    Some("SLU"),
                ),
                r(AVAILABLE, "Tillgänglig", "Available", None),
                r("busy", "Upptagen", "Busy", Some("UPP")),
                r("lunch", "Lunch", "Lunch", Some("LUN")),
                r("meeting", "Möte", "Meeting", Some("MOT")),
                r(
                    "out_of_office",
                    "Ej på kontoret",
                    "Out of office",
                    Some("UTE"),
                ),
                r("vacation", "Semester", "Vacation", Some("SEM")),
            ],
        }
    }
}

/// The default reason rank, highest first (SPEC §3.5).
pub fn default_rank() -> Vec<ReasonCode> {
    [
        "vacation",
        "sick",
        "out_of_office",
        GONE_FOR_THE_DAY,
        "working_from_home",
        "meeting",
        "lunch",
        "busy",
    ]
    .into_iter()
    .map(ReasonCode::builtin)
    .collect()
}

/// What is wrong with a reason or the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReasonError {
    /// Bad code.
    #[error(
        "`{0}` is not a reason code (expected lowercase letters, digits and `_`, starting with a letter, at most 40)"
    )]
    InvalidCode(String),
    /// Bad prefix.
    #[error(
        "`{0}` is not a subject prefix (expected 1–10 letters or digits and a colon, e.g. `LUN:`)"
    )]
    InvalidPrefix(String),
    /// Two reasons with one code.
    #[error("reason code `{0}` appears twice")]
    DuplicateCode(ReasonCode),
    /// Two reasons with one prefix.
    #[error("prefix `{0}` is used by two reasons")]
    DuplicatePrefix(String),
    /// Empty label.
    #[error("reason `{0}` needs a Swedish and an English label")]
    EmptyLabel(ReasonCode),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn code(s: &str) -> ReasonCode {
        ReasonCode::parse(s).expect("valid code")
    }

    #[test]
    fn default_catalogue_has_the_nine_reasons_of_the_guides() {
        let c = ReasonCatalogue::default();
        assert_eq!(c.iter().count(), 9);
        assert!(ReasonCatalogue::new(c.iter().cloned().collect()).is_ok());
        let lunch = c.get(&code("lunch")).expect("lunch");
        assert_eq!(
            lunch.prefix.as_ref().map(ToString::to_string),
            Some("LUN:".into())
        );
        assert_eq!(
            c.get(&code("sick")).map(|r| r.label_sv.as_str()),
            Some("Sjuk / VAB")
        );
        assert!(c.get(&code(AVAILABLE)).is_some_and(|r| r.prefix.is_none()));
    }

    #[test]
    fn subject_prefixes_match_after_white_space_in_any_case() {
        let c = ReasonCatalogue::default();
        let (r, sep, rest) = c.by_subject_prefix("  lun: with Bo").expect("lunch");
        assert_eq!(
            (r.code.as_str(), sep, rest),
            ("lunch", Separator::Colon, "with Bo")
        );
        let (r, sep, _) = c.by_subject_prefix("LUN;lunch").expect("lunch");
        assert_eq!((r.code.as_str(), sep), ("lunch", Separator::Semicolon));
        assert!(c.by_subject_prefix("Lunch with Bo").is_none());
        assert!(c.by_subject_prefix("Re: LUN: x").is_none());
        assert!(c.by_subject_prefix("XYZ: x").is_none());
        assert!(c.by_subject_prefix("").is_none());
    }

    #[test]
    fn categories_name_reasons_by_code_label_or_kalsync_prefix() {
        let c = ReasonCatalogue::default();
        for cat in [
            "Lunch",
            "semester",
            "kalsync:vacation",
            "KALSYNC: sick",
            "Möte",
            "out_of_office",
        ] {
            assert!(c.by_category(cat).is_some(), "{cat}");
        }
        assert_eq!(
            c.by_category("Semester").map(|r| r.code.as_str()),
            Some("vacation")
        );
        assert!(c.by_category("Red category").is_none());
        assert!(c.by_category("kalsync:").is_none());
    }

    #[test]
    fn catalogue_rejects_duplicates_and_empty_labels() {
        let mut reasons: Vec<Reason> = ReasonCatalogue::default().iter().cloned().collect();
        reasons[1].prefix = reasons[0].prefix.clone();
        assert!(matches!(
            ReasonCatalogue::new(reasons),
            Err(ReasonError::DuplicatePrefix(_))
        ));
        let mut reasons: Vec<Reason> = ReasonCatalogue::default().iter().cloned().collect();
        reasons.push(reasons[0].clone());
        assert!(matches!(
            ReasonCatalogue::new(reasons),
            Err(ReasonError::DuplicateCode(_))
        ));
        let mut reasons: Vec<Reason> = ReasonCatalogue::default().iter().cloned().collect();
        reasons[2].label_en = " ".into();
        assert!(matches!(
            ReasonCatalogue::new(reasons),
            Err(ReasonError::EmptyLabel(_))
        ));
    }

    proptest! {
        #[test]
        fn reason_code_parse_accepts_exactly_the_documented_alphabet(s in "\\PC{0,45}") {
            let ok = ReasonCode::parse(s.clone()).is_ok();
            let expected = !s.is_empty() && s.len() <= 40
                && s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            prop_assert_eq!(ok, expected);
        }

        #[test]
        fn prefix_round_trips_through_its_text(p in "[A-Za-zÅÄÖåäö0-9]{1,10}") {
            let prefix = Prefix::parse(&format!("{p}:")).expect("valid");
            prop_assert_eq!(Prefix::parse(&prefix.to_string()).expect("again"), prefix.clone());
            let subject = format!("  {}: rest", p.to_lowercase());
            prop_assert_eq!(prefix.strip(&subject), Some((Separator::Colon, "rest")));
        }
    }
}
