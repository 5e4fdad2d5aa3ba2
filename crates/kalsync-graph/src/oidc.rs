//! Signing people in with Entra ID: OpenID Connect's authorization code flow with PKCE
//! against the operator's multi-tenant app, the `id_token` verified (RS256 signature
//! from Entra's published keys, issuer of the token's own tenant, audience, expiry,
//! nonce), and a tenant's domain resolved to its id through its OpenID metadata.
//!
//! The token's checks are jsonwebtoken's (signature, algorithm, audience); the
//! multi-tenant issuer (`…/{tid}/v2.0`, which depends on the token's own `tid`) and the
//! times (against the caller's `now`, so that tests need not follow the clock) are
//! checked here. The flow itself is three requests; a general OAuth client would add
//! little to them.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use kalsync_core::TenantId;
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

/// What is asked of Entra ID: who the person is, nothing of their data.
pub const SCOPE: &str = "openid profile email";
/// Clocks may differ this much between Entra ID and us.
pub const LEEWAY: jiff::SignedDuration = jiff::SignedDuration::from_mins(2);
/// Published keys are fetched again after this long.
const KEYS_FOR: Duration = Duration::from_secs(24 * 3600);
/// A token signed with a key we do not know fetches the keys again, at most this often
/// (keys roll over; a stream of forged `kid`s must not become a stream of fetches).
const REFETCH_AFTER: Duration = Duration::from_secs(60);
/// The most an answer of Entra ID may weigh.
const MAX_ANSWER: usize = 256 * 1024;

/// Why nobody is signed in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    /// Entra ID said no (the person cancelled, the app is not allowed in the tenant…).
    #[error("Entra ID refused the sign-in: {code}: {description}")]
    Refused {
        /// `error`.
        code: String,
        /// The first line of `error_description`.
        description: String,
    },
    /// The `id_token` is not one to trust.
    #[error("the sign-in token is not valid: {0}")]
    BadToken(String),
    /// Entra ID could not be reached, or answered nonsense.
    #[error("cannot reach Entra ID: {0}")]
    Unreachable(String),
    /// A tenant's domain is not known to Entra ID.
    #[error("no tenant is known by `{0}`")]
    UnknownTenant(String),
}

/// Proof Key for Code Exchange: the verifier stays here, its challenge goes to Entra
/// ID, so a code caught on the way back is worth nothing to anyone else (RFC 7636).
#[derive(Clone)]
pub struct Pkce {
    verifier: SecretString,
    /// `BASE64URL(SHA256(verifier))`, sent with the authorization request.
    pub challenge: String,
}

impl Pkce {
    /// A fresh verifier (32 random bytes, 43 characters) and its S256 challenge.
    pub fn new() -> Pkce {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let verifier = URL_SAFE_NO_PAD.encode(bytes);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier: verifier.into(),
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Pkce::new()
    }
}

/// Who signed in, as the verified `id_token` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// `tid`: the person's tenant.
    pub tenant: TenantId,
    /// `oid`: the person's object id in it (stable, unlike names and e-mails).
    pub object: String,
    /// `name`.
    pub name: Option<String>,
    /// `preferred_username` (usually the UPN, in one of the tenant's domains): shown
    /// and used to name a new account, never to find one (it can be changed). The
    /// unverified `email` claim is not read.
    pub username: Option<String>,
    /// `roles`: the app roles assigned to the person in their tenant.
    pub roles: Vec<String>,
    /// `groups`: the ids of the person's groups, when the app asks for them.
    pub groups: Vec<String>,
}

#[derive(Deserialize)]
struct Claims {
    // `aud` is checked by jsonwebtoken.
    iss: String,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    tid: Option<String>,
    #[serde(default)]
    oid: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    id_token: String,
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
}

/// The published signing keys, and when they were fetched.
struct Keys {
    set: JwkSet,
    fetched: Instant,
}

/// The operator's multi-tenant app as people sign in with it. One per service: it keeps
/// Entra ID's signing keys.
#[derive(Clone)]
pub struct EntraSignIn {
    http: reqwest::Client,
    login: Url,
    client_id: String,
    client_secret: SecretString,
    keys: Arc<Mutex<Option<Keys>>>,
}

impl std::fmt::Debug for EntraSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntraSignIn")
            .field("login", &self.login.as_str())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// An endpoint under the login host, built segment by segment (no text of anyone's
