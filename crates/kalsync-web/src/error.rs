//! The one mapping of errors to HTTP: every 4xx says in one JSON shape what was wrong
//! with the request and, where it is one field, which; a 5xx says only that it failed,
//! and its cause goes to the log.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kalsync_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No valid session or token.
    #[error("sign in first (a session cookie or an `Authorization: Bearer` API token)")]
    Unauthenticated,
    /// A signed request (a PBX event) whose signature is missing, stale or wrong.
    #[error("{0}")]
    BadSignature(String),
    /// Signed in, but the role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Not there — or not this tenant's, which looks the same.
    #[error("{0} not found")]
    NotFound(String),
    /// One field is wrong.
    #[error("{field}: {message}")]
    Invalid {
        /// The field, as the request names it.
        field: String,
        /// What was expected.
        message: String,
    },
    /// The request as a whole is wrong (malformed JSON, unknown field, too large).
    #[error("{0}")]
    BadRequest(String),
    /// It already exists.
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than the service takes.
    #[error("the request is larger than {0} bytes")]
    TooLarge(usize),
    /// Too many attempts; try after this many seconds.
    #[error("too many attempts; try again in {0} s")]
    TooMany(u64),
    /// This service cannot do it here (a part it needs is not configured).
    #[error("{0}")]
    Unavailable(String),
    /// Something on our side.
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    /// A field error.
    pub fn invalid(field: impl Into<String>, message: impl ToString) -> ApiError {
        ApiError::Invalid {
            field: field.into(),
            message: message.to_string(),
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated | ApiError::BadSignature(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::BadSignature(_) => "bad_signature",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Invalid { .. } => "invalid",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::TooMany(_) => "too_many_requests",
            ApiError::TooLarge(_) => "too_large",
            ApiError::Internal(_) => "internal",
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code: `unauthenticated`, `bad_signature`, `forbidden`, `not_found`, `invalid`,
    /// `bad_request`, `conflict`, `too_many_requests`, `too_large`, `unavailable`,
    /// `internal`.
    pub code: String,
    /// For people.
    pub message: String,
    /// The field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(cause, "request failed");
                "something failed on our side; it has been logged".to_owned()
            }
            ApiError::Invalid { message, .. } => message.clone(),
            other => other.to_string(),
        };
        let field = match &self {
            ApiError::Invalid { field, .. } => Some(field.clone()),
            _ => None,
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code: self.code().to_owned(),
                    message,
                    field,
                },
            }),
        )
            .into_response();
        if let ApiError::TooMany(seconds) = self {
            if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::Conflict(what) => ApiError::Conflict(format!("{what} already exists")),
            StoreError::Invalid(why) => ApiError::BadRequest(why),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        // serde's message names the field and the line/column ("unknown field `x`,
        // expected one of …").
        match e {
            JsonRejection::JsonDataError(d) => ApiError::BadRequest(d.body_text()),
            JsonRejection::JsonSyntaxError(s) => ApiError::BadRequest(s.body_text()),
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::BadRequest("send `Content-Type: application/json`".into())
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::TooLarge(crate::BODY_LIMIT)
            }
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

/// A JSON body read with our error shape for every rejection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Body<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for Body<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(Body(value))
    }
}

/// A text body (CSV) read with our error shape for every rejection.
#[derive(Debug, Clone, Default)]
pub struct Text(pub String);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Text {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match String::from_request(req, state).await {
            Ok(text) => Ok(Text(text)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::TooLarge(crate::BODY_LIMIT))
            }
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}
