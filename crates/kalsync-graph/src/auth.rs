//! OAuth 2.0 client credentials against Entra ID (client secret or certificate) and the
//! token cache.
//!
//! Written here rather than with a general OAuth crate: the flow is one form POST, and
//! what matters is Entra's `AADSTS…` codes turned into what an admin must fix, and a
//! certificate assertion with the `x5t#S256` header Entra requires.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use url::Url;

/// How the app proves who it is.
#[derive(Clone)]
pub enum ClientAuth {
    /// A client secret (*Client secret value*).
    Secret(SecretString),
    /// A certificate uploaded to the app registration, and its private key (PEM).
    Certificate {
        /// The certificate, PEM.
        certificate_pem: String,
        /// The RSA private key, PEM.
        private_key_pem: SecretString,
    },
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientAuth::Secret(_) => f.write_str("Secret(…)"),
            ClientAuth::Certificate { .. } => f.write_str("Certificate(…)"),
        }
    }
}

/// An app registration in one tenant.
#[derive(Debug, Clone)]
pub struct AppCredentials {
    /// Directory (tenant) id or a verified domain.
    pub tenant: String,
    /// Application (client) id.
    pub client_id: String,
    /// Secret or certificate.
    pub auth: ClientAuth,
}

/// Why no token could be had, worded for the admin who must fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// AADSTS65001 / 7000229: no admin consent.
    #[error(
        "consent not granted: an administrator must grant admin consent for Calendars.Read ({0})"
    )]
    ConsentNotGranted(String),
    /// AADSTS7000215: the secret is wrong.
    #[error(
        "the client secret is wrong: copy the secret's Value (not its ID) from Certificates & secrets ({0})"
    )]
    InvalidSecret(String),
    /// AADSTS7000222: the secret expired.
    #[error("the client secret has expired: create a new one under Certificates & secrets ({0})")]
    SecretExpired(String),
    /// AADSTS90002 / 900023 / 90013: no such tenant.
    #[error("wrong tenant: check the Directory (tenant) ID ({0})")]
    WrongTenant(String),
    /// AADSTS700016: no such app in that tenant.
    #[error(
        "the application was not found in this tenant: check the Application (client) ID, or grant consent ({0})"
    )]
    AppNotFound(String),
    /// AADSTS700027 / 700024 / 50027: the certificate assertion was refused.
    #[error(
        "the certificate was refused: upload it to the app registration and check the key ({0})"
    )]
    InvalidCertificate(String),
    /// AADSTS70011: bad scope (a wrong Graph endpoint).
    #[error("invalid scope: check the Graph endpoint ({0})")]
    InvalidScope(String),
    /// Any other refusal.
    #[error("Entra ID refused the token request: {code}: {description}")]
    Refused {
        /// `error`.
        code: String,
        /// First line of `error_description`.
        description: String,
    },
    /// The certificate or key could not be used.
    #[error("cannot use the certificate: {0}")]
    BadCertificate(String),
    /// The login endpoint could not be reached, or answered nonsense.
    #[error("cannot get a token from Entra ID: {0}")]
    Unreachable(String),
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TokenErrorBody {
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u64>,
}

/// Maps an Entra error response to what the admin must do.
pub fn classify_token_error(body: &[u8]) -> TokenError {
    let Ok(e) = serde_json::from_slice::<TokenErrorBody>(body) else {
        return TokenError::Unreachable(
            "the token endpoint answered with something that is not an OAuth error".into(),
        );
    };
    let first_line = e
        .error_description
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let code = e.error_codes.first().copied().or_else(|| {
        first_line
            .strip_prefix("AADSTS")
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
    });
    match code {
        Some(65001 | 7000229 | 500011) => TokenError::ConsentNotGranted(first_line),
        Some(7000215) => TokenError::InvalidSecret(first_line),
        Some(7000222) => TokenError::SecretExpired(first_line),
        Some(90002 | 900023 | 90013) => TokenError::WrongTenant(first_line),
        Some(700016) => TokenError::AppNotFound(first_line),
        Some(700027 | 700024 | 50027 | 700023) => TokenError::InvalidCertificate(first_line),
        Some(70011) => TokenError::InvalidScope(first_line),
        _ => TokenError::Refused {
            code: e.error,
            description: first_line,
        },
    }
}

/// A failed token request: worth another try, or not.
enum FetchError {
    Transient(TokenError),
    Final(TokenError),
}

use FetchError::{Final, Transient};

struct Cached {
    token: SecretString,
    refresh_after: Timestamp,
}

/// Fetches and caches app-only tokens; refreshes five minutes before expiry. One
/// refresh at a time: callers waiting meanwhile get the fresh token.
#[derive(Clone)]
pub struct TokenSource {
    http: reqwest::Client,
    token_url: Url,
    scope: String,
    credentials: Arc<AppCredentials>,
    cached: Arc<Mutex<Option<Cached>>>,
}