/// can move it to another host or path).
fn endpoint(login: &Url, segments: &[&str]) -> Result<Url, SignInError> {
    let mut url = login.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| SignInError::Unreachable("the login address cannot take a path".into()))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// Whether `a` and `b` are equal, in constant time.
fn same(a: &str, b: &str) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()))
}

impl EntraSignIn {
    /// The app `client_id` at `login` (e.g. `https://login.microsoftonline.com/`),
    /// talking through `http` (the service's outbound client).
    pub fn new(
        http: reqwest::Client,
        login: Url,
        client_id: &str,
        client_secret: SecretString,
    ) -> EntraSignIn {
        EntraSignIn {
            http,
            login,
            client_id: client_id.to_owned(),
            client_secret,
            keys: Arc::default(),
        }
    }

    /// The app's id (the `aud` of its tokens).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Where the browser goes to sign in: any work account (`organizations`), with this
    /// `state`, `nonce` and PKCE challenge; the answer comes back to `redirect_uri`.
    pub fn authorize_url(
        &self,
        redirect_uri: &Url,
        state: &str,
        nonce: &str,
        pkce: &Pkce,
    ) -> Result<Url, SignInError> {
        self.authorize(redirect_uri, state, nonce, pkce, SCOPE, "select_account")
    }

    /// Where an admin signs in *and* grants the app its own permissions (`app_scope`,
    /// e.g. `https://graph.microsoft.com/.default`) for their organisation, in one
    /// round trip: the code that comes back is redeemed like a sign-in's, so the
    /// answer proves who consented and in which tenant — nothing in it is taken from
    /// the browser's word. Someone who is not an admin is refused by Entra ID until an
    /// admin has consented.
    pub fn consent_url(
        &self,
        redirect_uri: &Url,
        state: &str,
        nonce: &str,
        pkce: &Pkce,
        app_scope: &str,
    ) -> Result<Url, SignInError> {
        self.authorize(
            redirect_uri,
            state,
            nonce,
            pkce,
            &format!("{SCOPE} {app_scope}"),
            "consent",
        )
    }

