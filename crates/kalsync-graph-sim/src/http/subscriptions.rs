//! Subscriptions: create (after validating the notification endpoints), renew and
//! delete, in Graph's shape.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::admission::admit;
use super::{base_url, graph_error};
use crate::notify::Subscription;
use crate::{Simulator, graph_time};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionRequest {
    change_type: String,
    notification_url: String,
    #[serde(default)]
    lifecycle_notification_url: Option<String>,
    resource: String,
    expiration_date_time: String,
    #[serde(default)]
    client_state: Option<String>,
}

/// Graph's handshake: POST `url?validationToken=…`; the answer must be 200 with the
/// token as plain text within ten seconds.
async fn validate_endpoint(sim: &Simulator, url: &str) -> Result<(), String> {
    let token = format!(
        "Validation: Testing client application reachability for subscription Request-Id: {}",
        uuid::Uuid::new_v4()
    );
    let mut target = url::Url::parse(url).map_err(|_| format!("'{url}' is not a URL"))?;
    target
        .query_pairs_mut()
        .append_pair("validationToken", &token);
    let answer = sim
        .shared
        .http
        .post(target)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| format!("Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request. ({})", e.without_url()))?;
    if !answer.status().is_success() {
        return Err(format!(
            "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request. (answered {})",
            answer.status()
        ));
    }
    let body = answer.text().await.unwrap_or_default();
    if body != token {
        return Err("Subscription validation request failed. Response must exactly match validationToken query parameter.".into());
    }
    Ok(())
}

pub(super) async fn create_subscription(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let client_id = match admit(&sim, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let request: SubscriptionRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                &format!("Invalid subscription payload: {e}"),
            );
        }
    };
    let now = Timestamp::now();
    let Ok(expires) = request.expiration_date_time.parse::<Timestamp>() else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "expirationDateTime is not a valid date.",
        );
    };
    if expires <= now || expires > now + jiff::SignedDuration::from_mins(10_080) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "Subscription expiration can only be 10070 minutes in the future.",
        );
    }
    if request.client_state.as_ref().is_some_and(|c| c.len() > 128) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "clientState is limited to 128 characters.",
        );
    }
    let resource = request.resource.trim_start_matches('/').to_owned();
    let parts: Vec<&str> = resource.split('/').collect();
    if parts.len() != 3
        || !parts[0].eq_ignore_ascii_case("users")
        || !parts[2].eq_ignore_ascii_case("events")
    {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "The simulator takes subscriptions on /users/{id}/events.",
        );
    }
    let user_id = match sim.world().directory.user(parts[1]) {
        Ok(u) if !u.denied => u.id.clone(),
        Ok(_) => {
            return graph_error(
                StatusCode::FORBIDDEN,
                "ExtensionError",
                "Operation: Create; Exception: [Status Code: Forbidden; Reason: Access is denied.]",
            );
        }
        Err(_) => {
            return graph_error(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                "Resource not found for the segment 'users'.",
            );
        }
    };
    for url in
        std::iter::once(&request.notification_url).chain(request.lifecycle_notification_url.iter())
    {
        if let Err(why) = validate_endpoint(&sim, url).await {
            return graph_error(StatusCode::BAD_REQUEST, "ValidationError", &why);
        }
    }
    let before = crate::lock(&sim.shared.hooks).before.take();
    if let Some(f) = before {
        f();
    }
    let id = uuid::Uuid::new_v4().to_string();
    let subscription = Subscription {
        id: id.clone(),
        user_id,
        resource: request.resource.clone(),
        change_type: request.change_type.clone(),
        notification_url: request.notification_url.clone(),
        lifecycle_url: request.lifecycle_notification_url.clone(),
        client_state: request.client_state.clone(),
        expires,
        client_id,
    };
    let body = subscription_json(&base_url(&headers), &subscription);
    sim.world().subscriptions.insert(id, subscription);
    let during = crate::lock(&sim.shared.hooks).during.take();
    if let Some(f) = during {
        f();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    (StatusCode::CREATED, Json(body)).into_response()
}

fn subscription_json(base: &str, s: &Subscription) -> Value {
    json!({
        "@odata.context": format!("{base}/v1.0/$metadata#subscriptions/$entity"),
        "id": s.id,
        "resource": s.resource,
        "applicationId": s.client_id,
        "changeType": s.change_type,
        "clientState": s.client_state,
        "notificationUrl": s.notification_url,
        "notificationQueryOptions": null,
        "lifecycleNotificationUrl": s.lifecycle_url,
        "expirationDateTime": graph_time(s.expires),
        "creatorId": uuid::Uuid::new_v4().to_string(),
        "includeResourceData": null,
        "latestSupportedTlsVersion": "v1_2",
        "encryptionCertificate": null,
        "encryptionCertificateId": null,
        "notificationUrlAppId": null,
        "notificationContentType": "application/json",
    })
}

pub(super) async fn renew_subscription(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = admit(&sim, &headers).await {
        return r;
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Renew {
        expiration_date_time: String,
    }
    let Ok(renew) = serde_json::from_slice::<Renew>(&body) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "expirationDateTime is required.",
        );
    };
    let Ok(expires) = renew.expiration_date_time.parse::<Timestamp>() else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "expirationDateTime is not a valid date.",
        );
    };
    if expires > Timestamp::now() + jiff::SignedDuration::from_mins(10_080) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "Subscription expiration can only be 10070 minutes in the future.",
        );
    }
    let mut world = sim.world();
    let Some(sub) = world.subscriptions.get_mut(&id) else {
        return graph_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!("The object was not found. subscription '{id}'"),
        );
    };
    sub.expires = expires;
    let body = subscription_json(&base_url(&headers), sub);
    Json(body).into_response()
}

pub(super) async fn delete_subscription(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = admit(&sim, &headers).await {
        return r;
    }
    match sim.world().subscriptions.remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => graph_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!("The object was not found. subscription '{id}'"),
        ),
    }
}
