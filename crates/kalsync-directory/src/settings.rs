//! An instance's directory settings: which groups, how people's attributes become a
//! user's name, mailbox, extension and department, how often, and what happens to
//! leavers and to users added by hand. Parsed once; a value of these types is valid.

use std::fmt;

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use crate::app::EntraApp;
use crate::ldap::LdapServer;
use crate::mapping::ExtensionRule;

/// Where the people come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryKind {
    /// Entra ID (Microsoft 365) through Graph, with the instance's own app.
    Entra,
    /// Active Directory (or any LDAP directory) over LDAPS or StartTLS.
    Ldap,
}

impl DirectoryKind {
    /// `entra` or `ldap`.
    pub fn as_str(self) -> &'static str {
        match self {
            DirectoryKind::Entra => "entra",
            DirectoryKind::Ldap => "ldap",
        }
    }
}

/// What happens to users who were added by hand and are not in the directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManualUsers {
    /// They stay; the directory adds and removes only its own (*directory and manual*).
    #[default]
    Keep,
    /// Only the directory decides: adding by hand is refused, and users not in the
    /// directory are removed like leavers (*directory only*).
    Refuse,
}

/// A group, as its directory names it: an Entra object id, or an LDAP distinguished
/// name. Non-empty, at most 1,024 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GroupRef(String);

impl GroupRef {
    /// Parses a group's id or distinguished name.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("a group is empty".into());
        }
        if t.len() > 1024 || t.chars().any(char::is_control) {
            return Err(format!(
                "`{}` is not a group's id or name (at most 1,024 characters, no control characters)",
                t.chars().take(60).collect::<String>()
            ));
        }
        Ok(GroupRef(t.to_owned()))
    }

    /// The id or name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GroupRef {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value)
    }
}

impl From<GroupRef> for String {
    fn from(value: GroupRef) -> Self {
        value.0
    }
}

impl fmt::Display for GroupRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How many groups one instance may follow.
pub const MAX_GROUPS: usize = 50;
/// The shortest time between two syncs.
pub const MIN_EVERY: SignedDuration = SignedDuration::from_mins(5);
/// The longest time between two syncs.
pub const MAX_EVERY: SignedDuration = SignedDuration::from_hours(24 * 7);
/// The longest grace period before a leaver is removed.
pub const MAX_GRACE: SignedDuration = SignedDuration::from_hours(24 * 90);

/// An instance's directory settings as stored and exchanged (JSON, or a settings
/// file's table). Secrets (an LDAP bind password) are kept apart by the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawSettings", into = "RawSettings")]
pub struct DirectorySettings {
    /// Where the people come from.
    pub kind: DirectoryKind,
    /// For an LDAP directory: its server, search base and account.
    pub ldap: Option<LdapServer>,
    /// For an Entra ID directory read with an app of its own (an Exchange instance in a
    /// hybrid company): the app; otherwise the instance's own Microsoft 365 app reads it.
    pub entra_app: Option<EntraApp>,
    /// The groups whose members (nested groups included) are the instance's users.
    pub groups: Vec<GroupRef>,
    /// The PBX extension: which attribute, and how it is cut.
    pub extension: Option<ExtensionRule>,
    /// The attribute with the department (for the switchboard's filter).
    pub department: Option<String>,
    /// How often the directory is read (jittered), at least [`MIN_EVERY`].
    pub every: SignedDuration,
    /// How long a leaver stays before being removed with their data (0: at once).
    pub grace: SignedDuration,
    /// Users added by hand.
    pub manual: ManualUsers,
    /// Whether syncs change users; off, they are dry runs only (shown, not applied).
    pub enabled: bool,
}

impl DirectorySettings {
    /// Entra ID groups, with the defaults (every 15 minutes, no grace, manual users
    /// kept, the extension from `businessPhones`' last digits left out, not enabled).
    pub fn entra(groups: Vec<GroupRef>) -> Self {
        DirectorySettings {
            kind: DirectoryKind::Entra,
            ldap: None,
            entra_app: None,
            groups,
            extension: None,
            department: None,
            every: SignedDuration::from_mins(15),
            grace: SignedDuration::ZERO,
            manual: ManualUsers::Keep,
            enabled: false,
        }
    }
}