    fn authorize(
        &self,
        redirect_uri: &Url,
        state: &str,
        nonce: &str,
        pkce: &Pkce,
        scope: &str,
        prompt: &str,
    ) -> Result<Url, SignInError> {
        let mut url = endpoint(
            &self.login,
            &["organizations", "oauth2", "v2.0", "authorize"],
        )?;
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect_uri.as_str())
            .append_pair("response_mode", "query")
            .append_pair("scope", scope)
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("prompt", prompt);
        Ok(url)
    }

    /// Trades the `code` of the answer for the person's verified identity.
    pub async fn redeem(
        &self,
        code: &str,
        redirect_uri: &Url,
        pkce: &Pkce,
        nonce: &str,
        now: Timestamp,
    ) -> Result<Person, SignInError> {
        let url = endpoint(&self.login, &["organizations", "oauth2", "v2.0", "token"])?;
        let form = [
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", pkce.verifier.expose_secret()),
            ("scope", SCOPE),
        ];
        let response = self
            .http
            .post(url)
            .form(&form)
            .send()
            .await
            .map_err(|e| SignInError::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        let body = read_limited(response).await?;
        if !status.is_success() {
            return Err(match crate::auth::classify_token_error(&body) {
                crate::TokenError::Unreachable(why) => {
                    SignInError::Unreachable(format!("HTTP {}: {why}", status.as_u16()))
                }
                refused => SignInError::Refused {
                    code: status.as_u16().to_string(),
                    description: refused.to_string(),
                },
            });
        }
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|_| {
            SignInError::Unreachable("the token endpoint's answer has no id_token".into())
        })?;
        self.verify(&answer.id_token, nonce, now).await
    }

    /// Verifies an `id_token`: signed (RS256) with one of Entra ID's published keys,
    /// for this app, by the issuer of the token's own tenant, current at `now`, and
    /// carrying `nonce`.
    pub async fn verify(
        &self,
        id_token: &str,
        nonce: &str,
        now: Timestamp,
    ) -> Result<Person, SignInError> {
        let bad = |why: &str| SignInError::BadToken(why.to_owned());
        let header = jsonwebtoken::decode_header(id_token).map_err(|_| bad("not a JWT"))?;
        if header.alg != Algorithm::RS256 {
            return Err(bad("not signed with RS256"));
        }
        let kid = header.kid.ok_or_else(|| bad("it names no signing key"))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[&self.client_id]);
        // Times are checked below against `now`; the issuer depends on `tid`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims = HashSet::from(["exp".into(), "aud".into()]);
        let claims = jsonwebtoken::decode::<Claims>(id_token, &key, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::InvalidSignature => bad("the signature does not match"),
                    ErrorKind::InvalidAudience => bad("it is meant for another app"),
                    ErrorKind::MissingRequiredClaim(c) => {
                        SignInError::BadToken(format!("it has no `{c}`"))
                    }
                    _ => SignInError::BadToken(format!("it cannot be read ({e})")),
                }
            })?
            .claims;
        let tenant = claims
            .tid
            .as_deref()
            .ok_or_else(|| bad("it names no tenant (tid)"))
            .and_then(|t| TenantId::parse(t).map_err(|_| bad("its tid is not a tenant id")))?;
        let issuer = endpoint(&self.login, &[tenant.as_str(), "v2.0"])?;
        if claims.iss.trim_end_matches('/') != issuer.as_str().trim_end_matches('/') {
            return Err(bad("it was not issued by its own tenant"));
        }
        let leeway = LEEWAY.as_secs();
        let now = now.as_second();
        if now > claims.exp.saturating_add(leeway) {
            return Err(bad("it has expired"));
        }
        if claims
            .nbf
            .is_some_and(|nbf| now < nbf.saturating_sub(leeway))
            || claims
                .iat
                .is_some_and(|iat| now < iat.saturating_sub(leeway))
        {
            return Err(bad("it is not valid yet"));
        }
        if !claims.nonce.as_deref().is_some_and(|n| same(n, nonce)) {
            return Err(bad("it does not answer this sign-in (nonce)"));
        }
        let object = claims
            .oid
            .filter(|o| !o.trim().is_empty() && o.len() <= 64)
            .ok_or_else(|| bad("it names nobody (oid)"))?;
        Ok(Person {
            tenant,
            object: object.to_ascii_lowercase(),
            name: claims.name,
            username: claims.preferred_username,
            roles: claims.roles,
            groups: claims.groups,
        })
    }

    /// The key `kid` from Entra ID's published keys (fetched again when it is unknown,
    /// at most once a minute).
    async fn key(&self, kid: &str) -> Result<DecodingKey, SignInError> {
        let mut keys = self.keys.lock().await;
        let stale = keys.as_ref().is_none_or(|k| {
            k.fetched.elapsed() > KEYS_FOR
                || (k.set.find(kid).is_none() && k.fetched.elapsed() > REFETCH_AFTER)
        });
        if stale {
            let url = endpoint(&self.login, &["organizations", "discovery", "v2.0", "keys"])?;
            let set = self.get_json::<JwkSet>(url).await?;
            *keys = Some(Keys {
                set,
                fetched: Instant::now(),
            });
        }
        let jwk = keys.as_ref().and_then(|k| k.set.find(kid)).ok_or_else(|| {
            SignInError::BadToken("it is signed with a key Entra ID does not publish".into())
        })?;
        DecodingKey::from_jwk(jwk)
            .map_err(|_| SignInError::Unreachable("a published key cannot be used".into()))
    }

    /// The id of the tenant `name` (an id, or one of the tenant's domains).
    pub async fn tenant_id(&self, name: &str) -> Result<TenantId, SignInError> {
        tenant_id(&self.http, &self.login, name).await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: Url) -> Result<T, SignInError> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| SignInError::Unreachable(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(SignInError::Unreachable(format!(
                "HTTP {}",
                response.status().as_u16()
            )));
        }
        let body = read_limited(response).await?;
        serde_json::from_slice(&body)
            .map_err(|_| SignInError::Unreachable("an answer cannot be read".into()))
    }
}