/// The token endpoint of `tenant` at `login_base`, built segment by segment: the tenant
/// is one path segment, so no text in it (`//host`, `../`, `?`, an absolute URL) can
/// move the request, and the secret with it, to another host or path. A tenant is an id
/// (a GUID) or a domain name; anything else is refused.
pub fn token_url(login_base: &Url, tenant: &str) -> Result<Url, TokenError> {
    let tenant = tenant.trim();
    let plausible = !tenant.is_empty()
        && tenant.len() <= 253
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !tenant.starts_with('.')
        && !tenant.contains("..");
    if !plausible {
        return Err(TokenError::WrongTenant(format!(
            "`{}` is neither a tenant id nor a domain name",
            tenant.escape_debug()
        )));
    }
    let mut url = login_base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| TokenError::WrongTenant("the login address cannot take a path".into()))?
        .pop_if_empty()
        .extend([tenant, "oauth2", "v2.0", "token"]);
    Ok(url)
}

/// Tokens are renewed this long before they expire.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

impl TokenSource {
    /// A source for `credentials` against `login_base` (e.g.
    /// `https://login.microsoftonline.com/`), asking for `scope`.
    pub fn new(
        http: reqwest::Client,
        login_base: &Url,
        scope: &str,
        credentials: AppCredentials,
    ) -> Result<Self, TokenError> {
        let token_url = token_url(login_base, &credentials.tenant)?;
        Ok(TokenSource {
            http,
            token_url,
            scope: scope.to_owned(),
            credentials: Arc::new(credentials),
            cached: Arc::new(Mutex::new(None)),
        })
    }

    /// A valid token, from the cache when it has one.
    pub async fn token(&self) -> Result<SecretString, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            if Timestamp::now() < c.refresh_after {
                return Ok(c.token.clone());
            }
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Forgets the cached token (Graph refused it).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    /// Fetches a token, trying again on a network failure or a 429/5xx (Entra throttles
    /// too) up to three times.
    async fn fetch(&self) -> Result<Cached, TokenError> {
        let mut attempt = 0u32;
        loop {
            match self.fetch_once().await {
                Err(Transient(e)) if attempt < 3 => {
                    tracing::debug!(error = %e, "token request failed, retrying");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(250u64 << attempt)).await;
                }
                Err(Transient(e) | Final(e)) => return Err(e),
                Ok(c) => return Ok(c),
            }
        }
    }

    async fn fetch_once(&self) -> Result<Cached, FetchError> {
        let c = &self.credentials;
        let mut form: Vec<(&str, String)> = vec![
            ("client_id", c.client_id.clone()),
            ("scope", self.scope.clone()),
            ("grant_type", "client_credentials".into()),
        ];
        match &c.auth {
            ClientAuth::Secret(secret) => {
                form.push(("client_secret", secret.expose_secret().to_owned()))
            }
            ClientAuth::Certificate {
                certificate_pem,
                private_key_pem,
            } => {
                let assertion = client_assertion(
                    &c.client_id,
                    self.token_url.as_str(),
                    certificate_pem,
                    private_key_pem,
                )
                .map_err(Final)?;
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push(("client_assertion", assertion));
            }
        }
        let response = self
            .http
            .post(self.token_url.clone())
            .form(&form)
            .send()
            .await
            .map_err(|e| Transient(TokenError::Unreachable(e.without_url().to_string())))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| Transient(TokenError::Unreachable(e.to_string())))?;
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(Transient(TokenError::Unreachable(format!(
                "the token endpoint answered {status}"
            ))));
        }
        if !status.is_success() {
            return Err(Final(classify_token_error(&body)));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
            Final(TokenError::Unreachable(
                "the token response is not the expected JSON".into(),
            ))
        })?;
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(3599));
        let usable = lifetime.saturating_sub(REFRESH_MARGIN).max(lifetime / 2);
        Ok(Cached {
            token: SecretString::from(parsed.access_token),
            refresh_after: Timestamp::now() + usable,
        })
    }
}

/// The JWT client assertion Entra ID takes for certificate credentials: RS256, with the
/// certificate's SHA-256 thumbprint as `x5t#S256`.
pub fn client_assertion(
    client_id: &str,
    audience: &str,
    certificate_pem: &str,
    private_key_pem: &SecretString,
) -> Result<String, TokenError> {
    let cert = pem::parse(certificate_pem)
        .map_err(|e| TokenError::BadCertificate(format!("certificate: {e}")))?;
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_key_pem.expose_secret().as_bytes())
        .map_err(|e| TokenError::BadCertificate(format!("private key: {e}")))?;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.x5t_s256 = Some(URL_SAFE_NO_PAD.encode(Sha256::digest(cert.contents())));
    let now = Timestamp::now().as_second();
    let claims = serde_json::json!({
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": now,
        "iat": now,
        "exp": now + 600,
    });
    jsonwebtoken::encode(&header, &claims, &key)
        .map_err(|e| TokenError::BadCertificate(e.to_string()))
}

