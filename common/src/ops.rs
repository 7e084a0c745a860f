//! The Dockerflow endpoints both services answer the same way.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// `/__lbheartbeat__`: the process is alive.
pub async fn lbheartbeat() -> impl IntoResponse {
    Json(json!({}))
}

/// `/__version__`: what was built, from `SYNC_BUILD_*` at compile time.
pub async fn version() -> impl IntoResponse {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": option_env!("SYNC_BUILD_COMMIT").unwrap_or("unknown"),
        "source": option_env!("SYNC_BUILD_SOURCE").unwrap_or("local build"),
        "build": option_env!("SYNC_BUILD_ID").unwrap_or("dev"),
    }))
}

/// axum answers a method that a route does not take by itself, with an
/// empty body: this gives such an answer the protocol's body from `body`,
/// keeping its `Allow` header. Other responses pass unchanged.
pub fn protocol_405(response: Response, body: impl FnOnce() -> Response) -> Response {
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        return response;
    }
    let mut ours = body();
    if let Some(allow) = response.headers().get(header::ALLOW) {
        ours.headers_mut().insert(header::ALLOW, allow.clone());
    }
    ours
}

/// How long a heartbeat waits for its database checks: a database that
/// cannot start a write in this time is as good as down to its clients.
pub const HEARTBEAT_WAIT: std::time::Duration = std::time::Duration::from_secs(8);

/// A database check as `/__heartbeat__` reports it: the status to answer
/// with and the word for the body (`"Ok"`/`"Err"`); failures, and checks
/// still running after [`HEARTBEAT_WAIT`], are logged as down.
pub async fn database_health<E: std::fmt::Display>(
    what: &str,
    check: impl std::future::Future<Output = Result<(), E>>,
) -> (StatusCode, &'static str) {
    let failure = match tokio::time::timeout(HEARTBEAT_WAIT, check).await {
        Ok(Ok(())) => return (StatusCode::OK, "Ok"),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {HEARTBEAT_WAIT:?}"),
    };
    tracing::warn!(error = %failure, "heartbeat: {what} check failed");
    (StatusCode::SERVICE_UNAVAILABLE, "Err")
}
