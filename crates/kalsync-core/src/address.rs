//! Who a user is to the outside: their e-mail address (the mailbox) and their PBX
//! extension.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An e-mail address as admins type it: trimmed, one `@`, a dotted domain, no spaces or
/// control characters, at most 254 characters. Compared case-insensitively (stored in
/// lower case), as Exchange does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses an address.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let bad = |why: &str| Err(format!("`{t}` is not an e-mail address: {why}"));
        if t.is_empty() {
            return Err("the e-mail address is empty".into());
        }
        if t.len() > 254 {
            return bad("longer than 254 characters");
        }
        if t.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"')
        }) {
            return bad("it has spaces or characters addresses cannot have");
        }
        let Some((local, domain)) = t.split_once('@') else {
            return bad("no @");
        };
        if local.is_empty() || local.len() > 64 || domain.contains('@') {
            return bad("the part before @ must be 1 to 64 characters, with one @");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2
            || labels
                .iter()
                .any(|l| l.is_empty() || l.len() > 63 || l.starts_with('-') || l.ends_with('-'))
        {
            return bad("the domain must be like example.se");
        }
        Ok(EmailAddress(t.to_lowercase()))
    }

    /// The address, lower case.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The domain.
    pub fn domain(&self) -> &str {
        self.0.split_once('@').map_or("", |(_, d)| d)
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<EmailAddress> for String {
    fn from(value: EmailAddress) -> Self {
        value.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A PBX extension or number: digits, optionally a leading `+`, 2 to 20 digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Extension(String);

impl Extension {
    /// Parses `1234` or `+46812345678` (spaces and dashes are dropped).
    pub fn parse(text: &str) -> Result<Self, String> {
        let compact: String = text
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect();
        let digits = compact.strip_prefix('+').unwrap_or(&compact);
        if (2..=20).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
            Ok(Extension(compact))
        } else {
            Err(format!(
                "`{}` is not an extension (expected 2–20 digits, optionally with a leading +)",
                text.trim()
            ))
        }
    }

    /// The extension.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Extension {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Extension> for String {
    fn from(value: Extension) -> Self {
        value.0
    }
}

impl fmt::Display for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn addresses_are_checked_and_folded() {
        assert_eq!(
            EmailAddress::parse(" Anna.Berg@Contoso.SE ").map(|a| a.to_string()),
            Ok("anna.berg@contoso.se".into())
        );
        for bad in [
            "",
            "anna",
            "anna@",
            "@contoso.se",
            "anna@contoso",
            "anna berg@contoso.se",
            "a@b@c.se",
            "anna@-x.se",
            "<anna@x.se>",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
        assert!(
            EmailAddress::parse("anna@contoso")
                .unwrap_err()
                .contains("example.se")
        );
    }

    #[test]
    fn extensions_are_digits() {
        assert_eq!(
            Extension::parse("+46 8 123 45").map(|e| e.to_string()),
            Ok("+46812345".into())
        );
        assert!(Extension::parse("12a").is_err());
        assert!(Extension::parse("1").is_err());
    }

    proptest! {
        #[test]
        fn a_parsed_address_parses_again_to_itself(local in "[a-z0-9._%+-]{1,20}", domain in "[a-z0-9]{1,10}\\.[a-z]{2,6}") {
            let a = EmailAddress::parse(&format!("{local}@{domain}")).expect("valid");
            prop_assert_eq!(EmailAddress::parse(a.as_str()).expect("again"), a);
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,300}") {
            let _ = EmailAddress::parse(&s);
            let _ = Extension::parse(&s);
        }
    }
}
