//! How Kalsync reaches an Exchange server, as configuration says it: the server version
//! it is asked as, how the service account reaches a mailbox and how it signs in. Parsed
//! once, where configuration is read; the EWS client and the store share these types.

use std::fmt;

/// The `RequestServerVersion` an instance speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// Exchange 2007 SP1: no streaming notifications, no `TimeZoneContext`.
    Exchange2007Sp1,
    /// Exchange 2010.
    Exchange2010,
    /// Exchange 2010 SP1: streaming notifications.
    Exchange2010Sp1,
    /// Exchange 2010 SP2.
    Exchange2010Sp2,
    /// Exchange 2013.
    Exchange2013,
    /// Exchange 2013 SP1 — also what 2016, 2019 and Subscription Edition are asked as:
    /// Microsoft documents `Exchange2013_SP1` as the newest `RequestServerVersion` and as
    /// applying to every later server. The schema those servers ship also lists
    /// `Exchange2015`, `Exchange2016` and dated `V2015_…` values, which target Exchange
    /// Online's schema and are documented for no on-premises server; sending one would
    /// gain nothing Kalsync reads and risk a server that refuses it.
    Exchange2013Sp1,
}

impl Version {
    /// Every version, oldest first.
    pub const ALL: [Version; 6] = [
        Version::Exchange2007Sp1,
        Version::Exchange2010,
        Version::Exchange2010Sp1,
        Version::Exchange2010Sp2,
        Version::Exchange2013,
        Version::Exchange2013Sp1,
    ];

    /// The schema's name, e.g. `Exchange2010_SP1`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Exchange2007Sp1 => "Exchange2007_SP1",
            Version::Exchange2010 => "Exchange2010",
            Version::Exchange2010Sp1 => "Exchange2010_SP1",
            Version::Exchange2010Sp2 => "Exchange2010_SP2",
            Version::Exchange2013 => "Exchange2013",
            Version::Exchange2013Sp1 => "Exchange2013_SP1",
        }
    }

    /// Reads `Exchange2010_SP1`, or a product year: `2007`, `2010`, `2013`, `2016`,
    /// `2019`, `se`.
    pub fn parse(text: &str) -> Result<Version, String> {
        let t = text.trim();
        if let Some(v) = Version::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(t))
        {
            return Ok(v);
        }
        match t.to_ascii_lowercase().as_str() {
            "2007" => Ok(Version::Exchange2007Sp1),
            "2010" => Ok(Version::Exchange2010Sp2),
            "2013" | "2016" | "2019" | "se" => Ok(Version::Exchange2013Sp1),
            _ => Err(format!(
                "`{t}` is not an Exchange version (expected 2007, 2010, 2013, 2016, 2019, se or Exchange2007_SP1 … Exchange2013_SP1)"
            )),
        }
    }

    /// The product year a form offers for this version (`2016` for 2013 SP1, which 2016,
    /// 2019 and SE are asked as), when that year reads back as this very version.
    pub fn year(self) -> Option<&'static str> {
        match self {
            Version::Exchange2007Sp1 => Some("2007"),
            Version::Exchange2010Sp2 => Some("2010"),
            Version::Exchange2013Sp1 => Some("2016"),
            Version::Exchange2010 | Version::Exchange2010Sp1 | Version::Exchange2013 => None,
        }
    }

    /// Whether streaming notifications exist (2010 SP1 and later).
    pub fn has_streaming(self) -> bool {
        self >= Version::Exchange2010Sp1
    }

    /// Whether `TimeZoneContext` and `StartTimeZone` exist (2010 and later).
    pub fn has_time_zone_context(self) -> bool {
        self >= Version::Exchange2010
    }
}

/// How the service account reaches a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// `ExchangeImpersonation` (the ApplicationImpersonation role).
    Impersonation,
    /// Delegate access: the mailbox's calendar folder, with Reviewer permission or
    /// FullAccess.
    Delegate,
}

impl Access {
    /// `impersonation` or `delegate`, as configuration writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Impersonation => "impersonation",
            Access::Delegate => "delegate",
        }
    }

    /// Reads `impersonation` or `delegate`.
    pub fn parse(text: &str) -> Result<Access, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "impersonation" => Ok(Access::Impersonation),
            "delegate" => Ok(Access::Delegate),
            other => Err(format!(
                "`{other}` is not an access (expected impersonation or delegate)"
            )),
        }
    }
}

/// How the service account signs in to Exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignIn {
    /// HTTP Basic over TLS.
    Basic,
    /// NTLM (Windows integrated).
    Ntlm,
    /// OAuth client credentials from Entra ID (Exchange Online, hybrid modern auth).
    OAuth,
}

impl SignIn {
    /// `basic`, `ntlm` or `oauth`, as configuration writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SignIn::Basic => "basic",
            SignIn::Ntlm => "ntlm",
            SignIn::OAuth => "oauth",
        }
    }

    /// Reads `basic`, `ntlm` or `oauth`.
    pub fn parse(text: &str) -> Result<SignIn, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "basic" => Ok(SignIn::Basic),
            "ntlm" => Ok(SignIn::Ntlm),
            "oauth" => Ok(SignIn::OAuth),
            other => Err(format!(
                "`{other}` is not a sign-in (expected ntlm, basic or oauth)"
            )),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for SignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Each is written as its configuration name and read with its `parse`, so a wrong
/// value in a file or a form is refused with the same message.
macro_rules! serde_by_name {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                <$t>::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    )*};
}

serde_by_name!(Version, Access, SignIn);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        for v in Version::ALL {
            assert_eq!(Version::parse(v.as_str()), Ok(v));
            if let Some(year) = v.year() {
                assert_eq!(Version::parse(year), Ok(v));
            }
        }
        for a in [Access::Impersonation, Access::Delegate] {
            assert_eq!(Access::parse(a.as_str()), Ok(a));
        }
        for s in [SignIn::Basic, SignIn::Ntlm, SignIn::OAuth] {
            assert_eq!(SignIn::parse(s.as_str()), Ok(s));
        }
        assert!(Access::parse("owner").is_err_and(|e| e.contains("impersonation or delegate")));
        assert!(SignIn::parse("kerberos").is_err_and(|e| e.contains("ntlm, basic or oauth")));
    }
}
