//! An Entra ID app of the directory's own: how an Exchange on-premises instance in a
//! hybrid company (or a Microsoft 365 instance that wants another app) reads Entra ID
//! groups. Its client secret is a secret the store keeps apart (sealed), never part of
//! these settings.

use serde::{Deserialize, Serialize};

/// The app that reads the directory: its tenant and client id, and, for a national
/// cloud or the simulator, Graph's and the login's addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawApp", into = "RawApp")]
pub struct EntraApp {
    tenant: String,
    client_id: String,
    graph_url: Option<url::Url>,
    login_url: Option<url::Url>,
}

impl EntraApp {
    /// The tenant (its id or a domain).
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The app's client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Graph's versioned root, when not Microsoft's global cloud.
    pub fn graph_url(&self) -> Option<&url::Url> {
        self.graph_url.as_ref()
    }

    /// The login host, when not Microsoft's global cloud.
    pub fn login_url(&self) -> Option<&url::Url> {
        self.login_url.as_ref()
    }

    /// Whether a client secret given for `self` may be used by `other` (the same app in
    /// the same tenant, signing in at the same place).
    pub fn same_app(&self, other: &EntraApp) -> bool {
        self.tenant.eq_ignore_ascii_case(&other.tenant)
            && self.client_id.eq_ignore_ascii_case(&other.client_id)
            && self.graph_url == other.graph_url
            && self.login_url == other.login_url
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    tenant: String,
    client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    graph_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    login_url: Option<String>,
}

/// A tenant or client id: letters, digits, `.` and `-`, at most 256 characters.
fn name(field: &str, text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.is_empty()
        || t.len() > 256
        || !t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
    {
        return Err(format!(
            "{field}: `{}` is not an Entra ID {}",
            t.chars().take(60).collect::<String>(),
            if field.ends_with("tenant") {
                "tenant (its id or domain)"
            } else {
                "client id"
            }
        ));
    }
    Ok(t.to_owned())
}

/// An address Graph or the login is reached at: HTTPS (plain HTTP to loopback only).
fn address(field: &str, text: Option<&str>) -> Result<Option<url::Url>, String> {
    let Some(t) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let url = url::Url::parse(t).map_err(|_| format!("{field}: not an address"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(format!("{field}: must be https://"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
        return Err(format!(
            "{field}: only an address, no user, password or query"
        ));
    }
    Ok(Some(url))
}

impl TryFrom<RawApp> for EntraApp {
    type Error = String;
    fn try_from(raw: RawApp) -> Result<Self, String> {
        Ok(EntraApp {
            tenant: name("entra_app.tenant", &raw.tenant)?,
            client_id: name("entra_app.client_id", &raw.client_id)?,
            graph_url: address("entra_app.graph_url", raw.graph_url.as_deref())?,
            login_url: address("entra_app.login_url", raw.login_url.as_deref())?,
        })
    }
}

impl From<EntraApp> for RawApp {
    fn from(a: EntraApp) -> Self {
        RawApp {
            tenant: a.tenant,
            client_id: a.client_id,
            graph_url: a.graph_url.map(String::from),
            login_url: a.login_url.map(String::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<EntraApp, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn an_app_names_its_tenant_and_client_and_is_the_same_only_there() {
        let a =
            parse(serde_json::json!({"tenant": "acme.onmicrosoft.com", "client_id": "6a9c-11"}))
                .expect("app");
        let b =
            parse(serde_json::json!({"tenant": "ACME.onmicrosoft.com", "client_id": "6a9c-11"}))
                .expect("app");
        let c = parse(serde_json::json!({
            "tenant": "acme.onmicrosoft.com", "client_id": "6a9c-11",
            "login_url": "https://login.evil.example/",
        }))
        .expect("app");
        assert!(a.same_app(&b));
        assert!(!a.same_app(&c), "another login host gets no kept secret");
        for (v, why) in [
            (
                serde_json::json!({"tenant": "", "client_id": "x"}),
                "tenant",
            ),
            (
                serde_json::json!({"tenant": "a/../b", "client_id": "x"}),
                "tenant",
            ),
            (
                serde_json::json!({"tenant": "t", "client_id": "x y"}),
                "client id",
            ),
            (
                serde_json::json!({"tenant": "t", "client_id": "x", "graph_url": "http://graph.example/"}),
                "https",
            ),
            (
                serde_json::json!({"tenant": "t", "client_id": "x", "client_secret": "s"}),
                "client_secret",
            ),
        ] {
            let e = parse(v.clone()).expect_err("refused");
            assert!(e.contains(why), "{v}: {e}");
        }
    }
}
