//! Kalsync's admin face (SPEC §6): the REST API under `/api/v1` with its OpenAPI
//! description, sign-in and sessions, roles (operator, company admin, reader) and
//! tenant isolation — a company's admin can never see or change another company's
//! data, and it answers 404 as if it did not exist — and the web UI over the same
//! checks. The service mounts [`router`].

pub mod api;
pub mod auth;
pub mod error;
pub mod ui;

use std::sync::Arc;

use kalsync_store::Store;

pub use error::ApiError;

/// What the handlers share.
#[derive(Clone)]
pub struct WebState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Cookies only over HTTPS (`public_url` is `https:`).
    pub secure_cookies: bool,
    /// Failed sign-ins per address and account.
    pub limit: Arc<auth::SignInLimit>,
}

impl WebState {
    /// State over `store`.
    pub fn new(store: Arc<dyn Store>, secure_cookies: bool) -> WebState {
        WebState {
            store,
            secure_cookies,
            limit: Arc::default(),
        }
    }
}

/// Requests larger than this are refused (a CSV import of 10,000 users fits).
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// The API and its description.
pub fn router(state: WebState) -> axum::Router {
    api::router()
        .merge(ui::router())
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}
