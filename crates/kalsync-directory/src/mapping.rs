//! From a directory's person to a user: the mailbox (primary SMTP, AD `mail`), the name,
//! the PBX extension from a chosen attribute cut by a transform, and the department — or
//! the problem that keeps this one person out.

use std::collections::BTreeMap;
use std::fmt;

use kalsync_core::{EmailAddress, Extension};
use regex::Regex;
use serde::{Deserialize, Serialize};

/// One person as a directory reads them, before mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// The directory's own id: an Entra object id, or an LDAP entry's `objectGUID`
    /// (or DN where there is none). Stable across renames.
    pub key: String,
    /// The name shown (`displayName`, else `cn`).
    pub name: Option<String>,
    /// The primary SMTP address (`mail`).
    pub email: Option<String>,
    /// Whether the account may sign in; a disabled account counts as gone.
    pub enabled: bool,
    /// The other attributes read, by name (`businessPhones` is its first number,
    /// `extensionAttribute3` is from `onPremisesExtensionAttributes` on Entra).
    pub attributes: BTreeMap<String, String>,
}

/// A person mapped: what a user is made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The directory's id.
    pub key: String,
    /// Mailbox.
    pub email: EmailAddress,
    /// Name.
    pub name: Option<String>,
    /// PBX extension, when the attribute holds one.
    pub extension: Option<Extension>,
    /// Department.
    pub department: Option<String>,
}

/// How an attribute's value becomes an extension.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "RawRule", into = "RawRule")]
pub struct ExtensionRule {
    /// The attribute (`businessPhones`, `mobilePhone`, `extensionAttribute1`…`15`,
    /// `telephoneNumber`, `ipPhone`, …).
    pub attribute: String,
    /// The cut.
    pub transform: Transform,
}

impl PartialEq for ExtensionRule {
    fn eq(&self, other: &Self) -> bool {
        self.attribute == other.attribute && self.transform == other.transform
    }
}

/// The cut of an attribute's value.
#[derive(Debug, Clone)]
pub enum Transform {
    /// The value as it is (spaces and dashes dropped).
    Whole,
    /// Its last N digits (`+46 8 123 45 201` → `201` with 3).
    LastDigits(u8),
    /// The one capture group of a regular expression (`^\+468(\d{4})$`).
    Pattern(Regex),
}

impl PartialEq for Transform {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Transform::Whole, Transform::Whole) => true,
            (Transform::LastDigits(a), Transform::LastDigits(b)) => a == b,
            (Transform::Pattern(a), Transform::Pattern(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

/// The rule as written: `{attribute, last_digits}` or `{attribute, pattern}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    attribute: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_digits: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pattern: Option<String>,
}

/// The longest pattern taken.
const MAX_PATTERN: usize = 200;

/// An attribute's name: letters, digits, `-`, `.` and `;` (an LDAP option), at most 64.
pub(crate) fn attribute_name(field: &str, text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.is_empty()
        || t.len() > 64
        || !t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ';' | '_'))
    {
        return Err(format!(
            "{field}: `{}` is not an attribute's name",
            t.chars().take(64).collect::<String>()
        ));
    }
    Ok(t.to_owned())
}

impl TryFrom<RawRule> for ExtensionRule {
    type Error = String;

    fn try_from(raw: RawRule) -> Result<Self, String> {
        let attribute = attribute_name("extension.attribute", &raw.attribute)?;
        let transform = match (raw.last_digits, raw.pattern) {
            (Some(_), Some(_)) => {
                return Err("extension: last_digits or pattern, not both".into());
            }
            (Some(n), None) if (2..=20).contains(&n) => Transform::LastDigits(n),
            (Some(n), None) => {
                return Err(format!("extension.last_digits: {n} is not 2 to 20 digits"));
            }
            (None, Some(p)) => {
                if p.len() > MAX_PATTERN {
                    return Err(format!(
                        "extension.pattern: at most {MAX_PATTERN} characters"
                    ));
                }
                // The regex crate runs in linear time: no pattern can stall a sync.
                let re = regex::RegexBuilder::new(&p)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("extension.pattern: {e}"))?;
                if re.captures_len() != 2 {
                    return Err(
                        "extension.pattern: needs exactly one capture group, like ^\\+468(\\d{4})$"
                            .into(),
                    );
                }
                Transform::Pattern(re)
            }
            (None, None) => Transform::Whole,
        };
        Ok(ExtensionRule {
            attribute,
            transform,
        })
    }
}

