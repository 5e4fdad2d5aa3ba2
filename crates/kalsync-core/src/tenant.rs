//! An Entra ID tenant as Kalsync keeps it: its Directory (tenant) id, a GUID in lower
//! case. Domains name tenants too, but a domain can move between tenants; only the id
//! is stored and compared.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A Directory (tenant) id: `8-4-4-4-12` hexadecimal digits, lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TenantId(String);

impl TenantId {
    /// The id in `text` (any case, surrounding space ignored), or why it is none.
    pub fn parse(text: &str) -> Result<TenantId, String> {
        let text = text.trim();
        let groups: Vec<&str> = text.split('-').collect();
        let shaped = groups.len() == 5
            && groups
                .iter()
                .zip([8, 4, 4, 4, 12])
                .all(|(g, len)| g.len() == len && g.chars().all(|c| c.is_ascii_hexdigit()));
        if shaped {
            Ok(TenantId(text.to_ascii_lowercase()))
        } else {
            Err(format!(
                "`{}` is not a Directory (tenant) ID (a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47)",
                text.chars().take(80).collect::<String>().escape_debug()
            ))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        TenantId::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_guid_is_a_tenant_id() {
        assert_eq!(
            TenantId::parse(" 72F988BF-86f1-41af-91ab-2d7cd011db47 ")
                .expect("id")
                .as_str(),
            "72f988bf-86f1-41af-91ab-2d7cd011db47"
        );
        for bad in [
            "",
            "contoso.onmicrosoft.com",
            "72f988bf86f141af91ab2d7cd011db47",
            "{72f988bf-86f1-41af-91ab-2d7cd011db47}",
            "72f988bf-86f1-41af-91ab-2d7cd011db4g",
            "72f988bf-86f1-41af-91ab-2d7cd011db47/x",
            "//attacker.example/x",
        ] {
            assert!(TenantId::parse(bad).is_err(), "{bad}");
        }
    }
}
