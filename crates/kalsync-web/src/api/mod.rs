//! `/api/v1`: the routes, and the OpenAPI description generated from the handlers'
//! annotations (`/api/v1/openapi.json`).

pub(crate) mod accounts;
pub(crate) mod companies;
pub(crate) mod directory;
pub(crate) mod instances;
pub(crate) mod manual;
pub(crate) mod pbx;
pub mod phone;
mod session;
pub(crate) mod status;
pub(crate) mod users;

use axum::Json;
use axum::Router;
use axum::routing::{delete, get, post};
use utoipa::OpenApi;

use crate::WebState;
use crate::error::ApiError;

/// The OpenAPI description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Kalsync API",
        description = "Calendar bookings to PBX absence status: companies, instances, users, their status and timeline, the switchboard directory. Sign in with a session (POST /api/v1/session; state-changing requests then carry X-CSRF-Token) or a company API token (Authorization: Bearer kst_…). Another company's data answers 404."
    ),
    paths(
                session::sign_in, session::sign_out, session::me,
        accounts::list, accounts::create, accounts::remove, accounts::change_password,
        accounts::operators, accounts::create_operator, accounts::remove_operator,
        companies::list, companies::create, companies::get, companies::update, companies::audit_log,
        companies::deliveries, companies::tokens, companies::create_token, companies::revoke_token,
        instances::list, instances::create, instances::get, instances::update, instances::remove, instances::check,
        directory::get, directory::put, directory::remove, directory::run,
        pbx::get, pbx::put, pbx::upload, pbx::fetch, pbx::remove,
        phone::event, phone::get, phone::make_secret, phone::remove_secret,
        users::list, users::add, users::import, users::remove,
        status::user_status, status::directory, manual::set, manual::clear,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail)),
    tags((name = "kalsync"))
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}

/// The routes (state to be given).
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route(
            "/api/v1/session",
            post(session::sign_in).delete(session::sign_out),
        )
        .route("/api/v1/me", get(session::me))
        .route(
            "/api/v1/operators",
            get(accounts::operators).post(accounts::create_operator),
        )
        .route(
            "/api/v1/operators/{account}",
            delete(accounts::remove_operator),
        )
        .route(
            "/api/v1/me/password",
            axum::routing::put(accounts::change_password),
        )
        .route(
            "/api/v1/companies/{company}/accounts",
            get(accounts::list).post(accounts::create),
        )
        .route(
            "/api/v1/companies/{company}/accounts/{account}",
            delete(accounts::remove),
        )
        .route(
            "/api/v1/companies",
            get(companies::list).post(companies::create),
        )
        .route(
            "/api/v1/companies/{company}",
            get(companies::get).patch(companies::update),
        )
        .route(
            "/api/v1/companies/{company}/audit",
            get(companies::audit_log),
        )
        .route(
            "/api/v1/companies/{company}/deliveries",
            get(companies::deliveries),
        )
        .route(
            "/api/v1/companies/{company}/tokens",
            get(companies::tokens).post(companies::create_token),
        )
        .route(
            "/api/v1/companies/{company}/tokens/{token}",
            delete(companies::revoke_token),
        )
        .route(
            "/api/v1/companies/{company}/pbx-directory",
            get(pbx::get).put(pbx::put).delete(pbx::remove),
        )
        .route(
            "/api/v1/companies/{company}/pbx-directory/list",
            axum::routing::put(pbx::upload),
        )
        .route(
            "/api/v1/companies/{company}/pbx-directory/fetch",
            post(pbx::fetch),
        )
        .route(
            "/api/v1/companies/{company}/instances",
            get(instances::list).post(instances::create),
        )
        .route(
            "/api/v1/instances/{instance}",
            get(instances::get)
                .patch(instances::update)
                .delete(instances::remove),
        )
        .route("/api/v1/instances/{instance}/check", post(instances::check))
        .route(
            "/api/v1/instances/{instance}/directory",
            get(directory::get)
                .put(directory::put)
                .delete(directory::remove),
        )
        .route(
            "/api/v1/instances/{instance}/directory/run",
            post(directory::run),
        )
        .route(
            "/api/v1/instances/{instance}/users",
            get(users::list).post(users::add),
        )
        .route(
            "/api/v1/instances/{instance}/users/import",
            post(users::import),
        )
        .route("/api/v1/users/{user}", delete(users::remove))
        .route("/api/v1/users/{user}/status", get(status::user_status))
        .route(
            "/api/v1/pbx/events",
            // Refused before more than an event's worth is read.
            post(phone::event).layer(axum::extract::DefaultBodyLimit::max(phone::MAX_EVENT)),
        )
        .route("/api/v1/companies/{company}/pbx-events", get(phone::get))
        .route(
            "/api/v1/companies/{company}/pbx-events/secret",
            post(phone::make_secret).delete(phone::remove_secret),
        )
        .route(
            "/api/v1/users/{user}/manual-status",
            axum::routing::put(manual::set).delete(manual::clear),
        )
        .route("/api/v1/directory", get(status::directory))
        .route("/api/v1/{*rest}", axum::routing::any(not_found))
}

/// Parses a path id, or says it is not found (a malformed id names nothing).
pub(crate) fn path_id<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, ApiError> {
    text.parse()
        .map_err(|_| ApiError::NotFound(format!("{what} {text}")))
}
