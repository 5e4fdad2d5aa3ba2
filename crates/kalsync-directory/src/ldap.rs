//! Where an LDAP directory (Active Directory, OpenLDAP) is reached: its address (always
//! over TLS — LDAPS, or StartTLS on `ldap://`), where people are searched, the account
//! that signs in and the company's own CA. The account's password is a secret the store
//! keeps apart (sealed), never part of these settings.

use serde::{Deserialize, Serialize};

/// The longest distinguished name accepted.
const MAX_DN: usize = 1024;
/// The largest CA bundle accepted (PEM).
pub const MAX_CA_PEM: usize = 64 * 1024;

/// An LDAP server: parsed once; a value is valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawLdap", into = "RawLdap")]
pub struct LdapServer {
    url: url::Url,
    base: String,
    bind_dn: String,
    ca: Option<String>,
}

impl LdapServer {
    /// Parses the address (`ldaps://dc1.acme.local` or `ldap://dc1.acme.local:389`,
    /// which uses StartTLS), the search base, the sign-in account (a DN or, for Active
    /// Directory, `user@domain`) and the CA certificates (PEM; none: the system's).
    pub fn parse(url: &str, base: &str, bind_dn: &str, ca: Option<&str>) -> Result<Self, String> {
        let text = url.trim();
        // What was typed is said back only when it cannot hold a password.
        let said = if text.contains('@') || text.len() > 200 {
            "the address".to_owned()
        } else {
            format!("`{text}`")
        };
        let text = &said;
        let parsed = url::Url::parse(url.trim()).map_err(|_| {
            format!("ldap.url: {text} is not an address like ldaps://dc1.acme.local")
        })?;
        if !matches!(parsed.scheme(), "ldaps" | "ldap") {
            return Err(format!(
                "ldap.url: {text} must start with ldaps:// (or ldap://, which uses StartTLS)"
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(format!("ldap.url: {text} names no server"));
        }
        if !parsed.username().is_empty()
            || parsed.password().is_some()
            || !matches!(parsed.path(), "" | "/")
            || parsed.query().is_some()
            || parsed.fragment().is_some()
        {
            return Err(format!(
                "ldap.url: {text} must be only a server and port (the search base and the account are fields of their own)"
            ));
        }
        let base = dn("ldap.base", base)?;
        let bind_dn = bind_name(bind_dn)?;
        let ca = match ca.map(str::trim) {
            None | Some("") => None,
            Some(pem) if pem.len() > MAX_CA_PEM => {
                return Err(format!(
                    "ldap.ca: at most {} KiB of certificates",
                    MAX_CA_PEM / 1024
                ));
            }
            Some(pem) if !pem.contains("-----BEGIN CERTIFICATE-----") => {
                return Err(
                    "ldap.ca: not a PEM certificate (-----BEGIN CERTIFICATE----- …)".into(),
                );
            }
            Some(pem) => Some(pem.to_owned()),
        };
        Ok(LdapServer {
            url: parsed,
            base,
            bind_dn,
            ca,
        })
    }

    /// The address as given.
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// The server's host name or address.
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    /// The port (636 for LDAPS, 389 for StartTLS, unless named).
    pub fn port(&self) -> u16 {
        self.url
            .port()
            .unwrap_or(if self.starttls() { 389 } else { 636 })
    }

    /// Whether TLS begins with StartTLS on a plain connection (`ldap://`) rather than at
    /// once (`ldaps://`). There is no unencrypted mode.
    pub fn starttls(&self) -> bool {
        self.url.scheme() == "ldap"
    }

    /// Where people and groups are searched (the whole subtree).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The account that signs in.
    pub fn bind_dn(&self) -> &str {
        &self.bind_dn
    }

    /// The company's CA certificates (PEM), when the server's certificate is not signed by
    /// a public CA.
    pub fn ca(&self) -> Option<&str> {
        self.ca.as_deref()
    }

    /// Whether signing in to `other` is signing in to the same server, trusted the same
    /// way, as the same account (a kept password may be used there; otherwise it must be
    /// given again — a new CA could vouch for another server).
    pub fn same_account(&self, other: &LdapServer) -> bool {
        self.host().eq_ignore_ascii_case(other.host())
            && self.port() == other.port()
            && self.bind_dn == other.bind_dn
            && self.ca == other.ca
    }
}

/// A distinguished name: `attribute=value` parts, at most [`MAX_DN`] characters.
pub(crate) fn dn(field: &str, text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.is_empty() || !t.contains('=') || t.len() > MAX_DN || t.chars().any(char::is_control) {
        return Err(format!(
            "{field}: `{}` is not a distinguished name (like OU=Staff,DC=acme,DC=local)",
            t.chars().take(60).collect::<String>()
        ));
    }
    Ok(t.to_owned())
}

/// A sign-in name: a DN, or `user@domain` (Active Directory's user principal name).
fn bind_name(text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.contains('@') && !t.contains('=') {
        if t.len() > 256 || t.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!("ldap.bind_dn: `{t}` is not a sign-in name"));
        }
        return Ok(t.to_owned());
    }
    dn("ldap.bind_dn", t)
}

