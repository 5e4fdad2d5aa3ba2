//! What every Graph request passes before its handler: the injected latency, the
//! one-shot faults, and the bearer-token check.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use jiff::Timestamp;

use super::graph_error;
use crate::Simulator;

/// Answers no sooner than the injected latency after a request arrived, the
/// simulator's own work included: the latency is Graph's response time as a client sees
/// it. Per-mailbox slots travel in the response and are held until then.
pub(super) async fn pace(
    State(sim): State<Simulator>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = tokio::time::Instant::now();
    let latency = sim.world().faults.latency_ms;
    let response = next.run(request).await;
    tokio::time::sleep_until(started + Duration::from_millis(latency)).await;
    response
}

/// Latency and the one-shot faults every Graph and token request goes through.
async fn gate(sim: &Simulator) -> Option<Response> {
    let mut world = sim.world();
    let faults = &mut world.faults;
    if faults.drop_connections > 0 {
        faults.drop_connections -= 1;
        // A body that fails after the headers: the client sees the connection cut.
        let broken = futures_util::stream::once(async {
            Err::<Bytes, _>(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "simulated drop",
            ))
        });
        return Some(
            Response::builder()
                .status(StatusCode::OK)
                .body(Body::from_stream(broken))
                .unwrap_or_default(),
        );
    }
    if faults.throttle > 0 {
        faults.throttle -= 1;
        sim.shared.stats.throttled.fetch_add(1, Ordering::Relaxed);
        let mut response = graph_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Please retry again later.",
        );
        let after = format!("{}", faults.retry_after_secs.max(0.0));
        if let Ok(v) = HeaderValue::from_str(&after) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Some(response);
    }
    if faults.server_errors > 0 {
        faults.server_errors -= 1;
        return Some(graph_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "The service is temporarily unavailable.",
        ));
    }
    None
}

/// Checks the bearer token; the caller's client id.
fn authorize(sim: &Simulator, headers: &HeaderMap) -> Result<String, Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token is empty.",
            )
        })?;
    let world = sim.world();
    match world.tokens.get(token) {
        Some((client, expires, _)) if *expires > Timestamp::now() => Ok(client.clone()),
        Some(_) => Err(graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Lifetime validation failed, the token is expired.",
        )),
        None => Err(graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "IDX14100: JWT is not well formed.",
        )),
    }
}

/// Runs the gate and the token check shared by every Graph route.
pub(super) async fn admit(sim: &Simulator, headers: &HeaderMap) -> Result<String, Response> {
    if let Some(fault) = gate(sim).await {
        return Err(fault);
    }
    sim.shared.stats.requests.fetch_add(1, Ordering::Relaxed);
    {
        let mut world = sim.world();
        if world.faults.expire_tokens {
            world.faults.expire_tokens = false;
            world.tokens.clear();
        }
    }
    authorize(sim, headers)
}
