//! Who is asking: the [`Principal`] every handler starts from, authenticated by an API
//! token or a session cookie (with its CSRF token), and what its grant lets it do.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use jiff::Timestamp;
use kalsync_store::{Account, Grant};

use super::session::session_cookie;
use super::{CSRF_HEADER, secret_hash};
use crate::WebState;
use crate::error::ApiError;

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
    /// The operator at the machine's console (`kalsync users …`, `kalsync status`):
    /// whoever can run the binary with the service's settings and key is the operator.
    Console,
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
            Via::Console => true,
        }
    }

    /// Who this is for per-person limits: the account, or the API token.
    pub fn key(&self) -> String {
        match (&self.account, &self.via) {
            (Some(a), _) => format!("account:{}", a.id),
            (None, Via::Token { hash }) => format!("token:{hash}"),
            (None, Via::Session { id_hash, .. }) => format!("session:{id_hash}"),
            (None, Via::Console) => self.actor.clone(),
        }
    }

    /// The token this session's forms carry (empty for an API token, which needs none).
    pub fn csrf(&self) -> &str {
        match &self.via {
            Via::Session { csrf, .. } => csrf,
            Via::Token { .. } | Via::Console => "",
        }
    }

    /// `Forbidden` unless `sent` is this session's CSRF token (API tokens need none).
    pub fn check_csrf(&self, sent: &str) -> Result<(), ApiError> {
        match &self.via {
            Via::Token { .. } | Via::Console => Ok(()),
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