/// The server as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLdap {
    url: String,
    base: String,
    bind_dn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ca: Option<String>,
}

impl TryFrom<RawLdap> for LdapServer {
    type Error = String;
    fn try_from(raw: RawLdap) -> Result<Self, String> {
        LdapServer::parse(&raw.url, &raw.base, &raw.bind_dn, raw.ca.as_deref())
    }
}

impl From<LdapServer> for RawLdap {
    fn from(s: LdapServer) -> Self {
        RawLdap {
            url: s.url.to_string(),
            base: s.base,
            bind_dn: s.bind_dn,
            ca: s.ca,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_is_reached_over_tls_only() {
        let s = LdapServer::parse(
            "ldaps://dc1.acme.local",
            "DC=acme,DC=local",
            "CN=kalsync,OU=Service,DC=acme,DC=local",
            None,
        )
        .expect("valid");
        assert_eq!(
            (s.host(), s.port(), s.starttls()),
            ("dc1.acme.local", 636, false)
        );
        let s = LdapServer::parse(
            "ldap://dc1.acme.local",
            "DC=acme",
            "kalsync@acme.local",
            None,
        )
        .expect("valid");
        assert_eq!((s.port(), s.starttls()), (389, true));
        for (url, why) in [
            ("http://dc1", "ldaps://"),
            ("ldaps://", "names no server"),
            ("dc1.acme.local", "not an address"),
            ("ldaps://u:p@dc1", "only a server"),
            ("ldaps://admin:S3cret@dc1", "the address must"),
            ("ldaps://dc1/DC=acme", "only a server"),
            ("ldapi:///run/slapd", "ldaps://"),
        ] {
            let e = LdapServer::parse(url, "DC=acme", "CN=a", None).expect_err(url);
            assert!(e.contains(why), "{url}: {e}");
        }
        for (base, bind, ca, field) in [
            ("acme", "CN=a", None, "ldap.base"),
            ("DC=acme", "kalsync", None, "ldap.bind_dn"),
            ("DC=acme", "CN=a", Some("not pem"), "ldap.ca"),
        ] {
            let e = LdapServer::parse("ldaps://dc1", base, bind, ca).expect_err(field);
            assert!(e.starts_with(field), "{e}");
        }
    }

    #[test]
    fn the_same_account_is_the_same_server_and_name() {
        let a = LdapServer::parse("ldaps://DC1.acme.local", "DC=acme", "CN=a", None).expect("a");
        let b = LdapServer::parse("ldaps://dc1.acme.local:636", "OU=x,DC=acme", "CN=a", None)
            .expect("b");
        let c = LdapServer::parse("ldaps://evil.example", "DC=acme", "CN=a", None).expect("c");
        assert!(a.same_account(&b));
        assert!(!a.same_account(&c));
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        let d =
            LdapServer::parse("ldaps://dc1.acme.local", "DC=acme", "CN=a", Some(pem)).expect("d");
        assert!(
            !a.same_account(&d),
            "another CA could vouch for another server"
        );
    }
}
