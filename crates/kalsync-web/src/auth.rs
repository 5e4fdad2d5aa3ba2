//! Who is asking: password hashing (argon2id), sign-in with a rate limit, sessions in
//! `HttpOnly` `SameSite=Strict` cookies (only a hash of the id is stored), the CSRF
//! token every state-changing request of a session must carry, company API tokens, and
//! the [`Principal`] extractor every handler starts from.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum_extra::extract::cookie::{Cookie, SameSite};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use kalsync_store::{Account, Grant, Session};
use rand::RngCore as _;
use sha2::Digest as _;

use crate::WebState;
use crate::error::ApiError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "kalsync_session";
/// The header a session's state-changing requests carry the CSRF token in (forms
/// carry it as the `csrf` field).
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts.
pub const SESSION_LIFETIME: SignedDuration = SignedDuration::from_hours(12);
/// API tokens start with this, so a leaked one is recognisable.
pub const TOKEN_PREFIX: &str = "kst_";

/// A fresh random secret, URL-safe.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a session id or API token: SHA-256, hex. (They are random and
/// long, so a fast hash is enough; passwords get argon2.)
pub fn secret_hash(secret: &str) -> String {
    sha2::Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An argon2id hash (PHC string) of `password`, off the async threads.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&random_salt()).map_err(|e| e.to_string())?;
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(ApiError::Internal)
}

fn random_salt() -> [u8; 16] {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    salt
}

/// Whether `password` matches `hash`, off the async threads. A malformed hash never
/// matches.
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// A password an admin may choose: long enough, not all one character.
pub fn check_password(password: &str) -> Result<(), ApiError> {
    let chars = password.chars().count();
    if chars < 10 {
        return Err(ApiError::invalid(
            "password",
            "at least 10 characters, please",
        ));
    }
    if chars > 256 {
        return Err(ApiError::invalid("password", "at most 256 characters"));
    }
    let first = password.chars().next();
    if password.chars().all(|c| Some(c) == first) {
        return Err(ApiError::invalid("password", "not one character repeated"));
    }
    Ok(())
}

/// Failed sign-ins, counted per account *at* an address (five within fifteen minutes
/// pause that account from that address) and per address (fifty pause the address for
/// every account: one address guessing many accounts). An account is never paused for
/// an address that did not fail, so nobody can lock another person — the operator
/// included — out. Kept per node, in bounded memory.
#[derive(Debug, Default)]
pub struct SignInLimit {
    failures: Mutex<HashMap<LimitKey, Vec<Instant>>>,
}

/// What failures are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum LimitKey {
    /// One account from one address (or from an address nobody knows).
    AccountAt(String, Option<IpAddr>),
    /// One address, whatever account it tries.
    Address(IpAddr),
    /// A company adding accounts whose e-mail is taken (probing for who has accounts).
    Taken(kalsync_store::CompanyId),
    /// Sign-ins with Microsoft started from one address.
    Started(IpAddr),
}

/// Sign-ins with Microsoft one address may start in [`WINDOW`] (an office behind one
/// address signing in at nine included).
const STARTS_PER_ADDRESS: usize = 200;

/// E-mails found taken a company may try in [`WINDOW`] before adding accounts pauses.
const TAKEN_TRIES: usize = 5;

/// Failures of one account from one address allowed in [`WINDOW`].
const ACCOUNT_FAILURES: usize = 5;
/// Failures from one address allowed in [`WINDOW`], over all accounts.
const ADDRESS_FAILURES: usize = 50;
/// The window failures are counted in.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// The most keys kept: past it, the stalest are forgotten.
const MAX_KEYS: usize = 100_000;