impl From<ExtensionRule> for RawRule {
    fn from(rule: ExtensionRule) -> Self {
        let (last_digits, pattern) = match rule.transform {
            Transform::Whole => (None, None),
            Transform::LastDigits(n) => (Some(n), None),
            Transform::Pattern(re) => (None, Some(re.as_str().to_owned())),
        };
        RawRule {
            attribute: rule.attribute,
            last_digits,
            pattern,
        }
    }
}

impl ExtensionRule {
    /// The extension in `value`, or why not.
    pub fn extension(&self, value: &str) -> Result<Extension, String> {
        let cut = match &self.transform {
            Transform::Whole => value.to_owned(),
            Transform::LastDigits(n) => {
                let digits: Vec<char> = value.chars().filter(char::is_ascii_digit).collect();
                let n = usize::from(*n);
                if digits.len() < n {
                    return Err(format!("`{value}` has fewer than {n} digits"));
                }
                digits[digits.len() - n..].iter().collect()
            }
            Transform::Pattern(re) => re
                .captures(value)
                .and_then(|c| c.get(1))
                .map(|m| m.as_str().to_owned())
                .ok_or_else(|| format!("`{value}` does not match {}", re.as_str()))?,
        };
        Extension::parse(&cut)
    }
}

/// Why one person is left out (or, when already a user, left as they are).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// No mailbox address.
    NoEmail,
    /// An address that is not one.
    BadEmail {
        /// The value.
        value: String,
    },
    /// The extension attribute's value gives no extension.
    BadExtension {
        /// Why.
        why: String,
    },
    /// Another person has the same extension.
    SameExtension {
        /// The extension.
        extension: String,
        /// The other one (their mailbox, or their name).
        other: String,
    },
    /// Another person has the same mailbox.
    SameEmail {
        /// The other one's key.
        other: String,
    },
    /// The company's PBX has no subscription for the mailbox (only PBX-known people
    /// may be added).
    NotInPbx,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NoEmail => f.write_str("no e-mail address (mail) in the directory"),
            Problem::BadEmail { value } => write!(f, "`{value}` is not an e-mail address"),
            Problem::BadExtension { why } => write!(f, "no extension: {why}"),
            Problem::SameExtension { extension, other } => {
                write!(f, "extension {extension} is also {other}'s")
            }
            Problem::SameEmail { other } => {
                write!(f, "the same e-mail address as directory entry {other}")
            }
            Problem::NotInPbx => f.write_str("the PBX has no subscription for this mailbox"),
        }
    }
}