/// The application permissions an app-only access token carries (its `roles`), read
/// from the token as it came from the token endpoint (over TLS, from the login host:
/// its signature is for the resource to check, not for us). `None` when the token is
/// not a JWT with a readable payload.
pub fn granted_permissions(token: &SecretString) -> Option<Vec<String>> {
    #[derive(Deserialize)]
    struct Payload {
        #[serde(default)]
        roles: Vec<String>,
    }
    let payload = token.expose_secret().split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Payload>(&bytes)
        .ok()
        .map(|p| p.roles)
}

/// The SHA-256 thumbprint Entra shows for a certificate, base64url as in `x5t#S256`.
pub fn certificate_thumbprint(certificate_pem: &str) -> Result<String, TokenError> {
    let cert =
        pem::parse(certificate_pem).map_err(|e| TokenError::BadCertificate(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(cert.contents())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_never_moves_the_token_request_to_another_host() {
        let login = Url::parse("https://login.microsoftonline.com/").expect("url");
        assert_eq!(
            token_url(&login, "acme.onmicrosoft.com")
                .expect("url")
                .as_str(),
            "https://login.microsoftonline.com/acme.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(
            token_url(&login, " 72f988bf-86f1-41af-91ab-2d7cd011db47 ")
                .expect("url")
                .as_str(),
            "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token"
        );
        let sim = Url::parse("http://127.0.0.1:9/sim").expect("url");
        assert_eq!(
            token_url(&sim, "t").expect("url").as_str(),
            "http://127.0.0.1:9/sim/t/oauth2/v2.0/token"
        );
        for hostile in [
            "//attacker.example/x",
            "https://attacker.example/",
            "t/oauth2/v2.0/token?x=",
            "../../other",
            "t#frag",
            "user@attacker.example",
            "",
            "..",
            "a\nb",
        ] {
            assert!(
                matches!(token_url(&login, hostile), Err(TokenError::WrongTenant(_))),
                "{hostile}"
            );
        }
    }

    #[test]
    fn aadsts_codes_become_what_the_admin_must_fix() {
        let body = |code: u64, text: &str| {
            serde_json::json!({"error": "invalid_client", "error_description": format!("AADSTS{code}: {text}\r\nTrace ID: x"), "error_codes": [code]})
                .to_string()
        };
        assert!(matches!(
            classify_token_error(body(7000215, "Invalid client secret provided.").as_bytes()),
            TokenError::InvalidSecret(_)
        ));
        assert!(matches!(
            classify_token_error(body(7000222, "expired").as_bytes()),
            TokenError::SecretExpired(_)
        ));
        assert!(matches!(
            classify_token_error(body(65001, "not consented").as_bytes()),
            TokenError::ConsentNotGranted(_)
        ));
        assert!(matches!(
            classify_token_error(body(90002, "Tenant not found").as_bytes()),
            TokenError::WrongTenant(_)
        ));
        assert!(matches!(
            classify_token_error(body(700016, "app not found").as_bytes()),
            TokenError::AppNotFound(_)
        ));
        let e = classify_token_error(body(7000215, "Invalid client secret provided.").as_bytes())
            .to_string();
        assert!(
            e.contains("Certificates & secrets") && !e.contains("Trace ID"),
            "{e}"
        );
        assert!(matches!(
            classify_token_error(b"<html>proxy</html>"),
            TokenError::Unreachable(_)
        ));
    }

    #[test]
    fn an_app_tokens_permissions_are_its_roles() {
        let token = |payload: &str| {
            SecretString::from(format!(
                "eyJhbGciOiJSUzI1NiJ9.{}.sig",
                URL_SAFE_NO_PAD.encode(payload)
            ))
        };
        assert_eq!(
            granted_permissions(&token(r#"{"roles":["Calendars.Read"],"tid":"x"}"#)),
            Some(vec!["Calendars.Read".to_owned()])
        );
        assert_eq!(granted_permissions(&token(r#"{"tid":"x"}"#)), Some(vec![]));
        assert_eq!(granted_permissions(&token("not json")), None);
        assert_eq!(granted_permissions(&SecretString::from("opaque")), None);
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let c = AppCredentials {
            tenant: "t".into(),
            client_id: "c".into(),
            auth: ClientAuth::Secret(SecretString::from("hunter2")),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