impl SignInLimit {
    fn keys(ip: Option<IpAddr>, email: &str) -> Vec<(LimitKey, usize)> {
        let mut keys = vec![(
            LimitKey::AccountAt(email.trim().to_lowercase(), ip),
            ACCOUNT_FAILURES,
        )];
        if let Some(ip) = ip {
            keys.push((LimitKey::Address(ip), ADDRESS_FAILURES));
        }
        keys
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<LimitKey, Vec<Instant>>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Err(TooMany(seconds until a retry))` while the account at this address, or the
    /// address, is paused.
    pub fn check(&self, ip: Option<IpAddr>, email: &str) -> Result<(), ApiError> {
        Self::paused(&mut self.failures(), &Self::keys(ip, email), Instant::now())
    }

    fn paused(
        failures: &mut HashMap<LimitKey, Vec<Instant>>,
        keys: &[(LimitKey, usize)],
        now: Instant,
    ) -> Result<(), ApiError> {
        for (key, allowed) in keys {
            if let Some(list) = failures.get_mut(key) {
                list.retain(|t| now.duration_since(*t) < WINDOW);
                if list.len() >= *allowed {
                    let oldest = list[list.len() - allowed];
                    let wait = WINDOW.saturating_sub(now.duration_since(oldest));
                    return Err(ApiError::TooMany(wait.as_secs().max(1)));
                }
            }
        }
        Ok(())
    }

    /// Checks and counts an attempt as failed in one step, before the (slow) password
    /// check, so that many attempts at once cannot all pass the check first; the
    /// attempt's mark, for [`SignInLimit::succeeded_attempt`].
    pub fn attempt(&self, ip: Option<IpAddr>, email: &str) -> Result<Instant, ApiError> {
        let now = Instant::now();
        let keys = Self::keys(ip, email);
        let mut failures = self.failures();
        Self::paused(&mut failures, &keys, now)?;
        Self::count(&mut failures, &keys, now);
        Ok(now)
    }

    /// The attempt marked `at` succeeded: it no longer counts, and the account's
    /// failures at this address are forgotten.
    pub fn succeeded_attempt(&self, ip: Option<IpAddr>, email: &str, at: Instant) {
        let mut failures = self.failures();
        for (key, _) in Self::keys(ip, email) {
            if let Some(list) = failures.get_mut(&key)
                && let Some(i) = list.iter().position(|t| *t == at)
            {
                list.remove(i);
            }
        }
        failures.remove(&LimitKey::AccountAt(email.trim().to_lowercase(), ip));
    }

    /// Counts a failed sign-in.
    pub fn failed(&self, ip: Option<IpAddr>, email: &str) {
        Self::count(&mut self.failures(), &Self::keys(ip, email), Instant::now());
    }

    fn count(
        failures: &mut HashMap<LimitKey, Vec<Instant>>,
        keys: &[(LimitKey, usize)],
        now: Instant,
    ) {
        if failures.len() >= MAX_KEYS {
            // A spray of addresses or e-mails: forget what is over, then the stalest.
            failures.retain(|_, list| list.iter().any(|t| now.duration_since(*t) < WINDOW));
            if failures.len() >= MAX_KEYS {
                let mut last: Vec<(Instant, LimitKey)> = failures
                    .iter()
                    .map(|(k, list)| (list.last().copied().unwrap_or(now), k.clone()))
                    .collect();
                last.sort_by_key(|(t, _)| *t);
                for (_, key) in last.into_iter().take(MAX_KEYS / 10) {
                    failures.remove(&key);
                }
            }
        }
        for (key, allowed) in keys {
            let list = failures.entry(key.clone()).or_default();
            list.push(now);
            // Only the last `allowed` matter.
            if list.len() > *allowed {
                list.drain(..list.len() - allowed);
            }
        }
    }

    /// `Err(TooMany)` while `company` may not add accounts: it tried too many e-mails
    /// that were taken. E-mails are unique across the operator (they sign in), so
    /// whether one is taken cannot be hidden from whoever adds it; this keeps the
    /// answer from becoming a way to list another company's people.
    pub fn check_taken(&self, company: kalsync_store::CompanyId) -> Result<(), ApiError> {
        Self::paused(
            &mut self.failures(),
            &[(LimitKey::Taken(company), TAKEN_TRIES)],
            Instant::now(),
        )
    }

    /// Counts a sign-in with Microsoft started from `ip`; `Err(TooMany)` past
    /// [`STARTS_PER_ADDRESS`] in the window, so one address cannot crowd everyone's
    /// sign-ins under way out of memory.
    pub fn start_sign_in(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(ip) = ip else { return Ok(()) };
        let keys = [(LimitKey::Started(ip), STARTS_PER_ADDRESS)];
        let now = Instant::now();
        let mut failures = self.failures();
        Self::paused(&mut failures, &keys, now)?;
        Self::count(&mut failures, &keys, now);
        Ok(())
    }

    /// Counts an e-mail `company` tried that was taken.
    pub fn taken(&self, company: kalsync_store::CompanyId) {
        Self::count(
            &mut self.failures(),
            &[(LimitKey::Taken(company), TAKEN_TRIES)],
            Instant::now(),
        );
    }

    /// Forgets an account's failures at an address after it signed in there.
    pub fn succeeded(&self, ip: Option<IpAddr>, email: &str) {
        self.failures()
            .remove(&LimitKey::AccountAt(email.trim().to_lowercase(), ip));
    }

    /// How many keys are kept (for tests of the bound).
    pub fn keys_kept(&self) -> usize {
        self.failures().len()
    }
}

/// Streams one person (or API token) may hold open at once: a few tabs and consoles.
pub const STREAMS_PER_PERSON: usize = 8;

/// Open long-lived answers (the switchboard's streams) per person ([`Principal::key`]).
#[derive(Debug, Default)]
pub struct Streams(std::sync::Mutex<std::collections::HashMap<String, usize>>);

/// One open stream, counted until it is dropped.
pub struct OpenStream {
    streams: std::sync::Arc<Streams>,
    key: String,
}

impl Streams {
    /// Counts one more stream for `key`; `None` when it holds the most already.
    pub fn open(streams: &std::sync::Arc<Streams>, key: String) -> Option<OpenStream> {
        let mut open = streams.0.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(key.clone()).or_default();
        if *count >= STREAMS_PER_PERSON {
            return None;
        }
        *count += 1;
        Some(OpenStream {
            streams: streams.clone(),
            key,
        })
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        let mut open = self.streams.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// A hash no password matches, verified when the account is unknown so that a wrong
/// e-mail takes as long as a wrong password.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$Yk1IhCTIHWHVPYsXkd7sVBfeH2wZ7SG9MWkVmSSl7Tk";

/// Checks e-mail and password under the rate limit; the account on success.
pub async fn sign_in(
    state: &WebState,
    ip: Option<IpAddr>,
    email: &str,
    password: &str,
) -> Result<Account, ApiError> {
    let attempt = state.limit.attempt(ip, email)?;
    let account = state.store.account_by_email(email).await?;
    // An account without a password (it signs in with Microsoft) costs the same time as
    // none, so the answer's time tells nothing.
    let hash = account
        .as_ref()
        .map(|a| a.password_hash.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| DUMMY_HASH.to_owned());
    let ok = verify_password(password.to_owned(), hash).await;
    match account {
        Some(a) if ok && !a.password_hash.is_empty() => {
            state.limit.succeeded_attempt(ip, email, attempt);
            Ok(a)
        }
        _ => {
            tracing::info!(email, "a sign-in failed");
            Err(ApiError::Forbidden(
                "the e-mail or the password is wrong".into(),
            ))
        }
    }
}

/// Starts a session for `account`: the cookie to set and the session's CSRF token.
pub async fn start_session(
    state: &WebState,
    account: &Account,
) -> Result<(Cookie<'static>, String), ApiError> {
    let id = random_secret();
    let csrf = random_secret();
    state
        .store
        .create_session(&Session {
            id_hash: secret_hash(&id),
            account: account.id,
            csrf: csrf.clone(),
            expires: Timestamp::now() + SESSION_LIFETIME,
        })
        .await?;
    let cookie = Cookie::build((SESSION_COOKIE, id))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.secure_cookies)
        .path("/")
        .max_age(time_duration(SESSION_LIFETIME))
        .build();
    Ok((cookie, csrf))
}

fn time_duration(d: SignedDuration) -> time::Duration {
    time::Duration::seconds(d.as_secs())
}

/// The client's address, when the server knows it (rate limiting): the peer's, or the
/// one a trusted reverse proxy names ([`client_address`]).
#[derive(Debug, Clone, Copy)]
pub struct PeerIp(pub Option<IpAddr>);

impl FromRequestParts<WebState> for PeerIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        Ok(PeerIp(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| client_address(c.0.ip(), &parts.headers, &state.trusted_proxies)),
        ))
    }
}

/// Who sent a request: `peer` itself unless it is a trusted proxy; then, reading the
/// proxies' `Forwarded` (RFC 7239) or else `X-Forwarded-For` from the nearest hop back,
/// the first address that is not a trusted proxy. A client cannot pose as another by
/// writing the header itself: only what trusted proxies appended is believed.
pub fn client_address(
    peer: IpAddr,
    headers: &axum::http::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_owned())
            .collect()
    };
    let mut hops: Vec<Option<IpAddr>> = values("forwarded")
        .iter()
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| forwarded_for(v))
            })
        })
        .collect();
    if hops.is_empty() {
        hops = values("x-forwarded-for")
            .iter()
            .map(|v| forwarded_for(v))
            .collect();
    }
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) if is_trusted(ip) => continue,
            Some(ip) => return *ip,
            // `unknown` or an obfuscated name: nothing further back can be believed.
            None => break,
        }
    }
    peer
}

/// An address as `Forwarded: for=` or `X-Forwarded-For` write it: `192.0.2.60`,
/// `"192.0.2.60:4711"`, `"[2001:db8::17]:4711"`, `2001:db8::17`.
fn forwarded_for(value: &str) -> Option<IpAddr> {
    let v = value.trim().trim_matches('"');
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    v.parse()
        .ok()
        .or_else(|| v.rsplit_once(':')?.0.parse().ok())
}

/// The cookie that removes the session cookie.
pub fn ended_cookie(secure: bool) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, ""))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path("/")
        .max_age(time_duration(SignedDuration::ZERO))
        .build()
}

/// How a request was authenticated.
#[derive(Debug, Clone)]
pub enum Via {
    /// A browser session; its CSRF token.
    Session {
        /// The stored hash of the session id.
        id_hash: String,
        /// The token its forms carry.
        csrf: String,
    },
    /// A company API token.
    Token {
        /// The stored hash of the token.
        hash: String,
    },
}

/// Who is asking, and what they may do.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Role and company.
    pub grant: Grant,
    /// For the audit log: the account's e-mail or `token:<name>`.
    pub actor: String,
    /// The account, when signed in as one.
    pub account: Option<Account>,
    /// Session or token.
    pub via: Via,
}

impl Principal {
    /// `NotFound` unless it may see `company` — another tenant's data does not exist
    /// for it.
    pub fn sees(&self, company: kalsync_store::CompanyId, what: &str) -> Result<(), ApiError> {
        if self.grant.sees(company) {
            Ok(())
        } else {
            Err(ApiError::NotFound(what.to_owned()))
        }
    }

    /// As [`Principal::sees`], and `Forbidden` for a reader.
    pub fn manages(&self, company: kalsync_store::CompanyId, what: &str) -> Result<(), ApiError> {
        self.sees(company, what)?;
        if self.grant.manages(company) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("this role may only read".into()))
        }
    }

    /// `Forbidden` unless it is the operator.
    pub fn operator(&self) -> Result<(), ApiError> {
        if self.grant.role == kalsync_store::Role::Operator {
            Ok(())
        } else {
            Err(ApiError::Forbidden("only the operator may do this".into()))
        }
    }
}

/// The session cookie's value, if the request has one.
fn session_cookie(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| Cookie::parse(c.trim().to_owned()).ok())
        .find(|c| c.name() == SESSION_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

impl FromRequestParts<WebState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, ApiError> {
        // A session's state-changing request must carry its CSRF token: a page of
        // another site can make the browser send the cookie, never this header.
        let changes = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let sent = changes.then(|| {
            parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        });
        authenticate(parts, state, sent.as_deref()).await
    }
}

impl Principal {
    /// Whether the session or API token this principal came with still holds at `now`
    /// (not signed out, expired or revoked, its account not removed): long-lived
    /// answers such as the switchboard's stream ask again as they go.
    pub async fn still_valid(&self, state: &WebState, now: Timestamp) -> bool {
        match &self.via {
            Via::Session { id_hash, .. } => {
                matches!(state.store.session(id_hash, now).await, Ok(Some(_)))
            }
            Via::Token { hash } => {
                matches!(state.store.use_api_token(hash, now).await, Ok(Some(_)))
            }
        }
    }

    /// Who this is for per-person limits: the account, or the API token.
    pub fn key(&self) -> String {
        match (&self.account, &self.via) {
            (Some(a), _) => format!("account:{}", a.id),
            (None, Via::Token { hash }) => format!("token:{hash}"),
            (None, Via::Session { id_hash, .. }) => format!("session:{id_hash}"),
        }
    }

    /// The token this session's forms carry (empty for an API token, which needs none).
    pub fn csrf(&self) -> &str {
        match &self.via {
            Via::Session { csrf, .. } => csrf,
            Via::Token { .. } => "",
        }
    }

    /// `Forbidden` unless `sent` is this session's CSRF token (API tokens need none).
    pub fn check_csrf(&self, sent: &str) -> Result<(), ApiError> {
        match &self.via {
            Via::Token { .. } => Ok(()),
            Via::Session { csrf, .. } => {
                let same: bool =
                    subtle::ConstantTimeEq::ct_eq(sent.as_bytes(), csrf.as_bytes()).into();
                if same {
                    Ok(())
                } else {
                    Err(ApiError::Forbidden(
                        "the CSRF token is missing or wrong; reload the page".into(),
                    ))
                }
            }
        }
    }
}

/// Who sent the request: an API token or a session cookie. With `csrf`, a session must
/// have sent that token.
pub async fn authenticate(
    parts: &Parts,
    state: &WebState,
    csrf: Option<&str>,
) -> Result<Principal, ApiError> {
    {
        let now = Timestamp::now();
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if let Some(token) = bearer {
            let hash = secret_hash(token);
            let found = state.store.use_api_token(&hash, now).await?;
            let Some(found) = found else {
                return Err(ApiError::Unauthenticated);
            };
            return Ok(Principal {
                grant: found.grant,
                actor: format!("token:{}", found.name),
                account: None,
                via: Via::Token { hash },
            });
        }
        let Some(id) = session_cookie(parts) else {
            return Err(ApiError::Unauthenticated);
        };
        let id_hash = secret_hash(&id);
        let Some(session) = state.store.session(&id_hash, now).await? else {
            return Err(ApiError::Unauthenticated);
        };
        let account = match state.store.account(session.account).await {
            Ok(a) => a,
            Err(kalsync_store::StoreError::NotFound(_)) => return Err(ApiError::Unauthenticated),
            Err(e) => return Err(e.into()),
        };
        let principal = Principal {
            grant: account.grant,
            actor: account.email.clone(),
            account: Some(account),
            via: Via::Session {
                id_hash,
                csrf: session.csrf,
            },
        };
        if let Some(sent) = csrf {
            principal.check_csrf(sent)?;
        }
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_hash_and_verify_and_the_dummy_never_matches() {
        let hash = hash_password("Sommar2026!x".into()).await.expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("Sommar2026!x".into(), hash.clone()).await);
        assert!(!verify_password("sommar2026!x".into(), hash).await);
        assert!(PasswordHash::new(DUMMY_HASH).is_ok(), "a well-formed hash");
        assert!(!verify_password("".into(), DUMMY_HASH.into()).await);
        assert!(!verify_password("x".into(), "not a hash".into()).await);
    }

    #[test]
    fn weak_passwords_are_named() {
        assert!(check_password("short").is_err());
        assert!(check_password("aaaaaaaaaaaa").is_err());
        assert!(check_password("lång-lösen-2026").is_ok());
    }

    #[test]
    fn the_sixth_failure_within_the_window_is_paused() {
        let limit = SignInLimit::default();
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        for _ in 0..ACCOUNT_FAILURES {
            assert!(limit.check(ip, "a@x.example").is_ok());
            limit.failed(ip, "a@x.example");
        }
        assert!(matches!(
            limit.check(ip, "A@x.example"),
            Err(ApiError::TooMany(s)) if s > 0 && s <= 900
        ));
        // Another account at the same address is not paused (behind one proxy, that is
        // everyone); the same account from an address that did not fail is not either.
        assert!(limit.check(ip, "b@x.example").is_ok());
        assert!(
            limit
                .check(Some(IpAddr::from([10, 0, 0, 1])), "a@x.example")
                .is_ok()
        );
        limit.succeeded(ip, "a@x.example");
        assert!(limit.check(ip, "a@x.example").is_ok());
    }

    #[test]
    fn one_address_starts_a_bounded_number_of_microsoft_sign_ins() {
        let limit = SignInLimit::default();
        let ip = Some(IpAddr::from([192, 0, 2, 9]));
        for _ in 0..STARTS_PER_ADDRESS {
            limit.start_sign_in(ip).expect("under the limit");
        }
        assert!(matches!(
            limit.start_sign_in(ip),
            Err(ApiError::TooMany(s)) if s > 0 && s <= 900
        ));
        // Others start theirs, and password sign-ins from the address are not paused.
        limit
            .start_sign_in(Some(IpAddr::from([192, 0, 2, 10])))
            .expect("another address");
        assert!(limit.check(ip, "a@x.example").is_ok());
    }

    #[test]
    fn an_address_guessing_many_accounts_is_paused_for_all_of_them() {
        let limit = SignInLimit::default();
        let ip = Some(IpAddr::from([192, 0, 2, 7]));
        for i in 0..ADDRESS_FAILURES {
            limit.failed(ip, &format!("user{i}@x.example"));
        }
        assert!(limit.check(ip, "operator@x.example").is_err());
        assert!(
            limit
                .check(Some(IpAddr::from([192, 0, 2, 8])), "operator@x.example")
                .is_ok()
        );
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = axum::http::HeaderMap::new();
            for (k, v) in pairs {
                h.append(*k, v.parse().expect("value"));
            }
            h
        };
        let proxy = IpAddr::from([10, 0, 0, 2]);
        let outsider = IpAddr::from([198, 51, 100, 9]);
        let client = IpAddr::from([192, 0, 2, 60]);
        // A client writing the header itself is still itself.
        assert_eq!(
            client_address(
                outsider,
                &headers(&[("x-forwarded-for", "192.0.2.60")]),
                &trusted
            ),
            outsider
        );
        // Behind the proxy: the nearest untrusted hop, not what the client prepended.
        assert_eq!(
            client_address(
                proxy,
                &headers(&[("x-forwarded-for", "203.0.113.1, 192.0.2.60, 10.0.0.7")]),
                &trusted
            ),
            client
        );
        assert_eq!(
            client_address(
                proxy,
                &headers(&[("forwarded", "for=\"[2001:db8::17]:4711\";proto=https")]),
                &trusted
            ),
            "2001:db8::17".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(
            client_address(
                proxy,
                &headers(&[("forwarded", "for=192.0.2.60:1234")]),
                &trusted
            ),
            client
        );
        assert_eq!(
            client_address(proxy, &headers(&[("forwarded", "for=unknown")]), &trusted),
            proxy
        );
        assert_eq!(client_address(proxy, &headers(&[]), &trusted), proxy);
        assert_eq!(
            client_address(proxy, &headers(&[("x-forwarded-for", "192.0.2.60")]), &[]),
            proxy,
            "no proxy trusted: headers are ignored"
        );
    }

    #[test]
    fn a_spray_of_addresses_keeps_memory_bounded() {
        let limit = SignInLimit::default();
        for i in 0..(MAX_KEYS as u32 + 5_000) {
            limit.failed(Some(IpAddr::from(i.to_be_bytes())), "a@x.example");
        }
        assert!(limit.keys_kept() <= MAX_KEYS + 2, "{}", limit.keys_kept());
    }

    #[test]
    fn attempts_count_before_their_answer_and_a_success_does_not() {
        let limit = SignInLimit::default();
        let ip = Some(IpAddr::from([127, 0, 0, 2]));
        // Many at once, none answered yet: the sixth is already refused.
        for _ in 0..ACCOUNT_FAILURES {
            assert!(limit.attempt(ip, "c@x.example").is_ok());
        }
        assert!(limit.attempt(ip, "c@x.example").is_err());
        // Successful sign-ins never pause an address.
        let other = Some(IpAddr::from([127, 0, 0, 3]));
        for _ in 0..ACCOUNT_FAILURES * 2 {
            let at = limit.attempt(other, "d@x.example").expect("not paused");
            limit.succeeded_attempt(other, "d@x.example", at);
        }
    }
}
