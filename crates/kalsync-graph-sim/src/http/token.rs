//! The login host's token endpoint: client credentials (secret or certificate
//! assertion) for the app's access tokens, and its AADSTS error answers.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::Simulator;

impl Simulator {
    /// The app registration `client_id`, or the token endpoint's answer that there is
    /// none (AADSTS700016).
    pub(crate) fn app(&self, client_id: &str) -> Result<&crate::SimApp, Response> {
        self.shared
            .config
            .apps
            .iter()
            .find(|a| a.client_id == client_id)
            .ok_or_else(|| {
                aad_error(
                    StatusCode::BAD_REQUEST,
                    "unauthorized_client",
                    700016,
                    &format!(
                        "Application with identifier '{client_id}' was not found in the directory."
                    ),
                )
            })
    }
}

/// An unguessable token for codes and access tokens.
pub(crate) fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

pub(crate) fn aad_error(status: StatusCode, error: &str, code: u32, text: &str) -> Response {
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {text}\r\nTrace ID: {}\r\nCorrelation ID: {}\r\nTimestamp: {}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), Timestamp::now().strftime("%Y-%m-%d %H:%M:%SZ")),
        "error_codes": [code],
        "timestamp": Timestamp::now().strftime("%Y-%m-%d %H:%M:%SZ").to_string(),
        "trace_id": uuid::Uuid::new_v4().to_string(),
        "correlation_id": uuid::Uuid::new_v4().to_string(),
    });
    (status, Json(body)).into_response()
}

pub(super) async fn token(
    State(sim): State<Simulator>,
    Path(tenant): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The login host is not Graph: it shares the latency (the pacing layer), not
    // Graph's fault counts.
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();

    if form.get("grant_type").map(String::as_str) == Some("authorization_code")
        && matches!(tenant.as_str(), "organizations" | "common")
    {
        return crate::oidc::redeem(&sim, &headers, &form);
    }
    if tenant != sim.shared.config.tenant {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if !form.get("scope").is_some_and(|s| s.ends_with("/.default")) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            "The provided value for the input parameter 'scope' is not valid.",
        );
    }
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    let app = match sim.app(&client_id) {
        Ok(app) => app,
        Err(refused) => return refused,
    };
    if let Some(given) = form.get("client_secret") {
        if app.secret.as_deref() != Some(given.as_str()) {
            return aad_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                "Invalid client secret provided.",
            );
        }
        if app.secret_expired {
            return aad_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000222,
                "The provided client secret keys are expired.",
            );
        }
    } else if let Some(assertion) = form.get("client_assertion") {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        let audience = format!("http://{host}{}", uri.path());
        if let Err(why) = check_assertion(app, assertion, &audience) {
            return aad_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                700027,
                &format!("Client assertion failed signature validation: {why}"),
            );
        }
    } else {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain client_assertion or client_secret.",
        );
    }
    // An admin's consent grants the app its permissions (the token's `roles`); a
    // person's sign-in only makes the app known in the tenant: its tokens carry none.
    let roles: &[&str] = if app.consented || sim.world().consented.contains(&app.client_id) {
        &["Calendars.Read", "MailboxSettings.Read"]
    } else if sim.world().signed_in_apps.contains(&app.client_id) {
        &[]
    } else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            65001,
            "The user or administrator has not consented to use the application.",
        );
    };
    let claims = json!({
        "aud": form.get("scope").and_then(|s| s.strip_suffix("/.default")).unwrap_or_default(),
        "tid": sim.shared.config.tenant,
        "appid": app.client_id,
        "roles": roles,
        "jti": random_token(),
    });
    let token = format!(
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.{}.sim",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let lifetime = sim.shared.config.token_lifetime;
    let expires = Timestamp::now() + lifetime;
    let audience = form
        .get("scope")
        .and_then(|s| s.strip_suffix("/.default"))
        .unwrap_or_default()
        .to_owned();
    sim.world()
        .tokens
        .insert(token.clone(), (client_id, expires, audience));
    sim.shared.stats.tokens.fetch_add(1, Ordering::Relaxed);
    Json(json!({"token_type": "Bearer", "expires_in": lifetime.as_secs(), "ext_expires_in": lifetime.as_secs(), "access_token": token})).into_response()
}

fn check_assertion(app: &crate::SimApp, assertion: &str, audience: &str) -> Result<(), String> {
    let cert = app
        .certificate
        .as_ref()
        .ok_or("the app has no certificate")?;
    let header = jsonwebtoken::decode_header(assertion).map_err(|e| e.to_string())?;
    if header.x5t_s256.as_deref() != Some(cert.thumbprint_s256.as_str()) {
        return Err("x5t#S256 does not match the uploaded certificate".into());
    }
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(cert.public_key_pem.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[app.client_id.as_str()]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    let data =
        jsonwebtoken::decode::<Value>(assertion, &key, &validation).map_err(|e| e.to_string())?;
    if data.claims.get("sub").and_then(Value::as_str) != Some(app.client_id.as_str()) {
        return Err("sub is not the client id".into());
    }
    Ok(())
}