/// The id of the tenant `name` (an id, or one of the tenant's domains) at the login
/// host `login`, from the tenant's OpenID metadata: its issuer names it.
pub async fn tenant_id(
    http: &reqwest::Client,
    login: &Url,
    name: &str,
) -> Result<TenantId, SignInError> {
    if let Ok(id) = TenantId::parse(name) {
        return Ok(id);
    }
    let name = name.trim().to_ascii_lowercase();
    let plausible = !name.is_empty()
        && name.len() <= 253
        && name.contains('.')
        && name
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if !plausible {
        return Err(SignInError::UnknownTenant(
            name.chars()
                .take(80)
                .collect::<String>()
                .escape_debug()
                .to_string(),
        ));
    }
    let url = endpoint(
        login,
        &[&name, "v2.0", ".well-known", "openid-configuration"],
    )?;
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| SignInError::Unreachable(e.without_url().to_string()))?;
    if response.status().is_client_error() {
        return Err(SignInError::UnknownTenant(name));
    }
    if !response.status().is_success() {
        return Err(SignInError::Unreachable(format!(
            "HTTP {} for the tenant's metadata",
            response.status().as_u16()
        )));
    }
    let body = read_limited(response).await?;
    let metadata: Metadata = serde_json::from_slice(&body)
        .map_err(|_| SignInError::Unreachable("the tenant's metadata cannot be read".into()))?;
    // `{login}/{tenant id}/v2.0`: the issuer of the tenant's tokens.
    let issuer = Url::parse(&metadata.issuer)
        .map_err(|_| SignInError::Unreachable("the tenant's issuer is no URL".into()))?;
    let id = issuer
        .path_segments()
        .and_then(|mut s| {
            let segments: Vec<&str> = s.by_ref().filter(|x| !x.is_empty()).collect();
            segments.iter().rev().nth(1).map(|t| (*t).to_owned())
        })
        .and_then(|t| TenantId::parse(&t).ok())
        .ok_or_else(|| SignInError::Unreachable("the tenant's issuer names no id".into()))?;
    let expected = endpoint(login, &[id.as_str(), "v2.0"])?;
    if issuer.as_str().trim_end_matches('/') != expected.as_str().trim_end_matches('/') {
        return Err(SignInError::Unreachable(
            "the tenant's issuer is not on the login host".into(),
        ));
    }
    Ok(id)
}

/// A response's body, at most [`MAX_ANSWER`] bytes.
async fn read_limited(response: reqwest::Response) -> Result<Vec<u8>, SignInError> {
    crate::client::read_capped(response, MAX_ANSWER)
        .await
        .map_err(|e| SignInError::Unreachable(e.to_string()))
}

/// What came back to the redirect address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A code to redeem.
    Code(String),
    /// Entra ID said no.
    Refused {
        /// `error`.
        error: String,
        /// The first line of `error_description`.
        description: String,
    },
}

/// Reads the query Entra ID sent the browser back with: its `state`, and a code or why
/// there is none. `None` when it is neither.
pub fn parse_answer(query: &str) -> Option<(String, Answer)> {
    let mut state = None;
    let mut code = None;
    let mut error = None;
    let mut description = String::new();
    for (k, v) in url::form_urlencoded::parse(query.trim_start_matches('?').as_bytes()) {
        match &*k {
            "state" => state = Some(v.into_owned()),
            "code" => code = Some(v.into_owned()),
            "error" => error = Some(v.into_owned()),
            "error_description" => {
                description = v
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect();
            }
            _ => {}
        }
    }
    let state = state.filter(|s| !s.is_empty())?;
    match (code, error) {
        (_, Some(error)) => Some((state, Answer::Refused { error, description })),
        (Some(code), None) if !code.is_empty() && code.len() <= 4096 => {
            Some((state, Answer::Code(code)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_the_verifiers_s256() {
        let pkce = Pkce::new();
        let verifier = pkce.verifier.expose_secret().to_owned();
        assert_eq!(verifier.len(), 43);
        assert_eq!(
            pkce.challenge,
            URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
        );
        assert_ne!(Pkce::new().challenge, pkce.challenge);
    }

    #[test]
    fn no_tenant_text_moves_an_endpoint() {
        let login = Url::parse("https://login.microsoftonline.com/").expect("url");
        for evil in [
            "//attacker.example/x",
            "../../x",
            "a?b=c",
            "https://x.example/",
        ] {
            let url = endpoint(&login, &[evil, "v2.0"]).expect("url");
            assert_eq!(url.host_str(), Some("login.microsoftonline.com"), "{evil}");
            assert_eq!(url.query(), None, "{evil}");
            assert_eq!(url.path_segments().map(Iterator::count), Some(2), "{evil}");
        }
    }

    #[test]
    fn an_answer_is_a_code_or_a_refusal_with_its_state() {
        assert_eq!(
            parse_answer("code=abc&state=s1&session_state=x"),
            Some(("s1".into(), Answer::Code("abc".into())))
        );
        assert_eq!(
            parse_answer("error=access_denied&error_description=AADSTS65004%3A+No%0Amore&state=s"),
            Some((
                "s".into(),
                Answer::Refused {
                    error: "access_denied".into(),
                    description: "AADSTS65004: No".into()
                }
            ))
        );
        assert_eq!(parse_answer("code=abc"), None);
        assert_eq!(parse_answer("state=s"), None);
    }
}
