//! Passwords: argon2id hashing and verifying, the rules a new one must meet, and
//! signing in with e-mail and password under the rate limit.

use std::net::IpAddr;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use kalsync_store::Account;
use rand::RngCore as _;

use crate::WebState;
use crate::error::ApiError;

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
}