impl DirectorySettings {
    /// The attributes the mapping reads (the extension's and the department's).
    pub fn attributes(&self) -> Vec<String> {
        self.extension
            .iter()
            .map(|e| e.attribute.clone())
            .chain(self.department.clone())
            .collect()
    }
}

/// The settings as written: durations as text (`"15m"`, `"2d"`), the extension rule
/// flattened.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    kind: DirectoryKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ldap: Option<LdapServer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entra_app: Option<EntraApp>,
    groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    extension: Option<ExtensionRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    department: Option<String>,
    #[serde(default = "default_every")]
    every: String,
    #[serde(default = "default_grace")]
    grace: String,
    #[serde(default)]
    manual: ManualUsers,
    #[serde(default)]
    enabled: bool,
}

fn default_every() -> String {
    "15m".into()
}

fn default_grace() -> String {
    "0s".into()
}

/// `"15m"`, `"1h 30m"`, `"2d"` or ISO 8601 (`"PT15M"`).
pub(crate) fn duration(field: &str, text: &str) -> Result<SignedDuration, String> {
    let t = text.trim();
    let days = t
        .strip_suffix('d')
        .and_then(|n| n.trim().parse::<i64>().ok());
    let parsed = match days {
        Some(d) if (0..=3650).contains(&d) => Ok(SignedDuration::from_hours(24 * d)),
        _ => t.parse::<SignedDuration>().map_err(|_| ()),
    };
    match parsed {
        Ok(d) if !d.is_negative() => Ok(d),
        _ => Err(format!(
            "{field}: `{t}` is not a duration (like \"15m\", \"1h 30m\" or \"2d\")"
        )),
    }
}

/// Writes a duration back as it is read (`"15m"`).
pub(crate) fn written(d: SignedDuration) -> String {
    let secs = d.as_secs();
    if secs % 86_400 == 0 && secs > 0 {
        format!("{}d", secs / 86_400)
    } else {
        format!("{d:#}")
    }
}

impl TryFrom<RawSettings> for DirectorySettings {
    type Error = String;

    fn try_from(raw: RawSettings) -> Result<Self, String> {
        if raw.groups.is_empty() {
            return Err("groups: name at least one group".into());
        }
        if raw.groups.len() > MAX_GROUPS {
            return Err(format!(
                "groups: at most {MAX_GROUPS} groups ({} given)",
                raw.groups.len()
            ));
        }
        let mut groups = Vec::with_capacity(raw.groups.len());
        for g in &raw.groups {
            let g = GroupRef::parse(g).map_err(|e| format!("groups: {e}"))?;
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        match (raw.kind, &raw.ldap) {
            (DirectoryKind::Ldap, None) => {
                return Err(
                    "ldap: an LDAP directory needs its server (url, base and bind_dn)".into(),
                );
            }
            (DirectoryKind::Entra, Some(_)) => {
                return Err("ldap: an Entra ID directory has no LDAP server".into());
            }
            (DirectoryKind::Ldap, Some(_)) => {
                for g in &groups {
                    crate::ldap::dn("groups", g.as_str())?;
                }
            }
            (DirectoryKind::Entra, None) => {}
        }
        if raw.kind == DirectoryKind::Ldap && raw.entra_app.is_some() {
            return Err("entra_app: an LDAP directory has no Entra ID app".into());
        }
        let every = duration("every", &raw.every)?;
        if every < MIN_EVERY {
            return Err(format!(
                "every: at least {} between syncs",
                written(MIN_EVERY)
            ));
        }
        if every > MAX_EVERY {
            return Err(format!(
                "every: at most {} between syncs",
                written(MAX_EVERY)
            ));
        }
        let grace = duration("grace", &raw.grace)?;
        if grace > MAX_GRACE {
            return Err(format!("grace: at most {}", written(MAX_GRACE)));
        }
        let department = match raw.department.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(a) => Some(crate::mapping::attribute_name("department", a)?),
        };
        Ok(DirectorySettings {
            kind: raw.kind,
            ldap: raw.ldap,
            entra_app: raw.entra_app,
            groups,
            extension: raw.extension,
            department,
            every,
            grace,
            manual: raw.manual,
            enabled: raw.enabled,
        })
    }
}

