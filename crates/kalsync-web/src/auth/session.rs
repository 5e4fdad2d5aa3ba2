//! Browser sessions: the `HttpOnly` `SameSite=Strict` cookie that carries one,
//! starting and ending it, and the CSRF token's header.

use axum::http::header;
use axum::http::request::Parts;
use axum_extra::extract::cookie::{Cookie, SameSite};
use jiff::{SignedDuration, Timestamp};
use kalsync_store::{Account, Session};

use super::{random_secret, secret_hash};
use crate::WebState;
use crate::error::ApiError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "kalsync_session";
/// The header a session's state-changing requests carry the CSRF token in (forms
/// carry it as the `csrf` field).
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts.
pub const SESSION_LIFETIME: SignedDuration = SignedDuration::from_hours(12);

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

/// The session cookie's value, if the request has one.
pub(crate) fn session_cookie(parts: &Parts) -> Option<String> {
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