/// Maps one person: a member, or the problem.
pub fn map(
    person: &Person,
    extension: Option<&ExtensionRule>,
    department: Option<&str>,
) -> Result<Member, Problem> {
    let email = match person.email.as_deref().map(str::trim) {
        None | Some("") => return Err(Problem::NoEmail),
        Some(e) => EmailAddress::parse(e).map_err(|_| Problem::BadEmail {
            value: e.chars().take(120).collect(),
        })?,
    };
    let extension = match extension {
        None => None,
        Some(rule) => match person
            .attributes
            .get(&rule.attribute)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
        {
            None => None,
            Some(value) => Some(
                rule.extension(value)
                    .map_err(|why| Problem::BadExtension { why })?,
            ),
        },
    };
    let clean = |v: &str| -> Option<String> {
        let v: String = v
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        (!v.is_empty()).then_some(v)
    };
    Ok(Member {
        key: person.key.clone(),
        email,
        name: person.name.as_deref().and_then(clean),
        extension,
        department: department
            .and_then(|a| person.attributes.get(a))
            .and_then(|v| clean(v)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rule(json: serde_json::Value) -> Result<ExtensionRule, String> {
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    fn person(email: Option<&str>, phone: Option<&str>) -> Person {
        Person {
            key: "k1".into(),
            name: Some("Anna Andersson".into()),
            email: email.map(str::to_owned),
            enabled: true,
            attributes: phone
                .map(|p| BTreeMap::from([("businessPhones".to_owned(), p.to_owned())]))
                .unwrap_or_default(),
        }
    }

    #[test]
    fn extensions_are_cut_as_the_rule_says() {
        let last3 = rule(serde_json::json!({"attribute": "businessPhones", "last_digits": 3}))
            .expect("rule");
        assert_eq!(
            last3.extension("+46 8 123 45 201").map(|e| e.to_string()),
            Ok("201".into())
        );
        let pattern =
            rule(serde_json::json!({"attribute": "ipPhone", "pattern": "^\\+468(\\d{4})$"}))
                .expect("rule");
        assert_eq!(
            pattern.extension("+4681234").map(|e| e.to_string()),
            Ok("1234".into())
        );
        assert!(pattern.extension("+4791234").is_err());
        let whole = rule(serde_json::json!({"attribute": "telephoneNumber"})).expect("rule");
        assert_eq!(
            whole.extension("12-34").map(|e| e.to_string()),
            Ok("1234".into())
        );
        assert!(whole.extension("reception").is_err());
    }

    #[test]
    fn bad_rules_say_why() {
        for (json, says) in [
            (
                serde_json::json!({"attribute": "a", "last_digits": 1}),
                "2 to 20",
            ),
            (
                serde_json::json!({"attribute": "a", "pattern": "\\d+"}),
                "one capture group",
            ),
            (
                serde_json::json!({"attribute": "a", "pattern": "(\\d"}),
                "extension.pattern",
            ),
            (
                serde_json::json!({"attribute": "a", "pattern": "(\\d)", "last_digits": 3}),
                "not both",
            ),
            (serde_json::json!({"attribute": "tele phone"}), "attribute"),
        ] {
            let e = rule(json.clone()).expect_err("refused");
            assert!(e.contains(says), "{json}: {e}");
        }
    }

    #[test]
    fn a_person_maps_or_names_the_problem() {
        let last3 = rule(serde_json::json!({"attribute": "businessPhones", "last_digits": 3}))
            .expect("rule");
        let anna = map(
            &person(Some("Anna@Acme.se"), Some("+46 8 555 201")),
            Some(&last3),
            None,
        )
        .expect("mapped");
        assert_eq!(anna.email.as_str(), "anna@acme.se");
        assert_eq!(anna.extension.map(|e| e.to_string()), Some("201".into()));
        // No phone: a member without an extension.
        let none = map(&person(Some("a@acme.se"), None), Some(&last3), None).expect("mapped");
        assert_eq!(none.extension, None);
        assert_eq!(map(&person(None, None), None, None), Err(Problem::NoEmail));
        assert!(matches!(
            map(&person(Some("anna"), None), None, None),
            Err(Problem::BadEmail { .. })
        ));
        assert!(matches!(
            map(
                &person(Some("a@acme.se"), Some("reception")),
                Some(&last3),
                None
            ),
            Err(Problem::BadExtension { .. })
        ));
    }

    proptest! {
        #[test]
        fn any_value_maps_without_panicking(value in ".{0,80}", pattern in "[\\\\()\\[\\]d+*?^$.]{0,20}") {
            let last = rule(serde_json::json!({"attribute": "a", "last_digits": 4})).expect("rule");
            let _ = last.extension(&value);
            if let Ok(r) = rule(serde_json::json!({"attribute": "a", "pattern": format!("({pattern})")})) {
                let _ = r.extension(&value);
            }
        }
    }
}