impl From<DirectorySettings> for RawSettings {
    fn from(s: DirectorySettings) -> Self {
        RawSettings {
            kind: s.kind,
            ldap: s.ldap,
            entra_app: s.entra_app,
            groups: s.groups.into_iter().map(String::from).collect(),
            extension: s.extension,
            department: s.department,
            every: written(s.every),
            grace: written(s.grace),
            manual: s.manual,
            enabled: s.enabled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<DirectorySettings, String> {
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    #[test]
    fn settings_read_with_defaults_and_write_back_the_same() {
        let s = parse(serde_json::json!({
            "kind": "entra",
            "groups": ["6a9c-1", "6a9c-1", "b2"],
            "extension": {"attribute": "businessPhones", "last_digits": 3},
            "grace": "2d",
        }))
        .expect("valid");
        assert_eq!(s.groups.len(), 2, "a repeated group counts once");
        assert_eq!(s.every, SignedDuration::from_mins(15));
        assert_eq!(s.grace, SignedDuration::from_hours(48));
        assert_eq!(s.manual, ManualUsers::Keep);
        assert!(!s.enabled, "a new directory starts with dry runs");
        let again: DirectorySettings =
            serde_json::from_value(serde_json::to_value(&s).expect("json")).expect("again");
        assert_eq!(again, s);
    }

    #[test]
    fn bad_settings_name_the_field() {
        for (json, field) in [
            (serde_json::json!({"kind": "entra", "groups": []}), "groups"),
            (
                serde_json::json!({"kind": "entra", "groups": ["a"], "every": "1m"}),
                "every",
            ),
            (
                serde_json::json!({"kind": "entra", "groups": ["a"], "every": "soon"}),
                "every",
            ),
            (
                // Far enough that adding it to now overflows a timestamp.
                serde_json::json!({"kind": "entra", "groups": ["a"], "every": "100000000h"}),
                "every",
            ),
            (
                serde_json::json!({"kind": "entra", "groups": ["a"], "grace": "-1h"}),
                "grace",
            ),
            (
                serde_json::json!({"kind": "entra", "groups": ["a"], "grace": "400d"}),
                "grace",
            ),
            (
                serde_json::json!({"kind": "entra", "groups": ["a\u{7}"]}),
                "groups",
            ),
            (
                serde_json::json!({"kind": "entra", "groups": ["a"], "department": "dep t"}),
                "department",
            ),
            (
                serde_json::json!({"kind": "entra", "groups": ["a"], "colour": "red"}),
                "colour",
            ),
            (serde_json::json!({"kind": "x500", "groups": ["a"]}), "x500"),
        ] {
            let e = parse(json.clone()).expect_err("refused");
            assert!(e.contains(field), "{json}: {e}");
        }
        let many: Vec<String> = (0..=MAX_GROUPS).map(|i| format!("g{i}")).collect();
        let e = parse(serde_json::json!({"kind": "ldap", "groups": many})).expect_err("refused");
        assert!(e.contains("at most 50"), "{e}");
    }

    #[test]
    fn an_ldap_directory_names_its_server_and_groups_by_dn() {
        let server = serde_json::json!({
            "url": "ldaps://dc1.acme.local", "base": "DC=acme,DC=local",
            "bind_dn": "kalsync@acme.local",
        });
        let s = parse(serde_json::json!({
            "kind": "ldap", "ldap": server, "groups": ["CN=Sales,OU=Groups,DC=acme,DC=local"],
        }))
        .expect("valid");
        assert_eq!(s.ldap.as_ref().map(|l| l.port()), Some(636));
        let again: DirectorySettings =
            serde_json::from_value(serde_json::to_value(&s).expect("json")).expect("again");
        assert_eq!(again, s);
        for (json, why) in [
            (
                serde_json::json!({"kind": "ldap", "groups": ["CN=a"]}),
                "needs its server",
            ),
            (
                serde_json::json!({"kind": "entra", "ldap": server, "groups": ["a"]}),
                "has no LDAP server",
            ),
            (
                serde_json::json!({"kind": "ldap", "ldap": server, "groups": ["Sales"]}),
                "not a distinguished name",
            ),
            (
                serde_json::json!({"kind": "ldap", "ldap": {"url": "ldaps://dc1", "base": "DC=a", "bind_dn": "CN=a", "password": "x"}, "groups": ["CN=a"]}),
                "password",
            ),
        ] {
            let e = parse(json.clone()).expect_err("refused");
            assert!(e.contains(why), "{json}: {e}");
        }
    }
}
